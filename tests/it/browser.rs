//! A real headless Chromium driven over the DevTools protocol, for tests of pages as people
//! use them: open a page, type, click, and wait for what the page shows. Debian's `chromium`
//! (installed by `scripts/test` when missing). Without it the test fails — under `CI=true`
//! always; elsewhere `INCUBASE_TEST_BROWSER=off` skips browser tests with a note.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a page gets to show what a test waits for.
const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    child: tokio::process::Child,
    socket: Socket,
    next_id: u64,
    events: VecDeque<Value>,
    /// Console errors, uncaught exceptions and failed loads, as the page's developer tools would show them.
    pub errors: Vec<String>,
    /// Every URL the pages requested (documents, files, fetches, WebSockets), in order.
    pub requests: Vec<String>,
    profile: PathBuf,
}

/// An open tab.
#[derive(Clone)]
pub struct Tab(String);

fn executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("INCUBASE_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Browser {
    /// Starts Chromium; `None` only when browser tests are switched off outside CI.
    pub async fn launch() -> Option<Browser> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if std::env::var("INCUBASE_TEST_BROWSER").is_ok_and(|v| v == "off") {
            assert!(!ci, "CI=true requires the browser tests, but INCUBASE_TEST_BROWSER=off");
            eprintln!("note: browser tests switched off (INCUBASE_TEST_BROWSER=off)");
            return None;
        }
        let Some(chromium) = executable() else {
            panic!(
                "Chromium is not installed: scripts/test installs it (apt-get install -y chromium), or set \
                 INCUBASE_TEST_CHROMIUM to a Chromium binary (INCUBASE_TEST_BROWSER=off skips browser tests, not under CI=true)"
            );
        };
        let profile = std::env::temp_dir().join(format!("incubase-chromium-{}", uuid::Uuid::new_v4().simple()));
        // The flags this machine's closed network needs (no background connections), as root.
        let mut child = tokio::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=1024,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let endpoint = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return Some(url.trim().to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("Chromium did not start its DevTools endpoint; it said:\n{}", seen.join("\n")));
        // Keep reading its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str()).await.expect("DevTools connects");
        Some(Browser {
            child,
            socket,
            next_id: 0,
            events: VecDeque::new(),
            errors: Vec::new(),
            requests: Vec::new(),
            profile,
        })
    }

    /// Sends one DevTools command and waits for its answer; events that arrive meanwhile are kept.
    pub async fn call(&mut self, tab: Option<&Tab>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(tab) = tab {
            message["sessionId"] = json!(tab.0);
        }
        self.socket.send(Message::text(message.to_string())).await.expect("DevTools send");
        loop {
            let message = self.receive().await;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    panic!("DevTools {method} failed: {error}");
                }
                return message["result"].clone();
            }
            self.keep(message);
        }
    }

    async fn receive(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(WAIT * 2, self.socket.next())
                .await
                .expect("DevTools answers")
                .expect("DevTools connection open")
                .expect("DevTools message");
            if let Message::Text(text) = next {
                return serde_json::from_str(&text).expect("DevTools JSON");
            }
        }
    }

    fn keep(&mut self, event: Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"].as_str().or(details["text"].as_str()).unwrap_or("?");
                self.errors.push(format!("uncaught: {text}"));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].as_str().map(str::to_owned).unwrap_or_else(|| a["description"].to_string()))
                    .collect();
                self.errors.push(format!("console.error: {}", args.join(" ")));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.errors.push(format!("{}: {}", entry["text"], entry["url"]));
            }
            Some("Network.requestWillBeSent") => {
                self.requests.extend(params["request"]["url"].as_str().map(str::to_owned));
            }
            Some("Network.webSocketCreated") => self.requests.extend(params["url"].as_str().map(str::to_owned)),
            _ => {}
        }
        self.events.push_back(event);
        if self.events.len() > 1000 {
            self.events.pop_front();
        }
    }

    /// A new tab showing `url`, once its load event fired.
    pub async fn open(&mut self, url: &str) -> Tab {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached =
            self.call(None, "Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        let tab = Tab(attached["sessionId"].as_str().expect("session").to_owned());
        for domain in ["Runtime.enable", "Log.enable", "Page.enable", "Network.enable"] {
            self.call(Some(&tab), domain, json!({})).await;
        }
        self.navigate(&tab, url).await;
        tab
    }

    pub async fn navigate(&mut self, tab: &Tab, url: &str) {
        self.events.clear();
        let navigated = self.call(Some(tab), "Page.navigate", json!({ "url": url })).await;
        assert!(navigated.get("errorText").is_none(), "cannot open {url}: {navigated}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.events.iter().any(|e| e["method"] == "Page.loadEventFired" && e["sessionId"] == json!(tab.0)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{url} did not finish loading");
            let message = tokio::time::timeout_at(deadline, self.receive()).await.expect("the page loads");
            self.keep(message);
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise); its value.
    pub async fn eval(&mut self, tab: &Tab, expression: &str) -> Value {
        let result = self
            .call(
                Some(tab),
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"].as_str().or(details["text"].as_str()).unwrap_or("?");
            panic!("{text}\npage errors: {:#?}", self.errors);
        }
        result["result"]["value"].clone()
    }

    /// Waits, inside the page, until `condition` (a JavaScript expression) is truthy; its value.
    /// Fails with what the page shows when it does not happen within 20 s.
    pub async fn wait_for(&mut self, tab: &Tab, condition: &str) -> Value {
        let what = serde_json::to_string(condition).expect("json");
        let expression = format!(
            "new Promise((resolve, reject) => {{ const started = Date.now(); const tick = () => {{ let value; \
             try {{ value = ({condition}); }} catch (e) {{}} if (value) resolve(value); \
             else if (Date.now() - started > {ms}) reject(new Error('timed out waiting for ' + {what} + \
             '\\nthe page shows: ' + document.body.innerText.slice(0, 1500))); else setTimeout(tick, 50); }}; tick(); }})",
            ms = WAIT.as_millis()
        );
        self.eval(tab, &expression).await
    }

    /// The center of the element `selector` matches, scrolled into view.
    async fn center(&mut self, tab: &Tab, selector: &str) -> (f64, f64) {
        let selector_json = serde_json::to_string(selector).expect("json");
        let at = self
            .wait_for(
                tab,
                &format!(
                    "(() => {{ const el = document.querySelector({selector_json}); if (!el || el.disabled) return null; \
                     el.scrollIntoView({{ block: 'center' }}); const r = el.getBoundingClientRect(); \
                     return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"
                ),
            )
            .await;
        (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"))
    }

    /// Clicks the element as a mouse would.
    pub async fn click(&mut self, tab: &Tab, selector: &str) {
        let (x, y) = self.center(tab, selector).await;
        for kind in ["mousePressed", "mouseReleased"] {
            let event = json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 });
            self.call(Some(tab), "Input.dispatchMouseEvent", event).await;
        }
    }

    /// Clicks into a field, selects what it holds and types `text` over it.
    pub async fn type_into(&mut self, tab: &Tab, selector: &str, text: &str) {
        self.click(tab, selector).await;
        let selector_json = serde_json::to_string(selector).expect("json");
        self.eval(tab, &format!("document.querySelector({selector_json}).select()")).await;
        self.call(Some(tab), "Input.insertText", json!({ "text": text })).await;
    }

    /// Saves a PNG of the tab when `INCUBASE_TEST_SCREENSHOTS` names a directory.
    pub async fn screenshot(&mut self, tab: &Tab, name: &str) {
        let Some(dir) = std::env::var_os("INCUBASE_TEST_SCREENSHOTS") else { return };
        use base64::Engine;
        let shot = self
            .call(Some(tab), "Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }))
            .await;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("png")).expect("base64");
        let path = Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("screenshot written");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

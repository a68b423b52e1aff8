//! The server as it is deployed: behind trusted reverse proxies (client addresses from
//! forwarding headers), with native TLS, behind a real Nginx, and on Redis Sentinel.
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, selected, spawn_app_with};

/// One test per backend on a server that allows three operations a minute per client and
/// believes forwarding headers from `$trusted`.
macro_rules! proxy_tests {
    ($( async fn $name:ident($app:ident, trusted = $trusted:expr) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if selected(Backend::Sqlite) {
                        run(spawn_limited(Backend::Sqlite, $trusted).await).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if selected(Backend::Postgres) {
                        run(spawn_limited(Backend::Postgres, $trusted).await).await;
                    }
                }
            }
        )*
    };
}

const AUDIT: &str = r#"query($f: AuditLogFilter) {
  auditLog(filter: $f, first: 5) { edges { node { type actor { kind address } } } }
}"#;
const CREATE_ORG: &str = "mutation($n: String!) { createOrganization(input: { name: $n }) { organization { id } } }";

/// POSTs `query` with extra headers (forwarding headers a client or a proxy adds).
async fn send_with(
    app: &TestApp,
    headers: &[(&str, &str)],
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// Where the audit trail says the organization `id` was created from.
async fn created_from(app: &TestApp, id: &Value) -> Value {
    let admin = app.account("admin", &[api::service::identity::Role::Admin]).await;
    let filter = json!({ "f": { "aggregate": id, "types": ["organization.created"] } });
    let log = app.ok_as(&crate::helpers::Credentials::account(&admin), AUDIT, filter).await;
    log["auditLog"]["edges"][0]["node"]["actor"]["address"].clone()
}

async fn create_org(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let name = format!("代理测试{}", uuid::Uuid::new_v4().simple());
    let (status, body) =
        send_with(app, headers, Some(&app.manager.token.clone()), CREATE_ORG, json!({ "n": name })).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["createOrganization"]["organization"]["id"].clone()
}

const ANONYMOUS_READ: &str = "{ __typename }";

proxy_tests! {
    async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app, trusted = "10.0.0.0/8, 192.0.2.10") {
        // Trusted proxies are configured, but this peer (127.0.0.1) is not one of them.
        let spoofs: [&[(&str, &str)]; 4] = [
            &[("x-forwarded-for", "203.0.113.1")],
            &[("x-forwarded-for", "203.0.113.2, 203.0.113.3")],
            &[("forwarded", "for=203.0.113.4;proto=https")],
            &[("x-forwarded-for", "203.0.113.5"), ("x-real-ip", "203.0.113.5")],
        ];
        for headers in &spoofs[..3] {
            let (status, body) = send_with(&app, headers, None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200, "{body}");
        }
        // The fourth anonymous operation of this minute is the peer's fourth, whatever it claims.
        let (status, body) = send_with(&app, spoofs[3], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");

        // The audit trail records the peer, not the claim.
        let id = create_org(&app, &[("x-forwarded-for", "198.51.100.77")]).await;
        assert_eq!(created_from(&app, &id).await, "127.0.0.1");
    }

    async fn clients_behind_a_trusted_proxy_get_their_own_buckets(app, trusted = "127.0.0.0/8") {
        let (status, _) = send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200);
        for _ in 0..2 {
            let (status, _) =
                send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200);
        }
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "client A used its three: {body}");
        // A client that puts another address in front of its own still counts as itself: the
        // proxy appended the real one at the right.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.8, 203.0.113.7")], None, ANONYMOUS_READ, json!({}))
                .await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "prepending an address does not help: {body}");

        // Client B behind the same proxy has a bucket of its own.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.8")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200, "client B is not limited by client A: {body}");
        // Several trusted hops (a load balancer in front of the proxy) are walked past.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.9, 127.0.0.5")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200, "{body}");
        // RFC 7239 `Forwarded` is read first, IPv6 and ports included.
        for _ in 0..3 {
            let headers = [("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https"#), ("x-forwarded-for", "203.0.113.7")];
            let (status, body) = send_with(&app, &headers, None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200, "the Forwarded client is not client A: {body}");
        }

        // The audit trail records the resolved client.
        let id = create_org(&app, &[("x-forwarded-for", "198.51.100.20")]).await;
        assert_eq!(created_from(&app, &id).await, "198.51.100.20");
        let id = create_org(&app, &[("forwarded", "for=198.51.100.21, for=127.0.0.9")]).await;
        assert_eq!(created_from(&app, &id).await, "198.51.100.21");
    }
}

/// Three operations a minute per client, forwarding headers believed from `trusted`.
pub async fn spawn_limited(backend: Backend, trusted: &str) -> TestApp {
    let trusted = api::proxy::TrustedProxies::parse(trusted).expect("proxies");
    spawn_app_with(backend, move |s| {
        s.limits.operations_per_minute = 3;
        s.trusted_proxies = trusted;
    })
    .await
}

// ---------------------------------------------------------------- native TLS

/// A self-signed certificate for `localhost` and its key, in PEM, and its DER for trusting it.
fn self_signed() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    (cert.pem(), signing_key.serialize_pem(), cert.der().clone())
}

/// A TLS client configuration that trusts `cert` only, offering `alpn`.
fn trusting(cert: &rustls::pki_types::CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// A TLS connection from `from` (a loopback address) to `localhost:<port>` trusting `cert`
/// only, offering `alpn`.
async fn tls_connect(
    from: [u8; 4],
    port: u16,
    cert: &rustls::pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(trusting(cert, alpn)));
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((from, 0)))?;
    let tcp = socket.connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    connector.connect(name, tcp).await
}

/// An HTTPS client of `localhost:<port>`: one fresh connection per request, from `from`,
/// HTTP/2 when `h2` (chosen by ALPN), else HTTP/1.1.
#[derive(Clone, Copy)]
struct Https<'a> {
    from: [u8; 4],
    port: u16,
    cert: &'a rustls::pki_types::CertificateDer<'static>,
    h2: bool,
}

impl Https<'_> {
    /// POSTs `body` with extra headers; `Err` when the connection or the handshake fails (a
    /// certificate not trusted). A body that is not JSON comes back as a string.
    async fn send(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<(hyper::Version, u16, Value), String> {
        use http_body_util::BodyExt;
        let alpn: &[&[u8]] = if self.h2 { &[b"h2", b"http/1.1"] } else { &[b"http/1.1"] };
        let tls = tls_connect(self.from, self.port, self.cert, alpn).await.map_err(|e| e.to_string())?;
        assert_eq!(tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()), self.h2, "ALPN picks the protocol");
        let io = hyper_util::rt::TokioIo::new(tls);
        let port = self.port;
        let uri = if self.h2 { format!("https://localhost:{port}/graphql") } else { "/graphql".to_owned() };
        let mut request = hyper::Request::post(uri).header("content-type", "application/json");
        if !self.h2 {
            request = request.header("host", format!("localhost:{port}"));
        }
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(http_body_util::Full::new(bytes::Bytes::from(body))).map_err(|e| e.to_string())?;
        let response = if self.h2 {
            let executor = hyper_util::rt::TokioExecutor::new();
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(executor, io).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await.map_err(|e| e.to_string())?
        } else {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await.map_err(|e| e.to_string())?
        };
        let (version, status) = (response.version(), response.status().as_u16());
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((version, status, body))
    }

    async fn gql(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> Result<(u16, Value), String> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(token, headers, body).await.map(|(_, status, body)| (status, body))
    }
}

/// POSTs one GraphQL operation over HTTPS from the loopback address.
async fn post_https(
    port: u16,
    cert: &rustls::pki_types::CertificateDer<'static>,
    h2: bool,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<(hyper::Version, Value), String> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let https = Https { from: LOOPBACK, port, cert, h2 };
    https.send(token, &[], body).await.map(|(version, _, body)| (version, body))
}

pub type AnySocket<S> = tokio_tungstenite::WebSocketStream<S>;

/// Opens graphql-transport-ws over an already connected stream (TLS, or a proxy's port) and
/// subscribes to `query` under id "1".
pub async fn subscribe_over<S>(stream: S, url: &str, init: Value, query: &str, variables: Value) -> AnySocket<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("websocket upgrade");
    socket.send(Message::text(json!({ "type": "connection_init", "payload": init }).to_string())).await.expect("init");
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    socket
}

pub async fn next_message<S>(socket: &mut AnySocket<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("message");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] != "ping" && value["type"] != "pong" {
                return value;
            }
        }
    }
}

pub const PROGRESS: &str = "subscription($id: ID!) { campaignProgress(id: $id) { eventType progress { raisedFen } } }";
pub const DONATE: &str = "mutation($i: DonateInput!) { donate(input: $i) { donation { id } } }";
pub const CONFIRM: &str = "mutation($i: ConfirmDonationInput!) { confirmDonation(input: $i) { donation { id } } }";

/// A campaign open for donations, as a global ID.
pub async fn open_campaign(app: &TestApp) -> String {
    let org = api::service::organization::create(
        app.state.ctx(),
        &crate::helpers::actor(),
        api::service::organization::NewOrganization {
            name: format!("部署测试{}", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        },
    )
    .await
    .expect("organization");
    crate::crowdfunding::campaign_gid(crate::crowdfunding::campaign_in(app, org.org.id, "ACTIVE").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tls_speaks_http1_http2_and_websockets_and_reloads_on_sighup() {
    let dir = std::env::temp_dir().join(format!("incubase-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let files = api::tls::TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    let (first_pem, first_key, first_der) = self_signed();
    std::fs::write(&files.cert, &first_pem).expect("cert");
    std::fs::write(&files.key, &first_key).expect("key");
    let tls = files.clone();
    let app = spawn_app_with(Backend::Sqlite, move |s| s.tls = Some(tls)).await;
    let port = port_of(&app);

    // HTTP/1.1 and HTTP/2, chosen by ALPN.
    for (h2, version) in [(false, hyper::Version::HTTP_11), (true, hyper::Version::HTTP_2)] {
        let (got, body) =
            post_https(port, &first_der, h2, None, "{ __typename }", json!({})).await.expect("https answers");
        assert_eq!(got, version);
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
    }
    // Plain HTTP on the TLS port gets nothing.
    assert!(app.client.post(app.url("/graphql")).json(&json!({ "query": "{ __typename }" })).send().await.is_err());

    // A subscription over wss: the first progress at once, then a confirmed donation pushed.
    let campaign = open_campaign(&app).await;
    let stream = tls_connect(LOOPBACK, port, &first_der, &[b"http/1.1"]).await.expect("tls handshake");
    let ws_url = format!("wss://localhost:{port}/graphql/ws");
    let mut socket = subscribe_over(stream, &ws_url, json!({}), PROGRESS, json!({ "id": campaign })).await;
    let first = next_message(&mut socket).await;
    assert_eq!(first["payload"]["data"]["campaignProgress"]["progress"]["raisedFen"], 0, "{first}");
    let donor = app.account("donor", &[api::service::identity::Role::Donor]).await;
    let input = json!({ "campaignId": campaign, "amountFen": 6_600, "channel": "ONLINE_PLATFORM",
        "clientKey": uuid::Uuid::new_v4().to_string() });
    let (_, donated) =
        post_https(port, &first_der, true, Some(&donor.token), DONATE, json!({ "i": input })).await.expect("donate");
    let donation = donated["data"]["donate"]["donation"]["id"].clone();
    assert!(donation.is_string(), "{donated}");
    let (_, confirmed) =
        post_https(port, &first_der, true, Some(&app.manager.token), CONFIRM, json!({ "i": { "id": donation } }))
            .await
            .expect("confirm");
    assert!(confirmed.get("errors").is_none(), "{confirmed}");
    let pushed = next_message(&mut socket).await;
    assert_eq!(pushed["payload"]["data"]["campaignProgress"]["progress"]["raisedFen"], 6_600, "{pushed}");

    // Renewal: new files, SIGHUP, and new connections get the new certificate without a restart.
    let (second_pem, second_key, second_der) = self_signed();
    assert!(post_https(port, &second_der, true, None, "{ __typename }", json!({})).await.is_err(), "not served yet");
    std::fs::write(&files.key, &second_key).expect("key");
    std::fs::write(&files.cert, &second_pem).expect("cert");
    let hup =
        std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().expect("kill");
    assert!(hup.success());
    let served = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        post_https(port, &second_der, true, None, "{ __typename }", json!({})).await.is_ok()
    })
    .await;
    assert!(served, "the renewed certificate is served after SIGHUP");
    assert!(post_https(port, &first_der, true, None, "{ __typename }", json!({})).await.is_err(), "the old one is not");
    // Half-written files on the next SIGHUP: the current certificate stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\ntruncated").expect("cert");
    let hup =
        std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().expect("kill");
    assert!(hup.success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        post_https(port, &second_der, false, None, "{ __typename }", json!({})).await.is_ok(),
        "a bad renewal changes nothing"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------- behind Nginx

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// `deploy/nginx/incubase.conf` for this machine: every line changed is one the file must
/// still have, so a drift of the shipped config fails here.
fn render_site(upstream: u16, http: u16, https: u16, cert: &std::path::Path, key: &std::path::Path) -> String {
    let shipped = include_str!("../../deploy/nginx/incubase.conf");
    let mut site = shipped.to_owned();
    let replacements = [
        ("server 127.0.0.1:8000;", format!("server 127.0.0.1:{upstream};")),
        ("    listen 80;\n", format!("    listen 127.0.0.1:{http};\n")),
        ("    listen [::]:80;\n", String::new()),
        ("    listen 443 ssl http2;\n", format!("    listen 127.0.0.1:{https} ssl http2;\n")),
        ("    listen [::]:443 ssl http2;\n", String::new()),
        ("server_name api.example.org;", "server_name localhost;".to_owned()),
        ("/etc/letsencrypt/live/api.example.org/fullchain.pem", cert.display().to_string()),
        ("/etc/letsencrypt/live/api.example.org/privkey.pem", key.display().to_string()),
    ];
    for (from, to) in replacements {
        assert!(site.contains(from), "deploy/nginx/incubase.conf no longer has {from:?}");
        site = site.replace(from, &to);
    }
    site
}

/// Nginx as the machine has it (Debian's `nginx`; scripts/test installs it when missing).
fn nginx_binary() -> String {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("nginx is not installed: scripts/test installs Debian's nginx (apt-get install -y nginx)");
}

struct Nginx {
    child: tokio::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    // SIGTERM, not SIGKILL: the master then stops its workers (a killed master leaves them
    // running, holding the ports).
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            for _ in 0..50 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Starts Nginx with the shipped site in front of `upstream`; returns it with its HTTP and
/// HTTPS ports and the certificate it serves.
async fn start_nginx(upstream: u16) -> (Nginx, u16, u16, rustls::pki_types::CertificateDer<'static>) {
    let dir = std::env::temp_dir().join(format!("incubase-nginx-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (pem, key, der) = self_signed();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, pem).expect("cert");
    std::fs::write(&key_path, key).expect("key");
    let (http, https) = (free_port(), free_port());
    std::fs::write(dir.join("site.conf"), render_site(upstream, http, https, &cert_path, &key_path)).expect("site");
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let d = dir.display();
    let main = format!(
        "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           include {d}/site.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf");
    let binary = nginx_binary();
    let test = std::process::Command::new(&binary)
        .args(["-t", "-q", "-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
        .output()
        .expect("nginx -t");
    assert!(test.status.success(), "nginx -t: {}", String::from_utf8_lossy(&test.stderr));
    let child = tokio::process::Command::new(&binary)
        .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child, dir: dir.clone() };
    let up = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", https)).await.is_ok()
    })
    .await;
    assert!(up, "nginx listens: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
    (nginx, http, https, der)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_clients_keep_their_addresses_limits_and_subscriptions() {
    // Nginx reaches the server from 127.0.0.1, its only trusted proxy; clients come from
    // other loopback addresses, as outside clients would.
    let app = spawn_limited(Backend::Sqlite, "127.0.0.1").await;
    let (_nginx, http_port, https_port, cert) = start_nginx(port_of(&app)).await;
    let client_a = Https { from: [127, 0, 0, 2], port: https_port, cert: &cert, h2: true };
    let client_b = Https { from: [127, 0, 0, 3], port: https_port, cert: &cert, h2: false };

    // Plain HTTP is sent to HTTPS.
    let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = redirect.get(format!("http://127.0.0.1:{http_port}/graphql")).send().await.expect("http");
    assert_eq!(response.status().as_u16(), 301);
    assert!(response.headers()["location"].to_str().expect("location").starts_with("https://"));

    // Each client has its own bucket of three operations a minute; a made-up X-Forwarded-For
    // does not give client A a new one.
    for _ in 0..3 {
        let (status, body) = client_a.gql(None, &[], ANONYMOUS_READ, json!({})).await.expect("through nginx");
        assert_eq!(status, 200, "{body}");
    }
    let spoof = [("x-forwarded-for", "203.0.113.99")];
    let (status, body) = client_a.gql(None, &spoof, ANONYMOUS_READ, json!({})).await.expect("through nginx");
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
    let (status, body) = client_b.gql(None, &[], ANONYMOUS_READ, json!({})).await.expect("through nginx");
    assert_eq!(status, 200, "client B has its own bucket: {body}");

    // The audit trail names the client, not Nginx.
    let name = format!("经代理创建{}", uuid::Uuid::new_v4().simple());
    let (status, body) =
        client_b.gql(Some(&app.manager.token), &[], CREATE_ORG, json!({ "n": name })).await.expect("through nginx");
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["createOrganization"]["organization"]["id"].clone();
    assert_eq!(created_from(&app, &id).await, "127.0.0.3");

    // Nginx's body limit is the server's (1 MiB): a larger body stops there.
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(1_100_000) } }).to_string();
    let (_, status, _) = client_b.send(None, &[], big).await.expect("through nginx");
    assert_eq!(status, 413);

    // A subscription through Nginx's WebSocket upgrade: the current progress at once, then a
    // donation confirmed on the server pushed through the proxy.
    let campaign = open_campaign(&app).await;
    let stream = tls_connect([127, 0, 0, 4], https_port, &cert, &[b"http/1.1"]).await.expect("tls");
    let url = format!("wss://localhost:{https_port}/graphql/ws");
    let mut socket = subscribe_over(stream, &url, json!({}), PROGRESS, json!({ "id": campaign })).await;
    let first = next_message(&mut socket).await;
    assert_eq!(first["payload"]["data"]["campaignProgress"]["progress"]["raisedFen"], 0, "{first}");
    let donor =
        crate::helpers::Credentials::account(&app.account("donor", &[api::service::identity::Role::Donor]).await);
    let input = json!({ "campaignId": campaign, "amountFen": 5_500, "channel": "ONLINE_PLATFORM",
        "clientKey": uuid::Uuid::new_v4().to_string() });
    let donation = app.ok_as(&donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
    app.ok(CONFIRM, json!({ "i": { "id": donation } })).await;
    let pushed = next_message(&mut socket).await;
    assert_eq!(pushed["payload"]["data"]["campaignProgress"]["progress"]["raisedFen"], 5_500, "{pushed}");
}

// ---------------------------------------------------------------- Redis Sentinel

/// A private redis-server or redis-sentinel for one test, stopped when dropped.
struct RedisProcess {
    child: Option<tokio::process::Child>,
    port: u16,
}

impl RedisProcess {
    fn start(args: &[String], port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args(args)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (scripts/test installs Debian's redis-server and redis-sentinel)");
        Self { child: Some(child), port }
    }

    async fn command(&self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        let mut conn =
            tokio::time::timeout(std::time::Duration::from_secs(2), client.get_multiplexed_async_connection())
                .await
                .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
        cmd.query_async(&mut conn).await
    }

    async fn text(&self, cmd: &redis::Cmd) -> String {
        match self.command(cmd).await {
            Ok(value) => redis::from_redis_value::<String>(value).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Every key under `prefix`.
    async fn keys(&self, prefix: &str) -> std::collections::BTreeSet<String> {
        let value = self.command(redis::cmd("KEYS").arg(format!("{prefix}:*"))).await.expect("KEYS");
        redis::from_redis_value::<Vec<String>>(value).expect("keys").into_iter().collect()
    }

    /// The tag generations under `prefix` (the counters an invalidation increments).
    async fn generations(&self, prefix: &str) -> std::collections::BTreeMap<String, String> {
        let mut generations = std::collections::BTreeMap::new();
        for key in self.keys(&format!("{prefix}:gen")).await {
            generations.insert(key.clone(), self.text(redis::cmd("GET").arg(&key)).await);
        }
        generations
    }

    /// The master's port as the sentinel names it.
    async fn master_port(&self) -> Option<u16> {
        let value = self.command(redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg("incubase")).await.ok()?;
        let addr: Vec<String> = redis::from_redis_value(value).ok()?;
        addr.get(1)?.parse().ok()
    }

    /// How many replicas of `incubase` this sentinel knows (it learns them from the master's
    /// INFO, every 10 s): a failover needs one.
    async fn known_replicas(&self) -> usize {
        let Ok(value) = self.command(redis::cmd("SENTINEL").arg("replicas").arg("incubase")).await else { return 0 };
        redis::from_redis_value::<Vec<redis::Value>>(value).map(|r| r.len()).unwrap_or(0)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_args(port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// What `/ready` says of the cache.
async fn cache_state(app: &TestApp) -> String {
    let body: Value = app.client.get(app.url("/ready")).send().await.expect("ready").json().await.expect("json");
    body["cache"].as_str().unwrap_or_default().to_owned()
}

/// An organization's name as anonymous readers get it (cached).
async fn name_on(app: &TestApp, id: &Value) -> Value {
    let anonymous = crate::helpers::Credentials::anonymous();
    app.ok_as(&anonymous, ORG_NAME, json!({ "id": id })).await["node"]["name"].clone()
}

const ORG_NAME: &str = "query($id: ID!) { node(id: $id) { ... on Organization { name } } }";
const RENAME: &str =
    "mutation($id: ID!, $n: String!) { updateOrganization(input: { id: $id, name: $n }) { organization { name } } }";

/// A master, a replica and a sentinel of their own; two instances find the master through the
/// sentinel; the master dies, the sentinel promotes the replica, and both instances go on
/// serving with the shared cache and its invalidations, on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_failover_keeps_caches_and_invalidation_working() {
    use std::time::Duration;
    if !selected(Backend::Postgres) {
        return;
    }
    let (m, r, s) = (free_port(), free_port(), free_port());
    let mut master = RedisProcess::start(&redis_args(m, &[]), m);
    let replica = RedisProcess::start(&redis_args(r, &["--replicaof", "127.0.0.1", &m.to_string()]), r);
    let dir = std::env::temp_dir().join(format!("incubase-sentinel-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nbind 127.0.0.1\ndir {}\nsentinel monitor incubase 127.0.0.1 {m} 1\n\
             sentinel down-after-milliseconds incubase 1000\nsentinel failover-timeout incubase 10000\n",
            dir.display()
        ),
    )
    .expect("sentinel.conf");
    let sentinel = RedisProcess::start(&[conf.display().to_string(), "--sentinel".into()], s);
    let synced = crate::helpers::eventually(Duration::from_secs(30), || async {
        replica.text(redis::cmd("INFO").arg("replication")).await.contains("master_link_status:up")
            && sentinel.master_port().await == Some(m)
            && sentinel.known_replicas().await > 0
    })
    .await;
    assert!(synced, "the replica follows the master and the sentinel watches both");

    let url = format!("redis+sentinel://127.0.0.1:{s}/incubase");
    let sentinel_url = url.clone();
    let first = spawn_app_with(Backend::Postgres, move |settings| settings.redis_url = Some(sentinel_url)).await;
    let second = crate::helpers::spawn_second_instance(&first).await;
    let prefix = first.state.settings.cache_prefix.clone();
    assert_eq!(cache_state(&first).await, "redis");

    let id = create_org(&first, &[]).await;
    let before = name_on(&second, &id).await;
    assert!(before.is_string());
    assert!(!master.keys(&prefix).await.is_empty(), "the cache writes to the master Sentinel names");
    first.ok(RENAME, json!({ "id": id, "n": "哨兵之前" })).await;
    let renamed =
        crate::helpers::eventually(Duration::from_secs(3), || async { name_on(&second, &id).await == "哨兵之前" })
            .await;
    assert!(renamed, "invalidation reaches the other instance");

    // The master dies; the sentinel promotes the replica.
    master.kill();
    let promoted =
        crate::helpers::eventually(Duration::from_secs(30), || async { sentinel.master_port().await == Some(r) }).await;
    assert!(promoted, "the sentinel promoted the replica");
    let generations_before = replica.generations(&prefix).await;
    assert!(!generations_before.is_empty(), "the replica had the master's data");

    // Both instances serve throughout, and find the new master by themselves.
    for app in [&first, &second] {
        let back =
            crate::helpers::eventually(Duration::from_secs(10), || async { cache_state(app).await == "redis" }).await;
        assert!(back, "the cache is healthy again on the new master");
    }
    first.ok(RENAME, json!({ "id": id, "n": "哨兵之后" })).await;
    let renamed =
        crate::helpers::eventually(Duration::from_secs(5), || async { name_on(&second, &id).await == "哨兵之后" })
            .await;
    assert!(renamed, "invalidation still reaches the other instance after the failover");
    let generations_after = replica.generations(&prefix).await;
    assert_ne!(generations_after, generations_before, "the invalidation counted on the new master");
    let role = replica.text(redis::cmd("INFO").arg("replication")).await;
    assert!(role.contains("role:master"), "the replica is the master now: {role}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------- secret rotation

/// Another instance on `first`'s database with changed settings: its address, and the sender
/// that stops it.
async fn instance_with(
    first: &TestApp,
    change: impl FnOnce(&mut api::config::Settings),
) -> (String, api::state::AppState, tokio::sync::oneshot::Sender<()>) {
    let mut settings = (*first.state.settings).clone();
    settings.listen = "127.0.0.1:0".parse().expect("address");
    change(&mut settings);
    let app = api::startup::Application::build(settings).await.expect("instance starts");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        rx.await.ok();
    }));
    (address, state, tx)
}

/// Whether `address` takes `token` as a signed-in viewer.
async fn signed_in(client: &reqwest::Client, address: &str, token: &str) -> bool {
    let response = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ viewer { isAuthenticated } }" }))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    status == 200 && body["data"]["viewer"]["isAuthenticated"] == true
}

/// The two-step rotation of docs/operations.md: first every instance also accepts the new
/// secret, then every instance signs with it and still accepts the old one until the last
/// access token signed with it has expired. No token is refused at any step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_jwt_secret_refuses_no_token() {
    const NEW: &str = "rotated-secret-rotated-secret-rotated-0123456789";
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let old_token = app.manager.token.clone();

    // Step 1: the old secret signs, the new one is accepted too.
    let (step1, _, _stop1) = instance_with(&app, |s| s.jwt_previous_secrets = vec![NEW.to_owned()]).await;
    // Step 2: the new secret signs, the old one is accepted too.
    let (step2, step2_state, _stop2) = instance_with(&app, |s| {
        s.jwt_secret = Some(NEW.to_owned());
        s.jwt_previous_secrets = vec![crate::helpers::TEST_JWT_SECRET.to_owned()];
    })
    .await;
    let new_token =
        crate::helpers::new_account(&step2_state, "rotated", &[api::service::identity::Role::Donor]).await.token;

    for (address, token) in [(&step1, &old_token), (&step1, &new_token), (&step2, &old_token), (&step2, &new_token)] {
        assert!(signed_in(&app.client, address, token).await, "{address} accepts the token");
    }
    // Why step 1 exists: an instance that knows only the old secret refuses the new tokens,
    // and one that knows only the new secret refuses the old ones.
    assert!(!signed_in(&app.client, &app.address, &new_token).await);
    let (only_new, _, _stop3) = instance_with(&app, |s| s.jwt_secret = Some(NEW.to_owned())).await;
    assert!(!signed_in(&app.client, &only_new, &old_token).await);
    assert!(signed_in(&app.client, &only_new, &new_token).await);
}

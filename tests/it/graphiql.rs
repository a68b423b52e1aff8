//! GraphiQL as the binary serves it: every file from the server itself (it draws offline), a
//! query and a signed-in subscription run from the page in a real headless Chromium, and off
//! in production unless `INCUBASE_GRAPHIQL=true`.
use api::config::{Environment, Settings};
use api::service::identity::Role;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{Backend, Credentials, selected, spawn_app_with};

#[test]
fn graphiql_is_on_in_development_and_off_in_production_unless_asked_for() {
    let development = Settings::from_lookup(|_| None).expect("defaults");
    assert!(development.graphiql_enabled());
    let production =
        Settings::from_lookup(|n| (n == "INCUBASE_ENV").then(|| "production".to_owned())).expect("production");
    assert!(!production.graphiql_enabled());
    let asked = Settings::from_lookup(|n| match n {
        "INCUBASE_ENV" => Some("production".to_owned()),
        "INCUBASE_GRAPHIQL" => Some("true".to_owned()),
        _ => None,
    })
    .expect("asked for");
    assert!(asked.graphiql_enabled());
    let Err(err) = Settings::from_lookup(|n| (n == "INCUBASE_GRAPHIQL").then(|| "maybe".to_owned())) else {
        panic!("INCUBASE_GRAPHIQL=maybe is refused")
    };
    assert!(err.to_string().contains("INCUBASE_GRAPHIQL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_come_from_the_server() {
    if !selected(Backend::Sqlite) {
        return;
    }
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let page = app.client.get(format!("{}/", app.address)).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    let html = page.text().await.expect("html");
    // Nothing on the page points anywhere but this server.
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//unpkg"), "{html}");
    let sources: Vec<&str> = html.split("src=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert_eq!(sources.len(), 4, "{html}");
    let links = html.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).filter(|l| !l.starts_with("data:"));
    for source in sources.iter().copied().chain(links) {
        assert!(source.starts_with("/graphiql/"), "{source}");
        let file = app.client.get(format!("{}{source}", app.address)).send().await.expect("file");
        assert_eq!(file.status(), 200, "{source}");
        let kind = file.headers()["content-type"].to_str().expect("type").to_owned();
        assert!(kind.starts_with("text/javascript") || kind.starts_with("text/css"), "{source}: {kind}");
        assert!(file.headers()["cache-control"].to_str().expect("cc").contains("immutable"));
        assert!(file.bytes().await.expect("body").len() > 100, "{source}");
    }
    // A browser asking /graphql for a page gets GraphiQL too.
    let from_browser =
        app.client.get(format!("{}/graphql", app.address)).header("accept", "text/html").send().await.expect("get");
    assert!(from_browser.text().await.expect("html").contains("/graphiql/"));
    for missing in ["/graphiql/0.0.1/graphiql.min.js", "/graphiql/4.1.2/../Cargo.toml", "/graphiql/4.1.2/nothing.js"] {
        let answer = app.client.get(format!("{}{missing}", app.address)).send().await.expect("get");
        assert_eq!(answer.status(), 404, "{missing}");
    }

    // Production: off, and said so; on again when asked for.
    let production = spawn_app_with(Backend::Sqlite, |s| s.environment = Environment::Production).await;
    let page = production.client.get(format!("{}/", production.address)).send().await.expect("page");
    assert_eq!(page.status(), 404);
    let body: serde_json::Value = page.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    assert!(body["errors"][0]["message"].as_str().expect("message").contains("INCUBASE_GRAPHIQL"), "{body}");
    let from_browser = production
        .client
        .get(format!("{}/graphql", production.address))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    assert!(!from_browser.text().await.expect("body").contains("/graphiql/"), "no GraphiQL through /graphql either");
    let asked = spawn_app_with(Backend::Sqlite, |s| {
        s.environment = Environment::Production;
        s.graphiql = Some(true);
    })
    .await;
    let page = asked.client.get(format!("{}/", asked.address)).send().await.expect("page");
    assert_eq!(page.status(), 200);
}

/// The editor's CodeMirror inside `container` (a CSS selector), set to `text`.
fn set_editor(container: &str, text: &str) -> String {
    format!(
        "(() => {{ const el = document.querySelector({container} + ' .CodeMirror'); if (!el) return false; \
         el.CodeMirror.setValue({text}); return true; }})()",
        container = serde_json::to_string(container).expect("json"),
        text = serde_json::to_string(text).expect("json"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_queries_and_signed_in_subscriptions_offline() {
    if !selected(Backend::Sqlite) {
        return;
    }
    let Some(mut browser) = Browser::launch().await else { return };
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    crate::organizations::create(&app, json!({ "name": "离线图书角" })).await;
    let tab = browser.open(&format!("{}/", app.address)).await;
    browser.wait_for(&tab, "!!document.querySelector('.graphiql-query-editor .CodeMirror')").await;
    let query =
        browser.eval(&tab, "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()").await;
    assert!(query.as_str().expect("query").contains("organizations(first: 5)"), "the default query: {query}");
    browser.click(&tab, ".graphiql-execute-button").await;
    let answer = browser
        .wait_for(
            &tab,
            "(() => { const r = document.querySelector('.graphiql-response'); \
             return r && r.innerText.includes('离线图书角') && r.innerText; })()",
        )
        .await;
    assert!(answer.as_str().expect("answer").contains("\"totalCount\": 1"), "{answer}");

    // A subscription over the WebSocket, signed in with the headers editor's Authorization.
    let space = crate::spaces::space(&app, "离线日历会议室", 12, json!({ "requiresApproval": true })).await["id"]
        .as_str()
        .expect("space")
        .to_owned();
    let requester = app.account("requester", &[Role::Donor]).await;
    let subscription = format!(
        "subscription {{ spaceCalendar(spaceId: \"{space}\", from: \"{}\", to: \"{}\") {{ eventType booking {{ status }} }} }}",
        crate::spaces::at(0, 0, 0),
        crate::spaces::at(30, 0, 0),
    );
    assert_eq!(browser.eval(&tab, &set_editor(".graphiql-query-editor", &subscription)).await, true);
    // GraphiQL parses the editor's text after a short debounce and picks the transport (HTTP or
    // the WebSocket) from that parse: wait until it has seen a subscription.
    browser
        .wait_for(
            &tab,
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.documentAST\
             ?.definitions?.[0]?.operation === 'subscription'",
        )
        .await;
    browser.click(&tab, "button[data-name=headers]").await;
    let headers = json!({ "Authorization": format!("Bearer {}", requester.token) }).to_string();
    let set =
        browser.wait_for(&tab, &set_editor(".graphiql-editor-tool .graphiql-editor:not(.hidden)", &headers)).await;
    assert_eq!(set, true);
    browser.click(&tab, ".graphiql-execute-button").await;
    // The page has subscribed once its socket is open; then the requester asks for the room.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !browser.requests.iter().any(|url| url.starts_with("ws://") && url.ends_with("/graphql/ws")) {
        if tokio::time::Instant::now() >= deadline {
            let shows = browser.eval(&tab, "document.querySelector('.graphiql-response')?.innerText").await;
            panic!("the page opened no WebSocket: {:?}\nthe response pane shows: {shows}", browser.requests);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        browser.eval(&tab, "1").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let request = app
        .gql_as(
            &Credentials::account(&requester),
            "mutation($i: CreateBookingInput!) { createBooking(input: $i) { booking { status } } }",
            json!({ "i": { "spaceId": space, "startsAt": crate::spaces::at(3, 10, 0), "endsAt": crate::spaces::at(3, 11, 0),
                "attendees": 4, "purpose": "读书会" } }),
        )
        .await;
    assert_eq!(request["data"]["createBooking"]["booking"]["status"], "PENDING", "{request}");
    // Only the signed-in requester is told of a request: the page signed in.
    browser
        .wait_for(&tab, "document.querySelector('.graphiql-response').innerText.includes('booking.requested')")
        .await;

    // Every request the page made went to this server.
    let ws = app.address.replacen("http://", "ws://", 1);
    let elsewhere: Vec<&String> = browser
        .requests
        .iter()
        .filter(|url| !url.starts_with(&app.address) && !url.starts_with(&ws) && !url.starts_with("data:"))
        .collect();
    assert!(elsewhere.is_empty(), "requests left the server: {elsewhere:?}");
    assert!(browser.requests.len() >= 6, "the page's files, the query and the socket: {:?}", browser.requests);
    assert!(browser.errors.is_empty(), "the page ran without errors: {:#?}", browser.errors);
}

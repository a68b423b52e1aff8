//! Partner frontends in browsers: CORS for allowed and disallowed origins (GET, POST and the
//! WebSocket upgrade), publishable keys bound to their origins, the refusal of secret keys
//! sent from web pages, and the per-address limits of publishable keys.
use api::config::{CorsOrigins, Settings};
use api::service::identity::Role;
use chrono::Duration;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{Backend, Credentials, TestApp, selected, spawn_app_with};

/// The federation's own site: listed in `INCUBASE_CORS_ORIGINS`.
pub const SITE: &str = "https://www.xmwomen.org.cn";
/// A partner organization's site: allowed only through its publishable key.
pub const PARTNER: &str = "https://sunflower.example.org";
const STRANGER: &str = "https://evil.example.com";

pub const CREATE_KEY: &str = r#"
mutation($i: CreateApiKeyInput!) {
  createApiKey(input: $i) { secret apiKey { id prefix scopes publishable allowedOrigins } }
}"#;
const REVOKE_KEY: &str = "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { revokedAt } } }";
const VIEWER: &str = "{ viewer { partner { name scopes publishable } } }";

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn site_settings(s: &mut Settings) {
    s.cors_origins = CorsOrigins::List(vec![SITE.to_owned()]);
}

/// One test per backend with `site_settings` (plus `extra`).
macro_rules! partner_tests {
    ($( async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if selected(Backend::Sqlite) {
                        run(spawn_app_with(Backend::Sqlite, site_settings).await).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if selected(Backend::Postgres) {
                        run(spawn_app_with(Backend::Postgres, site_settings).await).await;
                    }
                }
            }
        )*
    };
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"].as_str().unwrap_or_default()
}

/// A browser's preflight before a JSON POST with credentials.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,authorization,x-api-key")
        .send()
        .await
        .expect("sent")
}

/// A POST as a page of `origin` would send it, with an optional key.
async fn post_from(
    app: &TestApp,
    origin: Option<&str>,
    key: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, HeaderMap, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("sent");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.expect("json"))
}

async fn get_from(app: &TestApp, origin: &str, query: &str) -> (u16, HeaderMap, Value) {
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .header("origin", origin)
        .header("accept", "application/json")
        .send()
        .await
        .expect("sent");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.expect("json"))
}

/// An admin issues a key through the API; returns (secret, global id).
pub async fn issue_key(app: &TestApp, input: Value) -> (String, String) {
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let issued = app.ok_as(&admin, CREATE_KEY, json!({ "i": input })).await;
    let key = &issued["createApiKey"];
    (key["secret"].as_str().expect("secret").to_owned(), key["apiKey"]["id"].as_str().expect("id").to_owned())
}

/// Opens the subscription socket as a page of `origin` would; the upgrade's status or the
/// connected socket.
async fn ws_from(
    app: &TestApp,
    origin: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    request.headers_mut().insert("Origin", origin.parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("websocket: {other}"),
    }
}

/// Sends connection_init with `payload`: whether the server acknowledged it.
async fn init_acknowledged(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    payload: Value,
) -> bool {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let init = json!({ "type": "connection_init", "payload": payload }).to_string();
    socket.send(Message::text(init)).await.expect("init");
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.expect("an answer");
        match next {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                if message["type"] == "ping" {
                    continue;
                }
                return message["type"] == "connection_ack";
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return false,
        }
    }
}

partner_tests! {
    async fn preflights_and_answers_carry_cors_headers_for_allowed_origins_only(app) {
        // The configured site: a 204 preflight naming what the page may send.
        let response = preflight(&app, SITE).await;
        assert_eq!(response.status().as_u16(), 204);
        let h = response.headers();
        assert_eq!(header(h, "access-control-allow-origin"), Some(SITE));
        let methods = header(h, "access-control-allow-methods").expect("methods");
        assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
        let allowed = header(h, "access-control-allow-headers").expect("headers");
        for name in ["content-type", "authorization", "x-api-key"] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert_eq!(header(h, "access-control-max-age"), Some("600"));
        assert!(header(h, "vary").is_some_and(|v| v.contains("Origin")));
        assert!(h.get("access-control-allow-credentials").is_none(), "no cookies, no credentials");

        // A stranger's preflight: no CORS header at all, so the browser sends nothing.
        let response = preflight(&app, STRANGER).await;
        assert_eq!(response.status().as_u16(), 403);
        assert!(response.headers().get("access-control-allow-origin").is_none());
        assert!(response.headers().get("access-control-allow-methods").is_none());

        // Actual requests: the site may read the answers, the stranger's browser may not.
        let query = "{ organizations { totalCount } }";
        let (status, h, body) = post_from(&app, Some(SITE), None, query, json!({})).await;
        assert_eq!((status, header(&h, "access-control-allow-origin")), (200, Some(SITE)), "{body}");
        assert!(header(&h, "access-control-expose-headers").is_some_and(|v| v.contains("retry-after")));
        assert!(header(&h, "vary").is_some_and(|v| v.contains("Origin")));
        let (_, h, _) = post_from(&app, Some(STRANGER), None, query, json!({})).await;
        assert!(h.get("access-control-allow-origin").is_none());
        let (status, h, body) = get_from(&app, SITE, query).await;
        assert_eq!((status, header(&h, "access-control-allow-origin")), (200, Some(SITE)));
        assert_eq!(body["data"]["organizations"]["totalCount"], 0);
        assert!(header(&h, "vary").is_some_and(|v| v.contains("Origin")), "cached GETs vary by origin");
        let (_, h, _) = get_from(&app, STRANGER, query).await;
        assert!(h.get("access-control-allow-origin").is_none());
        // Same-origin pages (GraphiQL) and non-browsers need no CORS header.
        let (status, h, _) = post_from(&app, None, None, query, json!({})).await;
        assert_eq!(status, 200);
        assert!(h.get("access-control-allow-origin").is_none());

        // The WebSocket upgrade checks the same list.
        let mut socket = ws_from(&app, SITE).await.expect("the site may subscribe");
        assert!(init_acknowledged(&mut socket, json!({})).await);
        assert_eq!(ws_from(&app, STRANGER).await.err(), Some(403), "a stranger's page may not");
    }

    async fn publishable_keys_open_their_own_origins_and_only_them(app) {
        assert_eq!(preflight(&app, PARTNER).await.status().as_u16(), 403, "not allowed before the key exists");
        let (secret, id) = issue_key(&app, json!({ "name": "向日葵官网", "publishable": true,
            "scopes": ["DONATE", "REGISTER"], "allowedOrigins": [format!("{PARTNER}/"), PARTNER] })).await;
        assert!(secret.starts_with("ib_pub_"), "recognisable as meant for pages: {secret}");

        // The key's origin is allowed at once: preflight, POST, GET and WebSocket.
        let response = preflight(&app, PARTNER).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(header(response.headers(), "access-control-allow-origin"), Some(PARTNER));
        let (status, h, body) = post_from(&app, Some(PARTNER), Some(&secret), VIEWER, json!({})).await;
        assert_eq!((status, header(&h, "access-control-allow-origin")), (200, Some(PARTNER)), "{body}");
        assert_eq!(body["data"]["viewer"]["partner"]["publishable"], true);
        assert_eq!(body["data"]["viewer"]["partner"]["scopes"], json!(["DONATE", "READ", "REGISTER"]));
        let (status, h, _) = get_from(&app, PARTNER, "{ campaigns { totalCount } }").await;
        assert_eq!((status, header(&h, "access-control-allow-origin")), (200, Some(PARTNER)));
        let mut socket = ws_from(&app, PARTNER).await.expect("upgrade from the key's origin");
        assert!(init_acknowledged(&mut socket, json!({ "apiKey": secret })).await);

        // The key is refused on any other site, even one the API allows, with a reason the
        // page can read.
        let (status, h, body) = post_from(&app, Some(SITE), Some(&secret), VIEWER, json!({})).await;
        assert_eq!((status, code(&body), reason(&body)), (403, "FORBIDDEN", "ORIGIN_NOT_ALLOWED"), "{body}");
        assert_eq!(header(&h, "access-control-allow-origin"), Some(SITE), "readable by the page");
        let mut socket = ws_from(&app, SITE).await.expect("the site itself may connect");
        assert!(!init_acknowledged(&mut socket, json!({ "apiKey": secret })).await, "but not with this key");
        // Outside browsers (no Origin) the key works: it is public anyway, hence its scopes.
        let (status, _, body) = post_from(&app, None, Some(&secret), VIEWER, json!({})).await;
        assert_eq!((status, body["data"]["viewer"]["partner"]["name"].as_str()), (200, Some("向日葵官网")));

        // Revoked: its origin closes at once.
        app.ok_as(&Credentials::account(&app.account("admin", &[Role::Admin]).await), REVOKE_KEY,
            json!({ "i": { "id": id } })).await;
        assert_eq!(preflight(&app, PARTNER).await.status().as_u16(), 403);
        assert_eq!(ws_from(&app, PARTNER).await.err(), Some(403));
    }

    async fn secret_keys_sent_from_web_pages_are_refused_with_a_clear_error(app) {
        let (secret, _) = issue_key(&app, json!({ "name": "对账系统", "scopes": ["RECONCILE"] })).await;
        assert!(!secret.starts_with("ib_pub_"));
        let (status, h, body) = post_from(&app, Some(SITE), Some(&secret), VIEWER, json!({})).await;
        assert_eq!((status, code(&body), reason(&body)), (403, "FORBIDDEN", "SECRET_KEY_IN_BROWSER"), "{body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("publishable") && message.contains(SITE), "says what to do instead: {message}");
        assert_eq!(header(&h, "access-control-allow-origin"), Some(SITE), "the page can show it");
        let (status, _, body) = get_from(&app, SITE, "{ campaigns { totalCount } }").await;
        assert_eq!(status, 200, "without the key the same page reads public data: {body}");
        let mut socket = ws_from(&app, SITE).await.expect("upgrade");
        assert!(!init_acknowledged(&mut socket, json!({ "apiKey": secret })).await, "nor over WebSocket");

        // From a server (no Origin) or the API's own pages, the key works.
        let (status, _, body) = post_from(&app, None, Some(&secret), VIEWER, json!({})).await;
        assert_eq!((status, body["data"]["viewer"]["partner"]["scopes"].clone()), (200, json!(["READ", "RECONCILE"])));
        let own = app.address.clone();
        let (status, _, body) = post_from(&app, Some(&own), Some(&secret), VIEWER, json!({})).await;
        assert_eq!(status, 200, "same origin: {body}");
    }

    async fn publishable_keys_hold_only_scopes_safe_to_expose(app) {
        let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
        for (input, field, why) in [
            (json!({ "name": "x", "publishable": true, "scopes": ["RECONCILE"], "allowedOrigins": [PARTNER] }),
                "scopes", "SCOPE_NOT_PUBLISHABLE"),
            (json!({ "name": "x", "publishable": true, "scopes": ["DONATE"] }), "allowedOrigins", "ORIGINS_REQUIRED"),
            (json!({ "name": "x", "publishable": true, "allowedOrigins": ["https://a.example.org/donate"] }),
                "allowedOrigins", "INVALID_ORIGIN"),
            (json!({ "name": "x", "publishable": true, "allowedOrigins": ["*"] }), "allowedOrigins", "INVALID_ORIGIN"),
            (json!({ "name": "x", "allowedOrigins": [PARTNER] }), "allowedOrigins", "ORIGINS_NEED_PUBLISHABLE_KEY"),
        ] {
            let body = app.gql_as(&admin, CREATE_KEY, json!({ "i": input })).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{input}: {body}");
            assert_eq!((body["errors"][0]["extensions"]["field"].as_str(), reason(&body)), (Some(field), why), "{input}");
        }
        let listed = app.ok_as(&admin, "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!(listed["apiKeys"]["totalCount"], 0, "nothing was issued");

        // The database itself refuses a publishable key that could reconcile.
        let (_, id) = issue_key(&app, json!({ "name": "页面", "publishable": true, "allowedOrigins": [PARTNER] })).await;
        let row = api::graphql::ids::parse(&id).expect("id").1;
        use sea_orm::ConnectionTrait;
        let sneaky = format!("UPDATE api_keys SET scopes = 'READ,RECONCILE' WHERE id = {row}");
        let refused = app.state.db.execute_unprepared(&sneaky).await.expect_err("refused by the database");
        assert!(refused.to_string().contains("api_keys_publishable_never_reconcile"), "{refused}");
        let insert = "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_by, created_at, publishable, allowed_origins) \
                      VALUES ('p', 'ib_pub_x', 'h', 'RECONCILE', 0, CURRENT_TIMESTAMP, TRUE, '')";
        let refused = app.state.db.execute_unprepared(insert).await.expect_err("inserts too");
        assert!(refused.to_string().contains("api_keys_publishable_never_reconcile"), "{refused}");
    }

    async fn publishable_keys_cannot_undo_what_their_visitors_did(app) {
        let org = crate::events::organizer(&app).await;
        let event = crate::events::published_event(&app, &org, Duration::days(3), json!({})).await;
        let (secret, _) = issue_key(&app, json!({ "name": "页面", "publishable": true, "scopes": ["REGISTER"],
            "allowedOrigins": [PARTNER] })).await;
        let input = json!({ "input": { "eventId": event, "privacyConsent": true,
            "guest": { "name": "陈淑芬", "phone": "139-5920-0002" } } });
        let (status, _, body) = post_from(&app, Some(PARTNER), Some(&secret), crate::events::REGISTER, input).await;
        assert_eq!(status, 200);
        let registration = body["data"]["register"]["registration"]["id"].clone();
        assert_eq!(body["data"]["register"]["registration"]["status"], "CONFIRMED", "{body}");
        // Anyone holding the page's key could otherwise cancel every guest it registered.
        let cancel = "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { status } } }";
        let (_, _, body) = post_from(&app, Some(PARTNER), Some(&secret), cancel, json!({ "i": { "id": registration } })).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
    }
}

/// Requests from another loopback address (127.0.0.2 reaches a server on 127.0.0.1).
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishable_keys_are_limited_per_visitor_address() {
    if !selected(Backend::Sqlite) {
        return;
    }
    let app = spawn_app_with(Backend::Sqlite, |s| {
        site_settings(s);
        s.limits.publishable_key_per_address_per_minute = 3;
        s.limits.anonymous_mutations_per_minute = 1;
    })
    .await;
    let (secret, _) = issue_key(
        &app,
        json!({ "name": "页面", "publishable": true, "scopes": ["DONATE"], "allowedOrigins": [PARTNER] }),
    )
    .await;
    let send = |client: reqwest::Client, query: &'static str| {
        let (url, key) = (app.url("/graphql"), secret.clone());
        async move {
            let response = client
                .post(url)
                .header("origin", PARTNER)
                .header("x-api-key", key)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (status, response.headers().clone(), response.json::<Value>().await.expect("json"))
        }
    };
    let first = client_from([127, 0, 0, 1]);
    for _ in 0..3 {
        assert_eq!(send(first.clone(), "{ campaigns { totalCount } }").await.0, 200);
    }
    let (status, h, body) = send(first.clone(), "{ campaigns { totalCount } }").await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
    assert!(header(&h, "retry-after").is_some());
    assert_eq!(header(&h, "access-control-allow-origin"), Some(PARTNER), "the page can read the wait");
    // Another visitor of the same site is not held back by the first.
    let second = client_from([127, 0, 0, 2]);
    assert_eq!(send(second.clone(), "{ campaigns { totalCount } }").await.0, 200);

    // Its mutations count like anonymous ones: one per minute per address here.
    let third = client_from([127, 0, 0, 3]);
    let pledge = "mutation { donate(input: { campaignId: \"Q2FtcGFpZ246OTk5\", amountFen: 100, channel: ONLINE_PLATFORM, clientKey: \"k\" }) { donation { id } } }";
    let (status, _, body) = send(third.clone(), pledge).await;
    assert_eq!(status, 200, "the first runs (and fails on the unknown campaign): {body}");
    let (status, _, body) = send(third, pledge).await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
}

#[test]
fn origins_are_read_as_browsers_send_them() {
    use api::config::normalize_origin;
    for (raw, canonical) in [
        ("https://www.XMwomen.org.cn/", "https://www.xmwomen.org.cn"),
        ("HTTPS://example.org:443", "https://example.org"),
        ("http://example.org:80", "http://example.org"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://xn--fiqs8s.example", "https://xn--fiqs8s.example"),
    ] {
        assert_eq!(normalize_origin(raw).as_deref(), Ok(canonical), "{raw}");
    }
    for bad in [
        "www.example.org",
        "ftp://example.org",
        "https://example.org/path",
        "https://*.example.org",
        "null",
        "https://user@example.org",
        "https://例子.中国",
        "https://example.org:99999",
        "https://",
    ] {
        assert!(normalize_origin(bad).is_err(), "{bad} is not an origin");
    }
    let settings = Settings::from_lookup(|n| (n == "INCUBASE_CORS_ORIGINS").then(|| format!("{SITE}, {PARTNER}/")))
        .expect("settings");
    assert_eq!(settings.cors_origins, CorsOrigins::List(vec![SITE.to_owned(), PARTNER.to_owned()]));
    let any = Settings::from_lookup(|n| (n == "INCUBASE_CORS_ORIGINS").then(|| "*".to_owned())).expect("settings");
    assert_eq!(any.cors_origins, CorsOrigins::Any);
    let err = Settings::from_lookup(|n| (n == "INCUBASE_CORS_ORIGINS").then(|| "https://a.org/x".to_owned())).err();
    assert!(err.is_some_and(|e| e.to_string().contains("INCUBASE_CORS_ORIGINS")));
}

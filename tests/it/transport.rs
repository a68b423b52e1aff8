//! GraphQL over HTTP: content types, methods, status codes, limits.
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

const GQL_RESPONSE: &str = "application/graphql-response+json";

async fn post(app: &TestApp, content_type: &str, accept: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", content_type)
        .header("accept", accept)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn organization_count(app: &TestApp) -> i64 {
    app.ok("{ organizations { totalCount } }", json!({})).await["organizations"]["totalCount"].as_i64().expect("count")
}

const MUTATION: &str = r#"mutation { createOrganization(input: { name: "跨站请求" }) { organization { id } } }"#;

#[tokio::test]
async fn content_types_and_methods() {
    let app = spawn_app(Backend::Sqlite).await;
    let mutation = json!({ "query": MUTATION }).to_string();

    let (status, body) = post(&app, "text/plain", "application/json", mutation.clone()).await;
    assert_eq!(status, 415, "text/plain is refused: {body}");
    assert_eq!(code(&body), "UNSUPPORTED_MEDIA_TYPE");
    let (status, _) = post(&app, "application/x-www-form-urlencoded", "*/*", "query=%7B__typename%7D").await;
    assert_eq!(status, 415);
    assert_eq!(organization_count(&app).await, 0, "nothing was executed");

    let get = |query: &str| {
        app.client.get(app.url("/graphql")).query(&[("query", query)]).header("accept", "application/json").send()
    };
    let response = get(MUTATION).await.expect("sent");
    assert_eq!(response.status().as_u16(), 405, "mutation over GET");
    assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    assert_eq!(organization_count(&app).await, 0, "the GET mutation did not run");

    let response = get("{ organizations(first: 1) { totalCount } }").await.expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["organizations"]["totalCount"], 0);

    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ organizations { totalCount } }"), ("variables", "{not json")])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 400);

    let response = app
        .client
        .put(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(mutation)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 405);

    let page = app.client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains("graphiql"), "GraphiQL at /");
}

#[tokio::test]
async fn request_errors_follow_the_graphql_response_media_type() {
    let app = spawn_app(Backend::Sqlite).await;
    // Unparseable JSON: 400 whatever the client accepts.
    let (status, body) = post(&app, "application/json", "application/json", "{\"query\": ").await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"));
    let (status, _) = post(&app, "application/json", GQL_RESPONSE, json!({ "query": 42 }).to_string()).await;
    assert_eq!(status, 400, "a non-string query");

    // A GraphQL syntax error.
    let broken = json!({ "query": "{ organizations { " }).to_string();
    let (status, body) = post(&app, "application/json", GQL_RESPONSE, broken.clone()).await;
    assert_eq!((status, code(&body)), (400, "GRAPHQL_PARSE_FAILED"));
    assert!(body.get("data").is_none(), "request errors carry no data: {body}");
    let (status, body) = post(&app, "application/json", "application/json", broken).await;
    assert_eq!((status, code(&body)), (200, "GRAPHQL_PARSE_FAILED"), "legacy JSON clients get 200");

    // A validation error.
    let invalid = json!({ "query": "{ organizations { noSuchField } }" }).to_string();
    let (status, body) = post(&app, "application/json", GQL_RESPONSE, invalid).await;
    assert_eq!((status, code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"));
    assert!(body.get("data").is_none());

    // An error during execution is not a request error: 200 with data.
    let exec = json!({ "query": "{ organizations(first: 1000) { totalCount } }" }).to_string();
    let (status, body) = post(&app, "application/json", GQL_RESPONSE, exec).await;
    assert_eq!((status, code(&body)), (200, "BAD_USER_INPUT"));
    assert!(body.get("data").is_some());
}

#[tokio::test]
async fn limits_on_body_batch_depth_and_complexity() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_body_bytes = 2048;
        s.limits.max_batch = 3;
    })
    .await;
    let big = json!({ "query": format!("{{ organizations {{ totalCount }} }} # {}", "x".repeat(4000)) }).to_string();
    let (status, body) = post(&app, "application/json", "application/json", big.clone()).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"));

    // Without a Content-Length (chunked), the bytes actually read are what count.
    let stream = futures::stream::iter(
        big.into_bytes().chunks(100).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let (status, _) = post(&app, "application/json", "application/json", reqwest::Body::wrap_stream(stream)).await;
    assert_eq!(status, 413, "chunked bodies are limited too");

    let op = json!({ "query": "{ organizations { totalCount } }" });
    let (status, body) = post(&app, "application/json", "application/json", json!([op, op]).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2), "a batch answers with an array");
    let (status, body) = post(&app, "application/json", "application/json", json!([op, op, op, op]).to_string()).await;
    assert_eq!((status, code(&body)), (400, "BATCH_TOO_LARGE"));

    let nested = format!("{}{}", "{ a ".repeat(80), "}".repeat(80));
    let (status, body) = post(&app, "application/json", GQL_RESPONSE, json!({ "query": nested }).to_string()).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_DEEP"));
}

#[tokio::test]
async fn depth_and_complexity_limits_are_validation_errors() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_depth = 4;
        s.limits.max_complexity = 20;
    })
    .await;
    let (status, body) = post(
        &app,
        "application/json",
        GQL_RESPONSE,
        json!({ "query": "{ organizations(first: 1) { edges { node { stageHistory { note } } } } }" }).to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_DEEP"), "{body}");
    let wide: String = (0..30).map(|i| format!("a{i}: organizations {{ totalCount }} ")).collect();
    let (status, body) =
        post(&app, "application/json", GQL_RESPONSE, json!({ "query": format!("{{ {wide} }}") }).to_string()).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
}

backend_tests! {
    async fn health_ready_and_metrics(app) {
        let health: Value = app.client.get(app.url("/health")).send().await.expect("sent").json().await.expect("json");
        assert_eq!(health["status"], "ok");
        let ready = app.client.get(app.url("/ready")).send().await.expect("sent");
        assert_eq!(ready.status().as_u16(), 200);
        let ready: Value = ready.json().await.expect("json");
        assert_eq!(ready["database"], "ok");
        let expected_cache = if app.backend == Backend::Postgres { "redis" } else { "memory" };
        assert_eq!(ready["cache"], expected_cache);

        app.ok("{ organizations { totalCount } }", json!({})).await;
        let metrics = app.client.get(app.url("/metrics")).send().await.expect("sent").text().await.expect("text");
        let line = metrics.lines().find(|l| l.starts_with("incubase_sql_statements_total ")).expect("sql counter");
        let value: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number");
        assert!(value > 0, "statements were counted: {metrics}");
    }

    async fn metrics_show_latency_and_statements_per_operation(app) {
        let q = "query DirectoryPage { organizations(first: 5) { edges { node { name stageHistory { toStage } } } } }";
        let before = app.sql_statements();
        app.ok_as(&crate::helpers::Credentials::anonymous(), q, json!({})).await;
        let ran = app.sql_statements() - before;
        let metrics = app.client.get(app.url("/metrics")).send().await.expect("sent").text().await.expect("text");
        let sample = |name: &str| -> f64 {
            metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{operation=\"DirectoryPage\"}} ")))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("{name} for DirectoryPage in {metrics}"))
        };
        assert_eq!(sample("incubase_graphql_operation_duration_seconds_count"), 1.0);
        assert!(sample("incubase_graphql_operation_duration_seconds_sum") > 0.0);
        assert_eq!(sample("incubase_graphql_operation_sql_statements_count"), 1.0);
        // The page and its DataLoader batches (run in tasks of their own) count for the operation.
        assert!(ran > 0, "the page read the database");
        #[allow(clippy::cast_precision_loss)]
        let expected = ran as f64;
        assert_eq!(sample("incubase_graphql_operation_sql_statements_sum"), expected, "{metrics}");
        assert!(metrics.contains("# TYPE incubase_graphql_operation_duration_seconds histogram"));
    }

    async fn graceful_shutdown_finishes_and_stops(app) {
        let mut app = app;
        app.ok("{ organizations { totalCount } }", json!({})).await;
        app.stop().await;
        let refused = app.client.get(app.url("/health")).send().await;
        assert!(refused.is_err(), "no longer listening after shutdown");
    }
}

/// Sends `head` right away, then drips `drip` one byte every 100 ms; returns what the server
/// answered before closing, and how long it took to close.
async fn drip(app: &TestApp, head: &str, drip: &str) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("connects");
    let started = std::time::Instant::now();
    socket.write_all(head.as_bytes()).await.expect("head sent");
    let (mut reader, mut writer) = socket.into_split();
    let drip = drip.as_bytes().to_vec();
    let dripping = tokio::spawn(async move {
        for byte in drip {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
        }
        // Keep the write half open: dropping it would send a FIN the server answers by closing.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(15), reader.read_to_end(&mut answer)).await;
    dripping.abort();
    assert!(read.is_ok(), "the server closed the connection");
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.header_read_timeout = std::time::Duration::from_millis(800);
        s.limits.body_read_timeout = std::time::Duration::from_millis(800);
    })
    .await;
    let headers = "X-Slow: ".to_owned() + &"a".repeat(100);
    let (answer, took) = drip(&app, "GET /health HTTP/1.1\r\nhost: x\r\n", &headers).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "dripped headers: {answer:?}");
    assert!(took < std::time::Duration::from_secs(5), "closed at the header deadline, not after {took:?}");

    // A connection that sends nothing at all is closed too.
    let (answer, took) = drip(&app, "", "").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "silent connection: {answer:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");

    let body = json!({ "query": format!("{{ organizations {{ totalCount }} }} # {}", "x".repeat(200)) }).to_string();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (answer, took) = drip(&app, &head, &body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "dripped body: {answer:?}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");

    // Kept-alive connections are not cut while idle between requests, and sockets upgraded to
    // WebSocket are not timed as headers.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
    for _ in 0..2 {
        let status = client.get(app.url("/health")).send().await.expect("kept-alive request").status();
        assert_eq!(status.as_u16(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    }
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request =
        format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1)).into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    socket.send(Message::text(json!({ "type": "connection_init" }).to_string())).await.expect("init");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    socket.send(Message::text(json!({ "type": "ping" }).to_string())).await.expect("still open");
    let mut saw_pong = false;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(std::time::Duration::from_secs(3), socket.next()).await {
        if message.to_text().is_ok_and(|t| t.contains("pong")) {
            saw_pong = true;
            break;
        }
    }
    assert!(saw_pong, "the WebSocket outlives the header deadline");
    let status = client.get(app.url("/health")).send().await.expect("healthy").status();
    assert_eq!(status.as_u16(), 200);
}

fn reused(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("incubase_parsed_documents_reused_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("reuse counter")
}

#[tokio::test]
async fn a_reused_document_still_follows_each_request() {
    use crate::helpers::Credentials;
    // Two servers in one process share the parsed documents; each keeps its own limits.
    let roomy = spawn_app(Backend::Sqlite).await;
    let strict = spawn_app_with(Backend::Sqlite, |s| s.limits.max_depth = 4).await;
    let metrics = |app: &TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move { reused(&client.get(url).send().await.expect("sent").text().await.expect("text")) }
    };
    for name in ["复用甲", "复用乙"] {
        crate::organizations::create(&roomy, json!({ "name": name })).await;
    }

    // The same text with other variables: each request answers its own.
    let page =
        "query ReusedPage($n: Int) { organizations(first: $n) { edges { node { name stageHistory { note } } } } }";
    let before = metrics(&roomy).await;
    let one = roomy.ok(page, json!({ "n": 1 })).await;
    let two = roomy.ok(page, json!({ "n": 2 })).await;
    assert_eq!(one["organizations"]["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(two["organizations"]["edges"].as_array().map(Vec::len), Some(2));
    assert!(metrics(&roomy).await > before, "the second request reused the parsed text");

    // The other server's own depth limit still refuses the text the first one kept.
    let (status, body) = post(&strict, "application/json", GQL_RESPONSE, json!({ "query": page }).to_string()).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_DEEP"), "{body}");

    // Each request's own viewer: the same text answers the manager and an anonymous visitor apart.
    let who = "query ReusedViewer { viewer { isAuthenticated } }";
    let signed_in = roomy.ok(who, json!({})).await;
    let anonymous = roomy.ok_as(&Credentials::anonymous(), who, json!({})).await;
    assert_eq!(signed_in["viewer"]["isAuthenticated"], true);
    assert_eq!(anonymous["viewer"]["isAuthenticated"], false);

    // A mutation parsed for a POST is still refused over GET, and still runs only when POSTed.
    let create = r#"mutation ReusedCreate { createOrganization(input: { name: "复用丙" }) { organization { name } } }"#;
    roomy.ok(create, json!({})).await;
    let response = roomy
        .client
        .get(roomy.url("/graphql"))
        .query(&[("query", create)])
        .header("accept", "application/json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 405, "mutation over GET");
    assert_eq!(organization_count(&roomy).await, 3, "the GET mutation did not run");

    // Text that does not parse is never kept: it fails the same way every time.
    let broken = json!({ "query": "query ReusedBroken { organizations { " }).to_string();
    for _ in 0..2 {
        let (status, body) = post(&roomy, "application/json", GQL_RESPONSE, broken.clone()).await;
        assert_eq!((status, code(&body)), (400, "GRAPHQL_PARSE_FAILED"));
    }
}

#[tokio::test]
async fn request_errors_are_coded_alike_with_and_without_the_cache_collector() {
    use api::service::identity::Role;
    // Anonymous queries run on the full schema (they may be cached); a signed-in person's run
    // on the extension-free one, whose request errors the full schema codes afterwards.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_depth = 4;
        s.limits.max_complexity = 20;
    })
    .await;
    let person = app.account("lean", &[Role::Donor]).await;
    let send = |token: Option<&str>, body: Value| {
        let mut request = app.client.post(app.url("/graphql")).header("accept", GQL_RESPONSE).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let wide: String = (0..30).map(|i| format!("a{i}: organizations {{ totalCount }} ")).collect();
    let two = "query A { __typename } query B { __typename }";
    let cases = [
        (
            json!({ "query": "{ organizations(first: 1) { edges { node { stageHistory { note } } } } }" }),
            "QUERY_TOO_DEEP",
        ),
        (json!({ "query": format!("{{ {wide} }}") }), "QUERY_TOO_COMPLEX"),
        (json!({ "query": "{ noSuchField }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({ "query": "query($n: Int!) { organizations(first: $n) { totalCount } }" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (json!({ "query": two }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "query": two, "operationName": "C" }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "query": "{ organizations { totalCount }" }), "GRAPHQL_PARSE_FAILED"),
    ];
    for (body, expected) in cases {
        let (status, anonymous) = send(None, body.clone()).await;
        assert_eq!((status, code(&anonymous)), (400, expected), "anonymous {body}: {anonymous}");
        assert!(anonymous.get("data").is_none(), "a request error has no data: {anonymous}");
        let (status, signed_in) = send(Some(&person.token), body.clone()).await;
        assert_eq!((status, code(&signed_in)), (400, expected), "signed in {body}: {signed_in}");
        assert_eq!(signed_in["errors"], anonymous["errors"], "the same errors either way for {body}");
    }
    // A field's error on the extension-free schema is an execution error: 200, data, a path.
    let (status, body) = send(
        Some(&person.token),
        json!({ "query": r#"mutation { createOrganization(input: { name: "" }) { organization { id } } }"# }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["createOrganization"]), "{body}");
    assert_ne!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    // A valid query signed in answers as before.
    let (status, body) = send(Some(&person.token), json!({ "query": "{ viewer { account { email } } }" })).await;
    assert_eq!((status, &body["data"]["viewer"]["account"]["email"]), (200, &json!(person.email)), "{body}");
}

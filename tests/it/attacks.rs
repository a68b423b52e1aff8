//! Hostile requests: each answered with the right status and code, and the server still
//! healthy afterwards.
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

const GQL_RESPONSE: &str = "application/graphql-response+json";

async fn post_raw(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", content_type)
        .header("accept", GQL_RESPONSE)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn query(app: &TestApp, query: String) -> (u16, Value) {
    post_raw(app, "application/json", json!({ "query": query }).to_string()).await
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn assert_healthy(app: &TestApp) {
    let data = app.ok("{ organizations(first: 1) { totalCount } }", json!({})).await;
    assert!(data["organizations"]["totalCount"].is_number(), "server still answers");
}

#[tokio::test]
async fn hostile_documents_are_refused_cleanly() {
    let app = spawn_app(Backend::Sqlite).await;

    // 1000 aliases of __typename (complexity does not count them; the alias limit does).
    let aliases: String = (0..1000).map(|i| format!("a{i}: __typename ")).collect();
    let (status, body) = query(&app, format!("{{ {aliases} }}")).await;
    assert_eq!((status, code(&body).as_str()), (400, "TOO_MANY_ALIASES"), "{body}");

    // Fragment cycles.
    let (status, body) =
        query(&app, "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");

    // A 200-deep fragment chain, each level doubling the fields it spreads.
    let mut doc = String::from("query { ...F0 }\n");
    for i in 0..200 {
        doc.push_str(&format!("fragment F{i} on Query {{ __typename ...F{} ...F{} }}\n", i + 1, i + 1));
    }
    doc.push_str("fragment F200 on Query { __typename }\n");
    let (status, body) = query(&app, doc).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        ["TOO_MANY_FIELDS", "QUERY_TOO_DEEP", "GRAPHQL_VALIDATION_FAILED"].contains(&code(&body).as_str()),
        "{body}"
    );

    // 5000 nested braces, and 5000 nested list literals.
    let (status, body) = query(&app, format!("{}{}", "{".repeat(5000), "}".repeat(5000))).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_DEEP"));
    let list = format!(
        "{{ organizations(filter: {{ search: {}\"x\"{} }}) {{ totalCount }} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, body) = query(&app, list).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_DEEP"));

    // 5000-deep JSON variables.
    let deep_json = format!(
        r#"{{"query": "query($v: String) {{ organizations(filter: {{ search: $v }}) {{ totalCount }} }}", "variables": {{"v": {}1{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, body) = post_raw(&app, "application/json", deep_json).await;
    assert_eq!((status, code(&body).as_str()), (400, "BAD_REQUEST"), "{body}");

    // Directive floods.
    let directives = "@include(if: true) ".repeat(50);
    let (status, body) = query(&app, format!("{{ __typename {directives} }}")).await;
    assert_eq!(status, 400, "{body}");

    // A query over the query-size limit, and a 10 MB body over the body limit.
    let (status, body) = query(&app, format!("{{ __typename }} #{}", "x".repeat(40 * 1024))).await;
    assert_eq!((status, code(&body).as_str()), (400, "QUERY_TOO_LARGE"));
    let huge = json!({ "query": format!("{{ __typename }} #{}", "x".repeat(10 * 1024 * 1024)) }).to_string();
    let (status, body) = post_raw(&app, "application/json", huge).await;
    assert_eq!((status, code(&body).as_str()), (413, "PAYLOAD_TOO_LARGE"));

    // Oversized batches.
    let op = json!({ "query": "{ __typename }" });
    let batch = Value::Array(vec![op; 500]).to_string();
    let (status, body) = post_raw(&app, "application/json", batch).await;
    assert_eq!((status, code(&body).as_str()), (400, "BATCH_TOO_LARGE"));

    // Mutations over GET and as text/plain (CSRF).
    let mutation = r#"mutation { createOrganization(input: { name: "CSRF" }) { organization { id } } }"#;
    let (status, body) = post_raw(&app, "text/plain", json!({ "query": mutation }).to_string()).await;
    assert_eq!((status, code(&body).as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    let response = app.client.get(app.url("/graphql")).query(&[("query", mutation)]).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 405);

    // Negative and oversized page sizes.
    let body = app.gql("{ organizations(first: -5) { totalCount } }", json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let body = app.gql("{ organizations(first: 100000) { totalCount } }", json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");

    assert_healthy(&app).await;
    let count = app.ok("{ organizations { totalCount } }", json!({})).await;
    assert_eq!(count["organizations"]["totalCount"], 0, "no attack wrote anything");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.debug_panic_route = true).await;
    let response = app.client.get(app.url("/debug/panic")).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    assert!(!body.to_string().contains("deliberate"), "no panic detail leaks: {body}");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn operations_are_rate_limited_per_client_and_batches_count_each_operation() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.operations_per_minute = 5;
        s.limits.anonymous_mutations_per_minute = 2;
    })
    .await;
    // A batch of 4 uses 4 of the manager's 5.
    let op = json!({ "query": "{ __typename }" });
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.manager.token)
        .json(&json!([op, op, op, op]))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    app.ok("{ __typename }", json!({})).await;
    let (status, body) =
        app.send(&crate::helpers::Credentials::account(&app.manager), "{ __typename }", json!({})).await;
    assert_eq!((status, code(&body).as_str()), (429, "RATE_LIMITED"));

    // Another client is not affected; anonymous mutations have their own, tighter limit.
    let anonymous = crate::helpers::Credentials::anonymous();
    let sign_out = "mutation { signOut(input: { refreshToken: \"rt_x\" }) { revoked } }";
    for _ in 0..2 {
        app.ok_as(&anonymous, sign_out, json!({})).await;
    }
    let (status, body) = app.send(&anonymous, sign_out, json!({})).await;
    assert_eq!((status, code(&body).as_str()), (429, "RATE_LIMITED"));
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some());
    let response =
        app.client.post(app.url("/graphql")).json(&json!({ "query": "{ __typename }" })).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 200, "anonymous queries still pass");
}

//! The cache: reads after committed writes are fresh on both stores; a dead Redis degrades
//! to the database instead of failing requests.
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app_with};
use crate::organizations::create;

const PAGE: &str = "query($s: String!) { organization(slug: $s) { name stage } }";
const LIST: &str = r#"{ organizations(filter: { search: "缓存" }) { totalCount edges { node { name } } } }"#;

backend_tests! {
    async fn reads_after_writes_are_fresh(app) {
        let org = create(&app, json!({ "name": "缓存测试组织" })).await;
        let slug = org["slug"].as_str().expect("slug").to_owned();

        // Warm both the page and the list.
        assert_eq!(app.ok(PAGE, json!({ "s": slug })).await["organization"]["name"], "缓存测试组织");
        assert_eq!(app.ok(LIST, json!({})).await["organizations"]["totalCount"], 1);

        // A hit costs no SQL (anonymous: no session to look up either).
        let anonymous = crate::helpers::Credentials::anonymous();
        app.ok_as(&anonymous, PAGE, json!({ "s": slug })).await;
        let before = app.sql_statements();
        app.ok_as(&anonymous, PAGE, json!({ "s": slug })).await;
        assert_eq!(app.sql_statements(), before, "the second read is served from the cache");

        let update = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }";
        app.ok(update, json!({ "input": { "id": org["id"], "name": "缓存测试组织（新）" } })).await;
        assert_eq!(app.ok(PAGE, json!({ "s": slug })).await["organization"]["name"], "缓存测试组织（新）");
        let list = app.ok(LIST, json!({})).await;
        assert_eq!(list["organizations"]["edges"][0]["node"]["name"], "缓存测试组织（新）");

        create(&app, json!({ "name": "另一个缓存组织" })).await;
        assert_eq!(app.ok(LIST, json!({})).await["organizations"]["totalCount"], 2, "a create shows in the cached list");

        let transition = "mutation($input: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $input) { organization { stage } } }";
        app.ok(transition, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
        assert_eq!(app.ok(PAGE, json!({ "s": slug })).await["organization"]["stage"], "APPLIED");
    }
}

#[tokio::test]
async fn unreachable_redis_degrades_to_the_database() {
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    // A closed port: nothing listens on port 1.
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.redis_url = Some("redis://127.0.0.1:1".into());
    })
    .await;
    let org = create(&app, json!({ "name": "无缓存组织" })).await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let data = app.ok(PAGE, json!({ "s": org["slug"] })).await;
        assert_eq!(data["organization"]["name"], "无缓存组织");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "requests do not hang on Redis");
    let update =
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }";
    app.ok(update, json!({ "input": { "id": org["id"], "name": "无缓存组织二" } })).await;
    assert_eq!(app.ok(PAGE, json!({ "s": org["slug"] })).await["organization"]["name"], "无缓存组织二");

    let ready = app.client.get(app.url("/ready")).send().await.expect("sent");
    assert_eq!(ready.status().as_u16(), 200, "a dead cache does not make the server unready");
    let ready: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(ready["cache"], "degraded");
    assert_eq!(ready["database"], "ok");
}

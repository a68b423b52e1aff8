//! The cache: reads after committed writes are fresh on both stores; a dead Redis degrades
//! to the database instead of failing requests.
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, eventually, spawn_app_with, spawn_second_instance};
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

const HISTORY_PAGE: &str = "query($s: String!) { organization(slug: $s) { name stage stageHistory { toStage } } }";
const TRANSITION: &str = "mutation($input: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $input) { organization { stage } } }";

fn history(data: &serde_json::Value) -> Vec<String> {
    let entries = data["organization"]["stageHistory"].as_array().expect("history");
    entries.iter().map(|t| t["toStage"].as_str().expect("stage").to_owned()).collect()
}

backend_tests! {
    async fn a_signed_in_page_with_its_history_is_read_through_the_cache(app) {
        // The response cache never serves a signed-in person; the directory's cache does,
        // the stage history included.
        let org = create(&app, json!({ "name": "历史缓存组织" })).await;
        let vars = json!({ "s": org["slug"] });
        let first = history(&app.ok(HISTORY_PAGE, vars.clone()).await);
        app.ok(HISTORY_PAGE, vars.clone()).await;
        let before = app.sql_statements();
        assert_eq!(history(&app.ok(HISTORY_PAGE, vars.clone()).await), first);
        assert_eq!(app.sql_statements(), before, "a hot page with its history costs no SQL");

        app.ok(TRANSITION, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
        let after = history(&app.ok(HISTORY_PAGE, vars).await);
        assert_eq!(after.len(), first.len() + 1, "a stage change shows in the cached history: {after:?}");
        assert_eq!(after.last().map(String::as_str), Some("APPLIED"));
    }
}

fn near_hits(app: &TestApp) -> u64 {
    app.state.cache.redis_health().expect("the app uses Redis").near_hits
}

#[tokio::test]
async fn near_copies_answer_without_redis_and_follow_other_instances() {
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    let other = spawn_second_instance(&app).await;
    let org = create(&app, json!({ "name": "近处副本组织" })).await;
    let vars = json!({ "s": org["slug"] });

    // The first read fills Redis and this instance's near copies; then the page and its
    // history are answered from here: no SQL, and no Redis call for either. (The other
    // instance's follower re-applies the create's invalidation a moment later, one more bump
    // that retires the first copies, so the hot read is awaited rather than taken as the next.)
    app.ok(HISTORY_PAGE, vars.clone()).await;
    let hot = eventually(std::time::Duration::from_secs(1), || async {
        let (sql, near) = (app.sql_statements(), near_hits(&app));
        let data = app.ok(HISTORY_PAGE, vars.clone()).await;
        assert_eq!(data["organization"]["name"], "近处副本组织");
        app.sql_statements() == sql && near_hits(&app) > near
    })
    .await;
    assert!(hot, "a hot page with its history comes from the near tier, without SQL");

    // Sessions never come from it: every request asks Redis for the session, so a
    // sign-out on the other instance refuses the very next request here.
    let near = near_hits(&app);
    app.ok("{ viewer { roles } }", json!({})).await;
    assert_eq!(near_hits(&app), near, "a session is never read from the near tier");

    // A write on the other instance reaches this one's near copies within the log's bound.
    let update =
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }";
    other.ok(update, json!({ "input": { "id": org["id"], "name": "近处副本组织（新）" } })).await;
    let renamed = eventually(std::time::Duration::from_secs(1), || async {
        app.ok(HISTORY_PAGE, vars.clone()).await["organization"]["name"] == "近处副本组织（新）"
    })
    .await;
    assert!(renamed, "the other instance's write is seen here within 1 s");
    other.ok(TRANSITION, json!({ "input": { "id": org["id"], "stage": "APPLIED" } })).await;
    let moved = eventually(std::time::Duration::from_secs(1), || async {
        history(&app.ok(HISTORY_PAGE, vars.clone()).await).last().map(String::as_str) == Some("APPLIED")
    })
    .await;
    assert!(moved, "the other instance's stage change shows in this one's history within 1 s");
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

/// The invalidation feed carries the generation each bump reached: a message at the
/// generation a near copy was read under (an instance's own bump, echoed back) leaves the copy
/// in use; a higher one retires it; a message of the older form (the tag alone) makes the
/// mirror read the generation again.
#[tokio::test]
async fn invalidation_messages_carry_their_generation() {
    use std::time::Duration;
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let prefix = format!("incubase-test:{}", uuid::Uuid::new_v4().simple());
    let cache = api::cache::Cache::redis(
        &crate::helpers::redis_url(),
        &prefix,
        Duration::from_secs(60),
        Duration::from_millis(500),
    )
    .expect("a Redis cache");
    let client = redis::Client::open(crate::helpers::redis_url()).expect("redis client");
    let conn = client.get_multiplexed_async_connection().await.expect("redis connection");
    let channel = format!("{prefix}:invalidations");
    let near = |cache: &api::cache::Cache| cache.redis_health().expect("redis").near_hits;
    let read = |value: &'static str| {
        let cache = cache.clone();
        async move {
            let got: Result<String, ()> = cache.get_or_load("campaigns", "k", async { Ok(value.to_owned()) }).await;
            got.expect("infallible")
        }
    };
    let subscribed = eventually(Duration::from_secs(3), || async { cache.validates_responses() }).await;
    assert!(subscribed, "the invalidation feed is followed");

    let gen_key = format!("{prefix}:gen:campaigns");
    let publish = |payload: String| {
        let (mut conn, channel) = (conn.clone(), channel.clone());
        async move {
            let _: () = redis::cmd("PUBLISH").arg(channel).arg(payload).query_async(&mut conn).await.expect("publish");
            // Delivered to the cache's subscription well within this.
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let incr = |key: String| {
        let mut conn = conn.clone();
        async move { redis::cmd("INCR").arg(key).query_async::<u64>(&mut conn).await.expect("incr") }
    };
    // Near hits after a fill: the first read stores, the second reads Redis into the near
    // tier, the third is served from it.
    let warm = |value: &'static str| {
        let cache = cache.clone();
        async move {
            assert_eq!(read(value).await, value, "filled with {value}");
            assert_eq!(read("unused").await, value);
            let before = near(&cache);
            assert_eq!(read("unused").await, value);
            near(&cache) > before
        }
    };

    // This cache's own bump announces the generation it reached.
    let mut feed = client.get_async_pubsub().await.expect("pubsub");
    feed.subscribe(&channel).await.expect("subscribe");
    cache.invalidate("campaigns").await;
    let message = {
        use futures::StreamExt;
        let mut messages = feed.on_message();
        tokio::time::timeout(Duration::from_secs(2), messages.next()).await.expect("a message").expect("the feed")
    };
    assert_eq!(message.get_payload::<String>().expect("text"), "1 campaigns");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(warm("first").await, "the entry is served from the near tier");

    // Its echo (or another instance's follower re-applying the write: the same generation)
    // leaves the near copy in use.
    let generation: u64 = redis::cmd("GET").arg(&gen_key).query_async(&mut conn.clone()).await.expect("generation");
    assert_eq!(generation, 1, "one bump");
    publish(format!("{generation} campaigns")).await;
    let before = near(&cache);
    assert_eq!(read("unused").await, "first");
    assert_eq!(near(&cache), before + 1, "an echo of the generation held keeps the near copy");

    // Another instance's bump (INCR and its message): the copy is retired at once.
    let next = incr(gen_key.clone()).await;
    publish(format!("{next} campaigns")).await;
    assert_eq!(read("second").await, "second", "a higher generation retires the near copy");
    assert!(warm("second").await, "the new entry is served from the near tier");

    // The older form names only the tag: the mirror forgets it and reads it again. (Until a
    // message comes, a bump made behind the feed's back is not seen by the near copy.)
    incr(gen_key.clone()).await;
    assert_eq!(read("unused").await, "second", "a bump without a message is not seen near");
    publish("campaigns".to_owned()).await;
    assert_eq!(read("third").await, "third", "a message without a generation makes the mirror read it again");

    let mut conn = conn.clone();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// A write is announced once: its writer's bump marks the events applied in Redis, and the
/// other instances' followers, meeting the events in the log, do not bump the same tags again
/// (that second bump retired every instance's copies a moment after the write). Events
/// without the mark are still applied by the followers (tested in `event_log`: a process that
/// committed and died before touching the cache).
#[tokio::test]
async fn a_write_bumps_its_tags_once_across_instances() {
    use std::time::Duration;
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    let second = spawn_second_instance(&app).await;
    let org = create(&app, json!({ "name": "一次失效组织" })).await;
    let client = redis::Client::open(crate::helpers::redis_url()).expect("redis client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis connection");
    let key = format!("{}:gen:organizations", app.state.settings.cache_prefix);
    let caught_up = || async {
        let reached =
            eventually(Duration::from_secs(2), || async { second.state.log.position() >= app.state.log.position() })
                .await;
        assert!(reached, "the second instance follows the log");
        // The follower invalidates right after it moves its position.
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    caught_up().await;
    let before: u64 = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("generation");

    let update =
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }";
    app.ok(update, json!({ "input": { "id": org["id"], "name": "一次失效组织（新）" } })).await;
    caught_up().await;
    let after: u64 = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("generation");
    assert_eq!(after, before + 1, "one bump for one write, however many instances follow the log");

    let page = "query($s: String!) { organization(slug: $s) { name } }";
    let seen = second.ok(page, json!({ "s": org["slug"] })).await;
    assert_eq!(seen["organization"]["name"], "一次失效组织（新）", "the other instance sees the write");
}

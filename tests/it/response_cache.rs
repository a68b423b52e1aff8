//! Whole-response caching of public queries: fresh after writes, never across scopes,
//! one execution for concurrent misses, persisted queries, ETags, and two instances.
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, Credentials, TestApp, selected, spawn_app, spawn_second_instance};
use crate::organizations::create;

const PAGE: &str = "query($s: String!) { organization(slug: $s) { name stage contact { phone } } }";
const UPDATE: &str =
    "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }";

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

async fn metrics(app: &TestApp) -> String {
    app.client.get(app.url("/metrics")).send().await.expect("sent").text().await.expect("text")
}

async fn hits(app: &TestApp) -> u64 {
    metric(&metrics(app).await, "incubase_response_cache_hits_total")
}

async fn misses(app: &TestApp) -> u64 {
    metric(&metrics(app).await, "incubase_response_cache_misses_total")
}

backend_tests! {
    async fn public_answers_are_cached_and_fresh_after_writes(app) {
        let org = create(&app, json!({ "name": "整页缓存", "contact": { "phone": "0592-5111111" } })).await;
        let anonymous = Credentials::anonymous();
        let vars = json!({ "s": org["slug"] });
        let first = app.ok_as(&anonymous, PAGE, vars.clone()).await;
        assert_eq!(first["organization"]["contact"]["phone"], Value::Null);
        let before_hits = hits(&app).await;
        let sql = app.sql_statements();
        let second = app.ok_as(&anonymous, PAGE, vars.clone()).await;
        assert_eq!(second, first);
        assert_eq!(hits(&app).await, before_hits + 1, "served from the response cache");
        assert_eq!(app.sql_statements(), sql, "a hit runs no SQL");
        let reformatted = format!("# the same page\n{}", PAGE.replace(' ', "\n  ").replace("name", "name,"));
        assert_eq!(app.ok_as(&anonymous, &reformatted, vars.clone()).await, first);
        assert_eq!(hits(&app).await, before_hits + 2, "formatting and comments do not split entries");

        // A signed-in reader is never served the public entry, nor stored into it.
        let manager_view = app.ok(PAGE, vars.clone()).await;
        assert_eq!(manager_view["organization"]["contact"]["phone"], "0592-5111111");
        assert_eq!(hits(&app).await, before_hits + 2);

        app.ok(UPDATE, json!({ "i": { "id": org["id"], "name": "整页缓存（改）" } })).await;
        let fresh = app.ok_as(&anonymous, PAGE, vars).await;
        assert_eq!(fresh["organization"]["name"], "整页缓存（改）", "the first read after a write is fresh");
    }

    async fn concurrent_misses_cost_one_execution(app) {
        let org = create(&app, json!({ "name": "并发未命中" })).await;
        let before = misses(&app).await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let client = app.client.clone();
                let url = app.url("/graphql");
                let body = json!({ "query": PAGE, "variables": { "s": org["slug"] } });
                tokio::spawn(async move { client.post(url).json(&body).send().await.expect("sent").json::<Value>().await.expect("json") })
            })
            .collect();
        for task in tasks {
            let body = task.await.expect("task");
            assert_eq!(body["data"]["organization"]["name"], "并发未命中");
        }
        assert_eq!(misses(&app).await - before, 1, "one execution for 20 concurrent misses");
    }
}

#[tokio::test]
async fn a_partner_keys_answer_never_reaches_readers_of_other_scopes() {
    use api::service::identity::{self, ApiScope};
    let app = spawn_app(Backend::Sqlite).await;
    let org = create(&app, json!({ "name": "对账伙伴" })).await;
    let org_row = crate::crowdfunding::row_of(&org["id"]);
    let campaign = crate::crowdfunding::campaign_gid(crate::crowdfunding::campaign_in(&app, org_row, "ACTIVE").await);
    let reconciler = identity::create_api_key(
        app.state.ctx(),
        &crate::helpers::actor(),
        identity::NewApiKey::secret("对账", &[ApiScope::Reconcile], None),
        0,
    )
    .await
    .expect("key");
    let reader = identity::create_api_key(
        app.state.ctx(),
        &crate::helpers::actor(),
        identity::NewApiKey::secret("只读", &[], None),
        0,
    )
    .await
    .expect("key");
    let query = "query($id: ID!) { campaign(id: $id) { title donations(first: 5) { totalCount } } }";
    let vars = json!({ "id": campaign });

    let seen = app.ok_as(&Credentials::api_key(&reconciler.secret), query, vars.clone()).await;
    assert_eq!(seen["campaign"]["donations"]["totalCount"], 0, "RECONCILE sees the donations");
    for other in [Credentials::anonymous(), Credentials::api_key(&reader.secret)] {
        let data = app.ok_as(&other, query, vars.clone()).await;
        assert_eq!(data["campaign"]["donations"], Value::Null, "another scope never gets the cached answer");
    }
    // Keys of the same scopes share entries.
    let page = "query($id: ID!) { campaign(id: $id) { title progress { raisedFen } } }";
    app.ok_as(&Credentials::api_key(&reconciler.secret), page, vars.clone()).await;
    let twin = identity::create_api_key(
        app.state.ctx(),
        &crate::helpers::actor(),
        identity::NewApiKey::secret("对账二", &[ApiScope::Reconcile], None),
        0,
    )
    .await
    .expect("key");
    let before = hits(&app).await;
    let data = app.ok_as(&Credentials::api_key(&twin.secret), page, vars).await;
    assert_eq!(data["campaign"]["progress"]["raisedFen"], 0);
    assert_eq!(hits(&app).await, before + 1);
}

backend_tests! {
    async fn a_campaign_page_is_evicted_by_its_own_writes_only(app) {
        use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
        let org = create(&app, json!({ "name": "两个项目" })).await;
        let org_row = row_of(&org["id"]);
        let a = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let b = campaign_gid(campaign_in(&app, org_row, "ACTIVE").await);
        let page = "query($id: ID!) { campaign(id: $id) { title organization { name } progress { raisedFen donationCount } donorWall(first: 5) { edges { node { displayName amountFen } } } } }";
        let anonymous = Credentials::anonymous();
        let give = |campaign: String, key: &'static str| {
            let app = &app;
            async move {
                let input = json!({ "campaignId": campaign, "amountFen": 500, "channel": "ONLINE_PLATFORM", "clientKey": key, "recordForGuest": true, "donorName": "陈女士" });
                let donation = app.ok(DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
                app.ok(CONFIRM, json!({ "i": { "id": donation } })).await;
            }
        };
        app.ok_as(&anonymous, page, json!({ "id": a })).await;

        give(b.clone(), "to-b").await;
        let (before_hits, sql) = (hits(&app).await, app.sql_statements());
        let data = app.ok_as(&anonymous, page, json!({ "id": a })).await;
        assert_eq!(data["campaign"]["progress"]["raisedFen"], 0);
        assert_eq!(hits(&app).await, before_hits + 1, "a donation to B leaves A's cached page alone");
        assert_eq!(app.sql_statements(), sql);
        let list = "{ campaigns(first: 5) { edges { node { progress { raisedFen } } } } }";
        let raised: i64 = app.ok_as(&anonymous, list, json!({})).await["campaigns"]["edges"].as_array().expect("edges").iter().map(|e| e["node"]["progress"]["raisedFen"].as_i64().expect("fen")).sum();
        assert_eq!(raised, 500, "lists see every campaign's writes");
        let before_hits = hits(&app).await;
        app.ok_as(&anonymous, list, json!({})).await;
        assert_eq!(hits(&app).await, before_hits + 1, "a list with items is cached too");

        give(a.clone(), "to-a").await;
        let data = app.ok_as(&anonymous, page, json!({ "id": a })).await;
        assert_eq!(data["campaign"]["progress"]["raisedFen"], 500, "A's own donation is seen at once");
        assert_eq!(data["campaign"]["donorWall"]["edges"][0]["node"]["amountFen"], 500);
        let raised: i64 = app.ok_as(&anonymous, list, json!({})).await["campaigns"]["edges"].as_array().expect("edges").iter().map(|e| e["node"]["progress"]["raisedFen"].as_i64().expect("fen")).sum();
        assert_eq!(raised, 1000);

        // The organization shown on the page is the organization's data: its writes count.
        app.ok(UPDATE, json!({ "i": { "id": org["id"], "name": "两个项目（改名）" } })).await;
        let data = app.ok_as(&anonymous, page, json!({ "id": a })).await;
        assert_eq!(data["campaign"]["organization"]["name"], "两个项目（改名）");
    }

    async fn answers_that_read_uncacheable_types_are_not_cached(app) {
        let anonymous = Credentials::anonymous();
        let org = create(&app, json!({ "name": "活动与空间" })).await;
        let org_id = org["id"].as_str().expect("id").to_owned();
        crate::events::published_event(&app, &org_id, chrono::Duration::days(3), json!({})).await;
        for query in [
            // Seat counts are live.
            "{ events(first: 3) { edges { node { title seats { left } } } } }",
            "{ spaces(first: 3) { totalCount } }",
            "{ viewer { isAuthenticated } }",
        ] {
            app.ok_as(&anonymous, query, json!({})).await;
            let before = hits(&app).await;
            app.ok_as(&anonymous, query, json!({})).await;
            assert_eq!(hits(&app).await, before, "{query} is not served from the cache");
        }
        // A cacheable root that reaches a private field is not cached either.
        let members = "query($s: String!) { organization(slug: $s) { name members { role } } }";
        let vars = json!({ "s": org["slug"] });
        app.ok_as(&anonymous, members, vars.clone()).await;
        let before = hits(&app).await;
        app.ok_as(&anonymous, members, vars).await;
        assert_eq!(hits(&app).await, before);
    }
}

backend_tests! {
    async fn availability_is_cached_until_a_booking_a_space_write_or_the_clock_moves_it(app) {
        use crate::spaces::at;
        let room = crate::spaces::space(&app, "缓存活动室", 20, json!({})).await;
        let week = "query($ids: [ID!]!, $f: DateTime!, $t: DateTime!) { availability(spaceIds: $ids, from: $f, to: $t, durationMinutes: 60) { space { name capacity } slots { startsAt endsAt } } }";
        let vars = json!({ "ids": [room["id"]], "f": at(2, 0, 0), "t": at(3, 0, 0) });
        let anonymous = Credentials::anonymous();
        let windows = |data: &Value| data["availability"][0]["slots"].as_array().map_or(0, Vec::len);
        let first = app.ok_as(&anonymous, week, vars.clone()).await;
        assert_eq!(windows(&first), 1, "open 08:00–22:00: {first}");
        let (before, sql) = (hits(&app).await, app.sql_statements());
        assert_eq!(app.ok_as(&anonymous, week, vars.clone()).await, first);
        assert_eq!((hits(&app).await, app.sql_statements()), (before + 1, sql), "a polled week is a hit");

        // A confirmed booking splits the day at once; so does a change of the space itself.
        let book = "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { status } } }";
        let input = json!({ "spaceId": room["id"], "startsAt": at(2, 12, 0), "endsAt": at(2, 13, 0), "attendees": 5, "purpose": "项目管理培训" });
        assert_eq!(app.ok(book, json!({ "input": input })).await["createBooking"]["booking"]["status"], "CONFIRMED");
        assert_eq!(windows(&app.ok_as(&anonymous, week, vars.clone()).await), 2, "the booking shows at once");
        let update = "mutation($i: UpdateSpaceInput!) { updateSpace(input: $i) { space { capacity } } }";
        app.ok(update, json!({ "i": { "id": room["id"], "capacity": 25 } })).await;
        let data = app.ok_as(&anonymous, week, vars.clone()).await;
        assert_eq!((data["availability"][0]["space"]["capacity"].clone(), windows(&data)), (json!(25), 2));

        // No such space: an empty answer that no clock changes, kept like the others.
        let none = json!({ "ids": [api::graphql::ids::encode("Space", 987_654).to_string()], "f": at(2, 0, 0), "t": at(3, 0, 0) });
        assert_eq!(app.ok_as(&anonymous, week, none.clone()).await["availability"], json!([]));
        let before = hits(&app).await;
        app.ok_as(&anonymous, week, none.clone()).await;
        assert_eq!(hits(&app).await, before + 1, "an empty week is a hit");
        crate::spaces::space(&app, "新建活动室", 10, json!({})).await;
        let before = hits(&app).await;
        app.ok_as(&anonymous, week, none).await;
        assert_eq!(hits(&app).await, before, "until a space is added: the one asked for may be it");

        // The space's bookings themselves are never kept.
        let calendar = "query($ids: [ID!]!, $f: DateTime!, $t: DateTime!) { availability(spaceIds: $ids, from: $f, to: $t, durationMinutes: 60) { space { bookings(from: $f, to: $t) { startsAt } } } }";
        app.ok_as(&anonymous, calendar, vars.clone()).await;
        let before = hits(&app).await;
        app.ok_as(&anonymous, calendar, vars).await;
        assert_eq!(hits(&app).await, before, "bookings are read live");
    }
}

/// Answers that depend on the clock carry their expiry into the shared tier, and are not
/// served after it.
#[test]
fn an_expiring_answer_keeps_its_expiry_in_the_shared_tier() {
    use api::response_cache::CachedResponse;
    let until = chrono::Utc::now() + chrono::Duration::minutes(7);
    let entry = CachedResponse {
        body: std::sync::Arc::from("{\"data\":{}}"),
        etag: api::response_cache::etag("{\"data\":{}}"),
        tags: vec!["bookings".into(), "organizations".into()],
        generations: vec![3, 9],
        until: Some(until),
        session: 1,
    };
    let back = CachedResponse::decode(&entry.encode(), 1).expect("decodes");
    assert_eq!((&back.tags, &back.generations, back.body.as_ref()), (&entry.tags, &vec![3, 9], "{\"data\":{}}"));
    assert_eq!(back.until.map(|t| t.timestamp_micros()), Some(until.timestamp_micros()));
    assert!(back.current_at(until - chrono::Duration::microseconds(1)));
    assert!(!back.current_at(until), "not served from its expiry on");
    let lasting = CachedResponse { until: None, ..entry };
    let back = CachedResponse::decode(&lasting.encode(), 1).expect("decodes");
    assert!(back.until.is_none() && back.current_at(until + chrono::Duration::days(365)));
}

backend_tests! {
    async fn the_event_calendar_is_cached_and_fresh_after_event_writes(app) {
        use crate::events::{TRANSITION, organizer, published_event, register_as};
        let org = organizer(&app).await;
        let starts = chrono::Utc::now() + chrono::Duration::days(40);
        let (year, month) = (chrono::Datelike::year(&starts), chrono::Datelike::month(&starts));
        let id = published_event(&app, &org, chrono::Duration::days(40), json!({ "title": "亲子阅读会" })).await;
        let calendar = "query($y: Int!, $m: Int!) { eventCalendar(year: $y, month: $m) { days { date events { id title startsAt status venue { address } organizer { name } } } } }";
        let vars = json!({ "y": year, "m": month });
        let anonymous = Credentials::anonymous();
        let titles = |data: &Value| -> Vec<String> {
            data["eventCalendar"]["days"].as_array().expect("days").iter()
                .flat_map(|d| d["events"].as_array().expect("events").iter().map(|e| e["title"].as_str().expect("title").to_owned()))
                .collect()
        };
        assert!(titles(&app.ok_as(&anonymous, calendar, vars.clone()).await).contains(&"亲子阅读会".to_owned()));
        let before = hits(&app).await;
        let sql = app.sql_statements();
        app.ok_as(&anonymous, calendar, vars.clone()).await;
        assert_eq!((hits(&app).await, app.sql_statements()), (before + 1, sql), "a polled calendar is a hit");

        // Registrations change seats, not what the calendar shows: still a hit.
        let person = app.account("reader", &[api::service::identity::Role::Donor]).await;
        let reg = register_as(&app, &person, json!({ "eventId": id, "privacyConsent": true })).await;
        assert!(reg["errors"].is_null(), "{reg}");
        let before = hits(&app).await;
        app.ok_as(&anonymous, calendar, vars.clone()).await;
        assert_eq!(hits(&app).await, before + 1);

        // The event's own writes show at once: a new title, a cancellation.
        let update = "mutation($input: UpdateEventInput!) { updateEvent(input: $input) { event { title } } }";
        app.ok(update, json!({ "input": { "id": id, "title": "亲子阅读会（改期）" } })).await;
        assert!(titles(&app.ok_as(&anonymous, calendar, vars.clone()).await).contains(&"亲子阅读会（改期）".to_owned()));
        let page = "query($id: ID!) { event(id: $id) { title status } }";
        assert_eq!(app.ok_as(&anonymous, page, json!({ "id": id })).await["event"]["status"], "PUBLISHED");
        app.ok(TRANSITION, json!({ "input": { "id": id, "status": "CANCELLED" } })).await;
        assert_eq!(app.ok_as(&anonymous, page, json!({ "id": id })).await["event"]["status"], "CANCELLED");
        let data = app.ok_as(&anonymous, calendar, vars).await;
        let status = data["eventCalendar"]["days"].as_array().expect("days").iter()
            .flat_map(|d| d["events"].as_array().expect("events").clone())
            .find(|e| e["id"] == json!(id)).map(|e| e["status"].clone());
        assert!(status.is_none() || status == Some(json!("CANCELLED")), "{data}");
    }
}

#[tokio::test]
async fn a_second_instance_finds_answers_in_the_shared_tier() {
    if !selected(Backend::Postgres) {
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let b = spawn_second_instance(&a).await;
    let org = create(&a, json!({ "name": "共享缓存" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    a.ok_as(&anonymous, PAGE, vars.clone()).await;
    // A stores the answer in Redis in the background.
    let client = redis::Client::open(crate::helpers::redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let pattern = format!("{}:resp:*", a.state.settings.cache_prefix);
    let mut stored = false;
    for _ in 0..100 {
        let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.expect("keys");
        if !keys.is_empty() {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored, "the answer reached the shared tier");

    let probe = spawn_second_instance(&a).await;
    // Generations are trusted once the instance follows the invalidation feed.
    for _ in 0..100 {
        if probe.state.cache.generations(&["organizations"]).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sql = probe.sql_statements();
    let data = probe.ok_as(&anonymous, PAGE, vars.clone()).await;
    assert_eq!(data["organization"]["name"], "共享缓存");
    assert_eq!(probe.sql_statements(), sql, "a fresh instance answers from the shared tier without SQL");
    assert_eq!((hits(&probe).await, misses(&probe).await), (1, 0));
    // After a write, the shared entry is stale for everyone.
    a.ok(UPDATE, json!({ "i": { "id": org["id"], "name": "共享缓存（改）" } })).await;
    let data = b.ok_as(&anonymous, PAGE, vars).await;
    assert_eq!(data["organization"]["name"], "共享缓存（改）");
}

#[tokio::test]
async fn persisted_queries_and_etags() {
    let app = spawn_app(Backend::Sqlite).await;
    let org = create(&app, json!({ "name": "持久化查询" })).await;
    let query = "query($s: String!) { organization(slug: $s) { name } }";
    let hash = api::response_cache::sha256_hex(query);
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let vars = json!({ "s": org["slug"] });
    let post = |body: Value| app.client.post(app.url("/graphql")).json(&body).send();

    let unknown: Value =
        post(json!({ "variables": vars, "extensions": ext })).await.expect("sent").json().await.expect("json");
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
    let registered: Value = post(json!({ "query": query, "variables": vars, "extensions": ext }))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(registered["data"]["organization"]["name"], "持久化查询");
    let by_hash: Value =
        post(json!({ "variables": vars, "extensions": ext })).await.expect("sent").json().await.expect("json");
    assert_eq!(by_hash["data"]["organization"]["name"], "持久化查询");
    let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": "00".repeat(32) } });
    let mismatch: Value = post(json!({ "query": query, "variables": vars, "extensions": wrong }))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(mismatch["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_HASH_MISMATCH");

    // GET by hash, with an ETag a CDN can revalidate.
    let get = |etag: Option<String>| {
        let mut request = app
            .client
            .get(app.url("/graphql"))
            .query(&[("variables", vars.to_string()), ("extensions", ext.to_string())]);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    let response = get(None).await.expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("etag").to_owned();
    assert_eq!(
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("public, max-age=0, must-revalidate")
    );
    let response = get(Some(etag.clone())).await.expect("sent");
    assert_eq!(response.status().as_u16(), 304, "unchanged: not modified");

    app.ok(UPDATE, json!({ "i": { "id": org["id"], "name": "持久化查询（新）" } })).await;
    let response = get(Some(etag.clone())).await.expect("sent");
    assert_eq!(response.status().as_u16(), 200, "changed: a new body");
    assert_ne!(response.headers().get("etag").and_then(|v| v.to_str().ok()), Some(etag.as_str()));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["organization"]["name"], "持久化查询（新）");

    let private = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&app.manager.token)
        .query(&[("query", "{ viewer { isAuthenticated } }")])
        .send()
        .await
        .expect("sent");
    assert_eq!(private.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("private, no-store"));
}

#[tokio::test]
async fn a_write_on_one_instance_reaches_the_other_within_the_bound() {
    if !selected(Backend::Postgres) {
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let b = spawn_second_instance(&a).await;
    let org = create(&a, json!({ "name": "两个实例" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    // Warm B's near cache, and make sure it is serving hits.
    b.ok_as(&anonymous, PAGE, vars.clone()).await;
    b.ok_as(&anonymous, PAGE, vars.clone()).await;
    assert!(hits(&b).await >= 1, "B serves from its near cache");

    a.ok(UPDATE, json!({ "i": { "id": org["id"], "name": "两个实例（改）" } })).await;
    let written = Instant::now();
    let bound = Duration::from_secs(1);
    loop {
        let data = b.ok_as(&anonymous, PAGE, vars.clone()).await;
        if data["organization"]["name"] == "两个实例（改）" {
            break;
        }
        assert!(written.elapsed() < bound, "B still served the old name {:?} after {bound:?}", written.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // And it stays fresh.
    for _ in 0..5 {
        assert_eq!(b.ok_as(&anonymous, PAGE, vars.clone()).await["organization"]["name"], "两个实例（改）");
    }
}

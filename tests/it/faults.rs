//! Faults of the things the server depends on: a full pool, slow operations, Redis starting
//! late, Redis stalling, and SIGTERM under load.
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, Credentials, TestApp, selected, spawn_app_with};
use crate::organizations::create;

fn backends() -> Vec<Backend> {
    [Backend::Sqlite, Backend::Postgres].into_iter().filter(|b| selected(*b)).collect()
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned()
}

/// A query the cache cannot answer, so it needs a connection.
fn uncached() -> String {
    format!("{{ organizations(filter: {{ search: \"{}\" }}) {{ totalCount }} }}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn an_exhausted_pool_fails_fast_and_recovers() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| {
            s.database_max_connections = 1;
            s.database_acquire_timeout = Duration::from_millis(300);
        })
        .await;
        let anonymous = Credentials::anonymous();
        let held = sea_orm::TransactionTrait::begin(&app.state.db).await.expect("hold the only connection");
        let started = Instant::now();
        let (status, body) = app.send(&anonymous, &uncached(), json!({})).await;
        assert_eq!((status, code(&body).as_str()), (200, "SERVICE_UNAVAILABLE"), "{backend:?}: {body}");
        assert!(started.elapsed() < Duration::from_secs(3), "{backend:?}: fails fast, not after a hang");
        drop(held);
        let data = app.ok_as(&anonymous, &uncached(), json!({})).await;
        assert_eq!(data["organizations"]["totalCount"], 0, "{backend:?}: recovers by itself");
    }
}

#[tokio::test]
async fn a_slow_operation_is_cancelled_at_the_execution_timeout() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| {
            s.database_max_connections = 1;
            s.database_acquire_timeout = Duration::from_secs(10);
            s.limits.execution_timeout = Duration::from_millis(300);
        })
        .await;
        let anonymous = Credentials::anonymous();
        let held = sea_orm::TransactionTrait::begin(&app.state.db).await.expect("hold the only connection");
        let started = Instant::now();
        let (status, body) = app.send(&anonymous, &uncached(), json!({})).await;
        assert_eq!((status, code(&body).as_str()), (503, "TIMEOUT"), "{backend:?}: {body}");
        assert!(started.elapsed() < Duration::from_secs(3), "{backend:?}: cancelled at the timeout");
        drop(held);
        app.ok_as(&anonymous, &uncached(), json!({})).await;
    }
}

/// A Redis server of this test's own, on a free port, so stalling it touches no other test.
struct OwnRedis {
    /// Killed when dropped.
    child: tokio::process::Child,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl OwnRedis {
    /// Kills the server and waits until it is gone: its port refuses connections.
    async fn kill(mut self) {
        self.child.kill().await.expect("redis-server killed");
    }

    async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (the machine's Redis package provides it)");
        let redis = Self { child, port };
        for _ in 0..100 {
            if redis.command(&["PING"]).await.is_ok() {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not come up");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends a signal to the server: `STOP` freezes it with every connection open (a stalled
    /// host: nothing is refused, nothing answers), `CONT` resumes it.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("redis-server runs").to_string();
        let sent = std::process::Command::new("kill").args([format!("-{signal}"), pid]).status().expect("kill");
        assert!(sent.success(), "SIG{signal} sent");
    }

    async fn command(&self, args: &[&str]) -> redis::RedisResult<Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let value: redis::Value = cmd.query_async(&mut conn).await?;
        Ok(Value::String(format!("{value:?}")))
    }
}

async fn cache_state(app: &TestApp) -> String {
    let ready: Value = app.client.get(app.url("/ready")).send().await.expect("sent").json().await.expect("json");
    ready["cache"].as_str().unwrap_or_default().to_owned()
}

const PAGE: &str = "query($s: String!) { organization(slug: $s) { name } }";

/// A PostgreSQL app whose cache is the Redis on `port` (running or not).
async fn app_with_redis_on(port: u16) -> TestApp {
    spawn_app_with(Backend::Postgres, |s| {
        s.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        // The readers loop as fast as the server answers, from one address: the per-client
        // limit is not what these tests measure.
        s.limits.operations_per_minute = 1_000_000;
    })
    .await
}

/// Whether the app reports Redis as its working cache within five seconds.
async fn redis_used_again(app: &TestApp) -> bool {
    for _ in 0..50 {
        if cache_state(app).await == "redis" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn redis_down_at_start_then_up_is_used_without_a_restart() {
    if !selected(Backend::Postgres) {
        return;
    }
    let port = free_port();
    let app = app_with_redis_on(port).await;
    let org = create(&app, json!({ "name": "迟到的缓存" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    assert_eq!(app.ok_as(&anonymous, PAGE, vars.clone()).await["organization"]["name"], "迟到的缓存");
    assert_eq!(cache_state(&app).await, "degraded");

    let _redis = OwnRedis::start(port).await;
    assert!(redis_used_again(&app).await, "the server reconnects to Redis by itself");
    // Once warm, a read is served from Redis: no SQL.
    let mut served_from_cache = false;
    for _ in 0..20 {
        app.ok_as(&anonymous, PAGE, vars.clone()).await;
        let before = app.sql_statements();
        app.ok_as(&anonymous, PAGE, vars.clone()).await;
        if app.sql_statements() == before {
            served_from_cache = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served_from_cache, "the cache is used again");
}

#[tokio::test]
async fn a_stalled_redis_slows_nothing_and_no_stale_read_survives() {
    if !selected(Backend::Postgres) {
        return;
    }
    let redis = OwnRedis::start(free_port()).await;
    let url = redis.url();
    let app = spawn_app_with(Backend::Postgres, |s| s.redis_url = Some(url)).await;
    let org = create(&app, json!({ "name": "暂停前" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    app.ok_as(&anonymous, PAGE, vars.clone()).await; // warm

    // Stall every Redis client for 1.5 s: calls time out on our side.
    redis.command(&["CLIENT", "PAUSE", "1500", "ALL"]).await.expect("pause");
    let update = "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }";
    let started = Instant::now();
    app.ok(update, json!({ "i": { "id": org["id"], "name": "暂停后" } })).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the write commits without waiting for Redis");
    for _ in 0..5 {
        let started = Instant::now();
        let data = app.ok_as(&anonymous, PAGE, vars.clone()).await;
        assert_eq!(data["organization"]["name"], "暂停后", "no stale read while Redis stalls");
        assert!(started.elapsed() < Duration::from_secs(1), "reads stay within a bounded latency");
    }
    // After the stall: the invalidation that could not reach Redis was retried.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let data = app.ok_as(&anonymous, PAGE, vars.clone()).await;
        assert_eq!(data["organization"]["name"], "暂停后", "no stale read after Redis returns");
        if cache_state(&app).await == "redis" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = app.ok_as(&anonymous, PAGE, vars).await;
    assert_eq!(data["organization"]["name"], "暂停后");
    drop(redis);
}

#[tokio::test]
async fn a_killed_redis_loses_no_write_and_no_read_and_is_used_again_when_back() {
    if !selected(Backend::Postgres) {
        return;
    }
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let app = app_with_redis_on(port).await;
    let org = create(&app, json!({ "name": "断开之前" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    app.ok_as(&anonymous, PAGE, vars.clone()).await;
    app.ok_as(&anonymous, PAGE, vars.clone()).await;

    redis.kill().await; // connections reset, new ones refused
    let update = "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }";
    let started = Instant::now();
    app.ok(update, json!({ "i": { "id": org["id"], "name": "断开之后" } })).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the write commits without Redis");
    for _ in 0..5 {
        let started = Instant::now();
        let data = app.ok_as(&anonymous, PAGE, vars.clone()).await;
        assert_eq!(data["organization"]["name"], "断开之后", "no stale read while Redis is gone");
        assert!(started.elapsed() < Duration::from_secs(1), "reads stay within a bounded latency");
    }
    assert_eq!(cache_state(&app).await, "degraded");

    let _redis = OwnRedis::start(port).await;
    assert!(redis_used_again(&app).await, "Redis is used again without a restart");
    // The new Redis knows nothing: the pending invalidation and the re-read generations keep
    // every answer fresh.
    let data = app.ok_as(&anonymous, PAGE, vars.clone()).await;
    assert_eq!(data["organization"]["name"], "断开之后");
    app.ok(update, json!({ "i": { "id": org["id"], "name": "重新连接" } })).await;
    let data = app.ok_as(&anonymous, PAGE, vars).await;
    assert_eq!(data["organization"]["name"], "重新连接");
}

const UPDATE: &str =
    "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }";

/// Readers of one organization page while one writer renames it.
const READERS: usize = 4;

/// What a stretch of reads and writes came to.
#[derive(Default)]
struct Load {
    reads: u64,
    writes: u64,
    failures: Vec<String>,
    stale: Vec<String>,
}

impl Load {
    fn assert_clean(&self, phase: &str) {
        assert!(self.failures.is_empty(), "{phase}: no request fails: {:?}", self.failures);
        assert!(self.stale.is_empty(), "{phase}: no stale read: {:?}", self.stale);
        assert!(self.reads >= 40, "{phase}: enough reads to mean something ({})", self.reads);
    }
}

/// One writer (the manager) renames the organization `v{from+1}` … `v{from+writes}`, one
/// write after another, while `READERS` readers (three anonymous, one signed in) read its page
/// until the writer is done. A read is stale when it shows an older version than the last
/// write that had answered before the read was sent.
async fn writes_under_reads(app: &TestApp, org: &Value, from: u64, writes: u64) -> Load {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let committed = AtomicU64::new(from);
    let done = AtomicBool::new(false);
    let vars = json!({ "s": org["slug"] });
    let manager = Credentials::account(&app.manager);
    let writer = async {
        let mut load = Load::default();
        for v in from + 1..=from + writes {
            let (status, body) =
                app.send(&manager, UPDATE, json!({ "i": { "id": org["id"], "name": format!("v{v}") } })).await;
            if status == 200 && body["errors"].is_null() {
                committed.store(v, Ordering::SeqCst);
                load.writes += 1;
            } else {
                load.failures.push(format!("write v{v}: {status} {body}"));
            }
            // An edit every 20 ms or so, like a person saving often.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done.store(true, Ordering::SeqCst);
        load
    };
    let readers = (0..READERS).map(|i| {
        let credentials = if i == 0 { Credentials::account(&app.manager) } else { Credentials::anonymous() };
        let (vars, committed, done) = (vars.clone(), &committed, &done);
        async move {
            let mut load = Load::default();
            while !done.load(Ordering::SeqCst) {
                let floor = committed.load(Ordering::SeqCst);
                let (status, body) = app.send(&credentials, PAGE, vars.clone()).await;
                let name = body["data"]["organization"]["name"].as_str().unwrap_or_default().to_owned();
                match name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
                    Some(seen) if status == 200 && body["errors"].is_null() => {
                        load.reads += 1;
                        if seen < floor {
                            load.stale.push(format!("reader {i} saw v{seen} after v{floor} had answered"));
                        }
                    }
                    _ => load.failures.push(format!("reader {i}: {status} {body}")),
                }
            }
            load
        }
    });
    let (mut total, loads) = tokio::join!(writer, futures::future::join_all(readers));
    for load in loads {
        total.reads += load.reads;
        total.failures.extend(load.failures);
        total.stale.extend(load.stale);
    }
    total
}

fn redis_health(app: &TestApp) -> api::cache::RedisHealth {
    app.state.cache.redis_health().expect("the app uses Redis")
}

/// Whether an anonymous read of the page is served from the cache again (no SQL), within 2 s.
async fn served_from_cache(app: &TestApp, vars: &Value) -> bool {
    let anonymous = Credentials::anonymous();
    for _ in 0..20 {
        app.ok_as(&anonymous, PAGE, vars.clone()).await;
        let before = app.sql_statements();
        app.ok_as(&anonymous, PAGE, vars.clone()).await;
        if app.sql_statements() == before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Redis paused (SIGSTOP), then killed, then back empty, with a writer and four readers on
/// one page throughout: no request fails, no read is older than a write that had answered,
/// and only the requests in flight when Redis stalled wait on it — every later one bypasses it
/// until the breaker's probe finds Redis again (the bound is on how many wait, not how long).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_killed_redis_under_writes_costs_only_the_cache() {
    if !selected(Backend::Postgres) {
        return;
    }
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let app = app_with_redis_on(port).await;
    let org = create(&app, json!({ "name": "v0" })).await;
    let vars = json!({ "s": org["slug"] });
    assert!(redis_used_again(&app).await);
    writes_under_reads(&app, &org, 0, 10).await.assert_clean("normal");
    assert!(served_from_cache(&app, &vars).await, "normal: the cache serves the page");
    // Every task that can be waiting on Redis at one moment: the readers, the writer, and the
    // log follower.
    let in_flight = READERS as u64 + 2;

    redis.signal("STOP");
    let before = redis_health(&app);
    let paused = writes_under_reads(&app, &org, 10, 25).await;
    let after = redis_health(&app);
    paused.assert_clean("Redis paused");
    assert!(after.circuit_open, "the breaker is open while Redis is paused");
    let waited = after.waited() - before.waited();
    assert!(
        waited <= in_flight,
        "only the calls in flight when Redis stalled waited: {waited} of {} requests",
        paused.reads + paused.writes
    );
    assert_eq!(cache_state(&app).await, "degraded", "/ready answers without waiting on Redis");

    redis.signal("CONT");
    assert!(redis_used_again(&app).await, "the cache is trusted again after Redis resumes");
    assert_eq!(redis_health(&app).pending_invalidations, 0, "pending invalidations were flushed");
    assert_eq!(app.ok_as(&Credentials::anonymous(), PAGE, vars.clone()).await["organization"]["name"], "v35");
    assert!(served_from_cache(&app, &vars).await, "resumed: the cache serves the page again");

    redis.kill().await;
    let before = redis_health(&app);
    let killed = writes_under_reads(&app, &org, 35, 25).await;
    let after = redis_health(&app);
    killed.assert_clean("Redis killed");
    let waited = after.waited() - before.waited();
    assert!(
        waited <= in_flight,
        "only the calls in flight when Redis died failed: {waited} of {} requests",
        killed.reads + killed.writes
    );

    let _redis = OwnRedis::start(port).await;
    assert!(redis_used_again(&app).await, "the cache is trusted again after Redis restarts empty");
    assert_eq!(app.ok_as(&Credentials::anonymous(), PAGE, vars.clone()).await["organization"]["name"], "v60");
    writes_under_reads(&app, &org, 60, 10).await.assert_clean("Redis back, empty");
    assert!(served_from_cache(&app, &vars).await, "back: the cache serves the page again");
}

/// Live subscriptions do not go through Redis, and nothing they do waits on it: with Redis
/// paused a subscription starts, and a confirmed donation reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_blocks_no_subscription() {
    use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
    use crate::helpers::{next_data, subscribe};
    if !selected(Backend::Postgres) {
        return;
    }
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let app = app_with_redis_on(port).await;
    let org = create(&app, json!({ "name": "订阅不等缓存" })).await;
    let campaign = campaign_gid(campaign_in(&app, row_of(&org["id"]), "ACTIVE").await);
    let progress = "subscription($id: ID!) { campaignProgress(id: $id) { eventType progress { raisedFen } } }";

    redis.signal("STOP");
    let mut socket = subscribe(&app, json!({}), progress, json!({ "id": campaign })).await;
    assert_eq!(next_data(&mut socket, "campaignProgress").await["progress"]["raisedFen"], 0);
    let manager = Credentials::account(&app.manager);
    for (i, raised) in [(1, 8_800), (2, 17_600)] {
        let input = json!({ "campaignId": campaign, "amountFen": 8_800, "channel": "BANK_TRANSFER",
            "clientKey": format!("paused-{i}"), "recordForGuest": true, "donorName": "林女士" });
        let donation = app.ok_as(&manager, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
        app.ok_as(&manager, CONFIRM, json!({ "i": { "id": donation } })).await;
        let mut pushed = next_data(&mut socket, "campaignProgress").await;
        // A subscription without a cursor starts at the follower's position: on a loaded
        // machine the campaign's own approval, committed just before, may still come first.
        while pushed["eventType"].as_str().is_some_and(|t| t.starts_with("campaign.")) {
            pushed = next_data(&mut socket, "campaignProgress").await;
        }
        assert_eq!(pushed["eventType"], "donation.confirmed");
        assert_eq!(pushed["progress"]["raisedFen"], raised, "the push carries the new total, not a cached one");
    }
    let health = redis_health(&app);
    assert!(health.circuit_open, "Redis was bypassed");
    assert!(health.waited() <= 3, "only the first calls after the stall waited: {health:?}");
    redis.signal("CONT");
}

/// Redis restarts empty and its generation counters climb back to the values a cached answer
/// was computed under: the answer is not served again (generations of different Redis
/// sessions are never compared).
#[tokio::test]
async fn generations_from_before_a_redis_restart_never_validate_an_answer() {
    use sea_orm::ConnectionTrait;
    if !selected(Backend::Postgres) {
        return;
    }
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let app = app_with_redis_on(port).await;
    let org = create(&app, json!({ "name": "重启之前" })).await;
    let anonymous = Credentials::anonymous();
    let vars = json!({ "s": org["slug"] });
    app.ok_as(&anonymous, PAGE, vars.clone()).await;
    let prefix = app.state.settings.cache_prefix.clone();
    let org_row = crate::crowdfunding::row_of(&org["id"]);
    let keys = [format!("{prefix}:gen:organizations"), format!("{prefix}:gen:organization:{org_row}")];
    let read = |url: String| {
        let keys = keys.clone();
        async move {
            let client = redis::Client::open(url).expect("url");
            let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
            let values: Vec<Option<u64>> =
                redis::pipe().get(&keys[0]).get(&keys[1]).query_async(&mut conn).await.expect("read");
            (conn, values)
        }
    };
    let (_, saved) = read(redis.url()).await;

    redis.kill().await;
    let redis = OwnRedis::start(port).await;
    let (mut conn, now) = read(redis.url()).await;
    assert_eq!(now, vec![None, None], "the restarted Redis is empty");
    for _ in 0..50 {
        if app.state.cache.generations(&["organizations"]).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A change the cache never heard of (straight to the database), and the counters back at
    // exactly the values the cached answer was computed under.
    app.state
        .db
        .execute_unprepared(&format!("UPDATE organizations SET name = '重启之后' WHERE id = {org_row}"))
        .await
        .expect("update");
    let _: () = redis::pipe()
        .set(&keys[0], saved[0].unwrap_or(0))
        .set(&keys[1], saved[1].unwrap_or(0))
        .query_async(&mut conn)
        .await
        .expect("set");
    let data = app.ok_as(&anonymous, PAGE, vars).await;
    assert_eq!(data["organization"]["name"], "重启之后", "no answer from before the restart is served");
}

#[tokio::test]
async fn sigterm_under_load_finishes_in_flight_requests_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("incubase-sigterm-{}", uuid::Uuid::new_v4().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_incubase"))
        .env("DATABASE_URL", format!("sqlite://{}/db.sqlite?mode=rwc", dir.display()))
        .env("INCUBASE_LISTEN", "127.0.0.1:0")
        .env("INCUBASE_JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
        .env("INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE", "1000")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the incubase binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        if let Some(rest) = line.split("listening on ").nth(1) {
            base = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let base = base.expect("the server prints the URL it listens on");
    let client = reqwest::Client::new();

    // Sign-ups hash passwords: slow enough to be in flight when the signal arrives.
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/graphql");
            tokio::spawn(async move {
                let body = json!({ "query": "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
                    "variables": { "i": { "email": format!("load{i}@example.org"), "password": "Spring-Festival-2026", "displayName": "负载" } } });
                let response = client.post(url).json(&body).send().await.expect("in-flight request answered");
                (response.status().as_u16(), response.json::<Value>().await.expect("json"))
            })
        })
        .collect();
    // Wait until every request has reached the server, then send SIGTERM.
    let mut arrived = false;
    for _ in 0..200 {
        let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
        let count: u64 = metrics
            .lines()
            .find(|l| l.starts_with("incubase_http_graphql_requests_total "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        if count >= 12 {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(arrived, "the requests reached the server");
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());

    for request in requests {
        let (status, body) = request.await.expect("task");
        assert_eq!(status, 200, "in-flight requests complete: {body}");
        assert!(body["data"]["signUp"]["accessToken"].is_string(), "{body}");
    }
    let exit = tokio::time::timeout(Duration::from_secs(40), child.wait()).await.expect("exits").expect("status");
    assert_eq!(exit.code(), Some(0), "exit code 0 after SIGTERM");
    let refused = client.get(format!("{base}/health")).send().await;
    assert!(refused.is_err(), "new connections are refused after shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

/// A TCP proxy in front of the machine's PostgreSQL, so a test can take "the database" away
/// (every connection cut, new ones refused) and bring it back without touching the server that
/// other tests share.
struct CuttableProxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> Self {
        let mut proxy = Self { port: free_port(), upstream, task: None };
        proxy.restore().await;
        proxy
    }

    async fn restore(&mut self) {
        let mut bound = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => {
                    bound = Some(listener);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let listener = bound.expect("the proxy port can be bound again");
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when the task is aborted) aborts every connection with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// The database "goes away": open connections are cut and new ones refused.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The documented behaviour in a database outage: cached public pages keep answering (from
/// the response cache, correct as of the last write), everything that needs the database —
/// uncached reads, signed-in reads, writes — fails fast with `SERVICE_UNAVAILABLE`, `/ready`
/// says 503 while `/health` stays 200, and service resumes by itself when the database
/// returns, with writes reaching the cached pages again.
#[tokio::test]
async fn a_database_outage_fails_fast_and_the_server_recovers_by_itself() {
    if !selected(Backend::Postgres) {
        return;
    }
    let admin = crate::helpers::pg_admin_url();
    let upstream = admin.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port").to_owned();
    let mut proxy = CuttableProxy::start(upstream.clone()).await;
    let port = proxy.port;
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database_url = s.database_url.replacen(&upstream, &format!("127.0.0.1:{port}"), 1);
        s.database_acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let anonymous = Credentials::anonymous();
    let manager = Credentials::account(&app.manager);
    let org = create(&app, json!({ "name": "停电之前" })).await;
    let page = json!({ "s": org["slug"] });
    app.ok_as(&anonymous, &uncached(), json!({})).await;
    // The public page, cached before the outage.
    app.ok_as(&anonymous, PAGE, page.clone()).await;
    app.ok_as(&anonymous, PAGE, page.clone()).await;

    proxy.cut().await;
    for attempt in 0..3 {
        let started = Instant::now();
        let (status, body) = app.send(&anonymous, &uncached(), json!({})).await;
        assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "attempt {attempt}: {status} {body}");
        assert!(started.elapsed() < Duration::from_secs(3), "fails fast, not after a hang: {:?}", started.elapsed());
    }
    for attempt in 0..20 {
        let (status, body) = app.send(&anonymous, PAGE, page.clone()).await;
        assert_eq!(status, 200, "attempt {attempt}: {body}");
        assert_eq!(body["data"]["organization"]["name"], "停电之前", "a cached public page answers: {body}");
    }
    // A hot session is in the cache: a signed-in read of cached data answers, one that needs
    // the database fails fast.
    let (status, body) = app.send(&manager, PAGE, page.clone()).await;
    assert_eq!((status, &body["data"]["organization"]["name"]), (200, &json!("停电之前")), "{body}");
    let (_, body) = app.send(&manager, &uncached(), json!({})).await;
    assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "a signed-in read of the database: {body}");
    let (_, body) = app.send(&manager, UPDATE, json!({ "i": { "id": org["id"], "name": "停电期间" } })).await;
    assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "a write fails cleanly too: {body}");
    let ready = app.client.get(app.url("/ready")).send().await.expect("sent");
    assert_eq!(ready.status().as_u16(), 503, "not ready while the database is away");
    let health = app.client.get(app.url("/health")).send().await.expect("sent");
    assert_eq!(health.status().as_u16(), 200, "the process itself is alive");

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        let (_, body) = app.send(&anonymous, &uncached(), json!({})).await;
        if body["data"]["organizations"]["totalCount"].is_number() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(recovered, "the server recovers by itself when the database returns");
    let ready = app.client.get(app.url("/ready")).send().await.expect("sent");
    assert_eq!(ready.status().as_u16(), 200);
    let data = app.ok_as(&anonymous, PAGE, page.clone()).await;
    assert_eq!(data["organization"]["name"], "停电之前", "the failed write changed nothing");
    app.ok_as(&manager, UPDATE, json!({ "i": { "id": org["id"], "name": "恢复之后" } })).await;
    let data = app.ok_as(&anonymous, PAGE, page).await;
    assert_eq!(data["organization"]["name"], "恢复之后", "writes work again and reach the cached page");
}

/// A real deadlock on the money path: the test holds the campaign row and then asks for the
/// donation row a confirmation already holds. PostgreSQL breaks the cycle by aborting the
/// confirmation (it waited first, so its deadlock check runs first); the server retries it
/// and the donation is confirmed once, with the total exact.
#[tokio::test]
async fn a_deadlocked_confirmation_is_retried_and_applies_once() {
    use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if !selected(Backend::Postgres) {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |_| {}).await;
    let org = create(&app, json!({ "name": "死锁演练" })).await;
    let campaign_row = campaign_in(&app, row_of(&org["id"]), "ACTIVE").await;
    let input = json!({ "campaignId": campaign_gid(campaign_row), "amountFen": 8_800, "channel": "BANK_TRANSFER",
        "clientKey": "deadlock", "recordForGuest": true, "donorName": "林女士" });
    let donation = app.ok(DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
    let donation_row = row_of(&donation);
    let retries_before = api::service::transient_retries();

    let blocker = app.state.db.begin().await.expect("begin");
    blocker
        .execute_unprepared(&format!("UPDATE campaigns SET updated_at = updated_at WHERE id = {campaign_row}"))
        .await
        .expect("hold the campaign row");
    let confirming = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        let token = app.manager.token.clone();
        let body = json!({ "query": CONFIRM, "variables": { "i": { "id": donation } } });
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    // Wait until the confirmation holds the donation row and waits for the campaign row.
    let admin = sea_orm::Database::connect(app.state.settings.database_url.as_str()).await.expect("connect");
    let mut waiting = false;
    for _ in 0..100 {
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            ))
            .await
            .expect("query")
            .expect("row");
        if row.try_get::<i64>("", "n").expect("n") >= 1 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waiting, "the confirmation waits for the campaign row");
    // Close the cycle. PostgreSQL aborts the confirmation's transaction (deadlock_timeout later).
    blocker
        .execute_unprepared(&format!("SELECT id FROM donations WHERE id = {donation_row} FOR UPDATE"))
        .await
        .expect("the test's transaction is not the victim");
    blocker.rollback().await.expect("rollback");

    let body = confirming.await.expect("task");
    assert!(body["errors"].is_null(), "the retried confirmation succeeds: {body}");
    assert_eq!(body["data"]["confirmDonation"]["donation"]["status"], "CONFIRMED");
    assert_eq!(body["data"]["confirmDonation"]["progress"]["raisedFen"], 8_800);
    assert!(api::service::transient_retries() > retries_before, "the deadlock was retried, not avoided");
    let raised = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT raised_fen, CAST(donation_count AS BIGINT) AS donation_count FROM campaigns WHERE id = {campaign_row}"),
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(raised.try_get::<i64>("", "raised_fen").expect("raised"), 8_800, "counted once");
    assert_eq!(raised.try_get::<i64>("", "donation_count").expect("count"), 1);
}

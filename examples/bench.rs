//! The benchmark: seeds a data set, starts the release server as its own process against
//! SQLite + in-process cache and PostgreSQL + Redis, drives load from this process over
//! loopback for fixed durations, and prints one table per backend.
//!
//!     scripts/bench [--scale small|large|both] [--seconds 10] [--connections 32] [--backend sqlite|postgres|both] [--rows 6,8]
//!
//! `--scale large` adds the data set (2k organizations, 10k events, 1M donations);
//! `both` runs small then large and prints the campaign list's p50 ratio.
//!
//! `--faults [--readers 4]` runs the fault phases instead (`bench/faults.rs`): Redis paused,
//! killed and back, the database cut and back, under one writer and several readers.
//!
//! Figures, not assertions: timing never goes into the test suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "bench/faults.rs"]
mod faults;

struct Options {
    scale: String,
    seconds: u64,
    connections: usize,
    backend: String,
    server: String,
    /// `--rows 3a,7,signed`: only these rows (besides the references poem and 1); all when empty.
    rows: Vec<String>,
}

impl Options {
    /// Whether the row with this id runs (ids: 2 3 3a 3b 4 5 6 8 7 signed hot).
    fn wants(&self, id: &str) -> bool {
        self.rows.is_empty() || self.rows.iter().any(|r| r == id)
    }
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    Options {
        scale: get("--scale").unwrap_or_else(|| "small".into()),
        seconds: get("--seconds").and_then(|v| v.parse().ok()).unwrap_or(10),
        connections: get("--connections").and_then(|v| v.parse().ok()).unwrap_or(32),
        backend: get("--backend").unwrap_or_else(|| "both".into()),
        server: get("--server").unwrap_or_else(|| "target/release/incubase".into()),
        rows: get("--rows").map(|r| r.split(',').map(str::to_owned).collect()).unwrap_or_default(),
    }
}

/// One request shape, sent again and again.
#[derive(Clone)]
struct Shot {
    url: String,
    body: Arc<String>,
    token: Option<String>,
}

struct Stats {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn drive(shot: &Shot, seconds: u64, connections: usize) -> Stats {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    // Warm-up: connections open, caches filled.
    for _ in 0..50 {
        let _ = send(&client, shot).await;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let client = client.clone();
            let shot = shot.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(100_000);
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !send(&client, &shot).await {
                        errors += 1;
                    }
                    latencies.push(t.elapsed().as_micros() as u32);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    Stats { requests: all.len() as u64, errors, rps: all.len() as f64 / elapsed, p50_ms: pct(0.50), p99_ms: pct(0.99) }
}

async fn send(client: &reqwest::Client, shot: &Shot) -> bool {
    let mut request =
        client.post(&shot.url).header("content-type", "application/json").body(shot.body.as_str().to_owned());
    if let Some(token) = &shot.token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// The server's resident memory now and its peak so far (`VmRSS` and `VmHWM`), in MiB.
fn rss_mib(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Memory { now: field("VmRSS:"), peak: field("VmHWM:") }
}

#[derive(Clone, Copy, Default)]
struct Memory {
    now: f64,
    peak: f64,
}

/// CPU time the process has used, user and system, all threads, in microseconds (from
/// `/proc/<pid>/stat`, whose clock ticks are USER_HZ, 100 per second on Linux).
fn cpu_micros(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) * 10_000
}

async fn sql_statements(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("incubase_sql_statements_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

struct Server {
    child: tokio::process::Child,
    base: String,
}

/// Starts a process that prints `listening on http://…` and returns its address.
async fn start(program: &str, args: &[&str], env: &[(String, String)]) -> Server {
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).env("RUST_LOG", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child =
        command.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e} (run scripts/bench, which builds it)"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Server { child, base };
        }
    }
    panic!("{program} exited before listening");
}

/// The reference: a bare poem handler, in a process of its own like the server.
async fn serve_reference() {
    use poem::{Route, Server as PoemServer, handler, post};
    #[handler]
    fn hello() -> &'static str {
        "{\"data\":{\"__typename\":\"Query\"}}"
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
    PoemServer::new_with_acceptor(acceptor).run(Route::new().at("/graphql", post(hello))).await.unwrap();
}

async fn seed(opts: &Options, env: &[(String, String)], scale: &str) {
    let status = tokio::process::Command::new(&opts.server)
        .arg("seed-demo")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "seed-demo failed");
    if scale == "large" {
        let url = &env.iter().find(|(k, _)| k == "DATABASE_URL").unwrap().1;
        let started = Instant::now();
        seed_large(url).await;
        println!("seeded the large data set in {:.1} s", started.elapsed().as_secs_f64());
    }
}

/// The large data set beside the demo base, in bulk SQL (rows generated by the
/// database, not sent one by one): organizations up to 2,000 (each with a focus area and its
/// first stage), 10,000 events over five years, and 1,000,000 donations spread over the
/// published campaigns since the start of the year, 96% confirmed with receipt numbers that
/// continue the year's counter. Campaign totals are then recomputed from the records, so
/// they equal the confirmed sums exactly (the donate scenario's check relies on it).
async fn seed_large(url: &str) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    const ORGANIZATIONS: i64 = 2_000;
    const EVENTS: i64 = 10_000;
    const DONATIONS: i64 = 1_000_000;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let run = |sql: String| {
        let db = &db;
        async move {
            db.execute_unprepared(&sql).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
        }
    };
    let scalar = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move {
            let row = db.query_one_raw(Statement::from_string(backend, sql.clone())).await.unwrap().unwrap();
            row.try_get_by_index::<Option<i64>>(0).unwrap().unwrap_or(0)
        }
    };
    // `g` runs from 1 to n; both backends take the CTE before INSERT.
    let series = |n: i64| {
        if postgres {
            format!("WITH RECURSIVE s(g) AS (SELECT generate_series(1, {n})::bigint)")
        } else {
            format!("WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})")
        }
    };
    // A timestamp from Unix seconds, as each backend stores a `DateTime<Utc>` (SQLite: the
    // RFC 3339 text sqlx writes, so text order is time order).
    let at = |seconds: String| {
        if postgres {
            format!("to_timestamp({seconds})")
        } else {
            format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {seconds}, 'unixepoch')")
        }
    };
    let now = chrono::Utc::now().timestamp();

    let existing = scalar("SELECT COUNT(*) FROM organizations").await;
    let more = (ORGANIZATIONS - existing).max(0);
    run(format!(
        "{} INSERT INTO organizations (slug, name, kind, description, stage, stage_changed_at, created_at, updated_at) \
         SELECT 'bulk-org-' || g, '厦门市批量社会组织' || g, 'SOCIAL_SERVICE_AGENCY', '', 'LIAISON', {t}, {t}, {t} FROM s",
        series(more),
        t = at(format!("{now} - 86400 * 400"))
    ))
    .await;
    run("INSERT INTO organization_focus_areas (organization_id, focus_area) \
         SELECT id, 'FAMILY' FROM organizations WHERE slug LIKE 'bulk-org-%'"
        .to_owned())
    .await;
    run(
        "INSERT INTO organization_stage_transitions (organization_id, from_stage, to_stage, note, occurred_at, recorded_at) \
         SELECT id, NULL, 'LIAISON', '', created_at, created_at FROM organizations WHERE slug LIKE 'bulk-org-%'"
        .to_owned())
    .await;

    // Events: every organization runs some, one about every four hours over the last four
    // years and the next one, so a calendar month holds about 170.
    let span = 5 * 365 * 86_400i64;
    let from = now - 4 * 365 * 86_400;
    run(format!(
        "{} , o AS (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k FROM organizations) \
         INSERT INTO events (kind, title, summary, description, starts_at, ends_at, time_zone, venue_address, organizer_id, \
           status, capacity, seats_taken, group_limit, requires_approval, requires_identity_document, audience_tags, \
           questions, created_at, updated_at) \
         SELECT CASE WHEN g % 2 = 0 THEN 'SALON' ELSE 'PROMOTION' END, '批量活动' || g, '', '', {starts}, {ends}, \
           'Asia/Shanghai', '厦门市思明区妇女儿童活动中心', o.id, 'PUBLISHED', 40, 0, 4, {no}, {no}, '[]', '[]', {starts}, {starts} \
         FROM s JOIN o ON o.k = g % {orgs}",
        series(EVENTS),
        starts = at(format!("{from} + g * {step}", step = span / EVENTS)),
        ends = at(format!("{from} + g * {step} + 7200", step = span / EVENTS)),
        no = if postgres { "false" } else { "0" },
        orgs = ORGANIZATIONS.max(existing),
    ))
    .await;

    // Donations: since the start of this year at the base (UTC+8), so their receipt numbers
    // belong to this year's counter and continue it without a gap.
    let base_now = chrono::Utc::now() + chrono::Duration::hours(8);
    use chrono::Datelike;
    let year = base_now.year();
    let year_start =
        chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp()
            - 8 * 3600;
    let (first, last) = (year_start + 3600, now - 3600);
    let counted = scalar(&format!("SELECT last_number FROM receipt_counters WHERE year = {year}")).await;
    let campaigns = scalar("SELECT COUNT(*) FROM campaigns WHERE published_at IS NOT NULL").await;
    assert!(campaigns > 0, "the demo base has published campaigns");
    assert!(counted + DONATIONS < 10_000_000, "receipt numbers fit the format");
    let receipt = if postgres {
        format!(
            "'{year}-' || CASE WHEN {counted} + n.r < 1000000 THEN lpad(({counted} + n.r)::text, 6, '0') \
             ELSE ({counted} + n.r)::text END"
        )
    } else {
        format!("printf('{year}-%06d', {counted} + n.r)")
    };
    let created = format!("{first} + (g * {}) / {DONATIONS}", (last - first).max(DONATIONS));
    run(format!(
        "{series}, \
         d AS (SELECT g, CASE WHEN g % 100 < 3 THEN 'PLEDGED' WHEN g % 100 = 3 THEN 'CANCELLED' ELSE 'CONFIRMED' END AS status FROM s), \
         n AS (SELECT g, status, ROW_NUMBER() OVER (PARTITION BY status ORDER BY g) AS r FROM d), \
         c AS (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k FROM campaigns WHERE published_at IS NOT NULL) \
         INSERT INTO donations (campaign_id, amount_fen, channel, donor_name, display_mode, message, status, content_digest, \
           receipt_number, confirmed_at, cancelled_at, created_at) \
         SELECT c.id, 100 + (g * 7919) % 100000, 'ONLINE_PLATFORM', '捐赠人' || g, \
           CASE g % 10 WHEN 0 THEN 'ANONYMOUS' WHEN 1 THEN 'MASKED' ELSE 'PUBLIC' END, '', n.status, '', \
           CASE WHEN n.status = 'CONFIRMED' THEN {receipt} END, \
           CASE WHEN n.status = 'CONFIRMED' THEN {confirmed} END, \
           CASE WHEN n.status = 'CANCELLED' THEN {confirmed} END, {created_at} \
         FROM n JOIN c ON c.k = n.g % {campaigns}",
        series = series(DONATIONS),
        confirmed = at(format!("{created} + 60")),
        created_at = at(created.clone()),
    ))
    .await;
    let bulk_confirmed = (1..=DONATIONS).filter(|g| g % 100 > 3).count() as i64;
    run(format!(
        "INSERT INTO receipt_counters (year, last_number) VALUES ({year}, {last}) \
         ON CONFLICT (year) DO UPDATE SET last_number = excluded.last_number",
        last = counted + bulk_confirmed
    ))
    .await;
    // Totals from the records: raised = confirmed + reversing records; counts exclude refunded.
    run("UPDATE campaigns SET \
           raised_fen = COALESCE((SELECT SUM(amount_fen) FROM donations d WHERE d.campaign_id = campaigns.id \
             AND d.status IN ('CONFIRMED', 'REFUNDED')), 0), \
           donation_count = (SELECT COUNT(*) FROM donations d WHERE d.campaign_id = campaigns.id \
             AND d.status = 'CONFIRMED' AND d.refunded_at IS NULL), \
           donor_count = COALESCE((SELECT COUNT(DISTINCT d.donor_account_id) \
             + SUM(CASE WHEN d.donor_account_id IS NULL THEN 1 ELSE 0 END) FROM donations d \
             WHERE d.campaign_id = campaigns.id AND d.status = 'CONFIRMED' AND d.refunded_at IS NULL), 0)"
        .to_owned())
    .await;
    run("ANALYZE".to_owned()).await;
}

async fn manager_token(opts: &Options, env: &[(String, String)], base: &str) -> String {
    let _ = (opts, env);
    let body = json!({ "query": "mutation { signIn(input: { email: \"manager@demo.incubase.cn\", password: \"incubase-demo-2026\" }) { accessToken } }" });
    let response: Value =
        reqwest::Client::new().post(format!("{base}/graphql")).json(&body).send().await.unwrap().json().await.unwrap();
    response["data"]["signIn"]["accessToken"].as_str().expect("demo manager signs in").to_owned()
}

struct Row {
    name: String,
    stats: Stats,
    sql_per_request: Option<f64>,
    /// Server CPU (user + system, every thread) per request, in µs.
    cpu_us: Option<f64>,
    rss: Memory,
    note: Option<String>,
}

async fn scenario(name: &str, server: &Server, shot: Shot, opts: &Options) -> Row {
    let pid = server.child.id().unwrap_or(0);
    let before = sql_statements(&server.base).await;
    let cpu_before = cpu_micros(pid);
    let stats = drive(&shot, opts.seconds, opts.connections).await;
    let cpu = cpu_micros(pid) - cpu_before;
    let after = sql_statements(&server.base).await;
    // The warm-up's 50 requests count too.
    let sql = (after - before) as f64 / (stats.requests + 50) as f64;
    Row {
        name: name.into(),
        cpu_us: Some(cpu as f64 / (stats.requests + 50) as f64),
        stats,
        sql_per_request: Some(sql),
        rss: rss_mib(server.child.id().unwrap_or(0)),
        note: None,
    }
}

/// Scenario 6: donate + confirm pairs on one hot campaign as fast as they go, then check
/// that the campaign's total equals what was confirmed, to the fen.
async fn donations(server: &Server, token: &str, campaign: &str, opts: &Options) -> Row {
    let client = reqwest::Client::builder().pool_max_idle_per_host(opts.connections).build().unwrap();
    let url = format!("{}/graphql", server.base);
    let progress = |client: reqwest::Client, url: String| async move {
        let body = json!({ "query": "query($id: ID!) { campaign(id: $id) { progress { raisedFen } } }", "variables": { "id": campaign } });
        let v: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
        v["data"]["campaign"]["progress"]["raisedFen"].as_i64().unwrap_or(-1)
    };
    let before = progress(client.clone(), url.clone()).await;
    let sql_before = sql_statements(&server.base).await;
    let pid = server.child.id().unwrap_or(0);
    let cpu_before = cpu_micros(pid);
    let deadline = Instant::now() + Duration::from_secs(opts.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..opts.connections)
        .map(|w| {
            let (client, url, token, campaign) = (client.clone(), url.clone(), token.to_owned(), campaign.to_owned());
            tokio::spawn(async move {
                let (mut latencies, mut confirmed_fen, mut errors, mut i) = (Vec::new(), 0i64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let amount = 100 + (i % 7) as i64;
                    let donate = json!({ "query": "mutation($i: DonateInput!) { donate(input: $i) { donation { id } } }",
                        "variables": { "i": { "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM", "clientKey": format!("bench-{w}-{i}-{}", uuid::Uuid::new_v4().simple()) } } });
                    let d: Value = client.post(&url).bearer_auth(&token).json(&donate).send().await.unwrap().json().await.unwrap();
                    let Some(id) = d["data"]["donate"]["donation"]["id"].as_str().map(str::to_owned) else { errors += 1; i += 1; continue };
                    let confirm = json!({ "query": "mutation($i: ConfirmDonationInput!) { confirmDonation(input: $i) { donation { status } } }", "variables": { "i": { "id": id } } });
                    let c: Value = client.post(&url).bearer_auth(&token).json(&confirm).send().await.unwrap().json().await.unwrap();
                    if c["data"]["confirmDonation"]["donation"]["status"] == "CONFIRMED" { confirmed_fen += amount } else { errors += 1 }
                    latencies.push(t.elapsed().as_micros() as u32);
                    i += 1;
                }
                (latencies, confirmed_fen, errors)
            })
        })
        .collect();
    let (mut all, mut confirmed, mut errors) = (Vec::new(), 0i64, 0u64);
    for w in workers {
        let (l, c, e) = w.await.unwrap();
        all.extend(l);
        confirmed += c;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    let after = progress(client, url).await;
    let pairs = all.len() as u64;
    let cpu = (cpu_micros(pid) - cpu_before) as f64 / (pairs * 2).max(1) as f64;
    let sql = (sql_statements(&server.base).await - sql_before) as f64 / (pairs * 2).max(1) as f64;
    let exact = after - before == confirmed;
    Row {
        name: "6 donate + confirm on one campaign (pairs)".into(),
        stats: Stats { requests: pairs, errors, rps: pairs as f64 / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99) },
        sql_per_request: Some(sql),
        cpu_us: Some(cpu),
        rss: rss_mib(server.child.id().unwrap_or(0)),
        note: Some(format!(
            "donations: {pairs} confirmed in {elapsed:.1}s ({:.0}/s); raisedFen grew by {} fen, confirmed {} fen → {}",
            pairs as f64 / elapsed,
            after - before,
            confirmed,
            if exact { "EXACT" } else { "MISMATCH" }
        )),
    }
}

/// Scenario 8: a WeChat Pay bill of `STATEMENT_LINES` lines, each matching a pledge seeded for
/// it, uploaded once to `POST /reconcile/statements` (the body is past the GraphQL limit);
/// donations confirmed per second, then checked in the database: the campaign's total grew by
/// the bill's sum to the fen, every pledge has its own receipt number and the numbers run
/// without a gap. The issue asks ≥ 5,000/s on PostgreSQL.
async fn statement_apply(server: &Server, token: &str, campaign: &str, env: &[(String, String)]) -> Row {
    use base64::Engine;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    const STATEMENT_LINES: i64 = 10_000;
    let url = &env.iter().find(|(k, _)| k == "DATABASE_URL").unwrap().1;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let scalar = |sql: String| {
        let db = &db;
        async move {
            let row = db.query_one_raw(Statement::from_string(backend, sql.clone())).await.unwrap().unwrap();
            row.try_get_by_index::<Option<i64>>(0).unwrap().unwrap_or(0)
        }
    };
    let campaign_row: i64 = {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(campaign).unwrap();
        String::from_utf8(raw).unwrap().strip_prefix("Campaign:").unwrap().parse().unwrap()
    };
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (series, created) = if postgres {
        (
            format!("WITH RECURSIVE s(g) AS (SELECT generate_series(1, {STATEMENT_LINES})::bigint)"),
            "now() - interval '1 minute'".to_owned(),
        )
    } else {
        (
            format!("WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {STATEMENT_LINES})"),
            "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-1 minute')".to_owned(),
        )
    };
    // Pledges of guests, as the partner site records them before the payment.
    db.execute_unprepared(&format!(
        "{series} INSERT INTO donations (campaign_id, amount_fen, channel, external_reference, donor_name, display_mode, \
           message, status, content_digest, created_at) \
         SELECT {campaign_row}, 100 + (g * 7919) % 90000, 'ONLINE_PLATFORM', 'BENCH-{run}-' || g, '捐赠人' || g, \
           'MASKED', '', 'PLEDGED', '', {created} FROM s"
    ))
    .await
    .unwrap();
    let amount = |g: i64| 100 + (g * 7919) % 90_000;
    let mut bill = String::from(
        "交易时间,公众账号ID,商户号,微信订单号,商户订单号,交易类型,交易状态,货币种类,应结订单金额,商品名称,商户数据包,订单金额\r\n",
    );
    for g in 1..=STATEMENT_LINES {
        let fen = amount(g);
        let yuan = format!("{}.{:02}", fen / 100, fen % 100);
        bill.push_str(&format!(
            "`2026-12-01 10:00:00,`wx8888888888888888,`1600000001,`4200{run}{g:08},`BENCH-{run}-{g},`NATIVE,`SUCCESS,`CNY,`{yuan},`公益捐赠,`,`{yuan}\r\n"
        ));
    }
    let expected_fen: i64 = (1..=STATEMENT_LINES).map(amount).sum();
    let raised = format!("SELECT raised_fen FROM campaigns WHERE id = {campaign_row}");
    let before = scalar(raised.clone()).await;
    let sql_before = sql_statements(&server.base).await;
    let pid = server.child.id().unwrap_or(0);
    let cpu_before = cpu_micros(pid);
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/reconcile/statements?profile=WECHAT_PAY&statementId=bench-{run}", server.base))
        .bearer_auth(token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(bill)
        .send()
        .await
        .unwrap();
    let ok = response.status().is_success();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_micros(pid) - cpu_before) as f64 / STATEMENT_LINES as f64;
    let sql = (sql_statements(&server.base).await - sql_before) as f64 / STATEMENT_LINES as f64;
    let confirmed = answer["report"]["confirmedCount"].as_i64().unwrap_or(0);
    let grew = scalar(raised).await - before;
    let ours = format!("FROM donations WHERE external_reference LIKE 'BENCH-{run}-%' AND status = 'CONFIRMED'");
    let receipts = scalar(format!("SELECT COUNT(DISTINCT receipt_number) {ours}")).await;
    let number = if postgres {
        "CAST(substr(receipt_number, 6) AS BIGINT)"
    } else {
        "CAST(substr(receipt_number, 6) AS INTEGER)"
    };
    let span = scalar(format!("SELECT MAX({number}) - MIN({number}) + 1 {ours}")).await;
    let exact = ok
        && confirmed == STATEMENT_LINES
        && grew == expected_fen
        && receipts == STATEMENT_LINES
        && span == STATEMENT_LINES;
    Row {
        name: format!("8 statement of {STATEMENT_LINES} lines applied (lines)"),
        stats: Stats {
            requests: confirmed as u64,
            errors: (STATEMENT_LINES - confirmed).max(0) as u64,
            rps: confirmed as f64 / elapsed,
            p50_ms: elapsed * 1000.0,
            p99_ms: elapsed * 1000.0,
        },
        sql_per_request: Some(sql),
        cpu_us: Some(cpu),
        rss: rss_mib(pid),
        note: Some(format!(
            "statement: {confirmed} of {STATEMENT_LINES} lines confirmed in {elapsed:.2}s ({:.0}/s, ≥ 5000/s asked on \
             PostgreSQL); raisedFen grew by {grew} fen of {expected_fen}; {receipts} receipt numbers spanning {span} → {}",
            confirmed as f64 / elapsed,
            if exact { "EXACT" } else { "MISMATCH" }
        )),
    }
}

/// `GLIBC_TUNABLES` as `deploy/systemd/incubase.service` sets it.
fn production_tunables() -> String {
    let unit = std::fs::read_to_string("deploy/systemd/incubase.service").expect("run from the repository's root");
    unit.lines()
        .find_map(|l| l.strip_prefix("Environment=GLIBC_TUNABLES="))
        .expect("the unit sets GLIBC_TUNABLES")
        .to_owned()
}

/// Runs every scenario on one backend at one scale; returns the uncached campaign list's p50.
async fn bench_backend(opts: &Options, backend: &str, scale: &str) -> f64 {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("incubase-bench-{id}"));
    let mut env = vec![
        ("INCUBASE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("INCUBASE_JWT_SECRET".to_owned(), "bench-secret-bench-secret-bench-secret-01".to_owned()),
        ("INCUBASE_RATE_LIMIT_PER_MINUTE".to_owned(), "100000000".to_owned()),
        ("INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE".to_owned(), "100000000".to_owned()),
        ("INCUBASE_SIGNIN_LIMIT_PER_ADDRESS".to_owned(), "100000".to_owned()),
        // The allocator settings production runs with (the systemd unit's).
        ("GLIBC_TUNABLES".to_owned(), production_tunables()),
    ];
    let mut pg_name = None;
    if backend == "postgres" {
        let name = format!("incubase_bench_{id}");
        let admin =
            sea_orm::Database::connect("postgres://postgres@127.0.0.1:5432/postgres").await.expect("PostgreSQL");
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE \"{name}\"")).await.unwrap();
        env.push(("DATABASE_URL".into(), format!("postgres://postgres@127.0.0.1:5432/{name}")));
        env.push(("REDIS_URL".into(), "redis://127.0.0.1:6379".into()));
        env.push(("INCUBASE_CACHE_PREFIX".into(), format!("incubase-bench:{id}")));
        env.push(("INCUBASE_DB_MAX_CONNECTIONS".into(), "16".into()));
        pg_name = Some(name);
    } else {
        env.push(("DATABASE_URL".into(), format!("sqlite://{}/bench.db?mode=rwc", dir.display())));
    }
    seed(opts, &env, scale).await;

    let reference = start(&std::env::current_exe().unwrap().to_string_lossy(), &["--serve-reference"], &[]).await;
    let server = start(&opts.server, &["serve"], &env).await;
    let mut uncached_env = env.clone();
    uncached_env.push(("INCUBASE_CACHE".into(), "off".into()));
    uncached_env.push(("INCUBASE_RESPONSE_CACHE_ENTRIES".into(), "0".into()));
    let uncached = start(&opts.server, &["serve"], &uncached_env).await;
    // For profilers (`perf record -p`): which process serves which rows.
    eprintln!(
        "server pid {} (cached rows), uncached server pid {} (rows 3, 3a, 3b, 7u)",
        server.child.id().unwrap_or(0),
        uncached.child.id().unwrap_or(0)
    );

    let gql = |base: &str, query: &str, variables: Value| Shot {
        url: format!("{base}/graphql"),
        body: Arc::new(json!({ "query": query, "variables": variables }).to_string()),
        token: None,
    };
    let list = "query($n: Int!) { organizations(first: $n, filter: { stage: [RESIDENT, LIAISON] }) { edges { node { id name slug stage focusAreas stageHistory { toStage occurredAt } } } } }";
    let slug: String = {
        let body =
            json!({ "query": "{ organizations(first: 1, filter: { stage: RESIDENT }) { edges { node { slug } } } }" });
        let v: Value = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]["organizations"]["edges"][0]["node"]["slug"].as_str().unwrap().to_owned()
    };
    let page = "query($s: String!) { organization(slug: $s) { id name nameTraditional kind stage focusAreas description contact { name } stageHistory { fromStage toStage occurredAt note } } }";

    let mut rows = Vec::new();
    let mut reference_row = scenario(
        "bare poem handler (reference)",
        &reference,
        Shot { url: format!("{}/graphql", reference.base), body: Arc::new("{}".into()), token: None },
        opts,
    )
    .await;
    reference_row.sql_per_request = None;
    reference_row.cpu_us = None;
    rows.push(
        scenario("1 baseline { __typename }", &server, gql(&server.base, "{ __typename }", json!({})), opts).await,
    );

    let first_campaign: String = {
        let body =
            json!({ "query": "{ campaigns(first: 1, filter: { status: [ACTIVE] }) { edges { node { id } } } }" });
        let v: Value = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]["campaigns"]["edges"][0]["node"]["id"].as_str().expect("an active demo campaign").to_owned()
    };
    let campaign_page = "query($id: ID!) { campaign(id: $id) { id title story goalFen organization { name } fundraisingQualification filingNumber progress { raisedFen donationCount donorCount percentOfGoal daysLeft donorState } donorWall(first: 10) { edges { node { displayName amountFen message donatedAt } } } } }";
    if opts.wants("2") {
        rows.push(
            scenario(
                "2 hot cached campaign page",
                &server,
                gql(&server.base, campaign_page, json!({ "id": first_campaign })),
                opts,
            )
            .await,
        );
    }
    let campaign_list = "{ campaigns(first: 20) { edges { node { id title goalFen organization { name } progress { raisedFen percentOfGoal } donorWall(first: 3) { edges { node { displayName amountFen } } } } } } }";
    if opts.wants("3") {
        rows.push(
            scenario(
                "3 campaign list of 20 + org + donors, uncached",
                &uncached,
                gql(&uncached.base, campaign_list, json!({})),
                opts,
            )
            .await,
        );
    }
    if opts.wants("3a") {
        rows.push(
            scenario(
                "3a organization page + 2 relations, uncached",
                &uncached,
                gql(&uncached.base, page, json!({ "s": slug })),
                opts,
            )
            .await,
        );
    }
    if opts.wants("3b") {
        rows.push(
            scenario(
                "3b organization list of 20 + 2 relations, uncached",
                &uncached,
                gql(&uncached.base, list, json!({ "n": 20 })),
                opts,
            )
            .await,
        );
    }
    let now = chrono::Utc::now();
    use chrono::Datelike;
    let calendar = "query($y: Int!, $m: Int!) { eventCalendar(year: $y, month: $m) { days { date events { id title kind startsAt endsAt } } } }";
    if opts.wants("4") {
        rows.push(
            scenario(
                "4 event calendar month",
                &server,
                gql(&server.base, calendar, json!({ "y": now.year(), "m": now.month() })),
                opts,
            )
            .await,
        );
    }
    let stats = "query($f: NaiveDate!, $t: NaiveDate!) { baseStats(from: $f, to: $t, groupBy: MONTH) { totals { personTimes { total women children } eventsHeld campaignRaisedFen awardedFen contractedFen projectsActive } series { label figures { personTimes { total } } } } }";
    let year_ago = (now - chrono::Duration::days(365)).date_naive();
    if opts.wants("5") {
        rows.push(
            scenario(
                "5 dashboard baseStats (a year by month)",
                &server,
                gql(&server.base, stats, json!({ "f": year_ago, "t": now.date_naive() })),
                opts,
            )
            .await,
        );
    }
    let token = manager_token(opts, &env, &server.base).await;
    if opts.wants("6") {
        rows.push(donations(&server, &token, &first_campaign, opts).await);
    }
    if opts.wants("8") {
        rows.push(statement_apply(&server, &token, &first_campaign, &env).await);
    }
    let space_ids: Vec<Value> = {
        let body = json!({ "query": "{ spaces(first: 100) { edges { node { id } } } }" });
        let v: Value = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]["spaces"]["edges"]
            .as_array()
            .map(|e| e.iter().map(|n| n["node"]["id"].clone()).collect())
            .unwrap_or_default()
    };
    let availability = "query($ids: [ID!]!, $f: DateTime!, $t: DateTime!) { availability(spaceIds: $ids, from: $f, to: $t, durationMinutes: 60) { space { name } slots { startsAt endsAt } } }";
    let week = json!({ "ids": space_ids, "f": (now + chrono::Duration::days(1)).to_rfc3339(), "t": (now + chrono::Duration::days(8)).to_rfc3339() });
    if opts.wants("7") {
        rows.push(
            scenario(
                "7 availability, all spaces, a week",
                &server,
                gql(&server.base, availability, week.clone()),
                opts,
            )
            .await,
        );
    }
    if opts.wants("7u") {
        rows.push(
            scenario(
                "7u availability, all spaces, a week, uncached",
                &uncached,
                gql(&uncached.base, availability, week),
                opts,
            )
            .await,
        );
    }
    let mut authed = gql(&server.base, page, json!({ "s": slug }));
    authed.token = Some(token);
    if opts.wants("signed") {
        rows.push(scenario("   organization page, signed in (not cached)", &server, authed, opts).await);
    }
    if opts.wants("hot") {
        rows.push(
            scenario("   hot cached organization page", &server, gql(&server.base, page, json!({ "s": slug })), opts)
                .await,
        );
    }

    // Statements per request must not grow with the page size.
    let per = |n: i64| {
        let shot = gql(&uncached.base, list, json!({ "n": n }));
        let base = uncached.base.clone();
        async move {
            let client = reqwest::Client::new();
            let before = sql_statements(&base).await;
            for _ in 0..10 {
                send(&client, &shot).await;
            }
            (sql_statements(&base).await - before) as f64 / 10.0
        }
    };
    let (ten, hundred) = (per(10).await, per(100).await);

    let baseline = rows[0].stats.rps;
    let exactness: Vec<String> = rows.iter().filter_map(|r| r.note.clone()).collect();
    println!();
    println!(
        "backend: {backend} ({}), scale {}, {} s per scenario, {} connections, {} cores",
        if backend == "postgres" { "PostgreSQL + Redis" } else { "SQLite + in-process cache" },
        scale,
        opts.seconds,
        opts.connections,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:<52} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "scenario", "req/s", "p50 ms", "p99 ms", "×base", "×poem", "SQL/req", "CPU µs", "RSS MiB", "peak MiB"
    );
    for row in std::iter::once(&reference_row).chain(rows.iter()) {
        println!(
            "{:<52} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>9} {:>7.1} {:>8.1}{}",
            row.name,
            row.stats.rps,
            row.stats.p50_ms,
            row.stats.p99_ms,
            row.stats.rps / baseline,
            row.stats.rps / reference_row.stats.rps,
            row.sql_per_request.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into()),
            row.cpu_us.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into()),
            row.rss.now,
            row.rss.peak,
            if row.stats.errors > 0 {
                format!("  ({} errors of {})", row.stats.errors, row.stats.requests)
            } else {
                String::new()
            },
        );
    }
    println!("SQL statements per uncached list request: first:10 → {ten:.1}, first:100 → {hundred:.1}");
    for exact in &exactness {
        println!("{exact}");
    }

    drop(server);
    drop(uncached);
    drop(reference);
    if let Some(name) = pg_name {
        let admin = sea_orm::Database::connect("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
        let _ = sea_orm::ConnectionTrait::execute_unprepared(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(dir);
    rows.iter().find(|r| r.name.starts_with("3 ")).map(|r| r.stats.p50_ms).unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--serve-reference") {
        serve_reference().await;
        return;
    }
    let opts = options();
    if std::env::args().any(|a| a == "--faults") {
        let args: Vec<String> = std::env::args().collect();
        let readers = args
            .iter()
            .position(|a| a == "--readers")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .filter(|n| *n >= 2)
            .unwrap_or(4);
        faults::run(&opts, readers).await;
        return;
    }
    let scales: &[&str] = match opts.scale.as_str() {
        "both" => &["small", "large"],
        "large" => &["large"],
        _ => &["small"],
    };
    for backend in ["sqlite", "postgres"] {
        if opts.backend == "both" || opts.backend == backend {
            let mut p50s = Vec::new();
            for scale in scales {
                p50s.push(bench_backend(&opts, backend, scale).await);
            }
            if let [small, large] = p50s[..] {
                println!(
                    "{backend}: uncached campaign list p50 small {small:.2} ms, large {large:.2} ms → large/small {:.2}×",
                    large / small
                );
            }
        }
    }
}

//! `scripts/bench --faults`: what a dead or stalled Redis and a database outage cost under a
//! write load.
//!
//! PostgreSQL behind a TCP proxy this process can cut (every connection dropped, new ones
//! refused) and a private `redis-server` this process can pause (SIGSTOP), kill and restart.
//! One writer (the demo manager) renames one organization every 50 ms; `--readers` readers
//! (one signed in, the others anonymous) read that organization's page as fast as they can.
//! Per phase it prints reads/s (and the ratio to the same load on a server with caching off),
//! writes/s, failures, stale reads (a read showing an older name than the last rename that had
//! answered before the read was sent) and p99 latencies; then how long the cache took to be
//! trusted again after Redis returned, and the service after the database returned.
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Options, Server, start};

const PAGE: &str = "query($s: String!) { organization(slug: $s) { id name nameTraditional kind stage focusAreas description contact { name } stageHistory { fromStage toStage occurredAt note } } }";
const RENAME: &str =
    "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }";
const WRITE_EVERY: Duration = Duration::from_millis(50);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

/// A `redis-server` of the bench's own.
struct PrivateRedis {
    child: tokio::process::Child,
    port: u16,
}

impl PrivateRedis {
    async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed");
        let redis = Self { child, port };
        for _ in 0..200 {
            if redis.pings().await {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not come up");
    }

    async fn pings(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(("127.0.0.1", self.port)))
                .await
        else {
            return false;
        };
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").await.is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_millis(200), stream.read_exact(&mut reply)).await,
                Ok(Ok(_))
            )
            && &reply == b"+PONG\r\n"
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args([format!("-{signal}"), pid]).status().unwrap().success());
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A TCP proxy in front of PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let mut proxy = Self { port: free_port(), upstream: upstream.to_owned(), task: None };
        proxy.restore().await;
        proxy
    }

    async fn restore(&mut self) {
        let mut listener = None;
        for _ in 0..200 {
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                listener = Some(l);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let listener = listener.expect("the proxy port can be bound again");
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Aborting the task drops the set, which aborts every connection in it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// What one phase came to.
#[derive(Default)]
struct Phase {
    name: String,
    seconds: f64,
    reads: u64,
    read_failures: u64,
    writes: u64,
    write_failures: u64,
    stale: u64,
    read_latencies: Vec<u32>,
    write_latencies: Vec<u32>,
}

fn p99(latencies: &mut [u32]) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    latencies[((latencies.len() as f64 * 0.99) as usize).min(latencies.len() - 1)] as f64 / 1000.0
}

/// The last rename number handed out, and the last one that answered.
type Versions = (Arc<AtomicU64>, Arc<AtomicU64>);

struct Target {
    url: String,
    slug: String,
    org_id: String,
    token: String,
}

/// The writer and the readers against `target` for `seconds`.
/// `version` numbers the renames (over the whole run), `committed` is the last one that answered.
async fn drive(name: &str, target: &Target, readers: usize, seconds: u64, versions: &Versions) -> Phase {
    let client = reqwest::Client::builder().pool_max_idle_per_host(readers + 1).build().unwrap();
    let (version, committed) = (versions.0.clone(), versions.1.clone());
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let writer = {
        let (client, url, token, id) =
            (client.clone(), target.url.clone(), target.token.clone(), target.org_id.clone());
        let (committed, version) = (committed.clone(), version.clone());
        tokio::spawn(async move {
            let (mut writes, mut failures, mut latencies) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                let v = version.fetch_add(1, Ordering::SeqCst) + 1;
                let body =
                    json!({ "query": RENAME, "variables": { "i": { "id": id, "name": format!("bench v{v}") } } });
                let ok = match client.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["errors"].is_null() && !v["data"].is_null()),
                    Err(_) => false,
                };
                latencies.push(t.elapsed().as_micros() as u32);
                if ok {
                    // Versions only grow: a failed rename leaves the last good one in place.
                    committed.fetch_max(v, Ordering::SeqCst);
                    writes += 1;
                } else {
                    failures += 1;
                }
                tokio::time::sleep(WRITE_EVERY.saturating_sub(t.elapsed())).await;
            }
            (writes, failures, latencies)
        })
    };
    let readers: Vec<_> = (0..readers)
        .map(|i| {
            let (client, url) = (client.clone(), target.url.clone());
            let token = (i == 0).then(|| target.token.clone());
            let body = json!({ "query": PAGE, "variables": { "s": target.slug } }).to_string();
            let (committed, done) = (committed.clone(), done.clone());
            tokio::spawn(async move {
                let (mut reads, mut failures, mut stale, mut latencies) = (0u64, 0u64, 0u64, Vec::new());
                while Instant::now() < deadline && !done.load(Ordering::Relaxed) {
                    let floor = committed.load(Ordering::SeqCst);
                    let t = Instant::now();
                    let mut request = client.post(&url).header("content-type", "application/json").body(body.clone());
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let seen = match request.send().await {
                        Ok(r) => r.json::<Value>().await.ok().and_then(|v| {
                            v["data"]["organization"]["name"]
                                .as_str()
                                .and_then(|n| n.strip_prefix("bench v"))
                                .and_then(|n| n.parse::<u64>().ok())
                        }),
                        Err(_) => None,
                    };
                    latencies.push(t.elapsed().as_micros() as u32);
                    match seen {
                        Some(seen) => {
                            reads += 1;
                            if seen < floor {
                                stale += 1;
                            }
                        }
                        None => {
                            failures += 1;
                            // A failing read answers at once; do not spin a core on it.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
                (reads, failures, stale, latencies)
            })
        })
        .collect();
    let mut phase = Phase { name: name.to_owned(), ..Phase::default() };
    for reader in readers {
        let (reads, failures, stale, latencies) = reader.await.unwrap();
        phase.reads += reads;
        phase.read_failures += failures;
        phase.stale += stale;
        phase.read_latencies.extend(latencies);
    }
    done.store(true, Ordering::Relaxed);
    let (writes, failures, latencies) = writer.await.unwrap();
    phase.writes = writes;
    phase.write_failures = failures;
    phase.write_latencies = latencies;
    phase.seconds = started.elapsed().as_secs_f64();
    phase
}

async fn ready(base: &str) -> (u16, Value) {
    match reqwest::get(format!("{base}/ready")).await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// Polls `/ready` every 5 ms until `good` holds; the time it took.
async fn until_ready(base: &str, good: impl Fn(u16, &Value) -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let (status, body) = ready(base).await;
        if good(status, &body) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn metric(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0)
}

async fn sign_in(base: &str) -> String {
    let body = json!({ "query": "mutation { signIn(input: { email: \"manager@demo.incubase.cn\", password: \"incubase-demo-2026\" }) { accessToken } }" });
    let v: Value =
        reqwest::Client::new().post(format!("{base}/graphql")).json(&body).send().await.unwrap().json().await.unwrap();
    v["data"]["signIn"]["accessToken"].as_str().expect("the demo manager signs in").to_owned()
}

pub async fn run(opts: &Options, readers: usize) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("incubase_bench_faults_{id}");
    let admin_url = "postgres://postgres@127.0.0.1:5432/postgres";
    let admin = sea_orm::Database::connect(admin_url).await.expect("PostgreSQL at 127.0.0.1:5432");
    sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    let status = tokio::process::Command::new(&opts.server)
        .arg("seed-demo")
        .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{name}"))
        .env("INCUBASE_JWT_SECRET", "bench-secret-bench-secret-bench-secret-01")
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "seed-demo failed");

    let mut proxy = Proxy::start("127.0.0.1:5432").await;
    let redis_port = free_port();
    let redis = PrivateRedis::start(redis_port).await;
    let env = |cache: bool| {
        let mut env = vec![
            ("INCUBASE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("INCUBASE_JWT_SECRET".to_owned(), "bench-secret-bench-secret-bench-secret-01".to_owned()),
            ("INCUBASE_RATE_LIMIT_PER_MINUTE".to_owned(), "100000000".to_owned()),
            ("INCUBASE_SIGNIN_LIMIT_PER_ADDRESS".to_owned(), "100000".to_owned()),
            ("INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE".to_owned(), "100000000".to_owned()),
            ("DATABASE_URL".to_owned(), format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port)),
            ("REDIS_URL".to_owned(), format!("redis://127.0.0.1:{redis_port}")),
            ("INCUBASE_CACHE_PREFIX".to_owned(), format!("incubase-bench-faults:{id}")),
            ("INCUBASE_DB_MAX_CONNECTIONS".to_owned(), "16".to_owned()),
        ];
        if !cache {
            env.push(("INCUBASE_CACHE".to_owned(), "off".to_owned()));
            env.push(("INCUBASE_RESPONSE_CACHE_ENTRIES".to_owned(), "0".to_owned()));
        }
        env
    };
    let slug = {
        let server = start(&opts.server, &["serve"], &env(false)).await;
        let body = json!({ "query": "{ organizations(first: 1, filter: { stage: RESIDENT }) { edges { node { slug id } } } }" });
        let v: Value = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let node = &v["data"]["organizations"]["edges"][0]["node"];
        (node["slug"].as_str().unwrap().to_owned(), node["id"].as_str().unwrap().to_owned())
    };
    let version: Versions = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let target = |server: &Server, token: String| Target {
        url: format!("{}/graphql", server.base),
        slug: slug.0.clone(),
        org_id: slug.1.clone(),
        token,
    };
    let seconds = opts.seconds;
    let mut phases = Vec::new();

    // The reference: the same load on the same database with every cache off.
    {
        let off = start(&opts.server, &["serve"], &env(false)).await;
        let t = target(&off, sign_in(&off.base).await);
        drive("warm-up", &t, readers, 2, &version).await;
        phases.push(drive("caching off (reference)", &t, readers, seconds, &version).await);
    }

    let server = start(&opts.server, &["serve"], &env(true)).await;
    let t = target(&server, sign_in(&server.base).await);
    until_ready(&server.base, |_, b| b["cache"] == "redis").await;
    drive("warm-up", &t, readers, 2, &version).await;
    phases.push(drive("normal", &t, readers, seconds, &version).await);

    redis.signal("STOP");
    phases.push(drive("Redis paused (SIGSTOP)", &t, readers, seconds, &version).await);

    // SIGKILL ends a stopped process too: connections reset, new ones refused.
    redis.kill().await;
    phases.push(drive("Redis killed", &t, readers, seconds, &version).await);

    let redis = PrivateRedis::start(redis_port).await;
    let back = Instant::now();
    let trusted = until_ready(&server.base, |_, b| b["cache"] == "redis").await.map(|_| back.elapsed());
    phases.push(drive("Redis back, empty", &t, readers, seconds, &version).await);

    proxy.cut().await;
    let cut_ready = ready(&server.base).await.0;
    phases.push(drive("database cut", &t, readers, seconds, &version).await);

    proxy.restore().await;
    let restored = Instant::now();
    let serving = until_ready(&server.base, |status, _| status == 200).await.map(|_| restored.elapsed());
    phases.push(drive("database back", &t, readers, seconds, &version).await);

    let reference = phases[0].reads as f64 / phases[0].seconds;
    let reference_writes = phases[0].writes as f64 / phases[0].seconds;
    println!();
    println!(
        "faults: PostgreSQL (through a cuttable proxy) + a private Redis, one writer renaming one organization every {} ms, {} readers of its page ({} anonymous, 1 signed in), {} s per phase, {} cores",
        WRITE_EVERY.as_millis(),
        readers,
        readers - 1,
        seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:<26} {:>9} {:>6} {:>9} {:>6} {:>14} {:>6} {:>12} {:>13}",
        "phase", "reads/s", "×off", "writes/s", "×off", "failures r/w", "stale", "p99 read ms", "p99 write ms"
    );
    for phase in &mut phases {
        let reads = phase.reads as f64 / phase.seconds;
        let writes = phase.writes as f64 / phase.seconds;
        println!(
            "{:<26} {:>9.0} {:>6.2} {:>9.1} {:>6.2} {:>14} {:>6} {:>12.2} {:>13.2}",
            phase.name,
            reads,
            reads / reference,
            writes,
            writes / reference_writes,
            format!("{}/{}", phase.read_failures, phase.write_failures),
            phase.stale,
            p99(&mut phase.read_latencies),
            p99(&mut phase.write_latencies),
        );
    }
    let ms = |d: Option<Duration>| d.map_or("not within 30 s".to_owned(), |d| format!("{} ms", d.as_millis()));
    println!("Redis back: the cache was trusted again (/ready says \"redis\") after {}", ms(trusted));
    println!("database cut: /ready answered {cut_ready}; database back: /ready 200 after {}", ms(serving));
    println!(
        "Redis calls over the run: {} timed out, {} failed, {} slow, {} skipped by the open circuit; the circuit opened {} times",
        metric(&server.base, "incubase_redis_timeouts_total").await,
        metric(&server.base, "incubase_redis_errors_total").await,
        metric(&server.base, "incubase_redis_slow_replies_total").await,
        metric(&server.base, "incubase_redis_skipped_total").await,
        metric(&server.base, "incubase_redis_circuit_opened_total").await,
    );

    drop(server);
    drop(redis);
    proxy.cut().await;
    let _ = sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await;
}

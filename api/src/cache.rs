//! The cache for hot reads: one interface, two stores (Redis in production, in-process by
//! default).
//!
//! Entries are grouped under *tags* (e.g. `organizations`). Every tag has a generation number
//! and entry keys embed it; invalidating a tag bumps the generation, so all its entries become
//! unreachable at once. A reader stores its value under the generation it saw *before* it read
//! the database: a reader that raced a writer therefore writes its old value under a generation
//! nobody reads any more, and a read after a committed write never sees the old value.
//!
//! Whole-response caching (`response_cache`) needs the *current* generation of a tag on every
//! hit. Each instance keeps a mirror of the generations it has seen: its own invalidations
//! update it at once, and other instances' arrive over Redis pub/sub (`{prefix}:invalidations`,
//! each message `{generation} {tag}`, so an instance's own bumps echoed back change nothing).
//! While the subscription is down the mirror is not trusted and the response cache is bypassed.
//!
//! With Redis, entries of content tags are also kept in this process beside it (the *near
//! tier*): an entry read from Redis is served again without a round trip while the mirror
//! says its tag is still at the generation it was read under (so exactly as long as Redis
//! would serve it), for at most `NEAR_TTL`. Tags whose answers must reflect a write on every
//! instance at once (an account's sessions: revocation is immediate) are never kept near;
//! see [`crate::tags::read_exactly`].
//!
//! Redis failures never fail a request and never make one wait for long: every call has a
//! timeout, errors count as misses, and a circuit breaker opens at the first failure (or a
//! few replies in a row slower than `SLOW_REPLY`). While it is open no request calls Redis at all: reads go to
//! the database, whole responses are neither served nor kept, and an invalidation is kept as
//! pending at once. A background task (one per cache) probes Redis every
//! `PROBE_EVERY`, first flushing the pending invalidations, and closes the breaker when Redis
//! answers in time with nothing left pending — so the cache is trusted again within a probe
//! interval or two after Redis returns. Before the breaker opens, at most
//! `MAX_WAITING_ON_REDIS` requests wait on Redis at once (the others bypass it). This instance
//! never serves an entry older than its own committed writes; other instances apply the write
//! from the event log within the usual bound, their own invalidation then pending too.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::redis_conn::{RedisConn, RedisTarget};
use serde::Serialize;
use serde::de::DeserializeOwned;

const MEMORY_MAX_ENTRIES: usize = 20_000;
/// How often the background task probes Redis while the breaker is open.
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Replies slower than this, `SLOW_STREAK` in a row, open the breaker too: a slow Redis costs
/// like a dead one. (One slow reply alone is more often this process's scheduler than Redis.)
const SLOW_REPLY: Duration = Duration::from_millis(50);
const SLOW_STREAK: u32 = 3;
/// Requests that may wait on Redis at the same time; more bypass it (as misses).
const MAX_WAITING_ON_REDIS: usize = 32;
/// The near tier's bounds: entries, bytes of keys and values, and how long an entry is kept.
/// The second bounds what the invalidation feed cannot tell (a Redis that stalls without
/// dropping the subscription while another instance writes): no near entry is older than the
/// log's own one-second bound for other instances.
const NEAR_MAX_ENTRIES: usize = 2_048;
const NEAR_MAX_BYTES: usize = 2 << 20;
const NEAR_TTL: Duration = Duration::from_secs(1);
/// How long a writer's mark that it invalidated for a committed event is kept: a follower
/// that reads the event later than this invalidates for it again (harmless, one more bump).
const APPLIED_FOR: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ttl: Duration,
}

enum Store {
    Memory(Mutex<MemoryStore>),
    Redis(Arc<RedisStore>),
    /// Caching off (`INCUBASE_CACHE=off`): every read goes to the database.
    Disabled,
}

#[derive(Default)]
struct MemoryStore {
    generations: HashMap<String, u64>,
    entries: HashMap<String, (String, Instant)>,
}

struct RedisStore {
    conn: RedisConn,
    prefix: String,
    timeout: Duration,
    slow: Duration,
    breaker: Breaker,
    /// Permits to wait on Redis (`MAX_WAITING_ON_REDIS`).
    waiting: tokio::sync::Semaphore,
    /// Tags whose invalidation has not reached Redis yet: bypassed until it has.
    pending: Mutex<HashSet<String>>,
    has_pending: AtomicBool,
    counters: RedisCounters,
    /// Slow replies since the last reply in time.
    slow_streak: AtomicU32,
    lookup: redis::Script,
    /// INCRs each tag's generation and publishes it with the tag (`{generation} {tag}`), then
    /// marks the committed events it invalidates for as applied (see `APPLIED_FOR`).
    bump: redis::Script,
    mirror: Arc<GenerationMirror>,
    near: Mutex<NearTier>,
}

/// Entries read from Redis, kept in this process (see the module's documentation).
#[derive(Default)]
struct NearTier {
    entries: HashMap<String, NearEntry>,
    /// Bytes of the keys and values held.
    bytes: usize,
}

struct NearEntry {
    generation: u64,
    /// The mirror's session when it was read: generations of another session do not compare.
    session: u64,
    raw: Arc<str>,
    expires: Instant,
}

impl NearTier {
    fn put(&mut self, entry_key: String, entry: NearEntry) {
        let size = entry_key.len() + entry.raw.len();
        if size > NEAR_MAX_BYTES / 16 {
            return;
        }
        if let Some(old) = self.entries.remove(&entry_key) {
            self.bytes -= entry_key.len() + old.raw.len();
        }
        if self.entries.len() >= NEAR_MAX_ENTRIES || self.bytes + size > NEAR_MAX_BYTES {
            let now = Instant::now();
            self.entries.retain(|_, e| e.expires > now);
            self.bytes = self.entries.iter().map(|(k, e)| k.len() + e.raw.len()).sum();
            if self.entries.len() >= NEAR_MAX_ENTRIES || self.bytes + size > NEAR_MAX_BYTES {
                self.entries.clear();
                self.bytes = 0;
            }
        }
        self.bytes += size;
        self.entries.insert(entry_key, entry);
    }
}

/// Open: no request calls Redis; the probe task closes it when Redis answers in time again.
#[derive(Default)]
struct Breaker {
    open: AtomicBool,
    reason: Mutex<Option<String>>,
    /// Wakes the probe task (the breaker opened, or an invalidation became pending).
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct RedisCounters {
    timeouts: AtomicU64,
    errors: AtomicU64,
    slow: AtomicU64,
    skipped: AtomicU64,
    opened: AtomicU64,
    near_hits: AtomicU64,
}

/// How the Redis side of the cache has fared (`/metrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisHealth {
    /// Calls (by requests and the log follower, not the probe) that waited until the timeout.
    pub timeouts: u64,
    /// Calls that failed with an error (a refused or reset connection fails at once).
    pub errors: u64,
    /// Calls that were answered, slower than `SLOW_REPLY`.
    pub slow: u64,
    /// Calls not made: the breaker was open, or `MAX_WAITING_ON_REDIS` requests already waited.
    pub skipped: u64,
    /// Times the breaker opened.
    pub circuit_opened: u64,
    pub circuit_open: bool,
    pub pending_invalidations: usize,
    /// Reads served by the near tier, without a round trip.
    pub near_hits: u64,
}

impl RedisHealth {
    /// Calls that made a request wait on Redis in vain or for long.
    pub fn waited(&self) -> u64 {
        self.timeouts + self.errors + self.slow
    }
}

/// Tag generations as this instance last saw them; trusted only while `live`.
#[derive(Default)]
struct GenerationMirror {
    live: AtomicBool,
    generations: Mutex<HashMap<String, u64>>,
    /// Counts invalidation messages: a generation read before a message arrived may be old
    /// and is not kept.
    epoch: AtomicU64,
    /// Counts subscriptions to the invalidation feed. Generations seen in an earlier session
    /// cannot be compared with later ones: Redis may have restarted empty and counted up from
    /// zero again.
    session: AtomicU64,
}

impl GenerationMirror {
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a generation read when the epoch was `seen_epoch`, unless a message came since.
    fn observe(&self, tag: &str, generation: u64, seen_epoch: u64) {
        let mut map = lock(&self.generations);
        if self.epoch() != seen_epoch {
            return;
        }
        let entry = map.entry(tag.to_owned()).or_insert(0);
        *entry = (*entry).max(generation);
    }

    fn forget(&self, tag: &str) {
        let mut map = lock(&self.generations);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(tag);
    }

    /// A message says `tag` reached `generation`. A tag held here moves up to it (an instance's
    /// own bump, echoed back, changes nothing); a tag not held stays unknown, and reads in
    /// flight, which may have seen an older generation, are not kept (as with `forget`).
    fn advance(&self, tag: &str, generation: u64) {
        let mut map = lock(&self.generations);
        match map.get_mut(tag) {
            Some(held) => *held = (*held).max(generation),
            None => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    Disabled,
    Memory,
    Redis,
    Degraded(String),
}

/// What a lookup saw: the tag's generation (to store under) and the value, if cached.
pub struct Lookup<T> {
    generation: Option<u64>,
    pub value: Option<T>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the map half-updated in a way
    // that matters for a cache, so a poisoned lock is used as is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub fn disabled() -> Self {
        Self::with_store(Store::Disabled, Duration::ZERO)
    }

    pub fn in_memory(ttl: Duration) -> Self {
        Self::with_store(Store::Memory(Mutex::new(MemoryStore::default())), ttl)
    }

    /// Connects lazily: the server starts even when Redis is down, and uses it once it is up.
    pub fn redis(url: &str, prefix: &str, ttl: Duration, timeout: Duration) -> Result<Self, redis::RedisError> {
        let target = RedisTarget::parse(url)
            .map_err(|reason| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "REDIS_URL", reason)))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = RedisConn::new(&target, config)?;
        let lookup = redis::Script::new(
            r"local g = redis.call('GET', KEYS[1]) or '0'
              return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}",
        );
        let bump = redis::Script::new(
            // ARGV: the channel, n (the tags), the marks' lifetime in seconds, the n tags, then
            // one bit offset for each mark key after the n generation keys in KEYS.
            r"local n = tonumber(ARGV[2])
              local out = {}
              for i = 1, n do
                local g = redis.call('INCR', KEYS[i])
                redis.call('PUBLISH', ARGV[1], string.format('%d %s', g, ARGV[i + 3]))
                out[i] = g
              end
              for j = n + 1, #KEYS do
                redis.call('SETBIT', KEYS[j], ARGV[j + 3], 1)
                redis.call('EXPIRE', KEYS[j], ARGV[3])
              end
              return out",
        );
        let mirror = Arc::new(GenerationMirror::default());
        let store = Arc::new(RedisStore {
            conn: conn.clone(),
            prefix: prefix.to_owned(),
            timeout,
            slow: SLOW_REPLY.min(timeout),
            breaker: Breaker::default(),
            waiting: tokio::sync::Semaphore::new(MAX_WAITING_ON_REDIS),
            pending: Mutex::new(HashSet::new()),
            has_pending: AtomicBool::new(false),
            counters: RedisCounters::default(),
            slow_streak: AtomicU32::new(0),
            lookup,
            bump,
            mirror: mirror.clone(),
            near: Mutex::new(NearTier::default()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(follow_invalidations(
                conn.clone(),
                format!("{prefix}:invalidations"),
                Arc::downgrade(&mirror),
            ));
            runtime.spawn(probe_while_degraded(Arc::downgrade(&store)));
        }
        Ok(Self::with_store(Store::Redis(store), ttl))
    }

    fn with_store(store: Store, ttl: Duration) -> Self {
        Self { inner: Arc::new(Inner { store, ttl }) }
    }

    pub async fn lookup<T: DeserializeOwned>(&self, tag: &str, key: &str) -> Lookup<T> {
        let (generation, raw) = match &self.inner.store {
            Store::Memory(m) => {
                let mut m = lock(m);
                let generation = m.generations.get(tag).copied().unwrap_or(0);
                let entry_key = format!("{tag}:{generation}:{key}");
                let raw = match m.entries.get(&entry_key) {
                    Some((v, expires)) if *expires > Instant::now() => Some(v.clone()),
                    Some(_) => {
                        m.entries.remove(&entry_key);
                        None
                    }
                    None => None,
                };
                (Some(generation), raw)
            }
            // A tag whose invalidation is still pending is read from the database, and not
            // stored: Redis still holds its old generation.
            Store::Redis(r) if r.is_pending(tag) => (None, None),
            Store::Redis(r) => {
                let near = !crate::tags::read_exactly(tag);
                if near
                    && let Some(raw) = r.near_get(tag, key)
                    && let Ok(value) = serde_json::from_str(&raw)
                {
                    r.counters.near_hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup { generation: None, value: Some(value) };
                }
                let epoch = r.mirror.epoch();
                let session = r.mirror.session.load(Ordering::Acquire);
                match r.lookup(tag, key).await {
                    Some((generation, raw)) => {
                        // What Redis answered is current as of now: the mirror learns the
                        // generation (unless a message came meanwhile), the tier the entry.
                        if near {
                            r.mirror.observe(tag, generation, epoch);
                            if let Some(raw) = &raw {
                                r.near_put(tag, key, generation, session, raw);
                            }
                        }
                        (Some(generation), raw)
                    }
                    None => (None, None),
                }
            }
            Store::Disabled => (None, None),
        };
        let value = raw.and_then(|raw| serde_json::from_str(&raw).ok());
        Lookup { generation, value }
    }

    pub async fn store<T: Serialize>(&self, tag: &str, key: &str, seen: &Lookup<T>, value: &T) {
        let Some(generation) = seen.generation else { return };
        let Ok(raw) = serde_json::to_string(value) else { return };
        match &self.inner.store {
            Store::Memory(m) => {
                let mut m = lock(m);
                if m.entries.len() >= MEMORY_MAX_ENTRIES {
                    let now = Instant::now();
                    m.entries.retain(|_, (_, expires)| *expires > now);
                    if m.entries.len() >= MEMORY_MAX_ENTRIES {
                        m.entries.clear();
                    }
                }
                m.entries.insert(format!("{tag}:{generation}:{key}"), (raw, Instant::now() + self.inner.ttl));
            }
            Store::Redis(r) => r.set(tag, generation, key, raw, self.inner.ttl).await,
            Store::Disabled => {}
        }
    }

    /// Reads through the cache: on a miss, `load` runs and its value is stored.
    pub async fn get_or_load<T, E, F>(&self, tag: &str, key: &str, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<T, E>>,
    {
        let seen = self.lookup::<T>(tag, key).await;
        if let Some(value) = seen.value {
            return Ok(value);
        }
        let value = load.await?;
        self.store(tag, key, &seen, &value).await;
        Ok(value)
    }

    /// `get_or_load` under the key `{prefix}:{digest}`, the digest of `shape` (the arguments
    /// of the read, as JSON).
    pub async fn get_or_load_shaped<T, E, F>(
        &self,
        tag: &str,
        prefix: &str,
        shape: &impl Serialize,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<T, E>>,
    {
        let key = format!("{prefix}:{}", digest(&serde_json::to_vec(shape).unwrap_or_default()));
        self.get_or_load(tag, &key, load).await
    }

    /// Makes every entry under `tag` unreachable. Call after the write has committed.
    pub async fn invalidate(&self, tag: &str) {
        self.invalidate_all(&[tag]).await;
    }

    /// Invalidates several tags in one round trip. With Redis unreachable (or the breaker
    /// open) the tags are kept as pending at once and flushed in the background; until then
    /// this instance reads them from the database.
    pub async fn invalidate_all<S: AsRef<str>>(&self, tags: &[S]) {
        self.invalidate_committed(tags, &[]).await;
    }

    /// A writer's invalidation for the events it has just committed (their ids). With Redis,
    /// the bump also marks the events applied, in the same call: other instances' followers,
    /// which meet the events in the log, then do not bump the same tags once more.
    pub async fn invalidate_committed<S: AsRef<str>>(&self, tags: &[S], events: &[i64]) {
        match &self.inner.store {
            Store::Memory(m) => {
                let mut m = lock(m);
                for tag in tags {
                    *m.generations.entry(tag.as_ref().to_owned()).or_insert(0) += 1;
                }
            }
            Store::Redis(r) => r.invalidate(tags, events).await,
            Store::Disabled => {}
        }
    }

    /// A follower's invalidation for events other processes committed (each with its tags).
    /// In memory every instance applies them; with Redis only the events whose writer's
    /// invalidation is not marked applied (it failed, its process stopped, or the follower
    /// got there first) are bumped.
    pub async fn invalidate_followed(&self, events: &[(i64, Vec<String>)]) {
        let mut tags: Vec<&str> = match &self.inner.store {
            Store::Redis(r) => {
                let ids: Vec<i64> = events.iter().filter(|(_, tags)| !tags.is_empty()).map(|(id, _)| *id).collect();
                let applied: HashSet<i64> =
                    ids.iter().zip(r.applied(&ids).await).filter(|(_, done)| *done).map(|(id, _)| *id).collect();
                events
                    .iter()
                    .filter(|(id, _)| !applied.contains(id))
                    .flat_map(|(_, tags)| tags.iter())
                    .map(String::as_str)
                    .collect()
            }
            _ => events.iter().flat_map(|(_, tags)| tags.iter()).map(String::as_str).collect(),
        };
        tags.sort_unstable();
        tags.dedup();
        if !tags.is_empty() {
            self.invalidate_all(&tags).await;
        }
    }

    /// A whole response kept in the shared tier (Redis) by any instance; `None` in memory mode
    /// (the near cache is the only tier there) and when Redis cannot answer at once.
    pub async fn shared_response(&self, key: &str) -> Option<String> {
        match &self.inner.store {
            Store::Redis(r) => {
                let mut conn = r.conn.clone();
                let cmd = redis::cmd("GET").arg(format!("{}:resp:{key}", r.prefix)).to_owned();
                r.call(cmd.query_async::<Option<String>>(&mut conn)).await.flatten()
            }
            _ => None,
        }
    }

    pub async fn put_shared_response(&self, key: &str, raw: String) {
        if let Store::Redis(r) = &self.inner.store {
            let mut conn = r.conn.clone();
            let cmd = redis::cmd("SET")
                .arg(format!("{}:resp:{key}", r.prefix))
                .arg(raw)
                .arg("PX")
                .arg(self.inner.ttl.as_millis() as u64)
                .to_owned();
            let _: Option<()> = r.call(cmd.query_async(&mut conn)).await;
        }
    }

    /// The current generation of each tag, for validating a whole cached response; `None`
    /// when they cannot be known cheaply and surely (Redis unreachable or the breaker open, an
    /// invalidation pending, or the invalidation feed down).
    pub async fn generations<S: AsRef<str>>(&self, tags: &[S]) -> Option<Vec<u64>> {
        match &self.inner.store {
            Store::Memory(m) => {
                let m = lock(m);
                Some(tags.iter().map(|t| m.generations.get(t.as_ref()).copied().unwrap_or(0)).collect())
            }
            Store::Redis(r) => {
                if !r.mirror.is_live() || !r.trusted() {
                    return None;
                }
                let mut out = Vec::with_capacity(tags.len());
                for tag in tags {
                    let tag = tag.as_ref();
                    let known = lock(&r.mirror.generations).get(tag).copied();
                    let generation = match known {
                        Some(g) => g,
                        None => {
                            let epoch = r.mirror.epoch();
                            let g = r.read_generation(tag).await?;
                            r.mirror.observe(tag, g, epoch);
                            g
                        }
                    };
                    out.push(generation);
                }
                Some(out)
            }
            Store::Disabled => None,
        }
    }

    /// Whether `generations` may answer at all now: false without a cache, and with Redis
    /// while the breaker is open, an invalidation is pending or the invalidation feed is down.
    /// Cheap: no call.
    pub fn validates_responses(&self) -> bool {
        match &self.inner.store {
            Store::Memory(_) => true,
            Store::Redis(r) => r.mirror.is_live() && r.trusted(),
            Store::Disabled => false,
        }
    }

    /// Which session of generations `generations` answers from: a whole response cached in
    /// one session is never validated in another (0 without Redis: generations live in this
    /// process and never restart).
    pub fn generation_session(&self) -> u64 {
        match &self.inner.store {
            Store::Redis(r) => r.mirror.session.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// `Redis` only while the cache is fully trusted: Redis answers, the breaker is closed,
    /// nothing is pending and the invalidation feed is up. Never waits while the breaker is
    /// open.
    pub async fn status(&self) -> CacheStatus {
        match &self.inner.store {
            Store::Memory(_) => CacheStatus::Memory,
            Store::Disabled => CacheStatus::Disabled,
            Store::Redis(r) => {
                if r.breaker.is_open() {
                    let reason = lock(&r.breaker.reason).clone().unwrap_or_default();
                    return CacheStatus::Degraded(format!("circuit open ({reason}); the cache is bypassed"));
                }
                if let Err(e) = r.ping().await {
                    return CacheStatus::Degraded(e);
                }
                if !r.mirror.is_live() {
                    return CacheStatus::Degraded("the invalidation feed is reconnecting".to_owned());
                }
                CacheStatus::Redis
            }
        }
    }

    /// Counters of the Redis side; `None` without Redis.
    pub fn redis_health(&self) -> Option<RedisHealth> {
        let Store::Redis(r) = &self.inner.store else { return None };
        let c = &r.counters;
        Some(RedisHealth {
            timeouts: c.timeouts.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            slow: c.slow.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            circuit_opened: c.opened.load(Ordering::Relaxed),
            circuit_open: r.breaker.is_open(),
            pending_invalidations: lock(&r.pending).len(),
            near_hits: c.near_hits.load(Ordering::Relaxed),
        })
    }
}

impl Breaker {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

/// What a call to Redis came to.
enum Outcome<T> {
    Answered(T),
    Slow(T),
    Failed(String),
    TimedOut,
}

impl RedisStore {
    fn generation_key(&self, tag: &str) -> String {
        format!("{}:gen:{tag}", self.prefix)
    }

    fn entry_prefix(&self, tag: &str) -> String {
        format!("{}:c:{tag}:", self.prefix)
    }

    fn is_pending(&self, tag: &str) -> bool {
        self.has_pending.load(Ordering::Acquire) && lock(&self.pending).contains(tag)
    }

    /// The breaker is closed and no invalidation is pending.
    fn trusted(&self) -> bool {
        !self.breaker.is_open() && !self.has_pending.load(Ordering::Acquire)
    }

    fn keep_pending<S: AsRef<str>>(&self, tags: &[S]) {
        let mut pending = lock(&self.pending);
        pending.extend(tags.iter().map(|t| t.as_ref().to_owned()));
        self.has_pending.store(true, Ordering::Release);
        drop(pending);
        self.breaker.wake.notify_one();
    }

    fn trip(&self, reason: String) {
        *lock(&self.breaker.reason) = Some(reason.clone());
        if !self.breaker.open.swap(true, Ordering::AcqRel) {
            self.counters.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason, "redis circuit opened: the cache is bypassed until Redis answers again");
        }
        self.breaker.wake.notify_one();
    }

    /// Runs one call within the timeout and classifies it (no breaker, no counters).
    async fn timed<T>(&self, fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Outcome<T> {
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) if started.elapsed() > self.slow => Outcome::Slow(v),
            Ok(Ok(v)) => Outcome::Answered(v),
            Ok(Err(e)) => Outcome::Failed(format!("{:?}: {e}", e.kind())),
            Err(_) => Outcome::TimedOut,
        }
    }

    /// A call on behalf of a request: skipped while the breaker is open or too many wait;
    /// a failure, a timeout or a slow answer opens the breaker.
    async fn call<T>(&self, fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if self.breaker.is_open() {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Ok(_permit) = self.waiting.try_acquire() else {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.settle(self.timed(fut).await)
    }

    fn settle<T>(&self, outcome: Outcome<T>) -> Option<T> {
        match outcome {
            Outcome::Answered(v) => {
                self.slow_streak.store(0, Ordering::Relaxed);
                Some(v)
            }
            Outcome::Slow(v) => {
                self.counters.slow.fetch_add(1, Ordering::Relaxed);
                if self.slow_streak.fetch_add(1, Ordering::Relaxed) + 1 >= SLOW_STREAK {
                    self.trip(format!("{SLOW_STREAK} replies in a row took longer than {} ms", self.slow.as_millis()));
                }
                Some(v)
            }
            Outcome::Failed(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.trip(e);
                None
            }
            Outcome::TimedOut => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                self.trip(format!("a call timed out after {} ms", self.timeout.as_millis()));
                None
            }
        }
    }

    /// A near entry still current: the cache is trusted, the mirror is live, in the session
    /// the entry was read in, and holds the tag at the entry's generation.
    fn near_get(&self, tag: &str, key: &str) -> Option<Arc<str>> {
        if !self.mirror.is_live() || !self.trusted() {
            return None;
        }
        let (generation, session, raw) = {
            let near = lock(&self.near);
            let entry = near.entries.get(&near_key(tag, key))?;
            if entry.expires <= Instant::now() {
                return None;
            }
            (entry.generation, entry.session, entry.raw.clone())
        };
        let current = self.mirror.session.load(Ordering::Acquire) == session
            && lock(&self.mirror.generations).get(tag) == Some(&generation);
        current.then_some(raw)
    }

    fn near_put(&self, tag: &str, key: &str, generation: u64, session: u64, raw: &str) {
        let entry = NearEntry { generation, session, raw: Arc::from(raw), expires: Instant::now() + NEAR_TTL };
        lock(&self.near).put(near_key(tag, key), entry);
    }

    async fn lookup(&self, tag: &str, key: &str) -> Option<(u64, Option<String>)> {
        let mut conn = self.conn.clone();
        let mut invocation = self.lookup.key(self.generation_key(tag));
        invocation.arg(self.entry_prefix(tag)).arg(key);
        let (generation, raw): (String, Option<String>) = self.call(invocation.invoke_async(&mut conn)).await?;
        Some((generation.parse().ok()?, raw))
    }

    async fn set(&self, tag: &str, generation: u64, key: &str, raw: String, ttl: Duration) {
        let mut conn = self.conn.clone();
        let entry_key = format!("{}{generation}:{key}", self.entry_prefix(tag));
        let cmd = redis::cmd("SET").arg(entry_key).arg(raw).arg("PX").arg(ttl.as_millis() as u64).to_owned();
        let _: Option<()> = self.call(cmd.query_async(&mut conn)).await;
    }

    /// An invalidation on behalf of a writer or the log follower: sent when Redis is
    /// believed up, otherwise (or when it fails) kept as pending without waiting.
    /// `events` are the committed events the tags are invalidated for: once the bump has
    /// reached Redis they are marked applied, and other instances' followers leave them be.
    async fn invalidate<S: AsRef<str>>(&self, tags: &[S], events: &[i64]) {
        if tags.is_empty() {
            return;
        }
        let sent = if self.breaker.is_open() {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            false
        } else if let Ok(_permit) = self.waiting.try_acquire() {
            let outcome = self.bump(tags, events).await;
            self.settle(outcome).is_some()
        } else {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            false
        };
        if !sent {
            tracing::debug!(tags = ?tags.iter().map(AsRef::as_ref).collect::<Vec<_>>(), "cache invalidation kept as pending");
            self.keep_pending(tags);
        }
    }

    /// INCR the tags' generations and tell the other instances, in one round trip; the new
    /// generations go into the mirror. A timed-out bump may still run later: harmless, it
    /// only invalidates once more.
    async fn bump<S: AsRef<str>>(&self, tags: &[S], events: &[i64]) -> Outcome<()> {
        let mut conn = self.conn.clone();
        let mut invocation = self.bump.prepare_invoke();
        invocation.arg(format!("{}:invalidations", self.prefix)).arg(tags.len()).arg(APPLIED_FOR.as_secs());
        for tag in tags {
            invocation.key(self.generation_key(tag.as_ref())).arg(tag.as_ref());
        }
        for event in events {
            let (key, offset) = self.applied_bit(*event);
            invocation.key(key).arg(offset);
        }
        let epoch = self.mirror.epoch();
        let observe = |generations: &[u64]| {
            if generations.len() != tags.len() {
                return false;
            }
            for (tag, generation) in tags.iter().zip(generations) {
                self.mirror.observe(tag.as_ref(), *generation, epoch);
            }
            true
        };
        match self.timed(invocation.invoke_async::<Vec<u64>>(&mut conn)).await {
            Outcome::Answered(g) if observe(&g) => Outcome::Answered(()),
            Outcome::Slow(g) if observe(&g) => Outcome::Slow(()),
            Outcome::Answered(_) | Outcome::Slow(_) => Outcome::Failed("a bump answered oddly".to_owned()),
            Outcome::Failed(e) => Outcome::Failed(e),
            Outcome::TimedOut => Outcome::TimedOut,
        }
    }

    /// Where an event's applied mark is: a bit of a bitmap key per 65,536 event ids.
    fn applied_bit(&self, event: i64) -> (String, u64) {
        let id = event.max(0) as u64;
        (format!("{}:applied:{}", self.prefix, id >> 16), id & 0xffff)
    }

    /// Which of `events` another instance's writer marked applied; all false when Redis cannot
    /// answer now (the follower then invalidates for them all, as it must).
    async fn applied(&self, events: &[i64]) -> Vec<bool> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for event in events {
            let (key, offset) = self.applied_bit(*event);
            pipe.cmd("GETBIT").arg(key).arg(offset);
        }
        match self.call(pipe.query_async::<Vec<u8>>(&mut conn)).await {
            Some(bits) if bits.len() == events.len() => bits.into_iter().map(|b| b == 1).collect(),
            _ => vec![false; events.len()],
        }
    }

    async fn read_generation(&self, tag: &str) -> Option<u64> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("GET").arg(self.generation_key(tag)).to_owned();
        let raw: Option<u64> = self.call(cmd.query_async(&mut conn)).await?;
        Some(raw.unwrap_or(0))
    }

    /// `/ready`'s check (the breaker is closed when it runs); a failure opens the breaker.
    async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING").to_owned();
        match self.settle(self.timed(cmd.query_async::<String>(&mut conn)).await) {
            Some(_) => Ok(()),
            None => Err(lock(&self.breaker.reason).clone().unwrap_or_else(|| "redis unreachable".to_owned())),
        }
    }

    /// One probe while degraded: flush the pending invalidations (or PING when none is
    /// pending); close the breaker when Redis answered in time and nothing is left pending.
    async fn probe(&self) {
        let pending: Vec<String> = lock(&self.pending).iter().cloned().collect();
        let answered = if pending.is_empty() {
            let mut conn = self.conn.clone();
            let cmd = redis::cmd("PING").to_owned();
            matches!(self.timed(cmd.query_async::<String>(&mut conn)).await, Outcome::Answered(_))
        } else {
            matches!(self.bump(&pending, &[]).await, Outcome::Answered(()))
        };
        if !answered {
            return;
        }
        let mut still = lock(&self.pending);
        for tag in &pending {
            still.remove(tag);
        }
        if still.is_empty() {
            self.has_pending.store(false, Ordering::Release);
            self.slow_streak.store(0, Ordering::Relaxed);
            if self.breaker.open.swap(false, Ordering::AcqRel) {
                tracing::info!("redis answers again: circuit closed, the cache is used again");
            }
        }
    }
}

/// The background side of the breaker: while it is open or invalidations are pending,
/// probes every `PROBE_EVERY`. Ends when the cache is dropped.
async fn probe_while_degraded(store: Weak<RedisStore>) {
    loop {
        let Some(s) = store.upgrade() else { return };
        if s.breaker.is_open() || s.has_pending.load(Ordering::Acquire) {
            drop(s);
            tokio::time::sleep(PROBE_EVERY).await;
            let Some(s) = store.upgrade() else { return };
            s.probe().await;
        } else {
            // Woken when the breaker opens or a tag becomes pending; the timeout lets the
            // task notice that the cache was dropped.
            let _ = tokio::time::timeout(Duration::from_secs(1), s.breaker.wake.notified()).await;
        }
    }
}

/// An invalidation message: `{generation} {tag}`, or only the tag (instances before the
/// generation was sent along).
fn parse_invalidation(payload: &str) -> (&str, Option<u64>) {
    match payload.split_once(' ') {
        Some((generation, tag)) => match generation.parse() {
            Ok(generation) => (tag, Some(generation)),
            Err(_) => (payload, None),
        },
        None => (payload, None),
    }
}

fn near_key(tag: &str, key: &str) -> String {
    format!("{tag}\u{1f}{key}")
}

/// A short, stable key for a long cache key (hex of SHA-256).
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Keeps the generation mirror in step with every instance's invalidations. A message names
/// the tag and the generation its bump reached: a tag held here moves up to it (never down, so
/// reordered messages and this instance's own echoed bumps are harmless); a tag not held is
/// read when next needed. Messages are lost only with the subscription, and a new one starts
/// a new session of the mirror. While disconnected the mirror is not trusted; reconnection is tried every
/// 200 ms, so a Redis that comes back is trusted again well within 2 s. Ends when the cache is
/// dropped. With Sentinel every reconnection asks for the current master.
async fn follow_invalidations(conn: RedisConn, channel: String, mirror: Weak<GenerationMirror>) {
    use futures::StreamExt;
    const RECONNECT_EVERY: Duration = Duration::from_millis(200);
    loop {
        if mirror.strong_count() == 0 {
            return;
        }
        let connected = tokio::time::timeout(Duration::from_secs(2), async {
            let mut pubsub = conn.client().await?.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        })
        .await;
        if let Ok(Ok(mut pubsub)) = connected {
            let Some(m) = mirror.upgrade() else { return };
            // Whatever happened while we were away is unknown: forget it, re-read lazily.
            {
                let mut map = lock(&m.generations);
                m.epoch.fetch_add(1, Ordering::AcqRel);
                m.session.fetch_add(1, Ordering::AcqRel);
                map.clear();
            }
            m.live.store(true, Ordering::Release);
            drop(m);
            let mut messages = pubsub.on_message();
            loop {
                match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
                    Ok(Some(message)) => {
                        let Some(m) = mirror.upgrade() else { return };
                        if let Ok(payload) = message.get_payload::<String>() {
                            match parse_invalidation(&payload) {
                                (tag, Some(generation)) => m.advance(tag, generation),
                                // A message without its generation (an older instance): drop
                                // the entry, the next `generations` call reads the current value.
                                (tag, None) => m.forget(tag),
                            }
                        }
                    }
                    Ok(None) => break,
                    // Quiet for a second: only check that the cache still exists.
                    Err(_) if mirror.strong_count() == 0 => return,
                    Err(_) => {}
                }
            }
            if let Some(m) = mirror.upgrade() {
                m.live.store(false, Ordering::Release);
            }
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

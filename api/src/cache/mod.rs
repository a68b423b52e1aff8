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
//! A writer's bump also marks the committed events it was for as applied (a bit per event id):
//! other instances' log followers then leave those events be instead of bumping once more
//! ([`Cache::invalidate_followed`]).
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

mod near;
mod redis_store;

use near::*;
pub use redis_store::RedisHealth;
use redis_store::*;

const MEMORY_MAX_ENTRIES: usize = 20_000;

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

/// A short, stable key for a long cache key (hex of SHA-256).
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

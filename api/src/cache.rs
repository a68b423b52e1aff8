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
//! update it at once, and other instances' arrive over Redis pub/sub (`{prefix}:invalidations`).
//! While the subscription is down the mirror is not trusted and the response cache is bypassed.
//!
//! Redis failures never fail a request: every call has a timeout, errors count as misses, and a
//! short circuit-breaker keeps a dead Redis from adding latency to every request. An
//! invalidation that could not reach Redis is kept as pending and retried; until it succeeds
//! this instance bypasses the cache for that tag. Other instances may serve the old entry for
//! at most the entry TTL (`INCUBASE_CACHE_TTL_SECS`).
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::redis_conn::{RedisConn, RedisTarget};
use serde::Serialize;
use serde::de::DeserializeOwned;

const MEMORY_MAX_ENTRIES: usize = 20_000;
const BREAKER_OPEN_FOR: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ttl: Duration,
    pending_invalidations: Mutex<HashSet<String>>,
}

enum Store {
    Memory(Mutex<MemoryStore>),
    Redis(RedisStore),
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
    breaker_open_until: Mutex<Option<Instant>>,
    lookup: redis::Script,
    mirror: Arc<GenerationMirror>,
}

/// Tag generations as this instance last saw them; trusted only while `live`.
#[derive(Default)]
struct GenerationMirror {
    live: std::sync::atomic::AtomicBool,
    generations: Mutex<HashMap<String, u64>>,
    /// Counts invalidation messages: a generation read before a message arrived may be old
    /// and is not kept.
    epoch: std::sync::atomic::AtomicU64,
    /// Counts subscriptions to the invalidation feed. Generations seen in an earlier session
    /// cannot be compared with later ones: Redis may have restarted empty and counted up from
    /// zero again.
    session: std::sync::atomic::AtomicU64,
}

impl GenerationMirror {
    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
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
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        map.remove(tag);
    }

    fn is_live(&self) -> bool {
        self.live.load(std::sync::atomic::Ordering::Acquire)
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
        let mirror = Arc::new(GenerationMirror::default());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(follow_invalidations(conn.clone(), format!("{prefix}:invalidations"), mirror.clone()));
        }
        Ok(Self::with_store(
            Store::Redis(RedisStore {
                conn,
                prefix: prefix.to_owned(),
                timeout,
                breaker_open_until: Mutex::new(None),
                lookup,
                mirror,
            }),
            ttl,
        ))
    }

    fn with_store(store: Store, ttl: Duration) -> Self {
        Self { inner: Arc::new(Inner { store, ttl, pending_invalidations: Mutex::new(HashSet::new()) }) }
    }

    pub async fn lookup<T: DeserializeOwned>(&self, tag: &str, key: &str) -> Lookup<T> {
        if !self.retry_pending(tag).await {
            return Lookup { generation: None, value: None };
        }
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
            Store::Redis(r) => match r.lookup(tag, key).await {
                Some((generation, raw)) => (Some(generation), raw),
                None => (None, None),
            },
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

    /// Makes every entry under `tag` unreachable. Call after the write has committed.
    pub async fn invalidate(&self, tag: &str) {
        self.invalidate_all(&[tag]).await;
    }

    /// Invalidates several tags in one round trip.
    pub async fn invalidate_all<S: AsRef<str>>(&self, tags: &[S]) {
        match &self.inner.store {
            Store::Memory(m) => {
                let mut m = lock(m);
                for tag in tags {
                    *m.generations.entry(tag.as_ref().to_owned()).or_insert(0) += 1;
                }
            }
            Store::Redis(r) => {
                if !r.bump(tags).await {
                    tracing::warn!(tags = ?tags.iter().map(AsRef::as_ref).collect::<Vec<_>>(), "cache invalidation did not reach Redis; kept as pending");
                    let mut pending = lock(&self.inner.pending_invalidations);
                    pending.extend(tags.iter().map(|t| t.as_ref().to_owned()));
                }
            }
            Store::Disabled => {}
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

    /// True when the cache may be used for `tag`: no invalidation of it is still pending.
    async fn retry_pending(&self, tag: &str) -> bool {
        let pending: Vec<String> = lock(&self.inner.pending_invalidations).iter().cloned().collect();
        if pending.is_empty() {
            return true;
        }
        if let Store::Redis(r) = &self.inner.store
            && r.bump(&pending).await
        {
            let mut still = lock(&self.inner.pending_invalidations);
            for t in &pending {
                still.remove(t);
            }
        }
        !lock(&self.inner.pending_invalidations).contains(tag)
    }

    /// The current generation of each tag, for validating a whole cached response; `None`
    /// when they cannot be known cheaply and surely (Redis unreachable, an invalidation
    /// pending, or the invalidation feed down).
    pub async fn generations<S: AsRef<str>>(&self, tags: &[S]) -> Option<Vec<u64>> {
        if !lock(&self.inner.pending_invalidations).is_empty() {
            return None;
        }
        match &self.inner.store {
            Store::Memory(m) => {
                let m = lock(m);
                Some(tags.iter().map(|t| m.generations.get(t.as_ref()).copied().unwrap_or(0)).collect())
            }
            Store::Redis(r) => {
                if !r.mirror.is_live() || !r.available() {
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

    /// Which session of generations `generations` answers from: a whole response cached in
    /// one session is never validated in another (0 without Redis: generations live in this
    /// process and never restart).
    pub fn generation_session(&self) -> u64 {
        match &self.inner.store {
            Store::Redis(r) => r.mirror.session.load(std::sync::atomic::Ordering::Acquire),
            _ => 0,
        }
    }

    pub async fn status(&self) -> CacheStatus {
        match &self.inner.store {
            Store::Memory(_) => CacheStatus::Memory,
            Store::Disabled => CacheStatus::Disabled,
            Store::Redis(r) => match r.ping().await {
                Ok(()) => CacheStatus::Redis,
                Err(e) => CacheStatus::Degraded(e),
            },
        }
    }
}

impl RedisStore {
    fn generation_key(&self, tag: &str) -> String {
        format!("{}:gen:{tag}", self.prefix)
    }

    fn entry_prefix(&self, tag: &str) -> String {
        format!("{}:c:{tag}:", self.prefix)
    }

    fn available(&self) -> bool {
        lock(&self.breaker_open_until).is_none_or(|until| Instant::now() >= until)
    }

    fn record(&self, ok: bool) {
        *lock(&self.breaker_open_until) = if ok { None } else { Some(Instant::now() + BREAKER_OPEN_FOR) };
    }

    async fn call<T>(&self, fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if !self.available() {
            return None;
        }
        let result = tokio::time::timeout(self.timeout, fut).await;
        match result {
            Ok(Ok(v)) => {
                self.record(true);
                Some(v)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis call failed");
                self.record(false);
                None
            }
            Err(_) => {
                tracing::warn!("redis call timed out");
                self.record(false);
                None
            }
        }
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

    async fn bump<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        if tags.is_empty() {
            return true;
        }
        let mut conn = self.conn.clone();
        // INCR and tell the other instances, in one round trip for all the tags.
        let mut pipe = redis::pipe();
        for tag in tags {
            pipe.cmd("INCR").arg(self.generation_key(tag.as_ref()));
            pipe.cmd("PUBLISH").arg(format!("{}:invalidations", self.prefix)).arg(tag.as_ref()).ignore();
        }
        // The breaker is bypassed: an invalidation is worth one more try.
        let epoch = self.mirror.epoch();
        let result = tokio::time::timeout(self.timeout, pipe.query_async::<Vec<u64>>(&mut conn)).await;
        let ok = match result {
            Ok(Ok(generations)) if generations.len() == tags.len() => {
                for (tag, generation) in tags.iter().zip(generations) {
                    self.mirror.observe(tag.as_ref(), generation, epoch);
                }
                true
            }
            _ => false,
        };
        self.record(ok);
        ok
    }

    async fn read_generation(&self, tag: &str) -> Option<u64> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("GET").arg(self.generation_key(tag)).to_owned();
        let raw: Option<u64> = self.call(cmd.query_async(&mut conn)).await?;
        Some(raw.unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING").to_owned();
        match tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => {
                self.record(true);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("redis unreachable: {:?}", e.kind())),
            Err(_) => Err("redis timed out".to_owned()),
        }
    }
}

/// A short, stable key for a long cache key (hex of SHA-256).
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Keeps the generation mirror in step with every instance's invalidations. A message only
/// names the tag; the generation is re-read, so a lost or reordered message cannot leave the
/// mirror behind. While disconnected the mirror is not trusted.
/// With Sentinel every reconnection asks for the current master.
async fn follow_invalidations(conn: RedisConn, channel: String, mirror: Arc<GenerationMirror>) {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    loop {
        let connected =
            tokio::time::timeout(Duration::from_secs(2), async { conn.client().await?.get_async_pubsub().await }).await;
        if let Ok(Ok(mut pubsub)) = connected
            && pubsub.subscribe(&channel).await.is_ok()
        {
            // Whatever happened while we were away is unknown: forget it, re-read lazily.
            {
                let mut map = lock(&mirror.generations);
                mirror.epoch.fetch_add(1, Ordering::AcqRel);
                mirror.session.fetch_add(1, Ordering::AcqRel);
                map.clear();
            }
            mirror.live.store(true, Ordering::Release);
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                if let Ok(tag) = message.get_payload::<String>() {
                    // Drop the entry: the next `generations` call reads the current value.
                    mirror.forget(&tag);
                }
            }
            mirror.live.store(false, Ordering::Release);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

//! The cache for hot reads: one interface, two stores (Redis in production, in-process by
//! default).
//!
//! Entries are grouped under *tags* (e.g. `organizations`). Every tag has a generation number
//! and entry keys embed it; invalidating a tag bumps the generation, so all its entries become
//! unreachable at once. A reader stores its value under the generation it saw *before* it read
//! the database: a reader that raced a writer therefore writes its old value under a generation
//! nobody reads any more, and a read after a committed write never sees the old value.
//!
//! Redis failures never fail a request: every call has a timeout, errors count as misses, and a
//! short circuit-breaker keeps a dead Redis from adding latency to every request. An
//! invalidation that could not reach Redis is kept as pending and retried; until it succeeds
//! this instance bypasses the cache for that tag. Other instances may serve the old entry for
//! at most the entry TTL (`INCUBASE_CACHE_TTL_SECS`).
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
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
}

#[derive(Default)]
struct MemoryStore {
    generations: HashMap<String, u64>,
    entries: HashMap<String, (String, Instant)>,
}

struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    breaker_open_until: Mutex<Option<Instant>>,
    lookup: redis::Script,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
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
    pub fn in_memory(ttl: Duration) -> Self {
        Self::with_store(Store::Memory(Mutex::new(MemoryStore::default())), ttl)
    }

    /// Connects lazily: the server starts even when Redis is down, and uses it once it is up.
    pub fn redis(url: &str, prefix: &str, ttl: Duration, timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let lookup = redis::Script::new(
            r"local g = redis.call('GET', KEYS[1]) or '0'
              return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}",
        );
        Ok(Self::with_store(
            Store::Redis(RedisStore {
                conn,
                prefix: prefix.to_owned(),
                timeout,
                breaker_open_until: Mutex::new(None),
                lookup,
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
        match &self.inner.store {
            Store::Memory(m) => {
                let mut m = lock(m);
                *m.generations.entry(tag.to_owned()).or_insert(0) += 1;
            }
            Store::Redis(r) => {
                if !r.bump(tag).await {
                    tracing::warn!(tag, "cache invalidation did not reach Redis; kept as pending");
                    lock(&self.inner.pending_invalidations).insert(tag.to_owned());
                }
            }
        }
    }

    /// True when the cache may be used for `tag`: no invalidation of it is still pending.
    async fn retry_pending(&self, tag: &str) -> bool {
        let pending: Vec<String> = lock(&self.inner.pending_invalidations).iter().cloned().collect();
        if pending.is_empty() {
            return true;
        }
        if let Store::Redis(r) = &self.inner.store {
            for t in pending {
                if r.bump(&t).await {
                    lock(&self.inner.pending_invalidations).remove(&t);
                }
            }
        }
        !lock(&self.inner.pending_invalidations).contains(tag)
    }

    pub async fn status(&self) -> CacheStatus {
        match &self.inner.store {
            Store::Memory(_) => CacheStatus::Memory,
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

    async fn bump(&self, tag: &str) -> bool {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("INCR").arg(self.generation_key(tag)).to_owned();
        // The breaker is bypassed: an invalidation is worth one more try.
        let result = tokio::time::timeout(self.timeout, cmd.query_async::<u64>(&mut conn)).await;
        let ok = matches!(result, Ok(Ok(_)));
        self.record(ok);
        ok
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

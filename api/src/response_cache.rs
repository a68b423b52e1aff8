//! Whole responses of public queries, cached before execution.
//!
//! Only anonymous (or partner-key-only) queries whose root fields are all listed in
//! `tags_for_root_field` are cached: those fields read public data only, and the list names
//! the cache tags each depends on. An entry records the generations of its tags as they were
//! *before* it was computed; a hit is served only while they are still current
//! (`Cache::generations`, answered from memory), so an invalidation makes every entry that
//! depends on the tag unreachable at once, on every instance. Entries live in an in-process
//! near cache (moka, bounded); N concurrent misses of one key run one execution.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest;
use tokio::sync::watch;

/// The cache tags a public root field reads; `None` for fields that are never cached
/// (private, viewer-dependent, live counts such as event seats, or time-dependent answers
/// such as availability). Fields derived from the clock inside a cached answer (a campaign's
/// `daysLeft`) may lag by at most the entry TTL.
pub fn tags_for_root_field(field: &str) -> Option<&'static [&'static str]> {
    match field {
        "organization" | "organizations" => Some(&[crate::service::organization::CACHE_TAG]),
        // Campaign pages show their organization's name.
        "campaign" | "campaigns" => {
            Some(&[crate::service::crowdfunding::CACHE_TAG, crate::service::organization::CACHE_TAG])
        }
        // Every write that changes a figure invalidates the impact tag.
        "baseStats" => Some(&[crate::service::impact::CACHE_TAG]),
        _ => None,
    }
}

pub type Key = [u8; 16];

pub struct CachedResponse {
    pub body: Arc<str>,
    pub etag: String,
    /// The tags the answer read, and their generations when it was computed.
    pub tags: Vec<&'static str>,
    pub generations: Vec<u64>,
}

pub struct ResponseCache {
    entries: moka::sync::Cache<Key, Arc<CachedResponse>>,
    flights: Mutex<HashMap<Key, watch::Receiver<()>>>,
    persisted: moka::sync::Cache<String, Arc<str>>,
}

/// Who computes a missing entry: the first caller leads; the others wait for it.
pub enum Flight {
    Leader(FlightGuard),
    Follower(watch::Receiver<()>),
}

/// Ends the flight when dropped, also when the leader fails or is cancelled.
pub struct FlightGuard {
    cache: Arc<ResponseCache>,
    key: Key,
    _done: watch::Sender<()>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.cache.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

pub fn key(scope: &str, query: &str, operation: Option<&str>, variables: &str) -> Key {
    let mut hasher = sha2::Sha256::new();
    for part in [scope, query, operation.unwrap_or(""), variables] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

pub fn etag(body: &str) -> String {
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl ResponseCache {
    pub fn new(max_entries: u64, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            entries: moka::sync::Cache::builder().max_capacity(max_entries).time_to_live(ttl).build(),
            flights: Mutex::new(HashMap::new()),
            persisted: moka::sync::Cache::builder().max_capacity(10_000).build(),
        })
    }

    /// A cached response, if it was computed under exactly these generations.
    pub fn get(&self, key: &Key, generations: &[u64]) -> Option<Arc<CachedResponse>> {
        self.entries.get(key).filter(|hit| hit.generations == generations)
    }

    /// A cached response whatever its generations; the caller checks them against `tags`.
    pub fn peek(&self, key: &Key) -> Option<Arc<CachedResponse>> {
        self.entries.get(key)
    }

    pub fn put(&self, key: Key, body: Arc<str>, tags: Vec<&'static str>, generations: Vec<u64>) {
        let etag = etag(&body);
        self.entries.insert(key, Arc::new(CachedResponse { body, etag, tags, generations }));
    }

    pub fn begin(self: &Arc<Self>, key: Key) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = flights.get(&key) {
            return Flight::Follower(waiting.clone());
        }
        let (done, waiting) = watch::channel(());
        flights.insert(key, waiting);
        Flight::Leader(FlightGuard { cache: self.clone(), key, _done: done })
    }

    /// Apollo automatic persisted queries: the document for a SHA-256 hash, once seen.
    pub fn persisted_query(&self, hash: &str) -> Option<Arc<str>> {
        self.persisted.get(hash)
    }

    pub fn remember_query(&self, hash: String, query: &str) {
        self.persisted.insert(hash, Arc::from(query));
    }
}

pub fn sha256_hex(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

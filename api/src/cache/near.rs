//! What an instance keeps beside Redis: the generation mirror that the invalidation feed keeps
//! in step, and the near tier of entries read from Redis.
use super::*;

/// The near tier's bounds: entries, bytes of keys and values, and how long an entry is kept.
/// The second bounds what the invalidation feed cannot tell (a Redis that stalls without
/// dropping the subscription while another instance writes): no near entry is older than the
/// log's own one-second bound for other instances.
pub(super) const NEAR_MAX_ENTRIES: usize = 2_048;
pub(super) const NEAR_MAX_BYTES: usize = 2 << 20;
pub(super) const NEAR_TTL: Duration = Duration::from_secs(1);

/// Entries read from Redis, kept in this process (see the module's documentation).
#[derive(Default)]
pub(super) struct NearTier {
    pub(super) entries: HashMap<String, NearEntry>,
    /// Bytes of the keys and values held.
    pub(super) bytes: usize,
}

pub(super) struct NearEntry {
    pub(super) generation: u64,
    /// The mirror's session when it was read: generations of another session do not compare.
    pub(super) session: u64,
    pub(super) raw: Arc<str>,
    pub(super) expires: Instant,
}

impl NearTier {
    pub(super) fn put(&mut self, entry_key: String, entry: NearEntry) {
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

/// Tag generations as this instance last saw them; trusted only while `live`.
#[derive(Default)]
pub(super) struct GenerationMirror {
    pub(super) live: AtomicBool,
    pub(super) generations: Mutex<HashMap<String, u64>>,
    /// Counts invalidation messages: a generation read before a message arrived may be old
    /// and is not kept.
    pub(super) epoch: AtomicU64,
    /// Counts subscriptions to the invalidation feed. Generations seen in an earlier session
    /// cannot be compared with later ones: Redis may have restarted empty and counted up from
    /// zero again.
    pub(super) session: AtomicU64,
}

impl GenerationMirror {
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a generation read when the epoch was `seen_epoch`, unless a message came since.
    pub(super) fn observe(&self, tag: &str, generation: u64, seen_epoch: u64) {
        let mut map = lock(&self.generations);
        if self.epoch() != seen_epoch {
            return;
        }
        let entry = map.entry(tag.to_owned()).or_insert(0);
        *entry = (*entry).max(generation);
    }

    pub(super) fn forget(&self, tag: &str) {
        let mut map = lock(&self.generations);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(tag);
    }

    /// A message says `tag` reached `generation`. A tag held here moves up to it (an instance's
    /// own bump, echoed back, changes nothing); a tag not held stays unknown, and reads in
    /// flight, which may have seen an older generation, are not kept (as with `forget`).
    pub(super) fn advance(&self, tag: &str, generation: u64) {
        let mut map = lock(&self.generations);
        match map.get_mut(tag) {
            Some(held) => *held = (*held).max(generation),
            None => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    pub(super) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

/// An invalidation message: `{generation} {tag}`, or only the tag (instances before the
/// generation was sent along).
pub(super) fn parse_invalidation(payload: &str) -> (&str, Option<u64>) {
    match payload.split_once(' ') {
        Some((generation, tag)) => match generation.parse() {
            Ok(generation) => (tag, Some(generation)),
            Err(_) => (payload, None),
        },
        None => (payload, None),
    }
}

pub(super) fn near_key(tag: &str, key: &str) -> String {
    format!("{tag}\u{1f}{key}")
}

/// Keeps the generation mirror in step with every instance's invalidations. A message names
/// the tag and the generation its bump reached: a tag held here moves up to it (never down, so
/// reordered messages and this instance's own echoed bumps are harmless); a tag not held is
/// read when next needed. Messages are lost only with the subscription, and a new one starts
/// a new session of the mirror. While disconnected the mirror is not trusted; reconnection is tried every
/// 200 ms, so a Redis that comes back is trusted again well within 2 s. Ends when the cache is
/// dropped. With Sentinel every reconnection asks for the current master.
pub(super) async fn follow_invalidations(conn: RedisConn, channel: String, mirror: Weak<GenerationMirror>) {
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

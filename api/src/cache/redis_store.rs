//! The Redis store: calls with timeouts, the circuit breaker and its probe, generation bumps
//! that announce themselves on the invalidation feed, and the writers' applied marks.
use super::*;

/// How often the background task probes Redis while the breaker is open.
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Replies slower than this, `SLOW_STREAK` in a row, open the breaker too: a slow Redis costs
/// like a dead one. (One slow reply alone is more often this process's scheduler than Redis.)
pub(super) const SLOW_REPLY: Duration = Duration::from_millis(50);
pub(super) const SLOW_STREAK: u32 = 3;
/// Requests that may wait on Redis at the same time; more bypass it (as misses).
pub(super) const MAX_WAITING_ON_REDIS: usize = 32;
/// How long a writer's mark that it invalidated for a committed event is kept: a follower
/// that reads the event later than this invalidates for it again (harmless, one more bump).
pub(super) const APPLIED_FOR: Duration = Duration::from_secs(600);

pub(super) struct RedisStore {
    pub(super) conn: RedisConn,
    pub(super) prefix: String,
    pub(super) timeout: Duration,
    pub(super) slow: Duration,
    pub(super) breaker: Breaker,
    /// Permits to wait on Redis (`MAX_WAITING_ON_REDIS`).
    pub(super) waiting: tokio::sync::Semaphore,
    /// Tags whose invalidation has not reached Redis yet: bypassed until it has.
    pub(super) pending: Mutex<HashSet<String>>,
    pub(super) has_pending: AtomicBool,
    pub(super) counters: RedisCounters,
    /// Slow replies since the last reply in time.
    pub(super) slow_streak: AtomicU32,
    pub(super) lookup: redis::Script,
    /// INCRs each tag's generation and publishes it with the tag (`{generation} {tag}`), then
    /// marks the committed events it invalidates for as applied (see `APPLIED_FOR`).
    pub(super) bump: redis::Script,
    pub(super) mirror: Arc<GenerationMirror>,
    pub(super) near: Mutex<NearTier>,
}

/// Open: no request calls Redis; the probe task closes it when Redis answers in time again.
#[derive(Default)]
pub(super) struct Breaker {
    pub(super) open: AtomicBool,
    pub(super) reason: Mutex<Option<String>>,
    /// Wakes the probe task (the breaker opened, or an invalidation became pending).
    pub(super) wake: tokio::sync::Notify,
}

#[derive(Default)]
pub(super) struct RedisCounters {
    pub(super) timeouts: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) slow: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) opened: AtomicU64,
    pub(super) near_hits: AtomicU64,
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

impl Breaker {
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

/// What a call to Redis came to.
pub(super) enum Outcome<T> {
    Answered(T),
    Slow(T),
    Failed(String),
    TimedOut,
}

impl RedisStore {
    pub(super) fn generation_key(&self, tag: &str) -> String {
        format!("{}:gen:{tag}", self.prefix)
    }

    pub(super) fn entry_prefix(&self, tag: &str) -> String {
        format!("{}:c:{tag}:", self.prefix)
    }

    pub(super) fn is_pending(&self, tag: &str) -> bool {
        self.has_pending.load(Ordering::Acquire) && lock(&self.pending).contains(tag)
    }

    /// The breaker is closed and no invalidation is pending.
    pub(super) fn trusted(&self) -> bool {
        !self.breaker.is_open() && !self.has_pending.load(Ordering::Acquire)
    }

    pub(super) fn keep_pending<S: AsRef<str>>(&self, tags: &[S]) {
        let mut pending = lock(&self.pending);
        pending.extend(tags.iter().map(|t| t.as_ref().to_owned()));
        self.has_pending.store(true, Ordering::Release);
        drop(pending);
        self.breaker.wake.notify_one();
    }

    pub(super) fn trip(&self, reason: String) {
        *lock(&self.breaker.reason) = Some(reason.clone());
        if !self.breaker.open.swap(true, Ordering::AcqRel) {
            self.counters.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason, "redis circuit opened: the cache is bypassed until Redis answers again");
        }
        self.breaker.wake.notify_one();
    }

    /// Runs one call within the timeout and classifies it (no breaker, no counters).
    pub(super) async fn timed<T>(&self, fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Outcome<T> {
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
    pub(super) async fn call<T>(&self, fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
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

    pub(super) fn settle<T>(&self, outcome: Outcome<T>) -> Option<T> {
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
    pub(super) fn near_get(&self, tag: &str, key: &str) -> Option<Arc<str>> {
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

    pub(super) fn near_put(&self, tag: &str, key: &str, generation: u64, session: u64, raw: &str) {
        let entry = NearEntry { generation, session, raw: Arc::from(raw), expires: Instant::now() + NEAR_TTL };
        lock(&self.near).put(near_key(tag, key), entry);
    }

    pub(super) async fn lookup(&self, tag: &str, key: &str) -> Option<(u64, Option<String>)> {
        let mut conn = self.conn.clone();
        let mut invocation = self.lookup.key(self.generation_key(tag));
        invocation.arg(self.entry_prefix(tag)).arg(key);
        let (generation, raw): (String, Option<String>) = self.call(invocation.invoke_async(&mut conn)).await?;
        Some((generation.parse().ok()?, raw))
    }

    pub(super) async fn set(&self, tag: &str, generation: u64, key: &str, raw: String, ttl: Duration) {
        let mut conn = self.conn.clone();
        let entry_key = format!("{}{generation}:{key}", self.entry_prefix(tag));
        let cmd = redis::cmd("SET").arg(entry_key).arg(raw).arg("PX").arg(ttl.as_millis() as u64).to_owned();
        let _: Option<()> = self.call(cmd.query_async(&mut conn)).await;
    }

    /// An invalidation on behalf of a writer or the log follower: sent when Redis is
    /// believed up, otherwise (or when it fails) kept as pending without waiting.
    /// `events` are the committed events the tags are invalidated for: once the bump has
    /// reached Redis they are marked applied, and other instances' followers leave them be.
    pub(super) async fn invalidate<S: AsRef<str>>(&self, tags: &[S], events: &[i64]) {
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
    pub(super) async fn bump<S: AsRef<str>>(&self, tags: &[S], events: &[i64]) -> Outcome<()> {
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
    pub(super) fn applied_bit(&self, event: i64) -> (String, u64) {
        let id = event.max(0) as u64;
        (format!("{}:applied:{}", self.prefix, id >> 16), id & 0xffff)
    }

    /// Which of `events` another instance's writer marked applied; all false when Redis cannot
    /// answer now (the follower then invalidates for them all, as it must).
    pub(super) async fn applied(&self, events: &[i64]) -> Vec<bool> {
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

    pub(super) async fn read_generation(&self, tag: &str) -> Option<u64> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("GET").arg(self.generation_key(tag)).to_owned();
        let raw: Option<u64> = self.call(cmd.query_async(&mut conn)).await?;
        Some(raw.unwrap_or(0))
    }

    /// `/ready`'s check (the breaker is closed when it runs); a failure opens the breaker.
    pub(super) async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING").to_owned();
        match self.settle(self.timed(cmd.query_async::<String>(&mut conn)).await) {
            Some(_) => Ok(()),
            None => Err(lock(&self.breaker.reason).clone().unwrap_or_else(|| "redis unreachable".to_owned())),
        }
    }

    /// One probe while degraded: flush the pending invalidations (or PING when none is
    /// pending); close the breaker when Redis answered in time and nothing is left pending.
    pub(super) async fn probe(&self) {
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
pub(super) async fn probe_while_degraded(store: Weak<RedisStore>) {
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

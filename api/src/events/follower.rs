//! This instance's side of the log: what a writer does right after its commit, and the
//! follower that reads every committed event in order and hands it to the consumers.
//!
//! - The writing instance applies its own events' cache invalidations at once
//!   ([`EventLog::published`]), before the mutation answers.
//! - The follower (one task per instance) reads the log after its position, woken by a
//!   doorbell: the local writer, PostgreSQL `NOTIFY incubase_events` from other instances, and
//!   a short poll as a backstop (SQLite has no NOTIFY; the CLI does not ring; a notification
//!   lost while the listener reconnected is found by the next poll). Rings that arrive within
//!   [`GATHER`] of a read are answered by one read, so a busy log costs one read per tick, not
//!   one per commit. Each event goes to cache coherence (skipped for events this instance's
//!   writers already applied, and with Redis for events another instance's writer marked
//!   applied there: its bump reached every instance already) and to live subscribers (a
//!   broadcast in log order).
//! - The doorbell of other instances is rung **after** commit, by a task of the writing
//!   instance (`SELECT pg_notify(…)` on its background connection), once for all the commits
//!   of a moment: a `NOTIFY` inside the writing transaction would hold PostgreSQL's global
//!   notify lock through the commit's WAL flush, serializing every writer's commit (measured:
//!   it cost donate + confirm 30%).
//! - With a shared cache (Redis) the coherence position is durable (`event_consumers` row
//!   `cache-coherence`), saved at most once per [`SAVE_EVERY`] while the log moves (and once
//!   the follower is idle): an instance that stopped between a commit and its delivery, or
//!   events written while no instance ran, are applied when an instance starts again (an
//!   older saved position re-applies a few invalidations, which is harmless).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::{domain_event, event_consumer};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{Notify, broadcast};

use super::coherence;
use super::log::{self, Appended, Position};
use crate::cache::Cache;

const BATCH: u64 = 500;
const LIVE_CAPACITY: usize = 4096;
/// The durable consumer name of shared-cache coherence.
const COHERENCE_CONSUMER: &str = "cache-coherence";
const APPLIED_KEPT: Duration = Duration::from_secs(60);
/// Rings within this long of a read are answered by the next read, together.
pub const GATHER: Duration = Duration::from_millis(20);
/// The durable coherence position is written at most this often while the log moves.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);
/// The channel other instances listen on.
const CHANNEL: &str = "incubase_events";

/// How the follower runs.
#[derive(Clone, Debug)]
pub struct FollowerSettings {
    /// The backstop poll between doorbells.
    pub poll_interval: Duration,
    /// Keep the coherence position in the database (the cache is shared, e.g. Redis).
    pub durable_coherence: bool,
    /// The PostgreSQL URL to LISTEN on; `None` for SQLite.
    pub listen_url: Option<String>,
}

#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache,
    doorbell: Notify,
    /// Wakes the task that rings other instances' doorbell (PostgreSQL only).
    ring: Notify,
    /// This instance's `NOTIFY` payload, so its listener ignores its own rings.
    token: String,
    live: broadcast::Sender<Arc<domain_event::Model>>,
    /// Everything up to here has been handed to the consumers.
    position: Mutex<Position>,
    /// Events whose invalidations this instance's writers applied at commit, and when. An
    /// entry the follower never meets (it read the event before the writer noted it) is
    /// dropped after `APPLIED_KEPT`.
    applied_locally: Mutex<HashMap<i64, std::time::Instant>>,
    /// A follower runs (and will clear `applied_locally`).
    following: bool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Effects outside the cache that this instance applies right after its own commits
    /// (other instances apply them from the broadcast).
    hooks: Mutex<Vec<Hook>>,
}

/// An effect of an event on this instance (a kind of event, its payload).
pub type Hook = Arc<dyn Fn(super::EventKind, &serde_json::Value) + Send + Sync>;

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().map(std::mem::take).unwrap_or_default() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventLog {
    fn with_capacity(cache: Cache, capacity: usize, following: bool) -> Self {
        let (live, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                cache,
                doorbell: Notify::new(),
                ring: Notify::new(),
                token: uuid::Uuid::new_v4().simple().to_string(),
                live,
                position: Mutex::new(Position::START),
                applied_locally: Mutex::new(HashMap::new()),
                following,
                tasks: Mutex::new(Vec::new()),
                hooks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A log side without a follower: commits apply their own invalidations, nothing is
    /// followed (the CLI, which writes and exits; tests that need a writer alone).
    pub fn writer_only(cache: Cache) -> Self {
        Self::with_capacity(cache, 16, false)
    }

    /// Starts following the log on `db` (a connection of its own, so background reads do not
    /// count as the requests' statements).
    pub async fn follow(
        db: DatabaseConnection,
        cache: Cache,
        settings: FollowerSettings,
    ) -> crate::error::AppResult<Self> {
        let log = Self::with_capacity(cache, LIVE_CAPACITY, true);
        let tail = log::tail(&db).await?;
        let mut start = tail;
        if settings.durable_coherence
            && let Some(saved) = event_consumer::Entity::find_by_id(COHERENCE_CONSUMER).one(&db).await?
        {
            start = start.min(Position { tx: saved.tx, id: saved.event_id });
        }
        // Subscribers start from what is already committed; the catch-up of the shared cache
        // (start..tail) is coherence work only.
        *lock(&log.inner.position) = tail;
        let follower = tokio::spawn(run(Arc::downgrade(&log.inner), db.clone(), start, tail, settings.clone()));
        let mut tasks = vec![follower];
        if let Some(url) = settings.listen_url {
            tasks.push(tokio::spawn(listen(Arc::downgrade(&log.inner), url)));
            tasks.push(tokio::spawn(ring_others(Arc::downgrade(&log.inner), db)));
        }
        lock(&log.inner.tasks).extend(tasks);
        Ok(log)
    }

    /// Registers an effect to apply right after this instance's own commits.
    pub fn on_published(&self, hook: Hook) {
        lock(&self.inner.hooks).push(hook);
    }

    /// Right after a writer's commit: applies the events' cache invalidations (and the
    /// registered hooks) on this instance at once and wakes the follower.
    pub async fn published(&self, appended: &Appended) {
        if appended.events.is_empty() {
            return;
        }
        let mut tags = Vec::new();
        for (_, kind, aggregate_id, payload) in &appended.events {
            tags.extend(coherence::tags(*kind, *aggregate_id, payload));
        }
        tags.sort();
        tags.dedup();
        if !tags.is_empty() {
            let ids: Vec<i64> = appended.events.iter().map(|(id, ..)| *id).collect();
            self.inner.cache.invalidate_committed(&tags, &ids).await;
        }
        let hooks: Vec<Hook> = lock(&self.inner.hooks).clone();
        for hook in &hooks {
            for (_, kind, _, payload) in &appended.events {
                hook(*kind, payload);
            }
        }
        if self.inner.following {
            let now = std::time::Instant::now();
            let mut applied = lock(&self.inner.applied_locally);
            applied.extend(appended.events.iter().map(|(id, ..)| (*id, now)));
        }
        self.inner.doorbell.notify_one();
        self.inner.ring.notify_one();
    }

    /// A receiver of every event from now on, in log order, and the position it starts
    /// after: events at or before it were handed out before the receiver existed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<domain_event::Model>>, Position) {
        let receiver = self.inner.live.subscribe();
        // Read after subscribing: the follower moves its position before it broadcasts.
        let position = *lock(&self.inner.position);
        (receiver, position)
    }

    /// Where the follower is.
    pub fn position(&self) -> Position {
        *lock(&self.inner.position)
    }
}

/// The follower: reads after its position, hands each event out, waits for the doorbell.
async fn run(
    inner: std::sync::Weak<Inner>,
    db: DatabaseConnection,
    mut coherence_from: Position,
    mut position: Position,
    settings: FollowerSettings,
) {
    use tokio::time::Instant;
    let mut backoff = settings.poll_interval;
    // The durable position: what was saved, and when (`None`: not yet by this instance).
    let mut saved = coherence_from;
    let mut saved_at: Option<Instant> = None;
    let mut last_read;
    loop {
        let Some(log) = inner.upgrade() else { return };
        // Shared-cache catch-up first: events committed while this instance was away.
        let read_from = coherence_from.min(position);
        last_read = Instant::now();
        let mut full = false;
        match log::read_after(&db, read_from, BATCH).await {
            Ok(batch) => {
                backoff = settings.poll_interval;
                full = batch.len() as u64 == BATCH;
                let mut followed = Vec::new();
                let mut last = read_from;
                for event in batch {
                    let at = Position::of(&event);
                    last = at;
                    let local = lock(&log.applied_locally).remove(&event.id).is_some();
                    if !local && let Some(kind) = log::kind_of(&event) {
                        followed.push((event.id, coherence::tags(kind, event.aggregate_id, &event.payload)));
                    }
                    if at > position {
                        position = at;
                        *lock(&log.position) = at;
                        // No receivers is not an error.
                        let _ = log.live.send(Arc::new(event));
                    }
                }
                if !followed.is_empty() {
                    log.cache.invalidate_followed(&followed).await;
                }
                {
                    let mut applied = lock(&log.applied_locally);
                    if applied.len() > 1000 {
                        applied.retain(|_, at| at.elapsed() < APPLIED_KEPT);
                    }
                }
                if last > coherence_from {
                    coherence_from = last;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event log; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        // The durable position, at most once per `SAVE_EVERY` (the first move at once).
        let mut wait = backoff;
        if settings.durable_coherence && coherence_from > saved {
            let due = saved_at.map_or(Duration::ZERO, |at| SAVE_EVERY.saturating_sub(at.elapsed()));
            if due.is_zero() {
                save_position(&db, COHERENCE_CONSUMER, coherence_from).await;
                saved = coherence_from;
                saved_at = Some(Instant::now());
            } else {
                wait = wait.min(due);
            }
        }
        if full {
            continue;
        }
        // Holding `log` while waiting delays noticing a drop by one poll at most.
        if tokio::time::timeout(wait, log.doorbell.notified()).await.is_ok() {
            // Rung: let the rings of the next moment arrive, then read once for all of them.
            let since = last_read.elapsed();
            if since < GATHER {
                tokio::time::sleep(GATHER - since).await;
            }
        }
    }
}

/// Rings other instances' doorbell after this instance's commits: one `NOTIFY` for every
/// commit published while the previous one was on its way, and at most one per [`GATHER`].
async fn ring_others(inner: std::sync::Weak<Inner>, db: DatabaseConnection) {
    use sea_orm::{ConnectionTrait, Statement};
    loop {
        let Some(log) = inner.upgrade() else { return };
        // Holding `log` while waiting delays noticing a drop by a second at most.
        if tokio::time::timeout(Duration::from_secs(1), log.ring.notified()).await.is_err() {
            continue;
        }
        let backend = db.get_database_backend();
        let ring = Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), log.token.clone().into()],
        );
        drop(log);
        if let Err(e) = db.execute_raw(ring).await {
            // Other instances find the events at their next poll.
            tracing::debug!(error = %e, "cannot ring other instances");
        }
        tokio::time::sleep(GATHER).await;
    }
}

/// Records a durable consumer's position (only forward).
pub async fn save_position(db: &DatabaseConnection, consumer: &str, position: Position) {
    if let Err(e) = super::consumer::save(db, consumer, position).await {
        tracing::warn!(error = %e, consumer, "cannot save a consumer position");
    }
}

/// Rings the doorbell for every `NOTIFY incubase_events` of another instance; after a reconnection it rings once
/// more, since notifications sent while away are gone.
async fn listen(inner: std::sync::Weak<Inner>, url: String) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut backoff = Duration::from_millis(200);
    loop {
        if inner.strong_count() == 0 {
            return;
        }
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    if let Some(log) = inner.upgrade() {
                        log.doorbell.notify_one();
                    }
                    // `Ok(None)` or an error: the connection dropped; reconnect, then re-read.
                    while let Ok(Some(rung)) = listener.try_recv().await {
                        match inner.upgrade() {
                            // This instance's own ring: its follower was woken at the commit.
                            Some(log) if rung.payload() == log.token => {}
                            Some(log) => log.doorbell.notify_one(),
                            None => return,
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for events"),
            },
            Err(e) => tracing::debug!(error = %e, "event listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

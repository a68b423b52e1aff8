//! Delivering partner webhooks: a consumer of the event log and a deliverer, both background
//! tasks of every serving instance.
//!
//! - **Fan-out.** The consumer `webhooks` reads the log after its durable position (a row of
//!   `event_consumers`) and, in one transaction, queues a delivery per (endpoint, event) the
//!   endpoint receives and moves its position: a crash between the two cannot lose or double
//!   a delivery. On PostgreSQL the transaction first takes an advisory lock, so of several
//!   instances one fans out at a time; the others find the position moved and go on from it.
//!   While no endpoint is enabled the fan-out writes nothing (it moves its position along the
//!   log once a minute), and an endpoint never receives events from before it was registered.
//! - **Delivery.** Deliverers claim due deliveries by setting `claimed_until` (`FOR UPDATE
//!   SKIP LOCKED` on PostgreSQL: several instances never send one attempt twice; SQLite runs
//!   one instance), send each with its Standard Webhooks headers and record the attempt. A
//!   claim that outlives a crashed instance expires, and the delivery is sent again: delivery
//!   is at least once, and receivers deduplicate by `webhook-id`.
//! - **Requests.** The target is resolved and checked (no loopback, private, link-local or
//!   metadata address unless `INCUBASE_WEBHOOK_ALLOW_PRIVATE=true`) before every attempt and
//!   the connection goes to exactly the checked addresses; no redirect is followed; the
//!   request has a 10 s limit and at most 2 KiB of the answer is read, for the delivery log.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{domain_event, webhook_attempt, webhook_delivery, webhook_endpoint};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set, Statement, TransactionTrait,
};

use crate::config::WebhookSettings;
use crate::error::AppResult;
use crate::events::{EventLog, Position, consumer, log};
use crate::service::common::by_id;
use crate::service::webhooks::{self as rules, FAILED, PENDING, SUCCEEDED};

/// The durable consumer name of the fan-out.
pub const CONSUMER: &str = "webhooks";
/// The advisory lock of the fan-out on PostgreSQL (`'incubase-webhooks'` hashed by hand).
const FAN_OUT_LOCK: i64 = 0x1ec0_b45e_0057_e8b0;
/// Events read per fan-out round.
const BATCH: u64 = 500;
/// Deliveries one deliverer sends at a time.
const CLAIM: u64 = 16;
/// How long a claim holds (longer than a request's limit).
const CLAIM_FOR: Duration = Duration::from_secs(60);
/// How much of an answer is kept.
const EXCERPT: usize = 2048;
/// While idle, how often the fan-out moves its position along.
const IDLE_ADVANCE: Duration = Duration::from_secs(60);

/// Where the tasks read and write. On PostgreSQL both are a background connection of their
/// own; SQLite takes writes through the server's own pool (one writer at a time, so two pools
/// would only wait on each other) while polls read on the background connection, so an idle
/// server's requests count no statement of ours.
#[derive(Clone)]
pub struct Connections {
    pub reads: DatabaseConnection,
    pub writes: DatabaseConnection,
}

/// Starts the fan-out and the deliverer; they end when the returned handles are aborted.
pub fn spawn(connections: Connections, log: EventLog, settings: WebhookSettings) -> Vec<tokio::task::JoinHandle<()>> {
    let settings = Arc::new(settings);
    let doorbell = Arc::new(tokio::sync::Notify::new());
    vec![
        tokio::spawn(fan_out_loop(connections.clone(), log, settings.clone(), doorbell.clone())),
        tokio::spawn(deliver_loop(connections, settings, doorbell)),
    ]
}

async fn fan_out_loop(
    connections: Connections,
    log: EventLog,
    settings: Arc<WebhookSettings>,
    doorbell: Arc<tokio::sync::Notify>,
) {
    let (mut events, _) = log.subscribe();
    let mut idle_since: Option<Instant> = None;
    loop {
        match fan_out(&connections, &mut idle_since).await {
            Ok(Round::Queued(n)) => {
                if n > 0 {
                    doorbell.notify_one();
                }
                continue;
            }
            Ok(Round::Done) => {}
            Err(e) => tracing::warn!(error = %e, "webhook fan-out failed; retrying"),
        }
        if !consumer::wait_for_events(&mut events, settings.poll_interval).await {
            return;
        }
    }
}

enum Round {
    /// Events were read (and this many deliveries queued): read on at once.
    Queued(u64),
    /// Caught up.
    Done,
}

async fn saved_position(db: &impl ConnectionTrait) -> AppResult<Option<Position>> {
    consumer::saved(db, CONSUMER).await
}

async fn save(db: &impl ConnectionTrait, position: Position) -> AppResult<()> {
    consumer::save(db, CONSUMER, position).await
}

async fn enabled_endpoints(db: &impl ConnectionTrait) -> AppResult<Vec<webhook_endpoint::Model>> {
    // Endpoints of revoked partner keys receive nothing more.
    let revoked = "SELECT id FROM api_keys WHERE revoked_at IS NOT NULL";
    Ok(webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(
            sea_orm::Condition::any()
                .add(webhook_endpoint::Column::ApiKeyId.is_null())
                .add(Expr::cust(format!("api_key_id NOT IN ({revoked})"))),
        )
        .all(db)
        .await?)
}

/// One round of the fan-out.
async fn fan_out(connections: &Connections, idle_since: &mut Option<Instant>) -> AppResult<Round> {
    let reads = &connections.reads;
    let endpoints = enabled_endpoints(reads).await?;
    if endpoints.is_empty() {
        // Idle: move the position to the log's end now and then, without other writes. The
        // tail is read before endpoints are counted again, so an endpoint registered in
        // between is seen and its events are not skipped.
        let due = idle_since.is_none_or(|since| since.elapsed() >= IDLE_ADVANCE);
        if due {
            *idle_since = Some(Instant::now());
            let tail = log::tail(reads).await?;
            let saved = saved_position(reads).await?;
            if saved.is_none_or(|s| s < tail) && enabled_endpoints(reads).await?.is_empty() {
                save(&connections.writes, tail).await?;
            }
        }
        return Ok(Round::Done);
    }
    *idle_since = None;
    let Some(position) = saved_position(reads).await? else {
        // First start: from the end of the log.
        let tail = log::tail(reads).await?;
        save(&connections.writes, tail).await?;
        return Ok(Round::Done);
    };
    let events = log::read_after(reads, position, BATCH).await?;
    let Some(last) = events.last().map(Position::of) else { return Ok(Round::Done) };
    let types: HashMap<i64, Vec<String>> = endpoints.iter().map(|e| (e.id, rules::event_types_of(e))).collect();
    let rows: Vec<(i64, i64, String)> = events
        .iter()
        .flat_map(|event| {
            endpoints
                .iter()
                .filter(|e| rules::receives(e, &types[&e.id], event))
                .map(|e| (e.id, event.id, event.event_type.clone()))
        })
        .collect();
    let writes = &connections.writes;
    let txn = writes.begin().await?;
    if !consumer::try_lock(&txn, FAN_OUT_LOCK).await? {
        // Another instance is at it.
        txn.rollback().await?;
        return Ok(Round::Done);
    }
    // Under the lock (or SQLite's one writer): only from where the position still is.
    if saved_position(&txn).await? != Some(position) {
        txn.rollback().await?;
        return Ok(Round::Queued(0));
    }
    let queued = rules::queue_rows(&txn, &rows, crate::service::now(), false).await?;
    save(&txn, last).await?;
    txn.commit().await?;
    Ok(Round::Queued(queued))
}

async fn deliver_loop(connections: Connections, settings: Arc<WebhookSettings>, doorbell: Arc<tokio::sync::Notify>) {
    let wait = || async {
        let _ = tokio::time::timeout(settings.poll_interval, doorbell.notified()).await;
    };
    drain(|| deliver_due(&connections, &settings), wait, "webhook delivery failed; retrying").await
}

/// Runs `round` again at once while it finds work (a count above zero), else after `wait`;
/// forever (the task is aborted). A failed round is logged with `failed` and waits too.
pub(crate) async fn drain<R, W>(mut round: impl FnMut() -> R, mut wait: impl FnMut() -> W, failed: &str)
where
    R: Future<Output = AppResult<usize>>,
    W: Future<Output = ()>,
{
    loop {
        match round().await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => tracing::warn!(error = %e, "{failed}"),
        }
        wait().await;
    }
}

/// Whether a row of an outbox table is due: `status` is `PENDING` and `next_at` has come.
/// A cheap read before the claim, which writes.
pub(crate) async fn any_due<C>(db: &DatabaseConnection, status: C, next_at: C, now: DateTime<Utc>) -> AppResult<bool>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    let due = <C::EntityName as EntityTrait>::find()
        .select_only()
        .column(status)
        .filter(status.eq(PENDING))
        .filter(next_at.lte(now))
        .limit(1)
        .into_tuple::<String>()
        .one(db)
        .await?;
    Ok(due.is_some())
}

/// Claims the due deliveries (up to `CLAIM`) and sends them; how many were sent.
async fn deliver_due(connections: &Connections, settings: &WebhookSettings) -> AppResult<usize> {
    use webhook_delivery::Column::{NextAttemptAt, Status};
    let claimed = claim_due(connections, "webhook_deliveries", Status, NextAttemptAt).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let endpoint_ids: Vec<i64> = claimed.iter().map(|d| d.endpoint_id).collect();
    let event_ids: Vec<i64> = claimed.iter().map(|d| d.event_id).collect();
    let endpoints = by_id(&connections.reads, webhook_endpoint::Column::Id, endpoint_ids, |e| e.id).await?;
    let events = by_id(&connections.reads, domain_event::Column::Id, event_ids, |e| e.id).await?;
    let sent = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(None, |delivery| {
            let endpoint = endpoints.get(&delivery.endpoint_id).cloned();
            let event = events.get(&delivery.event_id).cloned();
            async move {
                let outcome = match (&endpoint, &event) {
                    (Some(endpoint), Some(event)) => attempt(endpoint, event, settings).await,
                    (None, _) => return,
                    (_, None) => Outcome::gone("the event is no longer kept in the log"),
                };
                if let Err(e) = record(&connections.writes, &delivery, endpoint.as_ref(), outcome, settings).await {
                    tracing::warn!(error = %e, delivery = delivery.id, "cannot record a webhook attempt");
                }
            }
        })
        .await;
    Ok(sent)
}

/// The due rows of the outbox `table` (whose columns `status` and `next_at` are), claimed for
/// this deliverer (see `claim_statement`); none, and no write, when none is due.
pub(crate) async fn claim_due<C>(
    connections: &Connections,
    table: &str,
    status: C,
    next_at: C,
) -> AppResult<Vec<<C::EntityName as EntityTrait>::Model>>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    let now = crate::service::now();
    if !any_due(&connections.reads, status, next_at, now).await? {
        return Ok(Vec::new());
    }
    let db = &connections.writes;
    let stmt = claim_statement(db.get_database_backend(), table, now);
    Ok(<C::EntityName as EntityTrait>::find().from_raw_sql(stmt).all(db).await?)
}

/// The claim of due rows of an outbox table (`webhook_deliveries`, `channel_messages`: both
/// have `status`, `next_attempt_at`, `claimed_until` and `endpoint_id`): up to `CLAIM` rows of
/// enabled endpoints, claimed for `CLAIM_FOR`; other instances skip the locked ones.
pub(crate) fn claim_statement(backend: DatabaseBackend, table: &str, now: DateTime<Utc>) -> Statement {
    let until = now + chrono::Duration::from_std(CLAIM_FOR).unwrap_or_default();
    let (p, lock) = match backend {
        DatabaseBackend::Postgres => (["$1", "$2"], " FOR UPDATE SKIP LOCKED"),
        _ => (["?1", "?2"], ""),
    };
    let sql = format!(
        "UPDATE {table} SET claimed_until = {until} WHERE id IN (SELECT d.id FROM {table} d \
         WHERE d.status = 'PENDING' AND d.next_attempt_at <= {now} AND (d.claimed_until IS NULL OR d.claimed_until < {now}) \
         AND d.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled) \
         ORDER BY d.next_attempt_at, d.id LIMIT {CLAIM}{lock}) RETURNING *",
        until = p[0],
        now = p[1],
    );
    Statement::from_sql_and_values(backend, sql, [until.into(), now.into()])
}

/// What one attempt came to.
pub(crate) struct Outcome {
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    excerpt: Option<String>,
    duration: Duration,
    /// No point in retrying (the event is gone).
    final_failure: bool,
}

impl Outcome {
    fn gone(why: &str) -> Self {
        Outcome {
            status: None,
            error: Some(why.to_owned()),
            excerpt: None,
            duration: Duration::ZERO,
            final_failure: true,
        }
    }

    pub(crate) fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends one delivery.
async fn attempt(
    endpoint: &webhook_endpoint::Model,
    event: &domain_event::Model,
    settings: &WebhookSettings,
) -> Outcome {
    let body = serde_json::to_vec(&rules::body(event)).unwrap_or_default();
    send(endpoint, &rules::message_id(event.id), body, settings).await
}

/// POSTs `body` to `endpoint` signed as message `id` (Standard Webhooks), to the checked
/// addresses only, following no redirect, reading at most `EXCERPT` bytes of the answer.
pub(crate) async fn send(
    endpoint: &webhook_endpoint::Model,
    id: &str,
    body: Vec<u8>,
    settings: &WebhookSettings,
) -> Outcome {
    let started = Instant::now();
    let failed = |error: String, started: Instant| Outcome {
        status: None,
        error: Some(error),
        excerpt: None,
        duration: started.elapsed(),
        final_failure: false,
    };
    let (url, addresses) = match rules::resolve_target(&endpoint.url, settings.allow_private).await {
        Ok(target) => target,
        Err(e) => return failed(e.to_string(), started),
    };
    let client = match client_for(&url, &addresses, settings.request_timeout) {
        Ok(client) => client,
        Err(e) => return failed(format!("cannot build the request: {e}"), started),
    };
    let at = crate::service::now();
    let signature = rules::signatures(&settings.sealing, endpoint, id, at, &body);
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("incubase-webhooks/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", id)
        .header("webhook-timestamp", at.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body);
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let what = if e.is_timeout() { "timed out".to_owned() } else { format!("no answer: {e}") };
            return failed(what, started);
        }
    };
    let status = response.status().as_u16();
    let mut excerpt = Vec::new();
    let mut stream = response.bytes_stream();
    while excerpt.len() < EXCERPT {
        match tokio::time::timeout(settings.request_timeout.saturating_sub(started.elapsed()), stream.next()).await {
            Ok(Some(Ok(chunk))) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT - excerpt.len())]),
            _ => break,
        }
    }
    let error = (300..400).contains(&status).then(|| "redirects are not followed".to_owned());
    Outcome {
        status: Some(status),
        error,
        excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned()),
        duration: started.elapsed(),
        final_failure: false,
    }
}

/// A client that connects to exactly the checked addresses and follows no redirect.
fn client_for(url: &reqwest::Url, addresses: &[SocketAddr], timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .no_proxy()
        .pool_max_idle_per_host(0);
    if let Some(host) = url.host_str()
        && host.parse::<std::net::IpAddr>().is_err()
    {
        builder = builder.resolve_to_addrs(host, addresses);
    }
    builder.build()
}

/// Records an attempt and what it means for the delivery (and the endpoint) in one
/// transaction.
async fn record(
    db: &DatabaseConnection,
    delivery: &webhook_delivery::Model,
    endpoint: Option<&webhook_endpoint::Model>,
    outcome: Outcome,
    settings: &WebhookSettings,
) -> AppResult<()> {
    let now = crate::service::now();
    let txn = db.begin().await?;
    webhook_attempt::ActiveModel {
        delivery_id: Set(delivery.id),
        attempted_at: Set(now),
        status_code: Set(outcome.status.map(i32::from)),
        error: Set(outcome.error.as_ref().map(|e| e.chars().take(500).collect())),
        duration_ms: Set(i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX)),
        response_excerpt: Set(outcome.excerpt.clone()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let attempts = delivery.attempts + 1;
    let succeeded = outcome.succeeded();
    let retry_in = settings.retry_schedule.get(delivery.attempts as usize).copied();
    let status = match (succeeded, retry_in) {
        (true, _) => SUCCEEDED,
        (false, Some(_)) if !outcome.final_failure => PENDING,
        _ => FAILED,
    };
    let next = retry_in.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| now + d).unwrap_or(now);
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_delivery::Column::Status, Expr::value(status))
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next))
        .col_expr(webhook_delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(webhook_delivery::Column::LastStatusCode, Expr::value(outcome.status.map(i32::from)))
        .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(succeeded.then_some(now)))
        .filter(webhook_delivery::Column::Id.eq(delivery.id))
        .exec(&txn)
        .await?;
    let mut failing_since = None;
    if let Some(endpoint) = endpoint {
        if succeeded && endpoint.failing_since.is_some() {
            webhook_endpoint::Entity::update_many()
                .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
                .filter(webhook_endpoint::Column::Id.eq(endpoint.id))
                .exec(&txn)
                .await?;
        } else if !succeeded {
            webhook_endpoint::Entity::update_many()
                .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(now))
                .filter(webhook_endpoint::Column::Id.eq(endpoint.id))
                .filter(webhook_endpoint::Column::FailingSince.is_null())
                .exec(&txn)
                .await?;
            failing_since = Some(endpoint.failing_since.unwrap_or(now));
        }
    }
    txn.commit().await?;
    // Failing for too long: disable it (an audit event tells admins).
    if let (Some(endpoint), Some(since)) = (endpoint, failing_since)
        && endpoint.failing_since.is_some()
        && chrono::Duration::from_std(settings.disable_after).is_ok_and(|limit| now - since >= limit)
        && rules::disable_failing(db, endpoint.id, since).await?
    {
        tracing::warn!(endpoint = endpoint.id, url = %endpoint.url, "webhook endpoint disabled after failing for too long");
    }
    Ok(())
}

//! Telling people what happened: the `notifications` consumer of the event log writes each
//! person's inbox (and queues the emails they want), and the mailer sends them over SMTP.
//!
//! - **Inbox.** The consumer reads the log after its durable position, works out who each
//!   event concerns (`service::notifications`), and writes the rows and its new position in one
//!   transaction (an advisory lock on PostgreSQL: one instance at a time). A row per (person,
//!   event) is unique, so reading an event twice writes it once. The consumer reads on a
//!   background connection of its own (writes too on PostgreSQL; SQLite's go through the
//!   server's pool, its one writer), and writes only when an event notifies someone (or once
//!   a minute to move its position).
//! - **Email.** With `INCUBASE_SMTP_URL` set, rows of the kinds a person chose are queued for
//!   email; the mailer claims them (`FOR UPDATE SKIP LOCKED` on PostgreSQL), sends each to the
//!   account's address, and retries after 1, 10 and 60 minutes before giving up. Without SMTP,
//!   nothing is queued and the inbox works as before.
//! - **Other channels.** SMS and WeChat template messages of the kinds a person chose go to
//!   the number and openid they registered: the consumer queues one message per relay
//!   endpoint (subscribed to `message.sms` / `message.wechat_template`) in the same
//!   transaction, and `crate::channels` delivers them as signed webhooks; the partner relays
//!   them through its provider (see `service::channels`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{account, notification};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter, Statement,
    TransactionTrait,
};

use crate::error::AppResult;
use crate::events::{EventLog, Position, consumer, log};
use crate::mail::Mailer;
use crate::service::notifications as rules;

/// The durable consumer name.
pub const CONSUMER: &str = "notifications";
const LOCK: i64 = 0x1ec0_b45e_0000_0a11;
const BATCH: u64 = 500;
const SAVE_EVERY: Duration = Duration::from_secs(60);
const RETRIES: [Duration; 3] = [Duration::from_secs(60), Duration::from_secs(600), Duration::from_secs(3600)];
const CLAIM: u64 = 20;

/// How the tasks run.
#[derive(Clone)]
pub struct NotifierSettings {
    /// The instance's mailer (`INCUBASE_SMTP_URL`); `None`: no email, the inbox still works.
    pub mailer: Option<crate::mail::Mailer>,
    pub poll_interval: Duration,
}

/// Starts the consumer (and the mailer when SMTP is configured).
pub fn spawn(
    connections: crate::webhooks::Connections,
    log: EventLog,
    settings: NotifierSettings,
) -> Vec<tokio::task::JoinHandle<()>> {
    let doorbell = Arc::new(tokio::sync::Notify::new());
    let email = settings.mailer.is_some();
    let mut tasks = vec![tokio::spawn(consume(connections.clone(), log, email, settings.clone(), doorbell.clone()))];
    if let Some(mailer) = settings.mailer.clone() {
        tasks.push(tokio::spawn(mail(connections.writes, mailer, settings, doorbell)));
    }
    tasks
}

async fn saved(db: &impl ConnectionTrait) -> AppResult<Option<Position>> {
    consumer::saved(db, CONSUMER).await
}

async fn save(db: &impl ConnectionTrait, position: Position) -> AppResult<()> {
    consumer::save(db, CONSUMER, position).await
}

async fn consume(
    db: crate::webhooks::Connections,
    log: EventLog,
    email: bool,
    settings: NotifierSettings,
    doorbell: Arc<tokio::sync::Notify>,
) {
    let (mut events, _) = log.subscribe();
    // Where this consumer has read to, ahead of the saved position while nothing was written.
    let mut read_to: Option<Position> = None;
    let mut last_save = Instant::now();
    loop {
        match round(&db, email, &mut read_to, &mut last_save).await {
            Ok(Some(written)) => {
                if written > 0 {
                    doorbell.notify_one();
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "writing notifications failed; retrying");
                read_to = None;
            }
        }
        if !consumer::wait_for_events(&mut events, settings.poll_interval).await {
            return;
        }
    }
}

/// One round: `Some(written)` when events were read (read on at once), `None` when caught up.
async fn round(
    connections: &crate::webhooks::Connections,
    email: bool,
    read_to: &mut Option<Position>,
    last_save: &mut Instant,
) -> AppResult<Option<u64>> {
    let (db, writes) = (&connections.reads, &connections.writes);
    let position = match *read_to {
        Some(p) => p,
        None => match saved(db).await? {
            Some(p) => p,
            None => {
                // First start: from the end of the log.
                let tail = log::tail(db).await?;
                save(writes, tail).await?;
                tail
            }
        },
    };
    *read_to = Some(position);
    let events = log::read_after(db, position, BATCH).await?;
    let Some(last) = events.last().map(Position::of) else {
        if last_save.elapsed() >= SAVE_EVERY {
            *last_save = Instant::now();
            if saved(db).await? < Some(position) {
                save(writes, position).await?;
            }
        }
        return Ok(None);
    };
    // On PostgreSQL the instance holding the lock plans, the others leave these events to it
    // rather than plan what they would not write (planning reads the rows events name). On
    // SQLite (one instance, one writer connection, no lock) the transaction starts only once
    // there is something to write, so planning never holds the writer.
    let postgres = writes.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let mut locked = None;
    if postgres {
        let txn = writes.begin().await?;
        if !consumer::try_lock(&txn, LOCK).await? {
            txn.rollback().await?;
            *read_to = None;
            return Ok(None);
        }
        locked = Some(txn);
    }
    let now = crate::service::now();
    let outbox = rules::rows_for(db, &events, email, now).await?;
    if outbox.is_empty() {
        // Nothing to write: move on in memory; a restart reads these again and writes nothing.
        if let Some(txn) = locked {
            txn.rollback().await?;
        }
        *read_to = Some(last);
        return Ok(Some(0));
    }
    let txn = match locked {
        Some(txn) => txn,
        None => writes.begin().await?,
    };
    // Rows are unique per (person, event): another instance that wrote them first wins.
    let written = rules::insert(&txn, outbox.inbox).await?;
    // Messages relayed to SMS and WeChat, in the same transaction as the position.
    let written = written + crate::service::channels::insert(&txn, outbox.messages).await?;
    let stored = saved(&txn).await?;
    if stored.is_none_or(|s| s < last) {
        save(&txn, last).await?;
    }
    txn.commit().await?;
    *last_save = Instant::now();
    *read_to = Some(last);
    Ok(Some(written))
}

async fn mail(db: DatabaseConnection, mailer: Mailer, settings: NotifierSettings, doorbell: Arc<tokio::sync::Notify>) {
    let wait = || async {
        let _ = tokio::time::timeout(settings.poll_interval, doorbell.notified()).await;
    };
    crate::webhooks::drain(|| send_due(&db, &mailer), wait, "sending notification emails failed; retrying").await
}

async fn claim(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Vec<notification::Model>> {
    let backend = db.get_database_backend();
    let (p, lock) = match backend {
        DatabaseBackend::Postgres => (["$1", "$2"], " FOR UPDATE SKIP LOCKED"),
        _ => (["?1", "?2"], ""),
    };
    let sql = format!(
        "UPDATE notifications SET email_claimed_until = {until} WHERE id IN (SELECT id FROM notifications \
         WHERE email_status = 'PENDING' AND email_next_at <= {now} AND (email_claimed_until IS NULL OR email_claimed_until < {now}) \
         ORDER BY email_next_at, id LIMIT {CLAIM}{lock}) RETURNING *",
        until = p[0],
        now = p[1]
    );
    let until = now + chrono::Duration::minutes(2);
    Ok(notification::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, [until.into(), now.into()]))
        .all(db)
        .await?)
}

async fn send_due(db: &DatabaseConnection, mailer: &Mailer) -> AppResult<usize> {
    let now = crate::service::now();
    use notification::Column::{EmailNextAt, EmailStatus};
    if !crate::webhooks::any_due(db, EmailStatus, EmailNextAt, now).await? {
        return Ok(0);
    }
    let claimed = claim(db, now).await?;
    let ids: Vec<i64> = claimed.iter().map(|n| n.account_id).collect();
    let accounts = crate::service::common::by_id(db, account::Column::Id, ids, |a| a.id).await?;
    for n in &claimed {
        let outcome = match accounts.get(&n.account_id) {
            Some(person) => mailer.send(&person.email, &person.display_name, &n.title, &n.body).await,
            None => Err("the account no longer exists".to_owned()),
        };
        let attempts = n.email_attempts + 1;
        let (status, next, error) = match &outcome {
            Ok(()) => ("SENT", None, None),
            Err(e) => match RETRIES.get(n.email_attempts as usize) {
                Some(pause) => {
                    ("PENDING", Some(now + chrono::Duration::from_std(*pause).unwrap_or_default()), Some(e.clone()))
                }
                None => ("FAILED", None, Some(e.clone())),
            },
        };
        if let Some(e) = &error {
            tracing::warn!(error = %e, notification = n.id, "a notification email was not sent");
        }
        notification::Entity::update_many()
            .col_expr(notification::Column::EmailStatus, Expr::value(status))
            .col_expr(notification::Column::EmailAttempts, Expr::value(attempts))
            .col_expr(notification::Column::EmailNextAt, Expr::value(next))
            .col_expr(notification::Column::EmailClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(
                notification::Column::EmailError,
                Expr::value(error.map(|e| e.chars().take(500).collect::<String>())),
            )
            .filter(notification::Column::Id.eq(n.id))
            .exec(db)
            .await?;
    }
    Ok(claimed.len())
}

//! Confirmations counted together on PostgreSQL. A confirmation holds its campaign's row and
//! the year's gapless receipt counter from the moment it counts until it commits, so under
//! load confirmations wait one behind another for those two rows, each paying a commit while
//! the others wait. This instance hands its confirmations to one task instead: a confirmation
//! that finds the task idle runs alone, as the one statement it always was
//! ([`confirm_statement`]); those that arrive while it runs wait and are then counted together
//! in one transaction (`incubase_confirm_donations`, migration m20261210_000001), which takes
//! the campaign rows and the counter once for all of them and appends their events.
//!
//! Only the common case is batched: a donation that is still to count. One the batch left out
//! (it had changed, expired, or its campaign was cancelled), a second confirmation of a donation
//! already in the batch, and every confirmation of a batch that failed are answered by their
//! callers' own path, exactly as without batching. SQLite has one writer and never batches.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

#[allow(unused_imports)]
use super::*;

use crate::metrics::{Metrics, OperationCount, counted_for, operation_count};

/// A confirmation answered by the batching task, with the instant it was taken at.
pub(super) type Batched = (DateTime<Utc>, ConfirmationRead);

/// This instance's confirmation queue and the task that empties it (started on first use).
pub struct ConfirmationBatches {
    db: DatabaseConnection,
    ttl: std::time::Duration,
    /// The most confirmations counted in one transaction (`INCUBASE_CONFIRMATION_BATCH`).
    most: usize,
    metrics: Arc<Metrics>,
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
}

/// One confirmation waiting: the donation, who confirms it, the reference to record, the
/// operation its statements count for, and where its answer goes.
struct Job {
    id: i64,
    actor: Actor,
    reference: Option<String>,
    statements: Option<OperationCount>,
    answer: oneshot::Sender<AppResult<Option<Batched>>>,
}

impl ConfirmationBatches {
    pub fn new(db: DatabaseConnection, ttl: std::time::Duration, most: usize, metrics: Arc<Metrics>) -> Self {
        ConfirmationBatches { db, ttl, most, metrics, queue: OnceLock::new() }
    }

    /// Confirms donation `id` if it is to count, with whatever else this instance is confirming.
    /// `Ok(Some(..))`: the donation as read, counted or not (the answer of a lone
    /// [`confirm_statement`]); `Ok(None)`: not answered here, the caller confirms it itself.
    pub(super) async fn confirm(
        &self,
        actor: &Actor,
        id: i64,
        reference: Option<String>,
    ) -> AppResult<Option<Batched>> {
        if self.most < 2 || self.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(None);
        }
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(self.db.clone(), self.ttl, self.most, self.metrics.clone(), receiver));
            sender
        });
        let (answer, answered) = oneshot::channel();
        let job = Job { id, actor: actor.clone(), reference, statements: operation_count(), answer };
        self.metrics.confirmations_waiting.inc();
        if queue.send(job).is_err() {
            self.metrics.confirmations_waiting.dec();
            return Ok(None);
        }
        // A task that stopped answers nothing: the caller goes on alone.
        answered.await.unwrap_or(Ok(None))
    }
}

/// Takes what is waiting, up to `most`, until the instance drops its queue.
async fn run(
    db: DatabaseConnection,
    ttl: std::time::Duration,
    most: usize,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::UnboundedReceiver<Job>,
) {
    let mut jobs = Vec::with_capacity(most);
    while receiver.recv_many(&mut jobs, most).await > 0 {
        let taken = std::mem::take(&mut jobs);
        metrics.confirmations_waiting.sub(i64::try_from(taken.len()).unwrap_or(i64::MAX));
        match <[Job; 1]>::try_from(taken) {
            Ok([job]) => alone(&db, ttl, job).await,
            Err(taken) => together(&db, ttl, &metrics, taken).await,
        }
    }
}

/// A confirmation with nothing beside it: its own statement, counted for its operation.
async fn alone(db: &DatabaseConnection, ttl: std::time::Duration, job: Job) {
    let now = crate::service::now();
    let statement = confirm_statement(ttl, &job.actor, job.id, now, job.reference);
    let read = counted_for(job.statements, confirmed_or_read(db, statement, now)).await;
    let _ = job.answer.send(read.map(|read| Some((now, read))));
}

/// Several confirmations in one transaction; each is answered after it committed.
async fn together(db: &DatabaseConnection, ttl: std::time::Duration, metrics: &Metrics, jobs: Vec<Job>) {
    let now = crate::service::now();
    let mut ids = HashSet::with_capacity(jobs.len());
    let (batch, repeats): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| ids.insert(job.id));
    let statements = batch.first().and_then(|job| job.statements.clone());
    let mut counted = match counted_for(statements, count_together(db, ttl, &batch, now)).await {
        Ok(counted) => {
            metrics.confirmation_batches.inc();
            metrics.confirmations_counted_together.inc_by(counted.len() as u64);
            counted
        }
        Err(error) => {
            tracing::warn!(%error, confirmations = batch.len(), "confirmations counted together failed; each goes alone");
            HashMap::new()
        }
    };
    for job in batch {
        let answer = counted.remove(&job.id).map(|read| (now, read));
        let _ = job.answer.send(Ok(answer));
    }
    for job in repeats {
        let _ = job.answer.send(Ok(None));
    }
}

/// Counts the donations of `batch` that are still to count, appends their `donation.confirmed`
/// events (each with its own actor) and commits: the donations as they were read, by id.
async fn count_together(
    db: &DatabaseConnection,
    ttl: std::time::Duration,
    batch: &[Job],
    now: DateTime<Utc>,
) -> AppResult<HashMap<i64, ConfirmationRead>> {
    use sea_orm::ActiveEnum;
    let jobs: Vec<serde_json::Value> = batch.iter().map(|job| json!({ "id": job.id, "ref": job.reference })).collect();
    let values: Vec<sea_orm::Value> = vec![
        sea_orm::Value::Json(Some(Box::new(serde_json::Value::Array(jobs)))),
        DonationStatus::Pledged.to_value().into(),
        DonationStatus::Confirmed.to_value().into(),
        CampaignStatus::Cancelled.to_value().into(),
        paid_from(ttl, now).into(),
        now.into(),
        year_at_base(now).into(),
    ];
    // The donations and campaigns joined here are read as they were before the function
    // changed them (one statement, one snapshot): the rows the batch decided on.
    let sql = "SELECT d.*, c.status AS campaign_status, n.receipt_seq \
        FROM incubase_confirm_donations($1, $2, $3, $4, $5, $6, $7) n \
        JOIN donations d ON d.id = n.confirmed_id JOIN campaigns c ON c.id = d.campaign_id";
    let txn = db.begin().await?;
    let rows = txn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values))
        .await?;
    let mut confirmed = Vec::with_capacity(rows.len());
    for row in &rows {
        let current = <donation::Model as sea_orm::FromQueryResult>::from_query_result(row, "")?;
        let campaign_status: CampaignStatus = row.try_get("", "campaign_status")?;
        let seq: i64 = row.try_get("", "receipt_seq")?;
        confirmed.push((current, campaign_status, seq));
    }
    let actors: HashMap<i64, &Actor> = batch.iter().map(|job| (job.id, &job.actor)).collect();
    let events = confirmed
        .iter()
        .map(|(d, _, _)| {
            let actor =
                actors.get(&d.id).ok_or_else(|| AppError::Internal("a confirmation outside its batch".into()))?;
            Ok((*actor, donation_event(EventKind::DonationConfirmed, d)))
        })
        .collect::<AppResult<Vec<_>>>()?;
    let appended = crate::events::log::append_each(&txn, events).await?;
    txn.commit().await?;
    let year = year_at_base(now);
    Ok(confirmed
        .into_iter()
        .zip(appended.events)
        .map(|((current, campaign_status, seq), event)| {
            let counted = (receipt_number(year, seq), crate::events::Appended { events: vec![event] });
            (current.id, (current, campaign_status, Some(counted)))
        })
        .collect())
}

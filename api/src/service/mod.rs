//! The rules of the domain as plain async functions over a database connection, and the
//! commands: one per mutation, each authorizing (rules in `auth.rs`), validating, running its
//! transaction with the transient retry and appending its domain events in that transaction.
//! Nothing in here knows about GraphQL, HTTP or the response cache.
pub mod account;
pub mod booking;
pub mod channels;
pub mod common;
pub mod credit_code;
pub mod crowdfunding;
pub mod endpoints;
pub mod event;
pub mod grants;
pub mod identity;
pub mod impact;
pub mod notifications;
pub mod organization;
pub mod pagination;
pub mod payments;
pub mod projects;
pub mod receipts;
pub mod recurrence;
pub mod space;
pub mod statements;
pub mod trusted_documents;
pub mod validate;
pub mod webhooks;

/// What a command needs: the database, this instance's side of the event log (which applies
/// the events' effects right after the commit) and the settings.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub db: &'a sea_orm::DatabaseConnection,
    pub log: &'a crate::events::EventLog,
    pub settings: &'a crate::config::Settings,
    pub tokens: &'a identity::TokenKeys,
    pub sign_in_limiter: &'a identity::SignInLimiter,
    /// Where account mails (resets, verifications) go out; `None` without SMTP.
    pub mailer: Option<&'a crate::mail::Mailer>,
    pub account_mail_limiter: &'a identity::SignInLimiter,
    /// This instance's confirmations, counted together while others run.
    pub confirmations: &'a crowdfunding::ConfirmationBatches,
}

impl Ctx<'_> {
    /// Appends `events` to `txn`, commits, then lets the log apply their effects here.
    pub async fn commit(
        &self,
        txn: sea_orm::DatabaseTransaction,
        actor: &crate::events::Actor,
        events: Vec<crate::events::NewEvent>,
    ) -> crate::error::AppResult<()> {
        let appended = crate::events::log::append(&txn, actor, events).await?;
        self.finish(txn, appended).await
    }

    /// Commits a transaction whose events were appended earlier (before it took shared rows).
    pub async fn finish(
        &self,
        txn: sea_orm::DatabaseTransaction,
        appended: crate::events::Appended,
    ) -> crate::error::AppResult<()> {
        txn.commit().await?;
        self.log.published(&appended).await;
        Ok(())
    }

    pub fn limits(&self) -> &crate::config::Limits {
        &self.settings.limits
    }
}

/// The current instant at microsecond precision, what PostgreSQL stores: a value written and
/// the same value read back are then equal on both backends.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}

/// Transient errors retried by this process (`incubase_transient_retries_total`).
static TRANSIENT_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn transient_retries() -> u64 {
    TRANSIENT_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// The tail of a command once it has authorized `viewer`: `as_viewer!(viewer, |actor| work)`
/// runs the transaction `work` with `actor` bound to the viewer's `&Actor`, with the transient
/// retry. (A macro, not a function taking an async closure: the resolvers' futures must be
/// `Send`, which the compiler cannot prove through an `AsyncFn` bound.)
macro_rules! as_viewer {
    ($viewer:expr, |$actor:ident| $work:expr) => {{
        let $actor = &$crate::events::Actor::of($viewer);
        $crate::service::retry_transient(|| $work).await
    }};
}
pub(crate) use as_viewer;

/// Runs `work` again when it fails with a transient database error (serialization failure,
/// deadlock, busy), at most `ATTEMPTS` times with a short jittered pause; then reports it.
/// `work` must be a whole transaction, so a failed attempt has written nothing.
pub async fn retry_transient<T, F, Fut>(mut work: F) -> crate::error::AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::AppResult<T>>,
{
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match work().await {
            Err(crate::error::AppError::Transient(detail)) if attempt < ATTEMPTS => {
                tracing::info!(attempt, detail, "transient database error; retrying");
                TRANSIENT_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let jitter = rand::random::<u64>() % 20;
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

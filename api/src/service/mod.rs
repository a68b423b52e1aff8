//! The rules of the domain as plain async functions over a database connection.
//! Nothing in here knows about GraphQL or HTTP.
pub mod booking;
pub mod credit_code;
pub mod crowdfunding;
pub mod event;
pub mod grants;
pub mod identity;
pub mod impact;
pub mod organization;
pub mod pagination;
pub mod projects;
pub mod recurrence;
pub mod space;
pub mod trusted_documents;

/// The current instant at microsecond precision, what PostgreSQL stores: a value written and
/// the same value read back are then equal on both backends.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}

/// Runs `work` again when it fails with a transient database error (serialization failure,
/// deadlock, busy), at most `ATTEMPTS` times with a short jittered pause; then reports it.
/// `work` must be a whole transaction, so a failed attempt has written nothing.
/// Transient errors retried by this process (`incubase_transient_retries_total`).
static TRANSIENT_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn transient_retries() -> u64 {
    TRANSIENT_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

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

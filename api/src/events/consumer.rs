//! What durable consumers of the log share: their saved position (a row of
//! `event_consumers`) and, on PostgreSQL, the lock that lets one instance work at a time.
use entity::event_consumer;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, Set, Statement};

use super::log::Position;
use crate::error::AppResult;

/// Where the consumer `name` stopped; `None` before its first save.
pub async fn saved(db: &impl ConnectionTrait, name: &str) -> AppResult<Option<Position>> {
    Ok(event_consumer::Entity::find_by_id(name).one(db).await?.map(|r| Position { tx: r.tx, id: r.event_id }))
}

/// Records the consumer `name`'s position (in `db`'s transaction, when it is one).
pub async fn save(db: &impl ConnectionTrait, name: &str, position: Position) -> AppResult<()> {
    let row = event_consumer::ActiveModel {
        name: Set(name.to_owned()),
        tx: Set(position.tx),
        event_id: Set(position.id),
        updated_at: Set(crate::service::now()),
    };
    use event_consumer::Column as C;
    crate::service::common::upsert(db, row, &[C::Name], &[C::Tx, C::EventId, C::UpdatedAt]).await
}

/// Takes the transaction-scoped advisory lock `key` on PostgreSQL without waiting; `false`
/// when another instance holds it. SQLite has one writer: always `true`.
pub async fn try_lock(txn: &DatabaseTransaction, key: i64) -> AppResult<bool> {
    let backend = txn.get_database_backend();
    if backend != DatabaseBackend::Postgres {
        return Ok(true);
    }
    let sql = format!("SELECT pg_try_advisory_xact_lock({key}) AS locked");
    let row = txn.query_one_raw(Statement::from_string(backend, sql)).await?;
    Ok(row.map(|row| row.try_get::<bool>("", "locked")).transpose()?.unwrap_or(false))
}

/// Waits until this instance's log publishes something (its own and other instances'
/// commits), taking whatever else arrived with it, or until `poll` has passed; `false` when
/// the log has closed and the consumer should end.
pub async fn wait_for_events(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<entity::domain_event::Model>>,
    poll: std::time::Duration,
) -> bool {
    tokio::select! {
        received = events.recv() => {
            if matches!(received, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                return false;
            }
            while events.try_recv().is_ok() {}
        }
        _ = tokio::time::sleep(poll) => {}
    }
    true
}

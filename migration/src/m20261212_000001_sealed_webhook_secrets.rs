//! Webhook signing secrets are stored sealed (`sealed:v1:…`, about 115 characters): the
//! columns grow from 100 to 255 characters on PostgreSQL (SQLite does not enforce lengths).
//! Plaintext secrets already stored are sealed by the server at start, not here: the key is
//! the server's configuration, not the migration's.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn widen(manager: &SchemaManager<'_>, length: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let sql = format!(
        "ALTER TABLE webhook_endpoints ALTER COLUMN secret TYPE varchar({length}), \
         ALTER COLUMN previous_secret TYPE varchar({length})"
    );
    manager.get_connection().execute_unprepared(&sql).await.map(|_| ())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        widen(manager, 255).await
    }

    /// Only once the secrets are plaintext again (no released version writes them so).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        widen(manager, 100).await
    }
}

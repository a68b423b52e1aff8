//! The event log's doorbell moves out of the writing transaction: the statement-level trigger
//! that rang `NOTIFY incubase_events` in every transaction appending events is dropped, and
//! the writing instance rings after its commits instead (`api/src/events/follower.rs`). A
//! `NOTIFY` in a transaction holds PostgreSQL's global notify lock from its commit's start to
//! its end, WAL flush included, so every writer's commit waited for the one before it.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("DROP TRIGGER IF EXISTS domain_events_doorbell ON domain_events").await?;
            db.execute_unprepared("DROP FUNCTION IF EXISTS incubase_events_doorbell()").await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared(
                "CREATE OR REPLACE FUNCTION incubase_events_doorbell() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN PERFORM pg_notify('incubase_events', ''); RETURN NULL; END $$",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER domain_events_doorbell AFTER INSERT ON domain_events \
                 FOR EACH STATEMENT EXECUTE FUNCTION incubase_events_doorbell()",
            )
            .await?;
        }
        Ok(())
    }
}

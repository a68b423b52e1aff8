//! The domain event log: one append-only row per thing that happened, written by the
//! transaction that made it happen, and the positions of the consumers that follow it.
//!
//! A position is `(tx, id)`. On PostgreSQL `tx` is the writing transaction's id (a
//! `pg_current_xact_id()` default) and consumers read only rows whose `tx` lies below the
//! oldest still-running transaction, so an event can never appear behind a consumer's
//! position later (ids alone are not commit order). SQLite has one writer at a time: `tx`
//! stays 0 and ids are commit order.
//!
//! A statement-level trigger rings `NOTIFY incubase_events` on PostgreSQL, delivered at commit
//! (and never for a rolled-back write), without a round trip of its own.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DomainEvents {
    Table,
    Id,
    Tx,
    EventType,
    AggregateType,
    AggregateId,
    ActorKind,
    ActorId,
    ActorLabel,
    ActorAddress,
    AccountId,
    OrganizationId,
    Payload,
    KeepForever,
    OccurredAt,
}

#[derive(DeriveIden)]
enum EventConsumers {
    Table,
    Name,
    Tx,
    EventId,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DomainEvents::Table)
                    .col(big_pk_auto(DomainEvents::Id))
                    .col(big_integer(DomainEvents::Tx).default(0))
                    .col(string_len(DomainEvents::EventType, 64))
                    .col(string_len(DomainEvents::AggregateType, 32))
                    .col(big_integer(DomainEvents::AggregateId))
                    .col(string_len(DomainEvents::ActorKind, 16))
                    .col(big_integer_null(DomainEvents::ActorId))
                    .col(string_len_null(DomainEvents::ActorLabel, 200))
                    .col(string_len_null(DomainEvents::ActorAddress, 64))
                    .col(big_integer_null(DomainEvents::AccountId))
                    .col(big_integer_null(DomainEvents::OrganizationId))
                    .col(json(DomainEvents::Payload))
                    .col(boolean(DomainEvents::KeepForever).default(false))
                    .col(timestamp_with_time_zone(DomainEvents::OccurredAt))
                    .to_owned(),
            )
            .await?;
        for (index, cols) in [
            ("idx_domain_events_position", vec![DomainEvents::Tx, DomainEvents::Id]),
            (
                "idx_domain_events_aggregate",
                vec![DomainEvents::AggregateType, DomainEvents::AggregateId, DomainEvents::Id],
            ),
            ("idx_domain_events_actor", vec![DomainEvents::ActorKind, DomainEvents::ActorId, DomainEvents::Id]),
            ("idx_domain_events_account", vec![DomainEvents::AccountId, DomainEvents::Id]),
            ("idx_domain_events_occurred", vec![DomainEvents::OccurredAt, DomainEvents::Id]),
            ("idx_domain_events_type", vec![DomainEvents::EventType, DomainEvents::Id]),
        ] {
            let mut stmt = Index::create();
            stmt.name(index).table(DomainEvents::Table);
            for col in cols {
                stmt.col(col);
            }
            manager.create_index(stmt.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(EventConsumers::Table)
                    .col(string_len(EventConsumers::Name, 100).primary_key())
                    .col(big_integer(EventConsumers::Tx))
                    .col(big_integer(EventConsumers::EventId))
                    .col(timestamp_with_time_zone(EventConsumers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared(
                "ALTER TABLE domain_events ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)",
            )
            .await?;
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventConsumers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(DomainEvents::Table).to_owned()).await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared("DROP FUNCTION IF EXISTS incubase_events_doorbell()").await?;
        }
        Ok(())
    }
}

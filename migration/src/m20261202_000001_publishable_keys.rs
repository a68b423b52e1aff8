//! Publishable (browser-safe) partner keys: a key may be marked publishable and bound to the
//! origins of the sites that use it. The database refuses a publishable key holding the
//! RECONCILE scope (a CHECK constraint on PostgreSQL, triggers on SQLite, which cannot add a
//! constraint to an existing table), so no code path can make a public key confirm money.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Publishable,
    AllowedOrigins,
}

const SQLITE_GUARDS: [&str; 2] = [
    "CREATE TRIGGER api_keys_publishable_never_reconcile_insert BEFORE INSERT ON api_keys \
     WHEN NEW.publishable AND instr(NEW.scopes, 'RECONCILE') > 0 \
     BEGIN SELECT RAISE(ABORT, 'api_keys_publishable_never_reconcile'); END",
    "CREATE TRIGGER api_keys_publishable_never_reconcile_update BEFORE UPDATE ON api_keys \
     WHEN NEW.publishable AND instr(NEW.scopes, 'RECONCILE') > 0 \
     BEGIN SELECT RAISE(ABORT, 'api_keys_publishable_never_reconcile'); END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(boolean(ApiKeys::Publishable).default(false))
                    .to_owned(),
            )
            .await?;
        // Newline-separated canonical origins (`https://www.example.org`).
        manager
            .alter_table(
                Table::alter().table(ApiKeys::Table).add_column(text(ApiKeys::AllowedOrigins).default("")).to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE api_keys ADD CONSTRAINT api_keys_publishable_never_reconcile \
                 CHECK (NOT publishable OR position('RECONCILE' in scopes) = 0)",
            )
            .await?;
        } else {
            for guard in SQLITE_GUARDS {
                db.execute_unprepared(guard).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("ALTER TABLE api_keys DROP CONSTRAINT api_keys_publishable_never_reconcile").await?;
        } else {
            db.execute_unprepared("DROP TRIGGER api_keys_publishable_never_reconcile_insert").await?;
            db.execute_unprepared("DROP TRIGGER api_keys_publishable_never_reconcile_update").await?;
        }
        manager
            .alter_table(Table::alter().table(ApiKeys::Table).drop_column(ApiKeys::AllowedOrigins).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(ApiKeys::Table).drop_column(ApiKeys::Publishable).to_owned()).await
    }
}

//! Partial refunds: a donation may be reversed by several records, each any amount up to
//! what is left, so `refund_of_id` is no longer unique, and the donation keeps how much of it
//! was refunded (`refunded_fen`), which the database holds between 0 and its amount.
//!
//! SQLite cannot drop a column's UNIQUE constraint: the table is rebuilt from its own stored
//! definition (whatever columns other migrations added), with its indexes.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Donations {
    Table,
    RefundedFen,
    RefundOfId,
}

const CHECK: &str = "CHECK (refunded_fen >= 0 AND (amount_fen < 0 OR refunded_fen <= amount_fen))";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .alter_table(
                Table::alter()
                    .table(Donations::Table)
                    .add_column(big_integer(Donations::RefundedFen).default(0))
                    .to_owned(),
            )
            .await?;
        // A donation refunded before this migration was refunded in full.
        db.execute_unprepared(
            "UPDATE donations SET refunded_fen = amount_fen WHERE refunded_at IS NOT NULL AND amount_fen > 0",
        )
        .await?;
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => rebuild_sqlite(db).await?,
            _ => {
                db.execute_unprepared("ALTER TABLE donations DROP CONSTRAINT IF EXISTS donations_refund_of_id_key")
                    .await?;
                db.execute_unprepared(&format!(
                    "ALTER TABLE donations ADD CONSTRAINT donations_refunded_within_amount {CHECK}"
                ))
                .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_donations_refund_of")
                    .table(Donations::Table)
                    .col(Donations::RefundOfId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager.drop_index(Index::drop().name("idx_donations_refund_of").table(Donations::Table).to_owned()).await?;
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            db.execute_unprepared("ALTER TABLE donations DROP CONSTRAINT IF EXISTS donations_refunded_within_amount")
                .await?;
            // Only if no donation has several refund records: otherwise this fails, as it must.
            db.execute_unprepared(
                "ALTER TABLE donations ADD CONSTRAINT donations_refund_of_id_key UNIQUE (refund_of_id)",
            )
            .await?;
            manager
                .alter_table(Table::alter().table(Donations::Table).drop_column(Donations::RefundedFen).to_owned())
                .await?;
        }
        // SQLite keeps the column and the relaxed constraint: dropping them is another rebuild
        // for no gain.
        Ok(())
    }
}

async fn rows(db: &SchemaManagerConnection<'_>, sql: &str) -> Result<Vec<String>, DbErr> {
    let found = db.query_all_raw(Statement::from_string(DatabaseBackend::Sqlite, sql.to_owned())).await?;
    found.iter().map(|r| r.try_get_by_index::<String>(0)).collect()
}

/// Rebuilds `donations` without the UNIQUE on `refund_of_id` and with the refunded-amount
/// CHECK (SQLite's documented procedure: foreign keys off, new table, copy, drop, rename).
/// Migrations run outside a transaction on SQLite, on its one connection.
async fn rebuild_sqlite(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let table = rows(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'donations'").await?;
    let definition = table.first().ok_or_else(|| DbErr::Migration("no donations table".into()))?;
    let unique = "\"refund_of_id\" integer NULL UNIQUE";
    let end = definition.rfind(')').ok_or_else(|| DbErr::Migration("unexpected donations definition".into()))?;
    if !definition.contains(unique) {
        return Err(DbErr::Migration(format!("unexpected donations definition: {definition}")));
    }
    let rebuilt = format!("{}, {CHECK} )", &definition[..end].trim_end())
        .replacen(unique, "\"refund_of_id\" integer NULL", 1)
        .replacen("CREATE TABLE \"donations\"", "CREATE TABLE \"donations_rebuilt\"", 1);
    let extras = rows(
        db,
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'donations' AND type IN ('index', 'trigger') AND sql IS NOT NULL",
    )
    .await?;
    db.execute_unprepared("PRAGMA foreign_keys = OFF").await?;
    let result = async {
        db.execute_unprepared("BEGIN").await?;
        db.execute_unprepared(&rebuilt).await?;
        db.execute_unprepared("INSERT INTO donations_rebuilt SELECT * FROM donations").await?;
        db.execute_unprepared("DROP TABLE donations").await?;
        db.execute_unprepared("ALTER TABLE donations_rebuilt RENAME TO donations").await?;
        for sql in &extras {
            db.execute_unprepared(sql).await?;
        }
        let broken = rows(db, "SELECT \"table\" FROM pragma_foreign_key_check('donations')").await?;
        if !broken.is_empty() {
            return Err(DbErr::Migration("donations would break foreign keys".into()));
        }
        db.execute_unprepared("COMMIT").await
    }
    .await;
    if result.is_err() {
        db.execute_unprepared("ROLLBACK").await.ok();
    }
    db.execute_unprepared("PRAGMA foreign_keys = ON").await?;
    result.map(|_| ())
}

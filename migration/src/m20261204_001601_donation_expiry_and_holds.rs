//! Pledges expire and money can arrive for a donation that must not count (its pledge expired,
//! or its campaign was cancelled): when an expiry was marked, when money was received, and why
//! a received payment is held for staff. An index serves the expiry sweep and the refund queue
//! (both read by status and age).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Donations {
    Table,
    Id,
    Status,
    CreatedAt,
    ExpiredAt,
    ReceivedAt,
    HoldReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            timestamp_with_time_zone_null(Donations::ExpiredAt),
            timestamp_with_time_zone_null(Donations::ReceivedAt),
            string_len_null(Donations::HoldReason, 32),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(Donations::Table).add_column(&mut column).to_owned()).await?;
        }
        // Money confirmed before this migration arrived when it was confirmed.
        manager
            .get_connection()
            .execute_unprepared("UPDATE donations SET received_at = confirmed_at WHERE status = 'CONFIRMED'")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_donations_status_created")
                    .table(Donations::Table)
                    .col(Donations::Status)
                    .col(Donations::CreatedAt)
                    .col(Donations::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_donations_status_created").table(Donations::Table).to_owned())
            .await?;
        for column in [Donations::HoldReason, Donations::ReceivedAt, Donations::ExpiredAt] {
            manager.alter_table(Table::alter().table(Donations::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

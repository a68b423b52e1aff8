//! Payment notifications: each verified notification of a payment platform, once per
//! platform and transaction (a platform resends a notification until it is acknowledged),
//! with what it did.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PaymentNotifications {
    Table,
    Id,
    Provider,
    TransactionId,
    OutTradeNo,
    AmountFen,
    DonationId,
    Outcome,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentNotifications::Table)
                    .col(big_pk_auto(PaymentNotifications::Id))
                    .col(string_len(PaymentNotifications::Provider, 16))
                    .col(string_len(PaymentNotifications::TransactionId, 64))
                    .col(string_len(PaymentNotifications::OutTradeNo, 128))
                    .col(big_integer(PaymentNotifications::AmountFen))
                    .col(big_integer_null(PaymentNotifications::DonationId))
                    .col(string_len(PaymentNotifications::Outcome, 24))
                    .col(timestamp_with_time_zone(PaymentNotifications::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_payment_notifications_transaction")
                    .table(PaymentNotifications::Table)
                    .col(PaymentNotifications::Provider)
                    .col(PaymentNotifications::TransactionId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_notifications_outcome")
                    .table(PaymentNotifications::Table)
                    .col(PaymentNotifications::Outcome)
                    .col(PaymentNotifications::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PaymentNotifications::Table).to_owned()).await
    }
}

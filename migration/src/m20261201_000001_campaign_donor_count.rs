//! Campaigns keep their distinct-donor count beside `raised_fen`, maintained by the
//! transactions that confirm and refund, so reading a campaign never aggregates its
//! donations (a campaign with a million donations reads as fast as one with ten). Also an
//! index for the newest-first public list, which filters on no status.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    DonorCount,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Campaigns::Table)
                    .add_column(big_integer(Campaigns::DonorCount).default(0))
                    .to_owned(),
            )
            .await?;
        // Distinct accounts plus one per guest donation, over confirmed unrefunded donations.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE campaigns SET donor_count = COALESCE((\
                   SELECT COUNT(DISTINCT d.donor_account_id) \
                        + SUM(CASE WHEN d.donor_account_id IS NULL THEN 1 ELSE 0 END) \
                   FROM donations d \
                   WHERE d.campaign_id = campaigns.id AND d.status = 'CONFIRMED' AND d.refunded_at IS NULL), 0)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_campaigns_created")
                    .table(Campaigns::Table)
                    .col(Campaigns::CreatedAt)
                    .col(Campaigns::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_campaigns_created").table(Campaigns::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Campaigns::Table).drop_column(Campaigns::DonorCount).to_owned()).await
    }
}

//! Charity crowdfunding: campaigns with budget lines and updates, donations (with reversing
//! refund records), and the per-year receipt counter.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    OrganizationId,
    Title,
    Story,
    CoverUrl,
    GoalFen,
    StartsAt,
    EndsAt,
    Beneficiaries,
    FundraisingQualification,
    FilingNumber,
    Status,
    ReviewNote,
    RaisedFen,
    DonationCount,
    CreatedByAccountId,
    PublishedAt,
    ClosedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CampaignBudgetLines {
    Table,
    Id,
    CampaignId,
    Position,
    Item,
    AmountFen,
}

#[derive(DeriveIden)]
enum CampaignUpdates {
    Table,
    Id,
    CampaignId,
    Title,
    Body,
    PublishedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Donations {
    Table,
    Id,
    CampaignId,
    AmountFen,
    Channel,
    ExternalReference,
    DonorAccountId,
    PartnerKeyId,
    DonorName,
    DisplayMode,
    Message,
    Status,
    ClientScope,
    ClientKey,
    ContentDigest,
    RefundOfId,
    RefundedAt,
    ReceiptNumber,
    ConfirmedAt,
    CancelledAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ReceiptCounters {
    Table,
    Year,
    LastNumber,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .col(big_pk_auto(Campaigns::Id))
                    .col(big_integer(Campaigns::OrganizationId))
                    .col(string_len(Campaigns::Title, 200))
                    .col(text(Campaigns::Story).default(""))
                    .col(string_len_null(Campaigns::CoverUrl, 500))
                    .col(big_integer(Campaigns::GoalFen))
                    .col(timestamp_with_time_zone(Campaigns::StartsAt))
                    .col(timestamp_with_time_zone(Campaigns::EndsAt))
                    .col(text(Campaigns::Beneficiaries).default(""))
                    .col(string_len_null(Campaigns::FundraisingQualification, 500))
                    .col(string_len_null(Campaigns::FilingNumber, 100))
                    .col(string_len(Campaigns::Status, 16))
                    .col(text(Campaigns::ReviewNote).default(""))
                    .col(big_integer(Campaigns::RaisedFen).default(0))
                    .col(big_integer(Campaigns::DonationCount).default(0))
                    .col(big_integer_null(Campaigns::CreatedByAccountId))
                    .col(timestamp_with_time_zone_null(Campaigns::PublishedAt))
                    .col(timestamp_with_time_zone_null(Campaigns::ClosedAt))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Campaigns::Table, Campaigns::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (index, cols) in [
            ("idx_campaigns_status_created", vec![Campaigns::Status, Campaigns::CreatedAt, Campaigns::Id]),
            ("idx_campaigns_org", vec![Campaigns::OrganizationId, Campaigns::CreatedAt]),
            ("idx_campaigns_ends", vec![Campaigns::EndsAt, Campaigns::Id]),
        ] {
            let mut stmt = Index::create();
            stmt.name(index).table(Campaigns::Table);
            for col in cols {
                stmt.col(col);
            }
            manager.create_index(stmt.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CampaignBudgetLines::Table)
                    .col(big_pk_auto(CampaignBudgetLines::Id))
                    .col(big_integer(CampaignBudgetLines::CampaignId))
                    .col(integer(CampaignBudgetLines::Position))
                    .col(string_len(CampaignBudgetLines::Item, 200))
                    .col(big_integer(CampaignBudgetLines::AmountFen))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CampaignBudgetLines::Table, CampaignBudgetLines::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_budget_lines_campaign")
                    .table(CampaignBudgetLines::Table)
                    .col(CampaignBudgetLines::CampaignId)
                    .col(CampaignBudgetLines::Position)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CampaignUpdates::Table)
                    .col(big_pk_auto(CampaignUpdates::Id))
                    .col(big_integer(CampaignUpdates::CampaignId))
                    .col(string_len(CampaignUpdates::Title, 200))
                    .col(text(CampaignUpdates::Body))
                    .col(timestamp_with_time_zone(CampaignUpdates::PublishedAt))
                    .col(timestamp_with_time_zone(CampaignUpdates::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CampaignUpdates::Table, CampaignUpdates::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_campaign_updates_campaign")
                    .table(CampaignUpdates::Table)
                    .col(CampaignUpdates::CampaignId)
                    .col(CampaignUpdates::PublishedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Donations::Table)
                    .col(big_pk_auto(Donations::Id))
                    .col(big_integer(Donations::CampaignId))
                    .col(big_integer(Donations::AmountFen))
                    .col(string_len(Donations::Channel, 32))
                    .col(string_len_null(Donations::ExternalReference, 200))
                    .col(big_integer_null(Donations::DonorAccountId))
                    .col(big_integer_null(Donations::PartnerKeyId))
                    .col(string_len(Donations::DonorName, 100))
                    .col(string_len(Donations::DisplayMode, 16))
                    .col(text(Donations::Message).default(""))
                    .col(string_len(Donations::Status, 16))
                    .col(string_len_null(Donations::ClientScope, 64))
                    .col(string_len_null(Donations::ClientKey, 100))
                    .col(string_len(Donations::ContentDigest, 64))
                    // One reversing record per donation at most.
                    .col(big_integer_null(Donations::RefundOfId).unique_key())
                    .col(timestamp_with_time_zone_null(Donations::RefundedAt))
                    .col(string_len_null(Donations::ReceiptNumber, 20).unique_key())
                    .col(timestamp_with_time_zone_null(Donations::ConfirmedAt))
                    .col(timestamp_with_time_zone_null(Donations::CancelledAt))
                    .col(timestamp_with_time_zone(Donations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Donations::Table, Donations::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Donations::Table, Donations::RefundOfId)
                            .to(Donations::Table, Donations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // The idempotency key is unique per caller (an account or a partner key).
        manager
            .create_index(
                Index::create()
                    .name("idx_donations_client_key")
                    .table(Donations::Table)
                    .col(Donations::ClientScope)
                    .col(Donations::ClientKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (index, cols) in [
            (
                "idx_donations_campaign_wall",
                vec![Donations::CampaignId, Donations::Status, Donations::CreatedAt, Donations::Id],
            ),
            ("idx_donations_donor", vec![Donations::DonorAccountId, Donations::CreatedAt, Donations::Id]),
        ] {
            let mut stmt = Index::create();
            stmt.name(index).table(Donations::Table);
            for col in cols {
                stmt.col(col);
            }
            manager.create_index(stmt.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ReceiptCounters::Table)
                    .col(integer(ReceiptCounters::Year).primary_key())
                    .col(big_integer(ReceiptCounters::LastNumber).default(0))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReceiptCounters::Table.into_iden(),
            Donations::Table.into_iden(),
            CampaignUpdates::Table.into_iden(),
            CampaignBudgetLines::Table.into_iden(),
            Campaigns::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

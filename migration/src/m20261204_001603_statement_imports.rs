//! Statement imports: each platform or bank statement applied, once per identity (the caller's
//! statement ID, or the SHA-256 of its content), with its report.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StatementImports {
    Table,
    Id,
    Identity,
    Profile,
    Status,
    LineCount,
    ConfirmedCount,
    HeldCount,
    CreatedCount,
    MismatchCount,
    ConfirmedFen,
    Report,
    CreatedByAccountId,
    PartnerKeyId,
    CreatedAt,
    AppliedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatementImports::Table)
                    .col(big_pk_auto(StatementImports::Id))
                    .col(string_len(StatementImports::Identity, 200).unique_key())
                    .col(string_len(StatementImports::Profile, 32))
                    .col(string_len(StatementImports::Status, 16))
                    .col(big_integer(StatementImports::LineCount).default(0))
                    .col(big_integer(StatementImports::ConfirmedCount).default(0))
                    .col(big_integer(StatementImports::HeldCount).default(0))
                    .col(big_integer(StatementImports::CreatedCount).default(0))
                    .col(big_integer(StatementImports::MismatchCount).default(0))
                    .col(big_integer(StatementImports::ConfirmedFen).default(0))
                    .col(text(StatementImports::Report).default("[]"))
                    .col(big_integer_null(StatementImports::CreatedByAccountId))
                    .col(big_integer_null(StatementImports::PartnerKeyId))
                    .col(timestamp_with_time_zone(StatementImports::CreatedAt))
                    .col(timestamp_with_time_zone_null(StatementImports::AppliedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_statement_imports_created")
                    .table(StatementImports::Table)
                    .col(StatementImports::CreatedAt)
                    .col(StatementImports::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StatementImports::Table).to_owned()).await
    }
}

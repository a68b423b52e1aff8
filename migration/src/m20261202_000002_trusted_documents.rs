//! Trusted documents: the operations partners (or admins) register ahead, each under the
//! SHA-256 of its text, so requests may name them instead of sending free-form documents.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TrustedDocuments {
    Table,
    Id,
    DocumentId,
    Body,
    OperationName,
    ClientName,
    RegisteredByAccountId,
    RegisteredByKeyId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrustedDocuments::Table)
                    .col(big_pk_auto(TrustedDocuments::Id))
                    // Lower-case hex SHA-256 of `body`: the same document always has the same id.
                    .col(string_len_uniq(TrustedDocuments::DocumentId, 64))
                    .col(text(TrustedDocuments::Body))
                    .col(string_len_null(TrustedDocuments::OperationName, 200))
                    .col(string_len_null(TrustedDocuments::ClientName, 100))
                    .col(big_integer_null(TrustedDocuments::RegisteredByAccountId))
                    .col(big_integer_null(TrustedDocuments::RegisteredByKeyId))
                    .col(timestamp_with_time_zone(TrustedDocuments::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TrustedDocuments::Table).to_owned()).await
    }
}

//! Finding donations by what a payment platform or bank names them with: the external
//! reference (a merchant order number) and the client key alone (the existing unique index
//! leads with the client's scope, so a lookup by key alone read the whole table). Statement
//! imports and payment notifications match by both.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Donations {
    Table,
    ExternalReference,
    ClientKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_donations_external_reference")
                    .table(Donations::Table)
                    .col(Donations::ExternalReference)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_donations_client_key_alone")
                    .table(Donations::Table)
                    .col(Donations::ClientKey)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_donations_client_key_alone").table(Donations::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_donations_external_reference").table(Donations::Table).to_owned())
            .await
    }
}

//! Receipts for guests: a guest's donation keeps keyed digests (HMAC-SHA256 with the server's
//! receipt secret) of the phone and email the guest was named by, never the contact itself,
//! so a guest can later prove they hold a receipt without the database keeping their number.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Donations {
    Table,
    GuestPhoneDigest,
    GuestEmailDigest,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [Donations::GuestPhoneDigest, Donations::GuestEmailDigest] {
            manager
                .alter_table(Table::alter().table(Donations::Table).add_column(string_len_null(column, 64)).to_owned())
                .await?;
        }
        for (name, column) in [
            ("idx_donations_guest_phone", Donations::GuestPhoneDigest),
            ("idx_donations_guest_email", Donations::GuestEmailDigest),
        ] {
            manager.create_index(Index::create().name(name).table(Donations::Table).col(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_donations_guest_phone", "idx_donations_guest_email"] {
            manager.drop_index(Index::drop().name(name).table(Donations::Table).to_owned()).await?;
        }
        for column in [Donations::GuestPhoneDigest, Donations::GuestEmailDigest] {
            manager.alter_table(Table::alter().table(Donations::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

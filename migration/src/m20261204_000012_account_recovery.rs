//! Accounts people can recover and control: one-use tokens mailed for password resets, email
//! verification and email changes (stored only as SHA-256 hashes, at most one per account and
//! purpose, so a newer token replaces the older), when an address was verified, and when an
//! account was deleted (its row stays as an anonymous tombstone that donations, reviews and the
//! event log still point at).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    EmailVerifiedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    Id,
    AccountId,
    Purpose,
    TokenHash,
    Email,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [Accounts::EmailVerifiedAt, Accounts::DeletedAt] {
            manager
                .alter_table(
                    Table::alter().table(Accounts::Table).add_column(timestamp_with_time_zone_null(column)).to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(big_pk_auto(AccountTokens::Id))
                    .col(big_integer(AccountTokens::AccountId))
                    .col(string_len(AccountTokens::Purpose, 24).check(Expr::col(AccountTokens::Purpose).is_in([
                        "PASSWORD_RESET",
                        "EMAIL_VERIFICATION",
                        "EMAIL_CHANGE",
                    ])))
                    .col(string_len_uniq(AccountTokens::TokenHash, 64))
                    // The address the token was mailed to (the new one for an email change).
                    .col(string_len(AccountTokens::Email, 254))
                    .col(timestamp_with_time_zone(AccountTokens::CreatedAt))
                    .col(timestamp_with_time_zone(AccountTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AccountTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One token per account and purpose: issuing replaces the row, so an older token
        // stops working even when two requests race.
        manager
            .create_index(
                Index::create()
                    .name("uq_account_tokens_account_purpose")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::AccountId)
                    .col(AccountTokens::Purpose)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountTokens::Table).to_owned()).await?;
        for column in [Accounts::DeletedAt, Accounts::EmailVerifiedAt] {
            manager.alter_table(Table::alter().table(Accounts::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

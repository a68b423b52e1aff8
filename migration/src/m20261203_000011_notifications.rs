//! Notifications for people: an inbox row per person and event that concerns them (written by
//! the `notifications` consumer of the event log), the state of its email, and each person's
//! language and email choices.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    AccountId,
    EventId,
    Kind,
    Title,
    Body,
    SubjectType,
    SubjectId,
    ReadAt,
    EmailStatus,
    EmailAttempts,
    EmailNextAt,
    EmailClaimedUntil,
    EmailError,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    AccountId,
    Locale,
    EmailKinds,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(big_pk_auto(Notifications::Id))
                    .col(big_integer(Notifications::AccountId))
                    .col(big_integer(Notifications::EventId))
                    .col(string_len(Notifications::Kind, 64))
                    .col(string_len(Notifications::Title, 300))
                    .col(string_len(Notifications::Body, 2000))
                    .col(string_len(Notifications::SubjectType, 32))
                    .col(big_integer(Notifications::SubjectId))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .col(
                        string_len(Notifications::EmailStatus, 16)
                            .default("NONE")
                            .check(Expr::col(Notifications::EmailStatus).is_in(["NONE", "PENDING", "SENT", "FAILED"])),
                    )
                    .col(integer(Notifications::EmailAttempts).default(0))
                    .col(timestamp_with_time_zone_null(Notifications::EmailNextAt))
                    .col(timestamp_with_time_zone_null(Notifications::EmailClaimedUntil))
                    .col(string_len_null(Notifications::EmailError, 500))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("uq_notifications_account_event", vec![Notifications::AccountId, Notifications::EventId], true),
            ("idx_notifications_account", vec![Notifications::AccountId, Notifications::Id], false),
            ("idx_notifications_email", vec![Notifications::EmailStatus, Notifications::EmailNextAt], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Notifications::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(NotificationSettings::Table)
                    .col(big_integer(NotificationSettings::AccountId).primary_key())
                    .col(string_len(NotificationSettings::Locale, 16).default("zh-Hans"))
                    // A JSON array of kinds also sent by email; NULL: the defaults.
                    .col(text_null(NotificationSettings::EmailKinds))
                    .col(timestamp_with_time_zone(NotificationSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NotificationSettings::Table, NotificationSettings::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(NotificationSettings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Notifications::Table).to_owned()).await
    }
}

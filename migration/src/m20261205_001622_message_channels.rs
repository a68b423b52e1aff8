//! SMS and WeChat template messages: each person's number and WeChat openid (as they
//! registered them in their notification preferences) and the kinds each channel carries, and
//! the per-person messages relayed through partner webhooks (one row per message and relay
//! endpoint, with its delivery state).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    SmsPhone,
    SmsKinds,
    WechatOpenid,
    WechatKinds,
}

#[derive(DeriveIden)]
enum ChannelMessages {
    Table,
    Id,
    EndpointId,
    AccountId,
    EventId,
    Channel,
    Recipient,
    Template,
    Locale,
    Title,
    Body,
    Variables,
    SubjectType,
    SubjectId,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastStatusCode,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_len_null(NotificationSettings::SmsPhone, 32),
            text_null(NotificationSettings::SmsKinds),
            string_len_null(NotificationSettings::WechatOpenid, 64),
            text_null(NotificationSettings::WechatKinds),
        ] {
            manager
                .alter_table(Table::alter().table(NotificationSettings::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ChannelMessages::Table)
                    .col(big_pk_auto(ChannelMessages::Id))
                    .col(big_integer(ChannelMessages::EndpointId))
                    .col(big_integer(ChannelMessages::AccountId))
                    .col(big_integer(ChannelMessages::EventId))
                    .col(
                        string_len(ChannelMessages::Channel, 32)
                            .check(Expr::col(ChannelMessages::Channel).is_in(["SMS", "WECHAT_TEMPLATE"])),
                    )
                    .col(string_len(ChannelMessages::Recipient, 64))
                    .col(string_len(ChannelMessages::Template, 64))
                    .col(string_len(ChannelMessages::Locale, 16))
                    .col(string_len(ChannelMessages::Title, 300))
                    .col(string_len(ChannelMessages::Body, 2000))
                    .col(text(ChannelMessages::Variables))
                    .col(string_len(ChannelMessages::SubjectType, 32))
                    .col(big_integer(ChannelMessages::SubjectId))
                    .col(
                        string_len(ChannelMessages::Status, 16)
                            .default("PENDING")
                            .check(Expr::col(ChannelMessages::Status).is_in(["PENDING", "SUCCEEDED", "FAILED"])),
                    )
                    .col(integer(ChannelMessages::Attempts).default(0))
                    .col(timestamp_with_time_zone(ChannelMessages::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(ChannelMessages::ClaimedUntil))
                    .col(integer_null(ChannelMessages::LastStatusCode))
                    .col(string_len_null(ChannelMessages::LastError, 500))
                    .col(timestamp_with_time_zone(ChannelMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(ChannelMessages::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChannelMessages::Table, ChannelMessages::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChannelMessages::Table, ChannelMessages::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_channel_messages_once")
                    .table(ChannelMessages::Table)
                    .col(ChannelMessages::EndpointId)
                    .col(ChannelMessages::AccountId)
                    .col(ChannelMessages::EventId)
                    .col(ChannelMessages::Channel)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_channel_messages_due")
                    .table(ChannelMessages::Table)
                    .col(ChannelMessages::Status)
                    .col(ChannelMessages::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_channel_messages_account")
                    .table(ChannelMessages::Table)
                    .col(ChannelMessages::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ChannelMessages::Table).to_owned()).await?;
        for column in [
            NotificationSettings::SmsPhone,
            NotificationSettings::SmsKinds,
            NotificationSettings::WechatOpenid,
            NotificationSettings::WechatKinds,
        ] {
            manager
                .alter_table(Table::alter().table(NotificationSettings::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

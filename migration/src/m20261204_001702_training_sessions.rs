//! Trainings with dated sessions: check-in is per session (`session_attendances`, one row per
//! registration and session, unique), `registrations.sessions_attended` counts them in the
//! same transaction, and eligible participants of a completed training get a certificate
//! number (unique). Trainings without sessions keep their single check-in.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TrainingSessions {
    Table,
    Id,
    EventId,
    Topic,
    StartsAt,
    EndsAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SessionAttendances {
    Table,
    Id,
    SessionId,
    RegistrationId,
    Attended,
    CheckedInAt,
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    Id,
    SessionsAttended,
    CertificateNumber,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrainingSessions::Table)
                    .col(big_pk_auto(TrainingSessions::Id))
                    .col(big_integer(TrainingSessions::EventId))
                    .col(string_len(TrainingSessions::Topic, 200).default(""))
                    .col(timestamp_with_time_zone(TrainingSessions::StartsAt))
                    .col(timestamp_with_time_zone(TrainingSessions::EndsAt))
                    .col(timestamp_with_time_zone(TrainingSessions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TrainingSessions::Table, TrainingSessions::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_training_sessions_event")
                    .table(TrainingSessions::Table)
                    .col(TrainingSessions::EventId)
                    .col(TrainingSessions::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SessionAttendances::Table)
                    .col(big_pk_auto(SessionAttendances::Id))
                    .col(big_integer(SessionAttendances::SessionId))
                    .col(big_integer(SessionAttendances::RegistrationId))
                    .col(integer(SessionAttendances::Attended))
                    .col(timestamp_with_time_zone(SessionAttendances::CheckedInAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SessionAttendances::Table, SessionAttendances::SessionId)
                            .to(TrainingSessions::Table, TrainingSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SessionAttendances::Table, SessionAttendances::RegistrationId)
                            .to(Registrations::Table, Registrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_session_attendances")
                    .table(SessionAttendances::Table)
                    .col(SessionAttendances::SessionId)
                    .col(SessionAttendances::RegistrationId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Registrations::Table)
                    .add_column(integer(Registrations::SessionsAttended).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Registrations::Table)
                    .add_column(string_len_null(Registrations::CertificateNumber, 40))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_registrations_certificate")
                    .table(Registrations::Table)
                    .col(Registrations::CertificateNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("uq_registrations_certificate").table(Registrations::Table).to_owned())
            .await?;
        for column in [Registrations::CertificateNumber, Registrations::SessionsAttended] {
            manager.alter_table(Table::alter().table(Registrations::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(SessionAttendances::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TrainingSessions::Table).to_owned()).await?;
        let _ = Registrations::Id;
        Ok(())
    }
}

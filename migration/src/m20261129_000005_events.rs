//! Events of the base: one `events` table (a `kind` column says Training, Exhibition, Salon,
//! PromotionEvent or ExchangeEvent) with the per-kind lists in small tables, registrations
//! with their waitlist, tickets and check-ins.
//!
//! `venue_space_id` is a plain bigint for now: the spaces slice is built on another branch and
//! will add the foreign key when both have landed.
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
enum TrainingProgrammes {
    Table,
    Id,
    Title,
    Description,
    OrganizerId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Kind,
    Title,
    TitleTraditional,
    Summary,
    SummaryTraditional,
    Description,
    DescriptionTraditional,
    StartsAt,
    EndsAt,
    TimeZone,
    VenueSpaceId,
    VenueAddress,
    OrganizerId,
    Status,
    Capacity,
    SeatsTaken,
    GroupLimit,
    RegistrationOpensAt,
    RegistrationClosesAt,
    CancellationDeadline,
    RequiresApproval,
    RequiresIdentityDocument,
    AudienceTags,
    Questions,
    ProgrammeId,
    Cohort,
    Trainers,
    Syllabus,
    Hours,
    CertificateThresholdPercent,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Exhibits {
    Table,
    Id,
    EventId,
    Position,
    Title,
    Story,
    MediaUrls,
    OrganizationId,
    ProjectName,
}

#[derive(DeriveIden)]
enum Delegations {
    Table,
    Id,
    EventId,
    Origin,
    Name,
    NameTraditional,
    LeaderName,
    Members,
    HostOrganizationIds,
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    Id,
    EventId,
    AccountId,
    PartnerKeyId,
    Name,
    Phone,
    PartySize,
    Women,
    Children,
    FamilyMembers,
    Professionals,
    Answers,
    ConsentAt,
    Status,
    QueuedAt,
    ClientKey,
    TicketCode,
    CheckedInAt,
    Attended,
    IdDocType,
    IdDocNumber,
    IdDocPurgedAt,
    DecidedAt,
    CancelledAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrainingProgrammes::Table)
                    .col(big_pk_auto(TrainingProgrammes::Id))
                    .col(string_len(TrainingProgrammes::Title, 200))
                    .col(text(TrainingProgrammes::Description).default(""))
                    .col(big_integer(TrainingProgrammes::OrganizerId))
                    .col(timestamp_with_time_zone(TrainingProgrammes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TrainingProgrammes::Table, TrainingProgrammes::OrganizerId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    .col(string_len(Events::Kind, 16))
                    .col(string_len(Events::Title, 200))
                    .col(string_len_null(Events::TitleTraditional, 200))
                    .col(string_len(Events::Summary, 500).default(""))
                    .col(string_len_null(Events::SummaryTraditional, 500))
                    .col(text(Events::Description).default(""))
                    .col(text_null(Events::DescriptionTraditional))
                    .col(timestamp_with_time_zone(Events::StartsAt))
                    .col(timestamp_with_time_zone(Events::EndsAt))
                    .col(string_len(Events::TimeZone, 64))
                    .col(big_integer_null(Events::VenueSpaceId))
                    .col(string_len_null(Events::VenueAddress, 300))
                    .col(big_integer(Events::OrganizerId))
                    .col(string_len(Events::Status, 16))
                    .col(integer(Events::Capacity))
                    .col(integer(Events::SeatsTaken).default(0))
                    .col(integer(Events::GroupLimit))
                    .col(timestamp_with_time_zone_null(Events::RegistrationOpensAt))
                    .col(timestamp_with_time_zone_null(Events::RegistrationClosesAt))
                    .col(timestamp_with_time_zone_null(Events::CancellationDeadline))
                    .col(boolean(Events::RequiresApproval).default(false))
                    .col(boolean(Events::RequiresIdentityDocument).default(false))
                    .col(text(Events::AudienceTags).default("[]"))
                    .col(text(Events::Questions).default("[]"))
                    .col(big_integer_null(Events::ProgrammeId))
                    .col(integer_null(Events::Cohort))
                    .col(text_null(Events::Trainers))
                    .col(text_null(Events::Syllabus))
                    .col(integer_null(Events::Hours))
                    .col(integer_null(Events::CertificateThresholdPercent))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::UpdatedAt))
                    .check(Expr::col(Events::SeatsTaken).gte(0))
                    .check(Expr::col(Events::SeatsTaken).lte(Expr::col(Events::Capacity)))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::OrganizerId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::ProgrammeId)
                            .to(TrainingProgrammes::Table, TrainingProgrammes::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_starts")
                    .table(Events::Table)
                    .col(Events::StartsAt)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_organizer")
                    .table(Events::Table)
                    .col(Events::OrganizerId)
                    .col(Events::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_events_programme_cohort")
                    .table(Events::Table)
                    .col(Events::ProgrammeId)
                    .col(Events::Cohort)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Exhibits::Table)
                    .col(big_pk_auto(Exhibits::Id))
                    .col(big_integer(Exhibits::EventId))
                    .col(integer(Exhibits::Position))
                    .col(string_len(Exhibits::Title, 200))
                    .col(text(Exhibits::Story).default(""))
                    .col(text(Exhibits::MediaUrls).default("[]"))
                    .col(big_integer_null(Exhibits::OrganizationId))
                    .col(string_len_null(Exhibits::ProjectName, 200))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Exhibits::Table, Exhibits::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Exhibits::Table, Exhibits::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_exhibits_event").table(Exhibits::Table).col(Exhibits::EventId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Delegations::Table)
                    .col(big_pk_auto(Delegations::Id))
                    .col(big_integer(Delegations::EventId))
                    .col(string_len(Delegations::Origin, 16))
                    .col(string_len(Delegations::Name, 200))
                    .col(string_len_null(Delegations::NameTraditional, 200))
                    .col(string_len(Delegations::LeaderName, 100))
                    .col(text(Delegations::Members).default("[]"))
                    .col(text(Delegations::HostOrganizationIds).default("[]"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Delegations::Table, Delegations::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_delegations_event")
                    .table(Delegations::Table)
                    .col(Delegations::EventId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Registrations::Table)
                    .col(big_pk_auto(Registrations::Id))
                    .col(big_integer(Registrations::EventId))
                    .col(big_integer_null(Registrations::AccountId))
                    .col(big_integer_null(Registrations::PartnerKeyId))
                    .col(string_len(Registrations::Name, 100))
                    .col(string_len_null(Registrations::Phone, 40))
                    .col(integer(Registrations::PartySize))
                    .col(integer(Registrations::Women).default(0))
                    .col(integer(Registrations::Children).default(0))
                    .col(integer(Registrations::FamilyMembers).default(0))
                    .col(integer(Registrations::Professionals).default(0))
                    .col(text(Registrations::Answers).default("[]"))
                    .col(timestamp_with_time_zone(Registrations::ConsentAt))
                    .col(string_len(Registrations::Status, 16))
                    .col(timestamp_with_time_zone(Registrations::QueuedAt))
                    .col(string_len_null(Registrations::ClientKey, 200).unique_key())
                    .col(string_len_uniq(Registrations::TicketCode, 32))
                    .col(timestamp_with_time_zone_null(Registrations::CheckedInAt))
                    .col(integer_null(Registrations::Attended))
                    .col(string_len_null(Registrations::IdDocType, 32))
                    .col(string_len_null(Registrations::IdDocNumber, 64))
                    .col(timestamp_with_time_zone_null(Registrations::IdDocPurgedAt))
                    .col(timestamp_with_time_zone_null(Registrations::DecidedAt))
                    .col(timestamp_with_time_zone_null(Registrations::CancelledAt))
                    .col(timestamp_with_time_zone(Registrations::CreatedAt))
                    .col(timestamp_with_time_zone(Registrations::UpdatedAt))
                    .check(Expr::col(Registrations::PartySize).gte(1))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Registrations::Table, Registrations::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_queue")
                    .table(Registrations::Table)
                    .col(Registrations::EventId)
                    .col(Registrations::Status)
                    .col(Registrations::QueuedAt)
                    .col(Registrations::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_account")
                    .table(Registrations::Table)
                    .col(Registrations::AccountId)
                    .col(Registrations::Id)
                    .to_owned(),
            )
            .await?;
        // One live registration per person per event: partial unique indexes have the same
        // syntax on both backends. Cancelled and declined ones do not count.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_registrations_account ON registrations (event_id, account_id) \
             WHERE account_id IS NOT NULL AND status NOT IN ('CANCELLED', 'DECLINED')",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_registrations_guest ON registrations (event_id, phone) \
             WHERE account_id IS NULL AND phone IS NOT NULL AND status NOT IN ('CANCELLED', 'DECLINED')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Registrations::Table.into_iden(),
            Delegations::Table.into_iden(),
            Exhibits::Table.into_iden(),
            Events::Table.into_iden(),
            TrainingProgrammes::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

//! Spaces of the base and their bookings. The overlap guarantee lives in the database:
//! an exclusion constraint over confirmed rows on PostgreSQL, triggers on SQLite.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Spaces {
    Table,
    Id,
    Name,
    Kind,
    Floor,
    Capacity,
    Description,
    Equipment,
    PhotoUrls,
    RequiresApproval,
    TimeZone,
    OpeningHours,
    Closures,
    MinNoticeMinutes,
    MaxAdvanceDays,
    SetupMinutes,
    TeardownMinutes,
    ResidentOrganizationId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    SpaceId,
    BookedByAccountId,
    OrganizationId,
    Purpose,
    Attendees,
    StartsAt,
    EndsAt,
    BlockedStart,
    BlockedEnd,
    Status,
    StatusReason,
    ManagerNote,
    ClientKey,
    RequestDigest,
    SeriesId,
    DecidedByAccountId,
    DecidedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BookingSeries {
    Table,
    Id,
    SpaceId,
    BookedByAccountId,
    Frequency,
    Interval,
    Weekdays,
    Until,
    Count,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Code point order on both backends, as for organization names: keyset cursors need one order.
        let mut name = string_len(Spaces::Name, 100);
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            name.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Spaces::Table)
                    .col(big_pk_auto(Spaces::Id))
                    .col(name)
                    .col(string_len(Spaces::Kind, 32))
                    .col(integer(Spaces::Floor))
                    .col(integer(Spaces::Capacity))
                    .col(text(Spaces::Description).default(""))
                    // Small lists kept as JSON text: read and replaced whole, never queried into.
                    .col(text(Spaces::Equipment).default("[]"))
                    .col(text(Spaces::PhotoUrls).default("[]"))
                    .col(boolean(Spaces::RequiresApproval).default(false))
                    .col(string_len(Spaces::TimeZone, 64).default("Asia/Shanghai"))
                    .col(text(Spaces::OpeningHours))
                    .col(text(Spaces::Closures).default("[]"))
                    .col(integer(Spaces::MinNoticeMinutes).default(0))
                    .col(integer(Spaces::MaxAdvanceDays).default(90))
                    .col(integer(Spaces::SetupMinutes).default(0))
                    .col(integer(Spaces::TeardownMinutes).default(0))
                    .col(big_integer_null(Spaces::ResidentOrganizationId))
                    .col(timestamp_with_time_zone(Spaces::CreatedAt))
                    .col(timestamp_with_time_zone(Spaces::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Spaces::Table, Spaces::ResidentOrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_spaces_name")
                    .table(Spaces::Table)
                    .col(Spaces::Name)
                    .col(Spaces::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BookingSeries::Table)
                    .col(big_pk_auto(BookingSeries::Id))
                    .col(big_integer(BookingSeries::SpaceId))
                    .col(big_integer(BookingSeries::BookedByAccountId))
                    .col(string_len(BookingSeries::Frequency, 16))
                    .col(integer(BookingSeries::Interval))
                    .col(string_len(BookingSeries::Weekdays, 64).default(""))
                    .col(date_null(BookingSeries::Until))
                    .col(integer_null(BookingSeries::Count))
                    .col(timestamp_with_time_zone(BookingSeries::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BookingSeries::Table, BookingSeries::SpaceId)
                            .to(Spaces::Table, Spaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Bookings::Table)
                    .col(big_pk_auto(Bookings::Id))
                    .col(big_integer(Bookings::SpaceId))
                    .col(big_integer(Bookings::BookedByAccountId))
                    .col(big_integer_null(Bookings::OrganizationId))
                    .col(text(Bookings::Purpose).default(""))
                    .col(integer(Bookings::Attendees))
                    .col(timestamp_with_time_zone(Bookings::StartsAt))
                    .col(timestamp_with_time_zone(Bookings::EndsAt))
                    .col(timestamp_with_time_zone(Bookings::BlockedStart))
                    .col(timestamp_with_time_zone(Bookings::BlockedEnd))
                    .col(string_len(Bookings::Status, 16))
                    .col(text_null(Bookings::StatusReason))
                    .col(text(Bookings::ManagerNote).default(""))
                    .col(string_len_null(Bookings::ClientKey, 100))
                    .col(string_len_null(Bookings::RequestDigest, 64))
                    .col(big_integer_null(Bookings::SeriesId))
                    .col(big_integer_null(Bookings::DecidedByAccountId))
                    .col(timestamp_with_time_zone_null(Bookings::DecidedAt))
                    .col(timestamp_with_time_zone(Bookings::CreatedAt))
                    .col(timestamp_with_time_zone(Bookings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bookings::Table, Bookings::SpaceId)
                            .to(Spaces::Table, Spaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bookings::Table, Bookings::BookedByAccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bookings::Table, Bookings::SeriesId)
                            .to(BookingSeries::Table, BookingSeries::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bookings::Table, Bookings::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("idx_bookings_space_time", vec![Bookings::SpaceId, Bookings::BlockedStart], false),
            ("idx_bookings_booker", vec![Bookings::BookedByAccountId, Bookings::StartsAt, Bookings::Id], false),
            ("idx_bookings_status", vec![Bookings::Status, Bookings::CreatedAt, Bookings::Id], false),
            ("idx_bookings_series", vec![Bookings::SeriesId, Bookings::StartsAt], false),
            // Idempotency: one booking per (account, client key); NULL keys never collide.
            ("uq_bookings_client_key", vec![Bookings::BookedByAccountId, Bookings::ClientKey], true),
        ] {
            let mut stmt = Index::create();
            stmt.name(name).table(Bookings::Table);
            if unique {
                stmt.unique();
            }
            for col in cols {
                stmt.col(col);
            }
            manager.create_index(stmt.to_owned()).await?;
        }

        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist").await?;
                db.execute_unprepared(
                    "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist \
                     (space_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&) \
                     WHERE (status = 'CONFIRMED')",
                )
                .await?;
            }
            DatabaseBackend::Sqlite => {
                // Times are stored as RFC 3339 text in UTC at whole minutes, so text order is
                // time order. SQLite has one writer: a check inside the write is race-free.
                for (event, exclude_self) in [("INSERT", ""), ("UPDATE", " AND b.id <> NEW.id")] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER bookings_no_overlap_{event_lc} BEFORE {event} ON bookings \
                         FOR EACH ROW WHEN NEW.status = 'CONFIRMED' BEGIN \
                           SELECT RAISE(ABORT, 'bookings_no_overlap') WHERE EXISTS ( \
                             SELECT 1 FROM bookings b WHERE b.space_id = NEW.space_id \
                             AND b.status = 'CONFIRMED' AND b.blocked_start < NEW.blocked_end \
                             AND NEW.blocked_start < b.blocked_end{exclude_self}); \
                         END",
                        event_lc = event.to_lowercase()
                    ))
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Bookings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(BookingSeries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Spaces::Table).to_owned()).await?;
        Ok(())
    }
}

//! Events reserve their venue. `events.venue_space_id` becomes a foreign key to `spaces`, and
//! a booking may be owned by an event (`bookings.event_id`, at most one per event): that
//! booking holds the room under the same exclusion constraint (PostgreSQL) and triggers
//! (SQLite) as every other confirmed booking.
//!
//! An event that names a space which does not exist (possible before this step) keeps the
//! space's number as its outside address, so the foreign key can be added. Events already
//! held in a space get their reservation the next time they are edited: reserving them here
//! could collide with bookings made meanwhile, which only a person can resolve.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DANGLING: &str = "UPDATE events SET venue_address = 'space #' || CAST(venue_space_id AS TEXT), \
     venue_space_id = NULL \
     WHERE venue_space_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM spaces s WHERE s.id = events.venue_space_id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(DANGLING).await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE events ADD CONSTRAINT fk_events_venue_space \
                     FOREIGN KEY (venue_space_id) REFERENCES spaces (id)",
                )
                .await?;
                db.execute_unprepared(
                    "ALTER TABLE bookings ADD COLUMN event_id bigint \
                     REFERENCES events (id) ON DELETE CASCADE",
                )
                .await?;
            }
            DatabaseBackend::Sqlite => {
                // SQLite adds no constraint to an existing column, but it adds a column with a
                // REFERENCES clause: add one, copy, drop the old column and take its name.
                for sql in [
                    "ALTER TABLE events ADD COLUMN venue_space_ref integer REFERENCES spaces (id)",
                    "UPDATE events SET venue_space_ref = venue_space_id",
                    "ALTER TABLE events DROP COLUMN venue_space_id",
                    "ALTER TABLE events RENAME COLUMN venue_space_ref TO venue_space_id",
                    "ALTER TABLE bookings ADD COLUMN event_id integer REFERENCES events (id) ON DELETE CASCADE",
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {}
        }
        db.execute_unprepared("CREATE UNIQUE INDEX uq_bookings_event ON bookings (event_id)").await?;
        db.execute_unprepared("CREATE INDEX idx_events_venue_space ON events (venue_space_id, starts_at)").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_events_venue_space").await?;
        db.execute_unprepared("DROP INDEX uq_bookings_event").await?;
        db.execute_unprepared("DELETE FROM bookings WHERE event_id IS NOT NULL").await?;
        db.execute_unprepared("ALTER TABLE bookings DROP COLUMN event_id").await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared("ALTER TABLE events DROP CONSTRAINT fk_events_venue_space").await?;
            }
            DatabaseBackend::Sqlite => {
                for sql in [
                    "ALTER TABLE events ADD COLUMN venue_space_plain integer",
                    "UPDATE events SET venue_space_plain = venue_space_id",
                    "ALTER TABLE events DROP COLUMN venue_space_id",
                    "ALTER TABLE events RENAME COLUMN venue_space_plain TO venue_space_id",
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

//! Overlap checks and the conflicts a refusal names.
#[allow(unused_imports)]
use super::*;
use crate::error::{BookingConflict, ConflictingBooking, FreeSlot, Rejection};

/// Whether `err` is the database refusing an overlapping confirmed booking: SQLSTATE 23P01
/// on PostgreSQL (which `DbErr::sql_err` does not recognise), the trigger's message on SQLite.
/// Also 40P01: two transactions writing overlapping rows at once each wait on the other's
/// exclusion check, and PostgreSQL's deadlock detector aborts one — the other wins, so for
/// the loser it is the same lost race.
pub fn is_overlap_violation(err: &DbErr) -> bool {
    if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = err
        && let Some(db_err) = e.as_database_error()
    {
        if matches!(db_err.code().as_deref(), Some("23P01" | "40P01")) {
            return true;
        }
        return db_err.message().contains("bookings_no_overlap");
    }
    err.to_string().contains("bookings_no_overlap")
}

/// Serializes the writes that can confirm a booking of one space (PostgreSQL: a row lock on
/// the space; SQLite has one writer anyway). Without it, two transactions confirming
/// overlapping rows at once wait on each other's exclusion check until the deadlock detector
/// aborts one. The exclusion constraint stays the guarantee; this keeps losers' answers clean.
pub(super) async fn lock_space(db: &impl ConnectionTrait, space_id: i64) -> AppResult<()> {
    entity::space::Entity::find_by_id(space_id).lock_exclusive().one(db).await?;
    Ok(())
}

pub(super) async fn overlapping_confirmed(
    db: &impl ConnectionTrait,
    space_id: i64,
    blocked: (DateTime<Utc>, DateTime<Utc>),
    except: Option<i64>,
) -> AppResult<Vec<booking::Model>> {
    let mut select = booking::Entity::find()
        .filter(booking::Column::SpaceId.eq(space_id))
        .filter(booking::Column::Status.eq(BookingStatus::Confirmed))
        .filter(booking::Column::BlockedStart.lt(blocked.1))
        .filter(booking::Column::BlockedEnd.gt(blocked.0))
        .order_by_asc(booking::Column::StartsAt);
    if let Some(id) = except {
        select = select.filter(booking::Column::Id.ne(id));
    }
    Ok(select.all(db).await?)
}

pub(super) fn free_slot(space: &SpaceRecord, start: DateTime<Utc>, end: DateTime<Utc>) -> FreeSlot {
    FreeSlot { space_id: space.space.id, space_name: space.space.name.clone(), starts_at: start, ends_at: end }
}

/// Nearest starts to `start` (outward, both directions) where `start..start+length` fits.
#[allow(clippy::too_many_arguments)]
pub(super) fn nearest_fits(
    space: &SpaceRecord,
    start: DateTime<Utc>,
    length: Duration,
    attendees: i32,
    now: DateTime<Utc>,
    blocked: &[(DateTime<Utc>, DateTime<Utc>)],
    include_same_time: bool,
    want: usize,
) -> Vec<DateTime<Utc>> {
    let step = Duration::minutes(space::SLOT_STEP_MINUTES);
    let base = space::align_up(start);
    let mut found = Vec::new();
    if include_same_time && space::fits(space, start, start + length, attendees, now, blocked) {
        found.push(start);
    }
    let steps = SUGGEST_WITHIN_DAYS * 24 * 60 / space::SLOT_STEP_MINUTES;
    for k in 1..=steps {
        for candidate in [base + step * (k as i32) - step, base - step * (k as i32)] {
            if found.len() >= want {
                return found;
            }
            if candidate != start && space::fits(space, candidate, candidate + length, attendees, now, blocked) {
                found.push(candidate);
            }
        }
    }
    found
}

/// The `CONFLICT` for a booking of `space` at `start..end`: what it collides with, and the
/// nearest free slots of the same length there and in other spaces that hold the attendees.
pub(super) async fn conflict_error(
    db: &impl ConnectionTrait,
    space: &SpaceRecord,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attendees: i32,
    except: Option<i64>,
) -> AppResult<AppError> {
    let length = end - start;
    let collisions = overlapping_confirmed(db, space.space.id, space.blocked_range(start, end), except).await?;
    let window = (start - Duration::days(SUGGEST_WITHIN_DAYS + 1), end + Duration::days(SUGGEST_WITHIN_DAYS + 1));
    let now = crate::service::now();

    let here = blocked_intervals(db, &[space.space.id], window.0, window.1).await?;
    let here_blocked = here.get(&space.space.id).map(Vec::as_slice).unwrap_or(&[]);
    let same_space: Vec<_> = nearest_fits(space, start, length, attendees, now, here_blocked, false, SUGGESTIONS)
        .into_iter()
        .map(|s| (s, (s - start).num_seconds().abs()))
        .collect();
    let mut same_space = same_space;
    same_space.sort_by_key(|(_, distance)| *distance);

    let others: Vec<SpaceRecord> =
        space::with_capacity(db, attendees).await?.into_iter().filter(|s| s.space.id != space.space.id).collect();
    let other_ids: Vec<i64> = others.iter().map(|s| s.space.id).collect();
    let other_blocked = blocked_intervals(db, &other_ids, window.0, window.1).await?;
    let mut elsewhere: Vec<(i64, i32, &SpaceRecord, DateTime<Utc>)> = Vec::new();
    for other in others.iter().take(20) {
        let blocked = other_blocked.get(&other.space.id).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(s) = nearest_fits(other, start, length, attendees, now, blocked, true, 1).into_iter().next() {
            elsewhere.push(((s - start).num_seconds().abs(), other.space.capacity, other, s));
        }
    }
    elsewhere.sort_by_key(|(distance, capacity, space, _)| (*distance, *capacity, space.space.id));

    let message = match collisions.first() {
        // Not the title: the event may be a draft its organizer has not announced.
        Some(b) if b.event_id.is_some() => format!(
            "{} is held for an event from {} to {} (with setup and teardown buffers); see extensions.suggestions",
            space.space.name,
            b.starts_at.to_rfc3339(),
            b.ends_at.to_rfc3339()
        ),
        Some(b) => format!(
            "{} is already booked from {} to {} (with setup and teardown buffers); see extensions.suggestions",
            space.space.name,
            b.starts_at.to_rfc3339(),
            b.ends_at.to_rfc3339()
        ),
        None => format!("{} was booked for this time meanwhile; see extensions.suggestions", space.space.name),
    };
    let conflict = BookingConflict {
        conflicts_with: collisions
            .iter()
            .map(|b| ConflictingBooking {
                booking_id: b.id,
                event_id: b.event_id,
                starts_at: b.starts_at,
                ends_at: b.ends_at,
                blocked_from: b.blocked_start,
                blocked_until: b.blocked_end,
            })
            .collect(),
        suggestions: same_space.iter().map(|(s, _)| free_slot(space, *s, *s + length)).collect(),
        other_spaces: elsewhere
            .iter()
            .take(SUGGESTIONS)
            .map(|(_, _, other, s)| free_slot(other, *s, *s + length))
            .collect(),
    };
    Ok(AppError::Conflict(Rejection::new(message).reason("BOOKING_OVERLAP").details(conflict)))
}

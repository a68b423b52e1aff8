//! Rooms held by events: an event's venue as a confirmed booking.
#[allow(unused_imports)]
use super::*;

/// A booking event of an event's reservation: the booking's payload plus `eventId`.
pub(super) fn reservation_event(kind: EventKind, b: &booking::Model) -> NewEvent {
    let mut event = booking_event(kind, b);
    if let Some(map) = event.payload.as_object_mut() {
        map.insert("eventId".into(), b.event_id.into());
    }
    event
}

/// Locks the space an event is to be held in and checks that it exists and seats the event's
/// capacity. Call inside the event's transaction before writing the event row: the space's
/// row lock then comes before the share lock the row's foreign key takes, so two writers of
/// one room never wait on each other's locks.
pub async fn prepare_event_venue(db: &impl ConnectionTrait, space_id: i64, capacity: i32) -> AppResult<SpaceRecord> {
    lock_space(db, space_id).await?;
    let space =
        space::find(db, space_id).await?.ok_or_else(|| AppError::bad_input("venue.spaceId", "no such space"))?;
    if capacity > space.space.capacity {
        return Err(AppError::rule(
            "capacity",
            "OVER_CAPACITY",
            format!(
                "{} holds at most {} people; the event's capacity is {capacity}",
                space.space.name, space.space.capacity
            ),
        ));
    }
    Ok(space)
}

/// Makes an event's booking match the event: a confirmed booking of its space for its time
/// plus the space's buffers while the event is a draft or published (created, moved or
/// re-titled with it), released when the event is cancelled or leaves the base. A completed
/// event keeps its booking as the record of the room's use. The overlap guarantee is the one
/// every booking has; a clash is the same `CONFLICT` a booking gets. `space` is what
/// `prepare_event_venue` returned for the event's space (`None` when it has none); `account_id`
/// books a reservation that does not exist yet; without `approves`, a space that needs the
/// base's approval is not reserved or moved (`APPROVAL_REQUIRED`), only kept as staff set it.
/// Returns the log events to append.
pub async fn sync_event_booking(
    db: &sea_orm::DatabaseTransaction,
    event: &entity::event::Model,
    space: Option<&SpaceRecord>,
    account_id: Option<i64>,
    approves: bool,
) -> AppResult<Vec<NewEvent>> {
    use entity::event::EventStatus;
    let existing = booking::Entity::find().filter(booking::Column::EventId.eq(event.id)).one(db).await?;
    let now = crate::service::now();
    let space = space.filter(|_| matches!(event.status, EventStatus::Draft | EventStatus::Published));
    let Some(space) = space else {
        let Some(held) = existing.filter(|b| b.status == BookingStatus::Confirmed) else { return Ok(Vec::new()) };
        if event.status == EventStatus::Completed {
            return Ok(Vec::new());
        }
        let reason = if event.status == EventStatus::Cancelled {
            "the event was cancelled"
        } else {
            "the event moved out of this space"
        };
        let row = booking::ActiveModel {
            status: Set(BookingStatus::Cancelled),
            status_reason: Set(Some(reason.to_owned())),
            decided_by_account_id: Set(account_id.or(held.decided_by_account_id)),
            decided_at: Set(Some(now)),
            updated_at: Set(now),
            ..booking::ActiveModel::from(held.clone())
        }
        .update(db)
        .await?;
        let mut log = reservation_event(EventKind::BookingCancelled, &row);
        if let Some(map) = log.payload.as_object_mut() {
            map.insert("released".into(), true.into());
        }
        return Ok(vec![log]);
    };
    let (blocked_start, blocked_end) = space.blocked_range(event.starts_at, event.ends_at);
    let except = existing.as_ref().map(|b| b.id);
    let wanted = |b: &booking::Model| {
        b.status == BookingStatus::Confirmed
            && b.space_id == space.space.id
            && (b.starts_at, b.ends_at, b.blocked_start, b.blocked_end)
                == (event.starts_at, event.ends_at, blocked_start, blocked_end)
    };
    let holds_room = existing.as_ref().is_some_and(wanted);
    if !holds_room && space.space.requires_approval && !approves {
        return Err(AppError::rule(
            "venue.spaceId",
            "APPROVAL_REQUIRED",
            format!(
                "{} is lent with the base's approval: its staff set it as an event's venue or move the event in it",
                space.space.name
            ),
        ));
    }
    if !holds_room && !overlapping_confirmed(db, space.space.id, (blocked_start, blocked_end), except).await?.is_empty()
    {
        return Err(conflict_error(db, space, event.starts_at, event.ends_at, event.capacity, except).await?);
    }
    if let Some(b) = &existing
        && holds_room
        && b.purpose == event.title
        && b.attendees == event.capacity
        && b.organization_id == Some(event.organizer_id)
    {
        return Ok(Vec::new());
    }
    if existing.is_none() && account_id.is_none() {
        return Err(AppError::Forbidden("a signed-in account reserves a base space for an event".into()));
    }
    let savepoint = db.begin().await?;
    // The reservation as the event has it, over the booking it had (or a new one).
    let mut row = match &existing {
        Some(b) => booking::ActiveModel {
            decided_by_account_id: Set(account_id.or(b.decided_by_account_id)),
            ..booking::ActiveModel::from(b.clone())
        },
        None => booking::ActiveModel {
            booked_by_account_id: Set(account_id.unwrap_or_default()),
            manager_note: Set(String::new()),
            client_key: Set(None),
            request_digest: Set(None),
            series_id: Set(None),
            decided_by_account_id: Set(Some(account_id.unwrap_or_default())),
            event_id: Set(Some(event.id)),
            created_at: Set(now),
            ..Default::default()
        },
    };
    row.space_id = Set(space.space.id);
    row.organization_id = Set(Some(event.organizer_id));
    row.purpose = Set(event.title.clone());
    row.attendees = Set(event.capacity);
    row.starts_at = Set(event.starts_at);
    row.ends_at = Set(event.ends_at);
    row.blocked_start = Set(blocked_start);
    row.blocked_end = Set(blocked_end);
    row.status = Set(BookingStatus::Confirmed);
    row.status_reason = Set(None);
    row.decided_at = Set(Some(now));
    row.updated_at = Set(now);
    let written = if existing.is_some() { row.update(&savepoint).await } else { row.insert(&savepoint).await };
    let row = match written {
        Ok(row) => {
            savepoint.commit().await?;
            row
        }
        Err(err) if is_overlap_violation(&err) => {
            savepoint.rollback().await?;
            return Err(conflict_error(db, space, event.starts_at, event.ends_at, event.capacity, except).await?);
        }
        Err(err) => return Err(err.into()),
    };
    if holds_room {
        // Only the title, capacity or organizer changed: no change of the room's calendar.
        return Ok(Vec::new());
    }
    let mut log = reservation_event(EventKind::BookingConfirmed, &row);
    if let (Some(before), Some(map)) =
        (existing.filter(|b| b.status == BookingStatus::Confirmed), log.payload.as_object_mut())
    {
        // Moved: calendar subscribers of the old time and room learn that it is free.
        map.insert(
            "movedFrom".into(),
            json!({ "spaceId": before.space_id, "startsAt": before.starts_at, "endsAt": before.ends_at }),
        );
    }
    Ok(vec![log])
}

//! The booking commands as the API calls them: authorization, then the write.
#[allow(unused_imports)]
use super::*;

/// A booking's event: about the booking, concerning its requester.
pub fn booking_event(kind: EventKind, b: &booking::Model) -> NewEvent {
    use sea_orm::ActiveEnum;
    NewEvent::new(kind, b.id).account(Some(b.booked_by_account_id)).organization(b.organization_id).payload(json!({
        "spaceId": b.space_id,
        "startsAt": b.starts_at,
        "endsAt": b.ends_at,
        "status": b.status.to_value(),
    }))
}

/// A cancellation's event; `released` says whether the booking held the room (was confirmed),
/// which is all the public calendar learns about it.
pub(crate) fn cancelled_event(before: BookingStatus, after: &booking::Model) -> NewEvent {
    let mut event = booking_event(EventKind::BookingCancelled, after);
    if let Some(map) = event.payload.as_object_mut() {
        map.insert("released".into(), (before == BookingStatus::Confirmed).into());
    }
    event
}

pub(super) fn created_kind(b: &booking::Model) -> EventKind {
    if b.status == BookingStatus::Confirmed { EventKind::BookingConfirmed } else { EventKind::BookingRequested }
}

/// Command: a signed-in account books a space for itself, or for an organization it belongs
/// to (staff for anyone). Partner keys alone cannot book.
pub async fn book(ctx: Ctx<'_>, viewer: &Viewer, request: BookingRequest) -> AppResult<(booking::Model, bool)> {
    let account = viewer.require_book(request.organization_id)?;
    let booker = Booker { account_id: account.id, is_staff: viewer.is_staff() };
    as_viewer!(viewer, |actor| create(ctx, actor, booker, request.clone()))
}

/// Command: books a space repeatedly, each occurrence checked like a single booking.
pub async fn book_recurring(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    request: BookingRequest,
    rule: crate::service::recurrence::Recurrence,
    on_conflict: OnConflict,
) -> AppResult<CreatedSeries> {
    let account = viewer.require_book(request.organization_id)?;
    let booker = Booker { account_id: account.id, is_staff: viewer.is_staff() };
    as_viewer!(viewer, |actor| create_recurring(ctx, actor, booker, request.clone(), rule.clone(), on_conflict))
}

/// Command: a manager confirms a pending booking; pending requests that now clash are rejected.
pub async fn confirm_booking(ctx: Ctx<'_>, viewer: &Viewer, id: i64, note: Option<String>) -> AppResult<Confirmed> {
    let account = viewer.require_decide_bookings()?;
    as_viewer!(viewer, |actor| confirm(ctx, actor, id, account.id, note.clone()))
}

/// Command: a manager rejects a pending booking with a reason.
pub async fn reject_booking(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    reason: &str,
    note: Option<String>,
) -> AppResult<booking::Model> {
    let account = viewer.require_decide_bookings()?;
    let verdict = Verdict { by: account.id, reason, note };
    as_viewer!(viewer, |actor| reject(ctx, actor, id, verdict.clone()))
}

/// Command: the requester or a manager cancels a booking (with a scope, also following or all
/// occurrences of its series). Manager notes are staff's.
pub async fn cancel_booking(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    reason: &str,
    note: Option<String>,
    scope: CancelScope,
) -> AppResult<(booking::Model, Vec<booking::Model>)> {
    viewer.require_account()?;
    let current = load(ctx.db, id).await?;
    let account = viewer.require_cancel_booking(current.booked_by_account_id)?;
    if note.is_some() && !viewer.can_see_manager_notes() {
        return Err(AppError::Forbidden("only staff write manager notes".into()));
    }
    let verdict = Verdict { by: account.id, reason, note };
    as_viewer!(viewer, |actor| cancel_scoped(ctx, actor, id, verdict.clone(), scope))
}

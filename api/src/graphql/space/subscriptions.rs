//! A space's calendar as it changes.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct SpaceSubscription;

/// A booking of a space's calendar that was created, decided or cancelled.
#[derive(SimpleObject)]
pub struct SpaceCalendarChange {
    /// Pass as `after` when reconnecting to receive what came after this message.
    pub cursor: String,
    /// `booking.requested`, `booking.confirmed`, `booking.rejected` or `booking.cancelled`.
    pub event_type: String,
    pub event_id: ID,
    /// The booking as it is now, shown as the viewer may see it.
    pub booking: Booking,
}

pub(super) fn time_in(payload: &serde_json::Value, key: &str) -> Option<DateTime<Utc>> {
    payload.get(key).and_then(serde_json::Value::as_str).and_then(|t| t.parse().ok())
}

/// Whether `e` is a change of space `space_id`'s bookings within `[from, to)` that `viewer`
/// may see: confirmations and rooms released are public; requests, rejections and the
/// cancellation of a request are for the requester and staff.
pub(super) fn calendar_change(
    viewer: &crate::auth::Viewer,
    e: &entity::domain_event::Model,
    space_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> bool {
    use crate::events::EventKind as K;
    let Some(kind) = crate::events::log::kind_of(e) else { return false };
    if !matches!(kind, K::BookingRequested | K::BookingConfirmed | K::BookingRejected | K::BookingCancelled) {
        return false;
    }
    let p = &e.payload;
    let within = |v: &serde_json::Value| {
        v.get("spaceId").and_then(serde_json::Value::as_i64) == Some(space_id)
            && matches!((time_in(v, "startsAt"), time_in(v, "endsAt")), (Some(s), Some(t)) if s < to && t > from)
    };
    // A moved event's reservation also frees the room and time it held before.
    if kind == K::BookingConfirmed && p.get("movedFrom").is_some_and(within) {
        return true;
    }
    let overlaps = within(p);
    let public = kind == K::BookingConfirmed
        || (kind == K::BookingCancelled && p.get("released").and_then(serde_json::Value::as_bool) == Some(true));
    overlaps && (public || e.account_id.is_some_and(|a| viewer.can_see_booking_details(a)))
}

#[async_graphql::Subscription]
impl SpaceSubscription {
    /// Changes to a space's calendar between `from` and `to` (at most 62 days): bookings
    /// created, decided and cancelled, by any server instance. Everyone sees confirmations and
    /// released rooms; requesters and staff also see requests and their outcomes. With `after`
    /// (a cursor of an earlier message) the changes since come first, in order.
    async fn space_calendar(
        &self,
        ctx: &Context<'_>,
        space_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = SpaceCalendarChange> + use<>> {
        let id = ids::decode(&space_id, SPACE, "spaceId")?;
        if to <= from || (to - from).num_days() > service::MAX_CALENDAR_DAYS {
            return Err(AppError::bad_input("to", "`to` is after `from`, at most 62 days later").extend());
        }
        let state = state(ctx)?.clone();
        let viewer = viewer(ctx).clone();
        let wanted = move |e: &entity::domain_event::Model| calendar_change(&viewer, e, id, from, to);
        let (_, changes) = crate::graphql::audit::live_events(&state, after.as_deref(), wanted).await?;
        if spaces::find(&state.db, id).await.extend()?.is_none() {
            return Err(AppError::NotFound("space".into()).extend());
        }
        let db = state.db.clone();
        Ok(crate::events::live::messages(changes, "a booking", move |e| {
            let db = db.clone();
            async move {
                Ok(service::find(&db, e.aggregate_id).await?.map(|booking| SpaceCalendarChange {
                    cursor: crate::events::Position::of(&e).cursor(),
                    event_type: e.event_type.clone(),
                    event_id: ids::encode(crate::graphql::audit::AUDIT_ENTRY, e.id),
                    booking: Booking(booking),
                }))
            }
        }))
    }
}

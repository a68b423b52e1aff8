//! Event subscriptions: seats as they change.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct EventSubscription;

/// An event's seats after something changed them.
#[derive(SimpleObject)]
pub struct EventSeatsChange {
    /// Pass as `after` when reconnecting to receive what came after this message.
    pub cursor: String,
    /// What changed them (`registration.confirmed`, `registration.promoted`,
    /// `registration.cancelled`, `event.updated`, …); `null` on the first message, which shows
    /// the seats as they are.
    pub event_type: Option<String>,
    pub event_id: Option<ID>,
    /// The registration concerned, when the change is about one.
    pub registration_id: Option<ID>,
    /// The seats when the message is delivered (also when replaying missed changes).
    pub seats: EventSeats,
}

pub(super) async fn seats_now(db: &sea_orm::DatabaseConnection, id: i64) -> crate::error::AppResult<EventSeats> {
    let m = service::find(db, id).await?;
    let c = service::counts_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(EventSeats::of(&m, &c))
}

/// Whether `e` changes event `id`'s seats.
pub(super) fn changes_seats(e: &entity::domain_event::Model, id: i64) -> bool {
    use crate::events::{Aggregate, EventKind as K};
    match crate::events::log::kind_of(e) {
        Some(K::EventUpdated | K::EventPublished | K::EventCancelled | K::EventCompleted) => e.aggregate_id == id,
        Some(kind) if kind.aggregate() == Aggregate::Registration => {
            e.payload.get("eventId").and_then(serde_json::Value::as_i64) == Some(id)
        }
        _ => false,
    }
}

#[async_graphql::Subscription]
impl EventSubscription {
    /// An event's seats now (capacity, taken, left, waitlisted, checked in), then again each
    /// time a registration, cancellation, promotion, decision, check-in or edit changes them,
    /// written by any server instance or the CLI. Published events, or any event for those who
    /// run it. With `after` (a cursor of an earlier message) the changes since come first, in
    /// order; a cursor past the replay window answers `BAD_USER_INPUT`, reason `CURSOR_EXPIRED`.
    async fn event_seats(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = EventSeatsChange> + use<>> {
        let id = ids::decode(&event_id, EVENT, "eventId")?;
        let state = state(ctx)?.clone();
        let wanted = move |e: &entity::domain_event::Model| changes_seats(e, id);
        let (start, changes) = crate::graphql::audit::live_events(&state, after.as_deref(), wanted).await?;
        let event = service::find(&state.db, id).await.extend()?;
        let v = viewer(ctx);
        if event.status == entity::event::EventStatus::Draft && !v.can_manage_event(event.organizer_id) {
            return Err(AppError::NotFound("event".into()).extend());
        }
        let first = match after {
            Some(_) => None,
            None => Some(EventSeatsChange {
                cursor: start.cursor(),
                event_type: None,
                event_id: None,
                registration_id: None,
                seats: seats_now(&state.db, id).await.extend()?,
            }),
        };
        let db = state.db.clone();
        let changes = crate::events::live::messages(changes, "seats", move |e| {
            let db = db.clone();
            async move {
                let registration = (e.aggregate_type == crate::events::Aggregate::Registration.type_name())
                    .then(|| ids::encode(REGISTRATION, e.aggregate_id));
                Ok(Some(EventSeatsChange {
                    cursor: crate::events::Position::of(&e).cursor(),
                    event_type: Some(e.event_type.clone()),
                    event_id: Some(ids::encode(crate::graphql::audit::AUDIT_ENTRY, e.id)),
                    registration_id: registration,
                    seats: seats_now(&db, id).await?,
                }))
            }
        });
        Ok(futures::StreamExt::chain(futures::stream::iter(first), changes))
    }
}

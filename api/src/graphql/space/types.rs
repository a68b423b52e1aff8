//! Spaces and bookings as the API shows them.
#[allow(unused_imports)]
use super::*;

/// A room, hall or area of the base.
pub struct Space(pub SpaceRecord);

#[Object]
impl Space {
    pub async fn id(&self) -> ID {
        ids::encode(SPACE, self.0.space.id)
    }

    async fn name(&self) -> &str {
        &self.0.space.name
    }

    async fn kind(&self) -> SpaceKind {
        self.0.space.kind.into()
    }

    async fn floor(&self) -> i32 {
        self.0.space.floor
    }

    /// How many people it holds.
    async fn capacity(&self) -> i32 {
        self.0.space.capacity
    }

    async fn description(&self) -> &str {
        &self.0.space.description
    }

    async fn equipment(&self) -> &[String] {
        &self.0.equipment
    }

    async fn photo_urls(&self) -> &[String] {
        &self.0.photo_urls
    }

    /// Whether bookings by non-staff wait for a manager's approval.
    async fn requires_approval(&self) -> bool {
        self.0.space.requires_approval
    }

    /// IANA zone of the opening hours and closures.
    async fn time_zone(&self) -> &str {
        &self.0.space.time_zone
    }

    async fn opening_hours(&self) -> Vec<OpeningPeriod> {
        self.0
            .hours
            .iter()
            .map(|h| OpeningPeriod {
                weekday: h.weekday.into(),
                opens: spaces::format_clock(h.opens),
                closes: spaces::format_clock(h.closes),
            })
            .collect()
    }

    async fn closures(&self) -> Vec<SpaceClosure> {
        self.0
            .closures
            .iter()
            .map(|c| SpaceClosure { starts_on: c.starts_on, ends_on: c.ends_on, reason: c.reason.clone() })
            .collect()
    }

    /// Bookings start at least this many minutes after they are made.
    async fn min_notice_minutes(&self) -> i32 {
        self.0.space.min_notice_minutes
    }

    /// Bookings start at most this many days after they are made.
    async fn max_advance_days(&self) -> i32 {
        self.0.space.max_advance_days
    }

    /// Minutes kept free before each booking.
    async fn setup_minutes(&self) -> i32 {
        self.0.space.setup_minutes
    }

    /// Minutes kept free after each booking.
    async fn teardown_minutes(&self) -> i32 {
        self.0.space.teardown_minutes
    }

    /// The resident organization holding this space as its office.
    async fn resident_organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.space.resident_organization_id else { return Ok(None) };
        Ok(Loaders::of(ctx)?.organization.get(id).await?.map(Organization))
    }

    /// Confirmed bookings overlapping `from..to` (at most 62 days), in time order.
    async fn bookings(&self, ctx: &Context<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Booking>> {
        let rows = state(ctx)?.calendar().of_space(self.0.space.id, from, to).await.extend()?;
        Ok(rows.into_iter().map(Booking).collect())
    }
}

/// A request for, or a reservation of, a space.
pub struct Booking(pub booking_entity::Model);

#[Object]
impl Booking {
    pub async fn id(&self) -> ID {
        ids::encode(BOOKING, self.0.id)
    }

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::Booking, self.0.id)
    }

    async fn space(&self, ctx: &Context<'_>) -> Result<Option<Space>> {
        Ok(Loaders::of(ctx)?.space.get(self.0.space_id).await?.map(Space))
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }

    /// Start of the time kept free, setup buffer included.
    async fn blocked_from(&self) -> DateTime<Utc> {
        self.0.blocked_start
    }

    /// End of the time kept free, teardown buffer included.
    async fn blocked_until(&self) -> DateTime<Utc> {
        self.0.blocked_end
    }

    async fn status(&self) -> BookingStatus {
        self.0.status.into()
    }

    /// Why it was rejected or cancelled; the requester and staff only.
    async fn status_reason(&self, ctx: &Context<'_>) -> Option<&str> {
        if !viewer(ctx).can_see_booking_details(self.0.booked_by_account_id) {
            return None;
        }
        self.0.status_reason.as_deref()
    }

    /// What it is for; for an event's reservation, the event's title (a draft's title only for
    /// those who run the event: others read 活动筹备中, an event in preparation).
    async fn purpose(&self, ctx: &Context<'_>) -> Result<String> {
        if self.0.event_id.is_some() && self.visible_event(ctx).await?.is_none() {
            return Ok(DRAFT_EVENT_PURPOSE.to_owned());
        }
        Ok(self.0.purpose.clone())
    }

    /// The event this booking holds the room for: an event held in a base space reserves it
    /// under the same guarantee as any booking, moves with the event and is released when the
    /// event is cancelled. `null` for other bookings (and for a draft the viewer does not run).
    async fn event(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::event::Event>> {
        Ok(self.visible_event(ctx).await?.map(crate::graphql::event::Event::from_model))
    }

    /// Expected attendees.
    async fn attendees(&self) -> i32 {
        self.0.attendees
    }

    /// The organization it is booked for.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else { return Ok(None) };
        Ok(Loaders::of(ctx)?.organization.get(id).await?.map(Organization))
    }

    /// Who made it; the requester and staff only.
    async fn booked_by(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        if !viewer(ctx).can_see_booking_details(self.0.booked_by_account_id) {
            return Ok(None);
        }
        Ok(Loaders::of(ctx)?.account.get(self.0.booked_by_account_id).await?.map(Account))
    }

    /// Internal note of the base's managers; `null` for everyone else.
    async fn manager_note(&self, ctx: &Context<'_>) -> Option<&str> {
        viewer(ctx).can_see_manager_notes().then_some(self.0.manager_note.as_str())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was confirmed, rejected or cancelled.
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }

    /// The recurring series this booking is an occurrence of.
    async fn series_id(&self) -> Option<ID> {
        self.0.series_id.map(|id| ids::encode(SERIES, id))
    }

    /// Whether the viewer may cancel it (an event's reservation goes with the event instead).
    async fn viewer_can_cancel(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).can_cancel_booking(self.0.booked_by_account_id)
            && matches!(self.0.status, EntityStatus::Pending | EntityStatus::Confirmed)
            && self.0.event_id.is_none()
    }
}

/// What the calendar says of the reservation of an event that is still a draft.
pub(super) const DRAFT_EVENT_PURPOSE: &str = "活动筹备中";

impl Booking {
    /// The event this booking holds the room for, when the viewer may see it.
    async fn visible_event(&self, ctx: &Context<'_>) -> Result<Option<entity::event::Model>> {
        let Some(id) = self.0.event_id else { return Ok(None) };
        let found = Loaders::of(ctx)?.event.get(id).await?;
        Ok(found
            .filter(|e| e.status != entity::event::EventStatus::Draft || viewer(ctx).can_manage_event(e.organizer_id)))
    }
}

/// A free period of a space.
#[derive(SimpleObject)]
pub struct TimeSlot {
    /// The earliest start.
    pub starts_at: DateTime<Utc>,
    /// The latest end: any booking of the asked length inside fits.
    pub ends_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct SpaceAvailability {
    pub space: Space,
    pub slots: Vec<TimeSlot>,
}

#[derive(InputObject)]
pub struct TimeRangeInput {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(InputObject, Default)]
pub struct SpaceFilter {
    /// Spaces of any of these kinds.
    pub kind: Option<Vec<SpaceKind>>,
    /// Spaces holding at least this many people.
    pub min_capacity: Option<i32>,
    /// Spaces a booking of exactly this interval could be made in now (for `minCapacity`
    /// attendees).
    pub available_between: Option<TimeRangeInput>,
}

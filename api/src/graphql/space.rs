//! Spaces and bookings in the schema: the building's rooms, their calendar, availability,
//! booking requests and the managers' decisions.
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::booking::{self as booking_entity, BookingStatus as EntityStatus};

use super::connection::{self, PagedConnection};
use super::identity::{Account, viewer};
use super::ids;
use super::loaders::Loaders;
use super::organization::{self, Organization};
use super::state;
use crate::error::AppError;
use crate::service::booking::{self as service, BookingRequest, CancelScope, OnConflict};
use crate::service::recurrence::Recurrence;
use crate::service::space::{
    self as spaces, Closure, OpeningHours, SpaceFilter as ServiceFilter, SpaceInput, SpaceRecord,
};

pub const SPACE: &str = "Space";
pub const BOOKING: &str = "Booking";
pub const SERIES: &str = "BookingSeries";

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::space::SpaceKind")]
pub enum SpaceKind {
    /// 培训室
    TrainingRoom,
    /// 会议室
    MeetingRoom,
    /// 多功能厅
    Hall,
    /// 展示区
    ExhibitionArea,
    /// 入驻组织办公室
    Office,
    /// 活动室
    ActivityRoom,
    /// 心理咨询室
    CounselingRoom,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::booking::BookingStatus")]
pub enum BookingStatus {
    /// Waiting for a manager's decision.
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "chrono::Weekday")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A bookable period of one weekday, in the space's local time.
#[derive(SimpleObject)]
pub struct OpeningPeriod {
    pub weekday: Weekday,
    /// `HH:MM`.
    pub opens: String,
    /// `HH:MM`; `24:00` is the end of the day.
    pub closes: String,
}

#[derive(InputObject)]
pub struct OpeningPeriodInput {
    pub weekday: Weekday,
    /// `HH:MM`.
    pub opens: String,
    /// `HH:MM`; `24:00` is the end of the day.
    pub closes: String,
}

/// Local dates (inclusive) when a space cannot be booked.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "SpaceClosureInput")]
pub struct SpaceClosure {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub reason: String,
}

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
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.organization.load_one(id).await.map_err(|e| e.extend())?.map(Organization))
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

    /// What happened to it, newest first: who created, changed, decided or paid what, and
    /// when. `null` unless the viewer is staff (and, for donations, reconcilers).
    #[graphql(complexity = "connection::cost(first, None, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<PagedConnection<super::audit::AuditEntry>>> {
        let allowed = viewer(ctx).can_see_history();
        super::audit::history_of(ctx, crate::events::Aggregate::Booking, self.0.id, allowed, first, after).await
    }

    async fn space(&self, ctx: &Context<'_>) -> Result<Option<Space>> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.space.load_one(self.0.space_id).await.map_err(|e| e.extend())?.map(Space))
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
    async fn event(&self, ctx: &Context<'_>) -> Result<Option<super::event::Event>> {
        Ok(self.visible_event(ctx).await?.map(super::event::Event::from_model))
    }

    /// Expected attendees.
    async fn attendees(&self) -> i32 {
        self.0.attendees
    }

    /// The organization it is booked for.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.organization.load_one(id).await.map_err(|e| e.extend())?.map(Organization))
    }

    /// Who made it; the requester and staff only.
    async fn booked_by(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        if !viewer(ctx).can_see_booking_details(self.0.booked_by_account_id) {
            return Ok(None);
        }
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.account.load_one(self.0.booked_by_account_id).await.map_err(|e| e.extend())?.map(Account))
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
const DRAFT_EVENT_PURPOSE: &str = "活动筹备中";

impl Booking {
    /// The event this booking holds the room for, when the viewer may see it.
    async fn visible_event(&self, ctx: &Context<'_>) -> Result<Option<entity::event::Model>> {
        let Some(id) = self.0.event_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        let found = loaders.event.load_one(id).await.map_err(|e| e.extend())?;
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

#[derive(Default)]
pub struct SpaceQuery;

#[Object]
impl SpaceQuery {
    /// A space by ID; `null` when there is none.
    async fn space(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Space>> {
        let id = ids::decode(&id, SPACE, "id").extend()?;
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.space.load_one(id).await.map_err(|e| e.extend())?.map(Space))
    }

    /// The base's spaces, by name.
    async fn spaces(
        &self,
        ctx: &Context<'_>,
        filter: Option<SpaceFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Space>> {
        let state = state(ctx)?;
        let filter = filter.unwrap_or_default();
        let service_filter = ServiceFilter {
            kinds: filter.kind.unwrap_or_default().into_iter().map(Into::into).collect(),
            min_capacity: filter.min_capacity,
            available_between: filter.available_between.map(|r| (r.from, r.to)),
        };
        let page = spaces::list(
            &state.db,
            &service_filter,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Space))
    }

    /// Free periods of up to 20 spaces within `from..to` (at most 31 days) where a booking
    /// of `durationMinutes` can be made now, starts on a 15-minute grid.
    async fn availability(
        &self,
        ctx: &Context<'_>,
        space_ids: Vec<ID>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        duration_minutes: i32,
    ) -> Result<Vec<SpaceAvailability>> {
        let ids =
            space_ids.iter().map(|id| ids::decode(id, SPACE, "spaceIds")).collect::<Result<Vec<_>, _>>().extend()?;
        let found = service::availability(&state(ctx)?.db, &ids, from, to, duration_minutes).await.extend()?;
        Ok(found
            .into_iter()
            .map(|(space, windows)| SpaceAvailability {
                space: Space(space),
                slots: windows.into_iter().map(|(starts_at, ends_at)| TimeSlot { starts_at, ends_at }).collect(),
            })
            .collect())
    }

    /// The viewer's bookings, latest start first.
    async fn my_bookings(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Booking>> {
        let state = state(ctx)?;
        let account = viewer(ctx).require_account().extend()?;
        let page = service::of_account(
            &state.db,
            account.id,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Booking))
    }

    /// Bookings in a status (default PENDING), oldest request first: the managers' queue.
    async fn booking_requests(
        &self,
        ctx: &Context<'_>,
        status: Option<BookingStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Booking>> {
        let state = state(ctx)?;
        viewer(ctx).require_decide_bookings().extend()?;
        let page = service::requests(
            &state.db,
            status.map(Into::into).unwrap_or(EntityStatus::Pending),
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Booking))
    }
}

#[derive(InputObject)]
pub struct CreateSpaceInput {
    pub name: String,
    pub kind: SpaceKind,
    /// Default 1.
    pub floor: Option<i32>,
    pub capacity: i32,
    pub description: Option<String>,
    pub equipment: Option<Vec<String>>,
    pub photo_urls: Option<Vec<String>>,
    /// Default false.
    pub requires_approval: Option<bool>,
    /// Default Asia/Shanghai.
    pub time_zone: Option<String>,
    /// Default Monday to Saturday, 08:00–21:00.
    pub opening_hours: Option<Vec<OpeningPeriodInput>>,
    pub closures: Option<Vec<SpaceClosure>>,
    /// Default 0.
    pub min_notice_minutes: Option<i32>,
    /// Default 90.
    pub max_advance_days: Option<i32>,
    /// Default 0.
    pub setup_minutes: Option<i32>,
    /// Default 0.
    pub teardown_minutes: Option<i32>,
    pub resident_organization_id: Option<ID>,
}

/// Fields left out stay as they are; lists replace the whole list.
#[derive(InputObject)]
pub struct UpdateSpaceInput {
    pub id: ID,
    pub name: Option<String>,
    pub kind: Option<SpaceKind>,
    pub floor: Option<i32>,
    pub capacity: Option<i32>,
    pub description: Option<String>,
    pub equipment: Option<Vec<String>>,
    pub photo_urls: Option<Vec<String>>,
    pub requires_approval: Option<bool>,
    pub time_zone: Option<String>,
    pub opening_hours: Option<Vec<OpeningPeriodInput>>,
    pub closures: Option<Vec<SpaceClosure>>,
    pub min_notice_minutes: Option<i32>,
    pub max_advance_days: Option<i32>,
    pub setup_minutes: Option<i32>,
    pub teardown_minutes: Option<i32>,
    /// `null` ends the residency.
    pub resident_organization_id: MaybeUndefined<ID>,
}

#[derive(SimpleObject)]
pub struct SpacePayload {
    pub space: Space,
}

#[derive(InputObject)]
pub struct CreateBookingInput {
    pub space_id: ID,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub attendees: i32,
    /// What it is for; required unless booked for an organization.
    pub purpose: Option<String>,
    /// The organization it is for: one the viewer is a member of (staff: any).
    pub organization_id: Option<ID>,
    /// Replaying a key returns the first booking made with it; the same key with a different
    /// request is a CONFLICT (reason CLIENT_KEY_REUSED).
    pub client_key: Option<String>,
    /// Staff only.
    pub manager_note: Option<String>,
}

#[derive(SimpleObject)]
pub struct CreateBookingPayload {
    pub booking: Booking,
    /// True when this answers a replayed clientKey: nothing new was created.
    pub replayed: bool,
}

#[derive(InputObject)]
pub struct ConfirmBookingInput {
    pub id: ID,
    pub manager_note: Option<String>,
}

#[derive(SimpleObject)]
pub struct ConfirmBookingPayload {
    pub booking: Booking,
    /// Pending requests that clashed with it and were rejected automatically.
    pub rejected: Vec<Booking>,
}

#[derive(InputObject)]
pub struct DecideBookingInput {
    pub id: ID,
    pub reason: String,
    /// Staff only.
    pub manager_note: Option<String>,
}

#[derive(SimpleObject)]
pub struct BookingPayload {
    pub booking: Booking,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum CancelBookingScope {
    /// This booking only.
    #[default]
    One,
    /// This occurrence and the later ones of its series.
    ThisAndFollowing,
    /// Every occurrence of its series that is not over.
    Series,
}

#[derive(InputObject)]
pub struct CancelBookingInput {
    pub id: ID,
    pub reason: String,
    #[graphql(default)]
    pub scope: CancelBookingScope,
    /// Staff only.
    pub manager_note: Option<String>,
}

#[derive(SimpleObject)]
pub struct CancelBookingPayload {
    pub booking: Booking,
    /// Every booking this cancelled (one, or occurrences of the series).
    pub cancelled: Vec<Booking>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::booking_series::Frequency")]
pub enum RecurrenceFrequency {
    Daily,
    Weekly,
    Monthly,
}

/// Repeats the first occurrence's local wall time (a weekly 09:00 stays 09:00). Give either
/// `until` or `count` (at most 200 occurrences).
#[derive(InputObject)]
pub struct RecurrenceInput {
    pub frequency: RecurrenceFrequency,
    /// Every N days/weeks/months; default 1.
    #[graphql(default = 1)]
    pub interval: u32,
    /// Weekly only; default the first occurrence's weekday.
    #[graphql(default)]
    pub weekdays: Vec<Weekday>,
    /// The last local date an occurrence may fall on.
    pub until: Option<NaiveDate>,
    /// How many occurrences, the first included.
    pub count: Option<u32>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum RecurrenceConflictMode {
    /// Book what can be booked; the rest is listed in `skipped`.
    #[default]
    Skip,
    /// All or nothing: any occurrence that cannot be booked fails the request.
    Fail,
}

#[derive(InputObject)]
pub struct CreateRecurringBookingInput {
    pub space_id: ID,
    /// The first occurrence.
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub attendees: i32,
    pub purpose: Option<String>,
    pub organization_id: Option<ID>,
    pub recurrence: RecurrenceInput,
    #[graphql(default)]
    pub on_conflict: RecurrenceConflictMode,
    /// Staff only.
    pub manager_note: Option<String>,
}

/// An occurrence that was not booked.
#[derive(SimpleObject)]
pub struct SkippedOccurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The rule's reason, e.g. BOOKING_OVERLAP, INSIDE_CLOSURE, TOO_FAR_AHEAD.
    pub reason: String,
    pub message: String,
}

/// The rule a recurring booking was expanded from.
#[derive(SimpleObject)]
pub struct BookingSeries {
    pub id: ID,
    pub frequency: RecurrenceFrequency,
    pub interval: i32,
    pub weekdays: Vec<Weekday>,
    pub until: Option<NaiveDate>,
    pub count: Option<i32>,
}

#[derive(SimpleObject)]
pub struct CreateRecurringBookingPayload {
    pub series: BookingSeries,
    /// The occurrences booked, in time order.
    pub bookings: Vec<Booking>,
    pub skipped: Vec<SkippedOccurrence>,
}

fn to_hours(periods: Option<Vec<OpeningPeriodInput>>) -> Result<Option<Vec<OpeningHours>>> {
    periods
        .map(|list| {
            list.into_iter()
                .map(|p| {
                    Ok(OpeningHours {
                        weekday: p.weekday.into(),
                        opens: spaces::parse_clock("openingHours", &p.opens)?,
                        closes: spaces::parse_clock("openingHours", &p.closes)?,
                    })
                })
                .collect::<Result<Vec<_>, AppError>>()
        })
        .transpose()
        .extend()
}

fn to_closures(list: Option<Vec<SpaceClosure>>) -> Option<Vec<Closure>> {
    list.map(|l| {
        l.into_iter().map(|c| Closure { starts_on: c.starts_on, ends_on: c.ends_on, reason: c.reason }).collect()
    })
}

fn org_id(id: Option<&ID>, field: &str) -> Result<Option<i64>> {
    id.map(|id| ids::decode(id, organization::TYPE_NAME, field)).transpose().extend()
}

/// Service errors carry row ids; the client gets global IDs in the conflict extensions.
pub(crate) fn with_global_ids(err: AppError) -> async_graphql::Error {
    fn rewrite(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (raw, kind, key) in [
                    ("booking", BOOKING, "bookingId"),
                    ("space", SPACE, "spaceId"),
                    ("event", super::event::EVENT, "eventId"),
                ] {
                    if let Some(id) = map.remove(raw).and_then(|v| v.as_i64()) {
                        map.insert(key.into(), ids::encode(kind, id).to_string().into());
                    }
                }
                map.values_mut().for_each(rewrite);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    match err {
        AppError::ConflictDetailed { message, reason, mut details } => {
            rewrite(&mut details);
            AppError::ConflictDetailed { message, reason, details }.extend()
        }
        other => other.extend(),
    }
}

#[derive(Default)]
pub struct SpaceMutation;

#[Object]
impl SpaceMutation {
    /// Adds a space (managers).
    async fn create_space(&self, ctx: &Context<'_>, input: CreateSpaceInput) -> Result<SpacePayload> {
        let state = state(ctx)?;
        let record = spaces::create_space(
            state.ctx(),
            viewer(ctx),
            SpaceInput {
                name: Some(input.name),
                kind: Some(input.kind.into()),
                floor: input.floor,
                capacity: Some(input.capacity),
                description: input.description,
                equipment: input.equipment,
                photo_urls: input.photo_urls,
                requires_approval: input.requires_approval,
                time_zone: input.time_zone,
                hours: to_hours(input.opening_hours)?,
                closures: to_closures(input.closures),
                min_notice_minutes: input.min_notice_minutes,
                max_advance_days: input.max_advance_days,
                setup_minutes: input.setup_minutes,
                teardown_minutes: input.teardown_minutes,
                resident_organization_id: Some(org_id(
                    input.resident_organization_id.as_ref(),
                    "residentOrganizationId",
                )?),
            },
        )
        .await
        .extend()?;
        Ok(SpacePayload { space: Space(record) })
    }

    /// Changes a space (managers). Existing bookings stay as they are.
    async fn update_space(&self, ctx: &Context<'_>, input: UpdateSpaceInput) -> Result<SpacePayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, SPACE, "id").extend()?;
        let resident = match &input.resident_organization_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(org_id(Some(v), "residentOrganizationId")?),
        };
        let record = spaces::update_space(
            state.ctx(),
            viewer(ctx),
            id,
            SpaceInput {
                name: input.name,
                kind: input.kind.map(Into::into),
                floor: input.floor,
                capacity: input.capacity,
                description: input.description,
                equipment: input.equipment,
                photo_urls: input.photo_urls,
                requires_approval: input.requires_approval,
                time_zone: input.time_zone,
                hours: to_hours(input.opening_hours)?,
                closures: to_closures(input.closures),
                min_notice_minutes: input.min_notice_minutes,
                max_advance_days: input.max_advance_days,
                setup_minutes: input.setup_minutes,
                teardown_minutes: input.teardown_minutes,
                resident_organization_id: resident,
            },
        )
        .await
        .extend()?;
        Ok(SpacePayload { space: Space(record) })
    }

    /// Books a space. Confirmed at once, or PENDING when the space requires approval and the
    /// viewer is not staff. A clash is a CONFLICT whose extensions name what it collides with
    /// (`conflictsWith`) and suggest free slots of the same length (`suggestions` in the same
    /// space, `otherSpaces` in spaces that hold the attendees).
    async fn create_booking(&self, ctx: &Context<'_>, input: CreateBookingInput) -> Result<CreateBookingPayload> {
        let state = state(ctx)?;
        let viewer = viewer(ctx);
        viewer.require_book(None).extend()?;
        let organization_id = org_id(input.organization_id.as_ref(), "organizationId")?;
        let space_id = ids::decode(&input.space_id, SPACE, "spaceId").extend()?;
        let request = BookingRequest {
            space_id,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            attendees: input.attendees,
            purpose: input.purpose,
            organization_id,
            client_key: input.client_key,
            manager_note: input.manager_note,
        };
        let (booking, replayed) = service::book(state.ctx(), viewer, request).await.map_err(with_global_ids)?;
        Ok(CreateBookingPayload { booking: Booking(booking), replayed })
    }

    /// Confirms a pending booking (managers). Re-checks it; pending requests that now clash
    /// are rejected with a reason.
    async fn confirm_booking(&self, ctx: &Context<'_>, input: ConfirmBookingInput) -> Result<ConfirmBookingPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, BOOKING, "id").extend()?;
        let done = service::confirm_booking(state.ctx(), viewer(ctx), id, input.manager_note)
            .await
            .map_err(with_global_ids)?;
        Ok(ConfirmBookingPayload {
            booking: Booking(done.booking),
            rejected: done.rejected.into_iter().map(Booking).collect(),
        })
    }

    /// Rejects a pending booking with a reason (managers).
    async fn reject_booking(&self, ctx: &Context<'_>, input: DecideBookingInput) -> Result<BookingPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, BOOKING, "id").extend()?;
        let booking = service::reject_booking(state.ctx(), viewer(ctx), id, &input.reason, input.manager_note)
            .await
            .map_err(with_global_ids)?;
        Ok(BookingPayload { booking: Booking(booking) })
    }

    /// Cancels a pending or confirmed booking with a reason (the requester or managers); with
    /// a scope, also the following or all occurrences of its series.
    async fn cancel_booking(&self, ctx: &Context<'_>, input: CancelBookingInput) -> Result<CancelBookingPayload> {
        let state = state(ctx)?;
        let viewer = viewer(ctx);
        viewer.require_account().extend()?;
        let id = ids::decode(&input.id, BOOKING, "id").extend()?;
        let scope = match input.scope {
            CancelBookingScope::One => CancelScope::One,
            CancelBookingScope::ThisAndFollowing => CancelScope::ThisAndFollowing,
            CancelBookingScope::Series => CancelScope::Series,
        };
        let (booking, cancelled) =
            service::cancel_booking(state.ctx(), viewer, id, &input.reason, input.manager_note, scope)
                .await
                .map_err(with_global_ids)?;
        Ok(CancelBookingPayload { booking: Booking(booking), cancelled: cancelled.into_iter().map(Booking).collect() })
    }

    /// Books a space repeatedly (daily, weekly on weekdays, monthly), each occurrence checked
    /// like a single booking. With `onConflict: SKIP` occurrences that cannot be booked are
    /// returned in `skipped`; with `FAIL` any of them fails the whole request (CONFLICT,
    /// reason OCCURRENCES_UNAVAILABLE, `extensions.skipped`).
    async fn create_recurring_booking(
        &self,
        ctx: &Context<'_>,
        input: CreateRecurringBookingInput,
    ) -> Result<CreateRecurringBookingPayload> {
        let state = state(ctx)?;
        let viewer = viewer(ctx);
        viewer.require_book(None).extend()?;
        let organization_id = org_id(input.organization_id.as_ref(), "organizationId")?;
        let space_id = ids::decode(&input.space_id, SPACE, "spaceId").extend()?;
        let r = input.recurrence;
        let rule = Recurrence {
            frequency: r.frequency.into(),
            interval: r.interval,
            weekdays: r.weekdays.into_iter().map(Into::into).collect(),
            until: r.until,
            count: r.count,
        };
        let on_conflict = match input.on_conflict {
            RecurrenceConflictMode::Skip => OnConflict::Skip,
            RecurrenceConflictMode::Fail => OnConflict::Fail,
        };
        let created = service::book_recurring(
            state.ctx(),
            viewer,
            BookingRequest {
                space_id,
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                attendees: input.attendees,
                purpose: input.purpose,
                organization_id,
                client_key: None,
                manager_note: input.manager_note,
            },
            rule.clone(),
            on_conflict,
        )
        .await
        .map_err(with_global_ids)?;
        let series = &created.series;
        Ok(CreateRecurringBookingPayload {
            series: BookingSeries {
                id: ids::encode(SERIES, series.id),
                frequency: series.frequency.into(),
                interval: series.interval,
                weekdays: rule.weekdays.iter().map(|d| (*d).into()).collect(),
                until: series.until,
                count: series.count,
            },
            bookings: created.bookings.into_iter().map(Booking).collect(),
            skipped: created
                .skipped
                .into_iter()
                .map(|s| SkippedOccurrence {
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    reason: s.reason.to_owned(),
                    message: s.message,
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------- subscriptions

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

fn time_in(payload: &serde_json::Value, key: &str) -> Option<DateTime<Utc>> {
    payload.get(key).and_then(serde_json::Value::as_str).and_then(|t| t.parse().ok())
}

/// Whether `e` is a change of space `space_id`'s bookings within `[from, to)` that `viewer`
/// may see: confirmations and rooms released are public; requests, rejections and the
/// cancellation of a request are for the requester and staff.
fn calendar_change(
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
        let id = ids::decode(&space_id, SPACE, "spaceId").extend()?;
        if to <= from || (to - from).num_days() > service::MAX_CALENDAR_DAYS {
            return Err(AppError::bad_input("to", "`to` is after `from`, at most 62 days later").extend());
        }
        let state = state(ctx)?.clone();
        let after = super::audit::resume(&state, after).await?;
        if spaces::find(&state.db, id).await.extend()?.is_none() {
            return Err(AppError::NotFound("space".into()).extend());
        }
        let viewer = viewer(ctx).clone();
        let (_, changes) = crate::events::live::events(&state.log, state.db.clone(), after, move |e| {
            calendar_change(&viewer, e, id, from, to)
        })
        .await
        .map_err(|e| e.extend())?;
        let db = state.db.clone();
        Ok(futures::StreamExt::filter_map(changes, move |e| {
            let db = db.clone();
            async move {
                match service::find(&db, e.aggregate_id).await {
                    Ok(Some(booking)) => Some(SpaceCalendarChange {
                        cursor: crate::events::Position::of(&e).cursor(),
                        event_type: e.event_type.clone(),
                        event_id: ids::encode(super::audit::AUDIT_ENTRY, e.id),
                        booking: Booking(booking),
                    }),
                    Ok(None) => None,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read a booking for a subscriber");
                        None
                    }
                }
            }
        }))
    }
}

//! Space queries: spaces, availability, bookings and calendars.
#[allow(unused_imports)]
use super::*;
use crate::graphql::common::payload;

#[derive(Default)]
pub struct SpaceQuery;

#[Object]
impl SpaceQuery {
    /// A space by ID; `null` when there is none.
    async fn space(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Space>> {
        let id = ids::decode(&id, SPACE, "id")?;
        Ok(Loaders::of(ctx)?.space.get(id).await?.map(Space))
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
        let filter = filter.unwrap_or_default();
        let service_filter = ServiceFilter {
            kinds: filter.kind.unwrap_or_default().into_iter().map(Into::into).collect(),
            min_capacity: filter.min_capacity,
            available_between: filter.available_between.map(|r| (r.from, r.to)),
        };
        connection::list(ctx, connection::args(first, after, last, before), Space, async |db, page| {
            spaces::list(db, &service_filter, page).await
        })
        .await
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
        let ids = ids::decode_all(&space_ids, SPACE, "spaceIds")?;
        let found = service::availability(&state(ctx)?.db, &ids, from, to, duration_minutes).await.extend()?;
        if let Some(until) = found.holds_until {
            ResponseTags::holds_until(ctx, until);
        }
        // A space asked for and not found is absent until a space write (the family's tag).
        if found.spaces.len() < ids.len() {
            ResponseTags::missing(ctx, Family::Space);
        }
        Ok(found
            .spaces
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
        let account = viewer(ctx).require_account().extend()?;
        connection::list(ctx, connection::args(first, after, last, before), Booking, async |db, page| {
            service::of_account(db, account.id, page).await
        })
        .await
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
        viewer(ctx).require_decide_bookings().extend()?;
        connection::list(ctx, connection::args(first, after, last, before), Booking, async |db, page| {
            service::requests(db, status.map(Into::into).unwrap_or(EntityStatus::Pending), page).await
        })
        .await
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

payload!(SpacePayload { space: Space });

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

payload!(BookingPayload { booking: Booking });

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

pub(super) fn to_hours(periods: Option<Vec<OpeningPeriodInput>>) -> Result<Option<Vec<OpeningHours>>> {
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

pub(super) fn to_closures(list: Option<Vec<SpaceClosure>>) -> Option<Vec<Closure>> {
    list.map(|l| {
        l.into_iter().map(|c| Closure { starts_on: c.starts_on, ends_on: c.ends_on, reason: c.reason }).collect()
    })
}

pub(super) fn org_id(id: Option<&ID>, field: &str) -> Result<Option<i64>> {
    ids::decode_optional(id, ids::ORGANIZATION, field)
}

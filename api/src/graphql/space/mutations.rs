//! Space and booking mutations: resolvers decode, call the service command and map.
#[allow(unused_imports)]
use super::*;
use crate::auth::Viewer;

/// The service's `SpaceInput` from a create or an update input: the fields both inputs carry
/// alike are taken over (in this order, so a bad value fails as it always did), the others are
/// given.
macro_rules! space_input {
    ($input:ident { $($field:ident: $value:expr),* $(,)? }) => {
        SpaceInput {
            floor: $input.floor,
            description: $input.description,
            equipment: $input.equipment,
            photo_urls: $input.photo_urls,
            requires_approval: $input.requires_approval,
            time_zone: $input.time_zone,
            hours: to_hours($input.opening_hours)?,
            closures: to_closures($input.closures),
            min_notice_minutes: $input.min_notice_minutes,
            max_advance_days: $input.max_advance_days,
            setup_minutes: $input.setup_minutes,
            teardown_minutes: $input.teardown_minutes,
            $($field: $value,)*
        }
    };
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
            space_input!(input {
                name: Some(input.name),
                kind: Some(input.kind.into()),
                capacity: Some(input.capacity),
                resident_organization_id: Some(org_id(
                    input.resident_organization_id.as_ref(),
                    "residentOrganizationId"
                )?),
            }),
        )
        .await
        .extend()?;
        Ok(SpacePayload { space: Space(record) })
    }

    /// Changes a space (managers). Existing bookings stay as they are.
    async fn update_space(&self, ctx: &Context<'_>, input: UpdateSpaceInput) -> Result<SpacePayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, SPACE, "id")?;
        let resident = match &input.resident_organization_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(org_id(Some(v), "residentOrganizationId")?),
        };
        let record = spaces::update_space(
            state.ctx(),
            viewer(ctx),
            id,
            space_input!(input {
                name: input.name,
                kind: input.kind.map(Into::into),
                capacity: input.capacity,
                resident_organization_id: resident,
            }),
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
        let request = booking_request(viewer, input)?;
        let (booking, replayed) = service::book(state.ctx(), viewer, request).await.extend()?;
        Ok(CreateBookingPayload { booking: Booking(booking), replayed })
    }

    /// Confirms a pending booking (managers). Re-checks it; pending requests that now clash
    /// are rejected with a reason.
    async fn confirm_booking(&self, ctx: &Context<'_>, input: ConfirmBookingInput) -> Result<ConfirmBookingPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, BOOKING, "id")?;
        let done = service::confirm_booking(state.ctx(), viewer(ctx), id, input.manager_note).await.extend()?;
        Ok(ConfirmBookingPayload {
            booking: Booking(done.booking),
            rejected: done.rejected.into_iter().map(Booking).collect(),
        })
    }

    /// Rejects a pending booking with a reason (managers).
    async fn reject_booking(&self, ctx: &Context<'_>, input: DecideBookingInput) -> Result<BookingPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, BOOKING, "id")?;
        let booking =
            service::reject_booking(state.ctx(), viewer(ctx), id, &input.reason, input.manager_note).await.extend()?;
        Ok(BookingPayload { booking: Booking(booking) })
    }

    /// Cancels a pending or confirmed booking with a reason (the requester or managers); with
    /// a scope, also the following or all occurrences of its series.
    async fn cancel_booking(&self, ctx: &Context<'_>, input: CancelBookingInput) -> Result<CancelBookingPayload> {
        let state = state(ctx)?;
        let viewer = viewer(ctx);
        viewer.require_account().extend()?;
        let id = ids::decode(&input.id, BOOKING, "id")?;
        let scope = match input.scope {
            CancelBookingScope::One => CancelScope::One,
            CancelBookingScope::ThisAndFollowing => CancelScope::ThisAndFollowing,
            CancelBookingScope::Series => CancelScope::Series,
        };
        let (booking, cancelled) =
            service::cancel_booking(state.ctx(), viewer, id, &input.reason, input.manager_note, scope)
                .await
                .extend()?;
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
        let CreateRecurringBookingInput {
            space_id,
            starts_at,
            ends_at,
            attendees,
            purpose,
            organization_id,
            recurrence: r,
            on_conflict,
            manager_note,
        } = input;
        let one = CreateBookingInput {
            space_id,
            starts_at,
            ends_at,
            attendees,
            purpose,
            organization_id,
            client_key: None,
            manager_note,
        };
        let request = booking_request(viewer, one)?;
        let rule = Recurrence {
            frequency: r.frequency.into(),
            interval: r.interval,
            weekdays: r.weekdays.into_iter().map(Into::into).collect(),
            until: r.until,
            count: r.count,
        };
        let on_conflict = match on_conflict {
            RecurrenceConflictMode::Skip => OnConflict::Skip,
            RecurrenceConflictMode::Fail => OnConflict::Fail,
        };
        let created =
            service::book_recurring(state.ctx(), viewer, request, rule.clone(), on_conflict).await.extend()?;
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

/// What both booking mutations ask the service for, once the viewer may book.
fn booking_request(viewer: &Viewer, input: CreateBookingInput) -> Result<BookingRequest> {
    viewer.require_book(None).extend()?;
    Ok(BookingRequest {
        organization_id: org_id(input.organization_id.as_ref(), "organizationId")?,
        space_id: ids::decode(&input.space_id, SPACE, "spaceId")?,
        starts_at: input.starts_at,
        ends_at: input.ends_at,
        attendees: input.attendees,
        purpose: input.purpose,
        client_key: input.client_key,
        manager_note: input.manager_note,
    })
}

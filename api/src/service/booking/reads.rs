//! Booking reads: lists and calendars.
#[allow(unused_imports)]
use super::*;

pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<booking::Model>> {
    Ok(booking::Entity::find_by_id(id).one(db).await?)
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<booking::Model>> {
    crate::service::common::rows_by_ids(db, booking::Column::Id, ids).await
}

pub async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<booking::Model> {
    find(db, id).await?.ok_or_else(|| AppError::NotFound("booking".into()))
}

pub(super) fn check_window(from: DateTime<Utc>, to: DateTime<Utc>, max_days: i64) -> AppResult<()> {
    if to <= from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    if to - from > Duration::days(max_days) {
        return Err(AppError::bad_input("to", format!("the window is at most {max_days} days")));
    }
    Ok(())
}

/// Confirmed bookings of a space overlapping `from..to`, in time order.
pub async fn calendar(
    db: &impl ConnectionTrait,
    space_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<booking::Model>> {
    check_window(from, to, MAX_CALENDAR_DAYS)?;
    Ok(booking::Entity::find()
        .filter(booking::Column::SpaceId.eq(space_id))
        .filter(booking::Column::Status.eq(BookingStatus::Confirmed))
        .filter(booking::Column::StartsAt.lt(to))
        .filter(booking::Column::EndsAt.gt(from))
        .order_by_asc(booking::Column::StartsAt)
        .order_by_asc(booking::Column::Id)
        .all(db)
        .await?)
}

/// A free window: its first start and the last end of a booking inside it.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// Free windows per space, in the order asked, as computed at one instant.
pub struct Availability {
    pub spaces: Vec<(SpaceRecord, Vec<Window>)>,
    /// Until this instant the same bookings give the same answer (see
    /// [`space::windows_hold_until`]); `None` when no space was found, which no clock changes.
    pub holds_until: Option<DateTime<Utc>>,
}

/// Free windows per space where a booking of `duration` fits.
pub async fn availability(
    db: &impl ConnectionTrait,
    space_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration_minutes: i32,
) -> AppResult<Availability> {
    check_window(from, to, MAX_AVAILABILITY_DAYS)?;
    if space_ids.is_empty() || space_ids.len() > MAX_AVAILABILITY_SPACES {
        return Err(AppError::bad_input("spaceIds", format!("ask for 1 to {MAX_AVAILABILITY_SPACES} spaces")));
    }
    if !(space::SLOT_STEP_MINUTES as i32..=1440).contains(&duration_minutes) {
        return Err(AppError::bad_input("durationMinutes", "durationMinutes is between 15 and 1440"));
    }
    let duration = Duration::minutes(duration_minutes.into());
    // Two independent reads: the spaces and the window's blocked intervals, at once.
    let (spaces, blocked) = futures::try_join!(
        space::find_by_ids(db, space_ids),
        blocked_intervals(db, space_ids, from - Duration::days(1), to + Duration::days(1)),
    )?;
    let now = crate::service::now();
    let mut out: Vec<_> = spaces
        .into_iter()
        .map(|s| {
            let windows = space::free_windows(
                &s,
                from,
                to,
                duration,
                now,
                blocked.get(&s.space.id).map(Vec::as_slice).unwrap_or(&[]),
            );
            (s, windows)
        })
        .collect();
    out.sort_by_key(|(s, _)| space_ids.iter().position(|id| *id == s.space.id));
    let holds_until = out.iter().map(|(s, _)| space::windows_hold_until(s, now)).min();
    Ok(Availability { spaces: out, holds_until })
}

pub async fn of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    page: PageRequest<'_>,
) -> AppResult<Page<booking::Model>> {
    let select = booking::Entity::find().filter(booking::Column::BookedByAccountId.eq(account_id));
    let key = SortKey::<booking::Entity>::time(booking::Column::StartsAt, booking::Column::Id, SortDirection::Desc);
    pagination::paginate(db, select, &key, page).await
}

/// Bookings in `status`, oldest request first: the managers' queue.
pub async fn requests(
    db: &impl ConnectionTrait,
    status: BookingStatus,
    page: PageRequest<'_>,
) -> AppResult<Page<booking::Model>> {
    let select = booking::Entity::find().filter(booking::Column::Status.eq(status));
    let key = SortKey::<booking::Entity>::time(booking::Column::CreatedAt, booking::Column::Id, SortDirection::Asc);
    pagination::paginate(db, select, &key, page).await
}

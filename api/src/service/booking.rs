//! Bookings of spaces: requests, approval, cancellation, and the guarantee that no two
//! confirmed bookings of one space overlap (buffers included).
//!
//! The guarantee is the database's: an exclusion constraint over confirmed rows on
//! PostgreSQL, triggers on SQLite. The checks in here come first only to answer with a useful
//! error (what it collides with, nearby free slots); when two writers race, the loser's
//! constraint violation is turned into the same `CONFLICT`.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::booking::{self, BookingStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, RuntimeErr, Set, SqlErr, TransactionTrait,
};
use serde_json::json;

use super::pagination::{self, Page, PageArgs, SortDirection, SortKey, SortValue};
use super::space::{self, CheckAt, SpaceRecord, blocked_intervals};
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::optional_text;

/// Cache tag of every calendar read; bumped by every booking change.
const CACHE_TAG: &str = crate::tags::BOOKINGS;
pub const MAX_CALENDAR_DAYS: i64 = 62;
pub const MAX_AVAILABILITY_DAYS: i64 = 31;
pub const MAX_AVAILABILITY_SPACES: usize = 20;
/// How far around the requested time conflict suggestions look.
const SUGGEST_WITHIN_DAYS: i64 = 14;
const SUGGESTIONS: usize = 3;

#[derive(Clone, Debug)]
pub struct BookingRequest {
    pub space_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub attendees: i32,
    pub purpose: Option<String>,
    pub organization_id: Option<i64>,
    pub client_key: Option<String>,
    pub manager_note: Option<String>,
}

/// Who books, as the service needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct Booker {
    pub account_id: i64,
    /// Staff bookings are confirmed at once, also in spaces that need approval.
    pub is_staff: bool,
}

// ---------------------------------------------------------------- commands

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

fn created_kind(b: &booking::Model) -> EventKind {
    if b.status == BookingStatus::Confirmed { EventKind::BookingConfirmed } else { EventKind::BookingRequested }
}

/// Command: a signed-in account books a space for itself, or for an organization it belongs
/// to (staff for anyone). Partner keys alone cannot book.
pub async fn book(ctx: Ctx<'_>, viewer: &Viewer, request: BookingRequest) -> AppResult<(booking::Model, bool)> {
    let account = viewer.require_book(request.organization_id)?;
    let booker = Booker { account_id: account.id, is_staff: viewer.is_staff() };
    let actor = Actor::of(viewer);
    retry_transient(|| create(ctx, &actor, booker, request.clone())).await
}

/// Command: books a space repeatedly, each occurrence checked like a single booking.
pub async fn book_recurring(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    request: BookingRequest,
    rule: super::recurrence::Recurrence,
    on_conflict: OnConflict,
) -> AppResult<CreatedSeries> {
    let account = viewer.require_book(request.organization_id)?;
    let booker = Booker { account_id: account.id, is_staff: viewer.is_staff() };
    let actor = Actor::of(viewer);
    retry_transient(|| create_recurring(ctx, &actor, booker, request.clone(), rule.clone(), on_conflict)).await
}

/// Command: a manager confirms a pending booking; pending requests that now clash are rejected.
pub async fn confirm_booking(ctx: Ctx<'_>, viewer: &Viewer, id: i64, note: Option<String>) -> AppResult<Confirmed> {
    let account = viewer.require_decide_bookings()?;
    let actor = Actor::of(viewer);
    retry_transient(|| confirm(ctx, &actor, id, account.id, note.clone())).await
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
    let actor = Actor::of(viewer);
    retry_transient(|| reject(ctx, &actor, id, account.id, reason, note.clone())).await
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
    let actor = Actor::of(viewer);
    retry_transient(|| cancel_scoped(ctx, &actor, id, account.id, reason, note.clone(), scope)).await
}

// ---------------------------------------------------------------- reads

pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<booking::Model>> {
    Ok(booking::Entity::find_by_id(id).one(db).await?)
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<booking::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(booking::Entity::find().filter(booking::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

pub async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<booking::Model> {
    find(db, id).await?.ok_or_else(|| AppError::NotFound("booking".into()))
}

fn check_window(from: DateTime<Utc>, to: DateTime<Utc>, max_days: i64) -> AppResult<()> {
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

/// Free windows per space where a booking of `duration` fits.
pub async fn availability(
    db: &impl ConnectionTrait,
    space_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration_minutes: i32,
) -> AppResult<Vec<(SpaceRecord, Vec<(DateTime<Utc>, DateTime<Utc>)>)>> {
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
    let now = super::now();
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
    Ok(out)
}

pub async fn of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<booking::Model>> {
    let select = booking::Entity::find().filter(booking::Column::BookedByAccountId.eq(account_id));
    let key: SortKey<booking::Entity> = SortKey {
        column: booking::Column::StartsAt,
        id: booking::Column::Id,
        direction: SortDirection::Desc,
        value_of: |m| (SortValue::Time(m.starts_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, select, &key, args, limits, with_total).await
}

/// Bookings in `status`, oldest request first: the managers' queue.
pub async fn requests(
    db: &impl ConnectionTrait,
    status: BookingStatus,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<booking::Model>> {
    let select = booking::Entity::find().filter(booking::Column::Status.eq(status));
    let key: SortKey<booking::Entity> = SortKey {
        column: booking::Column::CreatedAt,
        id: booking::Column::Id,
        direction: SortDirection::Asc,
        value_of: |m| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, select, &key, args, limits, with_total).await
}

// ---------------------------------------------------------------- conflicts

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
async fn lock_space(db: &impl ConnectionTrait, space_id: i64) -> AppResult<()> {
    entity::space::Entity::find_by_id(space_id).lock_exclusive().one(db).await?;
    Ok(())
}

async fn overlapping_confirmed(
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

fn slot_json(space: &SpaceRecord, start: DateTime<Utc>, end: DateTime<Utc>) -> serde_json::Value {
    json!({ "space": space.space.id, "spaceName": space.space.name, "startsAt": start, "endsAt": end })
}

/// Nearest starts to `start` (outward, both directions) where `start..start+length` fits.
#[allow(clippy::too_many_arguments)]
fn nearest_fits(
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
async fn conflict_error(
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
    let now = super::now();

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
    Ok(AppError::ConflictDetailed {
        message,
        reason: "BOOKING_OVERLAP",
        details: json!({
            "conflictsWith": collisions.iter().map(|b| json!({
                "booking": b.id, "event": b.event_id, "startsAt": b.starts_at, "endsAt": b.ends_at,
                "blockedFrom": b.blocked_start, "blockedUntil": b.blocked_end,
            })).collect::<Vec<_>>(),
            "suggestions": same_space.iter().map(|(s, _)| slot_json(space, *s, *s + length)).collect::<Vec<_>>(),
            "otherSpaces": elsewhere.iter().take(SUGGESTIONS)
                .map(|(_, _, other, s)| slot_json(other, *s, *s + length)).collect::<Vec<_>>(),
        }),
    })
}

// ---------------------------------------------------------------- writes

fn required_reason(value: &str) -> AppResult<String> {
    optional_text("reason", Some(value.to_owned()), 500)?
        .ok_or_else(|| AppError::bad_input("reason", "a reason is required"))
}

/// What a replay of the same client key must match.
fn request_digest(r: &BookingRequest, purpose: &Option<String>) -> String {
    let body = json!([r.space_id, r.starts_at, r.ends_at, r.attendees, purpose, r.organization_id]);
    super::identity::sha256_hex(&body.to_string())
}

async fn replay(
    db: &impl ConnectionTrait,
    account_id: i64,
    key: &str,
    digest: &str,
) -> AppResult<Option<booking::Model>> {
    let existing = booking::Entity::find()
        .filter(booking::Column::BookedByAccountId.eq(account_id))
        .filter(booking::Column::ClientKey.eq(key))
        .one(db)
        .await?;
    match existing {
        Some(b) if b.request_digest.as_deref() == Some(digest) => Ok(Some(b)),
        Some(_) => Err(AppError::ConflictDetailed {
            message: "this clientKey was already used for a different booking request".into(),
            reason: "CLIENT_KEY_REUSED",
            details: json!({}),
        }),
        None => Ok(None),
    }
}

/// Creates a booking: `CONFIRMED`, or `PENDING` when the space needs approval and the booker
/// is not staff. Returns the booking and whether it is a replay of an earlier request with
/// the same client key.
pub async fn create(
    ctx: Ctx<'_>,
    actor: &Actor,
    booker: Booker,
    request: BookingRequest,
) -> AppResult<(booking::Model, bool)> {
    let db = ctx.db;
    let now = super::now();
    let purpose = optional_text("purpose", request.purpose.clone(), 500)?;
    if purpose.is_none() && request.organization_id.is_none() {
        return Err(AppError::rule(
            "purpose",
            "PURPOSE_REQUIRED",
            "say what the booking is for, or for which organization",
        ));
    }
    let manager_note = optional_text("managerNote", request.manager_note.clone(), 2000)?;
    if manager_note.is_some() && !booker.is_staff {
        return Err(AppError::Forbidden("only staff write manager notes".into()));
    }
    let client_key = optional_text("clientKey", request.client_key.clone(), 100)?;
    let digest = request_digest(&request, &purpose);
    if let Some(key) = &client_key
        && let Some(first) = replay(db, booker.account_id, key, &digest).await?
    {
        return Ok((first, true));
    }

    let space = space::load(db, request.space_id).await?;
    if let Some(org) = request.organization_id
        && entity::organization::Entity::find_by_id(org).one(db).await?.is_none()
    {
        return Err(AppError::NotFound("organization".into()));
    }
    space::check_rules(&space, request.starts_at, request.ends_at, request.attendees, now, CheckAt::Request)?;
    let status = if space.space.requires_approval && !booker.is_staff {
        BookingStatus::Pending
    } else {
        BookingStatus::Confirmed
    };
    let (blocked_start, blocked_end) = space.blocked_range(request.starts_at, request.ends_at);

    let txn = db.begin().await?;
    if status == BookingStatus::Confirmed {
        lock_space(&txn, space.space.id).await?;
    }
    // Again inside the transaction: a copy of this request may have committed meanwhile.
    if let Some(key) = &client_key
        && let Some(first) = replay(&txn, booker.account_id, key, &digest).await?
    {
        txn.rollback().await?;
        return Ok((first, true));
    }
    // A request clashing with a confirmed booking is refused at once, pending or not —
    // unless what it clashes with is a copy of itself that committed meanwhile.
    if !overlapping_confirmed(&txn, space.space.id, (blocked_start, blocked_end), None).await?.is_empty() {
        txn.rollback().await?;
        if let Some(key) = &client_key
            && let Some(first) = replay(db, booker.account_id, key, &digest).await?
        {
            return Ok((first, true));
        }
        return Err(conflict_error(db, &space, request.starts_at, request.ends_at, request.attendees, None).await?);
    }
    let inserted = booking::ActiveModel {
        space_id: Set(space.space.id),
        booked_by_account_id: Set(booker.account_id),
        organization_id: Set(request.organization_id),
        purpose: Set(purpose.unwrap_or_default()),
        attendees: Set(request.attendees),
        starts_at: Set(request.starts_at),
        ends_at: Set(request.ends_at),
        blocked_start: Set(blocked_start),
        blocked_end: Set(blocked_end),
        status: Set(status),
        status_reason: Set(None),
        manager_note: Set(manager_note.unwrap_or_default()),
        client_key: Set(client_key.clone()),
        request_digest: Set(client_key.as_ref().map(|_| digest.clone())),
        series_id: Set(None),
        decided_by_account_id: Set((status == BookingStatus::Confirmed).then_some(booker.account_id)),
        decided_at: Set((status == BookingStatus::Confirmed).then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(err) => {
            txn.rollback().await.ok();
            // The same request may have raced itself (a client retrying before the first
            // answer): whichever constraint refused this copy, the first one's booking is the
            // answer. Checked before the overlap, which the first copy also causes.
            if let Some(key) = &client_key
                && (is_overlap_violation(&err) || matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
                && let Some(first) = replay(db, booker.account_id, key, &digest).await?
            {
                return Ok((first, true));
            }
            if is_overlap_violation(&err) {
                return Err(
                    conflict_error(db, &space, request.starts_at, request.ends_at, request.attendees, None).await?
                );
            }
            return Err(err.into());
        }
    };
    ctx.commit(txn, actor, vec![booking_event(created_kind(&row), &row)]).await?;
    Ok((row, false))
}

/// What confirming a booking did.
pub struct Confirmed {
    pub booking: booking::Model,
    /// Pending requests that clashed with it and were rejected.
    pub rejected: Vec<booking::Model>,
}

pub async fn confirm(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    decided_by: i64,
    note: Option<String>,
) -> AppResult<Confirmed> {
    let db = ctx.db;
    let note = optional_text("managerNote", note, 2000)?;
    let now = super::now();
    let txn = db.begin().await?;
    let space_id = load(&txn, id).await?.space_id;
    lock_space(&txn, space_id).await?;
    // Read after the lock: a confirmation that held it may have decided this one.
    let current = load(&txn, id).await?;
    if current.status != BookingStatus::Pending {
        return Err(wrong_status(&current, "confirm"));
    }
    let space = space::load(&txn, current.space_id).await?;
    space::check_rules(&space, current.starts_at, current.ends_at, current.attendees, now, CheckAt::Decision)?;
    // Buffers may have changed since the request.
    let (blocked_start, blocked_end) = space.blocked_range(current.starts_at, current.ends_at);
    if !overlapping_confirmed(&txn, space.space.id, (blocked_start, blocked_end), Some(id)).await?.is_empty() {
        txn.rollback().await?;
        return Err(conflict_error(db, &space, current.starts_at, current.ends_at, current.attendees, Some(id)).await?);
    }
    let mut update = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::val(BookingStatus::Confirmed))
        .col_expr(booking::Column::BlockedStart, Expr::val(blocked_start))
        .col_expr(booking::Column::BlockedEnd, Expr::val(blocked_end))
        .col_expr(booking::Column::DecidedByAccountId, Expr::val(decided_by))
        .col_expr(booking::Column::DecidedAt, Expr::val(now))
        .col_expr(booking::Column::UpdatedAt, Expr::val(now));
    if let Some(note) = note {
        update = update.col_expr(booking::Column::ManagerNote, Expr::val(note));
    }
    let updated = update
        .filter(booking::Column::Id.eq(id))
        .filter(booking::Column::Status.eq(BookingStatus::Pending))
        .exec(&txn)
        .await;
    match updated {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => return Err(AppError::Conflict("the booking was decided meanwhile; reload it".into())),
        Err(err) if is_overlap_violation(&err) => {
            txn.rollback().await.ok();
            return Err(
                conflict_error(db, &space, current.starts_at, current.ends_at, current.attendees, Some(id)).await?
            );
        }
        Err(err) => return Err(err.into()),
    }
    let clashing = booking::Entity::find()
        .filter(booking::Column::SpaceId.eq(space.space.id))
        .filter(booking::Column::Status.eq(BookingStatus::Pending))
        .filter(booking::Column::Id.ne(id))
        .filter(booking::Column::BlockedStart.lt(blocked_end))
        .filter(booking::Column::BlockedEnd.gt(blocked_start))
        .all(&txn)
        .await?;
    let reason = format!(
        "{} was given to another booking from {} to {}",
        space.space.name,
        current.starts_at.to_rfc3339(),
        current.ends_at.to_rfc3339()
    );
    let clashing_ids: Vec<i64> = clashing.iter().map(|b| b.id).collect();
    if !clashing_ids.is_empty() {
        booking::Entity::update_many()
            .col_expr(booking::Column::Status, Expr::val(BookingStatus::Rejected))
            .col_expr(booking::Column::StatusReason, Expr::val(reason.clone()))
            .col_expr(booking::Column::DecidedByAccountId, Expr::val(decided_by))
            .col_expr(booking::Column::DecidedAt, Expr::val(now))
            .col_expr(booking::Column::UpdatedAt, Expr::val(now))
            .filter(booking::Column::Id.is_in(clashing_ids.clone()))
            .filter(booking::Column::Status.eq(BookingStatus::Pending))
            .exec(&txn)
            .await?;
    }
    let booking = load(&txn, id).await?;
    let rejected = booking::Entity::find().filter(booking::Column::Id.is_in(clashing_ids)).all(&txn).await?;
    let mut events = vec![booking_event(EventKind::BookingConfirmed, &booking)];
    events.extend(rejected.iter().map(|b| booking_event(EventKind::BookingRejected, b)));
    ctx.commit(txn, actor, events).await?;
    Ok(Confirmed { booking, rejected })
}

fn wrong_status(b: &booking::Model, action: &str) -> AppError {
    use sea_orm::ActiveEnum;
    AppError::ConflictDetailed {
        message: format!("cannot {action} a booking that is {}", b.status.to_value()),
        reason: "WRONG_STATUS",
        details: json!({ "status": b.status.to_value() }),
    }
}

/// Moves a booking from one of `from` to `to` with a reason.
#[allow(clippy::too_many_arguments)]
async fn decide(
    ctx: Ctx<'_>,
    actor: &Actor,
    kind: EventKind,
    id: i64,
    from: &[BookingStatus],
    to: BookingStatus,
    action: &str,
    by: i64,
    reason: &str,
    note: Option<String>,
) -> AppResult<booking::Model> {
    let reason = required_reason(reason)?;
    let note = optional_text("managerNote", note, 2000)?;
    let now = super::now();
    let txn = ctx.db.begin().await?;
    let current = load(&txn, id).await?;
    if !from.contains(&current.status) {
        return Err(wrong_status(&current, action));
    }
    let mut update = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::val(to))
        .col_expr(booking::Column::StatusReason, Expr::val(reason))
        .col_expr(booking::Column::DecidedByAccountId, Expr::val(by))
        .col_expr(booking::Column::DecidedAt, Expr::val(now))
        .col_expr(booking::Column::UpdatedAt, Expr::val(now));
    if let Some(note) = note {
        update = update.col_expr(booking::Column::ManagerNote, Expr::val(note));
    }
    let updated =
        update.filter(booking::Column::Id.eq(id)).filter(booking::Column::Status.eq(current.status)).exec(&txn).await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict("the booking changed meanwhile; reload it".into()));
    }
    let row = load(&txn, id).await?;
    let event = if kind == EventKind::BookingCancelled {
        cancelled_event(current.status, &row)
    } else {
        booking_event(kind, &row)
    };
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(row)
}

pub async fn reject(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    by: i64,
    reason: &str,
    note: Option<String>,
) -> AppResult<booking::Model> {
    let pending = &[BookingStatus::Pending];
    decide(ctx, actor, EventKind::BookingRejected, id, pending, BookingStatus::Rejected, "reject", by, reason, note)
        .await
}

/// Cancels a pending or confirmed booking that has not ended yet.
pub async fn cancel(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    by: i64,
    reason: &str,
    note: Option<String>,
) -> AppResult<booking::Model> {
    let current = load(ctx.db, id).await?;
    if current.event_id.is_some() {
        return Err(AppError::refused(
            "EVENT_RESERVATION",
            "this booking holds the room for an event: move or cancel the event instead",
        ));
    }
    if current.ends_at <= super::now() {
        return Err(AppError::rule("id", "ALREADY_OVER", "a booking that is over cannot be cancelled"));
    }
    decide(
        ctx,
        actor,
        EventKind::BookingCancelled,
        id,
        &[BookingStatus::Pending, BookingStatus::Confirmed],
        BookingStatus::Cancelled,
        "cancel",
        by,
        reason,
        note,
    )
    .await
}

// ---------------------------------------------------------------- recurring bookings

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Book the occurrences that can be booked; report the others.
    Skip,
    /// Book all or nothing.
    Fail,
}

/// An occurrence that was not booked, and why.
#[derive(Clone, Debug)]
pub struct SkippedOccurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: &'static str,
    pub message: String,
}

pub struct CreatedSeries {
    pub series: entity::booking_series::Model,
    pub bookings: Vec<booking::Model>,
    pub skipped: Vec<SkippedOccurrence>,
}

fn skipped_json(skipped: &[SkippedOccurrence]) -> serde_json::Value {
    json!(
        skipped
            .iter()
            .map(|s| json!({ "startsAt": s.starts_at, "endsAt": s.ends_at, "reason": s.reason, "message": s.message }))
            .collect::<Vec<_>>()
    )
}

/// Books every occurrence of `request` under `rule`, each checked like a single booking, in
/// one transaction. Each insert runs in a savepoint, so an occurrence that loses a race to a
/// concurrent booking is skipped (or fails the whole series) like one that clashed up front.
pub async fn create_recurring(
    ctx: Ctx<'_>,
    actor: &Actor,
    booker: Booker,
    request: BookingRequest,
    rule: super::recurrence::Recurrence,
    on_conflict: OnConflict,
) -> AppResult<CreatedSeries> {
    use entity::booking_series;
    let db = ctx.db;
    let now = super::now();
    let purpose = optional_text("purpose", request.purpose.clone(), 500)?;
    if purpose.is_none() && request.organization_id.is_none() {
        return Err(AppError::rule(
            "purpose",
            "PURPOSE_REQUIRED",
            "say what the booking is for, or for which organization",
        ));
    }
    let manager_note = optional_text("managerNote", request.manager_note.clone(), 2000)?;
    if manager_note.is_some() && !booker.is_staff {
        return Err(AppError::Forbidden("only staff write manager notes".into()));
    }
    let space = space::load(db, request.space_id).await?;
    if let Some(org) = request.organization_id
        && entity::organization::Entity::find_by_id(org).one(db).await?.is_none()
    {
        return Err(AppError::NotFound("organization".into()));
    }
    // The first occurrence's own shape (order, length, whole minutes) is checked up front.
    if request.ends_at <= request.starts_at {
        space::check_rules(&space, request.starts_at, request.ends_at, request.attendees, now, CheckAt::Request)?;
    }
    let occurrences = super::recurrence::expand(&rule, space.zone(), request.starts_at, request.ends_at)?;
    if occurrences.is_empty() {
        return Err(AppError::rule("recurrence", "NO_OCCURRENCES", "the recurrence produces no occurrence"));
    }
    let status = if space.space.requires_approval && !booker.is_staff {
        BookingStatus::Pending
    } else {
        BookingStatus::Confirmed
    };

    let txn = db.begin().await?;
    if status == BookingStatus::Confirmed {
        lock_space(&txn, space.space.id).await?;
    }
    let series = booking_series::ActiveModel {
        space_id: Set(space.space.id),
        booked_by_account_id: Set(booker.account_id),
        frequency: Set(rule.frequency),
        interval: Set(rule.interval as i32),
        weekdays: Set(rule.weekdays_text()),
        until: Set(rule.until),
        count: Set(rule.count.map(|c| c as i32)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut bookings = Vec::new();
    let mut skipped = Vec::new();
    for (start, end) in occurrences {
        let skip = |reason: &'static str, message: String| SkippedOccurrence {
            starts_at: start,
            ends_at: end,
            reason,
            message,
        };
        if let Err(err) = space::check_rules(&space, start, end, request.attendees, now, CheckAt::Request) {
            let reason = match &err {
                AppError::RuleBroken { reason, .. } => *reason,
                _ => "INVALID",
            };
            skipped.push(skip(reason, err.to_string()));
            continue;
        }
        let (blocked_start, blocked_end) = space.blocked_range(start, end);
        if let Some(other) =
            overlapping_confirmed(&txn, space.space.id, (blocked_start, blocked_end), None).await?.first()
        {
            skipped.push(skip(
                "BOOKING_OVERLAP",
                format!(
                    "{} is already booked from {} to {}",
                    space.space.name,
                    other.starts_at.to_rfc3339(),
                    other.ends_at.to_rfc3339()
                ),
            ));
            continue;
        }
        let savepoint = txn.begin().await?;
        let inserted = booking::ActiveModel {
            space_id: Set(space.space.id),
            booked_by_account_id: Set(booker.account_id),
            organization_id: Set(request.organization_id),
            purpose: Set(purpose.clone().unwrap_or_default()),
            attendees: Set(request.attendees),
            starts_at: Set(start),
            ends_at: Set(end),
            blocked_start: Set(blocked_start),
            blocked_end: Set(blocked_end),
            status: Set(status),
            status_reason: Set(None),
            manager_note: Set(manager_note.clone().unwrap_or_default()),
            client_key: Set(None),
            request_digest: Set(None),
            series_id: Set(Some(series.id)),
            decided_by_account_id: Set((status == BookingStatus::Confirmed).then_some(booker.account_id)),
            decided_at: Set((status == BookingStatus::Confirmed).then_some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&savepoint)
        .await;
        match inserted {
            Ok(row) => {
                savepoint.commit().await?;
                bookings.push(row);
            }
            Err(err) if is_overlap_violation(&err) => {
                savepoint.rollback().await?;
                skipped
                    .push(skip("BOOKING_OVERLAP", format!("{} was booked for this time meanwhile", space.space.name)));
            }
            Err(err) => return Err(err.into()),
        }
    }
    if bookings.is_empty() || (on_conflict == OnConflict::Fail && !skipped.is_empty()) {
        txn.rollback().await?;
        let message = if bookings.is_empty() {
            "no occurrence of the series can be booked; see extensions.skipped".to_owned()
        } else {
            format!("{} occurrence(s) cannot be booked and onConflict is FAIL; see extensions.skipped", skipped.len())
        };
        return Err(AppError::ConflictDetailed {
            message,
            reason: "OCCURRENCES_UNAVAILABLE",
            details: json!({ "skipped": skipped_json(&skipped) }),
        });
    }
    let events = bookings.iter().map(|b| booking_event(created_kind(b), b)).collect();
    ctx.commit(txn, actor, events).await?;
    Ok(CreatedSeries { series, bookings, skipped })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelScope {
    One,
    ThisAndFollowing,
    Series,
}

/// Cancels one booking, or with it the following (or all) occurrences of its series that
/// are pending or confirmed and not over. Returns the booking and every booking cancelled.
pub async fn cancel_scoped(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    by: i64,
    reason: &str,
    note: Option<String>,
    scope: CancelScope,
) -> AppResult<(booking::Model, Vec<booking::Model>)> {
    let db = ctx.db;
    let current = load(db, id).await?;
    let series_id = match (scope, current.series_id) {
        (CancelScope::One, _) => {
            let row = cancel(ctx, actor, id, by, reason, note).await?;
            return Ok((row.clone(), vec![row]));
        }
        (_, None) => {
            return Err(AppError::rule("scope", "NOT_RECURRING", "this booking is not part of a series"));
        }
        (_, Some(series)) => series,
    };
    let reason = required_reason(reason)?;
    let note = optional_text("managerNote", note, 2000)?;
    let now = super::now();
    let txn = db.begin().await?;
    let mut select = booking::Entity::find()
        .filter(booking::Column::SeriesId.eq(series_id))
        .filter(booking::Column::Status.is_in([BookingStatus::Pending, BookingStatus::Confirmed]))
        .filter(booking::Column::EndsAt.gt(now));
    if scope == CancelScope::ThisAndFollowing {
        select = select.filter(booking::Column::StartsAt.gte(current.starts_at));
    }
    let before: HashMap<i64, BookingStatus> = select.all(&txn).await?.into_iter().map(|b| (b.id, b.status)).collect();
    let ids: Vec<i64> = before.keys().copied().collect();
    if ids.is_empty() {
        return Err(wrong_status(&current, "cancel"));
    }
    let mut update = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::val(BookingStatus::Cancelled))
        .col_expr(booking::Column::StatusReason, Expr::val(reason))
        .col_expr(booking::Column::DecidedByAccountId, Expr::val(by))
        .col_expr(booking::Column::DecidedAt, Expr::val(now))
        .col_expr(booking::Column::UpdatedAt, Expr::val(now));
    if let Some(note) = note {
        update = update.col_expr(booking::Column::ManagerNote, Expr::val(note));
    }
    update
        .filter(booking::Column::Id.is_in(ids.clone()))
        .filter(booking::Column::Status.is_in([BookingStatus::Pending, BookingStatus::Confirmed]))
        .exec(&txn)
        .await?;
    let cancelled = booking::Entity::find()
        .filter(booking::Column::Id.is_in(ids))
        .order_by_asc(booking::Column::StartsAt)
        .all(&txn)
        .await?;
    let row = load(&txn, id).await?;
    let events = cancelled
        .iter()
        .map(|b| cancelled_event(before.get(&b.id).copied().unwrap_or(BookingStatus::Pending), b))
        .collect();
    ctx.commit(txn, actor, events).await?;
    Ok((row, cancelled))
}

// ---------------------------------------------------------------- rooms held by events

/// A booking event of an event's reservation: the booking's payload plus `eventId`.
fn reservation_event(kind: EventKind, b: &booking::Model) -> NewEvent {
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
/// books a reservation that does not exist yet. Returns the log events to append.
pub async fn sync_event_booking(
    db: &sea_orm::DatabaseTransaction,
    event: &entity::event::Model,
    space: Option<&SpaceRecord>,
    account_id: Option<i64>,
) -> AppResult<Vec<NewEvent>> {
    use entity::event::EventStatus;
    let existing = booking::Entity::find().filter(booking::Column::EventId.eq(event.id)).one(db).await?;
    let now = super::now();
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
    let written = match &existing {
        Some(b) => {
            booking::ActiveModel {
                space_id: Set(space.space.id),
                organization_id: Set(Some(event.organizer_id)),
                purpose: Set(event.title.clone()),
                attendees: Set(event.capacity),
                starts_at: Set(event.starts_at),
                ends_at: Set(event.ends_at),
                blocked_start: Set(blocked_start),
                blocked_end: Set(blocked_end),
                status: Set(BookingStatus::Confirmed),
                status_reason: Set(None),
                decided_by_account_id: Set(account_id.or(b.decided_by_account_id)),
                decided_at: Set(Some(now)),
                updated_at: Set(now),
                ..booking::ActiveModel::from(b.clone())
            }
            .update(&savepoint)
            .await
        }
        None => {
            let account_id = account_id.unwrap_or_default();
            booking::ActiveModel {
                space_id: Set(space.space.id),
                booked_by_account_id: Set(account_id),
                organization_id: Set(Some(event.organizer_id)),
                purpose: Set(event.title.clone()),
                attendees: Set(event.capacity),
                starts_at: Set(event.starts_at),
                ends_at: Set(event.ends_at),
                blocked_start: Set(blocked_start),
                blocked_end: Set(blocked_end),
                status: Set(BookingStatus::Confirmed),
                status_reason: Set(None),
                manager_note: Set(String::new()),
                client_key: Set(None),
                request_digest: Set(None),
                series_id: Set(None),
                decided_by_account_id: Set(Some(account_id)),
                decided_at: Set(Some(now)),
                event_id: Set(Some(event.id)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&savepoint)
            .await
        }
    };
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

// ---------------------------------------------------------------- the cached calendar

/// Bookings as their readers see them: calendar reads through the cache (the event log's
/// coherence consumer invalidates it after writes).
pub struct Calendar<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
}

impl Calendar<'_> {
    pub async fn of_space(
        &self,
        space_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> AppResult<Vec<booking::Model>> {
        check_window(from, to, MAX_CALENDAR_DAYS)?;
        let key = format!("calendar:{space_id}:{}:{}", from.timestamp_micros(), to.timestamp_micros());
        self.cache.get_or_load(CACHE_TAG, &key, calendar(self.db, space_id, from, to)).await
    }
}

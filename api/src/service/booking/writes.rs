//! Booking writes: requesting, deciding and cancelling.
#[allow(unused_imports)]
use super::*;

/// A decision to reject or cancel bookings: who takes it, the reason given (required) and the
/// manager's note.
#[derive(Clone, Debug)]
pub struct Verdict<'a> {
    pub by: i64,
    pub reason: &'a str,
    pub note: Option<String>,
}

impl Verdict<'_> {
    /// The reason and the note, checked.
    pub(super) fn texts(&self) -> AppResult<(String, Option<String>)> {
        let reason = optional_text("reason", Some(self.reason.to_owned()), 500)?
            .ok_or_else(|| AppError::bad_input("reason", "a reason is required"))?;
        Ok((reason, optional_text("managerNote", self.note.clone(), 2000)?))
    }
}

/// What a replay of the same client key must match.
pub(super) fn request_digest(r: &BookingRequest, purpose: &Option<String>) -> String {
    let body = json!([r.space_id, r.starts_at, r.ends_at, r.attendees, purpose, r.organization_id]);
    crate::service::identity::sha256_hex(&body.to_string())
}

pub(super) async fn replay(
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
        Some(_) => Err(AppError::conflict(
            "CLIENT_KEY_REUSED",
            "this clientKey was already used for a different booking request",
        )),
        None => Ok(None),
    }
}

/// A request's texts, checked: its purpose (required unless it names an organization) and
/// the manager note, which only staff write.
pub(super) fn request_texts(request: &BookingRequest, booker: &Booker) -> AppResult<(Option<String>, Option<String>)> {
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
    Ok((purpose, manager_note))
}

/// The space a request names, with the organization it names checked to exist.
pub(super) async fn requested_space(db: &impl ConnectionTrait, request: &BookingRequest) -> AppResult<SpaceRecord> {
    let space = space::load(db, request.space_id).await?;
    if let Some(org) = request.organization_id {
        found::<entity::organization::Entity>(db, org, "organization").await?;
    }
    Ok(space)
}

/// What the bookings of one request share: who books what for whom, in which status.
pub(super) struct Requested<'a> {
    pub space: &'a SpaceRecord,
    pub booker: Booker,
    pub request: &'a BookingRequest,
    pub purpose: Option<String>,
    pub manager_note: Option<String>,
    /// `CONFIRMED`, or `PENDING` when the space needs approval and the booker is not staff.
    pub status: BookingStatus,
    pub now: DateTime<Utc>,
}

impl<'a> Requested<'a> {
    pub fn new(
        space: &'a SpaceRecord,
        booker: Booker,
        request: &'a BookingRequest,
        (purpose, manager_note): (Option<String>, Option<String>),
        now: DateTime<Utc>,
    ) -> Self {
        let status = if space.space.requires_approval && !booker.is_staff {
            BookingStatus::Pending
        } else {
            BookingStatus::Confirmed
        };
        Requested { space, booker, request, purpose, manager_note, status, now }
    }

    /// The new row of one booking from `start` to `end` (no client key, no series: the
    /// caller sets those).
    pub fn row(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> booking::ActiveModel {
        let (blocked_start, blocked_end) = self.space.blocked_range(start, end);
        let confirmed = self.status == BookingStatus::Confirmed;
        booking::ActiveModel {
            space_id: Set(self.space.space.id),
            booked_by_account_id: Set(self.booker.account_id),
            organization_id: Set(self.request.organization_id),
            purpose: Set(self.purpose.clone().unwrap_or_default()),
            attendees: Set(self.request.attendees),
            starts_at: Set(start),
            ends_at: Set(end),
            blocked_start: Set(blocked_start),
            blocked_end: Set(blocked_end),
            status: Set(self.status),
            status_reason: Set(None),
            manager_note: Set(self.manager_note.clone().unwrap_or_default()),
            client_key: Set(None),
            request_digest: Set(None),
            series_id: Set(None),
            decided_by_account_id: Set(confirmed.then_some(self.booker.account_id)),
            decided_at: Set(confirmed.then_some(self.now)),
            created_at: Set(self.now),
            updated_at: Set(self.now),
            ..Default::default()
        }
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
    let now = crate::service::now();
    let texts = request_texts(&request, &booker)?;
    let client_key = optional_text("clientKey", request.client_key.clone(), 100)?;
    let digest = request_digest(&request, &texts.0);
    if let Some(key) = &client_key
        && let Some(first) = replay(db, booker.account_id, key, &digest).await?
    {
        return Ok((first, true));
    }

    let space = requested_space(db, &request).await?;
    space::check_rules(&space, request.starts_at, request.ends_at, request.attendees, now, CheckAt::Request)?;
    let requested = Requested::new(&space, booker, &request, texts, now);
    let status = requested.status;
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
        client_key: Set(client_key.clone()),
        request_digest: Set(client_key.as_ref().map(|_| digest.clone())),
        ..requested.row(request.starts_at, request.ends_at)
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
    let now = crate::service::now();
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
    let updated = decision(BookingStatus::Confirmed, decided_by, now, note)
        .col_expr(booking::Column::BlockedStart, Expr::val(blocked_start))
        .col_expr(booking::Column::BlockedEnd, Expr::val(blocked_end))
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
        decision(BookingStatus::Rejected, decided_by, now, None)
            .col_expr(booking::Column::StatusReason, Expr::val(reason.clone()))
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

/// The update that records a decision on bookings: their new status, who decided and when,
/// and the manager's note when one is given.
pub(super) fn decision(
    status: BookingStatus,
    by: i64,
    now: DateTime<Utc>,
    note: Option<String>,
) -> sea_orm::UpdateMany<booking::Entity> {
    let update = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::val(status))
        .col_expr(booking::Column::DecidedByAccountId, Expr::val(by))
        .col_expr(booking::Column::DecidedAt, Expr::val(now))
        .col_expr(booking::Column::UpdatedAt, Expr::val(now));
    match note {
        Some(note) => update.col_expr(booking::Column::ManagerNote, Expr::val(note)),
        None => update,
    }
}

pub(super) fn wrong_status(b: &booking::Model, action: &str) -> AppError {
    use sea_orm::ActiveEnum;
    let status = b.status.to_value();
    AppError::Conflict(
        crate::error::Rejection::new(format!("cannot {action} a booking that is {status}"))
            .reason("WRONG_STATUS")
            .details(crate::error::Details::Status(status)),
    )
}

/// Moves a booking from one of `from` to `to` with a reason.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    ctx: Ctx<'_>,
    actor: &Actor,
    kind: EventKind,
    id: i64,
    from: &[BookingStatus],
    to: BookingStatus,
    action: &str,
    verdict: Verdict<'_>,
) -> AppResult<booking::Model> {
    let (reason, note) = verdict.texts()?;
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let current = load(&txn, id).await?;
    if !from.contains(&current.status) {
        return Err(wrong_status(&current, action));
    }
    let update = decision(to, verdict.by, now, note).col_expr(booking::Column::StatusReason, Expr::val(reason));
    update
        .filter(booking::Column::Id.eq(id))
        .filter(booking::Column::Status.eq(current.status))
        .exec_one(&txn, || AppError::Conflict("the booking changed meanwhile; reload it".into()))
        .await?;
    let row = load(&txn, id).await?;
    let event = if kind == EventKind::BookingCancelled {
        cancelled_event(current.status, &row)
    } else {
        booking_event(kind, &row)
    };
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(row)
}

pub async fn reject(ctx: Ctx<'_>, actor: &Actor, id: i64, verdict: Verdict<'_>) -> AppResult<booking::Model> {
    let pending = &[BookingStatus::Pending];
    decide(ctx, actor, EventKind::BookingRejected, id, pending, BookingStatus::Rejected, "reject", verdict).await
}

/// Cancels a pending or confirmed booking that has not ended yet.
pub async fn cancel(ctx: Ctx<'_>, actor: &Actor, id: i64, verdict: Verdict<'_>) -> AppResult<booking::Model> {
    let current = load(ctx.db, id).await?;
    if current.event_id.is_some() {
        return Err(AppError::refused(
            "EVENT_RESERVATION",
            "this booking holds the room for an event: move or cancel the event instead",
        ));
    }
    if current.ends_at <= crate::service::now() {
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
        verdict,
    )
    .await
}

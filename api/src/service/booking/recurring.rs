//! Recurring bookings: series expanded by their rule.
#[allow(unused_imports)]
use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Book the occurrences that can be booked; report the others.
    Skip,
    /// Book all or nothing.
    Fail,
}

/// An occurrence that was not booked, and why.
pub use crate::error::SkippedOccurrence;

pub struct CreatedSeries {
    pub series: entity::booking_series::Model,
    pub bookings: Vec<booking::Model>,
    pub skipped: Vec<SkippedOccurrence>,
}

/// Books every occurrence of `request` under `rule`, each checked like a single booking, in
/// one transaction. Each insert runs in a savepoint, so an occurrence that loses a race to a
/// concurrent booking is skipped (or fails the whole series) like one that clashed up front.
pub async fn create_recurring(
    ctx: Ctx<'_>,
    actor: &Actor,
    booker: Booker,
    request: BookingRequest,
    rule: crate::service::recurrence::Recurrence,
    on_conflict: OnConflict,
) -> AppResult<CreatedSeries> {
    use entity::booking_series;
    let db = ctx.db;
    let now = crate::service::now();
    let texts = request_texts(&request, &booker)?;
    let space = requested_space(db, &request).await?;
    // The first occurrence's own shape (order, length, whole minutes) is checked up front.
    if request.ends_at <= request.starts_at {
        space::check_rules(&space, request.starts_at, request.ends_at, request.attendees, now, CheckAt::Request)?;
    }
    let occurrences = crate::service::recurrence::expand(&rule, space.zone(), request.starts_at, request.ends_at)?;
    if occurrences.is_empty() {
        return Err(AppError::rule("recurrence", "NO_OCCURRENCES", "the recurrence produces no occurrence"));
    }
    let requested = Requested::new(&space, booker, &request, texts, now);
    let status = requested.status;

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
            let reason = err.reason().unwrap_or("INVALID");
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
        let inserted = booking::ActiveModel { series_id: Set(Some(series.id)), ..requested.row(start, end) }
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
        let rejection = crate::error::Rejection::new(message).reason("OCCURRENCES_UNAVAILABLE").details(skipped);
        return Err(AppError::Conflict(rejection));
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
    verdict: Verdict<'_>,
    scope: CancelScope,
) -> AppResult<(booking::Model, Vec<booking::Model>)> {
    let db = ctx.db;
    let current = load(db, id).await?;
    let series_id = match (scope, current.series_id) {
        (CancelScope::One, _) => {
            let row = cancel(ctx, actor, id, verdict).await?;
            return Ok((row.clone(), vec![row]));
        }
        (_, None) => {
            return Err(AppError::rule("scope", "NOT_RECURRING", "this booking is not part of a series"));
        }
        (_, Some(series)) => series,
    };
    let (reason, note) = verdict.texts()?;
    let now = crate::service::now();
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
    decision(BookingStatus::Cancelled, verdict.by, now, note)
        .col_expr(booking::Column::StatusReason, Expr::val(reason))
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

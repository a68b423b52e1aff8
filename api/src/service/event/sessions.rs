//! Training sessions: dated sessions, check-in per session and certificates.
#[allow(unused_imports)]
use super::*;
use sea_orm::PaginatorTrait;

pub const MAX_SESSIONS: usize = 100;

#[derive(Clone, Debug)]
pub struct NewSession {
    pub event_id: i64,
    pub topic: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Command: the organizer adds a dated session to a training; check-in is then per session.
pub async fn add_training_session_as(ctx: Ctx<'_>, viewer: &Viewer, input: NewSession) -> AppResult<session::Model> {
    managed(ctx.db, viewer, input.event_id).await?;
    as_viewer!(viewer, |actor| add_session(ctx, actor, input.clone()))
}

/// Adds a session inside the training's time, overlapping none of its other sessions.
pub async fn add_session(ctx: Ctx<'_>, actor: &Actor, input: NewSession) -> AppResult<session::Model> {
    let topic = optional_text("topic", input.topic, 200)?.unwrap_or_default();
    if input.ends_at <= input.starts_at {
        return Err(AppError::bad_input("endsAt", "a session ends after it starts"));
    }
    let txn = ctx.db.begin().await?;
    let event = lock_event(&txn, input.event_id).await?;
    if event.kind != EventKind::Training {
        return Err(AppError::refused("WRONG_EVENT_KIND", "sessions belong to trainings"));
    }
    if matches!(event.status, EventStatus::Cancelled | EventStatus::Completed) {
        return Err(AppError::conflict("EVENT_CLOSED", "a cancelled or completed training takes no sessions"));
    }
    if input.starts_at < event.starts_at || input.ends_at > event.ends_at {
        return Err(AppError::bad_input("startsAt", "a session lies within the training's start and end"));
    }
    let existing = sessions_of(&txn, &[event.id]).await?.remove(&event.id).unwrap_or_default();
    if existing.len() >= MAX_SESSIONS {
        return Err(AppError::bad_input("eventId", format!("a training has at most {MAX_SESSIONS} sessions")));
    }
    if existing.iter().any(|s| s.starts_at < input.ends_at && input.starts_at < s.ends_at) {
        return Err(AppError::conflict("SESSION_OVERLAP", "the training has another session at this time"));
    }
    let row = session::ActiveModel {
        event_id: Set(event.id),
        topic: Set(topic),
        starts_at: Set(input.starts_at),
        ends_at: Set(input.ends_at),
        created_at: Set(crate::service::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let log = event_event(
        Kind::EventSessionAdded,
        &event,
        json!({ "sessionId": row.id, "startsAt": row.starts_at, "endsAt": row.ends_at }),
    );
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(row)
}

/// Command: the organizer removes a session nobody has checked in to (a session with
/// check-ins is part of the participants' record and of their certificates).
pub async fn remove_training_session_as(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<session::Model> {
    viewer.require_account()?;
    let found = found::<session::Entity>(ctx.db, id, "training session").await?;
    managed(ctx.db, viewer, found.event_id).await?;
    as_viewer!(viewer, |actor| remove_session(ctx, actor, id))
}

/// Removes a session without attendance. The session's row is locked first: a check-in's
/// attendance holds a key share of it until its transaction ends, so once the lock is held no
/// check-in is in flight, none can start, and the count of attendance below is final.
pub async fn remove_session(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<session::Model> {
    let txn = ctx.db.begin().await?;
    let found = session::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound("training session".into()))?;
    let event = find(&txn, found.event_id).await?;
    if matches!(event.status, EventStatus::Cancelled | EventStatus::Completed) {
        return Err(AppError::conflict("EVENT_CLOSED", "the sessions of a cancelled or completed training stay"));
    }
    let attended = attendance::Entity::find().filter(attendance::Column::SessionId.eq(found.id)).count(&txn).await?;
    if attended > 0 {
        return Err(AppError::conflict(
            "SESSION_ATTENDED",
            format!("{attended} check-ins were recorded at this session: it stays as the participants' record"),
        ));
    }
    session::Entity::delete_by_id(found.id).exec(&txn).await?;
    let log = event_event(
        Kind::EventSessionRemoved,
        &event,
        json!({ "sessionId": found.id, "startsAt": found.starts_at, "endsAt": found.ends_at }),
    );
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(found)
}

/// Sessions of many trainings, in time order.
pub async fn sessions_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<session::Model>>> {
    let query = session::Entity::find().order_by_asc(session::Column::StartsAt).order_by_asc(session::Column::Id);
    grouped(db, query, session::Column::EventId, ids, |s| s.event_id).await
}

/// Whether a registration earns the training's certificate: attended sessions are at least
/// the threshold's share of the sessions (a training without sessions: checked in at all).
/// `None` for other kinds and trainings without a threshold.
pub fn certificate_eligible(event: &event::Model, sessions: usize, reg: &registration::Model) -> Option<bool> {
    let threshold = event.certificate_threshold_percent.filter(|_| event.kind == EventKind::Training)?;
    if reg.status != RegistrationStatus::Confirmed {
        return Some(false);
    }
    if sessions == 0 {
        return Some(reg.checked_in_at.is_some());
    }
    Some(i64::from(reg.sessions_attended) * 100 >= i64::from(threshold) * sessions as i64)
}

/// Check-in at one session of a training: one attendance per registration and session (a
/// unique key), counted on the registration in the same transaction. The persons present
/// are recorded at the first session attended and count again at every session.
pub(super) async fn check_in_to_session(
    db: &sea_orm::DatabaseTransaction,
    event: &event::Model,
    sessions: &[session::Model],
    reg: registration::Model,
    input: &CheckIn,
    now: DateTime<Utc>,
) -> AppResult<(CheckInOutcome, Option<LogEvent>)> {
    let session_id = input
        .session_id
        .ok_or_else(|| AppError::bad_input("sessionId", "this training checks in per session: give sessionId"))?;
    let session = sessions
        .iter()
        .find(|s| s.id == session_id)
        .ok_or_else(|| AppError::bad_input("sessionId", "no such session of this training"))?;
    let seen = attendance::Entity::find()
        .filter(attendance::Column::SessionId.eq(session.id))
        .filter(attendance::Column::RegistrationId.eq(reg.id))
        .one(db)
        .await?;
    if seen.is_some() {
        return Ok((CheckInOutcome { registration: reg, already_checked_in: true }, None));
    }
    check_in_open(event, &reg, input, (session.starts_at, session.ends_at), At::Session, now)?;
    let attended = checked_attended(&reg, reg.attended.unwrap_or_else(|| input.attended.unwrap_or(reg.party_size)))?;
    let savepoint = db.begin().await?;
    let inserted = attendance::ActiveModel {
        session_id: Set(session.id),
        registration_id: Set(reg.id),
        attended: Set(attended),
        checked_in_at: Set(now),
        ..Default::default()
    }
    .insert(&savepoint)
    .await;
    match inserted {
        Ok(_) => savepoint.commit().await?,
        Err(err) if matches!(err.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))) => {
            // The session was removed since it was read.
            return Err(AppError::bad_input("sessionId", "no such session of this training"));
        }
        Err(err) if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            // A simultaneous scan of the same ticket at the same session recorded it.
            savepoint.rollback().await?;
            let fresh = find_registration(db, reg.id).await?;
            return Ok((CheckInOutcome { registration: fresh, already_checked_in: true }, None));
        }
        Err(err) => return Err(err.into()),
    }
    let mut update = registration::Entity::update_many()
        .col_expr(registration::Column::SessionsAttended, Expr::col(registration::Column::SessionsAttended).add(1))
        .col_expr(registration::Column::UpdatedAt, Expr::val(now));
    if reg.checked_in_at.is_none() {
        update = with_attendance(update, input.groups, &reg, attended, now)?;
    }
    update.filter(registration::Column::Id.eq(reg.id)).exec(db).await?;
    let fresh = find_registration(db, reg.id).await?;
    let mut log = registration_event(Kind::RegistrationCheckedIn, &fresh);
    if let Some(map) = log.payload.as_object_mut() {
        map.insert("attended".into(), attended.into());
        map.insert("sessionId".into(), session.id.into());
    }
    Ok((CheckInOutcome { registration: fresh, already_checked_in: false }, Some(log)))
}

/// Gives every registration that earned the certificate of a training being completed its
/// number, `ZS-<year>-<programme>-<cohort>-<nnn>` in registration order (unique in the
/// database). Returns how many were issued.
pub(super) async fn issue_certificates(db: &impl ConnectionTrait, event: &event::Model) -> AppResult<usize> {
    if event.kind != EventKind::Training || event.certificate_threshold_percent.is_none() {
        return Ok(0);
    }
    let sessions = sessions_of(db, &[event.id]).await?.remove(&event.id).unwrap_or_default().len();
    let regs = registration::Entity::find()
        .filter(registration::Column::EventId.eq(event.id))
        .filter(registration::Column::Status.eq(RegistrationStatus::Confirmed))
        .filter(registration::Column::CertificateNumber.is_null())
        .order_by_asc(registration::Column::QueuedAt)
        .order_by_asc(registration::Column::Id)
        .all(db)
        .await?;
    let year = local_date(event.starts_at).year();
    let mut issued = 0;
    for reg in regs.iter().filter(|r| certificate_eligible(event, sessions, r) == Some(true)) {
        issued += 1;
        let number = format!(
            "ZS-{year}-{}-{:02}-{issued:03}",
            event.programme_id.unwrap_or_default(),
            event.cohort.unwrap_or_default()
        );
        registration::Entity::update_many()
            .col_expr(registration::Column::CertificateNumber, Expr::val(number))
            .filter(registration::Column::Id.eq(reg.id))
            .exec(db)
            .await?;
    }
    Ok(issued)
}

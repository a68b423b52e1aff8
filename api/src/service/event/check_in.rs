//! Check-in at the door, by ticket code or identity document.
#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug)]
pub struct CheckIn {
    pub event_id: i64,
    pub ticket_code: String,
    /// Persons present; default the whole party.
    pub attended: Option<i32>,
    /// Who was served, when declared at the door; default what the registration declared.
    pub groups: Option<Groups>,
    /// How long before the start check-in opens.
    pub opens_before: std::time::Duration,
    /// The session checked in to (trainings with sessions: required).
    pub session_id: Option<i64>,
}

pub struct CheckInOutcome {
    pub registration: registration::Model,
    /// The ticket had been scanned before: nothing was recorded now.
    pub already_checked_in: bool,
}

pub async fn check_in(ctx: Ctx<'_>, actor: &Actor, input: CheckIn) -> AppResult<CheckInOutcome> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let code: String = input.ticket_code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 32 {
        return Err(AppError::bad_input("ticketCode", "not a ticket code"));
    }
    let event = find(db, input.event_id).await?;
    let reg = registration::Entity::find()
        .filter(registration::Column::TicketCode.eq(code.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::refused("UNKNOWN_TICKET", "no ticket has this code"))?;
    if reg.event_id != event.id {
        return Err(AppError::refused("TICKET_FOR_ANOTHER_EVENT", "this ticket is for another event"));
    }
    let sessions = sessions_of(db, &[event.id]).await?.remove(&event.id).unwrap_or_default();
    if !sessions.is_empty() || input.session_id.is_some() {
        let outcome = check_in_to_session(db, &event, &sessions, reg, &input, now).await?;
        if let Some(log) = outcome.1 {
            ctx.commit(txn, actor, vec![log]).await?;
        }
        return Ok(outcome.0);
    }
    if reg.checked_in_at.is_some() {
        return Ok(CheckInOutcome { registration: reg, already_checked_in: true });
    }
    check_in_open(&event, &reg, &input, (event.starts_at, event.ends_at), At::Event, now)?;
    let attended = checked_attended(&reg, input.attended.unwrap_or(reg.party_size))?;
    // Conditional on "not yet": of two simultaneous scans exactly one records attendance.
    let update = registration::Entity::update_many().col_expr(registration::Column::UpdatedAt, Expr::val(now));
    let result = with_attendance(update, input.groups, &reg, attended, now)?
        .filter(registration::Column::Id.eq(reg.id))
        .filter(registration::Column::CheckedInAt.is_null())
        .filter(registration::Column::Status.eq(RegistrationStatus::Confirmed))
        .exec(db)
        .await?;
    let fresh = find_registration(db, reg.id).await?;
    if result.rows_affected == 0 {
        if fresh.checked_in_at.is_some() {
            return Ok(CheckInOutcome { registration: fresh, already_checked_in: true });
        }
        return Err(AppError::refused("REGISTRATION_NOT_CONFIRMED", "this registration holds no confirmed seat"));
    }
    let mut log = registration_event(Kind::RegistrationCheckedIn, &fresh);
    if let Some(map) = log.payload.as_object_mut() {
        map.insert("attended".into(), attended.into());
    }
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(CheckInOutcome { registration: fresh, already_checked_in: false })
}

/// What is checked in to: the event, or one session of a training.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    Event,
    Session,
}

/// Refuses a check-in outside its window (from `opens_before` the start of the event or
/// session to its end), to a cancelled event or without a confirmed seat.
pub(super) fn check_in_open(
    event: &event::Model,
    reg: &registration::Model,
    input: &CheckIn,
    (starts_at, ends_at): (DateTime<Utc>, DateTime<Utc>),
    at: At,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if event.status == EventStatus::Cancelled {
        return Err(AppError::refused("EVENT_CANCELLED", "the event was cancelled"));
    }
    let opens_before = Duration::from_std(input.opens_before).unwrap_or_else(|_| Duration::hours(1));
    if now < starts_at - opens_before {
        let message = match at {
            At::Event => "check-in has not opened yet",
            At::Session => "check-in to this session has not opened yet",
        };
        return Err(AppError::refused("CHECK_IN_NOT_OPEN", message));
    }
    if now > ends_at {
        let message = match at {
            At::Event => "check-in has closed: the event is over",
            At::Session => "check-in has closed: the session is over",
        };
        return Err(AppError::refused("CHECK_IN_CLOSED", message));
    }
    if reg.status != RegistrationStatus::Confirmed {
        return Err(AppError::refused("REGISTRATION_NOT_CONFIRMED", "this registration holds no confirmed seat"));
    }
    Ok(())
}

/// The persons present: 1 to the registration's party.
pub(super) fn checked_attended(reg: &registration::Model, attended: i32) -> AppResult<i32> {
    if !(1..=reg.party_size).contains(&attended) {
        return Err(AppError::bad_input("attended", format!("attended is 1 to {}", reg.party_size)));
    }
    Ok(attended)
}

/// `update` also records the registration's first check-in: when, how many were present and
/// whom they served (as declared at the door, else as registered, at most `attended` each).
pub(super) fn with_attendance(
    update: sea_orm::UpdateMany<registration::Entity>,
    groups: Option<Groups>,
    reg: &registration::Model,
    attended: i32,
    now: DateTime<Utc>,
) -> AppResult<sea_orm::UpdateMany<registration::Entity>> {
    let groups = match groups {
        Some(g) => {
            check_groups(g, attended, "groups")?;
            g
        }
        None => Groups {
            women: std::cmp::min(reg.women, attended),
            children: std::cmp::min(reg.children, attended),
            family_members: std::cmp::min(reg.family_members, attended),
            professionals: std::cmp::min(reg.professionals, attended),
        },
    };
    Ok(update
        .col_expr(registration::Column::CheckedInAt, Expr::val(now))
        .col_expr(registration::Column::Attended, Expr::val(attended))
        .col_expr(registration::Column::Women, Expr::val(groups.women))
        .col_expr(registration::Column::Children, Expr::val(groups.children))
        .col_expr(registration::Column::FamilyMembers, Expr::val(groups.family_members))
        .col_expr(registration::Column::Professionals, Expr::val(groups.professionals)))
}

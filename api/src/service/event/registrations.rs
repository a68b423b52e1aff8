//! Registration: seats, the waitlist, tickets, cancellation and decisions.
#[allow(unused_imports)]
use super::*;

/// Who a registration is for.
#[derive(Clone, Debug)]
pub enum Registrant {
    /// A signed-in person registering themself.
    Account { id: i64, name: String },
    /// A partner's named guest.
    Guest { key_id: i64, name: String, phone: String },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub women: i32,
    pub children: i32,
    pub family_members: i32,
    pub professionals: i32,
}

pub(super) fn check_groups(groups: Groups, persons: i32, field: &str) -> AppResult<()> {
    for (name, n) in [
        ("women", groups.women),
        ("children", groups.children),
        ("familyMembers", groups.family_members),
        ("professionals", groups.professionals),
    ] {
        if n < 0 || n > persons {
            return Err(AppError::bad_input(field, format!("{name} is 0 to {persons}, the persons present")));
        }
    }
    Ok(())
}

pub(super) fn phone(raw: &str) -> AppResult<String> {
    let p = raw.trim();
    let digits = p.chars().filter(char::is_ascii_digit).count();
    if !(p.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) && (5..=20).contains(&digits)) {
        return Err(AppError::bad_input("phone", "phone is not a phone number"));
    }
    Ok(p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect())
}

/// Normalizes a document number and checks its shape (not its validity with the issuer).
pub fn normalize_id_document(kind: IdDocType, raw: &str) -> AppResult<String> {
    let n: String = raw.trim().chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    let ok = match kind {
        IdDocType::MainlandId => {
            n.len() == 18
                && n[..17].chars().all(|c| c.is_ascii_digit())
                && n.chars().last().is_some_and(|c| c.is_ascii_digit() || c == 'X')
        }
        IdDocType::TaiwanCompatriotPermit => {
            (8..=10).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric())
        }
        IdDocType::Passport => (5..=20).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric()),
    };
    if !ok {
        return Err(AppError::refused("INVALID_IDENTITY_DOCUMENT", "the identity document number is not well-formed"));
    }
    Ok(n)
}

/// `350203199001011234` → `35**************34`.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = if chars.len() >= 8 { 2 } else { 1 };
    chars.iter().enumerate().map(|(i, c)| if i < keep || i + keep >= chars.len() { *c } else { '*' }).collect()
}

/// 16 characters from an alphabet without look-alikes; QR alphanumeric mode encodes it.
pub fn ticket_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

pub(super) fn scoped_key(registrant: &Registrant, key: &str) -> String {
    match registrant {
        Registrant::Account { id, .. } => format!("a{id}:{key}"),
        Registrant::Guest { key_id, .. } => format!("k{key_id}:{key}"),
    }
}

pub(super) const LIVE: [RegistrationStatus; 3] =
    [RegistrationStatus::Pending, RegistrationStatus::Confirmed, RegistrationStatus::Waitlisted];

/// What a caller asks to register; who registers comes from the viewer.
#[derive(Clone, Debug)]
pub struct RegistrationRequest {
    pub event_id: i64,
    /// A named guest `(name, phone)`, registered with a partner key holding REGISTER.
    pub guest: Option<(String, String)>,
    /// Persons on the registration, the registrant included.
    pub party_size: i32,
    pub groups: Groups,
    pub answers: Vec<Answer>,
    pub privacy_consent: bool,
    pub client_key: Option<String>,
    pub identity_document: Option<(IdDocType, String)>,
}

/// Command: a signed-in person registers themselves (with those they bring), or a partner key
/// with REGISTER registers a named guest. Over capacity the registration joins the waitlist.
pub async fn register_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    mut request: RegistrationRequest,
) -> AppResult<(registration::Model, bool)> {
    viewer.require_register()?;
    let registrant = match (request.guest.take(), &viewer.account, &viewer.partner) {
        (Some((name, phone)), _, Some(partner)) if viewer.has_scope(crate::service::identity::ApiScope::Register) => {
            Registrant::Guest { key_id: partner.key_id, name, phone }
        }
        (Some(_), _, _) => {
            return Err(AppError::bad_input(
                "guest",
                "accounts register themselves; named guests are registered with a partner key",
            ));
        }
        (None, Some(account), _) => Registrant::Account { id: account.id, name: account.display_name.clone() },
        (None, None, _) => {
            return Err(AppError::bad_input("guest", "a partner key registers a named guest: give `guest`"));
        }
    };
    as_viewer!(viewer, |actor| register(ctx, actor, registrant.clone(), request.clone()))
}

/// Command: the registrant (the account, or the key that registered the guest) or the
/// organizer cancels a registration; its seats go to the waitlist at once.
pub async fn cancel_registration_as(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<registration::Model> {
    viewer.require_register().or_else(|_| viewer.require_account().map(|_| ()))?;
    let (reg, event) = registration_and_event(ctx.db, id).await?;
    viewer.require_cancel_registration(event.organizer_id, reg.account_id, reg.partner_key_id)?;
    let by_organizer = viewer.can_manage_event(event.organizer_id);
    as_viewer!(viewer, |actor| cancel_registration(ctx, actor, id, by_organizer))
}

/// Command: the organizer accepts or declines a registration awaiting approval.
pub async fn decide_registration_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    accept: bool,
) -> AppResult<registration::Model> {
    viewer.require_account()?;
    let (_, event) = registration_and_event(ctx.db, id).await?;
    viewer.require_manage_event(event.organizer_id)?;
    as_viewer!(viewer, |actor| decide_registration(ctx, actor, id, accept))
}

/// A registration and its event, read outside the command's transaction (to authorize).
async fn registration_and_event(db: &impl ConnectionTrait, id: i64) -> AppResult<(registration::Model, event::Model)> {
    let reg = find_registration(db, id).await?;
    let event = find(db, reg.event_id).await?;
    Ok((reg, event))
}

/// Command: the organizer checks a ticket in at the door. A second scan reports the first one
/// and records nothing.
pub async fn check_in_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    event_id: i64,
    ticket_code: String,
    attended: Option<i32>,
    groups: Option<Groups>,
    session_id: Option<i64>,
) -> AppResult<(event::Model, CheckInOutcome)> {
    let event = managed(ctx.db, viewer, event_id).await?;
    let input = CheckIn {
        event_id,
        ticket_code,
        attended,
        groups,
        opens_before: ctx.settings.check_in_opens_before,
        session_id,
    };
    let outcome = as_viewer!(viewer, |actor| check_in(ctx, actor, input.clone()))?;
    Ok((event, outcome))
}

/// Registers a person (and those they bring). Returns the registration and whether it
/// existed already under the same client key (a replay, which records nothing). Who registers
/// is `registrant`; `input.guest` is not read.
pub async fn register(
    ctx: Ctx<'_>,
    actor: &Actor,
    registrant: Registrant,
    input: RegistrationRequest,
) -> AppResult<(registration::Model, bool)> {
    let now = crate::service::now();
    if !input.privacy_consent {
        return Err(AppError::refused("CONSENT_REQUIRED", "registration needs consent to the privacy terms"));
    }
    if input.party_size < 1 {
        return Err(AppError::bad_input("partySize", "partySize counts the registrant: at least 1"));
    }
    check_groups(input.groups, input.party_size, "groups")?;
    let client_key = match input.client_key.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(k) if k.len() > 100 => return Err(AppError::bad_input("clientKey", "clientKey is at most 100 bytes")),
        Some(k) => Some(scoped_key(&registrant, k)),
    };
    let (account_id, partner_key_id, name, guest_phone) = match &registrant {
        Registrant::Account { id, name } => (Some(*id), None, required_text("name", name, 100)?, None),
        Registrant::Guest { key_id, name, phone: p } => {
            (None, Some(*key_id), required_text("guest.name", name, 100)?, Some(phone(p)?))
        }
    };
    let document = match input.identity_document {
        Some((kind, raw)) => Some((kind, normalize_id_document(kind, &raw)?)),
        None => None,
    };

    let txn = ctx.db.begin().await?;
    let event = lock_event(&txn, input.event_id).await?;
    // A replay answers with what the first call did, whatever has changed since.
    if let Some(key) = &client_key
        && let Some(existing) =
            registration::Entity::find().filter(registration::Column::ClientKey.eq(key.as_str())).one(&txn).await?
    {
        if existing.event_id != event.id {
            return Err(AppError::refused("CLIENT_KEY_REUSED", "this clientKey was used for another event"));
        }
        return Ok((existing, true));
    }
    match event.status {
        EventStatus::Published => {}
        EventStatus::Draft => return Err(AppError::refused("EVENT_NOT_PUBLISHED", "the event is not published")),
        EventStatus::Cancelled => return Err(AppError::refused("EVENT_CANCELLED", "the event was cancelled")),
        EventStatus::Completed => return Err(AppError::refused("EVENT_COMPLETED", "the event is over")),
    }
    if event.registration_opens_at.is_some_and(|o| now < o) {
        return Err(AppError::refused("REGISTRATION_NOT_OPEN", "registration has not opened yet"));
    }
    if now >= event.registration_closes_at.unwrap_or(event.starts_at) {
        return Err(AppError::refused("REGISTRATION_CLOSED", "registration has closed"));
    }
    if input.party_size > event.group_limit {
        return Err(AppError::refused(
            "GROUP_TOO_LARGE",
            format!("one registration brings at most {} persons, the registrant included", event.group_limit),
        ));
    }
    if input.party_size > event.capacity {
        return Err(AppError::refused("GROUP_TOO_LARGE", "the group is larger than the event's capacity"));
    }
    let questions = questions_of(&event);
    let mut answers: Vec<Answer> = Vec::new();
    for a in input.answers {
        if !questions.iter().any(|q| q.key == a.question) {
            return Err(AppError::bad_input("answers", format!("the event has no question `{}`", a.question)));
        }
        if answers.iter().any(|x| x.question == a.question) {
            return Err(AppError::bad_input("answers", format!("question `{}` is answered twice", a.question)));
        }
        let text = optional_text("answers", Some(a.answer), 2000)?;
        if let Some(answer) = text {
            answers.push(Answer { question: a.question, answer });
        }
    }
    if let Some(q) = questions.iter().find(|q| q.required && !answers.iter().any(|a| a.question == q.key)) {
        return Err(AppError::refused("ANSWER_REQUIRED", format!("please answer: {}", q.prompt)));
    }
    // Documents are kept only where the event needs them.
    let document = if event.requires_identity_document {
        Some(document.ok_or_else(|| {
            AppError::refused("IDENTITY_DOCUMENT_REQUIRED", "this exchange needs an identity document number")
        })?)
    } else {
        None
    };
    let mut duplicate = registration::Entity::find()
        .filter(registration::Column::EventId.eq(event.id))
        .filter(registration::Column::Status.is_in(LIVE));
    duplicate = match (&account_id, &guest_phone) {
        (Some(a), _) => duplicate.filter(registration::Column::AccountId.eq(*a)),
        (None, Some(p)) => duplicate
            .filter(registration::Column::AccountId.is_null())
            .filter(registration::Column::Phone.eq(p.as_str())),
        (None, None) => duplicate.filter(registration::Column::Id.eq(-1)),
    };
    if duplicate.one(&txn).await?.is_some() {
        return Err(AppError::conflict("ALREADY_REGISTERED", "already registered for this event"));
    }
    let queued_at = queue_time(&txn, event.id).await?;
    let status = if event.requires_approval {
        RegistrationStatus::Pending
    } else if event.seats_taken + input.party_size <= event.capacity {
        // Everyone waiting is larger than the seats left (promotion guarantees it), so a
        // party that fits passes nobody who could have had these seats.
        RegistrationStatus::Confirmed
    } else {
        RegistrationStatus::Waitlisted
    };
    let row = registration::ActiveModel {
        event_id: Set(event.id),
        account_id: Set(account_id),
        partner_key_id: Set(partner_key_id),
        name: Set(name),
        phone: Set(guest_phone),
        party_size: Set(input.party_size),
        women: Set(input.groups.women),
        children: Set(input.groups.children),
        family_members: Set(input.groups.family_members),
        professionals: Set(input.groups.professionals),
        answers: Set(json(&answers)),
        consent_at: Set(now),
        status: Set(status),
        queued_at: Set(queued_at),
        client_key: Set(client_key),
        ticket_code: Set(ticket_code()),
        id_doc_type: Set(document.as_ref().map(|d| d.0)),
        id_doc_number: Set(document.map(|d| d.1)),
        created_at: Set(queued_at),
        updated_at: Set(queued_at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if status == RegistrationStatus::Confirmed {
        take_seats(&txn, event.id, input.party_size).await?;
    }
    let kind = match status {
        RegistrationStatus::Confirmed => Kind::RegistrationConfirmed,
        RegistrationStatus::Waitlisted => Kind::RegistrationWaitlisted,
        _ => Kind::RegistrationPending,
    };
    ctx.commit(txn, actor, vec![registration_event(kind, &row)]).await?;
    Ok((row, false))
}

/// The time a registration joins the event's queue, which is also the `registeredAt` the API
/// shows: taken under the event's row lock and strictly after the event's latest registration,
/// so these times order registrations exactly as they got the lock — confirmation order and
/// waitlist order — even when instances' clocks disagree or a clock steps back.
pub(super) async fn queue_time(db: &impl ConnectionTrait, event_id: i64) -> AppResult<DateTime<Utc>> {
    let now = crate::service::now();
    let latest = registration::Entity::find()
        .filter(registration::Column::EventId.eq(event_id))
        .order_by_desc(registration::Column::QueuedAt)
        .order_by_desc(registration::Column::Id)
        .one(db)
        .await?
        .map(|r| r.queued_at);
    Ok(match latest {
        Some(latest) if latest >= now => latest + Duration::microseconds(1),
        _ => now,
    })
}

pub(super) async fn take_seats(db: &impl ConnectionTrait, event_id: i64, persons: i32) -> AppResult<()> {
    event::Entity::update_many()
        .col_expr(event::Column::SeatsTaken, Expr::col(event::Column::SeatsTaken).add(persons))
        .filter(event::Column::Id.eq(event_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Confirms waitlisted registrations in order while they fit; a group too large for the seats
/// left waits and smaller ones behind it may pass. Call with the event row locked. Returns the
/// `registration.promoted` events to append.
pub(super) async fn promote_from_waitlist(db: &impl ConnectionTrait, event: &event::Model) -> AppResult<Vec<LogEvent>> {
    let fresh = find(db, event.id).await?;
    let mut free = fresh.capacity - fresh.seats_taken;
    if free <= 0 || fresh.status != EventStatus::Published {
        return Ok(Vec::new());
    }
    let waiting = registration::Entity::find()
        .filter(registration::Column::EventId.eq(event.id))
        .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted))
        .order_by_asc(registration::Column::QueuedAt)
        .order_by_asc(registration::Column::Id)
        .all(db)
        .await?;
    let now = crate::service::now();
    let mut promoted = Vec::new();
    let mut seats = 0;
    for w in waiting {
        if free <= 0 {
            break;
        }
        if w.party_size <= free {
            registration::Entity::update_many()
                .col_expr(registration::Column::Status, Expr::val(RegistrationStatus::Confirmed))
                .col_expr(registration::Column::UpdatedAt, Expr::val(now))
                .filter(registration::Column::Id.eq(w.id))
                .exec(db)
                .await?;
            free -= w.party_size;
            seats += w.party_size;
            let confirmed = registration::Model { status: RegistrationStatus::Confirmed, ..w };
            promoted.push(registration_event(Kind::RegistrationPromoted, &confirmed));
        }
    }
    if seats > 0 {
        take_seats(db, event.id, seats).await?;
    }
    Ok(promoted)
}

pub async fn find_registration(db: &impl ConnectionTrait, id: i64) -> AppResult<registration::Model> {
    found::<registration::Entity>(db, id, "registration").await
}

pub async fn registrations_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<registration::Model>> {
    rows_by_ids(db, registration::Column::Id, ids).await
}

/// Cancels a registration; its seats go to the waitlist in the same transaction. Cancelling
/// a cancelled registration answers with it unchanged. Registrants cancel until the
/// deadline (default: the start); organizers at any time before check-in.
pub async fn cancel_registration(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    by_organizer: bool,
) -> AppResult<registration::Model> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let first = find_registration(&txn, id).await?;
    let event = lock_event(&txn, first.event_id).await?;
    // Read again under the lock: a concurrent cancel may have got here first.
    let reg = find_registration(&txn, id).await?;
    if matches!(reg.status, RegistrationStatus::Cancelled | RegistrationStatus::Declined) {
        return Ok(reg);
    }
    if reg.checked_in_at.is_some() {
        return Err(AppError::conflict("ALREADY_CHECKED_IN", "a checked-in registration cannot be cancelled"));
    }
    if !by_organizer && now >= event.cancellation_deadline.unwrap_or(event.starts_at) {
        return Err(AppError::refused(
            "CANCELLATION_CLOSED",
            "the self-cancellation deadline has passed; contact the organizer",
        ));
    }
    let (updated, events) = cancel_locked(&txn, reg, &event, now).await?;
    ctx.commit(txn, actor, events).await?;
    Ok(updated)
}

/// Cancels `reg` of the locked `event`: its seats go to the waitlist. Returns the events.
pub(super) async fn cancel_locked(
    db: &impl ConnectionTrait,
    reg: registration::Model,
    event: &event::Model,
    now: DateTime<Utc>,
) -> AppResult<(registration::Model, Vec<LogEvent>)> {
    let held_seats = reg.status == RegistrationStatus::Confirmed;
    let party_size = reg.party_size;
    let mut active: registration::ActiveModel = reg.into();
    active.status = Set(RegistrationStatus::Cancelled);
    active.cancelled_at = Set(Some(now));
    active.updated_at = Set(now);
    let updated = active.update(db).await?;
    let mut events = vec![registration_event(Kind::RegistrationCancelled, &updated)];
    if held_seats {
        take_seats(db, event.id, -party_size).await?;
        events.extend(promote_from_waitlist(db, event).await?);
    }
    Ok((updated, events))
}

/// Cancels, in the caller's transaction, an account's registrations (confirmed, waitlisted
/// or awaiting a decision, not checked in) for events that have not started: the account is
/// being deleted. Seats go to the waitlist as with any cancellation; events are locked in id
/// order. Returns how many were cancelled and the events to append.
pub(crate) async fn cancel_future_registrations(
    db: &impl ConnectionTrait,
    account_id: i64,
    now: DateTime<Utc>,
) -> AppResult<(u64, Vec<LogEvent>)> {
    let live = [RegistrationStatus::Confirmed, RegistrationStatus::Waitlisted, RegistrationStatus::Pending];
    let regs = registration::Entity::find()
        .filter(registration::Column::AccountId.eq(account_id))
        .filter(registration::Column::Status.is_in(live))
        .filter(registration::Column::CheckedInAt.is_null())
        .order_by_asc(registration::Column::EventId)
        .order_by_asc(registration::Column::Id)
        .all(db)
        .await?;
    let event_ids: Vec<i64> = regs.iter().map(|r| r.event_id).collect();
    let upcoming: std::collections::HashSet<i64> =
        find_by_ids(db, &event_ids).await?.into_iter().filter(|e| e.starts_at > now).map(|e| e.id).collect();
    let mut cancelled = 0;
    let mut events = Vec::new();
    for first in regs.into_iter().filter(|r| upcoming.contains(&r.event_id)) {
        let event = lock_event(db, first.event_id).await?;
        // Read again under the lock: a promotion or a cancel may have changed it.
        let reg = find_registration(db, first.id).await?;
        if !live.contains(&reg.status) || reg.checked_in_at.is_some() {
            continue;
        }
        let (_, more) = cancel_locked(db, reg, &event, now).await?;
        events.extend(more);
        cancelled += 1;
    }
    Ok((cancelled, events))
}

/// The organizer's decision on a registration awaiting approval. Accepted registrations take
/// seats when they fit; otherwise they join the waitlist at the place their registration time
/// gives them.
pub async fn decide_registration(ctx: Ctx<'_>, actor: &Actor, id: i64, accept: bool) -> AppResult<registration::Model> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let first = find_registration(&txn, id).await?;
    let event = lock_event(&txn, first.event_id).await?;
    let reg = find_registration(&txn, id).await?;
    if reg.status != RegistrationStatus::Pending {
        return Err(AppError::conflict("NOT_PENDING", "this registration is not awaiting a decision"));
    }
    if accept && event.status != EventStatus::Published {
        return Err(AppError::refused("EVENT_NOT_PUBLISHED", "the event is not open"));
    }
    let status = if !accept {
        RegistrationStatus::Declined
    } else {
        if event.seats_taken + reg.party_size <= event.capacity {
            RegistrationStatus::Confirmed
        } else {
            RegistrationStatus::Waitlisted
        }
    };
    let mut active: registration::ActiveModel = reg.clone().into();
    active.status = Set(status);
    active.decided_at = Set(Some(now));
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    if status == RegistrationStatus::Confirmed {
        take_seats(&txn, event.id, reg.party_size).await?;
    }
    let kind = if accept { Kind::RegistrationApproved } else { Kind::RegistrationRejected };
    ctx.commit(txn, actor, vec![registration_event(kind, &updated)]).await?;
    Ok(updated)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RegistrationSort {
    /// Registration order (the waitlist's order among waitlisted ones).
    #[default]
    Queue,
}

pub async fn registrations_of_event(
    db: &impl ConnectionTrait,
    event_id: i64,
    statuses: &[RegistrationStatus],
    page: PageRequest<'_>,
) -> AppResult<Page<registration::Model>> {
    let mut select = registration::Entity::find().filter(registration::Column::EventId.eq(event_id));
    if !statuses.is_empty() {
        select = select.filter(registration::Column::Status.is_in(statuses.iter().copied()));
    }
    let key = SortKey::<registration::Entity>::time(
        registration::Column::QueuedAt,
        registration::Column::Id,
        SortDirection::Asc,
    );
    pagination::paginate(db, select, &key, page).await
}

pub async fn registrations_of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    page: PageRequest<'_>,
) -> AppResult<Page<registration::Model>> {
    let select = registration::Entity::find().filter(registration::Column::AccountId.eq(account_id));
    let key = SortKey::<registration::Entity>::time(
        registration::Column::CreatedAt,
        registration::Column::Id,
        SortDirection::Desc,
    );
    pagination::paginate(db, select, &key, page).await
}

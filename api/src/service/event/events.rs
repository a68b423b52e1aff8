//! Event writes: creating, updating and moving events through their lifecycle; training programmes, exhibits and delegations.
#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug, Default)]
pub struct QuestionInput {
    pub prompt: String,
    pub required: bool,
}

#[derive(Clone, Debug, Default)]
pub struct TrainingFields {
    pub programme_id: i64,
    pub cohort: i32,
    pub trainers: Vec<String>,
    pub syllabus: Option<String>,
    pub hours: Option<i32>,
    pub certificate_threshold_percent: Option<i32>,
}

#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: EventKind,
    pub title: String,
    pub title_traditional: Option<String>,
    pub summary: Option<String>,
    pub summary_traditional: Option<String>,
    pub description: Option<String>,
    pub description_traditional: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: Option<String>,
    pub venue_space_id: Option<i64>,
    pub venue_address: Option<String>,
    pub organizer_id: i64,
    pub capacity: i32,
    pub group_limit: Option<i32>,
    pub registration_opens_at: Option<DateTime<Utc>>,
    pub registration_closes_at: Option<DateTime<Utc>>,
    pub cancellation_deadline: Option<DateTime<Utc>>,
    pub requires_approval: bool,
    pub requires_identity_document: bool,
    pub audience_tags: Vec<String>,
    pub questions: Vec<QuestionInput>,
    pub training: Option<TrainingFields>,
}

/// A change of some fields: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct EventPatch {
    pub title: Option<String>,
    pub title_traditional: Option<Option<String>>,
    pub summary: Option<String>,
    pub summary_traditional: Option<Option<String>>,
    pub description: Option<String>,
    pub description_traditional: Option<Option<String>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
    /// Replaces the venue: a space or an address.
    pub venue: Option<(Option<i64>, Option<String>)>,
    pub capacity: Option<i32>,
    pub group_limit: Option<i32>,
    pub registration_opens_at: Option<Option<DateTime<Utc>>>,
    pub registration_closes_at: Option<Option<DateTime<Utc>>>,
    pub cancellation_deadline: Option<Option<DateTime<Utc>>>,
    pub requires_approval: Option<bool>,
    pub requires_identity_document: Option<bool>,
    pub audience_tags: Option<Vec<String>>,
    pub questions: Option<Vec<QuestionInput>>,
    pub trainers: Option<Vec<String>>,
    pub syllabus: Option<Option<String>>,
    pub hours: Option<Option<i32>>,
    pub certificate_threshold_percent: Option<Option<i32>>,
}

pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<event::Model> {
    found::<event::Entity>(db, id, "event").await
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<event::Model>> {
    rows_by_ids(db, event::Column::Id, ids).await
}

/// The event row, locked until the transaction ends (PostgreSQL; SQLite serializes anyway).
pub(super) async fn lock_event(db: &impl ConnectionTrait, id: i64) -> AppResult<event::Model> {
    event::Entity::find_by_id(id).lock_exclusive().one(db).await?.ok_or_else(|| AppError::NotFound("event".into()))
}

/// The account acting, which books the room of an event held in the base.
pub(super) fn account_of(actor: &Actor) -> Option<i64> {
    (actor.kind == crate::events::ActorKind::Account).then_some(actor.id).flatten()
}

pub(super) fn event_event(kind: Kind, e: &event::Model, payload: serde_json::Value) -> LogEvent {
    LogEvent::new(kind, e.id).organization(Some(e.organizer_id)).payload(payload)
}

/// A registration's event: about the registration, concerning its registrant.
pub(super) fn registration_event(kind: Kind, r: &registration::Model) -> LogEvent {
    LogEvent::new(kind, r.id)
        .account(r.account_id)
        .payload(json!({ "eventId": r.event_id, "partySize": r.party_size, "status": r.status.to_value() }))
}

/// The event a registration written directly (the demo seed's history) is recorded with.
pub fn demo_registration_event(r: &registration::Model) -> LogEvent {
    let kind = match r.status {
        RegistrationStatus::Confirmed => Kind::RegistrationConfirmed,
        RegistrationStatus::Waitlisted => Kind::RegistrationWaitlisted,
        RegistrationStatus::Cancelled => Kind::RegistrationCancelled,
        RegistrationStatus::Declined => Kind::RegistrationRejected,
        RegistrationStatus::Pending => Kind::RegistrationPending,
    };
    registration_event(kind, r)
}

/// Loads an event the viewer runs (staff, or members of the organizer).
pub(super) async fn managed(db: &impl ConnectionTrait, viewer: &Viewer, id: i64) -> AppResult<event::Model> {
    // Anonymous callers learn nothing about which events exist.
    viewer.require_account()?;
    let event = find(db, id).await?;
    viewer.require_manage_event(event.organizer_id)?;
    Ok(event)
}

/// Command: an organizer (its members, or staff) creates an event as a draft.
pub async fn create_event(ctx: Ctx<'_>, viewer: &Viewer, input: NewEvent) -> AppResult<event::Model> {
    viewer.require_manage_event(input.organizer_id)?;
    let approves = viewer.may_reserve_without_approval();
    as_viewer!(viewer, |actor| create(ctx, actor, approves, input.clone()))
}

/// Command: the organizer edits an event (more seats promote the waitlist).
pub async fn update_event(ctx: Ctx<'_>, viewer: &Viewer, id: i64, patch: EventPatch) -> AppResult<event::Model> {
    managed(ctx.db, viewer, id).await?;
    let approves = viewer.may_reserve_without_approval();
    as_viewer!(viewer, |actor| update(ctx, actor, approves, id, patch.clone()))
}

/// Command: the organizer publishes, cancels or completes an event.
pub async fn change_event_status(ctx: Ctx<'_>, viewer: &Viewer, id: i64, to: EventStatus) -> AppResult<event::Model> {
    managed(ctx.db, viewer, id).await?;
    let approves = viewer.may_reserve_without_approval();
    as_viewer!(viewer, |actor| transition(ctx, actor, approves, id, to))
}

/// Command: an organizer starts a training programme (its cohorts are trainings).
pub async fn create_training_programme(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    title: &str,
    description: Option<String>,
    organizer_id: i64,
) -> AppResult<programme::Model> {
    viewer.require_manage_event(organizer_id)?;
    as_viewer!(viewer, |actor| create_programme(ctx, actor, title, description.clone(), organizer_id))
}

/// Command: the organizer adds an exhibit to an exhibition.
pub async fn add_event_exhibit(ctx: Ctx<'_>, viewer: &Viewer, input: NewExhibit) -> AppResult<exhibit::Model> {
    managed(ctx.db, viewer, input.event_id).await?;
    as_viewer!(viewer, |actor| add_exhibit(ctx, actor, input.clone()))
}

/// Command: the organizer removes an exhibit; those after it move up.
pub async fn remove_event_exhibit(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<exhibit::Model> {
    viewer.require_account()?;
    let found = find_exhibit(ctx.db, id).await?;
    managed(ctx.db, viewer, found.event_id).await?;
    as_viewer!(viewer, |actor| remove_exhibit(ctx, actor, id))
}

/// Command: the organizer adds a delegation to an exchange.
pub async fn add_event_delegation(ctx: Ctx<'_>, viewer: &Viewer, input: NewDelegation) -> AppResult<delegation::Model> {
    managed(ctx.db, viewer, input.event_id).await?;
    as_viewer!(viewer, |actor| add_delegation(ctx, actor, input.clone()))
}

/// Command: the organizer removes a delegation.
pub async fn remove_event_delegation(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<delegation::Model> {
    viewer.require_account()?;
    let found = find_delegation(ctx.db, id).await?;
    managed(ctx.db, viewer, found.event_id).await?;
    as_viewer!(viewer, |actor| remove_delegation(ctx, actor, id))
}

/// `approves`: whether the actor may reserve a space that needs the base's approval.
pub async fn create(ctx: Ctx<'_>, actor: &Actor, approves: bool, input: NewEvent) -> AppResult<event::Model> {
    let now = crate::service::now();
    let training = match (input.kind, input.training) {
        (EventKind::Training, Some(t)) => Some(t),
        (EventKind::Training, None) => {
            return Err(AppError::bad_input("training", "a training needs its programme and cohort"));
        }
        (_, Some(_)) => return Err(AppError::bad_input("training", "training fields are for trainings only")),
        (_, None) => None,
    };
    let questions = build_questions(input.questions)?;
    let tags = text_list("audienceTags", input.audience_tags, 20, 30)?;
    let mut model = event::Model {
        id: 0,
        kind: input.kind,
        title: required_text("title", &input.title, 200)?,
        title_traditional: optional_text("titleTraditional", input.title_traditional, 200)?,
        summary: optional_text("summary", input.summary, 500)?.unwrap_or_default(),
        summary_traditional: optional_text("summaryTraditional", input.summary_traditional, 500)?,
        description: optional_text("description", input.description, 20_000)?.unwrap_or_default(),
        description_traditional: optional_text("descriptionTraditional", input.description_traditional, 20_000)?,
        starts_at: input.starts_at,
        ends_at: input.ends_at,
        time_zone: validate_time_zone(input.time_zone)?,
        venue_space_id: input.venue_space_id,
        venue_address: optional_text("venueAddress", input.venue_address, 300)?,
        organizer_id: input.organizer_id,
        status: EventStatus::Draft,
        capacity: input.capacity,
        seats_taken: 0,
        group_limit: input.group_limit.unwrap_or(1),
        registration_opens_at: input.registration_opens_at,
        registration_closes_at: input.registration_closes_at,
        cancellation_deadline: input.cancellation_deadline,
        requires_approval: input.requires_approval,
        requires_identity_document: input.requires_identity_document,
        audience_tags: json(&tags),
        questions: json(&questions),
        programme_id: None,
        cohort: None,
        trainers: None,
        syllabus: None,
        hours: None,
        certificate_threshold_percent: None,
        created_at: now,
        updated_at: now,
    };
    if let Some(t) = training {
        model.programme_id = Some(t.programme_id);
        model.cohort = Some(t.cohort);
        model.trainers = Some(json(&text_list("trainers", t.trainers, 20, 100)?));
        model.syllabus = optional_text("syllabus", t.syllabus, 20_000)?;
        model.hours = t.hours;
        model.certificate_threshold_percent = t.certificate_threshold_percent;
    }
    check_event(&model)?;
    let txn = ctx.db.begin().await?;
    if crate::service::organization::find_by_ids(&txn, &[model.organizer_id]).await?.is_empty() {
        return Err(AppError::bad_input("organizerId", "no such organization"));
    }
    if let (Some(programme_id), Some(cohort)) = (model.programme_id, model.cohort) {
        if programme::Entity::find_by_id(programme_id).one(&txn).await?.is_none() {
            return Err(AppError::bad_input("programmeId", "no such training programme"));
        }
        let taken = event::Entity::find()
            .filter(event::Column::ProgrammeId.eq(programme_id))
            .filter(event::Column::Cohort.eq(cohort))
            .one(&txn)
            .await?;
        if taken.is_some() {
            return Err(AppError::conflict("COHORT_TAKEN", format!("cohort {cohort} of this programme exists")));
        }
    }
    let venue = match model.venue_space_id {
        Some(space_id) => Some(crate::service::booking::prepare_event_venue(&txn, space_id, model.capacity).await?),
        None => None,
    };
    let mut active: event::ActiveModel = model.into();
    active.id = sea_orm::ActiveValue::NotSet;
    let created = active.insert(&txn).await?;
    let mut events = vec![event_event(
        Kind::EventCreated,
        &created,
        json!({ "kind": created.kind.to_value(), "title": created.title, "startsAt": created.starts_at }),
    )];
    events.extend(
        crate::service::booking::sync_event_booking(&txn, &created, venue.as_ref(), account_of(actor), approves)
            .await?,
    );
    ctx.commit(txn, actor, events).await?;
    Ok(created)
}

pub async fn update(
    ctx: Ctx<'_>,
    actor: &Actor,
    approves: bool,
    id: i64,
    patch: EventPatch,
) -> AppResult<event::Model> {
    let txn = ctx.db.begin().await?;
    let mut m = lock_event(&txn, id).await?;
    let old_times = (m.starts_at, m.ends_at);
    if matches!(m.status, EventStatus::Cancelled | EventStatus::Completed) {
        return Err(AppError::conflict("EVENT_CLOSED", "a cancelled or completed event cannot be edited"));
    }
    if let Some(v) = patch.title {
        m.title = required_text("title", &v, 200)?;
    }
    if let Some(v) = patch.title_traditional {
        m.title_traditional = optional_text("titleTraditional", v, 200)?;
    }
    if let Some(v) = patch.summary {
        m.summary = optional_text("summary", Some(v), 500)?.unwrap_or_default();
    }
    if let Some(v) = patch.summary_traditional {
        m.summary_traditional = optional_text("summaryTraditional", v, 500)?;
    }
    if let Some(v) = patch.description {
        m.description = optional_text("description", Some(v), 20_000)?.unwrap_or_default();
    }
    if let Some(v) = patch.description_traditional {
        m.description_traditional = optional_text("descriptionTraditional", v, 20_000)?;
    }
    if let Some(v) = patch.starts_at {
        m.starts_at = v;
    }
    if let Some(v) = patch.ends_at {
        m.ends_at = v;
    }
    if let Some(v) = patch.time_zone {
        m.time_zone = validate_time_zone(Some(v))?;
    }
    if let Some((space, address)) = patch.venue {
        m.venue_space_id = space;
        m.venue_address = optional_text("venueAddress", address, 300)?;
    }
    let old_capacity = m.capacity;
    if let Some(v) = patch.capacity {
        m.capacity = v;
    }
    if let Some(v) = patch.group_limit {
        m.group_limit = v;
    }
    if let Some(v) = patch.registration_opens_at {
        m.registration_opens_at = v;
    }
    if let Some(v) = patch.registration_closes_at {
        m.registration_closes_at = v;
    }
    if let Some(v) = patch.cancellation_deadline {
        m.cancellation_deadline = v;
    }
    if let Some(v) = patch.requires_approval {
        m.requires_approval = v;
    }
    if let Some(v) = patch.requires_identity_document {
        m.requires_identity_document = v;
    }
    if let Some(v) = patch.audience_tags {
        m.audience_tags = json(&text_list("audienceTags", v, 20, 30)?);
    }
    if let Some(v) = patch.questions {
        m.questions = json(&build_questions(v)?);
    }
    let is_training = m.kind == EventKind::Training;
    if (patch.trainers.is_some()
        || patch.syllabus.is_some()
        || patch.hours.is_some()
        || patch.certificate_threshold_percent.is_some())
        && !is_training
    {
        return Err(AppError::bad_input("training", "training fields are for trainings only"));
    }
    if let Some(v) = patch.trainers {
        m.trainers = Some(json(&text_list("trainers", v, 20, 100)?));
    }
    if let Some(v) = patch.syllabus {
        m.syllabus = optional_text("syllabus", v, 20_000)?;
    }
    if let Some(v) = patch.hours {
        m.hours = v;
    }
    if let Some(v) = patch.certificate_threshold_percent {
        m.certificate_threshold_percent = v;
    }
    m.updated_at = crate::service::now();
    check_event(&m)?;
    if m.kind == EventKind::Training && (m.starts_at, m.ends_at) != old_times {
        // A session lies within its training, as `addTrainingSession` checks.
        let sessions = sessions_of(&txn, &[m.id]).await?.remove(&m.id).unwrap_or_default();
        let outside = sessions.iter().filter(|s| s.starts_at < m.starts_at || s.ends_at > m.ends_at).count();
        if outside > 0 {
            return Err(AppError::rule(
                "startsAt",
                "SESSIONS_OUTSIDE",
                format!("{outside} of the training's sessions would lie outside its new start and end"),
            ));
        }
    }
    let venue = match m.venue_space_id {
        Some(space_id) => Some(crate::service::booking::prepare_event_venue(&txn, space_id, m.capacity).await?),
        None => None,
    };
    let grew = m.capacity > old_capacity;
    let mut active: event::ActiveModel = m.clone().into();
    // Every column may have changed; seats_taken is only ever moved by the seat functions.
    active = reset_all(active);
    active.seats_taken = sea_orm::ActiveValue::Unchanged(m.seats_taken);
    let mut updated = active.update(&txn).await?;
    let moved = updated.starts_at != old_times.0 || updated.ends_at != old_times.1;
    let mut events = vec![event_event(
        Kind::EventUpdated,
        &updated,
        json!({ "capacity": updated.capacity, "moved": moved, "startsAt": updated.starts_at, "endsAt": updated.ends_at }),
    )];
    events.extend(
        crate::service::booking::sync_event_booking(&txn, &updated, venue.as_ref(), account_of(actor), approves)
            .await?,
    );
    if grew {
        // More seats: the waitlist moves up, in order.
        events.extend(promote_from_waitlist(&txn, &updated).await?);
        updated = find(&txn, id).await?;
    }
    ctx.commit(txn, actor, events).await?;
    Ok(updated)
}

pub(super) fn reset_all(mut a: event::ActiveModel) -> event::ActiveModel {
    use sea_orm::{ActiveModelTrait as _, Iterable};
    for col in event::Column::iter() {
        if !matches!(col, event::Column::Id) {
            a.reset(col);
        }
    }
    a
}

/// The statuses an event may move to from `from`.
pub fn allowed_next(from: EventStatus) -> &'static [EventStatus] {
    use EventStatus::*;
    match from {
        Draft => &[Published, Cancelled],
        Published => &[Cancelled, Completed],
        Cancelled | Completed => &[],
    }
}

pub async fn transition(
    ctx: Ctx<'_>,
    actor: &Actor,
    approves: bool,
    id: i64,
    to: EventStatus,
) -> AppResult<event::Model> {
    let now = crate::service::now();
    let txn = ctx.db.begin().await?;
    let m = lock_event(&txn, id).await?;
    if !allowed_next(m.status).contains(&to) {
        return Err(AppError::conflict(
            "INVALID_STATUS_CHANGE",
            format!("an event cannot move from {} to {}", status_name(m.status), status_name(to)),
        ));
    }
    if to == EventStatus::Completed && now < m.starts_at {
        return Err(AppError::conflict("EVENT_NOT_STARTED", "an event is completed once it has started"));
    }
    let from = m.status;
    // Publishing an event written before events reserved their rooms reserves it now.
    let venue = match (to, m.venue_space_id) {
        (EventStatus::Published, Some(space_id)) => {
            Some(crate::service::booking::prepare_event_venue(&txn, space_id, m.capacity).await?)
        }
        _ => None,
    };
    let mut active: event::ActiveModel = m.into();
    active.status = Set(to);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let reservation =
        crate::service::booking::sync_event_booking(&txn, &updated, venue.as_ref(), account_of(actor), approves)
            .await?;
    let kind = match to {
        EventStatus::Published => Kind::EventPublished,
        EventStatus::Cancelled => Kind::EventCancelled,
        EventStatus::Completed => Kind::EventCompleted,
        EventStatus::Draft => Kind::EventUpdated,
    };
    let mut payload = json!({ "from": status_name(from), "to": status_name(to) });
    let mut released = Vec::new();
    if to == EventStatus::Cancelled {
        let cancelled = cancel_live_registrations(&txn, &updated, now).await?;
        if let Some(map) = payload.as_object_mut() {
            // The notifications consumer tells these registrants (their registrations are no
            // longer live when it reads them): the ones cancelled at this instant.
            map.insert("registrationsCancelledAt".into(), json!(now));
            map.insert("registrationsCancelled".into(), cancelled.len().into());
        }
        released = cancelled.iter().map(|r| registration_event(Kind::RegistrationCancelled, r)).collect();
    }
    if to == EventStatus::Completed {
        let issued = issue_certificates(&txn, &updated).await?;
        if let Some(map) = payload.as_object_mut() {
            map.insert("certificatesIssued".into(), issued.into());
        }
    }
    let updated = if released.is_empty() { updated } else { find(&txn, id).await? };
    let mut events = vec![event_event(kind, &updated, payload)];
    events.extend(reservation);
    events.extend(released);
    ctx.commit(txn, actor, events).await?;
    Ok(updated)
}

/// Cancels every live registration of a cancelled event and frees its seats (with the event
/// row locked). Returns the registrations as they are now.
pub(super) async fn cancel_live_registrations(
    db: &impl ConnectionTrait,
    event: &event::Model,
    now: DateTime<Utc>,
) -> AppResult<Vec<registration::Model>> {
    let live: Vec<i64> = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .filter(registration::Column::EventId.eq(event.id))
        .filter(registration::Column::Status.is_in(LIVE))
        .into_tuple()
        .all(db)
        .await?;
    if live.is_empty() {
        return Ok(Vec::new());
    }
    for chunk in live.chunks(500) {
        registration::Entity::update_many()
            .col_expr(registration::Column::Status, Expr::val(RegistrationStatus::Cancelled))
            .col_expr(registration::Column::CancelledAt, Expr::val(now))
            .col_expr(registration::Column::UpdatedAt, Expr::val(now))
            .filter(registration::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    event::Entity::update_many()
        .col_expr(event::Column::SeatsTaken, Expr::val(0))
        .filter(event::Column::Id.eq(event.id))
        .exec(db)
        .await?;
    let mut rows = Vec::with_capacity(live.len());
    for chunk in live.chunks(500) {
        rows.extend(
            registration::Entity::find()
                .filter(registration::Column::Id.is_in(chunk.iter().copied()))
                .order_by_asc(registration::Column::Id)
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

pub fn status_name(s: EventStatus) -> String {
    use sea_orm::ActiveEnum;
    s.to_value()
}

pub async fn create_programme(
    ctx: Ctx<'_>,
    actor: &Actor,
    title: &str,
    description: Option<String>,
    organizer_id: i64,
) -> AppResult<programme::Model> {
    let title = required_text("title", title, 200)?;
    let description = optional_text("description", description, 20_000)?.unwrap_or_default();
    let txn = ctx.db.begin().await?;
    if crate::service::organization::find_by_ids(&txn, &[organizer_id]).await?.is_empty() {
        return Err(AppError::bad_input("organizerId", "no such organization"));
    }
    let created = programme::ActiveModel {
        title: Set(title),
        description: Set(description),
        organizer_id: Set(organizer_id),
        created_at: Set(crate::service::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = LogEvent::new(Kind::TrainingProgrammeCreated, created.id)
        .organization(Some(organizer_id))
        .payload(json!({ "title": created.title }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(created)
}

pub async fn find_programme(db: &impl ConnectionTrait, id: i64) -> AppResult<programme::Model> {
    found::<programme::Entity>(db, id, "training programme").await
}

pub async fn programmes_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<programme::Model>> {
    rows_by_ids(db, programme::Column::Id, ids).await
}

/// Cohorts (training events) of many programmes, by cohort number.
pub async fn cohorts_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<event::Model>>> {
    let query = event::Entity::find().order_by_asc(event::Column::Cohort);
    grouped(db, query, event::Column::ProgrammeId, ids, |e| e.programme_id).await
}

#[derive(Clone, Debug)]
pub struct NewExhibit {
    pub event_id: i64,
    pub title: String,
    pub story: Option<String>,
    pub media_urls: Vec<String>,
    pub organization_id: Option<i64>,
    pub project_name: Option<String>,
}

pub async fn add_exhibit(ctx: Ctx<'_>, actor: &Actor, input: NewExhibit) -> AppResult<exhibit::Model> {
    let title = required_text("title", &input.title, 200)?;
    let story = optional_text("story", input.story, 20_000)?.unwrap_or_default();
    let urls = url_list("mediaUrls", input.media_urls)?;
    let project_name = optional_text("projectName", input.project_name, 200)?;
    let txn = ctx.db.begin().await?;
    let event = lock_event(&txn, input.event_id).await?;
    if event.kind != EventKind::Exhibition {
        return Err(AppError::refused("WRONG_EVENT_KIND", "exhibits belong to exhibitions"));
    }
    if let Some(org) = input.organization_id
        && crate::service::organization::find_by_ids(&txn, &[org]).await?.is_empty()
    {
        return Err(AppError::bad_input("organizationId", "no such organization"));
    }
    let count = exhibit::Entity::find().filter(exhibit::Column::EventId.eq(event.id)).all(&txn).await?.len();
    if count >= 200 {
        return Err(AppError::bad_input("eventId", "an exhibition holds at most 200 exhibits"));
    }
    let row = exhibit::ActiveModel {
        event_id: Set(event.id),
        position: Set(count as i32 + 1),
        title: Set(title),
        story: Set(story),
        media_urls: Set(json(&urls)),
        organization_id: Set(input.organization_id),
        project_name: Set(project_name),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let log = event_event(Kind::EventExhibitAdded, &event, json!({ "exhibitId": row.id, "title": row.title }));
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(row)
}

pub async fn find_exhibit(db: &impl ConnectionTrait, id: i64) -> AppResult<exhibit::Model> {
    found::<exhibit::Entity>(db, id, "exhibit").await
}

/// Removes an exhibit; the ones after it move up.
pub async fn remove_exhibit(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<exhibit::Model> {
    let txn = ctx.db.begin().await?;
    let found = find_exhibit(&txn, id).await?;
    let event = lock_event(&txn, found.event_id).await?;
    exhibit::Entity::delete_by_id(found.id).exec(&txn).await?;
    exhibit::Entity::update_many()
        .col_expr(exhibit::Column::Position, Expr::col(exhibit::Column::Position).sub(1))
        .filter(exhibit::Column::EventId.eq(found.event_id))
        .filter(exhibit::Column::Position.gt(found.position))
        .exec(&txn)
        .await?;
    let log = event_event(Kind::EventExhibitRemoved, &event, json!({ "exhibitId": found.id, "title": found.title }));
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(found)
}

pub async fn exhibits_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<exhibit::Model>>> {
    let query = exhibit::Entity::find().order_by_asc(exhibit::Column::Position);
    grouped(db, query, exhibit::Column::EventId, ids, |e| e.event_id).await
}

#[derive(Clone, Debug)]
pub struct NewDelegation {
    pub event_id: i64,
    pub origin: Origin,
    pub name: String,
    pub name_traditional: Option<String>,
    pub leader_name: String,
    pub members: Vec<String>,
    pub host_organization_ids: Vec<i64>,
}

pub async fn add_delegation(ctx: Ctx<'_>, actor: &Actor, input: NewDelegation) -> AppResult<delegation::Model> {
    let name = required_text("name", &input.name, 200)?;
    let name_traditional = optional_text("nameTraditional", input.name_traditional, 200)?;
    let leader = required_text("leaderName", &input.leader_name, 100)?;
    let members = text_list("members", input.members, 200, 100)?;
    let mut hosts = input.host_organization_ids;
    hosts.sort_unstable();
    hosts.dedup();
    if hosts.len() > 20 {
        return Err(AppError::bad_input("hostOrganizationIds", "at most 20 host organizations"));
    }
    let txn = ctx.db.begin().await?;
    let event = lock_event(&txn, input.event_id).await?;
    if event.kind != EventKind::Exchange {
        return Err(AppError::refused("WRONG_EVENT_KIND", "delegations belong to exchange events"));
    }
    if crate::service::organization::find_by_ids(&txn, &hosts).await?.len() != hosts.len() {
        return Err(AppError::bad_input("hostOrganizationIds", "no such organization"));
    }
    let row = delegation::ActiveModel {
        event_id: Set(event.id),
        origin: Set(input.origin),
        name: Set(name),
        name_traditional: Set(name_traditional),
        leader_name: Set(leader),
        members: Set(json(&members)),
        host_organization_ids: Set(json(&hosts)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    // Member names stay out of the log: the delegation row holds them.
    let log = event_event(
        Kind::EventDelegationAdded,
        &event,
        json!({ "delegationId": row.id, "origin": row.origin.to_value(), "persons": members.len() + 1 }),
    );
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(row)
}

pub async fn find_delegation(db: &impl ConnectionTrait, id: i64) -> AppResult<delegation::Model> {
    found::<delegation::Entity>(db, id, "delegation").await
}

pub async fn remove_delegation(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<delegation::Model> {
    let txn = ctx.db.begin().await?;
    let found = find_delegation(&txn, id).await?;
    let event = find(&txn, found.event_id).await?;
    delegation::Entity::delete_by_id(found.id).exec(&txn).await?;
    let log = event_event(Kind::EventDelegationRemoved, &event, json!({ "delegationId": found.id }));
    ctx.commit(txn, actor, vec![log]).await?;
    Ok(found)
}

pub async fn delegations_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<delegation::Model>>> {
    let query = delegation::Entity::find().order_by_asc(delegation::Column::Id);
    grouped(db, query, delegation::Column::EventId, ids, |d| d.event_id).await
}

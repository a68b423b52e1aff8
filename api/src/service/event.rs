//! Events of the base — trainings (cohorts of a programme), exhibitions, salons, promotional
//! events and cross-strait exchanges — with their lifecycle `DRAFT → PUBLISHED → COMPLETED`
//! (or `CANCELLED`), registration with an automatic waitlist, tickets, check-in, identity
//! documents and the person-times they produce.
//!
//! Seats: every write that changes who holds a seat locks the event row first (`SELECT … FOR
//! UPDATE` on PostgreSQL; SQLite runs one connection, so its transactions already serialize)
//! and updates `events.seats_taken` in the same transaction. The waitlist and the counter can
//! therefore never disagree, and nobody is confirmed past capacity.
use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use entity::delegation::{self, Origin};
use entity::event::{self, EventKind, EventStatus};
use entity::exhibit;
use entity::registration::{self, IdDocType, RegistrationStatus};
use entity::training_programme as programme;
use entity::{session_attendance as attendance, training_session as session};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use sea_orm::ActiveEnum;
use serde_json::json;

use super::pagination::{self, Page, PageArgs, SortDirection, SortKey, SortValue};
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind as Kind, NewEvent as LogEvent};

/// The base's zone; China has no daylight saving, so a fixed offset is exact.
pub const BASE_TIME_ZONE: &str = "Asia/Shanghai";
const CACHE_TAG: &str = crate::tags::EVENTS;
pub const MAX_CAPACITY: i32 = 100_000;
pub const MAX_GROUP_LIMIT: i32 = 50;
pub const MAX_QUESTIONS: usize = 20;
pub const MAX_CALENDAR_EVENTS: u64 = 500;

pub fn base_offset() -> FixedOffset {
    use chrono::Offset;
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A question every registrant of an event answers (or may answer).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Question {
    /// Stable key answers refer to: `q1`, `q2`, …
    pub key: String,
    pub prompt: String,
    pub required: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Answer {
    pub question: String,
    pub answer: String,
}

pub fn questions_of(event: &event::Model) -> Vec<Question> {
    serde_json::from_str(&event.questions).unwrap_or_default()
}

pub fn tags_of(event: &event::Model) -> Vec<String> {
    serde_json::from_str(&event.audience_tags).unwrap_or_default()
}

pub fn strings_of(raw: Option<&str>) -> Vec<String> {
    raw.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default()
}

pub fn answers_of(reg: &registration::Model) -> Vec<Answer> {
    serde_json::from_str(&reg.answers).unwrap_or_default()
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

// ---------------------------------------------------------------- validation helpers

fn required_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::bad_input(field, format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v.to_owned())
}

fn optional_text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

fn text_list(field: &str, values: Vec<String>, max_items: usize, max_chars: usize) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = required_text(field, &v, max_chars)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.len() > max_items {
        return Err(AppError::bad_input(field, format!("at most {max_items} {field}")));
    }
    Ok(out)
}

fn url_list(field: &str, values: Vec<String>) -> AppResult<Vec<String>> {
    let urls = text_list(field, values, 20, 500)?;
    for url in &urls {
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(AppError::bad_input(field, format!("`{url}` is not an http(s) URL")));
        }
    }
    Ok(urls)
}

fn validate_time_zone(raw: Option<String>) -> AppResult<String> {
    let tz = raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).unwrap_or_else(|| BASE_TIME_ZONE.to_owned());
    let valid = tz.len() <= 64
        && tz.contains('/')
        && tz.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        && !tz.starts_with('/')
        && !tz.ends_with('/');
    if !valid {
        return Err(AppError::bad_input("timeZone", "timeZone is an IANA zone name such as Asia/Shanghai"));
    }
    Ok(tz)
}

fn build_questions(prompts: Vec<QuestionInput>) -> AppResult<Vec<Question>> {
    if prompts.len() > MAX_QUESTIONS {
        return Err(AppError::bad_input("questions", format!("at most {MAX_QUESTIONS} questions")));
    }
    prompts
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            Ok(Question {
                key: format!("q{}", i + 1),
                prompt: required_text("questions", &q.prompt, 300)?,
                required: q.required,
            })
        })
        .collect()
}

/// Checks the parts of an event that depend on each other.
fn check_event(m: &event::Model) -> AppResult<()> {
    if m.ends_at <= m.starts_at {
        return Err(AppError::bad_input("endsAt", "endsAt must be after startsAt"));
    }
    if m.ends_at - m.starts_at > Duration::days(60) {
        return Err(AppError::bad_input("endsAt", "an event lasts at most 60 days"));
    }
    if !(1..=MAX_CAPACITY).contains(&m.capacity) {
        return Err(AppError::bad_input("capacity", format!("capacity is 1 to {MAX_CAPACITY}")));
    }
    if m.capacity < m.seats_taken {
        return Err(AppError::refused(
            "CAPACITY_BELOW_SEATS_TAKEN",
            format!("{} seats are already confirmed; capacity cannot go below that", m.seats_taken),
        ));
    }
    if !(1..=MAX_GROUP_LIMIT).contains(&m.group_limit) {
        return Err(AppError::bad_input("groupLimit", format!("groupLimit is 1 to {MAX_GROUP_LIMIT}")));
    }
    match (&m.venue_space_id, &m.venue_address) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_input("venue", "the venue is a base space or an outside address, not both"));
        }
        (None, None) => return Err(AppError::bad_input("venue", "give a base space or an outside address")),
        _ => {}
    }
    if let (Some(opens), Some(closes)) = (m.registration_opens_at, m.registration_closes_at)
        && closes <= opens
    {
        return Err(AppError::bad_input("registrationClosesAt", "registration must close after it opens"));
    }
    if m.registration_closes_at.is_some_and(|c| c > m.ends_at) {
        return Err(AppError::bad_input("registrationClosesAt", "registration closes by the end of the event"));
    }
    if m.registration_opens_at.is_some_and(|o| o >= m.ends_at) {
        return Err(AppError::bad_input("registrationOpensAt", "registration opens before the event ends"));
    }
    if m.cancellation_deadline.is_some_and(|d| d > m.ends_at) {
        return Err(AppError::bad_input("cancellationDeadline", "the cancellation deadline is before the event ends"));
    }
    if m.kind == EventKind::Training {
        if m.programme_id.is_none() || m.cohort.is_none() {
            return Err(AppError::bad_input("training", "a training belongs to a programme and has a cohort number"));
        }
        if m.cohort.is_some_and(|c| !(1..=999).contains(&c)) {
            return Err(AppError::bad_input("cohort", "cohort is 1 to 999"));
        }
        if m.hours.is_some_and(|h| !(1..=2000).contains(&h)) {
            return Err(AppError::bad_input("hours", "hours is 1 to 2000"));
        }
        if m.certificate_threshold_percent.is_some_and(|p| !(1..=100).contains(&p)) {
            return Err(AppError::bad_input("certificateThresholdPercent", "certificateThresholdPercent is 1 to 100"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- events: writes

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
    event::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("event".into()))
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<event::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(event::Entity::find().filter(event::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// The event row, locked until the transaction ends (PostgreSQL; SQLite serializes anyway).
async fn lock_event(db: &impl ConnectionTrait, id: i64) -> AppResult<event::Model> {
    event::Entity::find_by_id(id).lock_exclusive().one(db).await?.ok_or_else(|| AppError::NotFound("event".into()))
}

/// The account acting, which books the room of an event held in the base.
fn account_of(actor: &Actor) -> Option<i64> {
    (actor.kind == crate::events::ActorKind::Account).then_some(actor.id).flatten()
}

fn event_event(kind: Kind, e: &event::Model, payload: serde_json::Value) -> LogEvent {
    LogEvent::new(kind, e.id).organization(Some(e.organizer_id)).payload(payload)
}

/// A registration's event: about the registration, concerning its registrant.
fn registration_event(kind: Kind, r: &registration::Model) -> LogEvent {
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
async fn managed(db: &impl ConnectionTrait, viewer: &Viewer, id: i64) -> AppResult<event::Model> {
    // Anonymous callers learn nothing about which events exist.
    viewer.require_account()?;
    let event = find(db, id).await?;
    viewer.require_manage_event(event.organizer_id)?;
    Ok(event)
}

/// Command: an organizer (its members, or staff) creates an event as a draft.
pub async fn create_event(ctx: Ctx<'_>, viewer: &Viewer, input: NewEvent) -> AppResult<event::Model> {
    viewer.require_manage_event(input.organizer_id)?;
    let actor = Actor::of(viewer);
    retry_transient(|| create(ctx, &actor, input.clone())).await
}

/// Command: the organizer edits an event (more seats promote the waitlist).
pub async fn update_event(ctx: Ctx<'_>, viewer: &Viewer, id: i64, patch: EventPatch) -> AppResult<event::Model> {
    managed(ctx.db, viewer, id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| update(ctx, &actor, id, patch.clone())).await
}

/// Command: the organizer publishes, cancels or completes an event.
pub async fn change_event_status(ctx: Ctx<'_>, viewer: &Viewer, id: i64, to: EventStatus) -> AppResult<event::Model> {
    managed(ctx.db, viewer, id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| transition(ctx, &actor, id, to)).await
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
    let actor = Actor::of(viewer);
    retry_transient(|| create_programme(ctx, &actor, title, description.clone(), organizer_id)).await
}

/// Command: the organizer adds an exhibit to an exhibition.
pub async fn add_event_exhibit(ctx: Ctx<'_>, viewer: &Viewer, input: NewExhibit) -> AppResult<exhibit::Model> {
    managed(ctx.db, viewer, input.event_id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| add_exhibit(ctx, &actor, input.clone())).await
}

/// Command: the organizer removes an exhibit; those after it move up.
pub async fn remove_event_exhibit(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<exhibit::Model> {
    viewer.require_account()?;
    let found = find_exhibit(ctx.db, id).await?;
    managed(ctx.db, viewer, found.event_id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| remove_exhibit(ctx, &actor, id)).await
}

/// Command: the organizer adds a delegation to an exchange.
pub async fn add_event_delegation(ctx: Ctx<'_>, viewer: &Viewer, input: NewDelegation) -> AppResult<delegation::Model> {
    managed(ctx.db, viewer, input.event_id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| add_delegation(ctx, &actor, input.clone())).await
}

/// Command: the organizer removes a delegation.
pub async fn remove_event_delegation(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<delegation::Model> {
    viewer.require_account()?;
    let found = find_delegation(ctx.db, id).await?;
    managed(ctx.db, viewer, found.event_id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| remove_delegation(ctx, &actor, id)).await
}

pub async fn create(ctx: Ctx<'_>, actor: &Actor, input: NewEvent) -> AppResult<event::Model> {
    let now = super::now();
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
        Some(space_id) => Some(super::booking::prepare_event_venue(&txn, space_id, model.capacity).await?),
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
    events.extend(super::booking::sync_event_booking(&txn, &created, venue.as_ref(), account_of(actor)).await?);
    ctx.commit(txn, actor, events).await?;
    Ok(created)
}

pub async fn update(ctx: Ctx<'_>, actor: &Actor, id: i64, patch: EventPatch) -> AppResult<event::Model> {
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
    m.updated_at = super::now();
    check_event(&m)?;
    let venue = match m.venue_space_id {
        Some(space_id) => Some(super::booking::prepare_event_venue(&txn, space_id, m.capacity).await?),
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
    events.extend(super::booking::sync_event_booking(&txn, &updated, venue.as_ref(), account_of(actor)).await?);
    if grew {
        // More seats: the waitlist moves up, in order.
        events.extend(promote_from_waitlist(&txn, &updated).await?);
        updated = find(&txn, id).await?;
    }
    ctx.commit(txn, actor, events).await?;
    Ok(updated)
}

fn reset_all(mut a: event::ActiveModel) -> event::ActiveModel {
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

pub async fn transition(ctx: Ctx<'_>, actor: &Actor, id: i64, to: EventStatus) -> AppResult<event::Model> {
    let now = super::now();
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
            Some(super::booking::prepare_event_venue(&txn, space_id, m.capacity).await?)
        }
        _ => None,
    };
    let mut active: event::ActiveModel = m.into();
    active.status = Set(to);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let reservation = super::booking::sync_event_booking(&txn, &updated, venue.as_ref(), account_of(actor)).await?;
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
async fn cancel_live_registrations(
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
        created_at: Set(super::now()),
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
    programme::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("training programme".into()))
}

pub async fn programmes_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<programme::Model>> {
    Ok(programme::Entity::find().filter(programme::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Cohorts (training events) of many programmes, by cohort number.
pub async fn cohorts_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<event::Model>>> {
    let rows = event::Entity::find()
        .filter(event::Column::ProgrammeId.is_in(ids.iter().copied()))
        .order_by_asc(event::Column::Cohort)
        .all(db)
        .await?;
    let mut map: HashMap<i64, Vec<event::Model>> = HashMap::new();
    for row in rows {
        if let Some(p) = row.programme_id {
            map.entry(p).or_default().push(row);
        }
    }
    Ok(map)
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
    exhibit::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("exhibit".into()))
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
    let rows = exhibit::Entity::find()
        .filter(exhibit::Column::EventId.is_in(ids.iter().copied()))
        .order_by_asc(exhibit::Column::Position)
        .all(db)
        .await?;
    let mut map: HashMap<i64, Vec<exhibit::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.event_id).or_default().push(row);
    }
    Ok(map)
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
    delegation::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("delegation".into()))
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
    let rows = delegation::Entity::find()
        .filter(delegation::Column::EventId.is_in(ids.iter().copied()))
        .order_by_asc(delegation::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<i64, Vec<delegation::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.event_id).or_default().push(row);
    }
    Ok(map)
}

// ---------------------------------------------------------------- events: reads

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct EventFilter {
    pub kinds: Vec<EventKind>,
    /// Events that end at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events that start before this instant.
    pub to: Option<DateTime<Utc>>,
    pub organizer_id: Option<i64>,
    pub search: Option<String>,
    /// Drafts are listed only for staff.
    pub include_drafts: bool,
    /// Exchanges with a delegation from any of these origins.
    pub delegation_origins: Vec<Origin>,
}

fn filtered(filter: &EventFilter) -> AppResult<sea_orm::Select<event::Entity>> {
    use event::Column as C;
    let mut select = event::Entity::find();
    if !filter.kinds.is_empty() {
        select = select.filter(C::Kind.is_in(filter.kinds.iter().copied()));
    }
    if let Some(from) = filter.from {
        select = select.filter(C::EndsAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(C::StartsAt.lt(to));
    }
    if let Some(org) = filter.organizer_id {
        select = select.filter(C::OrganizerId.eq(org));
    }
    if !filter.include_drafts {
        select = select.filter(C::Status.ne(EventStatus::Draft));
    }
    if !filter.delegation_origins.is_empty() {
        let with_origin = Query::select()
            .column(delegation::Column::EventId)
            .from(delegation::Entity)
            .and_where(delegation::Column::Origin.is_in(filter.delegation_origins.iter().copied()))
            .to_owned();
        select = select.filter(C::Id.in_subquery(with_origin));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if search.chars().count() > 100 {
            return Err(AppError::bad_input("search", "search is at most 100 characters"));
        }
        let pattern = pagination::like_contains(&search.to_lowercase());
        let matches =
            |col: C| Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()).escape('\\'));
        select = select
            .filter(Condition::any().add(matches(C::Title)).add(matches(C::TitleTraditional)).add(matches(C::Summary)));
    }
    Ok(select)
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &EventFilter,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<event::Model>> {
    let key: SortKey<event::Entity> = SortKey {
        column: event::Column::StartsAt,
        id: event::Column::Id,
        direction: SortDirection::Asc,
        value_of: |m| (SortValue::Time(m.starts_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, filtered(filter)?, &key, args, limits, with_total).await
}

/// The first instant of a month in the base's zone, and of the next month.
pub fn month_bounds(year: i32, month: u32) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    let start = NaiveDate::from_ymd_opt(year, month, 1)
        .filter(|_| (2000..=2100).contains(&year))
        .ok_or_else(|| AppError::bad_input("month", "month is 1 to 12 of a year 2000 to 2100"))?;
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) }
            .ok_or_else(|| AppError::bad_input("month", "month is 1 to 12"))?;
    let at = |d: NaiveDate| {
        base_offset()
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| AppError::bad_input("month", "no such month"))
    };
    Ok((at(start)?, at(next)?))
}

/// Events that overlap a month, by start (at most `MAX_CALENDAR_EVENTS`).
pub async fn month(
    db: &impl ConnectionTrait,
    year: i32,
    month: u32,
    include_drafts: bool,
) -> AppResult<Vec<event::Model>> {
    let (from, to) = month_bounds(year, month)?;
    let filter = EventFilter { from: Some(from), to: Some(to), include_drafts, ..Default::default() };
    Ok(filtered(&filter)?
        .order_by_asc(event::Column::StartsAt)
        .order_by_asc(event::Column::Id)
        .limit(MAX_CALENDAR_EVENTS)
        .all(db)
        .await?)
}

/// The local date of an instant in the base's zone.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&base_offset()).date_naive()
}

/// Days of a month a multi-day event covers, in the base's zone, clipped to the month.
pub fn days_in_month(event: &event::Model, year: i32, month: u32) -> Vec<NaiveDate> {
    let first = local_date(event.starts_at);
    // An event ending exactly at midnight does not cover the next day.
    let last = std::cmp::max(local_date(event.ends_at - Duration::microseconds(1)), first);
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        if d.year() == year && d.month() == month {
            out.push(d);
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// The cached reads (the event log's coherence consumer invalidates them after writes).
pub struct Events<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
    pub limits: &'a Limits,
}

impl Events<'_> {
    pub async fn list(&self, filter: &EventFilter, args: &PageArgs, with_total: bool) -> AppResult<Page<event::Model>> {
        pagination::validate(args, self.limits)?;
        let shape = serde_json::to_vec(&(filter, args, with_total)).unwrap_or_default();
        let key = format!("list:{}", crate::cache::digest(&shape));
        self.cache.get_or_load(CACHE_TAG, &key, list(self.db, filter, args, self.limits, with_total)).await
    }

    pub async fn month(&self, year: i32, m: u32, include_drafts: bool) -> AppResult<Vec<event::Model>> {
        month_bounds(year, m)?;
        let key = format!("month:{year}-{m}:{include_drafts}");
        self.cache.get_or_load(CACHE_TAG, &key, month(self.db, year, m, include_drafts)).await
    }
}

// ---------------------------------------------------------------- registration

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

#[derive(Clone)]
pub struct NewRegistration {
    pub event_id: i64,
    pub registrant: Registrant,
    /// Persons on the registration, the registrant included.
    pub party_size: i32,
    pub groups: Groups,
    pub answers: Vec<Answer>,
    pub privacy_consent: bool,
    pub client_key: Option<String>,
    pub identity_document: Option<(IdDocType, String)>,
}

fn check_groups(groups: Groups, persons: i32, field: &str) -> AppResult<()> {
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

fn phone(raw: &str) -> AppResult<String> {
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

fn scoped_key(registrant: &Registrant, key: &str) -> String {
    match registrant {
        Registrant::Account { id, .. } => format!("a{id}:{key}"),
        Registrant::Guest { key_id, .. } => format!("k{key_id}:{key}"),
    }
}

const LIVE: [RegistrationStatus; 3] =
    [RegistrationStatus::Pending, RegistrationStatus::Confirmed, RegistrationStatus::Waitlisted];

/// What a caller asks to register; who registers comes from the viewer.
#[derive(Clone, Debug)]
pub struct RegistrationRequest {
    pub event_id: i64,
    /// A named guest `(name, phone)`, registered with a partner key holding REGISTER.
    pub guest: Option<(String, String)>,
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
    request: RegistrationRequest,
) -> AppResult<(registration::Model, bool)> {
    viewer.require_register()?;
    let registrant = match (request.guest, &viewer.account, &viewer.partner) {
        (Some((name, phone)), _, Some(partner)) if viewer.has_scope(super::identity::ApiScope::Register) => {
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
    let new = NewRegistration {
        event_id: request.event_id,
        registrant,
        party_size: request.party_size,
        groups: request.groups,
        answers: request.answers,
        privacy_consent: request.privacy_consent,
        client_key: request.client_key,
        identity_document: request.identity_document,
    };
    let actor = Actor::of(viewer);
    retry_transient(|| register(ctx, &actor, new.clone())).await
}

/// Command: the registrant (the account, or the key that registered the guest) or the
/// organizer cancels a registration; its seats go to the waitlist at once.
pub async fn cancel_registration_as(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<registration::Model> {
    viewer.require_register().or_else(|_| viewer.require_account().map(|_| ()))?;
    let reg = find_registration(ctx.db, id).await?;
    let event = find(ctx.db, reg.event_id).await?;
    viewer.require_cancel_registration(event.organizer_id, reg.account_id, reg.partner_key_id)?;
    let by_organizer = viewer.can_manage_event(event.organizer_id);
    let actor = Actor::of(viewer);
    retry_transient(|| cancel_registration(ctx, &actor, id, by_organizer)).await
}

/// Command: the organizer accepts or declines a registration awaiting approval.
pub async fn decide_registration_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    accept: bool,
) -> AppResult<registration::Model> {
    viewer.require_account()?;
    let reg = find_registration(ctx.db, id).await?;
    let event = find(ctx.db, reg.event_id).await?;
    viewer.require_manage_event(event.organizer_id)?;
    let actor = Actor::of(viewer);
    retry_transient(|| decide_registration(ctx, &actor, id, accept)).await
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
    let actor = Actor::of(viewer);
    let input = CheckIn {
        event_id,
        ticket_code,
        attended,
        groups,
        opens_before: ctx.settings.check_in_opens_before,
        session_id,
    };
    let outcome = retry_transient(|| check_in(ctx, &actor, input.clone())).await?;
    Ok((event, outcome))
}

/// Registers a person (and those they bring). Returns the registration and whether it
/// existed already under the same client key (a replay, which records nothing).
pub async fn register(ctx: Ctx<'_>, actor: &Actor, input: NewRegistration) -> AppResult<(registration::Model, bool)> {
    let now = super::now();
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
        Some(k) => Some(scoped_key(&input.registrant, k)),
    };
    let (account_id, partner_key_id, name, guest_phone) = match &input.registrant {
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
        checked_in_at: Set(None),
        attended: Set(None),
        id_doc_type: Set(document.as_ref().map(|d| d.0)),
        id_doc_number: Set(document.map(|d| d.1)),
        id_doc_purged_at: Set(None),
        decided_at: Set(None),
        cancelled_at: Set(None),
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
async fn queue_time(db: &impl ConnectionTrait, event_id: i64) -> AppResult<DateTime<Utc>> {
    let now = super::now();
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

async fn take_seats(db: &impl ConnectionTrait, event_id: i64, persons: i32) -> AppResult<()> {
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
async fn promote_from_waitlist(db: &impl ConnectionTrait, event: &event::Model) -> AppResult<Vec<LogEvent>> {
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
    let now = super::now();
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
    registration::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("registration".into()))
}

pub async fn registrations_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<registration::Model>> {
    Ok(registration::Entity::find().filter(registration::Column::Id.is_in(ids.iter().copied())).all(db).await?)
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
    let now = super::now();
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
async fn cancel_locked(
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
    let now = super::now();
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
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<registration::Model>> {
    let mut select = registration::Entity::find().filter(registration::Column::EventId.eq(event_id));
    if !statuses.is_empty() {
        select = select.filter(registration::Column::Status.is_in(statuses.iter().copied()));
    }
    let key: SortKey<registration::Entity> = SortKey {
        column: registration::Column::QueuedAt,
        id: registration::Column::Id,
        direction: SortDirection::Asc,
        value_of: |m| (SortValue::Time(m.queued_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, select, &key, args, limits, with_total).await
}

pub async fn registrations_of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<registration::Model>> {
    let select = registration::Entity::find().filter(registration::Column::AccountId.eq(account_id));
    let key: SortKey<registration::Entity> = SortKey {
        column: registration::Column::CreatedAt,
        id: registration::Column::Id,
        direction: SortDirection::Desc,
        value_of: |m| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, select, &key, args, limits, with_total).await
}

// ---------------------------------------------------------------- check-in

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
    let now = super::now();
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
    if event.status == EventStatus::Cancelled {
        return Err(AppError::refused("EVENT_CANCELLED", "the event was cancelled"));
    }
    let opens_before = Duration::from_std(input.opens_before).unwrap_or_else(|_| Duration::hours(1));
    if now < event.starts_at - opens_before {
        return Err(AppError::refused("CHECK_IN_NOT_OPEN", "check-in has not opened yet"));
    }
    if now > event.ends_at {
        return Err(AppError::refused("CHECK_IN_CLOSED", "check-in has closed: the event is over"));
    }
    if reg.status != RegistrationStatus::Confirmed {
        return Err(AppError::refused("REGISTRATION_NOT_CONFIRMED", "this registration holds no confirmed seat"));
    }
    let attended = input.attended.unwrap_or(reg.party_size);
    if !(1..=reg.party_size).contains(&attended) {
        return Err(AppError::bad_input("attended", format!("attended is 1 to {}", reg.party_size)));
    }
    let groups = match input.groups {
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
    // Conditional on "not yet": of two simultaneous scans exactly one records attendance.
    let result = registration::Entity::update_many()
        .col_expr(registration::Column::CheckedInAt, Expr::val(now))
        .col_expr(registration::Column::Attended, Expr::val(attended))
        .col_expr(registration::Column::Women, Expr::val(groups.women))
        .col_expr(registration::Column::Children, Expr::val(groups.children))
        .col_expr(registration::Column::FamilyMembers, Expr::val(groups.family_members))
        .col_expr(registration::Column::Professionals, Expr::val(groups.professionals))
        .col_expr(registration::Column::UpdatedAt, Expr::val(now))
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

// ---------------------------------------------------------------- training sessions

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
    let actor = Actor::of(viewer);
    retry_transient(|| add_session(ctx, &actor, input.clone())).await
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
        created_at: Set(super::now()),
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

/// Sessions of many trainings, in time order.
pub async fn sessions_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<session::Model>>> {
    let mut map: HashMap<i64, Vec<session::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(map);
    }
    let rows = session::Entity::find()
        .filter(session::Column::EventId.is_in(ids.iter().copied()))
        .order_by_asc(session::Column::StartsAt)
        .order_by_asc(session::Column::Id)
        .all(db)
        .await?;
    for row in rows {
        map.entry(row.event_id).or_default().push(row);
    }
    Ok(map)
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
async fn check_in_to_session(
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
    if event.status == EventStatus::Cancelled {
        return Err(AppError::refused("EVENT_CANCELLED", "the event was cancelled"));
    }
    let opens_before = Duration::from_std(input.opens_before).unwrap_or_else(|_| Duration::hours(1));
    if now < session.starts_at - opens_before {
        return Err(AppError::refused("CHECK_IN_NOT_OPEN", "check-in to this session has not opened yet"));
    }
    if now > session.ends_at {
        return Err(AppError::refused("CHECK_IN_CLOSED", "check-in has closed: the session is over"));
    }
    if reg.status != RegistrationStatus::Confirmed {
        return Err(AppError::refused("REGISTRATION_NOT_CONFIRMED", "this registration holds no confirmed seat"));
    }
    let attended = reg.attended.unwrap_or_else(|| input.attended.unwrap_or(reg.party_size));
    if !(1..=reg.party_size).contains(&attended) {
        return Err(AppError::bad_input("attended", format!("attended is 1 to {}", reg.party_size)));
    }
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
        let groups = match input.groups {
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
        update = update
            .col_expr(registration::Column::CheckedInAt, Expr::val(now))
            .col_expr(registration::Column::Attended, Expr::val(attended))
            .col_expr(registration::Column::Women, Expr::val(groups.women))
            .col_expr(registration::Column::Children, Expr::val(groups.children))
            .col_expr(registration::Column::FamilyMembers, Expr::val(groups.family_members))
            .col_expr(registration::Column::Professionals, Expr::val(groups.professionals));
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
async fn issue_certificates(db: &impl ConnectionTrait, event: &event::Model) -> AppResult<usize> {
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

// ---------------------------------------------------------------- counts and impact

/// Live counts of one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub confirmed_registrations: i64,
    pub confirmed_persons: i64,
    pub pending_registrations: i64,
    pub waitlisted_registrations: i64,
    pub waitlisted_persons: i64,
    pub checked_in_registrations: i64,
    pub checked_in_persons: i64,
}

/// event, status, registrations, persons, checked in, attended
type CountRow = (i64, String, i64, Option<i64>, i64, Option<i64>);
/// event, total, women, children, family members, professionals
type ImpactRow = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

pub async fn counts_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, EventCounts>> {
    use registration::Column as C;
    let mut map: HashMap<i64, EventCounts> = ids.iter().map(|id| (*id, EventCounts::default())).collect();
    if ids.is_empty() {
        return Ok(map);
    }
    let rows: Vec<CountRow> = registration::Entity::find()
        .select_only()
        .column(C::EventId)
        .column(C::Status)
        .column_as(Expr::col(C::Id).count(), "n")
        .column_as(Expr::col(C::PartySize).sum().cast_as(bigint()), "persons")
        .column_as(Expr::col(C::CheckedInAt).count(), "checked")
        .column_as(Expr::col(C::Attended).sum().cast_as(bigint()), "attended")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .group_by(C::EventId)
        .group_by(C::Status)
        .into_tuple()
        .all(db)
        .await?;
    for (event_id, status, n, persons, checked, attended) in rows {
        let c = map.entry(event_id).or_default();
        match status.as_str() {
            "CONFIRMED" => {
                c.confirmed_registrations += n;
                c.confirmed_persons += persons.unwrap_or(0);
            }
            "PENDING" => c.pending_registrations += n,
            "WAITLISTED" => {
                c.waitlisted_registrations += n;
                c.waitlisted_persons += persons.unwrap_or(0);
            }
            _ => {}
        }
        c.checked_in_registrations += checked;
        c.checked_in_persons += attended.unwrap_or(0);
    }
    Ok(map)
}

fn bigint() -> sea_orm::sea_query::Alias {
    sea_orm::sea_query::Alias::new("bigint")
}

/// Person-times served, split by who was served (the groups overlap: a woman professional
/// counts in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonTimes {
    pub total: i64,
    pub women: i64,
    pub children: i64,
    pub family_members: i64,
    pub professionals: i64,
    pub events: i64,
}

/// The sum of a registration column counted once per session attended (once for events
/// without sessions).
fn per_session(column: &str) -> Expr {
    Expr::cust(format!(
        "CAST(SUM({column} * CASE WHEN sessions_attended > 1 THEN sessions_attended ELSE 1 END) AS BIGINT)"
    ))
}

/// Person-times of checked-in registrations of events in `ids`, by event: each session of a
/// training attended counts.
pub async fn impact_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, PersonTimes>> {
    use registration::Column as C;
    let rows: Vec<ImpactRow> = registration::Entity::find()
        .select_only()
        .column(C::EventId)
        .column_as(per_session("attended"), "total")
        .column_as(per_session("women"), "women")
        .column_as(per_session("children"), "children")
        .column_as(per_session("family_members"), "family")
        .column_as(per_session("professionals"), "professionals")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .filter(C::CheckedInAt.is_not_null())
        .group_by(C::EventId)
        .into_tuple()
        .all(db)
        .await?;
    let mut map: HashMap<i64, PersonTimes> = ids.iter().map(|id| (*id, PersonTimes::default())).collect();
    for (event_id, total, women, children, family, professionals) in rows {
        map.insert(
            event_id,
            PersonTimes {
                total: total.unwrap_or(0),
                women: women.unwrap_or(0),
                children: children.unwrap_or(0),
                family_members: family.unwrap_or(0),
                professionals: professionals.unwrap_or(0),
                events: 1,
            },
        );
    }
    Ok(map)
}

/// Delegations and the persons in them (leader and members) per event and origin, for the
/// events in `ids`: counted by the database (`json_array_length` on both backends).
pub async fn delegations_by_origin(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<(i64, Origin, i64, i64)>> {
    use delegation::Column as C;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let members = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "json_array_length(members::json)",
        _ => "json_array_length(members)",
    };
    let rows: Vec<(i64, Origin, i64, Option<i64>)> = delegation::Entity::find()
        .select_only()
        .column(C::EventId)
        .column(C::Origin)
        .column_as(Expr::col(C::Id).count(), "delegations")
        .column_as(Expr::cust(format!("CAST(SUM({members} + 1) AS BIGINT)")), "persons")
        .filter(C::EventId.is_in(ids.iter().copied()))
        .group_by(C::EventId)
        .group_by(C::Origin)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(event, origin, n, persons)| (event, origin, n, persons.unwrap_or(0))).collect())
}

/// Person-times served by events that started in `[from, to)`, cancelled events excluded.
/// The base dashboard aggregates this.
pub async fn person_times(db: &impl ConnectionTrait, from: DateTime<Utc>, to: DateTime<Utc>) -> AppResult<PersonTimes> {
    if to <= from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    let ids: Vec<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::StartsAt.gte(from))
        .filter(event::Column::StartsAt.lt(to))
        .filter(event::Column::Status.is_in([EventStatus::Published, EventStatus::Completed]))
        .into_tuple()
        .all(db)
        .await?;
    let mut totals = PersonTimes::default();
    for chunk in ids.chunks(500) {
        for (_, p) in impact_of(db, chunk).await? {
            totals.total += p.total;
            totals.women += p.women;
            totals.children += p.children;
            totals.family_members += p.family_members;
            totals.professionals += p.professionals;
            totals.events += p.events;
        }
    }
    Ok(totals)
}

// ---------------------------------------------------------------- identity documents

/// Erases the identity document numbers of registrations for events that ended more than
/// `retention` ago (the type stays, to show that one was checked). Returns how many.
pub async fn purge_identity_documents(
    ctx: Ctx<'_>,
    actor: &Actor,
    retention: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let cutoff = now - Duration::from_std(retention).unwrap_or_else(|_| Duration::days(30));
    let ended = || {
        Query::select()
            .column(event::Column::Id)
            .from(event::Entity)
            .and_where(Expr::col(event::Column::EndsAt).lt(cutoff))
            .to_owned()
    };
    let txn = ctx.db.begin().await?;
    // Which events, and how many documents each: one event per event in the log.
    let affected: Vec<(i64, i64)> = registration::Entity::find()
        .select_only()
        .column(registration::Column::EventId)
        .column_as(registration::Column::Id.count(), "documents")
        .filter(registration::Column::IdDocNumber.is_not_null())
        .filter(registration::Column::EventId.in_subquery(ended()))
        .group_by(registration::Column::EventId)
        .into_tuple()
        .all(&txn)
        .await?;
    if affected.is_empty() {
        return Ok(0);
    }
    let result = registration::Entity::update_many()
        .col_expr(registration::Column::IdDocNumber, Expr::val(Option::<String>::None))
        .col_expr(registration::Column::IdDocPurgedAt, Expr::val(now))
        .filter(registration::Column::IdDocNumber.is_not_null())
        .filter(registration::Column::EventId.in_subquery(ended()))
        .exec(&txn)
        .await?;
    let events = affected
        .into_iter()
        .map(|(event_id, documents)| {
            LogEvent::new(Kind::EventIdentityDocumentsPurged, event_id).payload(json!({ "documents": documents }))
        })
        .collect();
    ctx.commit(txn, actor, events).await?;
    Ok(result.rows_affected)
}

/// Places in the waitlist (1 = next) of these registrations; others are left out.
pub async fn waitlist_positions(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
    let events = Query::select()
        .column(registration::Column::EventId)
        .from(registration::Entity)
        .and_where(Expr::col(registration::Column::Id).is_in(ids.iter().copied()))
        .to_owned();
    let waiting = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .column(registration::Column::EventId)
        .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted))
        .filter(registration::Column::EventId.in_subquery(events))
        .order_by_asc(registration::Column::EventId)
        .order_by_asc(registration::Column::QueuedAt)
        .order_by_asc(registration::Column::Id)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?;
    let mut map = HashMap::new();
    let mut current = (0_i64, 0_i64);
    for (id, event_id) in waiting {
        current = if current.0 == event_id { (event_id, current.1 + 1) } else { (event_id, 1) };
        if ids.contains(&id) {
            map.insert(id, current.1);
        }
    }
    Ok(map)
}

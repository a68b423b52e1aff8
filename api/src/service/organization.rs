//! Organizations of the base: the directory, validation of their profile, and the lifecycle
//! `LIAISON → APPLIED → INCUBATING → RESIDENT → GRADUATED` (with `EXITED`) kept as history.
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::organization::{self, OrganizationKind, Stage};
use entity::organization_focus_area::{self as focus, FocusArea};
use entity::organization_stage_transition as transition;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::common::{ExecOne, changed_meanwhile, found, grouped};
use super::credit_code;
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::{optional_text, optional_url, required_text};

/// An organization with what it is always shown with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub org: organization::Model,
    pub focus_areas: Vec<FocusArea>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct OrganizationFilter {
    /// Any of these stages.
    pub stages: Vec<Stage>,
    /// Serving any of these areas.
    pub focus_areas: Vec<FocusArea>,
    pub kinds: Vec<OrganizationKind>,
    /// Substring of any of the names or the slug; case-insensitive for Latin letters.
    pub search: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum OrganizationSort {
    #[default]
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, Debug, Default)]
pub struct NewOrganization {
    pub name: String,
    pub name_traditional: Option<String>,
    pub name_en: Option<String>,
    pub slug: Option<String>,
    pub kind: Option<OrganizationKind>,
    pub credit_code: Option<String>,
    pub founded_on: Option<NaiveDate>,
    pub focus_areas: Vec<FocusArea>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    /// `LIAISON` (default) or `APPLIED`: later stages are reached by transitions.
    pub stage: Option<Stage>,
    pub joined_at: Option<DateTime<Utc>>,
    /// The account that applied on the organization's behalf; it becomes the owner.
    pub owner_account_id: Option<i64>,
}

/// A change of some fields: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    pub name_traditional: Option<Option<String>>,
    pub name_en: Option<Option<String>>,
    pub slug: Option<String>,
    pub kind: Option<OrganizationKind>,
    pub credit_code: Option<Option<String>>,
    pub founded_on: Option<Option<NaiveDate>>,
    pub focus_areas: Option<Vec<FocusArea>>,
    pub contact_name: Option<Option<String>>,
    pub contact_phone: Option<Option<String>>,
    pub contact_email: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub description: Option<String>,
    pub logo_url: Option<Option<String>>,
}

impl OrganizationPatch {
    /// The names of the fields the patch sets, for the audit trail.
    fn changed_fields(&self) -> Vec<&'static str> {
        crate::service::common::names_set([
            ("name", self.name.is_some()),
            ("nameTraditional", self.name_traditional.is_some()),
            ("nameEn", self.name_en.is_some()),
            ("slug", self.slug.is_some()),
            ("kind", self.kind.is_some()),
            ("creditCode", self.credit_code.is_some()),
            ("foundedOn", self.founded_on.is_some()),
            ("focusAreas", self.focus_areas.is_some()),
            ("contactName", self.contact_name.is_some()),
            ("contactPhone", self.contact_phone.is_some()),
            ("contactEmail", self.contact_email.is_some()),
            ("website", self.website.is_some()),
            ("description", self.description.is_some()),
            ("logoUrl", self.logo_url.is_some()),
        ])
    }
}

pub const MAX_SEARCH_CHARS: usize = 100;
pub const MAX_HISTORY: usize = 100;

/// The stages an organization may move to from `from`.
pub fn allowed_next(from: Stage) -> &'static [Stage] {
    use Stage::*;
    match from {
        Liaison => &[Applied, Exited],
        Applied => &[Incubating, Liaison, Exited],
        Incubating => &[Resident, Graduated, Exited],
        Resident => &[Graduated, Exited],
        Graduated => &[Exited],
        Exited => &[Liaison, Applied],
    }
}

// ---------------------------------------------------------------- reads

pub async fn find_by_slug(db: &impl ConnectionTrait, slug: &str) -> AppResult<Option<OrganizationRecord>> {
    let found = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug.trim().to_ascii_lowercase()))
        .find_with_related(focus::Entity)
        .all(db)
        .await?;
    Ok(records(found).into_iter().next())
}

/// An organization's page: the organization with its focus areas and its stage history (the
/// newest `MAX_HISTORY` entries, oldest first), in one statement: the two relations come as
/// JSON arrays built by the database.
pub async fn find_page_by_slug(db: &impl ConnectionTrait, slug: &str) -> AppResult<Option<OrganizationPage>> {
    use sea_orm::{DbBackend, FromQueryResult, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT o.*, \
               (SELECT COALESCE(json_agg(f.focus_area), '[]')::text FROM organization_focus_areas f \
                 WHERE f.organization_id = o.id) AS focus_json, \
               (SELECT COALESCE(json_agg(json_build_array(t.id, t.from_stage, t.to_stage, t.note, t.occurred_at, \
                   t.recorded_at) ORDER BY t.occurred_at, t.id), '[]')::text \
                 FROM (SELECT * FROM organization_stage_transitions s WHERE s.organization_id = o.id \
                   ORDER BY s.occurred_at DESC, s.id DESC LIMIT {MAX_HISTORY}) t) AS history_json \
             FROM organizations o WHERE o.slug = $1"
        ),
        _ => format!(
            "SELECT o.*, \
               (SELECT json_group_array(f.focus_area) FROM organization_focus_areas f \
                 WHERE f.organization_id = o.id) AS focus_json, \
               (SELECT json_group_array(json_array(t.id, t.from_stage, t.to_stage, t.note, t.occurred_at, \
                   t.recorded_at)) \
                 FROM (SELECT * FROM (SELECT * FROM organization_stage_transitions s WHERE s.organization_id = o.id \
                   ORDER BY s.occurred_at DESC, s.id DESC LIMIT {MAX_HISTORY}) ORDER BY occurred_at, id) t) AS history_json \
             FROM organizations o WHERE o.slug = ?"
        ),
    };
    let statement = Statement::from_sql_and_values(backend, sql, [slug.trim().to_ascii_lowercase().into()]);
    let Some(row) = db.query_one_raw(statement).await? else { return Ok(None) };
    let org = organization::Model::from_query_result(&row, "")?;
    let undecodable = |what: &str| AppError::Internal(format!("organization {}: undecodable {what}", org.id));
    let focus_json: String = row.try_get("", "focus_json")?;
    let history_json: String = row.try_get("", "history_json")?;
    let areas: Vec<String> = serde_json::from_str(&focus_json).map_err(|_| undecodable("focus areas"))?;
    let mut focus_areas = areas
        .iter()
        .map(|a| enum_value::<FocusArea>(a))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| undecodable("focus areas"))?;
    focus_areas.sort();
    type Entry = (i64, Option<String>, String, String, String, String);
    let entries: Vec<Entry> = serde_json::from_str(&history_json).map_err(|_| undecodable("stage history"))?;
    let history = entries
        .into_iter()
        .map(|(id, from, to, note, occurred, recorded)| {
            Some(transition::Model {
                id,
                organization_id: org.id,
                from_stage: match from {
                    Some(from) => Some(enum_value::<Stage>(&from)?),
                    None => None,
                },
                to_stage: enum_value::<Stage>(&to)?,
                note,
                occurred_at: instant(&occurred)?,
                recorded_at: instant(&recorded)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| undecodable("stage history"))?;
    Ok(Some(OrganizationPage { record: OrganizationRecord { org, focus_areas }, history }))
}

/// An organization with its stage history, as its page shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrganizationPage {
    pub record: OrganizationRecord,
    pub history: Vec<transition::Model>,
}

fn enum_value<E: sea_orm::ActiveEnum<Value = String>>(text: &str) -> Option<E> {
    E::try_from_value(&text.to_owned()).ok()
}

/// An instant as the databases render it in JSON: RFC 3339 (PostgreSQL, and SQLite's bound
/// values), or SQLite's `YYYY-MM-DD HH:MM:SS[.fff]` in UTC.
fn instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(at.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok().map(|at| at.and_utc())
}

/// Organizations by id, in no particular order; missing ids are left out. One statement: the
/// focus areas come joined.
pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<OrganizationRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = organization::Entity::find()
        .filter(organization::Column::Id.is_in(ids.iter().copied()))
        .find_with_related(focus::Entity)
        .all(db)
        .await?;
    Ok(records(found))
}

/// Organizations read with their focus areas joined.
fn records(found: Vec<(organization::Model, Vec<focus::Model>)>) -> Vec<OrganizationRecord> {
    found
        .into_iter()
        .map(|(org, areas)| {
            let mut focus_areas: Vec<FocusArea> = areas.into_iter().map(|a| a.focus_area).collect();
            focus_areas.sort();
            OrganizationRecord { focus_areas, org }
        })
        .collect()
}

/// Focus areas of many organizations in one statement.
pub async fn focus_areas_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<FocusArea>>> {
    let rows = grouped(db, focus::Entity::find(), focus::Column::OrganizationId, ids, |f| f.organization_id).await?;
    let areas = |rows: Vec<focus::Model>| {
        let mut areas: Vec<FocusArea> = rows.into_iter().map(|f| f.focus_area).collect();
        areas.sort();
        areas
    };
    Ok(rows.into_iter().map(|(org, rows)| (org, areas(rows))).collect())
}

/// Stage histories of many organizations in one statement, oldest first, the newest
/// `MAX_HISTORY` entries of each.
pub async fn stage_histories(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> AppResult<HashMap<i64, Vec<transition::Model>>> {
    let query =
        transition::Entity::find().order_by_asc(transition::Column::OccurredAt).order_by_asc(transition::Column::Id);
    let mut map = grouped(db, query, transition::Column::OrganizationId, ids, |t| t.organization_id).await?;
    for history in map.values_mut() {
        history.drain(..history.len().saturating_sub(MAX_HISTORY));
    }
    Ok(map)
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &OrganizationFilter,
    sort: OrganizationSort,
    direction: SortDirection,
    page: PageRequest<'_>,
) -> AppResult<Page<OrganizationRecord>> {
    use organization::Column as C;
    let mut select = organization::Entity::find();
    if !filter.stages.is_empty() {
        select = select.filter(C::Stage.is_in(filter.stages.iter().copied()));
    }
    if !filter.kinds.is_empty() {
        select = select.filter(C::Kind.is_in(filter.kinds.iter().copied()));
    }
    if !filter.focus_areas.is_empty() {
        let serving = Query::select()
            .column(focus::Column::OrganizationId)
            .from(focus::Entity)
            .and_where(focus::Column::FocusArea.is_in(filter.focus_areas.iter().copied()))
            .to_owned();
        select = select.filter(C::Id.in_subquery(serving));
    }
    let searched = [C::Name, C::NameTraditional, C::NameEn, C::Slug];
    if let Some(matches) = pagination::search_in(filter.search.as_deref(), MAX_SEARCH_CHARS, &searched)? {
        select = select.filter(matches);
    }
    let key = match sort {
        OrganizationSort::Name => SortKey::<organization::Entity>::text(C::Name, C::Id, direction),
        OrganizationSort::CreatedAt => SortKey::<organization::Entity>::time(C::CreatedAt, C::Id, direction),
        OrganizationSort::UpdatedAt => SortKey::<organization::Entity>::time(C::UpdatedAt, C::Id, direction),
    };
    let page = pagination::paginate(db, select, &key, page).await?;
    let ids: Vec<i64> = page.items.iter().map(|(_, m)| m.id).collect();
    let mut areas = focus_areas_of(db, &ids).await?;
    Ok(page.map(|org| OrganizationRecord { focus_areas: areas.remove(&org.id).unwrap_or_default(), org }))
}

// ---------------------------------------------------------------- validation

fn optional_email(value: Option<String>) -> AppResult<Option<String>> {
    let v = optional_text("contactEmail", value, 254)?;
    if let Some(email) = &v {
        let valid = email.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !email.contains(char::is_whitespace)
        });
        if !valid {
            return Err(AppError::bad_input("contactEmail", "contactEmail is not an email address"));
        }
    }
    Ok(v)
}

fn optional_phone(value: Option<String>) -> AppResult<Option<String>> {
    let v = optional_text("contactPhone", value, 40)?;
    if let Some(phone) = &v {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        let valid = phone.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) && (5..=20).contains(&digits);
        if !valid {
            return Err(AppError::bad_input("contactPhone", "contactPhone is not a phone number"));
        }
    }
    Ok(v)
}

fn optional_credit_code(value: Option<String>) -> AppResult<Option<String>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => credit_code::normalize(raw).map(Some).map_err(|m| AppError::bad_input("creditCode", m)),
    }
}

fn validate_founded_on(value: Option<NaiveDate>) -> AppResult<Option<NaiveDate>> {
    if value.is_some_and(|d| d > Utc::now().date_naive()) {
        return Err(AppError::bad_input("foundedOn", "foundedOn is in the future"));
    }
    Ok(value)
}

pub fn validate_slug(raw: &str) -> AppResult<String> {
    let slug = raw.trim().to_ascii_lowercase();
    let valid = (3..=64).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if !valid {
        return Err(AppError::bad_input("slug", "slug is 3 to 64 characters of a-z, 0-9 and single hyphens inside"));
    }
    Ok(slug)
}

/// A readable slug from the English name when there is one, otherwise `org-` and random.
fn generate_slug(name_en: Option<&str>) -> String {
    let from_en: String = name_en
        .unwrap_or_default()
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut base: String = from_en.chars().take(50).collect();
    base = base.trim_end_matches('-').to_owned();
    if base.len() < 3 { format!("org-{suffix}") } else { format!("{base}-{suffix}") }
}

fn dedup_areas(mut areas: Vec<FocusArea>) -> AppResult<Vec<FocusArea>> {
    areas.sort();
    areas.dedup();
    if areas.len() > 12 {
        return Err(AppError::bad_input("focusAreas", "at most 12 focus areas"));
    }
    Ok(areas)
}

// ---------------------------------------------------------------- commands

/// Command: staff add an organization to the network in a starting stage; any signed-in
/// account may apply for incubation on behalf of a new organization (stage APPLIED) and
/// becomes its owner.
pub async fn create_organization(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    input: NewOrganization,
) -> AppResult<OrganizationRecord> {
    let (stage, owner) = viewer.organization_entry(input.stage)?;
    let input = NewOrganization { stage, owner_account_id: owner, ..input };
    let record = as_viewer!(viewer, |actor| create(ctx, actor, input.clone()))?;
    if owner.is_some() {
        viewer.grant(record.org.id, entity::membership::MemberRole::Owner);
    }
    Ok(record)
}

/// Command: edits an organization's profile (staff and its members).
pub async fn update_organization(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: OrganizationPatch,
) -> AppResult<OrganizationRecord> {
    viewer.require_edit_organization(id)?;
    as_viewer!(viewer, |actor| update(ctx, actor, id, patch.clone()))
}

/// Command: moves an organization along its lifecycle (staff).
pub async fn change_stage(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    change: StageChange,
) -> AppResult<(OrganizationRecord, transition::Model)> {
    viewer.require_change_stage()?;
    as_viewer!(viewer, |actor| transition(ctx, actor, change.clone()))
}

// ---------------------------------------------------------------- writes

pub async fn create(ctx: Ctx<'_>, actor: &Actor, input: NewOrganization) -> AppResult<OrganizationRecord> {
    let db = ctx.db;
    let now = super::now();
    let name = required_text("name", &input.name, 200)?;
    let name_en = optional_text("nameEn", input.name_en, 300)?;
    let slug = match input.slug.as_deref() {
        Some(s) if !s.trim().is_empty() => validate_slug(s)?,
        _ => generate_slug(name_en.as_deref()),
    };
    let stage = input.stage.unwrap_or(Stage::Liaison);
    if !matches!(stage, Stage::Liaison | Stage::Applied) {
        return Err(AppError::bad_input(
            "stage",
            "a new organization starts as LIAISON or APPLIED; later stages are reached by transitions",
        ));
    }
    let joined_at = input.joined_at.unwrap_or(now);
    if joined_at > now + chrono::Duration::minutes(1) {
        return Err(AppError::bad_input("joinedAt", "joinedAt is in the future"));
    }
    let areas = dedup_areas(input.focus_areas)?;
    let model = organization::ActiveModel {
        slug: Set(slug),
        name: Set(name),
        name_traditional: Set(optional_text("nameTraditional", input.name_traditional, 200)?),
        name_en: Set(name_en),
        kind: Set(input.kind.unwrap_or(OrganizationKind::SocialServiceAgency)),
        credit_code: Set(optional_credit_code(input.credit_code)?),
        founded_on: Set(validate_founded_on(input.founded_on)?),
        contact_name: Set(optional_text("contactName", input.contact_name, 100)?),
        contact_phone: Set(optional_phone(input.contact_phone)?),
        contact_email: Set(optional_email(input.contact_email)?),
        website: Set(optional_url("website", input.website)?),
        description: Set(optional_text("description", input.description, 10_000)?.unwrap_or_default()),
        logo_url: Set(optional_url("logoUrl", input.logo_url)?),
        stage: Set(stage),
        stage_changed_at: Set(joined_at),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };

    let txn = db.begin().await?;
    let org = model.insert(&txn).await?;
    replace_focus_areas(&txn, org.id, &areas).await?;
    transition::ActiveModel {
        organization_id: Set(org.id),
        to_stage: Set(stage),
        note: Set(String::new()),
        occurred_at: Set(joined_at),
        recorded_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if let Some(owner) = input.owner_account_id {
        entity::membership::ActiveModel {
            organization_id: Set(org.id),
            account_id: Set(owner),
            role: Set(entity::membership::MemberRole::Owner),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    let event = NewEvent::new(EventKind::OrganizationCreated, org.id)
        .organization(Some(org.id))
        .account(input.owner_account_id)
        .payload(json!({ "name": org.name, "slug": org.slug, "stage": stage_name(stage),
            "ownerAccountId": input.owner_account_id }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(OrganizationRecord { org, focus_areas: areas })
}

async fn replace_focus_areas(db: &impl ConnectionTrait, org_id: i64, areas: &[FocusArea]) -> AppResult<()> {
    focus::Entity::delete_many().filter(focus::Column::OrganizationId.eq(org_id)).exec(db).await?;
    if !areas.is_empty() {
        focus::Entity::insert_many(
            areas.iter().map(|a| focus::ActiveModel { organization_id: Set(org_id), focus_area: Set(*a) }),
        )
        .exec(db)
        .await?;
    }
    Ok(())
}

async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<organization::Model> {
    found::<organization::Entity>(db, id, "organization").await
}

pub async fn update(ctx: Ctx<'_>, actor: &Actor, id: i64, patch: OrganizationPatch) -> AppResult<OrganizationRecord> {
    let changed = patch.changed_fields();
    let txn = ctx.db.begin().await?;
    let current = load(&txn, id).await?;
    let mut model: organization::ActiveModel = current.into();
    if let Some(v) = patch.name {
        model.name = Set(required_text("name", &v, 200)?);
    }
    if let Some(v) = patch.name_traditional {
        model.name_traditional = Set(optional_text("nameTraditional", v, 200)?);
    }
    if let Some(v) = patch.name_en {
        model.name_en = Set(optional_text("nameEn", v, 300)?);
    }
    if let Some(v) = patch.slug {
        model.slug = Set(validate_slug(&v)?);
    }
    if let Some(v) = patch.kind {
        model.kind = Set(v);
    }
    if let Some(v) = patch.credit_code {
        model.credit_code = Set(optional_credit_code(v)?);
    }
    if let Some(v) = patch.founded_on {
        model.founded_on = Set(validate_founded_on(v)?);
    }
    if let Some(v) = patch.contact_name {
        model.contact_name = Set(optional_text("contactName", v, 100)?);
    }
    if let Some(v) = patch.contact_phone {
        model.contact_phone = Set(optional_phone(v)?);
    }
    if let Some(v) = patch.contact_email {
        model.contact_email = Set(optional_email(v)?);
    }
    if let Some(v) = patch.website {
        model.website = Set(optional_url("website", v)?);
    }
    if let Some(v) = patch.description {
        model.description = Set(optional_text("description", Some(v), 10_000)?.unwrap_or_default());
    }
    if let Some(v) = patch.logo_url {
        model.logo_url = Set(optional_url("logoUrl", v)?);
    }
    model.updated_at = Set(super::now());
    let org = model.update(&txn).await?;
    let focus_areas = match patch.focus_areas {
        Some(areas) => {
            let areas = dedup_areas(areas)?;
            replace_focus_areas(&txn, id, &areas).await?;
            areas
        }
        None => focus_areas_of(&txn, &[id]).await?.remove(&id).unwrap_or_default(),
    };
    let event =
        NewEvent::new(EventKind::OrganizationUpdated, id).organization(Some(id)).payload(json!({ "fields": changed }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(OrganizationRecord { org, focus_areas })
}

#[derive(Clone, Debug)]
pub struct StageChange {
    pub organization_id: i64,
    pub to: Stage,
    pub note: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

pub async fn transition(
    ctx: Ctx<'_>,
    actor: &Actor,
    change: StageChange,
) -> AppResult<(OrganizationRecord, transition::Model)> {
    let now = super::now();
    let note = optional_text("note", change.note, 2000)?.unwrap_or_default();
    let txn = ctx.db.begin().await?;
    let current = load(&txn, change.organization_id).await?;
    if !allowed_next(current.stage).contains(&change.to) {
        let allowed: Vec<String> = allowed_next(current.stage).iter().map(|s| stage_name(*s)).collect();
        return Err(AppError::bad_input(
            "stage",
            format!(
                "an organization cannot move from {} to {}; allowed: {}",
                stage_name(current.stage),
                stage_name(change.to),
                allowed.join(", ")
            ),
        ));
    }
    let occurred_at = change.occurred_at.unwrap_or(now);
    if occurred_at > now + chrono::Duration::minutes(1) {
        return Err(AppError::bad_input("occurredAt", "occurredAt is in the future"));
    }
    if occurred_at < current.stage_changed_at {
        return Err(AppError::bad_input("occurredAt", "occurredAt is before the current stage began"));
    }
    // Conditional on the stage we checked, so two concurrent transitions cannot both apply.
    organization::Entity::update_many()
        .col_expr(organization::Column::Stage, Expr::val(change.to))
        .col_expr(organization::Column::StageChangedAt, Expr::val(occurred_at))
        .col_expr(organization::Column::UpdatedAt, Expr::val(now))
        .filter(organization::Column::Id.eq(current.id))
        .filter(organization::Column::Stage.eq(current.stage))
        .exec_one(&txn, || changed_meanwhile("organization's stage"))
        .await?;
    let entry = transition::ActiveModel {
        organization_id: Set(current.id),
        from_stage: Set(Some(current.stage)),
        to_stage: Set(change.to),
        note: Set(note),
        occurred_at: Set(occurred_at),
        recorded_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let org = load(&txn, current.id).await?;
    let focus_areas = focus_areas_of(&txn, &[org.id]).await?.remove(&org.id).unwrap_or_default();
    let event = NewEvent::new(EventKind::OrganizationStageChanged, org.id).organization(Some(org.id)).payload(json!({
        "from": stage_name(current.stage),
        "to": stage_name(change.to),
        "note": entry.note,
        "occurredAt": occurred_at,
    }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok((OrganizationRecord { org, focus_areas }, entry))
}

fn stage_name(stage: Stage) -> String {
    use sea_orm::ActiveEnum;
    stage.to_value()
}

// ---------------------------------------------------------------- the cached directory

/// Cache tag of everything the organization directory serves.
const CACHE_TAG: &str = crate::tags::ORGANIZATIONS;

/// A slug as the directory keys it; `None` for one no organization can have.
fn directory_slug(slug: &str) -> Option<String> {
    let slug = slug.trim().to_ascii_lowercase();
    (!slug.is_empty() && slug.len() <= 64).then_some(slug)
}

/// The organization directory as its readers see it: reads through the cache (the event
/// log's coherence consumer invalidates it after writes).
pub struct Directory<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
}

impl Directory<'_> {
    pub async fn by_slug(&self, slug: &str) -> AppResult<Option<OrganizationRecord>> {
        let Some(slug) = directory_slug(slug) else { return Ok(None) };
        let key = format!("slug:{slug}");
        self.cache.get_or_load(CACHE_TAG, &key, find_by_slug(self.db, &slug)).await
    }

    pub async fn by_id(&self, id: i64) -> AppResult<Option<OrganizationRecord>> {
        let load = async { Ok::<_, crate::error::AppError>(find_by_ids(self.db, &[id]).await?.into_iter().next()) };
        self.cache.get_or_load(CACHE_TAG, &format!("id:{id}"), load).await
    }

    /// [`find_page_by_slug`] through the cache.
    pub async fn page_by_slug(&self, slug: &str) -> AppResult<Option<OrganizationPage>> {
        let Some(slug) = directory_slug(slug) else { return Ok(None) };
        self.cache.get_or_load(CACHE_TAG, &format!("page:{slug}"), find_page_by_slug(self.db, &slug)).await
    }

    /// [`stage_histories`] through the cache: a stage change invalidates the directory's tag.
    pub async fn stage_histories(&self, ids: &[i64]) -> AppResult<HashMap<i64, Vec<transition::Model>>> {
        self.cache.get_or_load_shaped(CACHE_TAG, "histories", &ids, stage_histories(self.db, ids)).await
    }

    pub async fn list(
        &self,
        filter: &OrganizationFilter,
        sort: OrganizationSort,
        direction: SortDirection,
        page: PageRequest<'_>,
    ) -> AppResult<Page<OrganizationRecord>> {
        let load = list(self.db, filter, sort, direction, page);
        pagination::through_cache(self.cache, CACHE_TAG, "list", (filter, sort, direction), page, load).await
    }
}

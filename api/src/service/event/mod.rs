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

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use entity::delegation::{self, Origin};
use entity::event::{self, EventKind, EventStatus};
use entity::exhibit;
use entity::registration::{self, IdDocType, RegistrationStatus};
use entity::training_programme as programme;
use entity::{session_attendance as attendance, training_session as session};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use sea_orm::ActiveEnum;
use serde_json::json;

use super::common::{found, grouped, rows_by_ids};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind as Kind, NewEvent as LogEvent};
use crate::service::validate::{optional_text, required_text};

/// The base's zone (`crate::time`): the default zone of events.
pub use crate::time::{BASE_TIME_ZONE, base_offset};
const CACHE_TAG: &str = crate::tags::EVENTS;
pub const MAX_CAPACITY: i32 = 100_000;
pub const MAX_GROUP_LIMIT: i32 = 50;
pub const MAX_QUESTIONS: usize = 20;
pub const MAX_CALENDAR_EVENTS: u64 = 500;

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

mod calendar;
mod check_in;
mod counts;
mod events;
mod privacy;
mod registrations;
mod sessions;

pub use calendar::*;
pub use check_in::*;
pub use counts::*;
pub use events::*;
pub use privacy::*;
pub use registrations::*;
pub use sessions::*;

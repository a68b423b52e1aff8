//! Spaces of the base: their description, when they can be booked (opening hours in the
//! space's own zone, closures, notice, advance, buffers), and the rules a booking's time
//! must satisfy. The rules are pure functions so that validation, availability and conflict
//! suggestions all agree.
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use entity::space::{self, SpaceKind};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::common::{found, rows_by_ids};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::required_text;

/// The base's zone (`crate::time`): the default zone of spaces.
pub use crate::time::BASE_TIME_ZONE as DEFAULT_TIME_ZONE;
/// Candidate starts for availability and suggestions are aligned to this step.
pub const SLOT_STEP_MINUTES: i64 = 15;
pub const MAX_SPACES_SCANNED: u64 = 500;

/// A bookable period of one weekday, in minutes after local midnight (`closes` may be 1440).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens: u16,
    pub closes: u16,
}

/// Local dates (inclusive) when a space cannot be booked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub reason: String,
}

/// A space with its JSON columns parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpaceRecord {
    pub space: space::Model,
    pub equipment: Vec<String>,
    pub photo_urls: Vec<String>,
    pub hours: Vec<OpeningHours>,
    pub closures: Vec<Closure>,
}

impl SpaceRecord {
    pub fn from_model(space: space::Model) -> AppResult<Self> {
        fn parse<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> AppResult<T> {
            serde_json::from_str(raw).map_err(|e| AppError::Internal(format!("space {what} unreadable: {e}")))
        }
        Ok(Self {
            equipment: parse(&space.equipment, "equipment")?,
            photo_urls: parse(&space.photo_urls, "photos")?,
            hours: parse(&space.opening_hours, "hours")?,
            closures: parse(&space.closures, "closures")?,
            space,
        })
    }

    pub fn zone(&self) -> Tz {
        self.space.time_zone.parse().unwrap_or(crate::time::BASE_TZ)
    }

    /// The interval a booking of `start..end` keeps others out of: buffers included.
    pub fn blocked_range(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            start - Duration::minutes(self.space.setup_minutes.into()),
            end + Duration::minutes(self.space.teardown_minutes.into()),
        )
    }
}

/// Default opening hours: Monday to Saturday, 08:00–21:00.
pub fn default_hours() -> Vec<OpeningHours> {
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat]
        .into_iter()
        .map(|weekday| OpeningHours { weekday, opens: 8 * 60, closes: 21 * 60 })
        .collect()
}

/// Parses `HH:MM` (with `24:00` for end of day) into minutes after midnight.
pub fn parse_clock(field: &str, raw: &str) -> AppResult<u16> {
    let invalid = || AppError::bad_input(field, format!("`{raw}` is not a time of day like 09:00"));
    let (h, m) = raw.trim().split_once(':').ok_or_else(invalid)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| invalid())?, m.parse().map_err(|_| invalid())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(invalid());
    }
    Ok(h * 60 + m)
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

// ---------------------------------------------------------------- the rules of a booking's time

/// Whether a rule is checked when a request is made, or also later (on confirmation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CheckAt {
    /// Everything, including notice and advance.
    Request,
    /// What can change between request and decision: not notice and advance.
    Decision,
}

/// Checks a booking of `start..end` for `attendees` against the space's rules; the first
/// broken rule is returned with a distinct `reason`.
pub fn check_rules(
    space: &SpaceRecord,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attendees: i32,
    now: DateTime<Utc>,
    at: CheckAt,
) -> AppResult<()> {
    if end < start {
        return Err(AppError::rule("endsAt", "END_BEFORE_START", "the booking ends before it starts"));
    }
    if end == start {
        return Err(AppError::rule("endsAt", "ZERO_LENGTH", "the booking has no length"));
    }
    if start.second() != 0 || start.nanosecond() != 0 || end.second() != 0 || end.nanosecond() != 0 {
        return Err(AppError::rule("startsAt", "NOT_WHOLE_MINUTE", "bookings start and end on whole minutes"));
    }
    if start < now {
        return Err(AppError::rule("startsAt", "IN_THE_PAST", "the booking starts in the past"));
    }
    if at == CheckAt::Request {
        let notice = i64::from(space.space.min_notice_minutes);
        if start < now + Duration::minutes(notice) {
            return Err(AppError::rule(
                "startsAt",
                "TOO_SHORT_NOTICE",
                format!("{} must be booked at least {notice} minutes ahead", space.space.name),
            ));
        }
        let advance = i64::from(space.space.max_advance_days);
        if start > now + Duration::days(advance) {
            return Err(AppError::rule(
                "startsAt",
                "TOO_FAR_AHEAD",
                format!("{} can be booked at most {advance} days ahead", space.space.name),
            ));
        }
    }
    if attendees < 1 {
        return Err(AppError::rule("attendees", "NO_ATTENDEES", "expected attendees must be at least 1"));
    }
    if attendees > space.space.capacity {
        return Err(AppError::rule(
            "attendees",
            "OVER_CAPACITY",
            format!("{} holds at most {} people", space.space.name, space.space.capacity),
        ));
    }
    let zone = space.zone();
    let (local_start, local_end) = (start.with_timezone(&zone), end.with_timezone(&zone));
    let day = local_start.date_naive();
    if let Some(closure) = space.closures.iter().find(|c| c.starts_on <= day && day <= c.ends_on) {
        return Err(AppError::rule(
            "startsAt",
            "INSIDE_CLOSURE",
            format!(
                "{} is closed from {} to {}: {}",
                space.space.name, closure.starts_on, closure.ends_on, closure.reason
            ),
        ));
    }
    let start_min = (local_start.hour() * 60 + local_start.minute()) as u16;
    let end_min = if local_end.date_naive() == day {
        (local_end.hour() * 60 + local_end.minute()) as u16
    } else if local_end.date_naive() == day + Duration::days(1) && local_end.hour() == 0 && local_end.minute() == 0 {
        1440
    } else {
        u16::MAX
    };
    let inside =
        space.hours.iter().any(|h| h.weekday == local_start.weekday() && h.opens <= start_min && end_min <= h.closes);
    if !inside {
        let today: Vec<String> = space
            .hours
            .iter()
            .filter(|h| h.weekday == local_start.weekday())
            .map(|h| format!("{}–{}", format_clock(h.opens), format_clock(h.closes)))
            .collect();
        let hours = if today.is_empty() { "closed that day".to_owned() } else { today.join(", ") };
        return Err(AppError::rule(
            "startsAt",
            "OUTSIDE_HOURS",
            format!("outside the bookable hours of {} ({hours}, {})", space.space.name, space.space.time_zone),
        ));
    }
    Ok(())
}

/// Whether `start..end` passes the rules and its blocked range overlaps none of `blocked`.
pub fn fits(
    space: &SpaceRecord,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attendees: i32,
    now: DateTime<Utc>,
    blocked: &[(DateTime<Utc>, DateTime<Utc>)],
) -> bool {
    if check_rules(space, start, end, attendees, now, CheckAt::Request).is_err() {
        return false;
    }
    let (bs, be) = space.blocked_range(start, end);
    !blocked.iter().any(|(s, e)| *s < be && bs < *e)
}

/// Rounds up to the next slot step.
pub fn align_up(t: DateTime<Utc>) -> DateTime<Utc> {
    let step = SLOT_STEP_MINUTES * 60;
    let secs = t.timestamp();
    let aligned = secs.div_euclid(step) * step;
    let aligned = if aligned < secs || t.timestamp_subsec_nanos() > 0 { aligned + step } else { aligned };
    Utc.timestamp_opt(aligned, 0).single().unwrap_or(t)
}

/// Windows in `from..to` where a booking of `duration` fits: each window is
/// `(first start, last start + duration)`, starts stepping by `SLOT_STEP_MINUTES`.
///
/// The same answer as trying every start with [`fits`] (a test compares the two), computed from
/// intervals instead: per local day one interval of allowed starts per opening period, clipped
/// to notice and advance, minus the blocked intervals (sorted and merged once, then swept), and
/// only then cut to the grid. A week of 20 spaces is a few hundred interval operations and no
/// allocation per slot, where the slot walk ran the rules (with their error texts) 13,000 times.
pub fn free_windows(
    space: &SpaceRecord,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration: Duration,
    now: DateTime<Utc>,
    blocked: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let step = SLOT_STEP_MINUTES * 60;
    let length = duration.num_seconds();
    if space.space.capacity < 1 || length <= 0 || duration.subsec_nanos() != 0 {
        return Vec::new();
    }
    let ceil = |t: DateTime<Utc>| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    // Starts (whole seconds, inclusive bounds) allowed by the window, notice and advance.
    let notice = Duration::minutes(space.space.min_notice_minutes.max(0).into());
    let lo = align_up(from).timestamp().max(ceil(now)).max(ceil(now + notice));
    let hi = (to.timestamp() - length).min((now + Duration::days(space.space.max_advance_days.into())).timestamp());
    if lo > hi {
        return Vec::new();
    }
    let open = opening_starts(space, lo, hi, length, now);
    let free = subtract(open, forbidden_starts(space, length, blocked));
    // Cut to the grid; consecutive grid starts form one window, as in the slot walk.
    let mut windows: Vec<(i64, i64)> = Vec::new();
    for (a, b) in free {
        let (first, last) =
            (a.div_euclid(step) * step + if a.rem_euclid(step) > 0 { step } else { 0 }, b.div_euclid(step) * step);
        if first > last {
            continue;
        }
        match windows.last_mut() {
            Some((_, previous_last)) if first <= *previous_last + step => *previous_last = (*previous_last).max(last),
            _ => windows.push((first, last)),
        }
    }
    windows.into_iter().filter_map(|(first, last)| Some((at(first)?, at(last + length)?))).collect()
}

/// The first instant after `now` at which [`free_windows`] may answer differently for `space`
/// with the same bookings: the clock enters only through the notice and advance limits, so
/// the answer moves when `now` or `now + notice` passes a start of the grid (that start falls
/// out), or `now + advance` does (a start comes in; advance is whole days, so on the grid with
/// `now`). At most one grid step away.
pub fn windows_hold_until(space: &SpaceRecord, now: DateTime<Utc>) -> DateTime<Utc> {
    let notice = Duration::minutes(space.space.min_notice_minutes.max(0).into());
    align_up(now).min(align_up(now + notice) - notice)
}

fn at(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// Allowed starts in `lo..=hi` by opening hours and closures, as sorted disjoint closed
/// intervals of seconds.
fn opening_starts(space: &SpaceRecord, lo: i64, hi: i64, length: i64, now: DateTime<Utc>) -> Vec<(i64, i64)> {
    let zone = space.zone();
    let mut open: Vec<(i64, i64)> = Vec::new();
    let (Some(lo_at), Some(hi_at)) = (at(lo), at(hi)) else { return open };
    let mut day = lo_at.with_timezone(&zone).date_naive();
    let last_day = hi_at.with_timezone(&zone).date_naive();
    while day <= last_day {
        let closed = space.closures.iter().any(|c| c.starts_on <= day && day <= c.ends_on);
        let mut periods = space.hours.iter().filter(|h| h.weekday == day.weekday()).peekable();
        if !closed && periods.peek().is_some() {
            match steady_midnight(zone, day) {
                Some(midnight) => {
                    for h in periods {
                        let a = (midnight + i64::from(h.opens) * 60).max(lo);
                        let b = (midnight + i64::from(h.closes) * 60 - length).min(hi);
                        if a <= b {
                            open.push((a, b));
                        }
                    }
                }
                // A day the clocks change: each start by the rules themselves (rare, 96 or so).
                None => {
                    let naive_midnight = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
                    let step = SLOT_STEP_MINUTES * 60;
                    let first = (naive_midnight - 14 * 3600).max(lo);
                    let mut start = first.div_euclid(step) * step + if first.rem_euclid(step) > 0 { step } else { 0 };
                    while start <= hi.min(naive_midnight + 36 * 3600) {
                        if let (Some(s), Some(e)) = (at(start), at(start + length))
                            && s.with_timezone(&zone).date_naive() == day
                            && check_rules(space, s, e, 1, now, CheckAt::Request).is_ok()
                        {
                            open.push((start, start));
                        }
                        start += step;
                    }
                }
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    merge(open)
}

/// The UTC second of local midnight starting `day`, when the whole day has one whole-minute
/// offset (no clock change): a local time of that day is then midnight plus its minutes.
fn steady_midnight(zone: Tz, day: NaiveDate) -> Option<i64> {
    use chrono::Offset;
    let start = zone.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN)).single()?;
    let end = zone.from_local_datetime(&day.succ_opt()?.and_time(chrono::NaiveTime::MIN)).single()?;
    let offset = start.offset().fix().local_minus_utc();
    let steady = end - start == Duration::days(1) && end.offset().fix().local_minus_utc() == offset && offset % 60 == 0;
    steady.then(|| start.timestamp())
}

/// Starts a booking of `length` seconds may not take because of `blocked` (buffers included),
/// as sorted disjoint closed intervals of seconds: a start `t` overlaps `(s, e)` when
/// `s - length - teardown < t < e + setup`.
fn forbidden_starts(space: &SpaceRecord, length: i64, blocked: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(i64, i64)> {
    let (setup, teardown) = (i64::from(space.space.setup_minutes) * 60, i64::from(space.space.teardown_minutes) * 60);
    let ceil = |t: &DateTime<Utc>| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    let forbidden: Vec<(i64, i64)> = blocked
        .iter()
        .map(|(s, e)| (s.timestamp() - length - teardown + 1, ceil(e) + setup - 1))
        .filter(|(a, b)| a <= b)
        .collect();
    merge(forbidden)
}

/// Sorts closed intervals and joins those that overlap.
fn merge(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for (a, b) in intervals {
        match out.last_mut() {
            Some((_, last)) if a <= *last => *last = (*last).max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `open` without `forbidden`, both sorted and disjoint, in one sweep.
fn subtract(open: Vec<(i64, i64)>, forbidden: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(open.len() + forbidden.len());
    let mut j = 0;
    for (a, b) in open {
        let mut from = a;
        while j < forbidden.len() && forbidden[j].1 < from {
            j += 1;
        }
        let mut k = j;
        while from <= b && k < forbidden.len() && forbidden[k].0 <= b {
            let (fa, fb) = forbidden[k];
            if fa > from {
                out.push((from, fa - 1));
            }
            from = from.max(fb + 1);
            k += 1;
        }
        if from <= b {
            out.push((from, b));
        }
    }
    out
}

// ---------------------------------------------------------------- validation of a space

#[derive(Clone, Debug, Default)]
pub struct SpaceInput {
    pub name: Option<String>,
    pub kind: Option<SpaceKind>,
    pub floor: Option<i32>,
    pub capacity: Option<i32>,
    pub description: Option<String>,
    pub equipment: Option<Vec<String>>,
    pub photo_urls: Option<Vec<String>>,
    pub requires_approval: Option<bool>,
    pub time_zone: Option<String>,
    pub hours: Option<Vec<OpeningHours>>,
    pub closures: Option<Vec<Closure>>,
    pub min_notice_minutes: Option<i32>,
    pub max_advance_days: Option<i32>,
    pub setup_minutes: Option<i32>,
    pub teardown_minutes: Option<i32>,
    /// `Some(None)` clears it.
    pub resident_organization_id: Option<Option<i64>>,
}

fn in_range(field: &str, value: i32, min: i32, max: i32) -> AppResult<i32> {
    if !(min..=max).contains(&value) {
        return Err(AppError::bad_input(field, format!("{field} must be between {min} and {max}")));
    }
    Ok(value)
}

fn json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.to_string()))
}

fn validate_list(field: &str, items: Vec<String>, max_items: usize, urls: bool) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = required_text(field, &item, if urls { 500 } else { 100 })?;
        if urls && !(item.starts_with("https://") || item.starts_with("http://")) {
            return Err(AppError::bad_input(field, format!("{field} must be http(s) URLs")));
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    if out.len() > max_items {
        return Err(AppError::bad_input(field, format!("at most {max_items} {field}")));
    }
    Ok(out)
}

fn validate_hours(hours: Vec<OpeningHours>) -> AppResult<Vec<OpeningHours>> {
    if hours.len() > 28 {
        return Err(AppError::bad_input("openingHours", "at most 28 periods"));
    }
    for h in &hours {
        if h.opens >= h.closes || h.closes > 1440 {
            return Err(AppError::bad_input("openingHours", "each period opens before it closes"));
        }
    }
    for (i, a) in hours.iter().enumerate() {
        if hours[i + 1..].iter().any(|b| a.weekday == b.weekday && a.opens < b.closes && b.opens < a.closes) {
            return Err(AppError::bad_input("openingHours", "periods of one weekday must not overlap"));
        }
    }
    Ok(hours)
}

fn validate_closures(closures: Vec<Closure>) -> AppResult<Vec<Closure>> {
    if closures.len() > 200 {
        return Err(AppError::bad_input("closures", "at most 200 closures"));
    }
    closures
        .into_iter()
        .map(|c| {
            if c.ends_on < c.starts_on {
                return Err(AppError::bad_input("closures", "a closure ends on or after the day it starts"));
            }
            Ok(Closure { reason: required_text("closures.reason", &c.reason, 200)?, ..c })
        })
        .collect()
}

fn validate_zone(raw: &str) -> AppResult<String> {
    let zone = raw.trim();
    zone.parse::<Tz>().map_err(|_| {
        AppError::bad_input("timeZone", format!("`{zone}` is not an IANA time zone like Asia/Shanghai"))
    })?;
    Ok(zone.to_owned())
}

async fn check_organization(db: &impl ConnectionTrait, id: Option<i64>) -> AppResult<()> {
    if let Some(id) = id {
        found::<entity::organization::Entity>(db, id, "organization").await?;
    }
    Ok(())
}

/// Applies `input` to `model`; `creating` makes name, kind and capacity required.
fn apply(model: &mut space::ActiveModel, input: SpaceInput, creating: bool) -> AppResult<()> {
    match input.name {
        Some(v) => model.name = Set(required_text("name", &v, 100)?),
        None if creating => return Err(AppError::bad_input("name", "name is required")),
        None => {}
    }
    match input.kind {
        Some(v) => model.kind = Set(v),
        None if creating => return Err(AppError::bad_input("kind", "kind is required")),
        None => {}
    }
    match input.capacity {
        Some(v) => model.capacity = Set(in_range("capacity", v, 1, 5000)?),
        None if creating => return Err(AppError::bad_input("capacity", "capacity is required")),
        None => {}
    }
    if let Some(v) = input.floor {
        model.floor = Set(in_range("floor", v, -5, 100)?);
    }
    if let Some(v) = input.description {
        let v = v.trim().to_owned();
        if v.chars().count() > 5000 {
            return Err(AppError::bad_input("description", "description is at most 5000 characters"));
        }
        model.description = Set(v);
    }
    if let Some(v) = input.equipment {
        model.equipment = Set(json(&validate_list("equipment", v, 50, false)?)?);
    }
    if let Some(v) = input.photo_urls {
        model.photo_urls = Set(json(&validate_list("photoUrls", v, 20, true)?)?);
    }
    if let Some(v) = input.requires_approval {
        model.requires_approval = Set(v);
    }
    if let Some(v) = input.time_zone {
        model.time_zone = Set(validate_zone(&v)?);
    }
    if let Some(v) = input.hours {
        model.opening_hours = Set(json(&validate_hours(v)?)?);
    }
    if let Some(v) = input.closures {
        model.closures = Set(json(&validate_closures(v)?)?);
    }
    if let Some(v) = input.min_notice_minutes {
        model.min_notice_minutes = Set(in_range("minNoticeMinutes", v, 0, 60 * 24 * 60)?);
    }
    if let Some(v) = input.max_advance_days {
        model.max_advance_days = Set(in_range("maxAdvanceDays", v, 1, 730)?);
    }
    if let Some(v) = input.setup_minutes {
        model.setup_minutes = Set(in_range("setupMinutes", v, 0, 720)?);
    }
    if let Some(v) = input.teardown_minutes {
        model.teardown_minutes = Set(in_range("teardownMinutes", v, 0, 720)?);
    }
    if let Some(v) = input.resident_organization_id {
        model.resident_organization_id = Set(v);
    }
    Ok(())
}

// ---------------------------------------------------------------- reads and writes

pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<SpaceRecord>> {
    space::Entity::find_by_id(id).one(db).await?.map(SpaceRecord::from_model).transpose()
}

pub async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<SpaceRecord> {
    find(db, id).await?.ok_or_else(|| AppError::NotFound("space".into()))
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<SpaceRecord>> {
    let rows = rows_by_ids(db, space::Column::Id, ids).await?;
    rows.into_iter().map(SpaceRecord::from_model).collect()
}

/// Spaces holding at least `min_capacity` people, smallest first (at most `MAX_SPACES_SCANNED`).
pub async fn with_capacity(db: &impl ConnectionTrait, min_capacity: i32) -> AppResult<Vec<SpaceRecord>> {
    let rows = space::Entity::find()
        .filter(space::Column::Capacity.gte(min_capacity))
        .order_by_asc(space::Column::Capacity)
        .order_by_asc(space::Column::Id)
        .limit(MAX_SPACES_SCANNED)
        .all(db)
        .await?;
    rows.into_iter().map(SpaceRecord::from_model).collect()
}

/// Command: managers add a space.
pub async fn create_space(ctx: Ctx<'_>, viewer: &Viewer, input: SpaceInput) -> AppResult<SpaceRecord> {
    viewer.require_manage_spaces()?;
    as_viewer!(viewer, |actor| create(ctx, actor, input.clone()))
}

/// Command: managers change a space; existing bookings stay as they are.
pub async fn update_space(ctx: Ctx<'_>, viewer: &Viewer, id: i64, input: SpaceInput) -> AppResult<SpaceRecord> {
    viewer.require_manage_spaces()?;
    as_viewer!(viewer, |actor| update(ctx, actor, id, input.clone()))
}

fn space_event(kind: EventKind, row: &space::Model) -> NewEvent {
    NewEvent::new(kind, row.id).payload(serde_json::json!({ "name": row.name, "capacity": row.capacity }))
}

pub async fn create(ctx: Ctx<'_>, actor: &Actor, input: SpaceInput) -> AppResult<SpaceRecord> {
    let now = super::now();
    let resident = input.resident_organization_id.flatten();
    let mut model = space::ActiveModel {
        floor: Set(1),
        description: Set(String::new()),
        equipment: Set("[]".into()),
        photo_urls: Set("[]".into()),
        requires_approval: Set(false),
        time_zone: Set(DEFAULT_TIME_ZONE.into()),
        opening_hours: Set(json(&default_hours())?),
        closures: Set("[]".into()),
        min_notice_minutes: Set(0),
        max_advance_days: Set(90),
        setup_minutes: Set(0),
        teardown_minutes: Set(0),
        resident_organization_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    apply(&mut model, input, true)?;
    let txn = ctx.db.begin().await?;
    check_organization(&txn, resident).await?;
    let row = model.insert(&txn).await?;
    ctx.commit(txn, actor, vec![space_event(EventKind::SpaceCreated, &row)]).await?;
    SpaceRecord::from_model(row)
}

pub async fn update(ctx: Ctx<'_>, actor: &Actor, id: i64, input: SpaceInput) -> AppResult<SpaceRecord> {
    let txn = ctx.db.begin().await?;
    let current = found::<space::Entity>(&txn, id, "space").await?;
    check_organization(&txn, input.resident_organization_id.flatten()).await?;
    let mut model: space::ActiveModel = current.into();
    apply(&mut model, input, false)?;
    model.updated_at = Set(super::now());
    let row = model.update(&txn).await?;
    ctx.commit(txn, actor, vec![space_event(EventKind::SpaceUpdated, &row)]).await?;
    SpaceRecord::from_model(row)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct SpaceFilter {
    pub kinds: Vec<SpaceKind>,
    pub min_capacity: Option<i32>,
    /// Only spaces where a booking of exactly this interval could be made now.
    pub available_between: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &SpaceFilter,
    page: PageRequest<'_>,
) -> AppResult<Page<SpaceRecord>> {
    use space::Column as C;
    let mut select = space::Entity::find();
    if !filter.kinds.is_empty() {
        select = select.filter(C::Kind.is_in(filter.kinds.iter().copied()));
    }
    if let Some(min) = filter.min_capacity {
        select = select.filter(C::Capacity.gte(min));
    }
    if let Some((from, to)) = filter.available_between {
        // Few spaces: check the candidates in memory, then page over the ids that fit.
        let candidates: Vec<SpaceRecord> = select
            .clone()
            .limit(MAX_SPACES_SCANNED)
            .all(db)
            .await?
            .into_iter()
            .map(SpaceRecord::from_model)
            .collect::<AppResult<_>>()?;
        let ids: Vec<i64> = candidates.iter().map(|s| s.space.id).collect();
        let blocked = blocked_intervals(db, &ids, from - Duration::days(1), to + Duration::days(1)).await?;
        let now = super::now();
        let attendees = filter.min_capacity.unwrap_or(1).max(1);
        let fitting: Vec<i64> = candidates
            .iter()
            .filter(|s| fits(s, from, to, attendees, now, blocked.get(&s.space.id).map(Vec::as_slice).unwrap_or(&[])))
            .map(|s| s.space.id)
            .collect();
        select = select.filter(C::Id.is_in(fitting));
    }
    let key = SortKey::<space::Entity>::text(C::Name, C::Id, SortDirection::Asc);
    let page = pagination::paginate(db, select, &key, page).await?;
    let items = page
        .items
        .into_iter()
        .map(|(c, m)| SpaceRecord::from_model(m).map(|r| (c, r)))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page {
        items,
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        total_count: page.total_count,
    })
}

/// Blocked ranges of confirmed bookings of `space_ids` touching `from..to`, per space.
pub async fn blocked_intervals(
    db: &impl ConnectionTrait,
    space_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<std::collections::HashMap<i64, Vec<(DateTime<Utc>, DateTime<Utc>)>>> {
    let mut map: std::collections::HashMap<i64, Vec<_>> = std::collections::HashMap::new();
    if space_ids.is_empty() {
        return Ok(map);
    }
    use entity::booking::Column as B;
    // Only the three columns the intervals need, not whole bookings.
    let rows: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = entity::booking::Entity::find()
        .select_only()
        .columns([B::SpaceId, B::BlockedStart, B::BlockedEnd])
        .filter(B::SpaceId.is_in(space_ids.iter().copied()))
        .filter(B::Status.eq(entity::booking::BookingStatus::Confirmed))
        .filter(B::BlockedStart.lt(to))
        .filter(B::BlockedEnd.gt(from))
        .into_tuple()
        .all(db)
        .await?;
    for (space_id, start, end) in rows {
        map.entry(space_id).or_default().push((start, end));
    }
    Ok(map)
}

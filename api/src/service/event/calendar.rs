//! Event reads: filtered lists, the month calendar and the cached facade.
#[allow(unused_imports)]
use super::*;

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

pub(super) fn filtered(filter: &EventFilter) -> AppResult<sea_orm::Select<event::Entity>> {
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
    let searched = [C::Title, C::TitleTraditional, C::Summary];
    if let Some(matches) = pagination::search_in(filter.search.as_deref(), 100, &searched)? {
        select = select.filter(matches);
    }
    Ok(select)
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &EventFilter,
    page: PageRequest<'_>,
) -> AppResult<Page<event::Model>> {
    let key = SortKey::<event::Entity>::time(event::Column::StartsAt, event::Column::Id, SortDirection::Asc);
    pagination::paginate(db, filtered(filter)?, &key, page).await
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
pub use crate::time::local_date;

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
}

impl Events<'_> {
    pub async fn list(&self, filter: &EventFilter, page: PageRequest<'_>) -> AppResult<Page<event::Model>> {
        pagination::through_cache(self.cache, CACHE_TAG, "list", filter, page, list(self.db, filter, page)).await
    }

    pub async fn month(&self, year: i32, m: u32, include_drafts: bool) -> AppResult<Vec<event::Model>> {
        month_bounds(year, m)?;
        let key = format!("month:{year}-{m}:{include_drafts}");
        self.cache.get_or_load(CACHE_TAG, &key, month(self.db, year, m, include_drafts)).await
    }
}

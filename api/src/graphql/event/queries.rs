//! Event queries: lists, the month calendar, one event.
#[allow(unused_imports)]
use super::*;

#[derive(InputObject, Default)]
pub struct EventFilter {
    /// Events of any of these kinds.
    pub kind: Option<Vec<EventKind>>,
    /// Events that end at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events that start before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Events run by this organization.
    pub organizer: Option<ID>,
    /// Substring of the title (either script) or the summary.
    pub search: Option<String>,
    /// Drafts too: staff, and members of the `organizer` given.
    #[graphql(default)]
    pub include_drafts: bool,
    /// Exchanges with a delegation from any of these origins (e.g. `[TAIWAN]`).
    pub delegation_origin: Option<Vec<DelegationOrigin>>,
}

#[derive(SimpleObject)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// Events on this day (a multi-day event appears on each of its days).
    pub events: Vec<Event>,
}

/// One month of events in the base's zone (Asia/Shanghai), only days that have events.
#[derive(SimpleObject)]
pub struct EventCalendarMonth {
    pub year: i32,
    pub month: u32,
    pub days: Vec<CalendarDay>,
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// An event by ID; `null` when there is none (or it is a draft the viewer does not run).
    async fn event(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Event>> {
        let state = state(ctx)?;
        let id = ids::decode(&id, EVENT, "id")?;
        ResponseTags::entity(ctx, Family::Event, id).await;
        let found = match service::find(&state.db, id).await {
            Ok(e) => e,
            Err(AppError::NotFound(_)) => {
                ResponseTags::missing(ctx, Family::Event);
                return Ok(None);
            }
            Err(e) => return Err(e.extend()),
        };
        if found.status == event_entity::EventStatus::Draft && !viewer(ctx).can_manage_event(found.organizer_id) {
            ResponseTags::missing(ctx, Family::Event);
            return Ok(None);
        }
        Ok(Some(Event::from_model(found)))
    }

    /// Events by start time.
    async fn events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EventFilter>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Event>> {
        let state = state(ctx)?;
        let filter = filter.unwrap_or_default();
        let organizer_id = ids::decode_optional(filter.organizer.as_ref(), ids::ORGANIZATION, "filter.organizer")?;
        let service_filter = ServiceFilter {
            kinds: filter.kind.unwrap_or_default().into_iter().map(Into::into).collect(),
            from: filter.from,
            to: filter.to,
            organizer_id,
            search: filter.search,
            // Staff see every draft; organization members their organization's.
            include_drafts: filter.include_drafts
                && (viewer(ctx).is_staff() || organizer_id.is_some_and(|o| viewer(ctx).can_manage_event(o))),
            delegation_origins: filter.delegation_origin.unwrap_or_default().into_iter().map(Into::into).collect(),
        };
        let args = connection::args(first, after, last, before);
        let page = state.events().list(&service_filter, connection::page_request(ctx, &args)?).await.extend()?;
        load_ahead(ctx, &page.items).await?;
        Ok(connection::from_page(page, Event::from_model))
    }

    /// A month of events, day by day, in the base's zone.
    async fn event_calendar(&self, ctx: &Context<'_>, year: i32, month: u32) -> Result<EventCalendarMonth> {
        let state = state(ctx)?;
        let include_drafts = viewer(ctx).is_staff();
        let events = state.events().month(year, month, include_drafts).await.extend()?;
        let mut days: std::collections::BTreeMap<NaiveDate, Vec<Event>> = std::collections::BTreeMap::new();
        for e in events {
            for d in service::days_in_month(&e, year, month) {
                days.entry(d).or_default().push(Event::from_model(e.clone()));
            }
        }
        Ok(EventCalendarMonth {
            year,
            month,
            days: days.into_iter().map(|(date, events)| CalendarDay { date, events }).collect(),
        })
    }

    async fn training_programme(&self, ctx: &Context<'_>, id: ID) -> Result<Option<TrainingProgramme>> {
        let state = state(ctx)?;
        let id = ids::decode(&id, PROGRAMME, "id")?;
        match service::find_programme(&state.db, id).await {
            Ok(p) => Ok(Some(TrainingProgramme(p))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.extend()),
        }
    }

    /// The signed-in person's registrations, newest first.
    async fn my_registrations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Registration>> {
        let account = viewer(ctx).require_account().extend()?;
        connection::list(ctx, connection::args(first, after, last, before), Registration, async |db, page| {
            service::registrations_of_account(db, account.id, page).await
        })
        .await
    }

    /// Person-times served by events that started in `[from, to)`.
    async fn person_times(&self, ctx: &Context<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<PersonTimes> {
        let state = state(ctx)?;
        Ok(service::person_times(&state.db, from, to).await.extend()?.into())
    }
}

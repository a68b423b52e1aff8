//! The base's impact dashboard: what the base achieved in a period, as totals and as a time
//! series bucketed by month, quarter or year in Asia/Shanghai.
//!
//! Every figure is built from dated *contributions* (a local date and an amount). Other
//! domains contribute through one function each: [`event_contributions`] (events held by
//! kind, attendance person-times) and [`campaign_contributions`] (money raised).
//!
//! The answer is cached under [`CACHE_TAG`]. Writes that change a figure invalidate it:
//! awards, service projects, service records, organization creation and stage transitions
//! (`organization::Directory`), campaign and donation changes (`crowdfunding::Crowdfunding`),
//! event changes (`event::Events`) and check-ins.
use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use entity::grant_proposal::{self as proposal, ProposalStatus};
use entity::organization::Stage;
use entity::organization_stage_transition as transition;
use entity::service_project::{self as project, FundingSource};
use entity::service_record as record;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use super::grants::PeopleByGroup;
use super::projects::person_times_by;
use crate::cache::Cache;
use crate::error::{AppError, AppResult};

/// Cache tag of every answer of the impact dashboard.
pub const CACHE_TAG: &str = "impact";

/// The longest period one query covers.
pub const MAX_PERIOD_DAYS: i64 = 366 * 10;

pub const STAGES: [Stage; 6] =
    [Stage::Liaison, Stage::Applied, Stage::Incubating, Stage::Resident, Stage::Graduated, Stage::Exited];

/// Local dates and the instants they begin, at the base (`crate::time`).
pub use crate::time::{local_date, start_of};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Month,
    Quarter,
    Year,
}

/// What happened in a period (or one bucket of it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Figures {
    /// Person-times served, all sources, by group.
    pub person_times: PeopleByGroup,
    pub person_times_from_projects: i64,
    /// From event attendance (`event_contributions`).
    pub person_times_from_events: i64,
    /// Events held, by kind (`event_contributions`).
    pub events_by_kind: Vec<(String, i64)>,
    /// Delegations at exchanges held, by origin: (origin, delegations, persons).
    pub delegations_by_origin: Vec<(entity::delegation::Origin, i64, i64)>,
    /// Stage transitions that took effect, by the stage entered (joining counts).
    pub stage_changes: Vec<(Stage, i64)>,
    pub awarded_fen: i64,
    pub contracted_fen: i64,
    /// Raised by crowdfunding campaigns (`campaign_contributions`).
    pub campaign_raised_fen: i64,
    /// Projects whose period overlaps.
    pub projects_active: i64,
    pub projects_started: i64,
}

impl Figures {
    pub fn events_held(&self) -> i64 {
        self.events_by_kind.iter().map(|(_, n)| n).sum()
    }

    pub fn stage_changes_total(&self) -> i64 {
        self.stage_changes.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    /// `2026-03`, `2026-Q1` or `2026`.
    pub label: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Organizations in each stage at the end of the bucket.
    pub organizations_by_stage: Vec<(Stage, i64)>,
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaseStats {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: GroupBy,
    /// At the end of the period.
    pub organizations_by_stage: Vec<(Stage, i64)>,
    pub totals: Figures,
    pub series: Vec<Bucket>,
}

// ---------------------------------------------------------------- plug points

/// What the events domain contributes.
#[derive(Clone, Debug, Default)]
pub struct EventContributions {
    /// One entry per event held: its local date and kind.
    pub held: Vec<(NaiveDate, String)>,
    /// Attendance person-times by local date.
    pub attendance: Vec<(NaiveDate, PeopleByGroup)>,
    /// Delegations of each event held: its local date, the origin, delegations and persons.
    pub delegations: Vec<(NaiveDate, entity::delegation::Origin, i64, i64)>,
}

/// What events contributed between two local dates, inclusive: every published or completed
/// event that started then (by kind), and the person-times of its checked-in registrations on
/// the event's local start date. Event groups (women, children, family members,
/// professionals) overlap; here family members count as families and everyone not counted as
/// a woman, child or family member as others, so the groups add up to the attendance.
pub async fn event_contributions(
    db: &impl ConnectionTrait,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<EventContributions> {
    use entity::event::{self as event, EventStatus};
    use sea_orm::ActiveEnum;
    let until = start_of(to.succ_opt().unwrap_or(to));
    let events = event::Entity::find()
        .filter(event::Column::StartsAt.gte(start_of(from)))
        .filter(event::Column::StartsAt.lt(until))
        .filter(event::Column::Status.is_in([EventStatus::Published, EventStatus::Completed]))
        .all(db)
        .await?;
    let mut out = EventContributions::default();
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut impact = HashMap::new();
    let mut delegations: HashMap<i64, Vec<_>> = HashMap::new();
    let now = Utc::now();
    let held: Vec<i64> = events.iter().filter(|e| e.starts_at <= now).map(|e| e.id).collect();
    for chunk in ids.chunks(500) {
        impact.extend(super::event::impact_of(db, chunk).await?);
    }
    for chunk in held.chunks(500) {
        for (event, origin, n, persons) in super::event::delegations_by_origin(db, chunk).await? {
            delegations.entry(event).or_default().push((origin, n, persons));
        }
    }
    for e in &events {
        let date = local_date(e.starts_at);
        if e.starts_at <= now {
            out.held.push((date, e.kind.to_value()));
        }
        for (origin, n, persons) in delegations.remove(&e.id).unwrap_or_default() {
            out.delegations.push((date, origin, n, persons));
        }
        if let Some(p) = impact.get(&e.id) {
            let families = p.family_members.min(p.total);
            let women = p.women.min(p.total - families);
            let children = p.children.min(p.total - families - women);
            let others = (p.total - families - women - children).max(0);
            out.attendance.push((date, PeopleByGroup { women, children, families, elderly: 0, others }));
        }
    }
    Ok(out)
}

/// Money raised by campaigns between two local dates, inclusive: confirmed donations on the
/// local date they were confirmed, refunds (negative records) on the date they were made.
/// Summed per local day by the database: a year of a million donations is 365 rows here.
pub async fn campaign_contributions(
    db: &impl ConnectionTrait,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<(NaiveDate, i64)>> {
    use entity::donation::{self as donation, DonationStatus};
    use sea_orm::sea_query::Expr;
    let (start, until) = (start_of(from), start_of(to.succ_opt().unwrap_or(to)));
    let offset_hours = crate::time::BASE_UTC_OFFSET_HOURS;
    // The local date of an instant, as `YYYY-MM-DD` text on both backends (UTC+8 has no DST).
    let local_day = |column: &str| match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            // `AT TIME ZONE 'UTC'` first: the text must not depend on the session's zone.
            format!("to_char(({column} AT TIME ZONE 'UTC') + interval '{offset_hours} hours', 'YYYY-MM-DD')")
        }
        _ => format!("date({column}, '{offset_hours:+} hours')"),
    };
    let mut out = Vec::new();
    for (status, column, at) in [
        (DonationStatus::Confirmed, "confirmed_at", donation::Column::ConfirmedAt),
        (DonationStatus::Refunded, "created_at", donation::Column::CreatedAt),
    ] {
        let day = local_day(column);
        let rows: Vec<(String, i64)> = donation::Entity::find()
            .select_only()
            .column_as(Expr::cust(day.clone()), "day")
            .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "fen")
            .filter(donation::Column::Status.eq(status))
            .filter(at.gte(start))
            .filter(at.lt(until))
            .group_by(Expr::cust(day))
            .into_tuple()
            .all(db)
            .await?;
        for (day, fen) in rows {
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| AppError::Internal(format!("local day {day:?} from the database: {e}")))?;
            out.push((day, fen));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- buckets

fn bucket_start(date: NaiveDate, group_by: GroupBy) -> NaiveDate {
    let (y, m) = (date.year(), date.month());
    let month = match group_by {
        GroupBy::Month => m,
        GroupBy::Quarter => (m - 1) / 3 * 3 + 1,
        GroupBy::Year => 1,
    };
    NaiveDate::from_ymd_opt(y, month, 1).unwrap_or(date)
}

fn next_bucket(start: NaiveDate, group_by: GroupBy) -> NaiveDate {
    let months = match group_by {
        GroupBy::Month => 1,
        GroupBy::Quarter => 3,
        GroupBy::Year => 12,
    };
    start.checked_add_months(chrono::Months::new(months)).unwrap_or(NaiveDate::MAX)
}

fn label(start: NaiveDate, group_by: GroupBy) -> String {
    match group_by {
        GroupBy::Month => format!("{}-{:02}", start.year(), start.month()),
        GroupBy::Quarter => format!("{}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
        GroupBy::Year => format!("{}", start.year()),
    }
}

/// The buckets covering `from..=to`, each clipped to the period.
fn buckets(from: NaiveDate, to: NaiveDate, group_by: GroupBy) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = bucket_start(from, group_by);
    while start <= to {
        let next = next_bucket(start, group_by);
        let end = next.pred_opt().unwrap_or(next).min(to);
        out.push((label(start, group_by), start.max(from), end));
        start = next;
    }
    out
}

/// Accumulates dated contributions into the totals and the right bucket.
struct Tally {
    from: NaiveDate,
    to: NaiveDate,
    group_by: GroupBy,
    index: HashMap<NaiveDate, usize>,
    totals: Figures,
    series: Vec<Figures>,
}

impl Tally {
    fn new(from: NaiveDate, to: NaiveDate, group_by: GroupBy, count: usize, starts: &[NaiveDate]) -> Self {
        let index = starts.iter().enumerate().map(|(i, s)| (bucket_start(*s, group_by), i)).collect();
        Self { from, to, group_by, index, totals: Figures::default(), series: vec![Figures::default(); count] }
    }

    fn add(&mut self, date: NaiveDate, f: impl Fn(&mut Figures)) {
        if date < self.from || date > self.to {
            return;
        }
        f(&mut self.totals);
        if let Some(i) = self.index.get(&bucket_start(date, self.group_by)) {
            f(&mut self.series[*i]);
        }
    }
}

fn bump<K: PartialEq + Clone>(list: &mut Vec<(K, i64)>, key: &K, n: i64) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v += n,
        None => list.push((key.clone(), n)),
    }
}

// ---------------------------------------------------------------- the computation

/// A day and its sums of women, children, families, elderly, others.
type DaySums = (NaiveDate, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

pub fn validate_period(from: NaiveDate, to: NaiveDate) -> AppResult<()> {
    if from > to {
        return Err(AppError::bad_input("to", "to is not before from"));
    }
    if (to - from).num_days() >= MAX_PERIOD_DAYS {
        return Err(AppError::bad_input("to", "a period is at most ten years"));
    }
    Ok(())
}

pub async fn base_stats(
    db: &impl ConnectionTrait,
    from: NaiveDate,
    to: NaiveDate,
    group_by: GroupBy,
) -> AppResult<BaseStats> {
    validate_period(from, to)?;
    let start = start_of(from);
    let end = start_of(to.succ_opt().unwrap_or(to));
    let ranges = buckets(from, to, group_by);
    let starts: Vec<NaiveDate> = ranges.iter().map(|(_, s, _)| *s).collect();
    let mut tally = Tally::new(from, to, group_by, ranges.len(), &starts);

    // Person-times from project service records, summed per day in the database.
    let days: Vec<DaySums> = person_times_by(record::Column::ServedOn)
        .filter(record::Column::ServedOn.between(from, to))
        .into_tuple()
        .all(db)
        .await?;
    for (day, w, c, f, e, o) in days {
        let people = PeopleByGroup {
            women: w.unwrap_or(0),
            children: c.unwrap_or(0),
            families: f.unwrap_or(0),
            elderly: e.unwrap_or(0),
            others: o.unwrap_or(0),
        };
        tally.add(day, |fig| {
            fig.person_times.add(&people);
            fig.person_times_from_projects += people.total();
        });
    }

    // Events (plug point).
    let events = event_contributions(db, from, to).await?;
    for (day, kind) in &events.held {
        tally.add(*day, |fig| bump(&mut fig.events_by_kind, kind, 1));
    }
    for (day, origin, n, persons) in &events.delegations {
        tally.add(*day, |fig| match fig.delegations_by_origin.iter_mut().find(|(o, _, _)| o == origin) {
            Some((_, d, p)) => {
                *d += n;
                *p += persons;
            }
            None => fig.delegations_by_origin.push((*origin, *n, *persons)),
        });
    }
    for (day, people) in &events.attendance {
        tally.add(*day, |fig| {
            fig.person_times.add(people);
            fig.person_times_from_events += people.total();
        });
    }

    // Campaigns (plug point).
    for (day, fen) in campaign_contributions(db, from, to).await? {
        tally.add(day, |fig| fig.campaign_raised_fen += fen);
    }

    // Money awarded, by the local date of the decision.
    let awards: Vec<(Option<DateTime<Utc>>, Option<i64>)> = proposal::Entity::find()
        .select_only()
        .column(proposal::Column::DecidedAt)
        .column(proposal::Column::AwardedFen)
        .filter(proposal::Column::Status.eq(ProposalStatus::Awarded))
        .filter(proposal::Column::DecidedAt.gte(start))
        .filter(proposal::Column::DecidedAt.lt(end))
        .into_tuple()
        .all(db)
        .await?;
    for (at, fen) in awards {
        if let (Some(at), Some(fen)) = (at, fen) {
            tally.add(local_date(at), |fig| fig.awarded_fen += fen);
        }
    }

    // Projects overlapping the period: contracted money by start date, active per bucket.
    let projects: Vec<(NaiveDate, NaiveDate, FundingSource, i64)> = project::Entity::find()
        .select_only()
        .column(project::Column::StartsOn)
        .column(project::Column::EndsOn)
        .column(project::Column::Source)
        .column(project::Column::FundedFen)
        .filter(project::Column::StartsOn.lte(to))
        .filter(project::Column::EndsOn.gte(from))
        .into_tuple()
        .all(db)
        .await?;
    tally.totals.projects_active = projects.len() as i64;
    for (starts_on, ends_on, source, funded) in &projects {
        tally.add(*starts_on, |fig| {
            fig.projects_started += 1;
            if *source == FundingSource::GovernmentPurchase {
                fig.contracted_fen += funded;
            }
        });
        for (i, (_, b_from, b_to)) in ranges.iter().enumerate() {
            if starts_on <= b_to && ends_on >= b_from {
                tally.series[i].projects_active += 1;
            }
        }
    }

    // Organizations: stage changes in the period, and stages at each bucket's end, replayed
    // from the history.
    let history: Vec<(i64, Stage, DateTime<Utc>)> = transition::Entity::find()
        .select_only()
        .column(transition::Column::OrganizationId)
        .column(transition::Column::ToStage)
        .column(transition::Column::OccurredAt)
        .filter(transition::Column::OccurredAt.lt(end))
        .order_by_asc(transition::Column::OccurredAt)
        .order_by_asc(transition::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    for (_, stage, at) in &history {
        if *at >= start {
            tally.add(local_date(*at), |fig| bump(&mut fig.stage_changes, stage, 1));
        }
    }
    let mut current: HashMap<i64, Stage> = HashMap::new();
    let mut cursor = history.iter().peekable();
    let mut at_end = Vec::with_capacity(ranges.len());
    for (_, _, b_to) in &ranges {
        let b_end = start_of(b_to.succ_opt().unwrap_or(*b_to));
        while let Some((org, stage, _)) = cursor.next_if(|(_, _, at)| *at < b_end) {
            current.insert(*org, *stage);
        }
        at_end.push(count_stages(&current));
    }

    let Tally { totals, series, .. } = tally;
    let mut totals = totals;
    sort_figures(&mut totals);
    let series = ranges
        .into_iter()
        .zip(series)
        .zip(at_end.iter().cloned())
        .map(|(((label, b_from, b_to), mut figures), organizations_by_stage)| {
            sort_figures(&mut figures);
            Bucket { label, from: b_from, to: b_to, organizations_by_stage, figures }
        })
        .collect();
    Ok(BaseStats {
        from,
        to,
        group_by,
        organizations_by_stage: at_end.last().cloned().unwrap_or_else(|| count_stages(&current)),
        totals,
        series,
    })
}

fn count_stages(current: &HashMap<i64, Stage>) -> Vec<(Stage, i64)> {
    STAGES.iter().map(|s| (*s, current.values().filter(|v| *v == s).count() as i64)).collect()
}

/// Stable order: stages in lifecycle order, event kinds by name.
fn sort_figures(f: &mut Figures) {
    f.stage_changes.sort_by_key(|(s, _)| STAGES.iter().position(|x| x == s));
    f.events_by_kind.sort();
    f.delegations_by_origin.sort_by_key(|(o, _, _)| ORIGINS.iter().position(|x| x == o));
}

/// Origins in the order the dashboard lists them.
pub const ORIGINS: [entity::delegation::Origin; 5] = {
    use entity::delegation::Origin::*;
    [Mainland, Taiwan, HongKong, Macao, Overseas]
};

// ---------------------------------------------------------------- cached reads and CSV

/// The dashboard as its readers see it, through the cache.
pub struct Dashboard<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a Cache,
}

impl Dashboard<'_> {
    pub async fn base_stats(&self, from: NaiveDate, to: NaiveDate, group_by: GroupBy) -> AppResult<BaseStats> {
        validate_period(from, to)?;
        let key = format!("base:{from}:{to}:{group_by:?}");
        self.cache.get_or_load(CACHE_TAG, &key, base_stats(self.db, from, to, group_by)).await
    }
}

pub const CSV_HEADER: &str = "period,from,to,person_times,women,children,families,elderly,others,\
person_times_projects,person_times_events,events_held,awarded_fen,contracted_fen,campaign_raised_fen,\
projects_active,projects_started,stage_changes,organizations_liaison,organizations_applied,\
organizations_incubating,organizations_resident,organizations_graduated,organizations_exited";

fn csv_row(label: &str, from: NaiveDate, to: NaiveDate, f: &Figures, stages: &[(Stage, i64)]) -> String {
    let p = &f.person_times;
    let mut cells: Vec<String> = vec![label.to_owned(), from.to_string(), to.to_string()];
    cells.extend(
        [
            p.total(),
            p.women,
            p.children,
            p.families,
            p.elderly,
            p.others,
            f.person_times_from_projects,
            f.person_times_from_events,
            f.events_held(),
            f.awarded_fen,
            f.contracted_fen,
            f.campaign_raised_fen,
            f.projects_active,
            f.projects_started,
            f.stage_changes_total(),
        ]
        .iter()
        .map(i64::to_string),
    );
    cells.extend(STAGES.iter().map(|s| stages.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n).to_string()));
    cells.join(",")
}

/// The impact report: one row per bucket, then a `total` row with the period's figures.
/// Labels are generated (digits, `-`, `Q`), so no cell needs quoting.
pub fn to_csv(stats: &BaseStats) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for b in &stats.series {
        out.push_str(&csv_row(&b.label, b.from, b.to, &b.figures, &b.organizations_by_stage));
        out.push('\n');
    }
    out.push_str(&csv_row("total", stats.from, stats.to, &stats.totals, &stats.organizations_by_stage));
    out.push('\n');
    out
}

//! Recurrence rules for bookings, expanded in the space's local wall time: a weekly 09:00
//! stays 09:00 whatever the offset does.
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
pub use entity::booking_series::Frequency;

use crate::error::{AppError, AppResult};

pub const MAX_OCCURRENCES: usize = 200;

#[derive(Clone, Debug)]
pub struct Recurrence {
    pub frequency: Frequency,
    /// Every `interval` days/weeks/months.
    pub interval: u32,
    /// Weekly only; default the first occurrence's weekday.
    pub weekdays: Vec<Weekday>,
    /// Last local date an occurrence may fall on (inclusive).
    pub until: Option<NaiveDate>,
    /// How many occurrences, the first included.
    pub count: Option<u32>,
}

impl Recurrence {
    pub fn validate(&self) -> AppResult<()> {
        if !(1..=52).contains(&self.interval) {
            return Err(AppError::bad_input("recurrence.interval", "interval is between 1 and 52"));
        }
        match (self.until, self.count) {
            (Some(_), Some(_)) | (None, None) => {
                Err(AppError::bad_input("recurrence", "give either `until` or `count`"))
            }
            (None, Some(n)) if n < 1 || n as usize > MAX_OCCURRENCES => {
                Err(AppError::bad_input("recurrence.count", format!("count is between 1 and {MAX_OCCURRENCES}")))
            }
            _ if self.frequency != Frequency::Weekly && !self.weekdays.is_empty() => {
                Err(AppError::bad_input("recurrence.weekdays", "weekdays are for weekly recurrence"))
            }
            _ => Ok(()),
        }
    }

    pub fn weekdays_text(&self) -> String {
        self.weekdays.iter().map(|d| d.to_string().to_uppercase()).collect::<Vec<_>>().join(",")
    }
}

/// Local dates of the occurrences, starting with `first`.
fn dates(rule: &Recurrence, first: NaiveDate) -> Vec<NaiveDate> {
    let limit = rule.count.map(|n| n as usize).unwrap_or(MAX_OCCURRENCES).min(MAX_OCCURRENCES);
    let within = |d: NaiveDate| rule.until.is_none_or(|u| d <= u);
    let mut out = Vec::new();
    let interval = i64::from(rule.interval);
    match rule.frequency {
        Frequency::Daily => {
            let mut d = first;
            while out.len() < limit && within(d) {
                out.push(d);
                d += Duration::days(interval);
            }
        }
        Frequency::Weekly => {
            let mut days = if rule.weekdays.is_empty() { vec![first.weekday()] } else { rule.weekdays.clone() };
            days.sort_by_key(|d| d.num_days_from_monday());
            days.dedup();
            let mut monday = first - Duration::days(first.weekday().num_days_from_monday().into());
            // Bounded: at most MAX_OCCURRENCES weeks with something in them, or until `until`.
            for _ in 0..(MAX_OCCURRENCES * 52) {
                for day in &days {
                    let d = monday + Duration::days(day.num_days_from_monday().into());
                    if d < first {
                        continue;
                    }
                    if out.len() >= limit || !within(d) {
                        return out;
                    }
                    out.push(d);
                }
                monday += Duration::weeks(interval);
            }
        }
        Frequency::Monthly => {
            // The same day of the month; months without it (the 31st in April) are left out.
            for k in 0..(MAX_OCCURRENCES as u32 * 12) {
                let Some(d) = first.checked_add_months(Months::new(k * rule.interval)) else { break };
                if !within(d) || out.len() >= limit {
                    break;
                }
                if d.day() == first.day() {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// The occurrences of `start..end` under `rule`, as instants, in order. Local times that do
/// not exist on a date (a DST gap) are left out.
pub fn expand(
    rule: &Recurrence,
    zone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> AppResult<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    rule.validate()?;
    let local_start: NaiveDateTime = start.with_timezone(&zone).naive_local();
    let local_end: NaiveDateTime = end.with_timezone(&zone).naive_local();
    let length = local_end - local_start;
    let time = local_start.time();
    let mut out = Vec::new();
    for date in dates(rule, local_start.date()) {
        let naive = date.and_time(time);
        let (Some(s), Some(e)) =
            (zone.from_local_datetime(&naive).earliest(), zone.from_local_datetime(&(naive + length)).earliest())
        else {
            continue;
        };
        out.push((s.with_timezone(&Utc), e.with_timezone(&Utc)));
    }
    Ok(out)
}

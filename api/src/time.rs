//! The base's time zone, defined once. Asia/Shanghai has been UTC+8 all year since 1991 (no
//! daylight saving), so a fixed offset is exact for the base's own calendar: local days and
//! years of the dashboard, receipts and the event calendar. Spaces and events keep their own
//! IANA zone (this one by default) for their opening hours and recurrences.
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The base's zone by name: the default of spaces and events.
pub const BASE_TIME_ZONE: &str = "Asia/Shanghai";
/// The base's zone as a time-zone value.
pub const BASE_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
/// Hours the base is ahead of UTC, all year.
pub const BASE_UTC_OFFSET_HOURS: i32 = 8;

pub fn base_offset() -> FixedOffset {
    use chrono::Offset;
    FixedOffset::east_opt(BASE_UTC_OFFSET_HOURS * 3600).unwrap_or_else(|| Utc.fix())
}

/// The local date of an instant at the base.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&base_offset()).date_naive()
}

/// The calendar year at the base.
pub fn year_at_base(at: DateTime<Utc>) -> i32 {
    at.with_timezone(&base_offset()).year()
}

/// The instant a local date begins at the base.
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    from_base_local(date.and_time(NaiveTime::MIN))
}

/// The instant of a wall-clock time at the base (what Chinese payment platforms send).
pub fn from_base_local(local: NaiveDateTime) -> DateTime<Utc> {
    match base_offset().from_local_datetime(&local).single() {
        Some(t) => t.with_timezone(&Utc),
        None => local.and_utc(),
    }
}

/// An instant as the base's wall clock shows it, in `format` (chrono's strftime).
pub fn format_at_base(at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&BASE_TZ).format(format).to_string()
}

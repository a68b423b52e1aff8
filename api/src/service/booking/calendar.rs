//! The cached calendar facade.
#[allow(unused_imports)]
use super::*;

/// Bookings as their readers see them: calendar reads through the cache (the event log's
/// coherence consumer invalidates it after writes).
pub struct Calendar<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
}

impl Calendar<'_> {
    pub async fn of_space(
        &self,
        space_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> AppResult<Vec<booking::Model>> {
        check_window(from, to, MAX_CALENDAR_DAYS)?;
        let key = format!("calendar:{space_id}:{}:{}", from.timestamp_micros(), to.timestamp_micros());
        self.cache.get_or_load(CACHE_TAG, &key, calendar(self.db, space_id, from, to)).await
    }
}

//! The cached views of campaigns.
#[allow(unused_imports)]
use super::*;

/// Crowdfunding as its readers see it: public views read through the cache (the event log's
/// coherence consumer invalidates them after writes).
pub struct Crowdfunding<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
}

impl Crowdfunding<'_> {
    pub async fn campaign(&self, id: i64) -> AppResult<Option<CampaignRecord>> {
        self.cache.get_or_load(CACHE_TAG, &format!("id:{id}"), find_by_id(self.db, id)).await
    }

    pub async fn list(
        &self,
        filter: &CampaignFilter,
        sort: CampaignSort,
        direction: SortDirection,
        page: PageRequest<'_>,
    ) -> AppResult<Page<CampaignRecord>> {
        let load = list(self.db, filter, sort, direction, page);
        pagination::through_cache(self.cache, CACHE_TAG, "list", (filter, sort, direction), page, load).await
    }

    /// The budget lines of a page of campaigns (which `list` leaves out), cached as one entry.
    pub async fn budgets(&self, campaign_ids: &[i64]) -> AppResult<HashMap<i64, Vec<budget_line::Model>>> {
        self.cache.get_or_load_shaped(CACHE_TAG, "budgets", &campaign_ids, budgets_of(self.db, campaign_ids)).await
    }

    pub async fn donor_wall(&self, campaign_id: i64, page: PageRequest<'_>) -> AppResult<Page<WallEntry>> {
        let load = donor_wall(self.db, campaign_id, page);
        pagination::through_cache(self.cache, CACHE_TAG, "wall", campaign_id, page, load).await
    }

    /// The first `first` lines of many campaigns' donor walls (see `recent_donors`), cached
    /// as one entry per page of campaigns.
    pub async fn recent_donors(&self, campaign_ids: &[i64], first: u64) -> AppResult<HashMap<i64, Page<WallEntry>>> {
        let load = recent_donors(self.db, campaign_ids, first);
        self.cache.get_or_load_shaped(CACHE_TAG, "walls", &(campaign_ids, first), load).await
    }
}

//! Campaign reads: one campaign, lists, budgets.
#[allow(unused_imports)]
use super::*;

pub(super) async fn with_details(
    db: &impl ConnectionTrait,
    campaigns: Vec<campaign::Model>,
) -> AppResult<Vec<CampaignRecord>> {
    let ids: Vec<i64> = campaigns.iter().map(|c| c.id).collect();
    let mut budgets = budgets_of(db, &ids).await?;
    Ok(campaigns
        .into_iter()
        .map(|c| CampaignRecord { budget: Some(budgets.remove(&c.id).unwrap_or_default()), campaign: c })
        .collect())
}

/// Budget lines of many campaigns in one statement, in their order.
pub async fn budgets_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<budget_line::Model>>> {
    let query =
        budget_line::Entity::find().order_by_asc(budget_line::Column::Position).order_by_asc(budget_line::Column::Id);
    grouped(db, query, budget_line::Column::CampaignId, ids, |l| l.campaign_id).await
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<CampaignRecord>> {
    let rows = rows_by_ids(db, campaign::Column::Id, ids).await?;
    with_details(db, rows).await
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<CampaignRecord>> {
    Ok(find_by_ids(db, &[id]).await?.into_iter().next())
}

/// A campaign's row, without its budget lines (its totals, say).
pub async fn campaign_row(db: &impl ConnectionTrait, id: i64) -> AppResult<campaign::Model> {
    load(db, id).await
}

pub(crate) async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<campaign::Model> {
    found::<campaign::Entity>(db, id, "campaign").await
}

/// Updates of many campaigns, newest first, at most `MAX_UPDATES_SHOWN` each.
pub async fn updates_of(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> AppResult<HashMap<i64, Vec<campaign_update::Model>>> {
    let query = campaign_update::Entity::find()
        .filter(campaign_update::Column::PublishedAt.lte(crate::service::now()))
        .order_by_desc(campaign_update::Column::PublishedAt)
        .order_by_desc(campaign_update::Column::Id);
    let mut map = grouped(db, query, campaign_update::Column::CampaignId, ids, |u| u.campaign_id).await?;
    map.values_mut().for_each(|list| list.truncate(MAX_UPDATES_SHOWN));
    Ok(map)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct CampaignFilter {
    pub organization_id: Option<i64>,
    /// Any of these statuses.
    pub statuses: Vec<CampaignStatus>,
    /// Substring of the title.
    pub search: Option<String>,
    /// Include campaigns never published (drafts, pending review). The caller checks the
    /// viewer may see them.
    pub include_unpublished: bool,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum CampaignSort {
    #[default]
    CreatedAt,
    EndsAt,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &CampaignFilter,
    sort: CampaignSort,
    direction: SortDirection,
    page: PageRequest<'_>,
) -> AppResult<Page<CampaignRecord>> {
    use campaign::Column as C;
    let mut select = campaign::Entity::find();
    if !filter.include_unpublished {
        select = select.filter(C::PublishedAt.is_not_null());
    }
    if let Some(org) = filter.organization_id {
        select = select.filter(C::OrganizationId.eq(org));
    }
    if !filter.statuses.is_empty() {
        select = select.filter(C::Status.is_in(filter.statuses.iter().copied()));
    }
    if let Some(matches) = pagination::search_in(filter.search.as_deref(), 100, &[C::Title])? {
        select = select.filter(matches);
    }
    let key = match sort {
        CampaignSort::CreatedAt => SortKey::<campaign::Entity>::time(C::CreatedAt, C::Id, direction),
        CampaignSort::EndsAt => SortKey::<campaign::Entity>::time(C::EndsAt, C::Id, direction),
    };
    // The budget lines only when the page shows them (`Crowdfunding::budgets`).
    Ok(pagination::paginate(db, select, &key, page).await?.map(|campaign| CampaignRecord { campaign, budget: None }))
}

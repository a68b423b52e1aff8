//! Donation reads: donor walls, recent donors, lists and summaries.
#[allow(unused_imports)]
use super::*;

pub(crate) fn donation_status_name(status: DonationStatus) -> String {
    use sea_orm::ActiveEnum;
    status.to_value()
}

pub(super) fn newest_first() -> SortKey<donation::Entity> {
    SortKey::<donation::Entity>::time(donation::Column::CreatedAt, donation::Column::Id, SortDirection::Desc)
}

/// One line of a campaign's public donor wall; the donor's identity is already masked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WallEntry {
    pub display_name: String,
    pub anonymous: bool,
    pub amount_fen: i64,
    pub message: String,
    pub donated_at: DateTime<Utc>,
}

impl WallEntry {
    pub fn of(d: &donation::Model) -> Self {
        let (display_name, anonymous) = match d.display_mode {
            DisplayMode::Public if !d.donor_name.is_empty() => (d.donor_name.clone(), false),
            DisplayMode::Public | DisplayMode::Masked => (mask_name(&d.donor_name), false),
            DisplayMode::Anonymous => (ANONYMOUS_NAME.to_owned(), true),
        };
        // What is left of it after partial refunds.
        let amount_fen = d.amount_fen - d.refunded_fen;
        Self { display_name, anonymous, amount_fen, message: d.message.clone(), donated_at: d.created_at }
    }
}

/// Confirmed, unrefunded donations of a campaign, newest first, as the public sees them.
pub async fn donor_wall(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    page: PageRequest<'_>,
) -> AppResult<Page<WallEntry>> {
    let select = donation::Entity::find()
        .filter(donation::Column::CampaignId.eq(campaign_id))
        .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
        .filter(donation::Column::RefundedAt.is_null());
    let page = pagination::paginate(db, select, &newest_first(), page).await?;
    Ok(page.map(|d| WallEntry::of(&d)))
}

/// The first `first` lines of the donor walls of many campaigns in one statement: for each
/// campaign exactly the page `donor_wall` answers for `first` with no cursor and no total.
/// Each campaign's rows come from an index scan bounded by `first + 1` (a `UNION ALL` of
/// limited subqueries, which both backends run as such), so the cost does not grow with a
/// campaign's number of donations.
pub async fn recent_donors(
    db: &impl ConnectionTrait,
    campaign_ids: &[i64],
    first: u64,
) -> AppResult<HashMap<i64, Page<WallEntry>>> {
    use sea_orm::sea_query::{Alias, Asterisk, Query, UnionType};
    use sea_orm::{FromQueryResult, Iterable};
    let mut ids = campaign_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut pages: HashMap<i64, Vec<donation::Model>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    if first > 0 && !ids.is_empty() {
        let key = newest_first();
        let arm = |i: usize, campaign_id: i64| {
            let wall = Query::select()
                .columns(donation::Column::iter())
                .from(donation::Entity)
                .and_where(donation::Column::CampaignId.eq(campaign_id))
                .and_where(donation::Column::Status.eq(DonationStatus::Confirmed))
                .and_where(donation::Column::RefundedAt.is_null())
                .order_by(key.column, sea_orm::Order::Desc)
                .order_by(key.id, sea_orm::Order::Desc)
                .limit(first + 1)
                .to_owned();
            Query::select().column(Asterisk).from_subquery(wall, Alias::new(format!("w{i}"))).to_owned()
        };
        let mut query = arm(0, ids[0]);
        for (i, id) in ids.iter().enumerate().skip(1) {
            query.union(UnionType::All, arm(i, *id));
        }
        let statement = db.get_database_backend().build(&query);
        for row in donation::Model::find_by_statement(statement).all(db).await? {
            pages.entry(row.campaign_id).or_default().push(row);
        }
    }
    pages
        .into_iter()
        .map(|(campaign_id, mut rows)| {
            rows.sort_unstable_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
            let page = pagination::first_page(rows, &newest_first(), first)?;
            Ok((campaign_id, page.map(|d| WallEntry::of(&d))))
        })
        .collect()
}

/// Every donation record of a campaign (staff and reconciling partners), newest first.
pub async fn campaign_donations(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    statuses: &[DonationStatus],
    page: PageRequest<'_>,
) -> AppResult<Page<donation::Model>> {
    let mut select = donation::Entity::find().filter(donation::Column::CampaignId.eq(campaign_id));
    if !statuses.is_empty() {
        select = select.filter(donation::Column::Status.is_in(statuses.iter().copied()));
    }
    pagination::paginate(db, select, &newest_first(), page).await
}

/// An account's own donation records (refunds included), newest first.
pub async fn donations_of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    page: PageRequest<'_>,
) -> AppResult<Page<donation::Model>> {
    let select = donation::Entity::find().filter(donation::Column::DonorAccountId.eq(account_id));
    pagination::paginate(db, select, &newest_first(), page).await
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DonorSummary {
    /// Confirmed in the range, minus refunds made in the range.
    pub net_fen: i64,
    pub confirmed_fen: i64,
    pub refunded_fen: i64,
    pub confirmed_count: i64,
    pub campaign_count: i64,
}

/// An account's giving between `from` (inclusive) and `to` (exclusive), by confirmation
/// time (refunds by refund time).
pub async fn donor_summary(
    db: &impl ConnectionTrait,
    account_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<DonorSummary> {
    if to <= from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    if to - from > Duration::days(MAX_SUMMARY_DAYS) {
        return Err(AppError::bad_input("to", "a summary covers at most three years"));
    }
    let rows = donation::Entity::find()
        .filter(donation::Column::DonorAccountId.eq(account_id))
        .filter(
            Condition::any()
                .add(donation::Column::Status.eq(DonationStatus::Confirmed))
                .add(donation::Column::Status.eq(DonationStatus::Refunded)),
        )
        .filter(donation::Column::ConfirmedAt.gte(from))
        .filter(donation::Column::ConfirmedAt.lt(to))
        .all(db)
        .await?;
    let mut summary = DonorSummary::default();
    let mut campaigns = std::collections::HashSet::new();
    for d in rows {
        if d.status == DonationStatus::Confirmed {
            summary.confirmed_fen += d.amount_fen;
            summary.confirmed_count += 1;
            campaigns.insert(d.campaign_id);
        } else {
            summary.refunded_fen += -d.amount_fen;
        }
    }
    summary.net_fen = summary.confirmed_fen - summary.refunded_fen;
    summary.campaign_count = campaigns.len() as i64;
    Ok(summary)
}

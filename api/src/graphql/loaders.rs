//! One DataLoader per relation, created per request: a page of N items costs one statement
//! per relation, not N.
//!
//! A DataLoader gathers keys for a short delay, and on a busy machine that window can close
//! before every resolver of a level has asked, splitting one batch into two. So list
//! resolvers that know their page look ahead at the selection and, when a nested relation is
//! selected, load it for the whole page in one statement and prime its loader: the nested
//! resolvers then find their values without a batch, and a page costs the same statements
//! whatever its size and however loaded the machine is.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::organization_stage_transition as transition;
use sea_orm::DatabaseConnection;

use crate::error::AppError;
use crate::service::organization::{self, OrganizationRecord};
use crate::service::{grants, projects};

/// A DataLoader with values primed by a list resolver. Primed values are looked up before the
/// loader is asked; they are put only by query list resolvers, never by loads, so a mutation
/// later in the same operation never reads a value cached before it wrote.
pub struct Primable<L: Loader<i64>> {
    loader: DataLoader<L>,
    primed: Primed<i64, L::Value>,
}

impl<L: Loader<i64>> Primable<L> {
    fn new(loader: DataLoader<L>) -> Self {
        Self { loader, primed: Primed::default() }
    }

    pub fn prime(&self, values: impl IntoIterator<Item = (i64, L::Value)>) {
        self.primed.put(values);
    }

    pub async fn load_one(&self, key: i64) -> Result<Option<L::Value>, L::Error> {
        if let Some(value) = self.primed.get(&key) {
            return Ok(Some(value));
        }
        self.loader.load_one(key).await
    }

    pub async fn load_many(&self, keys: Vec<i64>) -> Result<HashMap<i64, L::Value>, L::Error> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.primed.get(&key) {
                Some(value) => {
                    found.insert(key, value);
                }
                None => missing.push(key),
            }
        }
        if !missing.is_empty() {
            found.extend(self.loader.load_many(missing).await?);
        }
        Ok(found)
    }
}

/// Values loaded ahead for one request, by key.
pub struct Primed<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Primed<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Primed<K, V> {
    pub fn put(&self, values: impl IntoIterator<Item = (K, V)>) {
        if let Ok(mut map) = self.0.lock() {
            map.extend(values);
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.0.lock().ok().and_then(|map| map.get(key).cloned())
    }
}

/// A campaign's donor wall page from the start: (campaign id, page size).
pub type WallKey = (i64, u64);

pub struct Loaders {
    pub organization: Lazy<Primable<OrganizationLoader>>,
    pub stage_history: Lazy<Primable<StageHistoryLoader>>,
    /// First pages of donor walls, primed by the campaign list (no loader: a lone campaign
    /// page reads its wall through the cache).
    pub donor_walls: Primed<WallKey, crate::service::pagination::Page<crate::service::crowdfunding::WallEntry>>,
    pub members: Lazy<DataLoader<MembersLoader>>,
    pub campaign: Lazy<DataLoader<CampaignLoader>>,
    pub campaign_updates: Lazy<Primable<CampaignUpdatesLoader>>,
    pub campaign_budget: Lazy<Primable<CampaignBudgetLoader>>,
    pub grant_round: Lazy<DataLoader<GrantRoundLoader>>,
    pub grant_proposal: Lazy<DataLoader<GrantProposalLoader>>,
    pub proposal_reviews: Lazy<DataLoader<ProposalReviewsLoader>>,
    pub service_project: Lazy<DataLoader<ServiceProjectLoader>>,
    pub disbursements: Lazy<DataLoader<DisbursementsLoader>>,
    pub project_goals: Lazy<DataLoader<ProjectGoalsLoader>>,
    pub goal_updates: Lazy<DataLoader<GoalUpdatesLoader>>,
    pub service_totals: Lazy<DataLoader<ServiceTotalsLoader>>,
    pub event: Lazy<DataLoader<EventLoader>>,
    pub event_counts: Lazy<Primable<EventCountsLoader>>,
    pub event_impact: Lazy<DataLoader<EventImpactLoader>>,
    pub exhibits: Lazy<DataLoader<ExhibitsLoader>>,
    pub delegations: Lazy<DataLoader<DelegationsLoader>>,
    pub sessions: Lazy<DataLoader<SessionsLoader>>,
    pub programme: Lazy<DataLoader<ProgrammeLoader>>,
    pub cohorts: Lazy<DataLoader<CohortsLoader>>,
    pub waitlist_position: Lazy<DataLoader<WaitlistPositionLoader>>,
    pub space: Lazy<DataLoader<SpaceLoader>>,
    pub account: Lazy<DataLoader<AccountLoader>>,
    pub booking: Lazy<DataLoader<BookingLoader>>,
}

impl Loaders {
    /// Builds no loader yet: each is made when a resolver first asks for it, so a request
    /// pays only for the relations it reads (a page of organizations builds two, not ~30).
    pub fn new(db: &DatabaseConnection) -> Self {
        let db = Arc::new(db.clone());
        Self {
            organization: Lazy::new(&db, |db| Primable::new(loader(OrganizationLoader(db.clone())))),
            stage_history: Lazy::new(&db, |db| Primable::new(loader(StageHistoryLoader(db.clone())))),
            donor_walls: Primed::default(),
            members: Lazy::new(&db, |db| loader(MembersLoader(db.clone()))),
            campaign: Lazy::new(&db, |db| loader(CampaignLoader(db.clone()))),
            campaign_updates: Lazy::new(&db, |db| Primable::new(loader(CampaignUpdatesLoader(db.clone())))),
            campaign_budget: Lazy::new(&db, |db| Primable::new(loader(CampaignBudgetLoader(db.clone())))),
            grant_round: Lazy::new(&db, |db| loader(GrantRoundLoader(db.clone()))),
            grant_proposal: Lazy::new(&db, |db| loader(GrantProposalLoader(db.clone()))),
            proposal_reviews: Lazy::new(&db, |db| loader(ProposalReviewsLoader(db.clone()))),
            service_project: Lazy::new(&db, |db| loader(ServiceProjectLoader(db.clone()))),
            disbursements: Lazy::new(&db, |db| loader(DisbursementsLoader(db.clone()))),
            project_goals: Lazy::new(&db, |db| loader(ProjectGoalsLoader(db.clone()))),
            goal_updates: Lazy::new(&db, |db| loader(GoalUpdatesLoader(db.clone()))),
            service_totals: Lazy::new(&db, |db| loader(ServiceTotalsLoader(db.clone()))),
            event: Lazy::new(&db, |db| loader(EventLoader(db.clone()))),
            event_counts: Lazy::new(&db, |db| Primable::new(loader(EventCountsLoader(db.clone())))),
            event_impact: Lazy::new(&db, |db| loader(EventImpactLoader(db.clone()))),
            exhibits: Lazy::new(&db, |db| loader(ExhibitsLoader(db.clone()))),
            delegations: Lazy::new(&db, |db| loader(DelegationsLoader(db.clone()))),
            sessions: Lazy::new(&db, |db| loader(SessionsLoader(db.clone()))),
            programme: Lazy::new(&db, |db| loader(ProgrammeLoader(db.clone()))),
            cohorts: Lazy::new(&db, |db| loader(CohortsLoader(db.clone()))),
            waitlist_position: Lazy::new(&db, |db| loader(WaitlistPositionLoader(db.clone()))),
            space: Lazy::new(&db, |db| loader(SpaceLoader(db.clone()))),
            account: Lazy::new(&db, |db| loader(AccountLoader(db.clone()))),
            booking: Lazy::new(&db, |db| loader(BookingLoader(db.clone()))),
        }
    }
}

/// A short delay gathers the keys of one resolver level into one batch.
const BATCH_DELAY: Duration = Duration::from_micros(500);

fn loader<L: Loader<i64>>(loader: L) -> DataLoader<L> {
    DataLoader::new(loader, crate::metrics::spawn_counted).delay(BATCH_DELAY)
}

/// A value made on first use from the request's database handle (`Deref` makes it), so the
/// resolvers read `loaders.organization.load_one(..)` whether or not it was made before.
pub struct Lazy<T> {
    cell: OnceLock<T>,
    db: Arc<DatabaseConnection>,
    make: fn(&DatabaseConnection) -> T,
}

impl<T> Lazy<T> {
    fn new(db: &Arc<DatabaseConnection>, make: fn(&DatabaseConnection) -> T) -> Self {
        Self { cell: OnceLock::new(), db: db.clone(), make }
    }
}

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.cell.get_or_init(|| (self.make)(&self.db))
    }
}

pub struct OrganizationLoader(DatabaseConnection);

impl Loader<i64> for OrganizationLoader {
    type Value = OrganizationRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = organization::find_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.org.id, r)).collect())
    }
}

pub struct StageHistoryLoader(DatabaseConnection);

impl Loader<i64> for StageHistoryLoader {
    type Value = Vec<transition::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        organization::stage_histories(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct MembersLoader(DatabaseConnection);

impl Loader<i64> for MembersLoader {
    type Value = Vec<(entity::membership::Model, entity::account::Model)>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::identity::members_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct CampaignLoader(DatabaseConnection);

impl Loader<i64> for CampaignLoader {
    type Value = crate::service::crowdfunding::CampaignRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = crate::service::crowdfunding::find_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.campaign.id, r)).collect())
    }
}

pub struct CampaignUpdatesLoader(DatabaseConnection);

impl Loader<i64> for CampaignUpdatesLoader {
    type Value = Vec<entity::campaign_update::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::crowdfunding::updates_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct CampaignBudgetLoader(DatabaseConnection);

impl Loader<i64> for CampaignBudgetLoader {
    type Value = Vec<entity::campaign_budget_line::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        crate::service::crowdfunding::budgets_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct GrantRoundLoader(DatabaseConnection);

impl Loader<i64> for GrantRoundLoader {
    type Value = grants::RoundRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = grants::rounds_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.round.id, r)).collect())
    }
}

pub struct GrantProposalLoader(DatabaseConnection);

impl Loader<i64> for GrantProposalLoader {
    type Value = grants::ProposalRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = grants::proposals_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.proposal.id, r)).collect())
    }
}

pub struct ProposalReviewsLoader(DatabaseConnection);

impl Loader<i64> for ProposalReviewsLoader {
    type Value = Vec<grants::ReviewRecord>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        grants::reviews_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct ServiceProjectLoader(DatabaseConnection);

impl Loader<i64> for ServiceProjectLoader {
    type Value = projects::ProjectRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = projects::projects_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.project.id, r)).collect())
    }
}

pub struct DisbursementsLoader(DatabaseConnection);

impl Loader<i64> for DisbursementsLoader {
    type Value = Vec<entity::project_disbursement::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        projects::disbursements_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct ProjectGoalsLoader(DatabaseConnection);

impl Loader<i64> for ProjectGoalsLoader {
    type Value = Vec<entity::project_goal::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        projects::goals_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct GoalUpdatesLoader(DatabaseConnection);

impl Loader<i64> for GoalUpdatesLoader {
    type Value = Vec<entity::project_goal_update::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        projects::goal_updates_of(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct ServiceTotalsLoader(DatabaseConnection);

impl Loader<i64> for ServiceTotalsLoader {
    type Value = grants::PeopleByGroup;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        projects::service_totals_of(&self.0, keys).await.map_err(Arc::new)
    }
}

// ---------------------------------------------------------------- events

/// Declares a loader whose `load` is one service call returning a map by key.
macro_rules! map_loader {
    ($name:ident, $value:ty, $load:expr) => {
        pub struct $name(DatabaseConnection);

        impl Loader<i64> for $name {
            type Value = $value;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
                $load(&self.0, keys).await.map_err(Arc::new)
            }
        }
    };
}

use crate::service::event as events;

map_loader!(EventCountsLoader, events::EventCounts, events::counts_of);
map_loader!(EventImpactLoader, events::PersonTimes, events::impact_of);
map_loader!(ExhibitsLoader, Vec<entity::exhibit::Model>, events::exhibits_of);
map_loader!(DelegationsLoader, Vec<entity::delegation::Model>, events::delegations_of);
map_loader!(SessionsLoader, Vec<entity::training_session::Model>, events::sessions_of);
map_loader!(CohortsLoader, Vec<entity::event::Model>, events::cohorts_of);
map_loader!(WaitlistPositionLoader, i64, events::waitlist_positions);

pub struct EventLoader(DatabaseConnection);

impl Loader<i64> for EventLoader {
    type Value = entity::event::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = events::find_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

pub struct ProgrammeLoader(DatabaseConnection);

impl Loader<i64> for ProgrammeLoader {
    type Value = entity::training_programme::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = events::programmes_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

pub struct SpaceLoader(DatabaseConnection);

impl Loader<i64> for SpaceLoader {
    type Value = crate::service::space::SpaceRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = crate::service::space::find_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.space.id, r)).collect())
    }
}

pub struct AccountLoader(DatabaseConnection);

impl Loader<i64> for AccountLoader {
    type Value = entity::account::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = crate::service::identity::accounts_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|a| (a.id, a)).collect())
    }
}

pub struct BookingLoader(DatabaseConnection);

impl Loader<i64> for BookingLoader {
    type Value = entity::booking::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = crate::service::booking::find_by_ids(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|b| (b.id, b)).collect())
    }
}

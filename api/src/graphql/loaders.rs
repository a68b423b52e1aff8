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
use std::sync::{Arc, Mutex};
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
    pub organization: Primable<OrganizationLoader>,
    pub stage_history: Primable<StageHistoryLoader>,
    /// First pages of donor walls, primed by the campaign list (no loader: a lone campaign
    /// page reads its wall through the cache).
    pub donor_walls: Primed<WallKey, crate::service::pagination::Page<crate::service::crowdfunding::WallEntry>>,
    pub members: DataLoader<MembersLoader>,
    pub campaign: DataLoader<CampaignLoader>,
    pub campaign_updates: Primable<CampaignUpdatesLoader>,
    pub campaign_budget: Primable<CampaignBudgetLoader>,
    pub grant_round: DataLoader<GrantRoundLoader>,
    pub grant_proposal: DataLoader<GrantProposalLoader>,
    pub proposal_reviews: DataLoader<ProposalReviewsLoader>,
    pub service_project: DataLoader<ServiceProjectLoader>,
    pub disbursements: DataLoader<DisbursementsLoader>,
    pub project_goals: DataLoader<ProjectGoalsLoader>,
    pub goal_updates: DataLoader<GoalUpdatesLoader>,
    pub service_totals: DataLoader<ServiceTotalsLoader>,
    pub event: DataLoader<EventLoader>,
    pub event_counts: Primable<EventCountsLoader>,
    pub event_impact: DataLoader<EventImpactLoader>,
    pub exhibits: DataLoader<ExhibitsLoader>,
    pub delegations: DataLoader<DelegationsLoader>,
    pub sessions: DataLoader<SessionsLoader>,
    pub programme: DataLoader<ProgrammeLoader>,
    pub cohorts: DataLoader<CohortsLoader>,
    pub waitlist_position: DataLoader<WaitlistPositionLoader>,
    pub space: DataLoader<SpaceLoader>,
    pub account: DataLoader<AccountLoader>,
    pub booking: DataLoader<BookingLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        // A short delay gathers the keys of one resolver level into one batch.
        let delay = Duration::from_micros(500);
        Self {
            organization: Primable::new(
                DataLoader::new(OrganizationLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            ),
            stage_history: Primable::new(
                DataLoader::new(StageHistoryLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            ),
            donor_walls: Primed::default(),
            members: DataLoader::new(MembersLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            campaign: DataLoader::new(CampaignLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            campaign_updates: Primable::new(
                DataLoader::new(CampaignUpdatesLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            ),
            campaign_budget: Primable::new(
                DataLoader::new(CampaignBudgetLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            ),
            grant_round: DataLoader::new(GrantRoundLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            grant_proposal: DataLoader::new(GrantProposalLoader(db.clone()), crate::metrics::spawn_counted)
                .delay(delay),
            proposal_reviews: DataLoader::new(ProposalReviewsLoader(db.clone()), crate::metrics::spawn_counted)
                .delay(delay),
            service_project: DataLoader::new(ServiceProjectLoader(db.clone()), crate::metrics::spawn_counted)
                .delay(delay),
            disbursements: DataLoader::new(DisbursementsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            project_goals: DataLoader::new(ProjectGoalsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            goal_updates: DataLoader::new(GoalUpdatesLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            service_totals: DataLoader::new(ServiceTotalsLoader(db.clone()), crate::metrics::spawn_counted)
                .delay(delay),
            event: DataLoader::new(EventLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            event_counts: Primable::new(
                DataLoader::new(EventCountsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            ),
            event_impact: DataLoader::new(EventImpactLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            exhibits: DataLoader::new(ExhibitsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            delegations: DataLoader::new(DelegationsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            sessions: DataLoader::new(SessionsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            programme: DataLoader::new(ProgrammeLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            cohorts: DataLoader::new(CohortsLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            waitlist_position: DataLoader::new(WaitlistPositionLoader(db.clone()), crate::metrics::spawn_counted)
                .delay(delay),
            space: DataLoader::new(SpaceLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            account: DataLoader::new(AccountLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
            booking: DataLoader::new(BookingLoader(db.clone()), crate::metrics::spawn_counted).delay(delay),
        }
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

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
use async_graphql::{Context, ErrorExtensions};
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
    pub statement_report: Lazy<DataLoader<StatementReportLoader>>,
}

impl Loaders {
    /// Builds no loader yet: each is made when a resolver first asks for it, so a request
    /// pays only for the relations it reads (a page of organizations builds two, not ~30).
    pub fn new(db: &DatabaseConnection) -> Self {
        let db = Arc::new(db.clone());
        Self {
            donor_walls: Primed::default(),
            organization: Lazy::new(&db),
            stage_history: Lazy::new(&db),
            members: Lazy::new(&db),
            campaign: Lazy::new(&db),
            campaign_updates: Lazy::new(&db),
            campaign_budget: Lazy::new(&db),
            grant_round: Lazy::new(&db),
            grant_proposal: Lazy::new(&db),
            proposal_reviews: Lazy::new(&db),
            service_project: Lazy::new(&db),
            disbursements: Lazy::new(&db),
            project_goals: Lazy::new(&db),
            goal_updates: Lazy::new(&db),
            service_totals: Lazy::new(&db),
            event: Lazy::new(&db),
            event_counts: Lazy::new(&db),
            event_impact: Lazy::new(&db),
            exhibits: Lazy::new(&db),
            delegations: Lazy::new(&db),
            sessions: Lazy::new(&db),
            programme: Lazy::new(&db),
            cohorts: Lazy::new(&db),
            waitlist_position: Lazy::new(&db),
            space: Lazy::new(&db),
            account: Lazy::new(&db),
            booking: Lazy::new(&db),
            statement_report: Lazy::new(&db),
        }
    }

    /// The request's loaders.
    pub fn of<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
        ctx.data::<Loaders>()
    }
}

/// A short delay gathers the keys of one resolver level into one batch.
const BATCH_DELAY: Duration = Duration::from_micros(500);

fn loader<L: Loader<i64>>(loader: L) -> DataLoader<L> {
    DataLoader::new(loader, crate::metrics::spawn_counted).delay(BATCH_DELAY)
}

/// What a `Lazy` makes on first use from the request's database handle.
pub trait FromDb {
    fn from_db(db: &DatabaseConnection) -> Self;
}

impl<L: Loader<i64> + for<'a> From<&'a DatabaseConnection>> FromDb for DataLoader<L> {
    fn from_db(db: &DatabaseConnection) -> Self {
        loader(L::from(db))
    }
}

impl<L: Loader<i64> + for<'a> From<&'a DatabaseConnection>> FromDb for Primable<L> {
    fn from_db(db: &DatabaseConnection) -> Self {
        Primable::new(loader(L::from(db)))
    }
}

/// A value made on first use from the request's database handle (`Deref` makes it), so the
/// resolvers read `loaders.organization.get(..)` whether or not it was made before.
pub struct Lazy<T> {
    cell: OnceLock<T>,
    db: Arc<DatabaseConnection>,
}

impl<T> Lazy<T> {
    fn new(db: &Arc<DatabaseConnection>) -> Self {
        Self { cell: OnceLock::new(), db: db.clone() }
    }
}

impl<T: FromDb> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.cell.get_or_init(|| T::from_db(&self.db))
    }
}

/// A resolver's reads through a loader: a failed load is the GraphQL error.
macro_rules! resolver_reads {
    ($($wrapper:ident),*) => {$(
        impl<L> Lazy<$wrapper<L>>
        where
            L: Loader<i64, Error = Arc<AppError>> + for<'a> From<&'a DatabaseConnection>,
        {
            /// The value for `key`, if there is one.
            pub async fn get(&self, key: i64) -> async_graphql::Result<Option<L::Value>> {
                self.load_one(key).await.map_err(|e| e.extend())
            }

            /// The value for `key`, or the empty one (no rows of a relation).
            pub async fn get_or_default(&self, key: i64) -> async_graphql::Result<L::Value>
            where
                L::Value: Default,
            {
                Ok(self.get(key).await?.unwrap_or_default())
            }

            /// The values found for `keys`, by key.
            pub async fn get_many(&self, keys: Vec<i64>) -> async_graphql::Result<HashMap<i64, L::Value>> {
                self.load_many(keys).await.map_err(|e| e.extend())
            }
        }
    )*};
}

resolver_reads!(DataLoader, Primable);

/// Declares a loader whose `load` is one service call: one returning a map by key, or, given
/// how to key a row (`|row| key`), one returning rows.
macro_rules! batch_loader {
    ($name:ident, $value:ty, $load:expr $(, |$row:ident| $key:expr)?) => {
        pub struct $name(DatabaseConnection);

        impl From<&DatabaseConnection> for $name {
            fn from(db: &DatabaseConnection) -> Self {
                Self(db.clone())
            }
        }

        impl Loader<i64> for $name {
            type Value = $value;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
                let found = $load(&self.0, keys).await.map_err(Arc::new)?;
                $(let found = found.into_iter().map(|$row: $value| ($key, $row)).collect();)?
                Ok(found)
            }
        }
    };
}

use crate::service::event as events;

batch_loader!(OrganizationLoader, OrganizationRecord, organization::find_by_ids, |r| r.org.id);
batch_loader!(StageHistoryLoader, Vec<transition::Model>, organization::stage_histories);
batch_loader!(
    MembersLoader,
    Vec<(entity::membership::Model, entity::account::Model)>,
    crate::service::identity::members_of
);
batch_loader!(
    CampaignLoader,
    crate::service::crowdfunding::CampaignRecord,
    crate::service::crowdfunding::find_by_ids,
    |r| r.campaign.id
);
batch_loader!(CampaignUpdatesLoader, Vec<entity::campaign_update::Model>, crate::service::crowdfunding::updates_of);
batch_loader!(CampaignBudgetLoader, Vec<entity::campaign_budget_line::Model>, crate::service::crowdfunding::budgets_of);
batch_loader!(GrantRoundLoader, grants::RoundRecord, grants::rounds_by_ids, |r| r.round.id);
batch_loader!(GrantProposalLoader, grants::ProposalRecord, grants::proposals_by_ids, |r| r.proposal.id);
batch_loader!(ProposalReviewsLoader, Vec<grants::ReviewRecord>, grants::reviews_of);
batch_loader!(ServiceProjectLoader, projects::ProjectRecord, projects::projects_by_ids, |r| r.project.id);
batch_loader!(DisbursementsLoader, Vec<entity::project_disbursement::Model>, projects::disbursements_of);
batch_loader!(ProjectGoalsLoader, Vec<entity::project_goal::Model>, projects::goals_of);
batch_loader!(GoalUpdatesLoader, Vec<entity::project_goal_update::Model>, projects::goal_updates_of);
batch_loader!(ServiceTotalsLoader, grants::PeopleByGroup, projects::service_totals_of);
batch_loader!(EventLoader, entity::event::Model, events::find_by_ids, |r| r.id);
batch_loader!(EventCountsLoader, events::EventCounts, events::counts_of);
batch_loader!(EventImpactLoader, events::PersonTimes, events::impact_of);
batch_loader!(ExhibitsLoader, Vec<entity::exhibit::Model>, events::exhibits_of);
batch_loader!(DelegationsLoader, Vec<entity::delegation::Model>, events::delegations_of);
batch_loader!(SessionsLoader, Vec<entity::training_session::Model>, events::sessions_of);
batch_loader!(ProgrammeLoader, entity::training_programme::Model, events::programmes_by_ids, |r| r.id);
batch_loader!(CohortsLoader, Vec<entity::event::Model>, events::cohorts_of);
batch_loader!(WaitlistPositionLoader, i64, events::waitlist_positions);
batch_loader!(SpaceLoader, crate::service::space::SpaceRecord, crate::service::space::find_by_ids, |r| r.space.id);
batch_loader!(AccountLoader, entity::account::Model, crate::service::identity::accounts_by_ids, |a| a.id);
batch_loader!(BookingLoader, entity::booking::Model, crate::service::booking::find_by_ids, |b| b.id);
batch_loader!(StatementReportLoader, Arc<str>, crate::service::statements::stored_reports);

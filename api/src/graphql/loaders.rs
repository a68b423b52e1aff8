//! One DataLoader per relation, created per request: a page of N items costs one statement
//! per relation, not N.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::organization_stage_transition as transition;
use sea_orm::DatabaseConnection;

use crate::error::AppError;
use crate::service::organization::{self, OrganizationRecord};

pub struct Loaders {
    pub organization: DataLoader<OrganizationLoader>,
    pub stage_history: DataLoader<StageHistoryLoader>,
    pub members: DataLoader<MembersLoader>,
    pub event: DataLoader<EventLoader>,
    pub event_counts: DataLoader<EventCountsLoader>,
    pub event_impact: DataLoader<EventImpactLoader>,
    pub exhibits: DataLoader<ExhibitsLoader>,
    pub delegations: DataLoader<DelegationsLoader>,
    pub programme: DataLoader<ProgrammeLoader>,
    pub cohorts: DataLoader<CohortsLoader>,
    pub waitlist_position: DataLoader<WaitlistPositionLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        // A short delay gathers the keys of one resolver level into one batch.
        let delay = Duration::from_micros(500);
        Self {
            organization: DataLoader::new(OrganizationLoader(db.clone()), tokio::spawn).delay(delay),
            stage_history: DataLoader::new(StageHistoryLoader(db.clone()), tokio::spawn).delay(delay),
            members: DataLoader::new(MembersLoader(db.clone()), tokio::spawn).delay(delay),
            event: DataLoader::new(EventLoader(db.clone()), tokio::spawn).delay(delay),
            event_counts: DataLoader::new(EventCountsLoader(db.clone()), tokio::spawn).delay(delay),
            event_impact: DataLoader::new(EventImpactLoader(db.clone()), tokio::spawn).delay(delay),
            exhibits: DataLoader::new(ExhibitsLoader(db.clone()), tokio::spawn).delay(delay),
            delegations: DataLoader::new(DelegationsLoader(db.clone()), tokio::spawn).delay(delay),
            programme: DataLoader::new(ProgrammeLoader(db.clone()), tokio::spawn).delay(delay),
            cohorts: DataLoader::new(CohortsLoader(db.clone()), tokio::spawn).delay(delay),
            waitlist_position: DataLoader::new(WaitlistPositionLoader(db.clone()), tokio::spawn).delay(delay),
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

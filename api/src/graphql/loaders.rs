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
    pub space: DataLoader<SpaceLoader>,
    pub account: DataLoader<AccountLoader>,
    pub booking: DataLoader<BookingLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        // A short delay gathers the keys of one resolver level into one batch.
        let delay = Duration::from_micros(500);
        Self {
            organization: DataLoader::new(OrganizationLoader(db.clone()), tokio::spawn).delay(delay),
            stage_history: DataLoader::new(StageHistoryLoader(db.clone()), tokio::spawn).delay(delay),
            members: DataLoader::new(MembersLoader(db.clone()), tokio::spawn).delay(delay),
            space: DataLoader::new(SpaceLoader(db.clone()), tokio::spawn).delay(delay),
            account: DataLoader::new(AccountLoader(db.clone()), tokio::spawn).delay(delay),
            booking: DataLoader::new(BookingLoader(db.clone()), tokio::spawn).delay(delay),
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

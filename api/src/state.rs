//! What every request can reach: the database, the cache, settings and counters.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::AccessPolicy;
use crate::cache::Cache;
use crate::config::{Environment, Settings};
use crate::db::Metrics;
use crate::service::organization::Directory;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub policy: AccessPolicy,
}

impl AppState {
    pub fn new(db: DatabaseConnection, cache: Cache, settings: Arc<Settings>, metrics: Arc<Metrics>) -> Self {
        let policy = AccessPolicy { open_writes: settings.environment == Environment::Development };
        Self { db, cache, settings, metrics, policy }
    }

    pub fn directory(&self) -> Directory<'_> {
        Directory { db: &self.db, cache: &self.cache, limits: &self.settings.limits }
    }
}

//! What every request can reach: the database, the cache, settings, token keys and counters.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::config::Settings;
use crate::db::Metrics;
use crate::service::identity::{SignInLimiter, TokenKeys};
use crate::service::organization::Directory;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenKeys>,
    pub sign_in_limiter: Arc<SignInLimiter>,
}

impl AppState {
    pub fn directory(&self) -> Directory<'_> {
        Directory { db: &self.db, cache: &self.cache, limits: &self.settings.limits }
    }

    pub fn calendar(&self) -> crate::service::booking::Calendar<'_> {
        crate::service::booking::Calendar { db: &self.db, cache: &self.cache }
    }
}

//! What every request can reach: the database, the cache, settings, token keys and counters.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::config::Settings;
use crate::cors::CorsPolicy;
use crate::db::Metrics;
use crate::events::ProgressEvents;
use crate::ratelimit::OperationLimiter;
use crate::response_cache::ResponseCache;
use crate::service::crowdfunding::Crowdfunding;
use crate::service::identity::{SignInLimiter, TokenKeys};
use crate::service::organization::Directory;
use crate::service::trusted_documents::DocumentStore;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenKeys>,
    pub sign_in_limiter: Arc<SignInLimiter>,
    pub operation_limiter: Arc<OperationLimiter>,
    pub responses: Arc<ResponseCache>,
    pub events: ProgressEvents,
    pub cors: Arc<CorsPolicy>,
    pub documents: Arc<DocumentStore>,
}

impl AppState {
    pub fn crowdfunding(&self) -> Crowdfunding<'_> {
        Crowdfunding { db: &self.db, cache: &self.cache, limits: &self.settings.limits, events: &self.events }
    }

    pub fn directory(&self) -> Directory<'_> {
        Directory { db: &self.db, cache: &self.cache, limits: &self.settings.limits }
    }

    pub fn events(&self) -> crate::service::event::Events<'_> {
        crate::service::event::Events { db: &self.db, cache: &self.cache, limits: &self.settings.limits }
    }

    pub fn calendar(&self) -> crate::service::booking::Calendar<'_> {
        crate::service::booking::Calendar { db: &self.db, cache: &self.cache }
    }
}

//! What every request can reach: the database, the cache, settings, token keys and counters.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::config::Settings;
use crate::cors::CorsPolicy;
use crate::events::EventLog;
use crate::metrics::Metrics;
use crate::ratelimit::OperationLimiter;
use crate::response_cache::ResponseCache;
use crate::service::crowdfunding::Crowdfunding;
use crate::service::identity::{SignInLimiter, TokenKeys};
use crate::service::organization::Directory;
use crate::service::trusted_documents::DocumentStore;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// The same pool as `db`, its statements not counted as the requests': what background
    /// writers use on SQLite, whose one writer connection they share.
    pub background_db: DatabaseConnection,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenKeys>,
    pub sign_in_limiter: Arc<SignInLimiter>,
    pub operation_limiter: Arc<OperationLimiter>,
    pub responses: Arc<ResponseCache>,
    /// This instance's side of the event log: applies writes' effects, follows the log.
    pub log: EventLog,
    pub cors: Arc<CorsPolicy>,
    pub documents: Arc<DocumentStore>,
    /// This instance's SMTP mailer; `None` without `INCUBASE_SMTP_URL`.
    pub mailer: Option<crate::mail::Mailer>,
    /// Limits on asking for account mails (resets, verifications), per address mailed and per client.
    pub account_mail_limiter: Arc<SignInLimiter>,
    /// Limits on guests' receipt lookups and statements, per receipt number and per client.
    pub receipt_lookup_limiter: Arc<SignInLimiter>,
    /// This instance's confirmations, counted together while others run (PostgreSQL).
    pub confirmations: Arc<crate::service::crowdfunding::ConfirmationBatches>,
}

impl AppState {
    /// What the service commands need.
    pub fn ctx(&self) -> crate::service::Ctx<'_> {
        crate::service::Ctx {
            db: &self.db,
            log: &self.log,
            settings: &self.settings,
            tokens: &self.tokens,
            sign_in_limiter: &self.sign_in_limiter,
            mailer: self.mailer.as_ref(),
            account_mail_limiter: &self.account_mail_limiter,
            confirmations: &self.confirmations,
        }
    }

    pub fn crowdfunding(&self) -> Crowdfunding<'_> {
        Crowdfunding { db: &self.db, cache: &self.cache }
    }

    pub fn directory(&self) -> Directory<'_> {
        Directory { db: &self.db, cache: &self.cache }
    }

    pub fn events(&self) -> crate::service::event::Events<'_> {
        crate::service::event::Events { db: &self.db, cache: &self.cache }
    }

    pub fn calendar(&self) -> crate::service::booking::Calendar<'_> {
        crate::service::booking::Calendar { db: &self.db, cache: &self.cache }
    }
}

//! Building and running the server: connect, migrate, bind (port 0 allowed), serve until a
//! shutdown signal, then let in-flight requests finish.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use poem::Server;
use poem::listener::{AcceptorExt, BoxAcceptor, TcpAcceptor};

use crate::cache::Cache;
use crate::config::{Environment, Settings};
use crate::db;
use crate::events::{EventLog, FollowerSettings};
use crate::graphql::{build_lean_schema, build_schema};
use crate::listener::HeaderTimeoutAcceptor;
use crate::metrics::Metrics;
use crate::ratelimit::OperationLimiter;
use crate::response_cache::ResponseCache;
use crate::service::identity::{SignInLimiter, TokenKeys};
use crate::state::AppState;

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("invalid REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("token secret: {0}")]
    Secret(String),
    #[error("cannot follow the event log: {0}")]
    EventLog(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
}

pub struct Application {
    acceptor: BoxAcceptor,
    local_addr: SocketAddr,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let mut state = build_state(settings).await?;
        Migrator::up(&state.db, None).await?;
        crate::service::webhooks::reseal_stored_secrets(&state.db, &state.settings.webhooks.sealing).await;
        state.log = follow_log(&state).await?;
        state.log.on_published(edge_effects(&state));
        let addr = state.settings.listen;
        let listener = std::net::TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
        let acceptor = TcpAcceptor::from_std(listener).map_err(|source| StartupError::Bind { addr, source })?;
        let header_timeout = state.settings.limits.header_read_timeout;
        let acceptor = match &state.settings.tls {
            None => HeaderTimeoutAcceptor::new(acceptor, header_timeout).boxed(),
            Some(files) => {
                let first = files.load().map_err(StartupError::Tls)?;
                let (configs, ready) =
                    crate::tls::configs(files.clone(), first).map_err(|e| StartupError::Tls(e.to_string()))?;
                let gated = crate::tls::AfterFirstConfig { inner: acceptor, ready };
                HeaderTimeoutAcceptor::new(gated.rustls(configs), header_timeout).boxed()
            }
        };
        Ok(Self { acceptor, local_addr, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http` or `https`: how clients reach this server directly.
    pub fn scheme(&self) -> &'static str {
        if self.state.settings.tls.is_some() { "https" } else { "http" }
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then waits for in-flight requests (up to 30 s).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (limits, environment) = (&self.state.settings.limits, &self.state.settings.environment);
        let schema = build_schema(Some(self.state.clone()), limits, environment);
        let lean = build_lean_schema(Some(self.state.clone()), limits, environment);
        let app = crate::http::routes(schema, lean, self.state.clone());
        let purger = tokio::spawn(purge_hourly(self.state.clone()));
        let expirer = tokio::spawn(expire_pledges_every_minute(self.state.clone()));
        let edge = tokio::spawn(follow_edge(self.state.clone()));
        let webhooks = match webhook_connections(&self.state).await {
            Ok(connections) => {
                let relay = crate::channels::spawn(connections.clone(), self.state.settings.webhooks.clone());
                let mut tasks =
                    crate::webhooks::spawn(connections, self.state.log.clone(), self.state.settings.webhooks.clone());
                tasks.push(relay);
                tasks
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the webhooks' connection: no webhooks are delivered");
                Vec::new()
            }
        };
        let notifier = match webhook_connections(&self.state).await {
            Ok(connections) => {
                let settings = crate::notifications::NotifierSettings {
                    mailer: self.state.mailer.clone(),
                    poll_interval: self.state.settings.webhooks.poll_interval,
                };
                crate::notifications::spawn(connections, self.state.log.clone(), settings)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the notifications' connection: no notifications are written");
                Vec::new()
            }
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .idle_timeout(self.state.settings.limits.idle_timeout)
            .run_with_graceful_shutdown(app, shutdown, Some(GRACE))
            .await;
        purger.abort();
        expirer.abort();
        edge.abort();
        for task in webhooks.into_iter().chain(notifier) {
            task.abort();
        }
        served?;
        self.state.db.clone().close().await.ok();
        Ok(())
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Ticks every `every`, the first time `every` from now; a late tick delays the ones after it.
fn ticks_every(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Once an hour while serving (the first run an hour after start): erases identity documents
/// past their retention (`purge-identity-documents` does it on demand) and old events of the
/// log past theirs.
async fn purge_hourly(state: AppState) {
    let mut ticks = ticks_every(Duration::from_secs(3600));
    let actor = crate::events::Actor::system("hourly-purge");
    loop {
        ticks.tick().await;
        let settings = &state.settings;
        let now = crate::service::now();
        match crate::service::event::purge_identity_documents(
            state.ctx(),
            &actor,
            settings.identity_document_retention,
            now,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "identity documents purged"),
            Err(e) => tracing::warn!(error = %e, "purging identity documents failed; retrying in an hour"),
        }
        match crate::events::audit::purge(&state.db, settings.event_retention, settings.audit_retention, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old events purged from the log"),
            Err(e) => tracing::warn!(error = %e, "purging the event log failed; retrying in an hour"),
        }
    }
}

/// Once a minute while serving: marks pledges past `INCUBASE_PLEDGE_TTL_HOURS` EXPIRED. Only
/// bookkeeping: nothing counts a pledge, and a payment for an expired pledge takes the
/// late-payment path whether or not this has run yet. Several instances may run it at once.
async fn expire_pledges_every_minute(state: AppState) {
    let mut ticks = ticks_every(Duration::from_secs(60));
    let actor = crate::events::Actor::system("pledge-expiry");
    loop {
        ticks.tick().await;
        match crate::service::crowdfunding::expire_pledges(state.ctx(), &actor, crate::service::now(), 500).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "pledges expired"),
            Err(e) => tracing::warn!(error = %e, "expiring pledges failed; retrying in a minute"),
        }
    }
}

/// Database and cache from settings, without migrating or listening.
pub async fn build_state(settings: Settings) -> Result<AppState, StartupError> {
    let metrics = Arc::new(Metrics::default());
    let (db, background_db) = db::connect_pool(&settings, metrics.clone()).await?;
    let cache = match &settings.redis_url {
        _ if !settings.cache_enabled => Cache::disabled(),
        Some(url) => Cache::redis(url, &settings.cache_prefix, settings.cache_ttl, settings.cache_timeout)?,
        None => Cache::in_memory(settings.cache_ttl),
    };
    let secret = resolve_jwt_secret(&settings)?;
    let mut settings = settings;
    settings.receipt_secret = Some(resolve_receipt_secret(&settings)?);
    let secrets_key =
        resolve_secret(&settings, settings.secrets_key.as_deref(), "INCUBASE_SECRETS_KEY", "secrets-key")?;
    let secrets_key =
        String::from_utf8(secrets_key).map_err(|_| StartupError::Secret("the secrets key is not UTF-8".into()))?;
    settings.webhooks.sealing =
        crate::sealing::Sealing::new(&secrets_key, &settings.secrets_previous_keys).map_err(StartupError::Secret)?;
    let receipt_lookup_limiter = SignInLimiter::with_quotas(
        governor::Quota::per_hour(nonzero(settings.receipt_lookups_per_receipt_per_hour)),
        governor::Quota::per_hour(nonzero(settings.receipt_lookups_per_address_per_hour)),
    );
    let previous: Vec<&[u8]> = settings.jwt_previous_secrets.iter().map(|p| p.as_bytes()).collect();
    let tokens = TokenKeys::new(&secret, settings.access_token_ttl, settings.refresh_token_ttl)
        .and_then(|keys| keys.also_accepting(&previous))
        .map_err(StartupError::Secret)?;
    let sign_in_limiter =
        SignInLimiter::new(settings.sign_in_per_account_per_minute, settings.sign_in_per_address_per_minute);
    let operation_limiter = Arc::new(OperationLimiter::new(&settings.limits));
    let responses = ResponseCache::new(settings.response_cache_entries, settings.cache_ttl);
    let log = EventLog::writer_only(cache.clone());
    let cors = Arc::new(crate::cors::CorsPolicy::new(settings.cors_origins.clone(), settings.cors_max_age));
    let mailer = crate::mail::Mailer::new(settings.smtp_url.as_deref(), &settings.smtp_from);
    let account_mail_limiter = SignInLimiter::with_quotas(
        governor::Quota::per_hour(nonzero(settings.accounts.mails_per_email_per_hour)),
        governor::Quota::per_hour(nonzero(settings.accounts.mails_per_address_per_hour)),
    );
    let confirmations = Arc::new(crate::service::crowdfunding::ConfirmationBatches::new(
        db.clone(),
        settings.pledge_ttl,
        settings.confirmation_batch,
        metrics.clone(),
    ));
    Ok(AppState {
        confirmations,
        receipt_lookup_limiter,
        mailer,
        account_mail_limiter,
        cors,
        documents: Arc::default(),
        db,
        background_db,
        cache,
        settings: Arc::new(settings),
        metrics,
        tokens: Arc::new(tokens),
        sign_in_limiter,
        operation_limiter,
        responses,
        log,
    })
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n.max(1)).unwrap_or(std::num::NonZeroU32::MIN)
}

/// What events change at the HTTP edge of this instance: the origins publishable keys allow
/// (preflights), and documents that were missing a moment ago.
fn edge_effects(state: &AppState) -> crate::events::follower::Hook {
    let (cors, documents) = (state.cors.clone(), state.documents.clone());
    std::sync::Arc::new(move |kind, payload| match kind {
        crate::events::EventKind::ApiKeyCreated | crate::events::EventKind::ApiKeyRevoked => cors.forget_key_origins(),
        crate::events::EventKind::TrustedDocumentRegistered => {
            if let Some(id) = payload.get("documentId").and_then(serde_json::Value::as_str) {
                documents.forget_missing(id);
            }
        }
        _ => {}
    })
}

/// Applies `edge_effects` to what other instances (and the CLI) write; this instance's own
/// writes apply them at commit.
async fn follow_edge(state: AppState) {
    let effects = edge_effects(&state);
    let (mut events, _) = state.log.subscribe();
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Some(kind) = crate::events::log::kind_of(&event) {
                    effects(kind, &event.payload);
                }
            }
            // Missed some: forget everything that may have changed.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => state.cors.forget_key_origins(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The webhooks' connections: a background one of their own, but SQLite's writes go through
/// the server's pool, uncounted (see `crate::webhooks::Connections`).
async fn webhook_connections(state: &AppState) -> Result<crate::webhooks::Connections, sea_orm::DbErr> {
    let reads = db::connect_background(&state.settings).await?;
    let writes = if state.settings.is_postgres() { reads.clone() } else { state.background_db.clone() };
    Ok(crate::webhooks::Connections { reads, writes })
}

/// This instance's follower of the event log, on a connection of its own.
async fn follow_log(state: &AppState) -> Result<EventLog, StartupError> {
    let settings = &state.settings;
    let background = db::connect_background(settings).await?;
    let follower = FollowerSettings {
        poll_interval: settings.event_poll_interval,
        // With Redis the cache is shared by every instance and outlives them.
        durable_coherence: settings.redis_url.is_some() && settings.cache_enabled,
        listen_url: settings.is_postgres().then(|| settings.database_url.clone()),
    };
    EventLog::follow(background, state.cache.clone(), follower).await.map_err(|e| StartupError::EventLog(e.to_string()))
}

/// `INCUBASE_JWT_SECRET`, or a generated secret kept in a file beside the SQLite database
/// (`./data/jwt-secret` for PostgreSQL in development). Production with PostgreSQL must set it:
/// several instances need the same secret.
fn resolve_jwt_secret(settings: &Settings) -> Result<Vec<u8>, StartupError> {
    resolve_secret(settings, settings.jwt_secret.as_deref(), "INCUBASE_JWT_SECRET", "jwt-secret")
}

/// `INCUBASE_RECEIPT_SECRET`, or a generated one kept beside the database (`receipt-secret`),
/// as for the token secret.
fn resolve_receipt_secret(settings: &Settings) -> Result<String, StartupError> {
    let secret =
        resolve_secret(settings, settings.receipt_secret.as_deref(), "INCUBASE_RECEIPT_SECRET", "receipt-secret")?;
    String::from_utf8(secret).map_err(|_| StartupError::Secret("the receipt secret is not UTF-8".into()))
}

/// A configured secret, or one generated once and kept in `file_name` beside the database.
fn resolve_secret(
    settings: &Settings,
    configured: Option<&str>,
    variable: &str,
    file_name: &str,
) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let dir = if settings.is_postgres() {
        if settings.environment == Environment::Production {
            return Err(StartupError::Secret(format!("{variable} is required with PostgreSQL in production")));
        }
        std::path::PathBuf::from("data")
    } else {
        let path = settings.database_url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        match std::path::Path::new(path).parent() {
            Some(parent) if !path.contains(":memory:") => parent.to_path_buf(),
            _ => std::path::PathBuf::from("data"),
        }
    };
    let file = dir.join(file_name);
    if let Ok(existing) = std::fs::read_to_string(&file)
        && existing.trim().len() >= 32
    {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    let mut bytes = [0u8; 48];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    std::fs::create_dir_all(&dir).map_err(|e| StartupError::Secret(format!("cannot create {}: {e}", dir.display())))?;
    write_private(&file, &secret).map_err(|e| StartupError::Secret(format!("cannot write {}: {e}", file.display())))?;
    tracing::info!(file = %file.display(), variable, "generated a secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

//! Building and running the server: connect, migrate, bind (port 0 allowed), serve until a
//! shutdown signal, then let in-flight requests finish.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use poem::Server;
use poem::listener::TcpAcceptor;

use crate::cache::Cache;
use crate::config::{Environment, Settings};
use crate::db::{self, Metrics};
use crate::events::ProgressEvents;
use crate::graphql::build_schema;
use crate::listener::HeaderTimeoutAcceptor;
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
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct Application {
    acceptor: HeaderTimeoutAcceptor,
    local_addr: SocketAddr,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let state = build_state(settings).await?;
        Migrator::up(&state.db, None).await?;
        let addr = state.settings.listen;
        let listener = std::net::TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
        let acceptor = TcpAcceptor::from_std(listener).map_err(|source| StartupError::Bind { addr, source })?;
        let acceptor = HeaderTimeoutAcceptor::new(acceptor, state.settings.limits.header_read_timeout);
        Ok(Self { acceptor, local_addr, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then waits for in-flight requests (up to 30 s).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let schema =
            build_schema(Some(self.state.clone()), &self.state.settings.limits, &self.state.settings.environment);
        let app = crate::http::routes(schema, self.state.clone());
        let purger = tokio::spawn(crate::service::event::purge_identity_documents_hourly(
            self.state.db.clone(),
            self.state.settings.identity_document_retention,
        ));
        let served = Server::new_with_acceptor(self.acceptor)
            .idle_timeout(self.state.settings.limits.idle_timeout)
            .run_with_graceful_shutdown(app, shutdown, Some(GRACE))
            .await;
        purger.abort();
        served?;
        self.state.db.clone().close().await.ok();
        Ok(())
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Database and cache from settings, without migrating or listening.
pub async fn build_state(settings: Settings) -> Result<AppState, StartupError> {
    let metrics = Arc::new(Metrics::default());
    let db = db::connect(&settings, metrics.clone()).await?;
    let cache = match &settings.redis_url {
        _ if !settings.cache_enabled => Cache::disabled(),
        Some(url) => Cache::redis(url, &settings.cache_prefix, settings.cache_ttl, settings.cache_timeout)?,
        None => Cache::in_memory(settings.cache_ttl),
    };
    let secret = resolve_jwt_secret(&settings)?;
    let tokens =
        TokenKeys::new(&secret, settings.access_token_ttl, settings.refresh_token_ttl).map_err(StartupError::Secret)?;
    let sign_in_limiter =
        SignInLimiter::new(settings.sign_in_per_account_per_minute, settings.sign_in_per_address_per_minute);
    let operation_limiter = Arc::new(OperationLimiter::new(&settings.limits));
    let responses = ResponseCache::new(settings.response_cache_entries, settings.cache_ttl);
    let events = match &settings.redis_url {
        Some(url) => ProgressEvents::redis(url, &settings.cache_prefix, settings.cache_timeout).await?,
        None => ProgressEvents::in_process(),
    };
    let cors = Arc::new(crate::cors::CorsPolicy::new(settings.cors_origins.clone(), settings.cors_max_age));
    Ok(AppState {
        cors,
        documents: Arc::default(),
        db,
        cache,
        settings: Arc::new(settings),
        metrics,
        tokens: Arc::new(tokens),
        sign_in_limiter,
        operation_limiter,
        responses,
        events,
    })
}

/// `INCUBASE_JWT_SECRET`, or a generated secret kept in a file beside the SQLite database
/// (`./data/jwt-secret` for PostgreSQL in development). Production with PostgreSQL must set it:
/// several instances need the same secret.
fn resolve_jwt_secret(settings: &Settings) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    let dir = if settings.is_postgres() {
        if settings.environment == Environment::Production {
            return Err(StartupError::Secret("INCUBASE_JWT_SECRET is required with PostgreSQL in production".into()));
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
    let file = dir.join("jwt-secret");
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
    tracing::info!(file = %file.display(), "generated a token signing secret");
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

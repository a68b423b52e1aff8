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
use crate::config::Settings;
use crate::db::{self, Metrics};
use crate::graphql::build_schema;
use crate::state::AppState;

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("invalid REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct Application {
    acceptor: TcpAcceptor,
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
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(Duration::from_secs(60))
            .run_with_graceful_shutdown(app, shutdown, Some(GRACE))
            .await?;
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
        Some(url) => Cache::redis(url, &settings.cache_prefix, settings.cache_ttl, settings.cache_timeout)?,
        None => Cache::in_memory(settings.cache_ttl),
    };
    Ok(AppState::new(db, cache, Arc::new(settings), metrics))
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

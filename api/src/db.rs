//! Database connection: one pool, either SQLite (embedded default) or PostgreSQL, chosen by
//! URL at run time; every statement is counted for `/metrics` and the bench.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::Settings;
use crate::metrics::Metrics;

/// A pooled PostgreSQL connection used within this long is handed out without a ping first.
/// sqlx pings every connection when it comes back to the pool (that cannot be turned off) and,
/// by default, again before handing it out: a round trip per checkout, a sixth of the server's
/// CPU on donate + confirm. A connection that was fine a moment ago is trusted (the window
/// HikariCP uses for the same check); one idle for longer, which a restart, proxy or firewall
/// may have dropped, is still pinged. An embedded SQLite file is never pinged.
const TRUSTED_AFTER_USE: Duration = Duration::from_millis(500);

fn check_on_acquire(options: &mut ConnectOptions, settings: &Settings) {
    if settings.is_postgres() {
        options.test_before_acquire_if_idle_for(TRUSTED_AFTER_USE);
        // A connection's socket buffers grow to the largest message it has sent or read (a
        // statement import's batch, its report) and sqlx keeps them so: back in the pool, one
        // grown past 8 KiB is given its small buffers again. (A no-op for the others: two
        // capacity checks.)
        options.map_sqlx_postgres_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    sea_orm::sqlx::Connection::shrink_buffers(conn);
                    Ok(true)
                })
            })
        });
    } else {
        options.test_before_acquire(false);
    }
}

/// A small connection of its own for the event log's follower and other background work, so
/// their statements are not counted as the requests'.
pub async fn connect_background(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.database_url.clone());
    options
        .acquire_timeout(settings.database_acquire_timeout)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .max_connections(2)
        .min_connections(0);
    check_on_acquire(&mut options, settings);
    if !settings.is_postgres() {
        options.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                // Its work reads a few recent rows: a page cache of 512 KiB instead of
                // SQLite's 2 MiB, which the server's own connection keeps.
                .pragma("cache_size", "-512")
        });
    }
    Database::connect(options).await
}

pub async fn connect(settings: &Settings, metrics: Arc<Metrics>) -> Result<DatabaseConnection, DbErr> {
    Ok(connect_pool(settings, metrics).await?.0)
}

/// The server's pool twice: the handle requests use, whose statements are counted, and an
/// uncounted handle on the same connections for background writers (on SQLite there is one
/// writer connection, which they must share with the requests).
pub async fn connect_pool(
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> Result<(DatabaseConnection, DatabaseConnection), DbErr> {
    let url = &settings.database_url;
    let mut options = ConnectOptions::new(url.clone());
    options
        .acquire_timeout(settings.database_acquire_timeout)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    check_on_acquire(&mut options, settings);
    if settings.is_postgres() {
        options.max_connections(settings.database_max_connections).min_connections(1);
    } else {
        ensure_sqlite_dir(url)?;
        // One connection: SQLite has one writer, and serializing here keeps transactions
        // that check-then-write correct without row locks.
        options.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                // A page cache of 1 MiB instead of SQLite's 2: pages it no longer holds are
                // read again from the operating system's cache.
                .pragma("cache_size", "-1024")
        });
    }
    let mut db = Database::connect(options).await?;
    let unmetered = db.clone();
    db.set_metric_callback(move |info| {
        metrics.statement(info.failed);
    });
    Ok((db, unmetered))
}

/// `sqlite://data/incubase.db?mode=rwc` needs `data/` to exist.
fn ensure_sqlite_dir(url: &str) -> Result<(), DbErr> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(())
}

//! Logging: human-readable by default, JSON with `INCUBASE_LOG_FORMAT=json`; filtered by
//! `RUST_LOG` (default `info`).
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: &LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // try_init: tests start many servers in one process; the first subscriber wins.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

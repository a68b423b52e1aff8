//! The operations endpoints: liveness, readiness, metrics, GraphiQL and the test-only panic.
use std::sync::atomic::Ordering;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::error_response;
use crate::cache::CacheStatus;
use crate::state::AppState;

#[handler]
pub(super) fn debug_panic() -> &'static str {
    // Only mounted by tests (`Settings::debug_panic_route`): shows a panic is contained.
    #[allow(clippy::panic)]
    {
        panic!("deliberate panic from /debug/panic")
    }
}

/// GraphiQL, when this deployment serves it (`INCUBASE_GRAPHIQL`; on in development).
#[handler]
pub(super) fn graphiql(state: poem::web::Data<&AppState>) -> Response {
    if !state.settings.graphiql_enabled() {
        return error_response(
            StatusCode::NOT_FOUND,
            "GraphiQL is off on this server (INCUBASE_GRAPHIQL=true turns it on); the API is at /graphql",
            "NOT_FOUND",
        );
    }
    crate::graphiql::page("/graphql", "/graphql/ws")
}

#[handler]
pub(super) fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
pub(super) async fn ready(state: poem::web::Data<&AppState>) -> Response {
    let database = matches!(tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await, Ok(Ok(())));
    let (cache, detail) = match state.cache.status().await {
        CacheStatus::Disabled => ("disabled", None),
        CacheStatus::Memory => ("memory", None),
        CacheStatus::Redis => ("redis", None),
        CacheStatus::Degraded(reason) => ("degraded", Some(reason)),
    };
    let body = json!({
        "status": if database { "ready" } else { "not_ready" },
        "database": if database { "ok" } else { "unreachable" },
        "cache": cache,
        "cacheDetail": detail,
    });
    let status = if database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Json(body).with_status(status).into_response()
}

#[handler]
pub(super) fn metrics_text(state: poem::web::Data<&AppState>) -> String {
    let m = &state.metrics;
    let redis = state.cache.redis_health().map(|h| {
        format!(
            "# TYPE incubase_redis_timeouts_total counter\nincubase_redis_timeouts_total {}\n\
             # TYPE incubase_redis_errors_total counter\nincubase_redis_errors_total {}\n\
             # TYPE incubase_redis_slow_replies_total counter\nincubase_redis_slow_replies_total {}\n\
             # TYPE incubase_redis_skipped_total counter\nincubase_redis_skipped_total {}\n\
             # TYPE incubase_redis_circuit_opened_total counter\nincubase_redis_circuit_opened_total {}\n\
             # TYPE incubase_redis_circuit_open gauge\nincubase_redis_circuit_open {}\n\
             # TYPE incubase_cache_pending_invalidations gauge\nincubase_cache_pending_invalidations {}\n",
            h.timeouts,
            h.errors,
            h.slow,
            h.skipped,
            h.circuit_opened,
            u8::from(h.circuit_open),
            h.pending_invalidations,
        )
    });
    let text = format!(
        "# TYPE incubase_sql_statements_total counter\nincubase_sql_statements_total {}\n\
         # TYPE incubase_sql_failures_total counter\nincubase_sql_failures_total {}\n\
         # TYPE incubase_graphql_operations_total counter\nincubase_graphql_operations_total {}\n\
         # TYPE incubase_graphql_request_errors_total counter\nincubase_graphql_request_errors_total {}\n\
         # TYPE incubase_http_graphql_requests_total counter\nincubase_http_graphql_requests_total {}\n\
         # TYPE incubase_response_cache_hits_total counter\nincubase_response_cache_hits_total {}\n\
         # TYPE incubase_response_cache_misses_total counter\nincubase_response_cache_misses_total {}\n\
         # TYPE incubase_transient_retries_total counter\nincubase_transient_retries_total {}\n",
        m.sql_statements.load(Ordering::Relaxed),
        m.sql_failures.load(Ordering::Relaxed),
        m.graphql_operations.load(Ordering::Relaxed),
        m.graphql_request_errors.load(Ordering::Relaxed),
        m.http_requests.load(Ordering::Relaxed),
        m.response_cache_hits.load(Ordering::Relaxed),
        m.response_cache_misses.load(Ordering::Relaxed),
        crate::service::transient_retries(),
    );
    text + redis.as_deref().unwrap_or_default()
}

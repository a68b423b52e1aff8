//! The operations endpoints: liveness, readiness, metrics, GraphiQL and the test-only panic.
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
    state.metrics.render(state.cache.redis_health().as_ref())
}

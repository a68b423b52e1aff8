//! HTTP routes: GraphQL over HTTP (the spec's rules, not the stock endpoint's), GraphiQL,
//! liveness, readiness and metrics.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Variables};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::middleware::CatchPanic;
use poem::web::Json;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AccountViewer, PartnerViewer, Viewer};
use crate::cache::CacheStatus;
use crate::cors::{Cors, Sender};
use crate::error::{AppError, AppResult};
use crate::graphql::cost::{self, MAX_NESTING};
use crate::graphql::identity::ClientAddress;
use crate::graphql::loaders::Loaders;
use crate::graphql::{AppSchema, RequestOutcome};
use crate::ratelimit::OperationLimiter;
use crate::response_cache::{self, Flight, ResponseTags};
use crate::service::{identity, impact};
use crate::state::AppState;
use crate::trusted;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub fn routes(schema: AppSchema, state: AppState) -> impl Endpoint {
    let subscriptions = SubscriptionEndpoint { schema: schema.clone(), state: state.clone() };
    let graphql = GraphQLEndpoint { schema, state: state.clone() };
    let mut route = Route::new();
    if state.settings.debug_panic_route {
        route = route.at("/debug/panic", get(debug_panic));
    }
    let report = Cors { inner: get(impact_csv.data(state.clone())), state: state.clone() };
    let export = Cors { inner: get(account_export.data(state.clone())), state: state.clone() };
    route
        .at("/", get(graphiql.data(state.clone())))
        .at(crate::graphiql::ASSET_ROUTE, get(crate::graphiql::asset))
        .at("/graphql", Cors { inner: graphql, state: state.clone() })
        .at("/graphql/ws", subscriptions)
        .at("/health", get(health))
        .at("/ready", get(ready.data(state.clone())))
        .at("/metrics", get(metrics_text.data(state.clone())))
        .at("/reports/impact.csv", report)
        .at("/account/export", export)
        .with(crate::proxy::ResolveClient { proxies: state.settings.trusted_proxies.clone() })
        .with(CatchPanic::new().with_handler(|_| {
            tracing::error!("a request handler panicked");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "INTERNAL")
        }))
}

#[handler]
fn debug_panic() -> &'static str {
    // Only mounted by tests (`Settings::debug_panic_route`): shows a panic is contained.
    #[allow(clippy::panic)]
    {
        panic!("deliberate panic from /debug/panic")
    }
}

/// GraphiQL, when this deployment serves it (`INCUBASE_GRAPHIQL`; on in development).
#[handler]
fn graphiql(state: poem::web::Data<&AppState>) -> Response {
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
fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
async fn ready(state: poem::web::Data<&AppState>) -> Response {
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
fn metrics_text(state: poem::web::Data<&AppState>) -> String {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpactReportParams {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

/// Who sent a request to a plain HTTP route (reports, downloads), or the answer refusing it:
/// the same credentials and errors as `/graphql`.
async fn route_viewer(req: &Request, state: &AppState) -> Result<Viewer, Response> {
    let sender = Sender::of(req);
    let credentials = Presented {
        authorization: req.header(header::AUTHORIZATION),
        api_key: req.header("x-api-key"),
        sender: &sender,
    };
    authenticate(state, credentials).await.map_err(|error| match error {
        AppError::ServiceUnavailable(m) => error_response(StatusCode::SERVICE_UNAVAILABLE, &m, "SERVICE_UNAVAILABLE"),
        error @ AppError::Refused { .. } => app_error_response(StatusCode::FORBIDDEN, &error),
        _ => error_response(
            StatusCode::UNAUTHORIZED,
            "the access token or API key is invalid, expired or revoked",
            "UNAUTHENTICATED",
        ),
    })
}

/// The impact report as CSV, the same figures as `baseStats` (staff, Bearer token):
/// `GET /reports/impact.csv?from=2026-01-01&to=2026-12-31&groupBy=QUARTER`.
#[handler]
async fn impact_csv(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let viewer = match route_viewer(req, &state).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    if let Err(error) = viewer.require_impact_report() {
        let status =
            if matches!(error, AppError::Unauthenticated) { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
        return error_response(status, &error.to_string(), error.code());
    }
    let params: ImpactReportParams = match req.params() {
        Ok(p) => p,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &format!("bad query string: {e}"), "BAD_USER_INPUT"),
    };
    let date = |name: &str, raw: Option<String>| -> Result<chrono::NaiveDate, String> {
        let raw = raw.ok_or_else(|| format!("`{name}` (YYYY-MM-DD) is required"))?;
        raw.trim().parse().map_err(|_| format!("`{name}` is not a YYYY-MM-DD date"))
    };
    let (from, to) = match (date("from", params.from), date("to", params.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            return error_response(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT");
        }
    };
    let group_by = match params.group_by.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MONTH") => impact::GroupBy::Month,
        Some("QUARTER") => impact::GroupBy::Quarter,
        Some("YEAR") => impact::GroupBy::Year,
        Some(_) => {
            return error_response(StatusCode::BAD_REQUEST, "`groupBy` is MONTH, QUARTER or YEAR", "BAD_USER_INPUT");
        }
    };
    let dashboard = impact::Dashboard { db: &state.db, cache: &state.cache };
    match dashboard.base_stats(from, to, group_by).await {
        Ok(stats) => Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"impact-{from}-{to}.csv\""))
            .body(impact::to_csv(&stats)),
        Err(AppError::BadUserInput { message, .. }) => {
            error_response(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT")
        }
        Err(error) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", error.code()),
    }
}

/// The signed-in person's data as a JSON download (`Authorization: Bearer <access token>`):
/// profile, memberships, registrations, bookings and donations. Never cached.
#[handler]
async fn account_export(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let viewer = match route_viewer(req, &state).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match crate::service::account::export(&state.db, &viewer).await {
        Ok(data) => {
            let id = data["profile"]["id"].as_i64().unwrap_or_default();
            Response::builder()
                .content_type("application/json; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"incubase-account-{id}.json\""))
                .body(data.to_string())
        }
        Err(error @ (AppError::Unauthenticated | AppError::Forbidden(_))) => {
            let status = if matches!(error, AppError::Unauthenticated) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            error_response(status, &error.to_string(), error.code())
        }
        Err(error) => {
            tracing::error!(error = %error, "the data export failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", error.code())
        }
    }
}

fn error_body(message: &str, code: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

pub(crate) fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    Response::builder().status(status).content_type("application/json").body(error_body(message, code).to_string())
}

/// An error of the service layer as a whole answer, its `reason` included.
fn app_error_response(status: StatusCode, error: &AppError) -> Response {
    let mut extensions = json!({ "code": error.code() });
    if let AppError::Refused { reason, .. } = error {
        extensions["reason"] = json!(reason);
    }
    let body = json!({ "errors": [{ "message": error.to_string(), "extensions": extensions }] });
    Response::builder().status(status).content_type("application/json").body(body.to_string())
}

struct GraphQLEndpoint {
    schema: AppSchema,
    state: AppState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    document_id: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// How the client wants the answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: request errors get 4xx statuses.
    GraphQLResponse,
    /// Legacy `application/json`: GraphQL errors answer 200.
    Json,
}

impl MediaType {
    fn of(req: &Request) -> Self {
        let accept = req.header(header::ACCEPT).unwrap_or_default();
        if accept.contains(GRAPHQL_RESPONSE_JSON) { Self::GraphQLResponse } else { Self::Json }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json",
        }
    }
}

/// A request the GraphQL layer never sees, refused with a status and a code.
struct Refusal {
    status: StatusCode,
    message: String,
    code: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, code: &'static str) -> Self {
        Self { status, message: message.into(), code }
    }
}

impl Endpoint for GraphQLEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        self.state.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let media = MediaType::of(&req);
        let is_get = req.method() == Method::GET;
        if is_get
            && self.state.settings.graphiql_enabled()
            && !req
                .uri()
                .query()
                .is_some_and(|q| q.contains("query=") || q.contains("documentId=") || q.contains("extensions="))
            && req.header(header::ACCEPT).is_some_and(|a| a.contains("text/html"))
        {
            return Ok(crate::graphiql::page("/graphql", "/graphql/ws"));
        }
        let authorization = req.header(header::AUTHORIZATION).map(str::to_owned);
        let api_key = req.header("x-api-key").map(str::to_owned);
        let if_none_match = req.header(header::IF_NONE_MATCH).map(str::to_owned);
        let address = crate::proxy::Client::of(&req).address_text();
        let sender = Sender::of(&req);
        let batch = match self.read_request(req).await {
            Ok(batch) => batch,
            Err(refusal) => {
                self.state.metrics.graphql_request_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(status = refusal.status.as_u16(), code = refusal.code, "graphql request refused");
                let mut response = error_response(refusal.status, &refusal.message, refusal.code);
                if refusal.status == StatusCode::METHOD_NOT_ALLOWED {
                    let allow = if is_get { "POST" } else { "GET, POST" };
                    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
                }
                if refusal.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    response.headers_mut().insert(header::ACCEPT, HeaderValue::from_static("application/json"));
                }
                return Ok(response);
            }
        };
        let credentials =
            Presented { authorization: authorization.as_deref(), api_key: api_key.as_deref(), sender: &sender };
        let viewer = match authenticate(&self.state, credentials).await {
            Ok(viewer) => Viewer { address: Some(address.clone()), ..viewer },
            Err(error) => {
                let status = match error {
                    AppError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
                    // A key used where it may not be (a secret key in a page, a publishable
                    // key on a site it is not bound to).
                    AppError::Refused { .. } => {
                        tracing::info!(reason = ?error.to_string(), "partner key refused for this origin");
                        return Ok(app_error_response(StatusCode::FORBIDDEN, &error));
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let message = if status == StatusCode::UNAUTHORIZED {
                    "the access token or API key is invalid, expired or revoked".to_owned()
                } else {
                    error.to_string()
                };
                tracing::info!(status = status.as_u16(), "credentials refused");
                let mut response = error_response(status, &message, error.code());
                if status == StatusCode::UNAUTHORIZED {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
                }
                return Ok(response);
            }
        };
        let operations = match &batch {
            BatchRequest::Single(_) => 1,
            BatchRequest::Batch(items) => items.len(),
        };
        let client = OperationLimiter::client_key(&viewer, &address);
        if let Err(wait) = self.state.operation_limiter.check_operations(&client, operations) {
            return Ok(rate_limited(wait));
        }
        // A publishable key is shared by every visitor of its site: each address counts too.
        if let Some(partner) = viewer.partner.as_ref().filter(|p| p.publishable)
            && let Err(wait) =
                self.state.operation_limiter.check_publishable_address(partner.key_id, &address, operations)
        {
            return Ok(rate_limited(wait));
        }
        let context = RequestContext { viewer, address: ClientAddress(address), if_none_match };
        Ok(self.execute(batch, media, is_get, started, &context).await)
    }
}

fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response =
        error_response(StatusCode::TOO_MANY_REQUESTS, &format!("too many requests, retry in {secs}s"), "RATE_LIMITED");
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and legacy `graphql-ws`).
/// Credentials come from the upgrade request's headers (server-side clients) or from the
/// `connection_init` payload: `{ "authorization": "Bearer …" }` or `{ "apiKey": "ib_…" }` (or
/// `X-Api-Key`; names in any case)
/// (browsers cannot set headers on a WebSocket). Credentials that do not check out refuse the
/// connection.
struct SubscriptionEndpoint {
    schema: AppSchema,
    state: AppState,
}

impl Endpoint for SubscriptionEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        use poem::FromRequest;
        let (req, mut body) = req.split();
        if req.method() != Method::GET {
            return Ok(error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET to open a WebSocket",
                "METHOD_NOT_ALLOWED",
            ));
        }
        // Browsers send their page's origin with the upgrade (WebSockets are not subject to
        // CORS, so the server must look): the same origins as for HTTP may connect.
        let sender = Sender::of(&req);
        if let Some(origin) = sender.cross_origin()
            && !self.state.cors.allows(&self.state.db, origin).await
        {
            tracing::info!(origin, "WebSocket upgrade from a disallowed origin");
            return Ok(error_response(
                StatusCode::FORBIDDEN,
                &format!("the origin {origin} may not open subscriptions on this API"),
                "FORBIDDEN",
            ));
        }
        let websocket = poem::web::websocket::WebSocket::from_request(&req, &mut body).await?;
        let protocol = async_graphql_poem::GraphQLProtocol::from_request(&req, &mut body).await?;
        let (schema, state) = (self.schema.clone(), self.state.clone());
        let header_authorization = req.header(header::AUTHORIZATION).map(str::to_owned);
        let header_key = req.header("x-api-key").map(str::to_owned);
        let address = crate::proxy::Client::of(&req).address.map(|a| a.to_string());
        let executor = trusted::TrustedExecutor { schema, state: state.clone() };
        // The connection outlives this request: its logs keep the request's client.
        let span = tracing::Span::current();
        let upgraded = websocket.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |stream| {
            use tracing::Instrument;
            async_graphql_poem::GraphQLWebSocket::new(stream, executor, protocol)
                .on_connection_init(move |payload| async move {
                    // Field names as clients send them: `authorization`/`apiKey`, or header
                    // names in any case (GraphiQL sends its headers editor's headers).
                    let field = |names: &[&str]| {
                        payload
                            .as_object()
                            .and_then(|fields| {
                                fields.iter().find_map(|(k, v)| {
                                    names.iter().any(|n| k.eq_ignore_ascii_case(n)).then(|| v.as_str()).flatten()
                                })
                            })
                            .map(str::to_owned)
                    };
                    let authorization = field(&["authorization"]).or(header_authorization);
                    let api_key = field(&["apiKey", "x-api-key"]).or(header_key);
                    let credentials = Presented {
                        authorization: authorization.as_deref(),
                        api_key: api_key.as_deref(),
                        sender: &sender,
                    };
                    let mut viewer = authenticate(&state, credentials)
                        .await
                        .map_err(|e| async_graphql::ErrorExtensions::extend(&e))?;
                    viewer.address = address;
                    let mut data = async_graphql::Data::default();
                    data.insert(viewer);
                    // Subscriptions resolve nested objects (a booking's space) through loaders.
                    data.insert(Loaders::new(&state.db));
                    Ok(data)
                })
                .serve()
                .instrument(span)
        });
        Ok(upgraded.into_response())
    }
}

/// Who sent a request, resolved once per HTTP request and shared by a batch.
struct RequestContext {
    viewer: Viewer,
    address: ClientAddress,
    if_none_match: Option<String>,
}

/// What a request presented: its credentials and where it came from.
#[derive(Clone, Copy)]
struct Presented<'a> {
    authorization: Option<&'a str>,
    api_key: Option<&'a str>,
    sender: &'a Sender,
}

/// Reads `Authorization: Bearer <access token | API key>` and `X-Api-Key`. No credentials:
/// anonymous. Credentials that do not check out: an error, never a silent downgrade. A page on
/// another origin may use a publishable key bound to that origin, never a secret key.
async fn authenticate(state: &AppState, presented: Presented<'_>) -> AppResult<Viewer> {
    let Presented { authorization, api_key, sender } = presented;
    let mut viewer = Viewer::anonymous();
    let mut key_secret = api_key.map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
    if let Some(header) = authorization {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthenticated)?;
        if token.starts_with("ib_") {
            key_secret = key_secret.or(Some(token.to_owned()));
        } else {
            let cache = state.settings.sessions_cacheable().then_some(&state.cache);
            let account = identity::account_for_access_token(&state.db, &state.tokens, cache, token).await?;
            viewer.account = Some(AccountViewer {
                id: account.id,
                session_id: Some(account.session_id),
                email: account.email,
                display_name: account.display_name,
                roles: identity::Role::parse_list(&account.roles),
                memberships: account.memberships,
                granted: Default::default(),
            });
        }
    }
    if let Some(secret) = key_secret {
        let key = identity::api_key_for_secret(&state.db, &secret).await?;
        let mut scopes = identity::ApiScope::parse_list(&key.scopes);
        if key.publishable {
            // The database refuses other scopes on publishable keys; this keeps it so in memory.
            scopes.retain(|s| s.is_publishable());
            if let Some(origin) = sender.cross_origin()
                && !identity::origins_of(&key).iter().any(|o| o == origin)
            {
                return Err(AppError::Refused {
                    code: "FORBIDDEN",
                    reason: "ORIGIN_NOT_ALLOWED",
                    message: format!(
                        "this publishable key is not bound to the origin {origin}; an admin adds it to the key's allowedOrigins"
                    ),
                });
            }
        } else if let Some(origin) = sender.cross_origin() {
            return Err(AppError::Refused {
                code: "FORBIDDEN",
                reason: "SECRET_KEY_IN_BROWSER",
                message: format!(
                    "a secret API key was sent from the web page at {origin}: secret keys belong on servers. \
                     Ask for a publishable key bound to {origin}, and have this key revoked, since its secret is now exposed"
                ),
            });
        }
        viewer.partner = Some(PartnerViewer { key_id: key.id, name: key.name, scopes, publishable: key.publishable });
    }
    Ok(viewer)
}

impl GraphQLEndpoint {
    async fn read_request(&self, req: Request) -> Result<BatchRequest, Refusal> {
        let limits = &self.state.settings.limits;
        match *req.method() {
            Method::GET => {
                let params: GetParams = req.params().map_err(|e| {
                    Refusal::new(StatusCode::BAD_REQUEST, format!("bad query string: {e}"), "BAD_REQUEST")
                })?;
                let extensions: Option<serde_json::Value> = match params.extensions.filter(|e| !e.is_empty()) {
                    Some(raw) => Some(serde_json::from_str(&raw).map_err(|e| {
                        Refusal::new(StatusCode::BAD_REQUEST, format!("`extensions` is not JSON: {e}"), "BAD_REQUEST")
                    })?),
                    None => None,
                };
                // With a persisted-query hash in `extensions` or a `documentId`, the document
                // may be left out.
                let query = match (params.query, &extensions) {
                    (Some(query), _) => query,
                    (None, _) if params.document_id.is_some() => String::new(),
                    (None, Some(ext)) if ext.get("persistedQuery").is_some() => String::new(),
                    (None, _) => {
                        return Err(Refusal::new(StatusCode::BAD_REQUEST, "missing `query` parameter", "BAD_REQUEST"));
                    }
                };
                let mut request = async_graphql::Request::new(query);
                if let Some(id) = params.document_id {
                    request.extensions.insert(trusted::DOCUMENT_ID.to_owned(), async_graphql::Value::String(id));
                }
                if let Some(serde_json::Value::Object(map)) = extensions {
                    for (k, v) in map {
                        if let Ok(value) = async_graphql::Value::from_json(v) {
                            request.extensions.insert(k, value);
                        }
                    }
                }
                if let Some(name) = params.operation_name {
                    request = request.operation_name(name);
                }
                if let Some(raw) = params.variables.filter(|v| !v.is_empty()) {
                    let value: serde_json::Value = serde_json::from_str(&raw).map_err(|e| {
                        Refusal::new(StatusCode::BAD_REQUEST, format!("`variables` is not JSON: {e}"), "BAD_REQUEST")
                    })?;
                    if !value.is_object() && !value.is_null() {
                        return Err(Refusal::new(
                            StatusCode::BAD_REQUEST,
                            "`variables` must be an object",
                            "BAD_REQUEST",
                        ));
                    }
                    request = request.variables(Variables::from_json(value));
                }
                Ok(BatchRequest::Single(request))
            }
            Method::POST => {
                let content_type = req.header(header::CONTENT_TYPE).unwrap_or_default().to_ascii_lowercase();
                let essence = content_type.split(';').next().unwrap_or_default().trim();
                if essence != "application/json" {
                    return Err(Refusal::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "POST requests must be application/json",
                        "UNSUPPORTED_MEDIA_TYPE",
                    ));
                }
                let read = tokio::time::timeout(
                    limits.body_read_timeout,
                    req.into_body().into_bytes_limit(limits.max_body_bytes),
                );
                let body = read.await.map_err(|_| {
                    Refusal::new(StatusCode::REQUEST_TIMEOUT, "the request body arrived too slowly", "REQUEST_TIMEOUT")
                })?;
                let body = body.map_err(|e| match e {
                    poem::error::ReadBodyError::PayloadTooLarge => Refusal::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body is larger than {} bytes", limits.max_body_bytes),
                        "PAYLOAD_TOO_LARGE",
                    ),
                    other => Refusal::new(StatusCode::BAD_REQUEST, format!("cannot read body: {other}"), "BAD_REQUEST"),
                })?;
                let not_graphql = |e: serde_json::Error| {
                    Refusal::new(StatusCode::BAD_REQUEST, format!("body is not a GraphQL request: {e}"), "BAD_REQUEST")
                };
                // `documentId` sits beside `query`, where async-graphql's request has no
                // field for it; bodies without the word take the direct path.
                let batch: BatchRequest = if contains(&body, b"documentId") {
                    serde_json::from_slice::<WireBatch>(&body).map_err(not_graphql)?.into()
                } else {
                    serde_json::from_slice(&body).map_err(not_graphql)?
                };
                if let BatchRequest::Batch(items) = &batch {
                    if items.is_empty() {
                        return Err(Refusal::new(StatusCode::BAD_REQUEST, "empty batch", "BAD_REQUEST"));
                    }
                    if items.len() > limits.max_batch {
                        return Err(Refusal::new(
                            StatusCode::BAD_REQUEST,
                            format!("a batch holds at most {} operations", limits.max_batch),
                            "BATCH_TOO_LARGE",
                        ));
                    }
                }
                Ok(batch)
            }
            _ => Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST", "METHOD_NOT_ALLOWED")),
        }
    }

    async fn execute(
        &self,
        batch: BatchRequest,
        media: MediaType,
        is_get: bool,
        started: Instant,
        context: &RequestContext,
    ) -> Response {
        match batch {
            BatchRequest::Single(request) => {
                let out = self.execute_one(request, media, is_get, context).await;
                log_operation(out.name.as_deref(), out.status, out.errors, started);
                let mut response = text_response(out.status, media, &out.body);
                let headers = response.headers_mut();
                if out.status == StatusCode::METHOD_NOT_ALLOWED {
                    headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
                }
                if !is_get || out.status != StatusCode::OK {
                    return response;
                }
                // GET answers are what CDNs and browsers may keep: public ones revalidate by
                // ETag (a 304 costs no execution when cached), the rest are never stored.
                match out.etag.filter(|_| out.public) {
                    Some(etag) => {
                        headers.insert(
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("public, max-age=0, must-revalidate"),
                        );
                        if let Ok(value) = HeaderValue::from_str(&etag) {
                            headers.insert(header::ETAG, value);
                        }
                        if context
                            .if_none_match
                            .as_deref()
                            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
                        {
                            let mut not_modified = Response::builder().status(StatusCode::NOT_MODIFIED).finish();
                            if let Ok(value) = HeaderValue::from_str(&etag) {
                                not_modified.headers_mut().insert(header::ETAG, value);
                            }
                            return not_modified;
                        }
                    }
                    None => {
                        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
                    }
                }
                response
            }
            BatchRequest::Batch(requests) => {
                let mut body = String::from("[");
                for (i, request) in requests.into_iter().enumerate() {
                    let out = self.execute_one(request, media, is_get, context).await;
                    log_operation(out.name.as_deref(), out.status, out.errors, started);
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&out.body);
                }
                body.push(']');
                text_response(StatusCode::OK, media, &body)
            }
        }
    }

    /// Runs one operation: checks, then the response cache, then execution.
    async fn execute_one(
        &self,
        mut request: async_graphql::Request,
        media: MediaType,
        is_get: bool,
        context: &RequestContext,
    ) -> OpOutcome {
        let counters = &self.state.metrics;
        counters.graphql_operations.fetch_add(1, Ordering::Relaxed);
        let name = request.operation_name.clone();
        let request_error = |status: StatusCode, message: &str, code: &str| {
            counters.graphql_request_errors.fetch_add(1, Ordering::Relaxed);
            let status = if media == MediaType::GraphQLResponse || status == StatusCode::METHOD_NOT_ALLOWED {
                status
            } else {
                StatusCode::OK
            };
            OpOutcome::new(status, error_body(message, code).to_string(), name.clone(), 1)
        };
        let responses = &self.state.responses;
        let document = match trusted::classify(&self.state, &context.viewer, &mut request).await {
            Ok(document) => document,
            Err(refused) => return request_error(refused.status, &refused.message, refused.code),
        };
        let limits = &self.state.settings.limits;
        if request.query.len() > limits.max_query_bytes {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("the query text is larger than {} bytes", limits.max_query_bytes),
                "QUERY_TOO_LARGE",
            );
        }
        // Public answers are looked up before any parsing: a hit costs a hash, a map lookup and
        // a comparison of tag generations. Entries exist only for cacheable queries.
        let public_key = (self.state.settings.response_cache_entries > 0)
            .then(|| cache_scope(&context.viewer))
            .flatten()
            .map(|scope| {
                let variables = serde_json::to_string(&request.variables).unwrap_or_default();
                match &document {
                    // Registered documents go straight to their key: a hit reads no text.
                    trusted::Document::Registered(id) => trusted::cache_key(&scope, id, name.as_deref(), &variables),
                    trusted::Document::Text => response_cache::key(&scope, &request.query, name.as_deref(), &variables),
                }
            });
        if let Some(key) = &public_key
            && let Some(hit) = self.near_hit(key).await
        {
            return OpOutcome::cached(&hit, name);
        }
        if let trusted::Document::Registered(id) = &document
            && let Err(refused) = trusted::load(&self.state, id, &mut request).await
        {
            return request_error(refused.status, &refused.message, refused.code);
        }
        if cost::nesting_depth(&request.query) > MAX_NESTING {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("the query nests brackets deeper than {MAX_NESTING}"),
                "QUERY_TOO_DEEP",
            );
        }
        let operation_type = match request.parsed_query() {
            Ok(doc) => {
                if let Err(over) = cost::check(doc, limits) {
                    return request_error(StatusCode::BAD_REQUEST, &over.message, over.code);
                }
                operation_type(doc, name.as_deref())
            }
            Err(e) => return request_error(StatusCode::BAD_REQUEST, &e.message, "GRAPHQL_PARSE_FAILED"),
        };
        if is_get && operation_type.is_some_and(|t| t != OperationType::Query) {
            return request_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "only queries may be sent with GET; send mutations with POST",
                "METHOD_NOT_ALLOWED",
            );
        }
        // A publishable key's mutations are anyone's: they count as anonymous ones per address.
        let anonymous = context.viewer.account.is_none()
            && context.viewer.partner.as_ref().is_none_or(|partner| partner.publishable);
        if anonymous
            && operation_type == Some(OperationType::Mutation)
            && let Err(wait) = self.state.operation_limiter.check_anonymous_mutation(&context.address.0)
        {
            counters.graphql_request_errors.fetch_add(1, Ordering::Relaxed);
            let secs = wait.as_secs().max(1);
            let body = json!({ "errors": [{
                "message": format!("too many anonymous mutations, retry in {secs}s"),
                "extensions": { "code": "RATE_LIMITED", "retryAfter": secs },
            }] });
            return OpOutcome::new(StatusCode::TOO_MANY_REQUESTS, body.to_string(), name, 1);
        }

        // Public queries: served from the response cache when what they read is cacheable.
        // While the cache cannot validate answers (Redis degraded) they run at once, without
        // queueing behind a single flight that would store nothing.
        if let Some(key) = public_key.filter(|key| {
            operation_type == Some(OperationType::Query)
                && !responses.is_uncacheable(key)
                && self.state.cache.validates_responses()
        }) {
            match responses.begin(key) {
                // Another request is computing this answer: wait for it. If it left nothing to
                // serve (uncacheable, an error, a timeout), run without the cache rather than
                // queueing behind one another.
                Flight::Follower(mut done) => {
                    let _ = tokio::time::timeout(limits.execution_timeout, done.changed()).await;
                    if let Some(hit) = self.near_hit(&key).await {
                        return OpOutcome::cached(&hit, name);
                    }
                }
                Flight::Leader(flight) => {
                    // A flight that ended since the lookup above may have left an answer.
                    if let Some(hit) = self.near_hit(&key).await {
                        return OpOutcome::cached(&hit, name);
                    }
                    // The shared tier: an answer another instance (or this one, before a
                    // restart) computed, still valid if its tags have not moved since.
                    let hex = response_cache::key_hex(&key);
                    let session = self.state.cache.generation_session();
                    if let Some(raw) = self.state.cache.shared_response(&hex).await
                        && let Some(entry) = response_cache::CachedResponse::decode(&raw, session)
                        && self.still_valid(&entry).await
                    {
                        counters.response_cache_hits.fetch_add(1, Ordering::Relaxed);
                        let entry = Arc::new(entry);
                        responses.adopt(key, entry.clone());
                        return OpOutcome::cached(&entry, name);
                    }
                    counters.response_cache_misses.fetch_add(1, Ordering::Relaxed);
                    // List-tag generations as they are before anything is read.
                    let Some(lists) = self.state.cache.generations(&response_cache::list_tags()).await else {
                        drop(flight);
                        return self.run(request, media, name, context, None).await;
                    };
                    let collector = ResponseTags::new(self.state.cache.clone(), &lists);
                    let mut out = self.run(request, media, name, context, Some(collector.clone())).await;
                    // Generations from another session (Redis reconnected meanwhile) cannot
                    // be compared with later ones: such an answer is served, not kept.
                    let same_session = self.state.cache.generation_session() == session;
                    if out.status == StatusCode::OK && out.errors == 0 && same_session {
                        match collector.finish() {
                            Some((tags, generations)) => {
                                let entry = responses.put(key, out.body.clone(), tags, generations, session);
                                out.etag = Some(entry.etag.clone());
                                out.public = true;
                                let cache = self.state.cache.clone();
                                let raw = entry.encode();
                                tokio::spawn(async move { cache.put_shared_response(&hex, raw).await });
                            }
                            // Not cached because Redis could not be asked: try again next time.
                            None if collector.cache_unavailable() => {}
                            None => responses.mark_uncacheable(key),
                        }
                    }
                    drop(flight);
                    return out;
                }
            }
        }
        self.run(request, media, name, context, None).await
    }

    /// A valid answer from the near cache, counted as a hit.
    async fn near_hit(&self, key: &response_cache::Key) -> Option<Arc<response_cache::CachedResponse>> {
        let hit = self.state.responses.peek(key)?;
        if !self.still_valid(&hit).await {
            return None;
        }
        self.state.metrics.response_cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Whether a cached answer may still be served: same generation session, and every tag
    /// still at the generation the answer was computed under.
    async fn still_valid(&self, entry: &response_cache::CachedResponse) -> bool {
        entry.session == self.state.cache.generation_session()
            && self.state.cache.generations(&entry.tags).await.is_some_and(|current| current == entry.generations)
    }

    /// Executes an operation that passed every check; `tags` collects what it read when the
    /// answer may be cached.
    async fn run(
        &self,
        request: async_graphql::Request,
        media: MediaType,
        name: Option<String>,
        context: &RequestContext,
        tags: Option<ResponseTags>,
    ) -> OpOutcome {
        let counters = &self.state.metrics;
        let limits = &self.state.settings.limits;
        let outcome = RequestOutcome::default();
        let request = request
            .data(Loaders::new(&self.state.db))
            .data(outcome.clone())
            .data(context.viewer.clone())
            .data(context.address.clone());
        let request = match tags {
            Some(tags) => request.data(tags),
            None => request,
        };
        let response = match tokio::time::timeout(limits.execution_timeout, self.schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => {
                // Dropping the execution cancels it and returns its database connection.
                tracing::warn!(operation = name.as_deref().unwrap_or("anonymous"), "operation timed out");
                let message = format!(
                    "the operation took longer than {} ms and was cancelled",
                    limits.execution_timeout.as_millis()
                );
                let body =
                    json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": "TIMEOUT" } }] });
                return OpOutcome::new(StatusCode::SERVICE_UNAVAILABLE, body.to_string(), name, 1);
            }
        };
        let errors = response.errors.len();
        if !outcome.executed() && errors > 0 {
            // A request error: nothing ran, so there is no `data`.
            counters.graphql_request_errors.fetch_add(1, Ordering::Relaxed);
            let status = if media == MediaType::GraphQLResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            let coded: Vec<async_graphql::ServerError> = response
                .errors
                .into_iter()
                .map(|mut e| {
                    let mut extensions = e.extensions.take().unwrap_or_default();
                    if extensions.get("code").is_none() {
                        extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
                    }
                    e.extensions = Some(extensions);
                    e
                })
                .collect();
            return OpOutcome::new(status, json!({ "errors": coded }).to_string(), name, errors);
        }
        let body =
            serde_json::to_string(&response).unwrap_or_else(|_| error_body("internal error", "INTERNAL").to_string());
        OpOutcome::new(StatusCode::OK, body, name, errors)
    }
}

/// What one operation came to.
struct OpOutcome {
    status: StatusCode,
    body: Arc<str>,
    name: Option<String>,
    errors: usize,
    /// Set for cacheable public answers.
    etag: Option<String>,
    public: bool,
}

impl OpOutcome {
    fn cached(hit: &response_cache::CachedResponse, name: Option<String>) -> Self {
        Self {
            status: StatusCode::OK,
            body: hit.body.clone(),
            name,
            errors: 0,
            etag: Some(hit.etag.clone()),
            public: true,
        }
    }

    fn new(status: StatusCode, body: String, name: Option<String>, errors: usize) -> Self {
        Self { status, body: Arc::from(body), name, errors, etag: None, public: false }
    }
}

/// The partition of the response cache a viewer reads and fills: anonymous readers share
/// one; a partner key shares with the keys of the same scopes (what a key may see depends on
/// its scopes only, e.g. RECONCILE sees a campaign's donations); accounts are never cached.
fn cache_scope(viewer: &Viewer) -> Option<String> {
    if viewer.account.is_some() {
        return None;
    }
    Some(match &viewer.partner {
        None => "public".to_owned(),
        Some(partner) => {
            let mut scopes: Vec<String> = partner.scopes.iter().map(|s| format!("{s:?}")).collect();
            scopes.sort();
            scopes.dedup();
            format!("key-scopes:{}", scopes.join(","))
        }
    })
}

/// The type of the operation that `name` selects, if the document has it.
fn operation_type(doc: &async_graphql::parser::types::ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    use async_graphql::parser::types::DocumentOperations;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
        _ => None,
    }
}

/// A POSTed operation as the wire has it: async-graphql's request plus `documentId`.
#[derive(Deserialize)]
struct WireRequest {
    #[serde(flatten)]
    request: async_graphql::Request,
    #[serde(rename = "documentId")]
    document_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireBatch {
    Single(Box<WireRequest>),
    Batch(Vec<WireRequest>),
}

impl From<WireRequest> for async_graphql::Request {
    fn from(wire: WireRequest) -> Self {
        let mut request = wire.request;
        if let Some(id) = wire.document_id {
            request.extensions.insert(trusted::DOCUMENT_ID.to_owned(), async_graphql::Value::String(id));
        }
        request
    }
}

impl From<WireBatch> for BatchRequest {
    fn from(wire: WireBatch) -> Self {
        match wire {
            WireBatch::Single(one) => BatchRequest::Single((*one).into()),
            WireBatch::Batch(many) => BatchRequest::Batch(many.into_iter().map(Into::into).collect()),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text_response(status: StatusCode, media: MediaType, body: &str) -> Response {
    Response::builder().status(status).content_type(media.content_type()).body(body.to_owned())
}

fn log_operation(name: Option<&str>, status: StatusCode, errors: usize, started: Instant) {
    tracing::info!(
        operation = name.unwrap_or("anonymous"),
        status = status.as_u16(),
        errors,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "graphql"
    );
}

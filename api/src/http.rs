//! HTTP routes: GraphQL over HTTP (the spec's rules, not the stock endpoint's), GraphiQL,
//! liveness, readiness and metrics.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
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
use crate::error::{AppError, AppResult};
use crate::graphql::identity::ClientAddress;
use crate::graphql::loaders::Loaders;
use crate::graphql::{AppSchema, RequestOutcome};
use crate::service::{identity, impact};
use crate::state::AppState;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// Brackets nested deeper than this are refused before parsing: deep nesting is the cheap
/// way to make a recursive parser use a lot of stack.
const MAX_NESTING: usize = 64;

pub fn routes(schema: AppSchema, state: AppState) -> impl Endpoint {
    let graphql = GraphQLEndpoint { schema, state: state.clone() };
    Route::new()
        .at("/", get(graphiql))
        .at("/graphql", graphql)
        .at("/health", get(health))
        .at("/ready", get(ready.data(state.clone())))
        .at("/metrics", get(metrics_text.data(state.clone())))
        .at("/reports/impact.csv", get(impact_csv.data(state)))
        .with(CatchPanic::new().with_handler(|_| {
            tracing::error!("a request handler panicked");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "INTERNAL")
        }))
}

#[handler]
fn graphiql() -> poem::web::Html<String> {
    poem::web::Html(GraphiQLSource::build().endpoint("/graphql").title("incubase GraphiQL").finish())
}

#[handler]
fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
async fn ready(state: poem::web::Data<&AppState>) -> Response {
    let database = matches!(tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await, Ok(Ok(())));
    let (cache, detail) = match state.cache.status().await {
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
    format!(
        "# TYPE incubase_sql_statements_total counter\nincubase_sql_statements_total {}\n\
         # TYPE incubase_sql_failures_total counter\nincubase_sql_failures_total {}\n\
         # TYPE incubase_graphql_operations_total counter\nincubase_graphql_operations_total {}\n\
         # TYPE incubase_graphql_request_errors_total counter\nincubase_graphql_request_errors_total {}\n\
         # TYPE incubase_http_graphql_requests_total counter\nincubase_http_graphql_requests_total {}\n",
        m.sql_statements.load(Ordering::Relaxed),
        m.sql_failures.load(Ordering::Relaxed),
        m.graphql_operations.load(Ordering::Relaxed),
        m.graphql_request_errors.load(Ordering::Relaxed),
        m.http_requests.load(Ordering::Relaxed),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpactReportParams {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

/// The impact report as CSV, the same figures as `baseStats` (staff, Bearer token):
/// `GET /reports/impact.csv?from=2026-01-01&to=2026-12-31&groupBy=QUARTER`.
#[handler]
async fn impact_csv(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let authorization = req.header(header::AUTHORIZATION).map(str::to_owned);
    let api_key = req.header("x-api-key").map(str::to_owned);
    let viewer = match authenticate(&state, authorization.as_deref(), api_key.as_deref()).await {
        Ok(viewer) => viewer,
        Err(AppError::ServiceUnavailable(m)) => {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &m, "SERVICE_UNAVAILABLE");
        }
        Err(_) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "the access token or API key is invalid, expired or revoked",
                "UNAUTHENTICATED",
            );
        }
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

fn error_body(message: &str, code: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    Response::builder().status(status).content_type("application/json").body(error_body(message, code).to_string())
}

struct GraphQLEndpoint {
    schema: AppSchema,
    state: AppState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
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
            && !req.uri().query().is_some_and(|q| q.contains("query="))
            && req.header(header::ACCEPT).is_some_and(|a| a.contains("text/html"))
        {
            return Ok(graphiql.call(req).await?.into_response());
        }
        let authorization = req.header(header::AUTHORIZATION).map(str::to_owned);
        let api_key = req.header("x-api-key").map(str::to_owned);
        let address = req.remote_addr().as_socket_addr().map(|a| a.ip().to_string()).unwrap_or_default();
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
        let viewer = match authenticate(&self.state, authorization.as_deref(), api_key.as_deref()).await {
            Ok(viewer) => viewer,
            Err(error) => {
                let status = match error {
                    AppError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
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
        let context = RequestContext { viewer, address: ClientAddress(address) };
        Ok(self.execute(batch, media, is_get, started, &context).await)
    }
}

/// Who sent a request, resolved once per HTTP request and shared by a batch.
struct RequestContext {
    viewer: Viewer,
    address: ClientAddress,
}

/// Reads `Authorization: Bearer <access token | API key>` and `X-Api-Key`. No credentials:
/// anonymous. Credentials that do not check out: an error, never a silent downgrade.
async fn authenticate(state: &AppState, authorization: Option<&str>, api_key: Option<&str>) -> AppResult<Viewer> {
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
            let (account, memberships) = identity::account_for_access_token(&state.db, &state.tokens, token).await?;
            viewer.account = Some(AccountViewer {
                id: account.id,
                email: account.email,
                display_name: account.display_name,
                roles: identity::Role::parse_list(&account.roles),
                memberships,
            });
        }
    }
    if let Some(secret) = key_secret {
        let key = identity::api_key_for_secret(&state.db, &secret).await?;
        viewer.partner =
            Some(PartnerViewer { key_id: key.id, name: key.name, scopes: identity::ApiScope::parse_list(&key.scopes) });
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
                let query = params
                    .query
                    .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "missing `query` parameter", "BAD_REQUEST"))?;
                let mut request = async_graphql::Request::new(query);
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
                let body = req.into_body().into_bytes_limit(limits.max_body_bytes).await.map_err(|e| match e {
                    poem::error::ReadBodyError::PayloadTooLarge => Refusal::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body is larger than {} bytes", limits.max_body_bytes),
                        "PAYLOAD_TOO_LARGE",
                    ),
                    other => Refusal::new(StatusCode::BAD_REQUEST, format!("cannot read body: {other}"), "BAD_REQUEST"),
                })?;
                let batch: BatchRequest = serde_json::from_slice(&body).map_err(|e| {
                    Refusal::new(StatusCode::BAD_REQUEST, format!("body is not a GraphQL request: {e}"), "BAD_REQUEST")
                })?;
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
                let (status, body, name, errors) = self.execute_one(request, media, is_get, context).await;
                log_operation(name.as_deref(), status, errors, started);
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    let mut response = json_response(status, media, body);
                    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                    return response;
                }
                json_response(status, media, body)
            }
            BatchRequest::Batch(requests) => {
                let mut bodies = Vec::with_capacity(requests.len());
                for request in requests {
                    let (status, body, name, errors) = self.execute_one(request, media, is_get, context).await;
                    log_operation(name.as_deref(), status, errors, started);
                    bodies.push(body);
                }
                json_response(StatusCode::OK, media, serde_json::Value::Array(bodies))
            }
        }
    }

    /// Runs one operation; returns the status it deserves on its own, its body, its name
    /// and how many errors it had.
    async fn execute_one(
        &self,
        mut request: async_graphql::Request,
        media: MediaType,
        is_get: bool,
        context: &RequestContext,
    ) -> (StatusCode, serde_json::Value, Option<String>, usize) {
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
            (status, error_body(message, code), name.clone(), 1)
        };
        if nesting_depth(&request.query) > MAX_NESTING {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("the query nests brackets deeper than {MAX_NESTING}"),
                "QUERY_TOO_DEEP",
            );
        }
        let operation_type = match request.parsed_query() {
            Ok(doc) => operation_type(doc, name.as_deref()),
            Err(e) => return request_error(StatusCode::BAD_REQUEST, &e.message, "GRAPHQL_PARSE_FAILED"),
        };
        if is_get && operation_type.is_some_and(|t| t != OperationType::Query) {
            return request_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "only queries may be sent with GET; send mutations with POST",
                "METHOD_NOT_ALLOWED",
            );
        }
        let outcome = RequestOutcome::default();
        let request = request
            .data(Loaders::new(&self.state.db))
            .data(outcome.clone())
            .data(context.viewer.clone())
            .data(context.address.clone());
        let response = self.schema.execute(request).await;
        let errors = response.errors.len();
        if !outcome.executed() && errors > 0 {
            // A request error: nothing ran, so there is no `data`.
            counters.graphql_request_errors.fetch_add(1, Ordering::Relaxed);
            let status = if media == MediaType::GraphQLResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            let body = json!({ "errors": response.errors });
            return (status, body, name, errors);
        }
        let body = serde_json::to_value(&response).unwrap_or_else(|_| error_body("internal error", "INTERNAL"));
        (StatusCode::OK, body, name, errors)
    }
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

/// Deepest nesting of `{ [ (` outside strings and comments.
fn nesting_depth(query: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            '{' | '[' | '(' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn json_response(status: StatusCode, media: MediaType, body: serde_json::Value) -> Response {
    Response::builder().status(status).content_type(media.content_type()).body(body.to_string())
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

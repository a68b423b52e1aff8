//! GraphQL over HTTP (the spec's rules, not the stock endpoint's): reading GET and POST
//! requests, credentials, rate limits, the checks before execution (size, nesting, cost, the
//! GET rules), execution with its timeout, status codes and ETags. The response cache sits in
//! front of execution as [`super::response_layer`].
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Variables};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, Request, Response};
use serde::Deserialize;
use serde_json::json;

use super::credentials::{Presented, authenticate};
use super::response_layer::ResponseLayer;
use super::{app_error_response, error_body, error_response};
use crate::auth::Viewer;
use crate::cors::Sender;
use crate::error::AppError;
use crate::graphql::cost::{self, MAX_NESTING};
use crate::graphql::identity::ClientAddress;
use crate::graphql::loaders::Loaders;
use crate::graphql::{AppSchema, RequestOutcome};
use crate::metrics::Metrics;
use crate::ratelimit::OperationLimiter;
use crate::response_cache::{self, ResponseTags};
use crate::state::AppState;
use crate::trusted;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub(super) struct GraphQLEndpoint {
    /// Runs the operations whose answer may be cached (its extension collects what they read).
    pub(super) schema: AppSchema,
    /// Runs every other operation: no per-field extension hook (see `build_lean_schema`).
    pub(super) lean: AppSchema,
    pub(super) state: AppState,
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
        self.state.metrics.http_requests.inc();
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
                self.state.metrics.graphql_request_errors.inc();
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
                    AppError::Forbidden(_) => {
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
                crate::graphql::errors::log_internal(&error);
                tracing::info!(status = status.as_u16(), "credentials refused");
                let mut response = error_response(status, &message, error.code().as_str());
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

/// Who sent a request, resolved once per HTTP request and shared by a batch.
struct RequestContext {
    viewer: Viewer,
    address: ClientAddress,
    if_none_match: Option<String>,
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
                let out = self.observed(request, media, is_get, context, started).await;
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
                    let out = self.observed(request, media, is_get, context, Instant::now()).await;
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

    /// Runs one operation, logs it and records its latency and SQL statements per operation name.
    async fn observed(
        &self,
        request: async_graphql::Request,
        media: MediaType,
        is_get: bool,
        context: &RequestContext,
        started: Instant,
    ) -> OpOutcome {
        let (out, statements) = Metrics::counting(self.execute_one(request, media, is_get, context)).await;
        let elapsed = started.elapsed();
        self.state.metrics.observe_operation(out.name.as_deref(), elapsed, statements);
        tracing::info!(
            operation = out.name.as_deref().unwrap_or("anonymous"),
            status = out.status.as_u16(),
            errors = out.errors,
            statements,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "graphql"
        );
        out
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
        counters.graphql_operations.inc();
        let name = request.operation_name.clone();
        let request_error = |status: StatusCode, message: &str, code: &str| {
            counters.graphql_request_errors.inc();
            let status = if media == MediaType::GraphQLResponse || status == StatusCode::METHOD_NOT_ALLOWED {
                status
            } else {
                StatusCode::OK
            };
            OpOutcome::new(status, error_body(message, code).to_string(), name.clone(), 1)
        };
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
        let layer = ResponseLayer { state: &self.state };
        let public_key = layer.key(&context.viewer, &document, &request, name.as_deref());
        if let Some(key) = &public_key
            && let Some(hit) = layer.near_hit(key).await
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
        // A text parsed before is not parsed again; every check below still runs on it.
        let reused = parsed_documents::reuse(&mut request);
        if reused {
            counters.parsed_documents_reused.inc();
        }
        let (operation_type, named) = match request.parsed_query() {
            Ok(doc) => {
                if let Err(over) = cost::check(doc, limits) {
                    return request_error(StatusCode::BAD_REQUEST, &over.message, over.code);
                }
                (operation_type(doc, name.as_deref()), sole_operation_name(doc))
            }
            Err(e) => return request_error(StatusCode::BAD_REQUEST, &e.message, "GRAPHQL_PARSE_FAILED"),
        };
        if !reused {
            parsed_documents::keep(&mut request);
        }
        // Logs and metrics name the operation by the document when the request did not.
        let name = name.clone().or(named);
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
            counters.graphql_request_errors.inc();
            let secs = wait.as_secs().max(1);
            let body = json!({ "errors": [{
                "message": format!("too many anonymous mutations, retry in {secs}s"),
                "extensions": { "code": "RATE_LIMITED", "retryAfter": secs },
            }] });
            return OpOutcome::new(StatusCode::TOO_MANY_REQUESTS, body.to_string(), name, 1);
        }

        // Public queries: served from the response cache when what they read is cacheable.
        if let Some(key) = public_key.filter(|key| layer.serves(key, operation_type)) {
            return layer.serve(key, name.clone(), |tags| self.run(request, media, name, context, tags)).await;
        }
        self.run(request, media, name, context, None).await
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
        // An operation that collects no cache tags runs on the extension-free schema. Its
        // request errors are uncoded, so the full schema codes them (on the error path only)
        // from what is kept here.
        let retry =
            tags.is_none().then(|| (request.query.clone(), request.variables.clone(), request.operation_name.clone()));
        let request = request
            .data(Loaders::new(&self.state.db))
            .data(outcome.clone())
            .data(context.viewer.clone())
            .data(context.address.clone());
        let (schema, request) = match tags {
            Some(tags) => (&self.schema, request.data(tags)),
            None => (&self.lean, request),
        };
        let mut response = match tokio::time::timeout(limits.execution_timeout, schema.execute(request)).await {
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
        let request_errors = if response.errors.is_empty() {
            None
        } else if let Some((query, variables, operation_name)) = retry {
            // A request error has no `data` and no path (every field error has one). Only
            // then can it be one, and the full schema tells which, with the codes.
            let maybe =
                response.data == async_graphql::Value::Null && response.errors.iter().all(|e| e.path.is_empty());
            if maybe {
                Some(crate::graphql::request_errors(&self.schema, query, variables, operation_name).await)
                    .filter(|errors| !errors.is_empty())
            } else {
                None
            }
        } else if !outcome.executed() {
            Some(std::mem::take(&mut response.errors))
        } else {
            None
        };
        if let Some(errors) = request_errors {
            // A request error: nothing ran, so there is no `data`. The schema's `TrackOutcome`
            // codes parse and validation errors by their stage; what is left uncoded failed
            // between validation and execution (no such operation, no operation name among
            // several), which is a validation failure by the spec.
            counters.graphql_request_errors.inc();
            let status = if media == MediaType::GraphQLResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            let count = errors.len();
            let coded: Vec<async_graphql::ServerError> = errors
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
            return OpOutcome::new(status, json!({ "errors": coded }).to_string(), name, count);
        }
        let errors = response.errors.len();
        let body =
            serde_json::to_string(&response).unwrap_or_else(|_| error_body("internal error", "INTERNAL").to_string());
        OpOutcome::new(StatusCode::OK, body, name, errors)
    }
}

/// What one operation came to.
pub(super) struct OpOutcome {
    pub(super) status: StatusCode,
    pub(super) body: Arc<str>,
    name: Option<String>,
    pub(super) errors: usize,
    /// Set for cacheable public answers.
    pub(super) etag: Option<String>,
    pub(super) public: bool,
}

impl OpOutcome {
    pub(super) fn cached(hit: &response_cache::CachedResponse, name: Option<String>) -> Self {
        Self {
            status: StatusCode::OK,
            body: hit.body.clone(),
            name,
            errors: 0,
            etag: Some(hit.etag.clone()),
            public: true,
        }
    }

    pub(super) fn new(status: StatusCode, body: String, name: Option<String>, errors: usize) -> Self {
        Self { status, body: Arc::from(body), name, errors, etag: None, public: false }
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

/// The name of a document's only operation, if it has one.
fn sole_operation_name(doc: &async_graphql::parser::types::ExecutableDocument) -> Option<String> {
    use async_graphql::parser::types::DocumentOperations;
    match &doc.operations {
        DocumentOperations::Multiple(ops) if ops.len() == 1 => ops.keys().next().map(ToString::to_string),
        _ => None,
    }
}

/// Parsed documents by query text, shared by every schema in the process: parsing reads
/// nothing but the text, so a document parsed once serves every request that sends the same
/// text. Only documents that parsed and passed the cost limits are kept; a reused one still goes
/// through the nesting, cost, GET and rate rules, validation and execution of its own request.
mod parsed_documents {
    use std::sync::{Arc, LazyLock};

    use async_graphql::parser::types::ExecutableDocument;

    /// The cache's budget, in KiB of estimated parsed size.
    const MAX_KIB: u64 = 16 * 1024;
    /// A parsed document takes about this many times its text's bytes (names, positions, nodes).
    const BYTES_PER_TEXT_BYTE: usize = 8;

    static DOCUMENTS: LazyLock<moka::sync::Cache<String, Arc<ExecutableDocument>>> = LazyLock::new(|| {
        moka::sync::Cache::builder()
            .max_capacity(MAX_KIB)
            .weigher(|text: &String, _| {
                u32::try_from((text.len() * BYTES_PER_TEXT_BYTE).div_ceil(1024)).unwrap_or(u32::MAX).max(1)
            })
            .build()
    });

    /// Gives the request the document parsed earlier from the same text; says whether it did.
    pub(super) fn reuse(request: &mut async_graphql::Request) -> bool {
        match DOCUMENTS.get(request.query.as_str()) {
            Some(document) => {
                request.set_parsed_query(ExecutableDocument::clone(&document));
                true
            }
            None => false,
        }
    }

    /// Keeps the request's parsed document for the next request with the same text.
    pub(super) fn keep(request: &mut async_graphql::Request) {
        if let Ok(document) = request.parsed_query() {
            let document = Arc::new(document.clone());
            DOCUMENTS.insert(request.query.clone(), document);
        }
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

//! HTTP routes: GraphQL over HTTP (the spec's rules, not the stock endpoint's, in
//! [`transport`]), subscriptions over WebSocket, GraphiQL, reports and downloads, and the
//! operations endpoints (liveness, readiness, metrics).
//!
//! - [`transport`]: reading a GraphQL request, status codes, the checks before execution;
//! - [`response_layer`]: the response cache in front of execution;
//! - [`credentials`]: who sent a request (tokens, API keys, origins);
//! - [`subscriptions`]: `graphql-transport-ws` and legacy `graphql-ws`;
//! - [`reports`]: plain HTTP downloads (the impact CSV, the PIPL data export);
//! - [`receipts`]: the printable receipt behind its unguessable link;
//! - [`payments`]: payment platforms' notifications (WeChat Pay, Alipay);
//! - [`statements`]: statements uploaded as exported, past the GraphQL body limit;
//! - [`ops`]: `/health`, `/ready`, `/metrics`, GraphiQL.
mod credentials;
mod ops;
mod payments;
mod receipts;
mod reports;
mod response_layer;
mod statements;
mod subscriptions;
mod transport;

use poem::http::{StatusCode, header};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, Request, Response, Route, get};
use serde_json::json;

use crate::auth::Viewer;
use crate::cors::{Cors, Sender};
use crate::error::{AppError, Code};
use crate::graphql::AppSchema;
use crate::state::AppState;

pub(crate) use credentials::{Presented, authenticate};

/// The routes. `schema` is the full schema ([`crate::graphql::build_schema`]); `lean` its
/// extension-free twin ([`crate::graphql::build_lean_schema`]), which runs the operations that
/// collect no cache tags.
pub fn routes(schema: AppSchema, lean: AppSchema, state: AppState) -> impl Endpoint {
    let subscriptions = subscriptions::SubscriptionEndpoint { schema: schema.clone(), state: state.clone() };
    let graphql = transport::GraphQLEndpoint { schema, lean, state: state.clone() };
    let mut route = Route::new();
    if state.settings.debug_panic_route {
        route = route.at("/debug/panic", get(ops::debug_panic));
    }
    let report = Cors { inner: get(reports::impact_csv.data(state.clone())), state: state.clone() };
    let export = Cors { inner: get(reports::account_export.data(state.clone())), state: state.clone() };
    let statement = Cors { inner: poem::post(statements::upload.data(state.clone())), state: state.clone() };
    route
        .at("/", get(ops::graphiql.data(state.clone())))
        .at(crate::graphiql::ASSET_ROUTE, get(crate::graphiql::asset))
        .at("/graphql", Cors { inner: graphql, state: state.clone() })
        .at("/graphql/ws", subscriptions)
        .at("/health", get(ops::health))
        .at("/ready", get(ops::ready.data(state.clone())))
        .at("/metrics", get(ops::metrics_text.data(state.clone())))
        .at("/reports/impact.csv", report)
        .at("/account/export", export)
        .at("/reconcile/statements", statement)
        .at("/payments/notify/wechatpay", poem::post(payments::wechatpay.data(state.clone())))
        .at("/payments/notify/alipay", poem::post(payments::alipay.data(state.clone())))
        .at("/receipts/:token", get(receipts::printable.data(state.clone())))
        .with(crate::proxy::ResolveClient { proxies: state.settings.trusted_proxies.clone() })
        .with(CatchPanic::new().with_handler(|_| {
            tracing::error!("a request handler panicked");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "INTERNAL")
        }))
}

/// What a plain route starts with: its viewer, allowed by `require`, and its query string as
/// `T`; or the answer that refuses the request (checked in that order).
pub(crate) async fn route_request<T: serde::de::DeserializeOwned>(
    req: &Request,
    state: &AppState,
    require: impl FnOnce(&Viewer) -> crate::error::AppResult<()>,
) -> Result<(Viewer, T), Response> {
    let viewer = route_viewer(req, state).await?;
    require(&viewer).map_err(|error| service_error_response(&error))?;
    let params = req
        .params()
        .map_err(|e| error_response(StatusCode::BAD_REQUEST, &format!("bad query string: {e}"), "BAD_USER_INPUT"))?;
    Ok((viewer, params))
}

/// Who sent a request to a plain HTTP route (reports, downloads), or the answer refusing it:
/// the same credentials and errors as `/graphql`.
pub(crate) async fn route_viewer(req: &Request, state: &AppState) -> Result<Viewer, Response> {
    let sender = Sender::of(req);
    let credentials = Presented {
        authorization: req.header(header::AUTHORIZATION),
        api_key: req.header("x-api-key"),
        sender: &sender,
    };
    authenticate(state, credentials).await.map_err(|error| match error {
        // The cause (the database's own words) is for the log, not the client.
        AppError::ServiceUnavailable(_) => app_error_response(StatusCode::SERVICE_UNAVAILABLE, &error),
        AppError::Forbidden(_) => app_error_response(StatusCode::FORBIDDEN, &error),
        _ => error_response(
            StatusCode::UNAUTHORIZED,
            "the access token or API key is invalid, expired or revoked",
            "UNAUTHENTICATED",
        ),
    })
}

pub(crate) fn error_body(message: &str, code: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

pub(crate) fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    Response::builder().status(status).content_type("application/json").body(error_body(message, code).to_string())
}

/// The status a plain HTTP route answers a service error with.
pub(crate) fn status_of(error: &AppError) -> StatusCode {
    match error.code() {
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::BadUserInput => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Forbidden => StatusCode::FORBIDDEN,
        Code::Conflict => StatusCode::CONFLICT,
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error of the service layer as a whole answer with the status its code implies.
pub(crate) fn service_error_response(error: &AppError) -> Response {
    app_error_response(status_of(error), error)
}

/// An error of the service layer as a whole answer: its message (generic for internal
/// failures, which are logged here) and the same extensions as in GraphQL (`code`, `reason`,
/// `field`, details).
pub(crate) fn app_error_response(status: StatusCode, error: &AppError) -> Response {
    crate::graphql::errors::log_internal(error);
    let extensions = crate::graphql::errors::extensions_json(error);
    let body = json!({ "errors": [{ "message": error.to_string(), "extensions": extensions }] });
    Response::builder().status(status).content_type("application/json").body(body.to_string())
}

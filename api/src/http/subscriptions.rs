//! GraphQL subscriptions over WebSocket.
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::credentials::{Presented, authenticate};
use super::error_response;
use crate::cors::Sender;
use crate::graphql::AppSchema;
use crate::graphql::loaders::Loaders;
use crate::state::AppState;
use crate::trusted;

/// GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and legacy `graphql-ws`).
/// Credentials come from the upgrade request's headers (server-side clients) or from the
/// `connection_init` payload: `{ "authorization": "Bearer …" }` or `{ "apiKey": "ib_…" }` (or
/// `X-Api-Key`; names in any case)
/// (browsers cannot set headers on a WebSocket). Credentials that do not check out refuse the
/// connection.
pub(super) struct SubscriptionEndpoint {
    pub(super) schema: AppSchema,
    pub(super) state: AppState,
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

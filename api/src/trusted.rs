//! How a request names its document — the text, an APQ hash (`extensions.persistedQuery`), or
//! the `documentId` of a registered (trusted) document — and the rules of
//! `INCUBASE_TRUSTED_DOCUMENTS` over them, for HTTP and WebSocket alike.
//!
//! `off`: registered documents are not consulted. `allow` (default): a request may name a
//! registered document or send any text. `require`: anonymous, partner-key and non-staff
//! requests run registered documents only — by id, by APQ hash, or as the exact registered
//! text; staff tools keep free-form queries.
use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures::StreamExt;
use futures::stream::BoxStream;
use poem::http::StatusCode;

use crate::auth::Viewer;
use crate::config::TrustedDocumentsMode;
use crate::error::AppError;
use crate::graphql::AppSchema;
use crate::response_cache::{self, Key};
use crate::service::trusted_documents::parse_document_id;
use crate::state::AppState;

/// The extension under which the transport keeps a request's `documentId` (clients may also
/// send it there themselves).
pub const DOCUMENT_ID: &str = "documentId";

/// What a request will run.
#[derive(Debug, PartialEq, Eq)]
pub enum Document {
    /// Its own text (free-form, or learned through APQ).
    Text,
    /// A registered document; the request's `query` is empty until [`load`] fills it.
    Registered(String),
}

/// A request refused before execution.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
    pub code: &'static str,
}

impl Refused {
    fn new(status: StatusCode, message: impl Into<String>, code: &'static str) -> Self {
        Self { status, message: message.into(), code }
    }

    fn required() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "this API runs registered operations only for this client: send the `documentId` of a document \
             from your registered manifest (registerTrustedDocuments)",
            "TRUSTED_DOCUMENT_REQUIRED",
        )
    }

    fn lookup_failed(error: AppError) -> Self {
        match error {
            AppError::ServiceUnavailable(_) | AppError::Transient(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "service temporarily unavailable", "SERVICE_UNAVAILABLE")
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "INTERNAL"),
        }
    }

    /// As a GraphQL response (WebSocket).
    pub fn into_response(self) -> Response {
        let mut error = ServerError::new(self.message, None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", self.code);
        error.extensions = Some(extensions);
        Response::from_errors(vec![error])
    }
}

/// `documentId` of a request, as sent.
pub fn document_id(request: &Request) -> Option<String> {
    match request.extensions.get(DOCUMENT_ID)? {
        async_graphql::Value::String(id) => Some(id.clone()),
        _ => None,
    }
}

/// `extensions.persistedQuery.sha256Hash` (Apollo APQ, version 1).
pub fn persisted_query_hash(request: &Request) -> Option<String> {
    let value = request.extensions.get("persistedQuery")?.clone().into_json().ok()?;
    value.get("sha256Hash")?.as_str().map(|h| h.to_ascii_lowercase())
}

/// Decides what `request` runs under the configured mode, or refuses it. A request by APQ
/// hash alone gets its text here when it is a learned (not registered) one.
pub async fn classify(state: &AppState, viewer: &Viewer, request: &mut Request) -> Result<Document, Refused> {
    let mode = state.settings.trusted_documents;
    let free_form = mode != TrustedDocumentsMode::Require || viewer.may_send_free_form_documents();
    if let Some(raw) = document_id(request) {
        if mode == TrustedDocumentsMode::Off {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "registered documents are off on this API (INCUBASE_TRUSTED_DOCUMENTS=off): send the query text",
                "TRUSTED_DOCUMENTS_OFF",
            ));
        }
        let id = parse_document_id(&raw).ok_or_else(|| {
            Refused::new(StatusCode::BAD_REQUEST, "`documentId` is sha256:<64 hex digits>", "BAD_REQUEST")
        })?;
        if !request.query.is_empty() {
            return Err(Refused::new(StatusCode::BAD_REQUEST, "send `documentId` or `query`, not both", "BAD_REQUEST"));
        }
        return Ok(Document::Registered(id));
    }
    if let Some(hash) = persisted_query_hash(request) {
        if request.query.is_empty() {
            if free_form && let Some(query) = state.responses.persisted_query(&hash) {
                request.query = query.to_string();
                return Ok(Document::Text);
            }
            if mode != TrustedDocumentsMode::Off && is_registered(state, &hash).await? {
                return Ok(Document::Registered(hash));
            }
            // Apollo clients answer this by sending the document with its hash.
            return Err(Refused::new(StatusCode::OK, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"));
        }
        if response_cache::sha256_hex(&request.query) != hash {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "the query does not match its sha256Hash",
                "PERSISTED_QUERY_HASH_MISMATCH",
            ));
        }
        if free_form {
            state.responses.remember_query(hash, &request.query);
            return Ok(Document::Text);
        }
        return if is_registered(state, &hash).await? {
            Ok(Document::Registered(hash))
        } else {
            Err(Refused::required())
        };
    }
    if free_form {
        return Ok(Document::Text);
    }
    let hash = response_cache::sha256_hex(&request.query);
    if is_registered(state, &hash).await? { Ok(Document::Registered(hash)) } else { Err(Refused::required()) }
}

async fn is_registered(state: &AppState, id: &str) -> Result<bool, Refused> {
    state.documents.body(&state.db, id).await.map(|body| body.is_some()).map_err(Refused::lookup_failed)
}

/// Gives a request for a registered document its text.
pub async fn load(state: &AppState, id: &str, request: &mut Request) -> Result<(), Refused> {
    if !request.query.is_empty() {
        return Ok(());
    }
    match state.documents.body(&state.db, id).await.map_err(Refused::lookup_failed)? {
        Some(body) => {
            request.query = body.to_string();
            Ok(())
        }
        None => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "no registered document has this documentId: register the manifest first",
            "TRUSTED_DOCUMENT_NOT_FOUND",
        )),
    }
}

/// The response-cache key of a registered document: from its id, without reading or
/// normalizing its text.
pub fn cache_key(scope: &str, id: &str, operation: Option<&str>, variables: &str) -> Key {
    response_cache::key_of(&[scope, "trusted-document", id, operation.unwrap_or(""), variables])
}

/// The schema behind the WebSocket transport, with the same document rules as HTTP: a
/// subscription names its registered document by APQ hash (`extensions.persistedQuery`),
/// which graphql-ws clients can send.
#[derive(Clone)]
pub struct TrustedExecutor {
    pub schema: AppSchema,
    pub state: AppState,
}

impl TrustedExecutor {
    async fn prepare(&self, viewer: &Viewer, mut request: Request) -> Result<Request, Refused> {
        if let Document::Registered(id) = classify(&self.state, viewer, &mut request).await? {
            load(&self.state, &id, &mut request).await?;
        }
        Ok(request)
    }
}

fn viewer_of(data: Option<&Data>) -> Viewer {
    data.and_then(|d| d.get(&std::any::TypeId::of::<Viewer>()))
        .and_then(|v| v.downcast_ref::<Viewer>())
        .cloned()
        .unwrap_or_default()
}

impl Executor for TrustedExecutor {
    async fn execute(&self, request: Request) -> Response {
        let viewer =
            request.data.get(&std::any::TypeId::of::<Viewer>()).and_then(|v| v.downcast_ref::<Viewer>()).cloned();
        match self.prepare(&viewer.unwrap_or_default(), request).await {
            Ok(request) => self.schema.execute(request).await,
            Err(refused) => refused.into_response(),
        }
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let this = self.clone();
        let viewer = viewer_of(session_data.as_deref());
        let schema = self.schema.clone();
        futures::stream::once(async move { this.prepare(&viewer, request).await })
            .flat_map(move |prepared| match prepared {
                Ok(request) => {
                    schema.execute_stream_with_session_data(request, session_data.clone().unwrap_or_default())
                }
                Err(refused) => futures::stream::once(futures::future::ready(refused.into_response())).boxed(),
            })
            .boxed()
    }
}

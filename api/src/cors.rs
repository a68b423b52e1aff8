//! Browsers on other origins (CORS): which origins may call the API, the answers to their
//! preflights, the headers of actual answers, and what a request's `Origin` says about who
//! sent it.
//!
//! An origin is allowed when `INCUBASE_CORS_ORIGINS` lists it (or is `*`), or when a live
//! publishable key is bound to it. A preflight carries no key — only the page's origin and the
//! names of the headers it will send — so it is answered for the union of those origins; the
//! key itself is checked against its own origins when the actual request arrives
//! (`http::authenticate`). A disallowed origin gets no CORS header at all. No cookies are used,
//! so `Access-Control-Allow-Credentials` is never sent.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sea_orm::DatabaseConnection;

use crate::config::{CorsOrigins, normalize_origin};
use crate::service::identity;
use crate::state::AppState;

pub const ALLOWED_METHODS: &str = "GET, POST";
/// Everything a partner page sends beyond the CORS-safelisted headers. Persisted documents
/// travel in the body (`documentId`, `extensions.persistedQuery`), not in headers.
pub const ALLOWED_HEADERS: &str = "content-type, authorization, x-api-key";
/// Headers a page may read from an answer: the ETag of cacheable GETs and the wait of a 429.
pub const EXPOSED_HEADERS: &str = "etag, retry-after";
/// Origins of publishable keys are read again at most this often, so a key created or revoked
/// on another instance counts here within this time (on this instance: at once).
const KEY_ORIGINS_TTL: Duration = Duration::from_secs(30);

/// Where a request came from, as its `Origin` header tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// No `Origin`: not a browser (a server, a mini-program, curl), or a browser's plain
    /// navigation.
    NoBrowser,
    /// A page of the API's own origin (GraphiQL).
    SameOrigin,
    /// A page of another origin: `scheme://host[:port]` as the browser sent it (`null` for
    /// sandboxed frames and files, which is never allowed).
    CrossOrigin(String),
}

impl Sender {
    pub fn of(req: &Request) -> Self {
        let Some(raw) = req.header(header::ORIGIN) else { return Self::NoBrowser };
        let Ok(origin) = normalize_origin(raw) else { return Self::CrossOrigin(raw.trim().to_owned()) };
        let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
        let host = req.header(header::HOST).unwrap_or_default();
        // The Host header keeps an explicit default port; the origin does not.
        let host = host.strip_suffix(":80").or_else(|| host.strip_suffix(":443")).unwrap_or(host);
        if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
            Self::SameOrigin
        } else {
            Self::CrossOrigin(origin)
        }
    }

    /// The other origin a browser request came from, if any.
    pub fn cross_origin(&self) -> Option<&str> {
        match self {
            Self::CrossOrigin(origin) => Some(origin),
            _ => None,
        }
    }
}

/// The allowed origins: the configured list and the origins of publishable keys.
pub struct CorsPolicy {
    configured: CorsOrigins,
    max_age: Duration,
    key_origins: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl CorsPolicy {
    pub fn new(configured: CorsOrigins, max_age: Duration) -> Self {
        Self { configured, max_age, key_origins: Mutex::new(None) }
    }

    /// Whether pages of `origin` may call the API.
    pub async fn allows(&self, db: &DatabaseConnection, origin: &str) -> bool {
        match &self.configured {
            CorsOrigins::Any if origin != "null" => return true,
            CorsOrigins::List(list) if list.iter().any(|o| o == origin) => return true,
            _ => {}
        }
        self.key_origins(db).await.contains(origin)
    }

    async fn key_origins(&self, db: &DatabaseConnection) -> Arc<HashSet<String>> {
        let cached = self.key_origins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((loaded, origins)) = &cached
            && loaded.elapsed() < KEY_ORIGINS_TTL
        {
            return origins.clone();
        }
        match identity::publishable_origins(db).await {
            Ok(origins) => {
                let origins = Arc::new(origins);
                *self.key_origins.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), origins.clone()));
                origins
            }
            // The database is away: keep answering with what was known.
            Err(error) => {
                tracing::warn!(%error, "cannot read the origins of publishable keys");
                cached.map(|(_, origins)| origins).unwrap_or_default()
            }
        }
    }

    /// A key was created or revoked here: read the key origins again on the next preflight.
    pub fn forget_key_origins(&self) {
        *self.key_origins.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Wraps an endpoint with the CORS rules: preflights answered here, actual answers given
/// `Access-Control-Allow-Origin` when their origin is allowed, and `Vary: Origin` always (the
/// same URL answers differently per origin, so shared caches must keep them apart).
pub struct Cors<E> {
    pub inner: E,
    pub state: AppState,
}

impl<E: Endpoint> Endpoint for Cors<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let sender = Sender::of(&req);
        let origin = sender.cross_origin().map(str::to_owned);
        let allowed = match &origin {
            Some(origin) => self.state.cors.allows(&self.state.db, origin).await,
            None => false,
        };
        if req.method() == Method::OPTIONS {
            return Ok(self.options(&req, origin.as_deref(), allowed));
        }
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|_| allowed)
            && let Ok(value) = HeaderValue::from_str(&origin)
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
        Ok(response)
    }
}

impl<E> Cors<E> {
    /// `OPTIONS`: a browser's preflight (with `Origin` and `Access-Control-Request-Method`), or
    /// a plain question about the methods.
    fn options(&self, req: &Request, origin: Option<&str>, allowed: bool) -> Response {
        let vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
        let preflight = req.header(header::ACCESS_CONTROL_REQUEST_METHOD).is_some();
        match origin {
            Some(origin) if preflight => {
                let value = HeaderValue::from_str(origin).ok().filter(|_| allowed);
                let Some(value) = value else {
                    tracing::info!(origin, "preflight from a disallowed origin");
                    let message = format!(
                        "the origin {origin} may not call this API: list it in INCUBASE_CORS_ORIGINS \
                         or bind a publishable key to it"
                    );
                    let mut response = crate::http::error_response(StatusCode::FORBIDDEN, &message, "FORBIDDEN");
                    response.headers_mut().insert(header::VARY, HeaderValue::from_static(vary));
                    return response;
                };
                let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
                let headers = response.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
                headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
                if let Ok(max_age) = HeaderValue::from_str(&self.state.cors.max_age.as_secs().to_string()) {
                    headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age);
                }
                headers.insert(header::VARY, HeaderValue::from_static(vary));
                response
            }
            _ => {
                let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST, OPTIONS"));
                response.headers_mut().insert(header::VARY, HeaderValue::from_static(vary));
                response
            }
        }
    }
}

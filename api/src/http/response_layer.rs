//! The response cache as a layer in front of execution, with two hooks the transport calls:
//! [`ResponseLayer::key`] + [`ResponseLayer::near_hit`] before anything is parsed (a hit costs a
//! hash, a map lookup and a comparison of tag generations), and [`ResponseLayer::serve`] around
//! execution (single flight, the shared Redis tier, filling with the tags the resolvers read).
//!
//! It is not an async-graphql extension because a hit must be answered before the document is
//! parsed or validated; nor does it use async-graphql's automatic persisted queries: registered
//! documents ([`trusted`]) are keyed by their id so that a hit reads no query text at all.
use std::future::Future;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use poem::http::StatusCode;

use super::transport::OpOutcome;
use crate::auth::Viewer;
use crate::response_cache::{self, Flight, ResponseTags};
use crate::state::AppState;
use crate::trusted;

pub(super) struct ResponseLayer<'a> {
    pub(super) state: &'a AppState,
}

impl ResponseLayer<'_> {
    /// The key this request's answer is kept under, when its viewer reads shared answers.
    pub(super) fn key(
        &self,
        viewer: &Viewer,
        document: &trusted::Document,
        request: &async_graphql::Request,
        name: Option<&str>,
    ) -> Option<response_cache::Key> {
        if self.state.settings.response_cache_entries == 0 {
            return None;
        }
        let scope = cache_scope(viewer)?;
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        Some(match document {
            // Registered documents go straight to their key: a hit reads no text.
            trusted::Document::Registered(id) => trusted::cache_key(&scope, id, name, &variables),
            trusted::Document::Text => response_cache::key(&scope, &request.query, name, &variables),
        })
    }

    /// Whether an operation of this type goes through the cache. While the cache cannot
    /// validate answers (Redis degraded) queries run at once, without queueing behind a single
    /// flight that would store nothing.
    pub(super) fn serves(&self, key: &response_cache::Key, operation_type: Option<OperationType>) -> bool {
        operation_type == Some(OperationType::Query)
            && !self.state.responses.is_uncacheable(key)
            && self.state.cache.validates_responses()
    }

    /// A valid answer from the near cache, counted as a hit.
    pub(super) async fn near_hit(&self, key: &response_cache::Key) -> Option<Arc<response_cache::CachedResponse>> {
        let hit = self.state.responses.peek(key)?;
        if !self.still_valid(&hit).await {
            return None;
        }
        self.state.metrics.response_cache_hits.inc();
        Some(hit)
    }

    /// Answers through the cache: `run` executes the operation, with a tag collector when its
    /// answer may be kept.
    pub(super) async fn serve<F, Fut>(&self, key: response_cache::Key, name: Option<String>, run: F) -> OpOutcome
    where
        F: FnOnce(Option<ResponseTags>) -> Fut,
        Fut: Future<Output = OpOutcome>,
    {
        let state = self.state;
        let counters = &state.metrics;
        let responses = &state.responses;
        match responses.begin(key) {
            // Another request is computing this answer: wait for it. If it left nothing to
            // serve (uncacheable, an error, a timeout), run without the cache rather than
            // queueing behind one another.
            Flight::Follower(mut done) => {
                let _ = tokio::time::timeout(state.settings.limits.execution_timeout, done.changed()).await;
                if let Some(hit) = self.near_hit(&key).await {
                    return OpOutcome::cached(&hit, name);
                }
                run(None).await
            }
            Flight::Leader(flight) => {
                // A flight that ended since the first lookup may have left an answer.
                if let Some(hit) = self.near_hit(&key).await {
                    return OpOutcome::cached(&hit, name);
                }
                // The shared tier: an answer another instance (or this one, before a
                // restart) computed, still valid if its tags have not moved since.
                let hex = response_cache::key_hex(&key);
                let session = state.cache.generation_session();
                if let Some(raw) = state.cache.shared_response(&hex).await
                    && let Some(entry) = response_cache::CachedResponse::decode(&raw, session)
                    && self.still_valid(&entry).await
                {
                    counters.response_cache_hits.inc();
                    let entry = Arc::new(entry);
                    responses.adopt(key, entry.clone());
                    return OpOutcome::cached(&entry, name);
                }
                counters.response_cache_misses.inc();
                // List-tag generations as they are before anything is read.
                let Some(lists) = state.cache.generations(&response_cache::list_tags()).await else {
                    drop(flight);
                    return run(None).await;
                };
                let collector = ResponseTags::new(state.cache.clone(), &lists);
                let mut out = run(Some(collector.clone())).await;
                // Generations from another session (Redis reconnected meanwhile) cannot
                // be compared with later ones: such an answer is served, not kept.
                let same_session = state.cache.generation_session() == session;
                if out.status == StatusCode::OK && out.errors == 0 && same_session {
                    match collector.finish() {
                        Some(depends) => {
                            let entry = responses.put(key, out.body.clone(), depends, session);
                            out.etag = Some(entry.etag.clone());
                            out.public = true;
                            let cache = state.cache.clone();
                            let raw = entry.encode();
                            tokio::spawn(async move { cache.put_shared_response(&hex, raw).await });
                        }
                        // Not cached because Redis could not be asked: try again next time.
                        None if collector.cache_unavailable() => {}
                        None => responses.mark_uncacheable(key),
                    }
                }
                drop(flight);
                out
            }
        }
    }

    /// Whether a cached answer may still be served: same generation session, before its expiry
    /// (if it has one), and every tag still at the generation the answer was computed under.
    async fn still_valid(&self, entry: &response_cache::CachedResponse) -> bool {
        entry.session == self.state.cache.generation_session()
            && entry.current_at(crate::service::now())
            && self.state.cache.generations(&entry.tags).await.is_some_and(|current| current == entry.generations)
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

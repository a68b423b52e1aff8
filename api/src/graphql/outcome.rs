//! Tells the HTTP layer whether a request reached execution, and the response cache what an
//! execution read (`ResponseTags`). Errors before execution (parse, validation, limits) are
//! *request errors*: the response carries no `data`, and clients that accept
//! `application/graphql-response+json` get a 4xx status.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextResolve, NextValidation,
    ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};

use super::errors::RequestCode;
use crate::response_cache::ResponseTags;

/// Put into each request's data; set once execution starts.
#[derive(Clone, Default)]
pub struct RequestOutcome {
    executed: Arc<AtomicBool>,
}

impl RequestOutcome {
    pub fn executed(&self) -> bool {
        self.executed.load(Ordering::Relaxed)
    }
}

/// Codes request errors by the stage that produced them, enforces the depth and complexity
/// limits, marks the start of execution and feeds the response cache's collector.
///
/// async-graphql's own errors carry no code and no kind, only English text that may change
/// in any release. So the code comes from *where* an error arises: the parse stage (a
/// document that does not parse, or is nested or directive-laden past the limits), the
/// validation stage, or our own limit checks here. The depth and complexity limits are not
/// given to the schema builder (whose refusals differ only by message) but checked here
/// against the depth and complexity that validation computes; a document that is both
/// invalid and over a limit is answered with its validation errors.
#[derive(Clone, Copy)]
pub struct TrackOutcome {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl ExtensionFactory for TrackOutcome {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TrackOutcomeExtension { limits: *self })
    }
}

struct TrackOutcomeExtension {
    limits: TrackOutcome,
}

#[async_graphql::async_trait::async_trait]
impl Extension for TrackOutcomeExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|error| {
            // The stage also checks a parsed document's recursion and directives: the text
            // decides which it was (parsed again only on this error path).
            let code = if async_graphql::parser::parse_query(query).is_err() {
                RequestCode::ParseFailed
            } else {
                RequestCode::ValidationFailed
            };
            code.apply(error)
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next
            .run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(|e| RequestCode::ValidationFailed.apply(e)).collect::<Vec<_>>())?;
        // The same order and messages as async-graphql's own limits.
        if result.complexity > self.limits.max_complexity {
            return Err(vec![RequestCode::QueryTooComplex.error("Query is too complex.")]);
        }
        if result.depth > self.limits.max_depth {
            return Err(vec![RequestCode::QueryTooDeep.error("Query is nested too deep.")]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(outcome) = ctx.data_opt::<RequestOutcome>() {
            outcome.executed.store(true, Ordering::Relaxed);
        }
        next.run(ctx, operation_name).await
    }

    /// Tells the response cache's collector, when the request has one, what each field read.
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(tags) = ctx.data_opt::<ResponseTags>() {
            tags.saw_field(&info);
        }
        next.run(ctx, info).await
    }
}

//! Tells the HTTP layer whether a request reached execution, and the response cache what an
//! execution read (`ResponseTags`). Errors before execution (parse, validation, limits) are
//! *request errors*: the response carries no `data`, and clients that accept
//! `application/graphql-response+json` get a 4xx status.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value};

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

pub struct TrackOutcome;

impl ExtensionFactory for TrackOutcome {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TrackOutcomeExtension)
    }
}

struct TrackOutcomeExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for TrackOutcomeExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| errors.into_iter().map(with_validation_code).collect())
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

pub fn with_validation_code(mut error: ServerError) -> ServerError {
    let code = if error.message.contains("nested too deep") {
        "QUERY_TOO_DEEP"
    } else if error.message.contains("too complex") {
        "QUERY_TOO_COMPLEX"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    };
    let mut extensions = error.extensions.take().unwrap_or_default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

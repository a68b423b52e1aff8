//! The GraphQL schema: one Query/Mutation pair per domain, merged into the roots `Query`,
//! `Mutation` and `Subscription` (the names clients and code generators expect).
pub mod account;
pub mod audit;
pub mod common;
pub mod connection;
pub mod cost;
pub mod crowdfunding;
pub mod errors;
pub mod event;
pub mod grants;
pub mod identity;
pub mod ids;
pub mod loaders;
pub mod node;
pub mod notifications;
pub mod organization;
mod outcome;
pub mod payments;
pub mod projects;
pub mod receipts;
pub mod space;
pub mod statements;
pub mod webhooks;

use async_graphql::{MergedObject, MergedSubscription, Schema};

pub use outcome::{RequestOutcome, StopBeforeExecution, TrackOutcome, request_errors};

use crate::config::{Environment, Limits};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    identity::IdentityQuery,
    organization::OrganizationQuery,
    crowdfunding::CrowdfundingQuery,
    grants::GrantQuery,
    projects::ProjectQuery,
    event::EventQuery,
    space::SpaceQuery,
    audit::AuditQuery,
    webhooks::WebhookQuery,
    statements::StatementQuery,
    payments::PaymentQuery,
    receipts::ReceiptQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    identity::IdentityMutation,
    organization::OrganizationMutation,
    crowdfunding::CrowdfundingMutation,
    grants::GrantMutation,
    projects::ProjectMutation,
    event::EventMutation,
    space::SpaceMutation,
    webhooks::WebhookMutation,
    notifications::NotificationMutation,
    account::AccountMutation,
    statements::StatementMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    crowdfunding::CrowdfundingSubscription,
    event::EventSubscription,
    space::SpaceSubscription,
    audit::ActivitySubscription,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits; `state` is `None` when only the SDL is wanted.
pub fn build_schema(state: Option<AppState>, limits: &Limits, environment: &Environment) -> AppSchema {
    builder(state, limits, environment)
        // Depth and complexity are enforced by `TrackOutcome`, which codes the refusals.
        .extension(TrackOutcome { max_depth: limits.max_depth, max_complexity: limits.max_complexity })
        .finish()
}

/// The same schema without extensions, for executions that collect no cache tags.
///
/// With any extension registered, async-graphql runs every field through the extension
/// chain (a boxed future per field and extension); without one it resolves fields directly.
/// This schema refuses exactly what [`build_schema`]'s refuses (the same registry, rules and
/// limits, the depth and complexity ones given to the builder here), but its request errors
/// carry no code and it does not mark the start of execution: the transport then asks
/// [`request_errors`] on the full schema for the coded errors, on the error path only.
pub fn build_lean_schema(state: Option<AppState>, limits: &Limits, environment: &Environment) -> AppSchema {
    builder(state, limits, environment).limit_depth(limits.max_depth).limit_complexity(limits.max_complexity).finish()
}

fn builder(
    state: Option<AppState>,
    limits: &Limits,
    environment: &Environment,
) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    let development = *environment == Environment::Development;
    let (introspection, suggestions) = match &state {
        Some(state) => (state.settings.introspection_enabled(), state.settings.suggestions_enabled()),
        None => (development, development),
    };
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_recursive_depth(limits.max_depth.max(32))
        .limit_directives(limits.max_directives_per_field);
    if !introspection {
        builder = builder.disable_introspection();
    }
    if !suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder
}

/// The SDL as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &Limits::default(), &Environment::Development).sdl()
}

/// Helpers shared by resolvers.
pub(crate) fn state<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

//! The GraphQL schema: one Query/Mutation pair per domain, merged into the roots.
pub mod connection;
pub mod identity;
pub mod ids;
pub mod loaders;
pub mod node;
pub mod organization;
mod outcome;
pub mod space;

use async_graphql::{EmptySubscription, MergedObject, Schema};

pub use outcome::{RequestOutcome, TrackOutcome};

use crate::config::{Environment, Limits};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct QueryRoot(node::NodeQuery, identity::IdentityQuery, organization::OrganizationQuery, space::SpaceQuery);

#[derive(MergedObject, Default)]
pub struct MutationRoot(identity::IdentityMutation, organization::OrganizationMutation, space::SpaceMutation);

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with its limits; `state` is `None` when only the SDL is wanted.
pub fn build_schema(state: Option<AppState>, limits: &Limits, environment: &Environment) -> AppSchema {
    let mut builder = Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(limits.max_depth.max(32))
        .limit_directives(8)
        .extension(TrackOutcome);
    if *environment == Environment::Production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The SDL as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &Limits::default(), &Environment::Development).sdl()
}

/// Helpers shared by resolvers.
pub(crate) fn state<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

//! sea-orm entities, one module per table. No GraphQL or HTTP types live here: the public
//! schema is written separately in `api::graphql`, so a new column never leaks by accident.
pub mod account;
pub mod api_key;
pub mod campaign;
pub mod campaign_budget_line;
pub mod campaign_update;
pub mod donation;
pub mod invitation;
pub mod membership;
pub mod organization;
pub mod organization_focus_area;
pub mod organization_stage_transition;
pub mod receipt_counter;
pub mod session;

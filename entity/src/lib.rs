//! sea-orm entities, one module per table. No GraphQL or HTTP types live here: the public
//! schema is written separately in `api::graphql`, so a new column never leaks by accident.
pub mod account;
pub mod api_key;
pub mod campaign;
pub mod campaign_budget_line;
pub mod campaign_update;
pub mod delegation;
pub mod donation;
pub mod event;
pub mod exhibit;
pub mod grant_proposal;
pub mod grant_review;
pub mod grant_round;
pub mod invitation;
pub mod membership;
pub mod organization;
pub mod organization_focus_area;
pub mod organization_stage_transition;
pub mod project_disbursement;
pub mod project_goal;
pub mod project_goal_update;
pub mod receipt_counter;
pub mod registration;
pub mod service_project;
pub mod service_record;
pub mod session;
pub mod training_programme;

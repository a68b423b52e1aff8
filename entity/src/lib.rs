//! sea-orm entities, one module per table. No GraphQL or HTTP types live here: the public
//! schema is written separately in `api::graphql`, so a new column never leaks by accident.
pub mod account;
pub mod api_key;
pub mod booking;
pub mod booking_series;
pub mod invitation;
pub mod membership;
pub mod organization;
pub mod organization_focus_area;
pub mod organization_stage_transition;
pub mod session;
pub mod space;

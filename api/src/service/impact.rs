//! The base's impact dashboard.
/// Cache tag of every answer of the impact dashboard.
pub const CACHE_TAG: &str = "impact";

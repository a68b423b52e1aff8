//! The cache-tag vocabulary: the names under which cached reads are grouped, shared by the
//! services that read through the cache, the response cache, and the consumer of the event log
//! that invalidates them (`events::coherence`). No GraphQL or HTTP types in here.
//!
//! A *list tag* is bumped by every write of its family and guards lists, pages and the entity
//! caches of the services; an *entity tag* (`campaign:42`) is bumped by the writes of one entity
//! and guards cached answers about that entity alone.

/// Organizations: the directory, organization pages and their stage history.
pub const ORGANIZATIONS: &str = "organizations";
/// Campaigns: lists, pages, donor walls and progress.
pub const CAMPAIGNS: &str = "campaigns";
/// Events as the calendar shows them (lists, months, pages).
pub const EVENTS: &str = "events";
/// Space calendars (bookings).
pub const BOOKINGS: &str = "bookings";
/// The impact dashboard: every figure of `baseStats`.
pub const IMPACT: &str = "impact";

/// One account's sessions, roles and memberships: guards the cached sessions of its access
/// tokens.
pub fn account(id: i64) -> String {
    format!("account:{id}")
}

/// Whether reads under `tag` must reflect a write on every instance at once, so that each
/// read asks the shared store (Redis) rather than this instance's near copy: an account's
/// sessions, whose revocation is immediate everywhere. Content tags are kept near, coherent
/// through the invalidation feed like whole responses.
pub fn read_exactly(tag: &str) -> bool {
    tag.starts_with("account:")
}

/// The families of entities that have entity tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Organization,
    Campaign,
    Event,
}

impl Entity {
    /// The list tag of the entity's family.
    pub fn list_tag(self) -> &'static str {
        match self {
            Entity::Organization => ORGANIZATIONS,
            Entity::Campaign => CAMPAIGNS,
            Entity::Event => EVENTS,
        }
    }

    /// The tag of one entity, bumped by every write of that entity.
    pub fn tag(self, id: i64) -> String {
        let kind = match self {
            Entity::Organization => "organization",
            Entity::Campaign => "campaign",
            Entity::Event => "event",
        };
        format!("{kind}:{id}")
    }
}

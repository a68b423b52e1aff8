//! Whole responses of public queries, cached before execution.
//!
//! Anonymous readers share one partition of the cache; partner keys share one per set of
//! scopes; signed-in accounts are never cached. Which tags an answer depends on is *collected
//! while it executes* ([`ResponseTags`]): every resolved field names its object type, and each
//! type of the schema is either part of a cacheable family (organizations, campaigns, events
//! as the calendar shows them, the impact dashboard), neutral (`PageInfo`), or never cached — so a type or field added later is
//! uncached until someone decides otherwise, and an answer that touched anything private or
//! live is simply not stored. An answer that depends on the clock (`availability`: notice and
//! advance limits move with it) is kept only until the instant its resolver names
//! ([`ResponseTags::holds_until`]). Single-entity root fields (`campaign(id:)`,
//! `organization(slug:)`, `event(id:)`) scope their subtree to an entity tag (`campaign:42`), so a donation
//! to one campaign does not evict another campaign's page; lists and everything else depend on
//! the family's list tag (`campaigns`), which every write of the family bumps.
//!
//! An entry records the generations of its tags as they were *before* the data was read
//! (list tags before execution, an entity tag before its resolver loads the entity); a hit is
//! served only while they are all still current (`Cache::generations`, answered from memory),
//! so an invalidation makes every entry that depends on the tag unreachable at once, on every
//! instance. Entries live in an in-process near cache (moka, bounded) in front of Redis (when
//! configured), where other instances find them; N concurrent misses of one key run one
//! execution.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::extensions::ResolveInfo;
use async_graphql::{Context, QueryPathNode, QueryPathSegment};
use chrono::{DateTime, Utc};
use sha2::Digest;
use tokio::sync::watch;

use crate::cache::Cache;
use crate::tags;

/// How many families there are.
const FAMILIES: usize = 5;

/// The families of public data a cached answer may contain, each with the tag every write of
/// the family bumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Organization,
    Campaign,
    Impact,
    Event,
    /// Spaces and when they are free (`availability`).
    Space,
}

impl Family {
    const ALL: [Family; FAMILIES] =
        [Family::Organization, Family::Campaign, Family::Impact, Family::Event, Family::Space];

    pub fn list_tag(self) -> &'static str {
        match self {
            Family::Organization => tags::ORGANIZATIONS,
            Family::Campaign => tags::CAMPAIGNS,
            Family::Impact => tags::IMPACT,
            Family::Event => tags::EVENTS,
            Family::Space => tags::BOOKINGS,
        }
    }

    /// The tag of one entity of the family, bumped by every write of that entity (the
    /// dashboard is one entity: its list tag).
    pub fn entity_tag(self, id: i64) -> String {
        match self {
            Family::Organization => tags::Entity::Organization.tag(id),
            Family::Campaign => tags::Entity::Campaign.tag(id),
            Family::Event => tags::Entity::Event.tag(id),
            // Spaces have no tags of their own: every space and booking write bumps the list tag.
            Family::Impact | Family::Space => self.list_tag().to_owned(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The list tags whose generations are read before every cacheable execution.
pub fn list_tags() -> [&'static str; FAMILIES] {
    Family::ALL.map(Family::list_tag)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Family(Family),
    /// Carries no data of its own (`PageInfo`).
    Neutral,
    /// Private, live or time-dependent: an answer containing it is not cached.
    Never,
}

/// What an object type of the schema means to the cache. Types not listed are never cached.
fn type_rule(name: &str) -> Rule {
    match name {
        "Organization" | "OrganizationConnection" | "OrganizationEdge" | "OrganizationContact" | "StageTransition" => {
            Rule::Family(Family::Organization)
        }
        "Campaign"
        | "CampaignConnection"
        | "CampaignEdge"
        | "CampaignProgress"
        | "CampaignUpdate"
        | "BudgetLine"
        | "DonorWallEntry"
        | "DonorWallEntryConnection"
        | "DonorWallEntryEdge" => Rule::Family(Family::Campaign),
        // The dashboard: every write that changes a figure bumps the impact tag.
        "BaseStats" | "ImpactFigures" | "ImpactBucket" | "StageCount" | "EventKindCount" | "PersonTimes" => {
            Rule::Family(Family::Impact)
        }
        // Events as the calendar shows them; of the event types themselves only the fields
        // in `EVENT_FIELDS` (seat counts, attendance and registrations are live).
        "EventCalendarMonth" | "CalendarDay" | "EventConnection" | "EventEdge" | "Venue" | "Question" | "Event"
        | "Training" | "Salon" | "Exhibition" | "ExchangeEvent" | "PromotionEvent" => Rule::Family(Family::Event),
        // Spaces and their free windows; bookings themselves are never cached.
        "Space" | "OpeningPeriod" | "SpaceClosure" | "SpaceAvailability" | "TimeSlot" => Rule::Family(Family::Space),
        "PageInfo" => Rule::Neutral,
        _ => Rule::Never,
    }
}

/// The fields of an event that only the event's own writes change (create, update, status).
const EVENT_FIELDS: &[&str] = &[
    "id",
    "kind",
    "title",
    "titleTraditional",
    "summary",
    "summaryTraditional",
    "description",
    "descriptionTraditional",
    "startsAt",
    "endsAt",
    "timeZone",
    "venue",
    "organizer",
    "status",
    "capacity",
    "groupLimit",
    "registrationOpensAt",
    "registrationClosesAt",
    "cancellationDeadline",
    "requiresApproval",
    "requiresIdentityDocument",
    "audienceTags",
    "questions",
];

/// The `Event` interface (fields selected on it are reported with it as parent) and its kinds.
fn is_event_type(name: &str) -> bool {
    matches!(name, "Event" | "Training" | "Salon" | "Exhibition" | "ExchangeEvent" | "PromotionEvent")
}

/// Fields that opt out although their type is cacheable.
fn field_opts_out(parent_type: &str, field: &str) -> bool {
    if is_event_type(parent_type) {
        return !EVENT_FIELDS.contains(&field);
    }
    matches!(
        (parent_type, field),
        // The reconciliation view (RECONCILE keys): pledges come and go without touching any
        // public figure, and reconcilers want them live.
        ("Campaign", "donations")
            // Memberships are private to the organization.
            | ("Organization", "members")
            // Who did what: staff only, and it grows with every write.
            | ("Organization", "history")
            | ("Campaign", "history")
    )
}

/// Root fields whose answers may be cached (subject to the types they reach).
fn root_field_allowed(field: &str) -> bool {
    matches!(
        field,
        "organization"
            | "organizations"
            | "campaign"
            | "campaigns"
            | "baseStats"
            | "event"
            | "events"
            | "eventCalendar"
            | "availability"
            | "node"
            | "nodes"
            | "__typename"
    )
}

/// The named type inside a qualified return type (`[Campaign!]!` → `Campaign`).
fn base_type(qualified: &str) -> &str {
    qualified.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// The response key of the root field a path starts at.
fn root_key<'a>(path: &'a QueryPathNode<'a>) -> Option<&'a str> {
    let root = path.parents().last().unwrap_or(path);
    match root.segment {
        QueryPathSegment::Name(name) => Some(name),
        QueryPathSegment::Index(_) => None,
    }
}

/// Collects, during one execution, the tags the answer depends on (put into the request's
/// data; the schema's `TrackOutcome` extension reports every resolved field to it).
#[derive(Clone)]
pub struct ResponseTags {
    inner: Arc<Mutex<Collected>>,
    cache: Cache,
}

struct Collected {
    cacheable: bool,
    /// List-tag generations read before execution, by `Family::index`.
    lists: [u64; FAMILIES],
    used_lists: [bool; FAMILIES],
    /// Entity tags and their generations, read before their entity was loaded.
    entities: Vec<(String, u64)>,
    /// Root response keys scoped to an entity of a family.
    scopes: HashMap<String, Family>,
    /// Paths inside a scoped subtree where it reached another family's data.
    escaped: Vec<String>,
    /// A generation could not be read (Redis unreachable): this answer is not kept, but the
    /// query is not remembered as uncacheable either.
    unavailable: bool,
    /// The earliest instant at which a resolver said its part of the answer may change.
    until: Option<DateTime<Utc>>,
}

/// What a kept answer depends on: tags with their generations, and the clock.
pub struct Dependencies {
    pub tags: Vec<String>,
    pub generations: Vec<u64>,
    /// Served only before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl ResponseTags {
    /// `lists` are the generations of `list_tags()`, read before execution starts.
    pub fn new(cache: Cache, lists: &[u64]) -> Self {
        let mut generations = [0; FAMILIES];
        for (slot, g) in generations.iter_mut().zip(lists) {
            *slot = *g;
        }
        Self {
            inner: Arc::new(Mutex::new(Collected {
                cacheable: true,
                lists: generations,
                used_lists: [false; FAMILIES],
                entities: Vec::new(),
                scopes: HashMap::new(),
                escaped: Vec::new(),
                unavailable: false,
                until: None,
            })),
            cache,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called for every resolved field.
    pub fn saw_field(&self, info: &ResolveInfo<'_>) {
        let mut c = self.lock();
        if !c.cacheable {
            return;
        }
        if info.is_for_introspection {
            c.cacheable = false;
            return;
        }
        // `__typename` carries no data; a list's elements are reported with the list type as
        // their parent (`[CalendarDay!]`), and their own fields are checked one by one.
        if info.name == "__typename" || info.parent_type.starts_with('[') {
            return;
        }
        if info.parent_type == "Query" {
            if !root_field_allowed(info.name) {
                c.cacheable = false;
            }
            return;
        }
        if field_opts_out(info.parent_type, info.name) {
            c.cacheable = false;
            return;
        }
        let family = match type_rule(info.parent_type) {
            Rule::Never => {
                c.cacheable = false;
                return;
            }
            Rule::Neutral => None,
            Rule::Family(f) => Some(f),
        };
        let scope =
            if c.scopes.is_empty() { None } else { root_key(info.path_node).and_then(|k| c.scopes.get(k).copied()) };
        let Some(scope) = scope else {
            if let Some(f) = family {
                c.used_lists[f.index()] = true;
            }
            return;
        };
        let path = info.path_node.to_string();
        let parent_path = path.rsplit_once('.').map_or("", |(p, _)| p);
        let escaped = c
            .escaped
            .iter()
            .any(|e| parent_path.strip_prefix(e.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')));
        if let Some(f) = family
            && (f != scope || escaped)
        {
            c.used_lists[f.index()] = true;
        }
        // Leaving the scope's family: nothing below is covered by its entity tag.
        if !escaped
            && let Rule::Family(returned) = type_rule(base_type(info.return_type))
            && returned != scope
        {
            c.escaped.push(path);
        }
    }

    /// Scopes the current root field's answer to one entity; call before loading it.
    pub async fn entity(ctx: &Context<'_>, family: Family, id: i64) {
        let Some(tags) = ctx.data_opt::<ResponseTags>() else { return };
        let key = ctx.path_node.as_ref().filter(|p| p.parent.is_none()).and_then(|p| root_key(p));
        let Some(key) = key else {
            tags.lock().used_lists[family.index()] = true;
            return;
        };
        let tag = family.entity_tag(id);
        match tags.cache.generations(std::slice::from_ref(&tag)).await {
            Some(g) => {
                let mut c = tags.lock();
                c.entities.push((tag, g[0]));
                c.scopes.insert(key.to_owned(), family);
            }
            None => {
                let mut c = tags.lock();
                c.cacheable = false;
                c.unavailable = true;
            }
        }
    }

    /// Whether this execution collects tags for the response cache: only then must a root
    /// field found by another key re-read its entity under the entity's tag.
    pub fn collecting(ctx: &Context<'_>) -> bool {
        ctx.data_opt::<ResponseTags>().is_some()
    }

    /// The root field found no entity: its `null` depends on the family's list tag (a new or
    /// newly visible entity bumps it).
    pub fn missing(ctx: &Context<'_>, family: Family) {
        if let Some(tags) = ctx.data_opt::<ResponseTags>() {
            tags.lock().used_lists[family.index()] = true;
        }
    }

    /// The answer computed now holds only while the clock is before `until` (the next instant at
    /// which the resolver's rules may answer differently with the same data).
    pub fn holds_until(ctx: &Context<'_>, until: DateTime<Utc>) {
        if let Some(tags) = ctx.data_opt::<ResponseTags>() {
            let mut c = tags.lock();
            c.until = Some(c.until.map_or(until, |t| t.min(until)));
        }
    }

    /// Whether the answer went uncached only because the cache could not be asked.
    pub fn cache_unavailable(&self) -> bool {
        self.lock().unavailable
    }

    /// What the answer depends on; `None` when it must not be cached.
    pub fn finish(&self) -> Option<Dependencies> {
        let c = self.lock();
        if !c.cacheable {
            return None;
        }
        let mut tags = Vec::new();
        let mut generations = Vec::new();
        for family in Family::ALL {
            if c.used_lists[family.index()] {
                tags.push(family.list_tag().to_owned());
                generations.push(c.lists[family.index()]);
            }
        }
        for (tag, g) in &c.entities {
            tags.push(tag.clone());
            generations.push(*g);
        }
        Some(Dependencies { tags, generations, until: c.until })
    }
}

pub type Key = [u8; 16];

pub struct CachedResponse {
    pub body: Arc<str>,
    pub etag: String,
    /// The tags the answer read, and their generations when it was computed.
    pub tags: Vec<String>,
    pub generations: Vec<u64>,
    /// Served only before this instant (answers that depend on the clock).
    pub until: Option<DateTime<Utc>>,
    /// The generation session (`Cache::generation_session`) the generations belong to.
    pub session: u64,
}

impl CachedResponse {
    /// The form kept in Redis, where other instances find it: tags, generations (and after
    /// them `@` and the expiry in Unix microseconds), body. An instance that predates expiries
    /// fails to read such an entry's generations and ignores it.
    pub fn encode(&self) -> String {
        let mut generations: Vec<String> = self.generations.iter().map(u64::to_string).collect();
        if let Some(until) = self.until {
            generations.push(format!("@{}", until.timestamp_micros()));
        }
        format!("{}\n{}\n{}", self.tags.join(" "), generations.join(" "), self.body)
    }

    /// An entry from the shared tier, to be validated in generation session `session`.
    pub fn decode(raw: &str, session: u64) -> Option<Self> {
        let mut parts = raw.splitn(3, '\n');
        let tags: Vec<String> = parts.next()?.split_whitespace().map(str::to_owned).collect();
        let mut until = None;
        let mut generations = Vec::new();
        for token in parts.next()?.split_whitespace() {
            match token.strip_prefix('@') {
                Some(micros) => until = Some(DateTime::from_timestamp_micros(micros.parse().ok()?)?),
                None => generations.push(token.parse().ok()?),
            }
        }
        let body: Arc<str> = Arc::from(parts.next()?);
        if tags.len() != generations.len() {
            return None;
        }
        Some(Self { etag: etag(&body), body, tags, generations, until, session })
    }

    /// Whether the clock still lets it be served at `now`.
    pub fn current_at(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

pub struct ResponseCache {
    entries: moka::sync::Cache<Key, Arc<CachedResponse>>,
    flights: Mutex<HashMap<Key, watch::Receiver<()>>>,
    persisted: moka::sync::Cache<String, Arc<str>>,
    /// Keys whose last execution was not cacheable: they skip the single-flight and Redis.
    uncacheable: moka::sync::Cache<Key, ()>,
}

/// Who computes a missing entry: the first caller leads; the others wait for it.
pub enum Flight {
    Leader(FlightGuard),
    Follower(watch::Receiver<()>),
}

/// Ends the flight when dropped, also when the leader fails or is cancelled.
pub struct FlightGuard {
    cache: Arc<ResponseCache>,
    key: Key,
    _done: watch::Sender<()>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.cache.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// The document with what the GraphQL lexer ignores taken out — comments, commas, and
/// whitespace except a single space between two name or number tokens — so the same query
/// formatted differently shares one cache entry. String and block-string literals are kept
/// byte for byte. Two texts with the same result lex to the same tokens.
pub fn normalize(query: &str) -> String {
    fn wordish(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
    }
    let bytes = query.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                pending_space = true;
                i += 1;
            }
            // A byte-order mark is ignored too.
            0xEF if bytes[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                pending_space = true;
                i += 3;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                pending_space = true;
            }
            b'"' => {
                if pending_space && out.last().is_some_and(|&l| wordish(l) || l == b'"') {
                    out.push(b' ');
                }
                pending_space = false;
                let start = i;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                    }
                    i = (i + 3).min(bytes.len());
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(bytes.len());
                }
                out.extend_from_slice(&bytes[start..i]);
            }
            _ => {
                if pending_space && wordish(c) && out.last().is_some_and(|&l| wordish(l) || l == b'"') {
                    out.push(b' ');
                }
                pending_space = false;
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were removed or added, so the text stays valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| query.to_owned())
}

pub fn key(scope: &str, query: &str, operation: Option<&str>, variables: &str) -> Key {
    let query = normalize(query);
    key_of(&[scope, query.as_str(), operation.unwrap_or(""), variables])
}

/// A key from `parts`: each length-prefixed (no two lists of parts give the same bytes),
/// hashed, the first 16 bytes of the digest.
pub fn key_of(parts: &[&str]) -> Key {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

pub fn etag(body: &str) -> String {
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl ResponseCache {
    pub fn new(max_entries: u64, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            entries: moka::sync::Cache::builder().max_capacity(max_entries).time_to_live(ttl).build(),
            flights: Mutex::new(HashMap::new()),
            persisted: moka::sync::Cache::builder().max_capacity(10_000).build(),
            uncacheable: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(ttl).build(),
        })
    }

    /// A cached response whatever its generations; the caller checks them against `tags`.
    pub fn peek(&self, key: &Key) -> Option<Arc<CachedResponse>> {
        self.entries.get(key)
    }

    pub fn put(&self, key: Key, body: Arc<str>, depends: Dependencies, session: u64) -> Arc<CachedResponse> {
        let etag = etag(&body);
        let Dependencies { tags, generations, until } = depends;
        let entry = Arc::new(CachedResponse { body, etag, tags, generations, until, session });
        self.entries.insert(key, entry.clone());
        entry
    }

    /// Keeps an entry found in the shared tier.
    pub fn adopt(&self, key: Key, entry: Arc<CachedResponse>) {
        self.entries.insert(key, entry);
    }

    pub fn mark_uncacheable(&self, key: Key) {
        self.uncacheable.insert(key, ());
    }

    pub fn is_uncacheable(&self, key: &Key) -> bool {
        self.uncacheable.contains_key(key)
    }

    pub fn begin(self: &Arc<Self>, key: Key) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = flights.get(&key) {
            return Flight::Follower(waiting.clone());
        }
        let (done, waiting) = watch::channel(());
        flights.insert(key, waiting);
        Flight::Leader(FlightGuard { cache: self.clone(), key, _done: done })
    }

    /// Apollo automatic persisted queries: the document for a SHA-256 hash, once seen.
    pub fn persisted_query(&self, hash: &str) -> Option<Arc<str>> {
        self.persisted.get(hash)
    }

    pub fn remember_query(&self, hash: String, query: &str) {
        self.persisted.insert(hash, Arc::from(query));
    }
}

/// The key as text, for the shared tier.
pub fn key_hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Persisted queries are named by the SHA-256 of their text (the same digest the service layer
/// keeps for tokens).
pub use crate::service::identity::sha256_hex;

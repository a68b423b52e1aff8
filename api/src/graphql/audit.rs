//! The event log in the schema: `auditLog` for admins, `history` connections on the objects
//! staff look after, and the live streams every message of which carries its cursor
//! (`eventSeats`, `spaceCalendar`, `myActivity`; `campaignProgress` lives with crowdfunding).
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Json, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use entity::domain_event;

use super::connection::{self, PagedConnection};
use super::identity::{Account, viewer};
use super::ids;
use super::loaders::Loaders;
use super::state;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::events::audit::{self, AuditFilter};
use crate::events::{Aggregate, EventKind, Position};
use crate::state::AppState;

pub use super::ids::AUDIT_ENTRY;

/// One thing that happened: who did it, to what, when.
pub struct AuditEntry(pub domain_event::Model);

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::events::ActorKind")]
pub enum ActorKind {
    /// A signed-in account.
    Account,
    /// A partner API key.
    PartnerKey,
    /// Someone not signed in (signing up, for example).
    Anonymous,
    /// A command-line invocation (`seed-demo`, `create-admin`, …).
    Cli,
    /// The server itself (scheduled jobs).
    System,
}

/// Who caused an audit entry.
pub struct AuditActor<'a>(&'a domain_event::Model);

#[Object]
impl AuditActor<'_> {
    async fn kind(&self) -> ActorKind {
        crate::events::ActorKind::parse(&self.0.actor_kind).map(Into::into).unwrap_or(ActorKind::System)
    }

    /// The account, for `ACCOUNT` actors.
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        if self.0.actor_kind != crate::events::ActorKind::Account.as_str() {
            return Ok(None);
        }
        let Some(id) = self.0.actor_id else { return Ok(None) };
        let found = Loaders::of(ctx)?.account.get(id).await?;
        Ok(found.map(Account))
    }

    /// The partner key's ID, for `PARTNER_KEY` actors.
    async fn api_key_id(&self) -> Option<ID> {
        (self.0.actor_kind == crate::events::ActorKind::PartnerKey.as_str())
            .then_some(self.0.actor_id)
            .flatten()
            .map(|id| ids::encode(super::identity::API_KEY, id))
    }

    /// The partner key's name, the CLI command or the system job.
    async fn label(&self) -> Option<&str> {
        self.0.actor_label.as_deref()
    }

    /// The client's address, for requests.
    async fn address(&self) -> Option<&str> {
        self.0.actor_address.as_deref()
    }
}

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ids::encode(AUDIT_ENTRY, self.0.id)
    }

    /// What happened: `aggregate.past_tense`, e.g. `donation.confirmed`. Names never change.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.event_type
    }

    /// The GraphQL type of what it happened to (`Donation`, `Organization`, …).
    async fn aggregate_type(&self) -> &str {
        &self.0.aggregate_type
    }

    /// The global ID of what it happened to.
    async fn aggregate_id(&self) -> ID {
        ids::encode(&self.0.aggregate_type, self.0.aggregate_id)
    }

    async fn actor(&self) -> AuditActor<'_> {
        AuditActor(&self.0)
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// What changed, as recorded (row ids inside are database ids, not global IDs).
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }

    /// Where the entry sits in the log: a subscription's `after` resumes from it.
    async fn cursor(&self) -> String {
        Position::of(&self.0).cursor()
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Entries about this object (a global ID of any type).
    pub aggregate: Option<ID>,
    /// Entries caused by this account or API key (global ID).
    pub actor: Option<ID>,
    /// Entries caused by this kind of actor.
    pub actor_kind: Option<ActorKind>,
    /// Entries of any of these types (`donation.confirmed`, …).
    pub types: Option<Vec<String>>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

fn actor_kind_of(k: ActorKind) -> crate::events::ActorKind {
    use crate::events::ActorKind as K;
    match k {
        ActorKind::Account => K::Account,
        ActorKind::PartnerKey => K::PartnerKey,
        ActorKind::Anonymous => K::Anonymous,
        ActorKind::Cli => K::Cli,
        ActorKind::System => K::System,
    }
}

fn service_filter(filter: AuditLogFilter) -> Result<AuditFilter> {
    let aggregate = match filter.aggregate {
        Some(id) => {
            let (type_name, row) = ids::parse(&id)
                .ok_or_else(|| AppError::bad_input("aggregate", "`aggregate` is not a valid ID").extend())?;
            let aggregate = Aggregate::parse(&type_name).ok_or_else(|| {
                AppError::bad_input("aggregate", format!("{type_name} objects have no audit trail")).extend()
            })?;
            Some((aggregate, row))
        }
        None => None,
    };
    let actor = match (filter.actor, filter.actor_kind) {
        (Some(id), _) => {
            let kind = match ids::parse(&id) {
                Some((t, row)) if t == super::identity::ACCOUNT => (crate::events::ActorKind::Account, row),
                Some((t, row)) if t == super::identity::API_KEY => (crate::events::ActorKind::PartnerKey, row),
                _ => {
                    return Err(AppError::bad_input("actor", "`actor` is the ID of an Account or an ApiKey").extend());
                }
            };
            Some((kind.0, Some(kind.1)))
        }
        (None, Some(kind)) => Some((actor_kind_of(kind), None)),
        (None, None) => None,
    };
    let types = filter.types.unwrap_or_default();
    if types.len() > 50 {
        return Err(AppError::bad_input("types", "at most 50 types").extend());
    }
    if let Some(unknown) = types.iter().find(|t| EventKind::parse(t).is_none()) {
        return Err(AppError::bad_input("types", format!("`{unknown}` is not an event type")).extend());
    }
    Ok(AuditFilter { aggregate, actor, types, from: filter.from, to: filter.to })
}

async fn entries(
    ctx: &Context<'_>,
    filter: AuditFilter,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<PagedConnection<AuditEntry>> {
    connection::list(ctx, connection::args(first, after, last, before), AuditEntry, async |db, page| {
        audit::list(db, &filter, page).await
    })
    .await
}

/// The `history` field of the objects staff look after. Each such object flattens it in
/// (`#[graphql(flatten)]`) right after its `id`, so the field is written once; the type
/// itself never appears in the schema.
pub struct History {
    aggregate: Aggregate,
    id: i64,
    may_see: fn(&Viewer) -> bool,
}

impl History {
    /// Visible to staff.
    pub fn of(aggregate: Aggregate, id: i64) -> Self {
        Self { aggregate, id, may_see: Viewer::can_see_history }
    }

    /// Visible to whoever `may_see` lets through (donations: reconcilers too).
    pub fn visible_to(aggregate: Aggregate, id: i64, may_see: fn(&Viewer) -> bool) -> Self {
        Self { aggregate, id, may_see }
    }
}

#[Object(name = "FlattenedHistory")]
impl History {
    /// What happened to it, newest first: who created, changed, decided or paid what, and
    /// when. `null` unless the viewer is staff (and, for donations, reconcilers).
    #[graphql(complexity = "connection::cost(first, None, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<PagedConnection<AuditEntry>>> {
        if !(self.may_see)(viewer(ctx)) {
            return Ok(None);
        }
        let filter = AuditFilter { aggregate: Some((self.aggregate, self.id)), ..Default::default() };
        entries(ctx, filter, first, after, None, None).await.map(Some)
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Everything that happened, newest first (admins).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<AuditEntry>> {
        viewer(ctx).require_admin("read the audit log").extend()?;
        let filter = service_filter(filter.unwrap_or_default())?;
        entries(ctx, filter, first, after, last, before).await
    }
}

// ---------------------------------------------------------------- live streams

/// The events `wanted` accepts for a subscription: from the client's cursor `after` (what it
/// missed, then live) or from now; with the position the stream starts after.
pub async fn live_events<F>(
    state: &AppState,
    after: Option<&str>,
    wanted: F,
) -> Result<(Position, impl futures::Stream<Item = std::sync::Arc<domain_event::Model>> + Send + 'static + use<F>)>
where
    F: Fn(&domain_event::Model) -> bool + Send + Sync + 'static,
{
    let after = match after {
        Some(cursor) => {
            Some(crate::events::log::resume_from(&state.db, cursor, state.settings.replay_window).await.extend()?)
        }
        None => None,
    };
    crate::events::live::events(&state.log, state.db.clone(), after, wanted).await.extend()
}

/// Something that happened which concerns the signed-in viewer.
#[derive(SimpleObject)]
pub struct ActivityItem {
    /// Pass as `after` when reconnecting.
    pub cursor: String,
    pub event_id: ID,
    /// `registration.promoted`, `booking.confirmed`, `donation.confirmed`, …
    #[graphql(name = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// The global ID of what it is about (a Registration, Booking, Donation, GrantProposal…).
    pub subject_id: ID,
    pub subject_type: String,
}

impl ActivityItem {
    fn of(e: &domain_event::Model) -> Self {
        Self {
            cursor: Position::of(e).cursor(),
            event_id: ids::encode(AUDIT_ENTRY, e.id),
            kind: e.event_type.clone(),
            occurred_at: e.occurred_at,
            subject_id: ids::encode(&e.aggregate_type, e.aggregate_id),
            subject_type: e.aggregate_type.clone(),
        }
    }
}

/// The kinds `myActivity` shows when they concern the viewer as the account named in them.
const PERSONAL_KINDS: &[EventKind] = &[
    EventKind::RegistrationConfirmed,
    EventKind::RegistrationWaitlisted,
    EventKind::RegistrationPending,
    EventKind::RegistrationPromoted,
    EventKind::RegistrationApproved,
    EventKind::RegistrationRejected,
    EventKind::RegistrationCancelled,
    EventKind::BookingRequested,
    EventKind::BookingConfirmed,
    EventKind::BookingRejected,
    EventKind::BookingCancelled,
    EventKind::DonationPledged,
    EventKind::DonationConfirmed,
    EventKind::DonationCancelled,
    EventKind::DonationRefunded,
    EventKind::DonationExpired,
    EventKind::DonationReceived,
    EventKind::GrantReviewerAssigned,
    EventKind::GrantReviewerUnassigned,
    EventKind::MemberAdded,
    EventKind::MemberRoleChanged,
    EventKind::MemberRemoved,
    EventKind::AccountRolesChanged,
];

/// The kinds `myActivity` shows to every member of the organization they are about.
const ORGANIZATION_KINDS: &[EventKind] = &[
    EventKind::GrantProposalAwarded,
    EventKind::GrantProposalDeclined,
    EventKind::CampaignApproved,
    EventKind::CampaignReturned,
    EventKind::OrganizationStageChanged,
];

/// Whether `e` belongs in `viewer`'s activity.
pub fn concerns(viewer: &Viewer, account_id: i64, e: &domain_event::Model) -> bool {
    let Some(kind) = EventKind::parse(&e.event_type) else { return false };
    if e.account_id == Some(account_id) && PERSONAL_KINDS.contains(&kind) {
        return true;
    }
    ORGANIZATION_KINDS.contains(&kind) && e.organization_id.is_some_and(|org| viewer.member_role(org).is_some())
}

#[derive(Default)]
pub struct ActivitySubscription;

#[async_graphql::Subscription]
impl ActivitySubscription {
    /// What concerns the signed-in viewer, as it happens: their registrations confirmed,
    /// waitlisted, promoted or decided; their bookings decided; their donations confirmed or
    /// refunded; reviews assigned to them; and, for members, their organizations' proposals
    /// decided, campaigns approved or returned and stage changes. With `after` (a cursor of an
    /// earlier item) what happened since comes first, in order.
    async fn my_activity(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = ActivityItem> + use<>> {
        let viewer = viewer(ctx).clone();
        let account_id = viewer.require_account().extend()?.id;
        let state = state(ctx)?.clone();
        let (_, items) = live_events(&state, after.as_deref(), move |e| concerns(&viewer, account_id, e)).await?;
        Ok(futures::StreamExt::map(items, |e| ActivityItem::of(&e)))
    }
}

//! Cache coherence: the one table that says which cache tags each kind of event invalidates.
//!
//! The writing instance applies it right after its commit; every instance's follower applies
//! it to the events written elsewhere (other instances, the CLI). A kind that changes nothing
//! cached maps to no tag. Payload keys used here (`campaignId`, `eventId`, …) are written by
//! the commands that append those kinds.
use serde_json::Value;

use super::kinds::EventKind;
use crate::tags::{self, Entity};

fn id_in(payload: &Value, key: &str) -> Option<i64> {
    payload.get(key).and_then(Value::as_i64)
}

/// The tags that `kind` of event about `aggregate_id` invalidates.
pub fn tags(kind: EventKind, aggregate_id: i64, payload: &Value) -> Vec<String> {
    use EventKind::*;
    let entity = |e: Entity, id: Option<i64>| id.map(|id| e.tag(id));
    let campaign = || entity(Entity::Campaign, id_in(payload, "campaignId"));
    let event = || entity(Entity::Event, id_in(payload, "eventId"));
    let list = |t: &str| Some(t.to_owned());
    let found: Vec<Option<String>> = match kind {
        // Accounts, sessions, keys and memberships are never cached.
        AccountCreated
        | AccountSignedIn
        | SessionRefreshed
        | AccountSignedOut
        | AccountSessionsRevoked
        | AccountRolesChanged
        | ApiKeyCreated
        | ApiKeyRevoked
        | MemberInvited
        | MemberAdded
        | MemberRoleChanged
        | MemberRemoved => vec![],

        // A new organization joins lists and the stage counts of the dashboard.
        OrganizationCreated => vec![list(tags::ORGANIZATIONS), list(tags::IMPACT)],
        OrganizationUpdated => vec![entity(Entity::Organization, Some(aggregate_id)), list(tags::ORGANIZATIONS)],
        // Stage counts and stage changes are figures of the dashboard.
        OrganizationStageChanged => {
            vec![entity(Entity::Organization, Some(aggregate_id)), list(tags::ORGANIZATIONS), list(tags::IMPACT)]
        }

        // Space calendars show spaces and their bookings.
        SpaceCreated | SpaceUpdated | BookingRequested | BookingConfirmed | BookingRejected | BookingCancelled => {
            vec![list(tags::BOOKINGS)]
        }

        // Events as calendars show them; events held and their kinds are dashboard figures.
        EventCreated | EventUpdated | EventPublished | EventCancelled | EventCompleted => {
            vec![entity(Entity::Event, Some(aggregate_id)), list(tags::EVENTS), list(tags::IMPACT)]
        }
        // Exhibits, delegations and seats are read live, never from the cache.
        EventExhibitAdded
        | EventExhibitRemoved
        | EventDelegationAdded
        | EventDelegationRemoved
        | EventIdentityDocumentsPurged
        | TrainingProgrammeCreated => vec![],
        RegistrationConfirmed
        | RegistrationWaitlisted
        | RegistrationPending
        | RegistrationPromoted
        | RegistrationApproved
        | RegistrationRejected
        | RegistrationCancelled => vec![],
        // Attendance counts as person-times on the dashboard.
        RegistrationCheckedIn => vec![list(tags::IMPACT), event()],

        // A campaign's page, every list, and the dashboard (campaigns and money raised).
        CampaignCreated | CampaignUpdated | CampaignSubmitted | CampaignApproved | CampaignReturned | CampaignEnded
        | CampaignCancelled => {
            vec![entity(Entity::Campaign, Some(aggregate_id)), list(tags::CAMPAIGNS), list(tags::IMPACT)]
        }
        CampaignUpdatePosted => vec![entity(Entity::Campaign, Some(aggregate_id)), list(tags::CAMPAIGNS)],
        // A pledge changes no public figure; confirmations and refunds move the totals.
        DonationPledged | DonationExpired | DonationReceived | StatementImported => vec![],
        DonationCancelled => vec![campaign(), list(tags::CAMPAIGNS)],
        DonationConfirmed | DonationRefunded => vec![campaign(), list(tags::CAMPAIGNS), list(tags::IMPACT)],

        // Rounds, proposals and reviews are not cached; awards are dashboard figures.
        GrantRoundCreated
        | GrantRoundUpdated
        | GrantProposalCreated
        | GrantProposalUpdated
        | GrantProposalSubmitted
        | GrantProposalWithdrawn
        | GrantReviewerAssigned
        | GrantReviewerUnassigned
        | GrantReviewSaved
        | GrantReviewSubmitted
        | GrantReviewConflictDeclared
        | GrantProposalDeclined => vec![],
        GrantProposalAwarded => vec![list(tags::IMPACT)],

        // Projects, money paid and people served are dashboard figures.
        ServiceProjectCreated | DisbursementRecorded | ServiceRecordAdded => vec![list(tags::IMPACT)],
        ImpactGoalAdded | GoalProgressRecorded => vec![],

        // Documents are looked up by id and never change (see `edge` below for the in-process
        // store of known documents).
        TrustedDocumentRegistered => vec![],

        // The inbox is read uncached.
        NotificationsRead | NotificationPreferencesChanged => vec![],

        // Endpoints are read by admins only, uncached.
        WebhookEndpointCreated
        | WebhookEndpointUpdated
        | WebhookSecretRotated
        | WebhookEndpointDeleted
        | WebhookEndpointDisabled
        | WebhookRedeliveryRequested => vec![],
    };
    found.into_iter().flatten().collect()
}

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
        // A new account or session has nothing cached yet; keys and invitations are read
        // uncached.
        AccountCreated | AccountSignedIn | ApiKeyCreated | ApiKeyRevoked | MemberInvited => vec![],
        // What ends a session (a refresh retires the old one) or changes what a session may
        // do: the account's cached sessions.
        SessionRefreshed | AccountSignedOut | AccountSessionsRevoked | AccountRolesChanged => {
            vec![Some(tags::account(aggregate_id))]
        }
        MemberAdded | MemberRoleChanged | MemberRemoved => vec![id_in(payload, "accountId").map(tags::account)],

        // A new organization joins lists and the stage counts of the dashboard.
        // An applicant becomes the new organization's owner: their sessions' memberships too.
        OrganizationCreated => {
            vec![list(tags::ORGANIZATIONS), list(tags::IMPACT), id_in(payload, "ownerAccountId").map(tags::account)]
        }
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
        // A space's calendar shows the title of an event held there (its reservation).
        EventCreated | EventUpdated | EventPublished | EventCancelled | EventCompleted => {
            vec![
                entity(Entity::Event, Some(aggregate_id)),
                list(tags::EVENTS),
                list(tags::IMPACT),
                list(tags::BOOKINGS),
            ]
        }
        // Delegations are read live on an event, but lists filter by their origin and the
        // dashboard counts them.
        EventDelegationAdded | EventDelegationRemoved => vec![list(tags::EVENTS), list(tags::IMPACT)],
        // Exhibits, sessions and seats are read live, never from the cache.
        EventSessionAdded
        | EventSessionRemoved
        | EventExhibitAdded
        | EventExhibitRemoved
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
        // Passwords, addresses and their tokens are never cached.
        AccountPasswordResetRequested | AccountEmailVerificationRequested | AccountEmailChangeRequested => vec![],
        // A reset or change of password ends sessions; an address changed or verified is what
        // a session shows: the account's cached sessions.
        AccountPasswordReset | AccountPasswordChanged | AccountEmailVerified | AccountEmailChanged => {
            vec![Some(tags::account(aggregate_id))]
        }
        // The donor walls of the campaigns the person gave to show the gifts as anonymous now.
        AccountDeleted => {
            let mut found: Vec<Option<String>> = payload
                .get("campaignIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|id| entity(Entity::Campaign, id.as_i64()))
                .collect();
            found.push(list(tags::CAMPAIGNS));
            // Its sessions end.
            found.push(Some(tags::account(aggregate_id)));
            found
        }

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

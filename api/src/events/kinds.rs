//! Every kind of domain event, with the aggregate it is about and how long it is kept.
//!
//! Names are `aggregate.past_tense` and are part of the public contract (the audit trail,
//! `myActivity`, webhooks): never rename one, add a new kind instead.

/// What an event is about: the type of its aggregate, named as its GraphQL type is (so the
/// aggregate's global ID is `encode(aggregate.type_name(), aggregate_id)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Account,
    ApiKey,
    Organization,
    Space,
    Booking,
    Event,
    TrainingProgramme,
    Registration,
    Campaign,
    Donation,
    GrantRound,
    GrantProposal,
    ServiceProject,
    TrustedDocument,
    WebhookEndpoint,
    StatementImport,
}

impl Aggregate {
    pub const ALL: [Aggregate; 16] = [
        Aggregate::Account,
        Aggregate::ApiKey,
        Aggregate::Organization,
        Aggregate::Space,
        Aggregate::Booking,
        Aggregate::Event,
        Aggregate::TrainingProgramme,
        Aggregate::Registration,
        Aggregate::Campaign,
        Aggregate::Donation,
        Aggregate::GrantRound,
        Aggregate::GrantProposal,
        Aggregate::ServiceProject,
        Aggregate::TrustedDocument,
        Aggregate::WebhookEndpoint,
        Aggregate::StatementImport,
    ];

    pub fn type_name(self) -> &'static str {
        match self {
            Aggregate::Account => "Account",
            Aggregate::ApiKey => "ApiKey",
            Aggregate::Organization => "Organization",
            Aggregate::Space => "Space",
            Aggregate::Booking => "Booking",
            Aggregate::Event => "Event",
            Aggregate::TrainingProgramme => "TrainingProgramme",
            Aggregate::Registration => "Registration",
            Aggregate::Campaign => "Campaign",
            Aggregate::Donation => "Donation",
            Aggregate::GrantRound => "GrantRound",
            Aggregate::GrantProposal => "GrantProposal",
            Aggregate::ServiceProject => "ServiceProject",
            Aggregate::TrustedDocument => "TrustedDocument",
            Aggregate::WebhookEndpoint => "WebhookEndpoint",
            Aggregate::StatementImport => "StatementImport",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.type_name() == name)
    }
}

/// How long an event is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Money, stage changes, awards, roles: what funders and the federation audit. Kept for
    /// `INCUBASE_AUDIT_RETENTION_DAYS` (forever by default).
    Audit,
    /// Everything else: kept for `INCUBASE_EVENT_RETENTION_DAYS` (365 by default).
    Operational,
}

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $aggregate:ident, $retention:ident; )*) => {
        /// A kind of domain event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$( EventKind::$variant, )*];

            /// The stable name stored in the log and shown to clients.
            pub fn name(self) -> &'static str {
                match self { $( EventKind::$variant => $name, )* }
            }

            pub fn aggregate(self) -> Aggregate {
                match self { $( EventKind::$variant => Aggregate::$aggregate, )* }
            }

            pub fn retention(self) -> Retention {
                match self { $( EventKind::$variant => Retention::$retention, )* }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name { $( $name => Some(EventKind::$variant), )* _ => None }
            }
        }
    };
}

event_kinds! {
    // identity and access
    AccountCreated => "account.created", Account, Operational;
    AccountSignedIn => "account.signed_in", Account, Operational;
    SessionRefreshed => "account.session_refreshed", Account, Operational;
    AccountSignedOut => "account.signed_out", Account, Operational;
    /// A refresh token was used twice (it leaked): every session of the account was ended.
    AccountSessionsRevoked => "account.sessions_revoked", Account, Audit;
    AccountRolesChanged => "account.roles_changed", Account, Audit;
    NotificationsRead => "account.notifications_read", Account, Operational;
    NotificationPreferencesChanged => "account.notification_preferences_changed", Account, Operational;
    /// A reset link was mailed (never for an unknown address: those write nothing).
    AccountPasswordResetRequested => "account.password_reset_requested", Account, Operational;
    /// The password was set with a mailed token; every session of the account ended.
    AccountPasswordReset => "account.password_reset", Account, Audit;
    /// The person changed the password (knowing the current one); their other sessions ended.
    AccountPasswordChanged => "account.password_changed", Account, Audit;
    AccountEmailVerificationRequested => "account.email_verification_requested", Account, Operational;
    AccountEmailVerified => "account.email_verified", Account, Operational;
    /// A link to confirm a new address was mailed to it; the address changes when it is used.
    AccountEmailChangeRequested => "account.email_change_requested", Account, Operational;
    /// The new address was confirmed and is the account's email now (the old one was told).
    AccountEmailChanged => "account.email_changed", Account, Audit;
    /// The person deleted the account: what it held is erased or anonymized, its future
    /// registrations and bookings cancelled, its donations kept as anonymous records.
    AccountDeleted => "account.deleted", Account, Audit;
    ApiKeyCreated => "api_key.created", ApiKey, Audit;
    ApiKeyRevoked => "api_key.revoked", ApiKey, Audit;
    /// Someone without an account yet was invited; the membership starts at sign-up.
    MemberInvited => "organization.member_invited", Organization, Operational;
    MemberAdded => "organization.member_added", Organization, Operational;
    MemberRoleChanged => "organization.member_role_changed", Organization, Operational;
    MemberRemoved => "organization.member_removed", Organization, Operational;
    // organizations
    OrganizationCreated => "organization.created", Organization, Audit;
    OrganizationUpdated => "organization.updated", Organization, Operational;
    OrganizationStageChanged => "organization.stage_changed", Organization, Audit;
    // spaces and bookings
    SpaceCreated => "space.created", Space, Operational;
    SpaceUpdated => "space.updated", Space, Operational;
    BookingRequested => "booking.requested", Booking, Operational;
    BookingConfirmed => "booking.confirmed", Booking, Audit;
    BookingRejected => "booking.rejected", Booking, Audit;
    BookingCancelled => "booking.cancelled", Booking, Audit;
    // events
    EventCreated => "event.created", Event, Operational;
    EventUpdated => "event.updated", Event, Operational;
    EventPublished => "event.published", Event, Operational;
    EventCancelled => "event.cancelled", Event, Operational;
    EventCompleted => "event.completed", Event, Operational;
    EventExhibitAdded => "event.exhibit_added", Event, Operational;
    EventExhibitRemoved => "event.exhibit_removed", Event, Operational;
    EventDelegationAdded => "event.delegation_added", Event, Operational;
    EventDelegationRemoved => "event.delegation_removed", Event, Operational;
    /// A training got a dated session (check-in is then per session).
    EventSessionAdded => "event.session_added", Event, Operational;
    /// A training's session without check-ins was removed.
    EventSessionRemoved => "event.session_removed", Event, Operational;
    /// Identity document numbers of an ended event's registrations were erased.
    EventIdentityDocumentsPurged => "event.identity_documents_purged", Event, Audit;
    TrainingProgrammeCreated => "training_programme.created", TrainingProgramme, Operational;
    RegistrationConfirmed => "registration.confirmed", Registration, Operational;
    RegistrationWaitlisted => "registration.waitlisted", Registration, Operational;
    /// Waiting for the organizer's decision (events that require approval).
    RegistrationPending => "registration.pending", Registration, Operational;
    RegistrationPromoted => "registration.promoted", Registration, Operational;
    RegistrationApproved => "registration.approved", Registration, Operational;
    RegistrationRejected => "registration.rejected", Registration, Operational;
    RegistrationCancelled => "registration.cancelled", Registration, Operational;
    RegistrationCheckedIn => "registration.checked_in", Registration, Operational;
    // crowdfunding
    CampaignCreated => "campaign.created", Campaign, Audit;
    CampaignUpdated => "campaign.updated", Campaign, Operational;
    CampaignSubmitted => "campaign.submitted", Campaign, Audit;
    CampaignApproved => "campaign.approved", Campaign, Audit;
    CampaignReturned => "campaign.returned", Campaign, Audit;
    CampaignEnded => "campaign.ended", Campaign, Audit;
    CampaignCancelled => "campaign.cancelled", Campaign, Audit;
    CampaignUpdatePosted => "campaign.update_posted", Campaign, Operational;
    DonationPledged => "donation.pledged", Donation, Audit;
    DonationConfirmed => "donation.confirmed", Donation, Audit;
    DonationCancelled => "donation.cancelled", Donation, Audit;
    DonationRefunded => "donation.refunded", Donation, Audit;
    /// A pledge's money did not arrive within the pledge TTL.
    DonationExpired => "donation.expired", Donation, Audit;
    /// Money arrived that does not count (a late payment, or for a cancelled campaign): held
    /// for staff to accept or refund.
    DonationReceived => "donation.received", Donation, Audit;
    /// A platform or bank statement was applied (its lines' donations have events of their own).
    StatementImported => "statement_import.applied", StatementImport, Audit;
    // venture philanthropy
    GrantRoundCreated => "grant_round.created", GrantRound, Audit;
    GrantRoundUpdated => "grant_round.updated", GrantRound, Audit;
    GrantProposalCreated => "grant_proposal.created", GrantProposal, Operational;
    GrantProposalUpdated => "grant_proposal.updated", GrantProposal, Operational;
    GrantProposalSubmitted => "grant_proposal.submitted", GrantProposal, Audit;
    GrantProposalWithdrawn => "grant_proposal.withdrawn", GrantProposal, Audit;
    GrantReviewerAssigned => "grant_proposal.reviewer_assigned", GrantProposal, Audit;
    GrantReviewerUnassigned => "grant_proposal.reviewer_unassigned", GrantProposal, Audit;
    GrantReviewSaved => "grant_proposal.review_saved", GrantProposal, Operational;
    GrantReviewSubmitted => "grant_proposal.review_submitted", GrantProposal, Audit;
    GrantReviewConflictDeclared => "grant_proposal.review_conflict_declared", GrantProposal, Audit;
    GrantProposalAwarded => "grant_proposal.awarded", GrantProposal, Audit;
    GrantProposalDeclined => "grant_proposal.declined", GrantProposal, Audit;
    // funded projects
    ServiceProjectCreated => "service_project.created", ServiceProject, Audit;
    DisbursementRecorded => "service_project.disbursement_recorded", ServiceProject, Audit;
    ImpactGoalAdded => "service_project.goal_added", ServiceProject, Audit;
    GoalProgressRecorded => "service_project.goal_progress_recorded", ServiceProject, Audit;
    ServiceRecordAdded => "service_project.service_recorded", ServiceProject, Audit;
    // partner frontends
    TrustedDocumentRegistered => "trusted_document.registered", TrustedDocument, Audit;
    // partner webhooks (never delivered by webhooks themselves)
    WebhookEndpointCreated => "webhook_endpoint.created", WebhookEndpoint, Audit;
    WebhookEndpointUpdated => "webhook_endpoint.updated", WebhookEndpoint, Audit;
    WebhookSecretRotated => "webhook_endpoint.secret_rotated", WebhookEndpoint, Audit;
    WebhookEndpointDeleted => "webhook_endpoint.deleted", WebhookEndpoint, Audit;
    /// Every attempt failed for `INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS`: the server disabled it.
    WebhookEndpointDisabled => "webhook_endpoint.disabled", WebhookEndpoint, Audit;
    /// An admin asked for deliveries again (one delivery, or every event since a time).
    WebhookRedeliveryRequested => "webhook_endpoint.redelivery_requested", WebhookEndpoint, Operational;
}

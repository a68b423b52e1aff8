//! The authorization matrix: every mutation in the schema × every kind of caller → allowed,
//! or refused with `UNAUTHENTICATED` (anonymous) / `FORBIDDEN` (everyone else).
//!
//! Driven from one table, `RULES`. A mutation added to the schema without a row fails
//! `every_mutation_has_a_rule`. Every call gets fresh records to act on, so an allowed call
//! must succeed: no error at all, a payload that answers what was asked (not `null`, some
//! value in it), and at least one event written to the log; a refused call writes none.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{campaign_gid, campaign_in, donation_gid};
use crate::helpers::{Credentials, TestAccount, TestApp};
use api::service::identity::{self, ApiScope, Role};
use entity::membership::MemberRole;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    Donor,
    /// Owner of the organization the call is about.
    Member,
    /// Owner of another organization.
    OtherMember,
    Reviewer,
    Manager,
    Admin,
    /// A partner key holding every scope.
    PartnerWithScope,
    /// A partner key holding only READ.
    PartnerWithoutScope,
}

use Who::*;

pub const EVERYONE: &[Who] =
    &[Anonymous, Donor, Member, OtherMember, Reviewer, Manager, Admin, PartnerWithScope, PartnerWithoutScope];
pub const SIGNED_IN: &[Who] = &[Donor, Member, OtherMember, Reviewer, Manager, Admin];
pub const STAFF: &[Who] = &[Manager, Admin];
pub const ADMIN: &[Who] = &[Admin];
pub const ORG_EDITORS: &[Who] = &[Member, Manager, Admin];
pub const ORG_OWNERS_AND_ADMINS: &[Who] = &[Member, Admin];
/// Accounts register themselves; partner keys with REGISTER register named guests.
pub const REGISTRANTS: &[Who] = &[Donor, Member, OtherMember, Reviewer, Manager, Admin, PartnerWithScope];
/// Signed-in accounts and partner keys with DONATE.
pub const DONORS: &[Who] = &[Donor, Member, OtherMember, Reviewer, Manager, Admin, PartnerWithScope];
/// Staff and partner keys with RECONCILE.
pub const RECONCILERS: &[Who] = &[Manager, Admin, PartnerWithScope];

/// mutation name → who may call it.
pub const RULES: &[(&str, &[Who])] = &[
    ("signUp", EVERYONE),
    ("signIn", EVERYONE),
    ("refreshSession", EVERYONE),
    ("signOut", EVERYONE),
    ("createAccount", ADMIN),
    ("setAccountRoles", ADMIN),
    ("createApiKey", ADMIN),
    ("revokeApiKey", ADMIN),
    // Admins, and partners from their servers (secret keys, whatever their scopes); never a
    // publishable key (covered in trusted_documents.rs).
    ("registerTrustedDocuments", &[Admin, PartnerWithScope, PartnerWithoutScope]),
    ("addOrganizationMember", ORG_OWNERS_AND_ADMINS),
    ("changeOrganizationMemberRole", ORG_OWNERS_AND_ADMINS),
    ("removeOrganizationMember", ORG_OWNERS_AND_ADMINS),
    ("createOrganization", SIGNED_IN),
    ("updateOrganization", ORG_EDITORS),
    ("transitionOrganizationStage", STAFF),
    ("createSpace", STAFF),
    ("updateSpace", STAFF),
    // Partner keys alone cannot book: a booking needs an account to answer for it.
    ("createBooking", SIGNED_IN),
    ("createRecurringBooking", SIGNED_IN),
    ("confirmBooking", STAFF),
    ("rejectBooking", STAFF),
    // Member is the requester here.
    ("cancelBooking", &[Member, Manager, Admin]),
    ("createEvent", ORG_EDITORS),
    ("updateEvent", ORG_EDITORS),
    ("transitionEventStatus", ORG_EDITORS),
    ("createTrainingProgramme", ORG_EDITORS),
    ("addExhibit", ORG_EDITORS),
    ("addDelegation", ORG_EDITORS),
    ("addTrainingSession", ORG_EDITORS),
    ("removeTrainingSession", ORG_EDITORS),
    ("removeExhibit", ORG_EDITORS),
    ("removeDelegation", ORG_EDITORS),
    ("register", REGISTRANTS),
    ("cancelRegistration", ORG_EDITORS),
    ("decideRegistration", ORG_EDITORS),
    ("checkIn", ORG_EDITORS),
    ("createCampaign", ORG_EDITORS),
    ("updateCampaign", ORG_EDITORS),
    ("submitCampaign", ORG_EDITORS),
    ("reviewCampaign", STAFF),
    ("endCampaign", STAFF),
    ("cancelCampaign", ORG_EDITORS),
    ("postCampaignUpdate", ORG_EDITORS),
    ("donate", DONORS),
    ("confirmDonation", RECONCILERS),
    ("cancelDonation", RECONCILERS),
    ("refundDonation", RECONCILERS),
    ("recordDonationPayment", RECONCILERS),
    ("acceptLatePayment", RECONCILERS),
    ("importStatement", RECONCILERS),
    ("createGrantRound", STAFF),
    ("updateGrantRound", STAFF),
    ("createGrantProposal", ORG_EDITORS),
    ("updateGrantProposal", ORG_EDITORS),
    ("submitGrantProposal", ORG_EDITORS),
    ("withdrawGrantProposal", ORG_EDITORS),
    ("assignGrantReviewer", STAFF),
    ("unassignGrantReviewer", STAFF),
    // The assigned reviewer only: an admin holds every role but is not assigned.
    ("saveGrantReview", &[Reviewer]),
    ("submitGrantReview", &[Reviewer]),
    ("declareReviewConflict", &[Reviewer]),
    ("awardGrantProposal", STAFF),
    ("declineGrantProposal", STAFF),
    ("createServiceProject", STAFF),
    ("recordDisbursement", STAFF),
    ("addImpactGoal", ORG_EDITORS),
    ("recordGoalProgress", ORG_EDITORS),
    ("addServiceRecord", ORG_EDITORS),
    // Admins signed in themselves: never a partner key, even one with every scope.
    ("createWebhookEndpoint", ADMIN),
    ("updateWebhookEndpoint", ADMIN),
    ("rotateWebhookSecret", ADMIN),
    ("deleteWebhookEndpoint", ADMIN),
    ("redeliverWebhook", ADMIN),
    ("replayWebhookEvents", ADMIN),
    ("markNotificationsRead", SIGNED_IN),
    ("updateNotificationPreferences", SIGNED_IN),
    // The mailbox (and its token) is the proof: anyone may ask and use.
    ("requestPasswordReset", EVERYONE),
    ("resetPassword", EVERYONE),
    ("verifyEmail", EVERYONE),
    // One's own account, signed in (with the password where it matters).
    ("changePassword", SIGNED_IN),
    ("requestEmailVerification", SIGNED_IN),
    ("requestEmailChange", SIGNED_IN),
    // Last: every allowed caller's account is gone afterwards.
    ("deleteAccount", SIGNED_IN),
];

/// What the calls act on, made once per test.
pub struct Fixture {
    pub org_id: String,
    pub victim: TestAccount,
    pub throwaway_key_id: String,
    pub callers: Vec<(Who, Credentials)>,
    /// A space that needs approval, and the account whose requests are cancelled.
    pub space_id: String,
    pub space_row: i64,
    pub member_id: i64,
    pub events: EventFixture,
    pub grants: GrantFixture,
    pub reviewer: TestAccount,
    pub sign_in_account: i64,
}

/// A round open now, a draft and an under-review proposal of the fixture organization.
pub struct GrantFixture {
    pub round_id: String,
    pub org_row: i64,
    pub draft_id: String,
    pub spare_reviewer: TestAccount,
    pub project_id: String,
    pub goal_id: String,
}

fn gid(type_name: &str, id: i64) -> String {
    api::graphql::ids::encode(type_name, id).to_string()
}

async fn grant_fixture(app: &TestApp, org_row: i64) -> GrantFixture {
    use api::service::grants;
    let ctx = app.state.ctx();
    let now = chrono::Utc::now();
    let rubric = grants::Rubric {
        min_score: 0,
        max_score: 10,
        criteria: vec![grants::Criterion { key: "need".into(), name: "需求".into(), weight: 1 }],
    };
    let round = grants::create_round(
        ctx,
        &crate::helpers::actor(),
        grants::RoundInput {
            title: "矩阵测试创投".into(),
            description: String::new(),
            budget_fen: 100_000_000,
            per_proposal_cap_fen: 1_000_000,
            opens_at: now - chrono::Duration::days(1),
            closes_at: now + chrono::Duration::days(7),
            review_ends_at: now + chrono::Duration::days(14),
            results_at: now + chrono::Duration::days(21),
            eligible_stages: vec![],
            rubric,
        },
    )
    .await
    .expect("round");
    let new = |title: &str| grants::ProposalInput { title: title.into(), requested_fen: 10_000, ..Default::default() };
    let draft = grants::create_proposal(ctx, &crate::helpers::actor(), round.round.id, org_row, None, new("草稿"))
        .await
        .expect("draft");
    let project = api::service::projects::create_project(
        ctx,
        &crate::helpers::actor(),
        api::service::projects::NewProject {
            organization_id: Some(org_row),
            title: "矩阵测试项目".into(),
            description: String::new(),
            funding: api::service::projects::Funding::GovernmentPurchase {
                purchaser: "某街道办事处".into(),
                purchaser_kind: entity::service_project::PurchaserKind::StreetOffice,
                contract_number: "AUTHZ-1".into(),
                contract_fen: 100_000_000,
            },
            starts_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            ends_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
            budget_lines: vec![],
        },
    )
    .await
    .expect("project");
    let goal =
        api::service::projects::add_goal(ctx, &crate::helpers::actor(), project.project.id, "服务人次", "人次", 100)
            .await
            .expect("goal");
    GrantFixture {
        project_id: gid("ServiceProject", project.project.id),
        goal_id: gid("ImpactGoal", goal.id),
        round_id: gid("GrantRound", round.round.id),
        org_row,
        draft_id: gid("GrantProposal", draft.proposal.id),
        spare_reviewer: app.account("spare-reviewer", &[Role::Reviewer]).await,
    }
}

/// Events of the fixture organization, for the event mutations.
pub struct EventFixture {
    pub draft: String,
    pub exhibition: String,
    pub exchange: String,
    /// Published, starting in 30 minutes: open for registration and check-in.
    pub open: String,
    /// Published, requiring approval.
    pub approval: String,
}

async fn event_fixture(app: &TestApp, org: &str) -> EventFixture {
    use crate::events::{CREATE_EVENT, at, published_event};
    use chrono::Duration;
    let draft = |kind: &'static str| {
        app.ok(
            CREATE_EVENT,
            json!({ "input": { "kind": kind, "organizerId": org, "title": "矩阵活动",
            "startsAt": at(Duration::days(3)), "endsAt": at(Duration::days(3) + Duration::hours(2)),
            "venue": { "address": "思明区" }, "capacity": 50 } }),
        )
    };
    let id = |v: Value| v["createEvent"]["event"]["id"].as_str().expect("id").to_owned();
    let draft_id = id(draft("SALON").await);
    let exhibition = id(draft("EXHIBITION").await);
    let exchange = id(draft("EXCHANGE").await);
    let open = published_event(app, org, Duration::minutes(30), json!({ "capacity": 50 })).await;
    let approval = published_event(app, org, Duration::days(2), json!({ "requiresApproval": true })).await;
    EventFixture { draft: draft_id, exhibition, exchange, open, approval }
}

fn unique(label: &str) -> String {
    format!("{label}-{}@test.incubase.cn", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn fixture(app: &TestApp) -> Fixture {
    let ctx = app.state.ctx();
    let org = crate::organizations::create(app, json!({ "name": "矩阵测试组织" })).await;
    let other = crate::organizations::create(app, json!({ "name": "另一个组织" })).await;
    let org_id = org["id"].as_str().expect("id").to_owned();
    let org_row = api::graphql::ids::parse(&org_id).expect("global id").1;
    let other_row = api::graphql::ids::parse(other["id"].as_str().expect("id")).expect("global id").1;

    let member = app.account("member", &[Role::Donor]).await;
    let other_member = app.account("other", &[Role::Donor]).await;
    let victim = app.account("victim", &[Role::Donor]).await;
    identity::add_member(ctx, &crate::helpers::actor(), org_row, &member.email, MemberRole::Owner, 0)
        .await
        .expect("member");
    identity::add_member(ctx, &crate::helpers::actor(), org_row, &victim.email, MemberRole::Editor, 0)
        .await
        .expect("victim");
    identity::add_member(ctx, &crate::helpers::actor(), other_row, &other_member.email, MemberRole::Owner, 0)
        .await
        .expect("other");
    // Memberships are read when a token is presented, so the existing tokens see them.

    let with_scope = identity::create_api_key(
        ctx,
        &crate::helpers::actor(),
        identity::NewApiKey::secret("全权限伙伴", &ApiScope::ALL, None),
        0,
    )
    .await
    .expect("key");
    let without_scope =
        identity::create_api_key(ctx, &crate::helpers::actor(), identity::NewApiKey::secret("只读伙伴", &[], None), 0)
            .await
            .expect("key");
    let throwaway =
        identity::create_api_key(ctx, &crate::helpers::actor(), identity::NewApiKey::secret("待吊销", &[], None), 0)
            .await
            .expect("key");
    let sign_in = app.account("signin", &[Role::Donor]).await;
    let reviewer = app.account("reviewer", &[Role::Reviewer]).await;
    let grants = grant_fixture(app, org_row).await;
    let sign_in_account = sign_in.id;

    let callers = vec![
        (Anonymous, Credentials::anonymous()),
        (Donor, Credentials::account(&app.account("donor", &[Role::Donor]).await)),
        (Member, Credentials::account(&member)),
        (OtherMember, Credentials::account(&other_member)),
        (Reviewer, Credentials::account(&reviewer)),
        (Manager, Credentials::account(&app.manager)),
        (Admin, Credentials::account(&app.account("admin", &[Role::Admin]).await)),
        (PartnerWithScope, Credentials::api_key(&with_scope.secret)),
        (PartnerWithoutScope, Credentials::api_key(&without_scope.secret)),
    ];
    let space = api::service::space::create(
        ctx,
        &crate::helpers::actor(),
        api::service::space::SpaceInput {
            name: Some("矩阵测试培训室".into()),
            kind: Some(entity::space::SpaceKind::TrainingRoom),
            capacity: Some(30),
            requires_approval: Some(true),
            hours: Some(
                [
                    chrono::Weekday::Mon,
                    chrono::Weekday::Tue,
                    chrono::Weekday::Wed,
                    chrono::Weekday::Thu,
                    chrono::Weekday::Fri,
                    chrono::Weekday::Sat,
                    chrono::Weekday::Sun,
                ]
                .into_iter()
                .map(|weekday| api::service::space::OpeningHours { weekday, opens: 0, closes: 1440 })
                .collect(),
            ),
            ..Default::default()
        },
    )
    .await
    .expect("space");
    let events = event_fixture(app, &org_id).await;
    Fixture {
        space_id: api::graphql::ids::encode("Space", space.space.id).to_string(),
        space_row: space.space.id,
        member_id: member.id,
        events,
        org_id,
        victim,
        throwaway_key_id: api::graphql::ids::encode("ApiKey", throwaway.key.id).to_string(),
        callers,
        grants,
        reviewer,
        sign_in_account,
    }
}

/// The document and variables of one call of `mutation`.
async fn call(app: &TestApp, f: &Fixture, mutation: &str, who: Who) -> (&'static str, Value) {
    match mutation {
        "signUp" => (
            "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
            json!({ "i": { "email": unique("signup"), "password": "correct-horse-42", "displayName": "新用户" } }),
        ),
        "signIn" => (
            // A fresh account each time: sign-ins are limited per account.
            "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }",
            json!({ "i": { "email": app.account("signin", &[Role::Donor]).await.email, "password": "correct-horse-42" } }),
        ),
        "refreshSession" => (
            "mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { accessToken } }",
            json!({ "i": { "refreshToken": fresh_refresh_token(app, f).await } }),
        ),
        "signOut" => (
            "mutation($i: SignOutInput!) { signOut(input: $i) { revoked } }",
            json!({ "i": { "refreshToken": fresh_refresh_token(app, f).await } }),
        ),
        "createAccount" => (
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { id } } }",
            json!({ "i": { "email": unique("staff"), "password": "correct-horse-42", "displayName": "职员", "roles": ["MANAGER"] } }),
        ),
        "setAccountRoles" => (
            "mutation($i: SetAccountRolesInput!) { setAccountRoles(input: $i) { account { id } } }",
            json!({ "i": { "accountId": f.victim.global_id, "roles": ["DONOR", "REVIEWER"] } }),
        ),
        "createApiKey" => (
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "name": "新伙伴", "scopes": ["REGISTER"] } }),
        ),
        "revokeApiKey" => (
            "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { id } } }",
            json!({ "i": { "id": f.throwaway_key_id } }),
        ),
        "registerTrustedDocuments" => {
            // A new document each call: registering a known one again records nothing.
            let document = format!("query MatrixCount{} {{ campaigns {{ totalCount }} }}", next_number());
            let manifest = json!({ identity::sha256_hex(&document): document }).to_string();
            (
                "mutation($i: RegisterTrustedDocumentsInput!) { registerTrustedDocuments(input: $i) { registered } }",
                json!({ "i": { "manifest": manifest } }),
            )
        }
        "addOrganizationMember" => (
            "mutation($i: AddOrganizationMemberInput!) { addOrganizationMember(input: $i) { invitation { email } } }",
            json!({ "i": { "organizationId": f.org_id, "email": unique("invitee"), "role": "EDITOR" } }),
        ),
        "changeOrganizationMemberRole" => (
            "mutation($i: ChangeOrganizationMemberRoleInput!) { changeOrganizationMemberRole(input: $i) { member { role } } }",
            json!({ "i": { "organizationId": f.org_id, "accountId": f.victim.global_id, "role": "EDITOR" } }),
        ),
        "removeOrganizationMember" => (
            "mutation($i: RemoveOrganizationMemberInput!) { removeOrganizationMember(input: $i) { removedAccountId } }",
            json!({ "i": { "organizationId": f.org_id, "accountId": fresh_member(app, f).await } }),
        ),
        "createOrganization" => (
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": format!("申请组织{}", uuid::Uuid::new_v4().simple()) } }),
        ),
        "updateOrganization" => (
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "id": f.org_id, "description": "更新简介" } }),
        ),
        "transitionOrganizationStage" => (
            "mutation($i: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $i) { organization { id } } }",
            json!({ "i": { "id": fresh_organization(app).await, "stage": "APPLIED" } }),
        ),
        "createSpace" => (
            "mutation($i: CreateSpaceInput!) { createSpace(input: $i) { space { id } } }",
            json!({ "i": { "name": "新会议室", "kind": "MEETING_ROOM", "capacity": 12 } }),
        ),
        "updateSpace" => (
            "mutation($i: UpdateSpaceInput!) { updateSpace(input: $i) { space { id } } }",
            json!({ "i": { "id": f.space_id, "capacity": 32 } }),
        ),
        "createBooking" => {
            let start = next_slot(3);
            (
                "mutation($i: CreateBookingInput!) { createBooking(input: $i) { booking { id } } }",
                json!({ "i": { "spaceId": f.space_id, "startsAt": start.to_rfc3339(),
                    "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(), "attendees": 5, "purpose": "矩阵测试" } }),
            )
        }
        "confirmBooking" => (
            "mutation($i: ConfirmBookingInput!) { confirmBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await } }),
        ),
        "rejectBooking" => (
            "mutation($i: DecideBookingInput!) { rejectBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await, "reason": "测试" } }),
        ),
        "createRecurringBooking" => {
            let start = next_slot(40);
            (
                "mutation($i: CreateRecurringBookingInput!) { createRecurringBooking(input: $i) { bookings { id } } }",
                json!({ "i": { "spaceId": f.space_id, "startsAt": start.to_rfc3339(),
                    "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(), "attendees": 5, "purpose": "矩阵测试",
                    "recurrence": { "frequency": "WEEKLY", "count": 2 } } }),
            )
        }
        "cancelBooking" => (
            "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await, "reason": "测试" } }),
        ),
        "createEvent" => (
            "mutation($i: CreateEventInput!) { createEvent(input: $i) { event { id } } }",
            json!({ "i": { "kind": "SALON", "organizerId": f.org_id, "title": "新沙龙",
                "startsAt": "2027-03-08T01:00:00Z", "endsAt": "2027-03-08T03:00:00Z",
                "venue": { "address": "湖里区" }, "capacity": 30 } }),
        ),
        "updateEvent" => (
            "mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { id } } }",
            json!({ "i": { "id": f.events.draft, "summary": "更新摘要" } }),
        ),
        "transitionEventStatus" => (
            "mutation($i: TransitionEventStatusInput!) { transitionEventStatus(input: $i) { event { id } } }",
            json!({ "i": { "id": fresh_draft_event(app, f).await, "status": "PUBLISHED" } }),
        ),
        "createTrainingProgramme" => (
            "mutation($i: CreateTrainingProgrammeInput!) { createTrainingProgramme(input: $i) { programme { id } } }",
            json!({ "i": { "organizerId": f.org_id, "title": "社工实务培训" } }),
        ),
        "addExhibit" => (
            "mutation($i: AddExhibitInput!) { addExhibit(input: $i) { exhibit { id } } }",
            json!({ "i": { "eventId": f.events.exhibition, "title": "展品" } }),
        ),
        "addTrainingSession" => {
            let (training, starts) = fresh_training(app, f).await;
            (
                "mutation($i: AddTrainingSessionInput!) { addTrainingSession(input: $i) { session { id } } }",
                json!({ "i": { "eventId": api::graphql::ids::encode("Event", training).to_string(),
                    "startsAt": (starts + chrono::Duration::hours(1)).to_rfc3339(),
                    "endsAt": (starts + chrono::Duration::hours(2)).to_rfc3339() } }),
            )
        }
        "removeTrainingSession" => {
            let (training, starts) = fresh_training(app, f).await;
            let new = api::service::event::NewSession {
                event_id: training,
                topic: None,
                starts_at: starts + chrono::Duration::hours(1),
                ends_at: starts + chrono::Duration::hours(2),
            };
            let session = api::service::event::add_session(app.state.ctx(), &crate::helpers::actor(), new)
                .await
                .expect("session");
            (
                "mutation($i: RemoveTrainingSessionInput!) { removeTrainingSession(input: $i) { removedSessionId } }",
                json!({ "i": { "id": api::graphql::ids::encode("TrainingSession", session.id).to_string() } }),
            )
        }
        "addDelegation" => (
            "mutation($i: AddDelegationInput!) { addDelegation(input: $i) { delegation { id } } }",
            json!({ "i": { "eventId": f.events.exchange, "origin": "HONG_KONG", "name": "香港代表团", "leaderName": "陈女士" } }),
        ),
        "removeExhibit" => {
            // A fresh exhibit per call: an allowed caller removes it.
            let event = api::graphql::ids::parse(&f.events.exhibition).expect("id").1;
            let row = api::service::event::add_exhibit(
                app.state.ctx(),
                &crate::helpers::actor(),
                api::service::event::NewExhibit {
                    event_id: event,
                    title: "待移除展品".into(),
                    story: None,
                    media_urls: vec![],
                    organization_id: None,
                    project_name: None,
                },
            )
            .await
            .expect("exhibit");
            (
                "mutation($i: RemoveExhibitInput!) { removeExhibit(input: $i) { removedExhibitId } }",
                json!({ "i": { "id": api::graphql::ids::encode("Exhibit", row.id).to_string() } }),
            )
        }
        "removeDelegation" => {
            let event = api::graphql::ids::parse(&f.events.exchange).expect("id").1;
            let row = api::service::event::add_delegation(
                app.state.ctx(),
                &crate::helpers::actor(),
                api::service::event::NewDelegation {
                    event_id: event,
                    origin: entity::delegation::Origin::Macao,
                    name: "待移除代表团".into(),
                    name_traditional: None,
                    leader_name: "何女士".into(),
                    members: vec![],
                    host_organization_ids: vec![],
                },
            )
            .await
            .expect("delegation");
            (
                "mutation($i: RemoveDelegationInput!) { removeDelegation(input: $i) { removedDelegationId } }",
                json!({ "i": { "id": api::graphql::ids::encode("Delegation", row.id).to_string() } }),
            )
        }
        "register" => {
            // Accounts register themselves; partner keys register named guests.
            let input = if matches!(who, PartnerWithScope | PartnerWithoutScope | Anonymous) {
                json!({ "eventId": f.events.open, "privacyConsent": true,
                    "guest": { "name": "访客", "phone": format!("138{:08}", next_number()) } })
            } else {
                json!({ "eventId": f.events.open, "privacyConsent": true })
            };
            ("mutation($i: RegisterInput!) { register(input: $i) { registration { id } } }", json!({ "i": input }))
        }
        "cancelRegistration" => (
            "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { id } } }",
            json!({ "i": { "id": fresh_registration(app, &f.events.open).await.0 } }),
        ),
        "decideRegistration" => (
            "mutation($i: DecideRegistrationInput!) { decideRegistration(input: $i) { registration { id } } }",
            json!({ "i": { "id": fresh_registration(app, &f.events.approval).await.0, "accept": true } }),
        ),
        "checkIn" => (
            "mutation($i: CheckInInput!) { checkIn(input: $i) { alreadyCheckedIn } }",
            json!({ "i": { "eventId": f.events.open, "ticketCode": fresh_registration(app, &f.events.open).await.1 } }),
        ),
        "createCampaign" => (
            "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "organizationId": f.org_id, "title": "矩阵项目", "goalFen": 100_000,
                "startsAt": chrono::Utc::now().to_rfc3339(), "endsAt": (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339() } }),
        ),
        "updateCampaign" => (
            "mutation($i: UpdateCampaignInput!) { updateCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "id": campaign_gid(campaign_in(app, org_row(f), "DRAFT").await), "story": "新故事" } }),
        ),
        "submitCampaign" => (
            "mutation($i: CampaignIdInput!) { submitCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "id": campaign_gid(campaign_in(app, org_row(f), "DRAFT").await) } }),
        ),
        "reviewCampaign" => (
            "mutation($i: ReviewCampaignInput!) { reviewCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "id": campaign_gid(campaign_in(app, org_row(f), "PENDING_REVIEW").await), "approve": true } }),
        ),
        "endCampaign" => (
            "mutation($i: CampaignIdInput!) { endCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "id": campaign_gid(campaign_in(app, org_row(f), "ACTIVE").await) } }),
        ),
        "cancelCampaign" => (
            "mutation($i: CampaignIdInput!) { cancelCampaign(input: $i) { campaign { id } } }",
            json!({ "i": { "id": campaign_gid(campaign_in(app, org_row(f), "DRAFT").await) } }),
        ),
        "postCampaignUpdate" => (
            "mutation($i: PostCampaignUpdateInput!) { postCampaignUpdate(input: $i) { update { title } } }",
            json!({ "i": { "campaignId": campaign_gid(campaign_in(app, org_row(f), "ACTIVE").await), "title": "进展", "body": "顺利" } }),
        ),
        "donate" => {
            let mut input = donation_input_for(&campaign_gid(campaign_in(app, org_row(f), "ACTIVE").await));
            input["donorName"] = json!("矩阵捐赠人");
            ("mutation($i: DonateInput!) { donate(input: $i) { donation { id } } }", json!({ "i": input }))
        }
        "confirmDonation" => (
            "mutation($i: ConfirmDonationInput!) { confirmDonation(input: $i) { donation { id } } }",
            json!({ "i": { "id": donation_gid(pledge(app, f, false).await) } }),
        ),
        "cancelDonation" => (
            "mutation($i: DonationIdInput!) { cancelDonation(input: $i) { donation { id } } }",
            json!({ "i": { "id": donation_gid(pledge(app, f, false).await) } }),
        ),
        "refundDonation" => (
            "mutation($i: RefundDonationInput!) { refundDonation(input: $i) { donation { id } } }",
            json!({ "i": { "id": donation_gid(pledge(app, f, true).await) } }),
        ),
        "recordDonationPayment" => (
            "mutation($i: ConfirmDonationInput!) { recordDonationPayment(input: $i) { outcome donation { id } } }",
            json!({ "i": { "id": donation_gid(pledge(app, f, false).await) } }),
        ),
        "acceptLatePayment" => (
            "mutation($i: DonationIdInput!) { acceptLatePayment(input: $i) { donation { id } } }",
            json!({ "i": { "id": donation_gid(late_payment(app, f).await) } }),
        ),
        "importStatement" => {
            let pledged = pledge(app, f, false).await;
            let client_key =
                api::service::crowdfunding::find_donation(&app.state.db, pledged).await.expect("pledge").client_key;
            let content =
                json!([{ "lineId": format!("L{pledged}"), "clientKey": client_key, "amountFen": 100 }]).to_string();
            (
                "mutation($i: ImportStatementInput!) { importStatement(input: $i) { report { confirmedCount } } }",
                json!({ "i": { "profile": "JSON", "content": content } }),
            )
        }
        "createGrantRound" => (
            "mutation($i: CreateGrantRoundInput!) { createGrantRound(input: $i) { round { id } } }",
            json!({ "i": { "title": "新一轮创投", "budgetFen": 1_000_000, "perProposalCapFen": 100_000,
                "opensAt": "2027-01-01T00:00:00Z", "closesAt": "2027-02-01T00:00:00Z",
                "reviewEndsAt": "2027-03-01T00:00:00Z", "resultsAt": "2027-03-15T00:00:00Z",
                "rubric": { "minScore": 0, "maxScore": 5, "criteria": [{ "key": "need", "name": "需求", "weight": 1 }] } } }),
        ),
        "updateGrantRound" => (
            "mutation($i: UpdateGrantRoundInput!) { updateGrantRound(input: $i) { round { id } } }",
            json!({ "i": { "id": f.grants.round_id, "description": "更新说明" } }),
        ),
        "createGrantProposal" => (
            "mutation($i: CreateGrantProposalInput!) { createGrantProposal(input: $i) { proposal { id } } }",
            json!({ "i": { "roundId": f.grants.round_id, "organizationId": f.org_id, "title": "新申报", "requestedFen": 5_000 } }),
        ),
        "updateGrantProposal" => (
            "mutation($i: UpdateGrantProposalInput!) { updateGrantProposal(input: $i) { proposal { id } } }",
            json!({ "i": { "id": f.grants.draft_id, "summary": "修改摘要" } }),
        ),
        "submitGrantProposal" | "withdrawGrantProposal" => {
            // A fresh draft each call, so every allowed caller meets a proposal it can move.
            let fresh = api::service::grants::create_proposal(
                app.state.ctx(),
                &crate::helpers::actor(),
                api::graphql::ids::parse(&f.grants.round_id).expect("id").1,
                f.grants.org_row,
                None,
                api::service::grants::ProposalInput {
                    title: "临时申报".into(),
                    requested_fen: 1_000,
                    ..Default::default()
                },
            )
            .await
            .expect("draft");
            let document = if mutation == "submitGrantProposal" {
                "mutation($i: GrantProposalIdInput!) { submitGrantProposal(input: $i) { proposal { id } } }"
            } else {
                "mutation($i: GrantProposalIdInput!) { withdrawGrantProposal(input: $i) { proposal { id } } }"
            };
            (document, json!({ "i": { "id": gid("GrantProposal", fresh.proposal.id) } }))
        }
        "assignGrantReviewer" => (
            "mutation($i: GrantReviewerInput!) { assignGrantReviewer(input: $i) { review { id } } }",
            json!({ "i": { "proposalId": fresh_proposal(app, f, None).await,
                "reviewerId": f.grants.spare_reviewer.global_id } }),
        ),
        "unassignGrantReviewer" => (
            "mutation($i: GrantReviewerInput!) { unassignGrantReviewer(input: $i) { removedReviewId } }",
            json!({ "i": { "proposalId": fresh_proposal(app, f, Some(f.grants.spare_reviewer.id)).await,
                "reviewerId": f.grants.spare_reviewer.global_id } }),
        ),
        "saveGrantReview" => (
            "mutation($i: SaveGrantReviewInput!) { saveGrantReview(input: $i) { review { id } } }",
            json!({ "i": { "proposalId": fresh_proposal(app, f, Some(f.reviewer.id)).await,
                "scores": [{ "criterion": "need", "score": 4 }] } }),
        ),
        "submitGrantReview" => (
            "mutation($i: SaveGrantReviewInput!) { submitGrantReview(input: $i) { review { id } } }",
            json!({ "i": { "proposalId": fresh_proposal(app, f, Some(f.reviewer.id)).await,
                "scores": [{ "criterion": "need", "score": 5 }] } }),
        ),
        "declareReviewConflict" => (
            "mutation($i: DeclareReviewConflictInput!) { declareReviewConflict(input: $i) { review { id } } }",
            json!({ "i": { "proposalId": fresh_proposal(app, f, Some(f.reviewer.id)).await, "reason": "曾为该机构提供咨询" } }),
        ),
        "awardGrantProposal" => (
            "mutation($i: AwardGrantProposalInput!) { awardGrantProposal(input: $i) { proposal { id } } }",
            json!({ "i": { "id": fresh_proposal(app, f, Some(f.grants.spare_reviewer.id)).await, "amountFen": 5_000 } }),
        ),
        "declineGrantProposal" => (
            "mutation($i: DeclineGrantProposalInput!) { declineGrantProposal(input: $i) { proposal { id } } }",
            json!({ "i": { "id": fresh_proposal(app, f, Some(f.grants.spare_reviewer.id)).await, "note": "未入选" } }),
        ),
        "createServiceProject" => (
            "mutation($i: CreateServiceProjectInput!) { createServiceProject(input: $i) { project { id } } }",
            json!({ "i": { "title": "新购买项目", "source": "GOVERNMENT_PURCHASE", "organizationId": f.org_id,
                "purchaser": "某社区居委会", "purchaserKind": "COMMUNITY", "contractNumber": format!("AUTHZ-{}", next_number()),
                "contractFen": 100_000, "startsOn": "2026-01-01", "endsOn": "2026-06-30" } }),
        ),
        "recordDisbursement" => (
            "mutation($i: RecordDisbursementInput!) { recordDisbursement(input: $i) { project { id } } }",
            json!({ "i": { "projectId": f.grants.project_id, "amountFen": 100, "paidOn": "2026-02-01" } }),
        ),
        "addImpactGoal" => (
            "mutation($i: AddImpactGoalInput!) { addImpactGoal(input: $i) { goal { id } } }",
            json!({ "i": { "projectId": f.grants.project_id, "goalType": "培训场次", "unit": "场", "target": 10 } }),
        ),
        "recordGoalProgress" => (
            "mutation($i: RecordGoalProgressInput!) { recordGoalProgress(input: $i) { goal { id } } }",
            json!({ "i": { "goalId": f.grants.goal_id, "achieved": 20, "reportedOn": "2026-03-01" } }),
        ),
        "addServiceRecord" => (
            "mutation($i: AddServiceRecordInput!) { addServiceRecord(input: $i) { record { servedOn } } }",
            json!({ "i": { "projectId": f.grants.project_id, "servedOn": "2026-03-08", "activity": "讲座",
                "people": { "women": 10 } } }),
        ),
        "createWebhookEndpoint" => (
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }",
            json!({ "i": { "url": WEBHOOK_URL, "eventTypes": [WEBHOOK_TYPE] } }),
        ),
        "updateWebhookEndpoint" => (
            "mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { endpoint { enabled } } }",
            json!({ "i": { "id": fresh_webhook(app).await.0, "enabled": false } }),
        ),
        "rotateWebhookSecret" => (
            "mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { secret } }",
            json!({ "i": { "id": fresh_webhook(app).await.0 } }),
        ),
        "deleteWebhookEndpoint" => (
            "mutation($i: DeleteWebhookEndpointInput!) { deleteWebhookEndpoint(input: $i) { deletedId } }",
            json!({ "i": { "id": fresh_webhook(app).await.0 } }),
        ),
        "redeliverWebhook" => (
            "mutation($i: RedeliverWebhookInput!) { redeliverWebhook(input: $i) { delivery { status } } }",
            json!({ "i": { "deliveryId": fresh_webhook(app).await.1 } }),
        ),
        "replayWebhookEvents" => (
            "mutation($i: ReplayWebhookEventsInput!) { replayWebhookEvents(input: $i) { queued } }",
            json!({ "i": { "endpointId": fresh_webhook(app).await.0, "since": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339() } }),
        ),
        "markNotificationsRead" => {
            // Something unread to mark, for whoever has an inbox.
            fresh_notification(app, f, who).await;
            (
                "mutation($i: MarkNotificationsReadInput!) { markNotificationsRead(input: $i) { marked } }",
                json!({ "i": {} }),
            )
        }
        "updateNotificationPreferences" => (
            "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { preferences { locale } } }",
            json!({ "i": { "locale": "ZH_HANT" } }),
        ),
        "requestPasswordReset" => (
            "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { accepted } }",
            json!({ "i": { "email": app.account("forgetful", &[Role::Donor]).await.email } }),
        ),
        "resetPassword" => (
            "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { sessionsEnded account { id } } }",
            json!({ "i": { "token": fresh_token(app, entity::account_token::TokenPurpose::PasswordReset).await,
                "newPassword": "another-horse-43" } }),
        ),
        "verifyEmail" => (
            "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { account { emailVerified } } }",
            json!({ "i": { "token": fresh_token(app, entity::account_token::TokenPurpose::EmailVerification).await } }),
        ),
        "changePassword" => (
            // The same password again: later rows still sign in with it.
            "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { sessionsEnded } }",
            json!({ "i": { "currentPassword": "correct-horse-42", "newPassword": "correct-horse-42" } }),
        ),
        "requestEmailVerification" => ("mutation { requestEmailVerification { sent } }", json!({})),
        "requestEmailChange" => (
            "mutation($i: RequestEmailChangeInput!) { requestEmailChange(input: $i) { sent } }",
            json!({ "i": { "newEmail": unique("moving"), "password": "correct-horse-42" } }),
        ),
        "deleteAccount" => {
            // The last owner of an organization (the fixture's, or one applied for in the
            // createOrganization row) hands it over first.
            hand_over_organizations(app, f, who).await;
            (
                "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) { deleted } }",
                json!({ "i": { "password": "correct-horse-42" } }),
            )
        }
        other => panic!("no call written for mutation `{other}`: add it to authz.rs"),
    }
}

fn next_number() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A start `days` ahead at an hour no other call used, so no booking clashes with another.
fn next_slot(days: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&crate::spaces::at(days, 0, 0)).expect("time").to_utc()
        + chrono::Duration::hours(next_number())
}

/// A public address (an IP literal: nothing to resolve) and an event type the matrix never
/// causes, so no delivery is ever attempted.
const WEBHOOK_URL: &str = "https://93.184.215.14/incubase-hooks";
const WEBHOOK_TYPE: &str = "event.identity_documents_purged";

/// A new endpoint (global ID) with one delivery (global ID) in its log.
async fn fresh_webhook(app: &TestApp) -> (String, String) {
    use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
    let now = api::service::now();
    let endpoint = entity::webhook_endpoint::ActiveModel {
        // Written directly (registration would refuse it): a redelivery is stopped by the
        // address check, so nothing leaves the machine.
        url: Set("http://127.0.0.1:9/never".into()),
        event_types: Set(json!([WEBHOOK_TYPE]).to_string()),
        secret: Set(api::service::webhooks::new_secret()),
        enabled: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("endpoint");
    let event = entity::domain_event::Entity::find()
        .order_by_desc(entity::domain_event::Column::Id)
        .one(&app.state.db)
        .await
        .expect("db")
        .expect("an event");
    let delivery = entity::webhook_delivery::ActiveModel {
        endpoint_id: Set(endpoint.id),
        event_id: Set(event.id),
        event_type: Set(WEBHOOK_TYPE.into()),
        status: Set("FAILED".into()),
        attempts: Set(8),
        next_attempt_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("delivery");
    (gid("WebhookEndpoint", endpoint.id), gid("WebhookDelivery", delivery.id))
}

/// An unread notification for the caller `who`, when it is an account.
async fn fresh_notification(app: &TestApp, f: &Fixture, who: Who) {
    use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
    let credentials = &f.callers.iter().find(|(w, _)| *w == who).expect("caller").1;
    let me = app.gql_as(credentials, "{ viewer { account { id } } }", json!({})).await;
    let Some(global) = me["data"]["viewer"]["account"]["id"].as_str() else { return };
    let account = api::graphql::ids::parse(global).expect("global id").1;
    let event = entity::domain_event::Entity::find()
        .order_by_desc(entity::domain_event::Column::Id)
        .one(&app.state.db)
        .await
        .expect("db")
        .expect("an event");
    entity::notification::ActiveModel {
        account_id: Set(account),
        event_id: Set(event.id + 1_000_000 + next_number()),
        kind: Set("registration.confirmed".into()),
        title: Set("报名成功".into()),
        body: Set("矩阵测试".into()),
        subject_type: Set("Registration".into()),
        subject_id: Set(1),
        email_status: Set("NONE".into()),
        email_attempts: Set(0),
        created_at: Set(api::service::now()),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("notification");
}

/// A mailed token of `purpose` for a new account (as the mail would carry it).
async fn fresh_token(app: &TestApp, purpose: entity::account_token::TokenPurpose) -> String {
    let account = app.account("mailed", &[Role::Donor]).await;
    let ttl = std::time::Duration::from_secs(600);
    api::service::account::issue_token(&app.state.db, account.id, purpose, &account.email, ttl).await.expect("token")
}

/// A second owner for every organization the caller `who` owns, so they may delete their account.
async fn hand_over_organizations(app: &TestApp, f: &Fixture, who: Who) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let credentials = &f.callers.iter().find(|(w, _)| *w == who).expect("caller").1;
    let me = app.gql_as(credentials, "{ viewer { account { id } } }", json!({})).await;
    let Some(global) = me["data"]["viewer"]["account"]["id"].as_str() else { return };
    let account = api::graphql::ids::parse(global).expect("global id").1;
    let owned = entity::membership::Entity::find()
        .filter(entity::membership::Column::AccountId.eq(account))
        .filter(entity::membership::Column::Role.eq(MemberRole::Owner))
        .all(&app.state.db)
        .await
        .expect("memberships");
    for m in owned {
        let co_owner = app.account("co-owner", &[Role::Donor]).await;
        identity::add_member(
            app.state.ctx(),
            &crate::helpers::actor(),
            m.organization_id,
            &co_owner.email,
            MemberRole::Owner,
            0,
        )
        .await
        .expect("co-owner");
    }
}

async fn fresh_refresh_token(app: &TestApp, f: &Fixture) -> String {
    let account = identity::accounts_by_ids(&app.state.db, &[f.sign_in_account]).await.expect("db").remove(0);
    identity::start_session(&app.state.db, &app.state.tokens, account).await.expect("session").refresh_token
}

/// A new editor of the fixture organization; returns the account's global ID.
async fn fresh_member(app: &TestApp, f: &Fixture) -> String {
    let account = app.account("leaving", &[Role::Donor]).await;
    identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row(f), &account.email, MemberRole::Editor, 0)
        .await
        .expect("member");
    account.global_id
}

/// A new organization in the liaison network; returns its global ID.
async fn fresh_organization(app: &TestApp) -> String {
    crate::organizations::create(app, json!({ "name": format!("矩阵组织{}", uuid::Uuid::new_v4().simple()) })).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A fresh training per call (its own programme), in the fixture's organization, five days
/// ahead: its row and its start.
async fn fresh_training(app: &TestApp, f: &Fixture) -> (i64, chrono::DateTime<chrono::Utc>) {
    let org = api::graphql::ids::parse(&f.org_id).expect("id").1;
    let ctx = app.state.ctx();
    let programme = api::service::event::create_programme(ctx, &crate::helpers::actor(), "矩阵培训", None, org)
        .await
        .expect("programme");
    let starts = chrono::Utc::now() + chrono::Duration::days(5);
    let training = api::service::event::create(
        ctx,
        &crate::helpers::actor(),
        true,
        api::service::event::NewEvent {
            kind: entity::event::EventKind::Training,
            title: "矩阵培训第一期".into(),
            title_traditional: None,
            summary: None,
            summary_traditional: None,
            description: None,
            description_traditional: None,
            starts_at: starts,
            ends_at: starts + chrono::Duration::hours(8),
            time_zone: None,
            venue_space_id: None,
            venue_address: Some("思明区".into()),
            organizer_id: org,
            capacity: 20,
            group_limit: None,
            registration_opens_at: None,
            registration_closes_at: None,
            cancellation_deadline: None,
            requires_approval: false,
            requires_identity_document: false,
            audience_tags: vec![],
            questions: vec![],
            training: Some(api::service::event::TrainingFields {
                programme_id: programme.id,
                cohort: 1,
                ..Default::default()
            }),
        },
    )
    .await
    .expect("training");
    (training.id, starts)
}

async fn fresh_draft_event(app: &TestApp, f: &Fixture) -> String {
    use crate::events::{CREATE_EVENT, at};
    use chrono::Duration;
    let created = app
        .ok(
            CREATE_EVENT,
            json!({ "input": { "kind": "SALON", "organizerId": f.org_id, "title": "矩阵活动",
                "startsAt": at(Duration::days(3)), "endsAt": at(Duration::days(3) + Duration::hours(2)),
                "venue": { "address": "思明区" }, "capacity": 50 } }),
        )
        .await;
    created["createEvent"]["event"]["id"].as_str().expect("id").to_owned()
}

/// A new person's registration for `event`: (global ID, ticket code).
async fn fresh_registration(app: &TestApp, event: &str) -> (String, String) {
    let who = app.account("registrant", &[Role::Donor]).await;
    let r = crate::events::register_as(app, &who, json!({ "eventId": event, "privacyConsent": true })).await;
    let registration = &r["data"]["register"]["registration"];
    (
        registration["id"].as_str().unwrap_or_else(|| panic!("registration: {r}")).to_owned(),
        registration["ticketCode"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A new submitted proposal of the fixture organization, under review by `reviewer` when given.
async fn fresh_proposal(app: &TestApp, f: &Fixture, reviewer: Option<i64>) -> String {
    use api::service::grants;
    let ctx = app.state.ctx();
    let actor = crate::helpers::actor();
    let round = api::graphql::ids::parse(&f.grants.round_id).expect("id").1;
    let input = grants::ProposalInput { title: "矩阵申报".into(), requested_fen: 10_000, ..Default::default() };
    let p = grants::create_proposal(ctx, &actor, round, f.grants.org_row, None, input).await.expect("proposal");
    grants::submit_proposal(ctx, &actor, p.proposal.id).await.expect("submit");
    if let Some(reviewer) = reviewer {
        grants::assign_reviewer(ctx, &actor, p.proposal.id, reviewer).await.expect("assign");
    }
    gid("GrantProposal", p.proposal.id)
}

fn org_row(f: &Fixture) -> i64 {
    api::graphql::ids::parse(&f.org_id).expect("global id").1
}

fn donation_input_for(campaign: &str) -> Value {
    json!({ "campaignId": campaign, "amountFen": 100, "channel": "CASH", "clientKey": uuid::Uuid::new_v4().to_string() })
}

/// A fresh pledge by the victim account on an active campaign (confirmed if asked).
async fn pledge(app: &TestApp, f: &Fixture, confirmed: bool) -> i64 {
    use api::service::crowdfunding as cf;
    let campaign = campaign_in(app, org_row(f), "ACTIVE").await;
    let donor = cf::Donor::Account { id: f.victim.id, display_name: "受害者".into() };
    let d = cf::donate(
        app.state.ctx(),
        &crate::helpers::actor(),
        &donor,
        cf::NewDonation {
            campaign_id: campaign,
            amount_fen: 100,
            channel: entity::donation::DonationChannel::Cash,
            external_reference: None,
            donor_name: None,
            display_mode: entity::donation::DisplayMode::Public,
            message: None,
            client_key: uuid::Uuid::new_v4().to_string(),
        },
    )
    .await
    .expect("pledge");
    if confirmed {
        cf::confirm(app.state.ctx(), &crate::helpers::actor(), d.id, None).await.expect("confirm");
    }
    d.id
}

/// A pledge whose money came after it expired: held, waiting for staff to accept or refund it.
async fn late_payment(app: &TestApp, f: &Fixture) -> i64 {
    use api::service::crowdfunding as cf;
    use sea_orm::ConnectionTrait;
    let id = pledge(app, f, false).await;
    let when = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d %H:%M:%S+00:00");
    let cast = if app.backend == crate::helpers::Backend::Postgres { "::timestamptz" } else { "" };
    app.state
        .db
        .execute_unprepared(&format!("UPDATE donations SET created_at = '{when}'{cast} WHERE id = {id}"))
        .await
        .expect("age the pledge");
    let (_, outcome) = cf::receive(app.state.ctx(), &crate::helpers::actor(), id, None, cf::Arrival::Payment)
        .await
        .expect("late payment");
    assert_eq!(outcome, cf::PaymentOutcome::Held(entity::donation::HoldReason::PledgeExpired));
    id
}

/// The mutation fields the schema has, read by introspection (no database needed).
async fn schema_mutations() -> BTreeSet<String> {
    let schema = api::graphql::build_schema(None, &Default::default(), &api::config::Environment::Development);
    let response = schema.execute("{ __schema { mutationType { fields { name } } } }").await;
    let data = response.data.into_json().expect("json");
    data["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn every_mutation_has_a_rule() {
    let in_schema = schema_mutations().await;
    let in_table: BTreeSet<String> = RULES.iter().map(|(name, _)| (*name).to_owned()).collect();
    let missing: Vec<_> = in_schema.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&in_schema).collect();
    assert!(missing.is_empty(), "mutations without an authorization rule in authz.rs: {missing:?}");
    assert!(stale.is_empty(), "rules for mutations the schema no longer has: {stale:?}");
}

backend_tests! {
    async fn authorization_matrix(app) {
        let f = fixture(&app).await;
        let mut failures = Vec::new();
        for (mutation, allowed) in RULES {
            for (who, credentials) in &f.callers {
                let (document, variables) = call(&app, &f, mutation, *who).await;
                let events_before = crate::helpers::event_count(&app).await;
                let (status, body) = app.send(credentials, document, variables).await;
                let written = crate::helpers::event_count(&app).await - events_before;
                let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or("").to_owned();
                let expected_denial = if *who == Anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" };
                let succeeded = status == 200 && body.get("errors").is_none();
                let problem = if allowed.contains(who) {
                    if !succeeded {
                        Some(format!("expected success, got {status} {body}"))
                    } else if !answers(&body["data"][*mutation]) {
                        Some(format!("succeeded without an answer: {body}"))
                    } else if written < 1 {
                        Some("succeeded without writing an event".to_owned())
                    } else {
                        None
                    }
                } else if code != expected_denial {
                    Some(format!("expected {expected_denial}, got {status} {body}"))
                } else if written != 0 {
                    Some(format!("refused, yet {written} event(s) were written"))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    failures.push(format!("{mutation} as {who:?}: {problem}"));
                }
            }
        }
        assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
    }
}

/// Whether a payload holds some value: not `null`, and an object or list with a non-null
/// value somewhere inside.
fn answers(payload: &Value) -> bool {
    match payload {
        Value::Null => false,
        Value::Object(fields) => fields.values().any(answers),
        Value::Array(items) => items.iter().any(answers),
        _ => true,
    }
}

/// A fresh pending request by the member, in the fixture's space.
async fn pending_booking(app: &TestApp, f: &Fixture) -> String {
    use api::service::booking::{Booker, BookingRequest};
    // Each request at its own hour, so none is refused for clashing with a confirmed one.
    static NEXT_HOUR: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let hour = NEXT_HOUR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = chrono::DateTime::parse_from_rfc3339(&crate::spaces::at(5, 0, 0)).expect("time").to_utc()
        + chrono::Duration::hours(hour);
    let (booking, _) = api::service::booking::create(
        app.state.ctx(),
        &crate::helpers::actor(),
        Booker { account_id: f.member_id, is_staff: false },
        BookingRequest {
            space_id: f.space_row,
            starts_at: start,
            ends_at: start + chrono::Duration::hours(1),
            attendees: 5,
            purpose: Some("矩阵测试".into()),
            organization_id: None,
            client_key: None,
            manager_note: None,
        },
    )
    .await
    .expect("pending booking");
    api::graphql::ids::encode("Booking", booking.id).to_string()
}

//! The authorization matrix: every mutation in the schema × every kind of caller → allowed,
//! or refused with `UNAUTHENTICATED` (anonymous) / `FORBIDDEN` (everyone else).
//!
//! Driven from one table, `RULES`. A mutation added to the schema without a row fails
//! `every_mutation_has_a_rule`. "Allowed" means the answer is not an authorization error:
//! the call may still fail for other reasons (a stage that does not allow it, a missing
//! record), which is not what this test looks at.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::backend_tests;
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
    ("addOrganizationMember", ORG_OWNERS_AND_ADMINS),
    ("changeOrganizationMemberRole", ORG_OWNERS_AND_ADMINS),
    ("removeOrganizationMember", ORG_OWNERS_AND_ADMINS),
    ("createOrganization", SIGNED_IN),
    ("updateOrganization", ORG_EDITORS),
    ("transitionOrganizationStage", STAFF),
    ("createEvent", ORG_EDITORS),
    ("updateEvent", ORG_EDITORS),
    ("transitionEventStatus", ORG_EDITORS),
    ("createTrainingProgramme", ORG_EDITORS),
    ("addExhibit", ORG_EDITORS),
    ("addDelegation", ORG_EDITORS),
    ("removeExhibit", ORG_EDITORS),
    ("removeDelegation", ORG_EDITORS),
    ("register", REGISTRANTS),
    ("cancelRegistration", ORG_EDITORS),
    ("decideRegistration", ORG_EDITORS),
    ("checkIn", ORG_EDITORS),
];

/// What the calls act on, made once per test.
pub struct Fixture {
    pub org_id: String,
    pub victim: TestAccount,
    pub throwaway_key_id: String,
    pub sign_in_email: String,
    pub callers: Vec<(Who, Credentials)>,
    pub events: EventFixture,
}

/// Events of the fixture organization, for the event mutations.
pub struct EventFixture {
    pub draft: String,
    pub to_transition: String,
    pub exhibition: String,
    pub exchange: String,
    /// Published, starting in 30 minutes: open for registration and check-in.
    pub open: String,
    /// Someone else's registration for `open`.
    pub registration: String,
    pub ticket_code: String,
    /// A registration awaiting approval.
    pub pending: String,
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
    let to_transition = id(draft("SALON").await);
    let exhibition = id(draft("EXHIBITION").await);
    let exchange = id(draft("EXCHANGE").await);
    let open = published_event(app, org, Duration::minutes(30), json!({ "capacity": 50 })).await;
    let approval = published_event(app, org, Duration::days(2), json!({ "requiresApproval": true })).await;
    let registrant = app.account("registrant", &[Role::Donor]).await;
    let r = crate::events::register_as(app, &registrant, json!({ "eventId": open, "privacyConsent": true })).await;
    let p = crate::events::register_as(app, &registrant, json!({ "eventId": approval, "privacyConsent": true })).await;
    EventFixture {
        draft: draft_id,
        to_transition,
        exhibition,
        exchange,
        open,
        registration: r["data"]["register"]["registration"]["id"].as_str().expect("id").to_owned(),
        ticket_code: r["data"]["register"]["registration"]["ticketCode"].as_str().expect("code").to_owned(),
        pending: p["data"]["register"]["registration"]["id"].as_str().expect("id").to_owned(),
    }
}

fn unique(label: &str) -> String {
    format!("{label}-{}@test.incubase.cn", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn fixture(app: &TestApp) -> Fixture {
    let db = &app.state.db;
    let org = crate::organizations::create(app, json!({ "name": "矩阵测试组织" })).await;
    let other = crate::organizations::create(app, json!({ "name": "另一个组织" })).await;
    let org_id = org["id"].as_str().expect("id").to_owned();
    let org_row = api::graphql::ids::parse(&org_id).expect("global id").1;
    let other_row = api::graphql::ids::parse(other["id"].as_str().expect("id")).expect("global id").1;

    let member = app.account("member", &[Role::Donor]).await;
    let other_member = app.account("other", &[Role::Donor]).await;
    let victim = app.account("victim", &[Role::Donor]).await;
    identity::add_member(db, org_row, &member.email, MemberRole::Owner, 0).await.expect("member");
    identity::add_member(db, org_row, &victim.email, MemberRole::Editor, 0).await.expect("victim");
    identity::add_member(db, other_row, &other_member.email, MemberRole::Owner, 0).await.expect("other");
    // Memberships are read when a token is presented, so the existing tokens see them.

    let with_scope = identity::create_api_key(db, "全权限伙伴", &ApiScope::ALL, None, 0).await.expect("key");
    let without_scope = identity::create_api_key(db, "只读伙伴", &[], None, 0).await.expect("key");
    let throwaway = identity::create_api_key(db, "待吊销", &[], None, 0).await.expect("key");
    let sign_in = app.account("signin", &[Role::Donor]).await;

    let callers = vec![
        (Anonymous, Credentials::anonymous()),
        (Donor, Credentials::account(&app.account("donor", &[Role::Donor]).await)),
        (Member, Credentials::account(&member)),
        (OtherMember, Credentials::account(&other_member)),
        (Reviewer, Credentials::account(&app.account("reviewer", &[Role::Reviewer]).await)),
        (Manager, Credentials::account(&app.manager)),
        (Admin, Credentials::account(&app.account("admin", &[Role::Admin]).await)),
        (PartnerWithScope, Credentials::api_key(&with_scope.secret)),
        (PartnerWithoutScope, Credentials::api_key(&without_scope.secret)),
    ];
    let events = event_fixture(app, &org_id).await;
    Fixture {
        events,
        org_id,
        victim,
        throwaway_key_id: api::graphql::ids::encode("ApiKey", throwaway.key.id).to_string(),
        sign_in_email: sign_in.email,
        callers,
    }
}

/// The document and variables of one call of `mutation`.
async fn call(app: &TestApp, f: &Fixture, mutation: &str) -> (&'static str, Value) {
    match mutation {
        "signUp" => (
            "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
            json!({ "i": { "email": unique("signup"), "password": "correct-horse-42", "displayName": "新用户" } }),
        ),
        "signIn" => (
            "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }",
            json!({ "i": { "email": f.sign_in_email, "password": "correct-horse-42" } }),
        ),
        "refreshSession" => {
            let account =
                identity::account_by_email(&app.state.db, &f.sign_in_email).await.expect("db").expect("account");
            let issued = identity::start_session(&app.state.db, &app.state.tokens, account).await.expect("session");
            (
                "mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { accessToken } }",
                json!({ "i": { "refreshToken": issued.refresh_token } }),
            )
        }
        "signOut" => (
            "mutation($i: SignOutInput!) { signOut(input: $i) { revoked } }",
            json!({ "i": { "refreshToken": "rt_not-a-real-token" } }),
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
            json!({ "i": { "organizationId": f.org_id, "accountId": f.victim.global_id } }),
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
            json!({ "i": { "id": f.org_id, "stage": "APPLIED" } }),
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
            json!({ "i": { "id": f.events.to_transition, "status": "PUBLISHED" } }),
        ),
        "createTrainingProgramme" => (
            "mutation($i: CreateTrainingProgrammeInput!) { createTrainingProgramme(input: $i) { programme { id } } }",
            json!({ "i": { "organizerId": f.org_id, "title": "社工实务培训" } }),
        ),
        "addExhibit" => (
            "mutation($i: AddExhibitInput!) { addExhibit(input: $i) { exhibit { id } } }",
            json!({ "i": { "eventId": f.events.exhibition, "title": "展品" } }),
        ),
        "addDelegation" => (
            "mutation($i: AddDelegationInput!) { addDelegation(input: $i) { delegation { id } } }",
            json!({ "i": { "eventId": f.events.exchange, "origin": "HONG_KONG", "name": "香港代表团", "leaderName": "陈女士" } }),
        ),
        "removeExhibit" => {
            // A fresh exhibit per call: an allowed caller removes it.
            let event = api::graphql::ids::parse(&f.events.exhibition).expect("id").1;
            let row = api::service::event::add_exhibit(
                &app.state.db,
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
                &app.state.db,
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
        "register" => (
            "mutation($i: RegisterInput!) { register(input: $i) { registration { id } } }",
            // Accounts answer BAD_USER_INPUT for `guest` (they register themselves): allowed.
            json!({ "i": { "eventId": f.events.open, "privacyConsent": true,
                "guest": { "name": "访客", "phone": "13800000000" } } }),
        ),
        "cancelRegistration" => (
            "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { id } } }",
            json!({ "i": { "id": f.events.registration } }),
        ),
        "decideRegistration" => (
            "mutation($i: DecideRegistrationInput!) { decideRegistration(input: $i) { registration { id } } }",
            json!({ "i": { "id": f.events.pending, "accept": true } }),
        ),
        "checkIn" => (
            "mutation($i: CheckInInput!) { checkIn(input: $i) { alreadyCheckedIn } }",
            json!({ "i": { "eventId": f.events.open, "ticketCode": f.events.ticket_code } }),
        ),
        other => panic!("no call written for mutation `{other}`: add it to authz.rs"),
    }
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
                let (document, variables) = call(&app, &f, mutation).await;
                let (status, body) = app.send(credentials, document, variables).await;
                let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or("").to_owned();
                let denied = code == "UNAUTHENTICATED" || code == "FORBIDDEN";
                let expected_denial = if *who == Anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" };
                let ok = if allowed.contains(who) { !denied && status == 200 } else { code == expected_denial };
                if !ok {
                    failures.push(format!("{mutation} as {who:?}: expected {}, got {status} {body}",
                        if allowed.contains(who) { "allowed".to_owned() } else { expected_denial.to_owned() }));
                }
            }
        }
        assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
    }
}

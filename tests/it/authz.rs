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
    ("createSpace", STAFF),
    ("updateSpace", STAFF),
    // Partner keys alone cannot book: a booking needs an account to answer for it.
    ("createBooking", SIGNED_IN),
    ("createRecurringBooking", SIGNED_IN),
    ("confirmBooking", STAFF),
    ("rejectBooking", STAFF),
    // Member is the requester here.
    ("cancelBooking", &[Member, Manager, Admin]),
];

/// What the calls act on, made once per test.
pub struct Fixture {
    pub org_id: String,
    pub victim: TestAccount,
    pub throwaway_key_id: String,
    pub sign_in_email: String,
    pub callers: Vec<(Who, Credentials)>,
    /// A space that needs approval, and the account whose requests are cancelled.
    pub space_id: String,
    pub space_row: i64,
    pub member_id: i64,
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
    let space = api::service::space::create(
        db,
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
    Fixture {
        space_id: api::graphql::ids::encode("Space", space.space.id).to_string(),
        space_row: space.space.id,
        member_id: member.id,
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
        "createSpace" => (
            "mutation($i: CreateSpaceInput!) { createSpace(input: $i) { space { id } } }",
            json!({ "i": { "name": "新会议室", "kind": "MEETING_ROOM", "capacity": 12 } }),
        ),
        "updateSpace" => (
            "mutation($i: UpdateSpaceInput!) { updateSpace(input: $i) { space { id } } }",
            json!({ "i": { "id": f.space_id, "capacity": 32 } }),
        ),
        "createBooking" => (
            "mutation($i: CreateBookingInput!) { createBooking(input: $i) { booking { id } } }",
            json!({ "i": { "spaceId": f.space_id, "startsAt": crate::spaces::at(3, 10, 0),
                "endsAt": crate::spaces::at(3, 11, 0), "attendees": 5, "purpose": "矩阵测试" } }),
        ),
        "confirmBooking" => (
            "mutation($i: ConfirmBookingInput!) { confirmBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await } }),
        ),
        "rejectBooking" => (
            "mutation($i: DecideBookingInput!) { rejectBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await, "reason": "测试" } }),
        ),
        "createRecurringBooking" => (
            "mutation($i: CreateRecurringBookingInput!) { createRecurringBooking(input: $i) { bookings { id } } }",
            json!({ "i": { "spaceId": f.space_id, "startsAt": crate::spaces::at(20, 10, 0),
                "endsAt": crate::spaces::at(20, 11, 0), "attendees": 5, "purpose": "矩阵测试",
                "recurrence": { "frequency": "WEEKLY", "count": 2 } } }),
        ),
        "cancelBooking" => (
            "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": pending_booking(app, f).await, "reason": "测试" } }),
        ),
        other => panic!("no call written for mutation `{other}`: add it to authz.rs"),
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
        &app.state.db,
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

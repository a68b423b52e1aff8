//! Events end to end: the five kinds behind one interface, the cached list and calendar,
//! registration with groups, questions, approval and the waitlist, check-in, identity
//! documents, person-times, and each refusal with its reason.
use std::collections::HashSet;

use chrono::{Duration, Utc};
use entity::registration::{self, RegistrationStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Credentials, TestAccount, TestApp};
use api::service::identity::{self, ApiScope, Role};

pub const CREATE_EVENT: &str = r#"
mutation($input: CreateEventInput!) {
  createEvent(input: $input) {
    event { id kind title status capacity groupLimit timeZone venue { spaceId address }
      registrationClosesAt cancellationDeadline audienceTags questions { key prompt required }
      organizer { name } viewerCanManage
      ... on Training { cohort trainers hours certificateThresholdPercent programme { title } } }
  }
}"#;

pub const TRANSITION: &str = r#"
mutation($input: TransitionEventStatusInput!) {
  transitionEventStatus(input: $input) { event { id status } }
}"#;

pub const REGISTER: &str = r#"
mutation($input: RegisterInput!) {
  register(input: $input) {
    replayed
    registration { id status partySize ticketCode name groups { women children familyMembers professionals }
      answers { question answer } identityDocument { type maskedNumber purgedAt } }
  }
}"#;

const CANCEL: &str = r#"
mutation($input: CancelRegistrationInput!) {
  cancelRegistration(input: $input) { registration { id status cancelledAt } }
}"#;

const CHECK_IN: &str = r#"
mutation($input: CheckInInput!) {
  checkIn(input: $input) {
    alreadyCheckedIn checkedInAt
    registration { id checkedInAt attended groups { women children } }
    seats { capacity taken checkedInRegistrations checkedInPersons }
  }
}"#;

const SEATS: &str = r#"
query($id: ID!) {
  event(id: $id) {
    id status
    seats { capacity taken left confirmedRegistrations pendingRegistrations waitlistedRegistrations waitlistedPersons
      checkedInRegistrations checkedInPersons }
    impact { total women children familyMembers professionals }
  }
}"#;

pub fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339()
}

pub async fn organizer(app: &TestApp) -> String {
    crate::organizations::create(
        app,
        json!({ "name": format!("活动主办{}", &uuid::Uuid::new_v4().simple().to_string()[..6]) }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A published salon starting in `starts_in`, with these extra input fields.
pub async fn published_event(app: &TestApp, org: &str, starts_in: Duration, extra: Value) -> String {
    let mut input = json!({
        "kind": "SALON",
        "organizerId": org,
        "title": "巾帼经验分享沙龙",
        "startsAt": at(starts_in),
        "endsAt": at(starts_in + Duration::hours(2)),
        "venue": { "address": "厦门市思明区湖滨南路 1 号" },
        "capacity": 10,
    });
    for (k, v) in extra.as_object().expect("object") {
        input[k] = v.clone();
    }
    let created = app.ok(CREATE_EVENT, json!({ "input": input })).await;
    let id = created["createEvent"]["event"]["id"].as_str().expect("id").to_owned();
    app.ok(TRANSITION, json!({ "input": { "id": id, "status": "PUBLISHED" } })).await;
    id
}

pub async fn register_as(app: &TestApp, who: &TestAccount, input: Value) -> Value {
    app.gql_as(&Credentials::account(who), REGISTER, json!({ "input": input })).await
}

fn reason(body: &Value) -> String {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a reason: {body:#}"))
        .to_owned()
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("expected a code: {body:#}")).to_owned()
}

async fn seats(app: &TestApp, id: &str) -> Value {
    app.ok(SEATS, json!({ "id": id })).await["event"].clone()
}

fn row_id(global: &Value) -> i64 {
    api::graphql::ids::parse(global.as_str().expect("id")).expect("global id").1
}

backend_tests! {
    async fn every_kind_behind_one_interface(app) {
        let org = organizer(&app).await;
        let programme = app.ok(
            "mutation($i: CreateTrainingProgrammeInput!) { createTrainingProgramme(input: $i) { programme { id title } } }",
            json!({ "i": { "organizerId": org, "title": "社会组织项目管理培训" } }),
        ).await["createTrainingProgramme"]["programme"]["id"].as_str().expect("id").to_owned();
        let room = crate::spaces::space(&app, "第一培训室", 40, json!({})).await;
        let training = app.ok(CREATE_EVENT, json!({ "input": {
            "kind": "TRAINING", "organizerId": org, "title": "项目管理培训（第五期）",
            "startsAt": at(Duration::days(3)), "endsAt": at(Duration::days(4)),
            "venue": { "spaceId": room["id"] }, "capacity": 40,
            "audienceTags": ["社工", "社会组织", "社工"],
            "questions": [{ "prompt": "所在机构", "required": true }, { "prompt": "饮食禁忌" }],
            "training": { "programmeId": programme, "cohort": 5, "trainers": ["林老师", "陈老师"], "hours": 16,
                "certificateThresholdPercent": 80 },
        }})).await["createEvent"]["event"].clone();
        assert_eq!(training["kind"], "TRAINING");
        assert_eq!(training["status"], "DRAFT");
        assert_eq!(training["cohort"], 5);
        assert_eq!(training["trainers"], json!(["林老师", "陈老师"]));
        assert_eq!(training["programme"]["title"], "社会组织项目管理培训");
        assert_eq!(training["timeZone"], "Asia/Shanghai");
        assert_eq!(training["audienceTags"], json!(["社工", "社会组织"]), "duplicates dropped");
        assert_eq!(training["questions"][0], json!({ "key": "q1", "prompt": "所在机构", "required": true }));
        assert_eq!(training["venue"]["address"], Value::Null);

        // A second cohort 5 of the same programme is a conflict with a reason.
        let dup = app.gql(CREATE_EVENT, json!({ "input": {
            "kind": "TRAINING", "organizerId": org, "title": "重复的第五期",
            "startsAt": at(Duration::days(5)), "endsAt": at(Duration::days(6)),
            "venue": { "address": "外部场地" }, "capacity": 40,
            "training": { "programmeId": programme, "cohort": 5 },
        }})).await;
        assert_eq!(reason(&dup), "COHORT_TAKEN");

        // Drafts are invisible to anonymous readers, in lists and by ID.
        let anon = app.ok_as(&Credentials::anonymous(), "query($id: ID!) { event(id: $id) { id } }",
            json!({ "id": training["id"] })).await;
        assert_eq!(anon["event"], Value::Null);
        // Members of the organizer see their drafts; members of other organizations do not.
        let member = app.account("member", &[Role::Donor]).await;
        let outsider = app.account("outsider", &[Role::Donor]).await;
        let org_row = row_id(&json!(org));
        identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row, &member.email, entity::membership::MemberRole::Editor, 0)
            .await.expect("member");
        let drafts = r#"query($o: ID!) { events(filter: { includeDrafts: true, organizer: $o }) { totalCount } }"#;
        let mine = app.ok_as(&Credentials::account(&member), drafts, json!({ "o": org })).await;
        assert_eq!(mine["events"]["totalCount"], 1);
        let theirs = app.ok_as(&Credentials::account(&outsider), drafts, json!({ "o": org })).await;
        assert_eq!(theirs["events"]["totalCount"], 0);
        app.ok(TRANSITION, json!({ "input": { "id": training["id"], "status": "PUBLISHED" } })).await;

        let exhibition = published_event(&app, &org, Duration::days(10), json!({
            "kind": "EXHIBITION", "title": "优秀案例展", "titleTraditional": "優秀案例展" })).await;
        let exhibit = app.ok(
            "mutation($i: AddExhibitInput!) { addExhibit(input: $i) { exhibit { position title mediaUrls organization { id } } } }",
            json!({ "i": { "eventId": exhibition, "title": "社区妈妈互助站", "story": "三年服务 2000 人次",
                "mediaUrls": ["https://example.org/a.jpg"], "organizationId": org } }),
        ).await;
        assert_eq!(exhibit["addExhibit"]["exhibit"]["position"], 1);
        let add = "mutation($i: AddExhibitInput!) { addExhibit(input: $i) { exhibit { id position } } }";
        let second = app.ok(add, json!({ "i": { "eventId": exhibition, "title": "临时展品" } })).await;
        app.ok(add, json!({ "i": { "eventId": exhibition, "title": "困境儿童关爱计划" } })).await;
        app.ok("mutation($i: RemoveExhibitInput!) { removeExhibit(input: $i) { removedExhibitId } }",
            json!({ "i": { "id": second["addExhibit"]["exhibit"]["id"] } })).await;
        assert_eq!(exhibit["addExhibit"]["exhibit"]["organization"]["id"], json!(org));

        let exchange = published_event(&app, &org, Duration::days(20), json!({
            "kind": "EXCHANGE", "title": "海峡两岸妇女社会工作交流", "titleTraditional": "海峽兩岸婦女社會工作交流" })).await;
        app.ok(
            "mutation($i: AddDelegationInput!) { addDelegation(input: $i) { delegation { id } } }",
            json!({ "i": { "eventId": exchange, "origin": "TAIWAN", "name": "台湾妇女团体参访团",
                "nameTraditional": "臺灣婦女團體參訪團", "leaderName": "王淑芬", "members": ["李美玲", "陈雅婷"],
                "hostOrganizationIds": [org] } }),
        ).await;
        let wrong = app.gql(
            "mutation($i: AddDelegationInput!) { addDelegation(input: $i) { delegation { id } } }",
            json!({ "i": { "eventId": exhibition, "origin": "TAIWAN", "name": "错误", "leaderName": "某" } }),
        ).await;
        assert_eq!(reason(&wrong), "WRONG_EVENT_KIND");
        published_event(&app, &org, Duration::days(30), json!({ "kind": "PROMOTION", "title": "公益宣传周" })).await;

        let list = app.ok_as(&Credentials::anonymous(), r#"{ events(first: 10) { totalCount edges { node {
            __typename kind title titleTraditional
            ... on Exhibition { exhibits { title story position } }
            ... on ExchangeEvent { delegations { origin nameTraditional leaderName members hostOrganizations { id } } }
        } } } }"#, json!({})).await;
        let nodes: Vec<&Value> = list["events"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]).collect();
        let types: Vec<&str> = nodes.iter().map(|n| n["__typename"].as_str().expect("type")).collect();
        assert_eq!(types, ["Training", "Exhibition", "ExchangeEvent", "PromotionEvent"], "by start time");
        assert_eq!(nodes[1]["exhibits"][0]["title"], "社区妈妈互助站");
        assert_eq!(nodes[1]["exhibits"][1]["title"], "困境儿童关爱计划", "the removed one is gone, the rest in order");
        assert_eq!(nodes[1]["exhibits"].as_array().expect("exhibits").len(), 2);
        assert_eq!(nodes[1]["exhibits"][1]["position"], 2, "positions close the gap");
        assert_eq!(nodes[2]["delegations"][0]["origin"], "TAIWAN");
        assert_eq!(nodes[2]["delegations"][0]["members"], json!(["李美玲", "陈雅婷"]));
        assert_eq!(nodes[2]["delegations"][0]["hostOrganizations"][0]["id"], json!(org));

        // Filter and search (Traditional script too).
        let found = app.ok(r#"query($f: EventFilter) { events(filter: $f) { edges { node { title } } } }"#,
            json!({ "f": { "search": "婦女", "kind": ["EXCHANGE", "SALON"] } })).await;
        assert_eq!(found["events"]["edges"].as_array().expect("edges").len(), 1);

        // node() resolves events to their concrete type.
        let node = app.ok("query($id: ID!) { node(id: $id) { __typename ... on Event { title } } }",
            json!({ "id": exhibition })).await;
        assert_eq!(node["node"]["__typename"], "Exhibition");
    }

    async fn list_and_calendar_are_cached_and_invalidated(app) {
        let org = organizer(&app).await;
        let starts = Utc::now() + Duration::days(40);
        let (year, month) = {
            use chrono::Datelike;
            let local = api::service::event::local_date(starts);
            (local.year(), local.month())
        };
        let calendar = r#"query($y: Int!, $m: Int!) { eventCalendar(year: $y, month: $m) { days { date events { title } } } }"#;
        let list = "{ events { edges { node { title } } } }";
        assert_eq!(app.ok(list, json!({})).await["events"]["edges"], json!([]));
        assert_eq!(app.ok(calendar, json!({ "y": year, "m": month })).await["eventCalendar"]["days"], json!([]));

        let id = published_event(&app, &org, Duration::days(40), json!({ "title": "月历沙龙" })).await;
        let data = app.ok(list, json!({})).await;
        assert_eq!(data["events"]["edges"][0]["node"]["title"], "月历沙龙", "publishing invalidates the list");
        let cal = app.ok(calendar, json!({ "y": year, "m": month })).await;
        let day = api::service::event::local_date(starts).to_string();
        assert!(cal["eventCalendar"]["days"].as_array().expect("days").iter()
            .any(|d| d["date"] == json!(day) && d["events"][0]["title"] == "月历沙龙"), "calendar: {cal}");

        // A cached read repeated costs no statement; an edit shows at once.
        // (Anonymous: a signed-in request reads its account.)
        let anon = Credentials::anonymous();
        app.ok_as(&anon, list, json!({})).await;
        let before = app.sql_statements();
        app.ok_as(&anon, list, json!({})).await;
        assert_eq!(app.sql_statements(), before, "the second read is served from the cache");
        app.ok("mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { title } } }",
            json!({ "i": { "id": id, "title": "改名后的沙龙" } })).await;
        assert_eq!(app.ok(list, json!({})).await["events"]["edges"][0]["node"]["title"], "改名后的沙龙");
        let bad = app.gql(calendar, json!({ "y": 2026, "m": 13 })).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT");
    }

    async fn groups_count_against_capacity_and_the_waitlist_moves_in_order(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": 3, "groupLimit": 2 })).await;
        let a = app.account("a", &[Role::Donor]).await;
        let b = app.account("b", &[Role::Donor]).await;
        let c = app.account("c", &[Role::Donor]).await;
        let ra = register_as(&app, &a, json!({ "eventId": id, "partySize": 2, "privacyConsent": true,
            "groups": { "women": 1, "children": 1 } })).await;
        assert_eq!(ra["data"]["register"]["registration"]["status"], "CONFIRMED");
        let rb = register_as(&app, &b, json!({ "eventId": id, "partySize": 2, "privacyConsent": true })).await;
        assert_eq!(rb["data"]["register"]["registration"]["status"], "WAITLISTED", "2 + 2 > 3");
        let position = app.ok_as(&Credentials::account(&b), "{ myRegistrations { edges { node { waitlistPosition } } } }",
            json!({})).await;
        assert_eq!(position["myRegistrations"]["edges"][0]["node"]["waitlistPosition"], 1);
        let rc = register_as(&app, &c, json!({ "eventId": id, "partySize": 1, "privacyConsent": true })).await;
        assert_eq!(rc["data"]["register"]["registration"]["status"], "CONFIRMED",
            "the one seat left fits C; B waits for two");
        let s = seats(&app, &id).await;
        assert_eq!(s["seats"]["taken"], 3);
        assert_eq!(s["seats"]["waitlistedRegistrations"], 1);
        assert_eq!(s["seats"]["waitlistedPersons"], 2);

        // A cancels: B's party of 2 fits into the freed seats and is promoted at once.
        let cancelled = app.ok_as(&Credentials::account(&a), CANCEL,
            json!({ "input": { "id": ra["data"]["register"]["registration"]["id"] } })).await;
        assert_eq!(cancelled["cancelRegistration"]["registration"]["status"], "CANCELLED");
        let s = seats(&app, &id).await;
        assert_eq!(s["seats"]["taken"], 3);
        assert_eq!(s["seats"]["waitlistedRegistrations"], 0);
        let mine = app.ok_as(&Credentials::account(&b), "{ myRegistrations { edges { node { status event { title } } } } }",
            json!({})).await;
        assert_eq!(mine["myRegistrations"]["edges"][0]["node"]["status"], "CONFIRMED");

        // Cancelling again answers with the cancelled registration; others may not cancel it.
        let again = app.ok_as(&Credentials::account(&a), CANCEL,
            json!({ "input": { "id": ra["data"]["register"]["registration"]["id"] } })).await;
        assert_eq!(again["cancelRegistration"]["registration"]["status"], "CANCELLED");
        let other = app.gql_as(&Credentials::account(&a), CANCEL,
            json!({ "input": { "id": rb["data"]["register"]["registration"]["id"] } })).await;
        assert_eq!(code(&other), "FORBIDDEN");

        // Lowering the capacity below the confirmed seats is refused.
        let low = app.gql("mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { capacity } } }",
            json!({ "i": { "id": id, "capacity": 2 } })).await;
        // (capacity 3, 3 taken)
        assert_eq!(reason(&low), "CAPACITY_BELOW_SEATS_TAKEN");
        // Raising it promotes the waitlist at once.
        let d = app.account("d", &[Role::Donor]).await;
        let rd = register_as(&app, &d, json!({ "eventId": id, "partySize": 2, "privacyConsent": true })).await;
        assert_eq!(rd["data"]["register"]["registration"]["status"], "WAITLISTED");
        app.ok("mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { capacity } } }",
            json!({ "i": { "id": id, "capacity": 5 } })).await;
        let s = seats(&app, &id).await;
        assert_eq!(s["seats"]["taken"], 5);
        assert_eq!(s["seats"]["waitlistedRegistrations"], 0);

        // Organizers see registrants in queue order; the registrants' peers do not.
        let regs = app.ok(r#"query($id: ID!) { event(id: $id) { registrations { totalCount edges { node { name status } } } } }"#,
            json!({ "id": id })).await;
        assert_eq!(regs["event"]["registrations"]["totalCount"], 4);
        let peer = app.ok_as(&Credentials::account(&c),
            r#"query($id: ID!) { event(id: $id) { registrations { totalCount } } }"#, json!({ "id": id })).await;
        assert_eq!(peer["event"]["registrations"], Value::Null);
    }

    async fn each_refusal_has_its_reason_and_writes_nothing(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": 5, "groupLimit": 3,
            "questions": [{ "prompt": "所在社区", "required": true }] })).await;
        let p = app.account("p", &[Role::Donor]).await;
        let answers = json!([{ "question": "q1", "answer": "鹭江街道" }]);
        let cases = [
            (json!({ "eventId": id, "privacyConsent": false, "answers": answers }), "CONSENT_REQUIRED"),
            (json!({ "eventId": id, "privacyConsent": true, "partySize": 4, "answers": answers }), "GROUP_TOO_LARGE"),
            (json!({ "eventId": id, "privacyConsent": true }), "ANSWER_REQUIRED"),
        ];
        for (input, expected) in cases {
            let body = register_as(&app, &p, input).await;
            assert_eq!(reason(&body), expected, "{body}");
            assert_eq!(code(&body), "BAD_USER_INPUT");
        }
        let s = seats(&app, &id).await;
        assert_eq!(s["seats"]["confirmedRegistrations"], 0, "nothing half-written");

        let ok = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true, "answers": answers })).await;
        assert_eq!(ok["data"]["register"]["registration"]["answers"], json!([{ "question": "q1", "answer": "鹭江街道" }]));
        let twice = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true, "answers": answers })).await;
        assert_eq!(reason(&twice), "ALREADY_REGISTERED");
        assert_eq!(code(&twice), "CONFLICT");

        let closed = published_event(&app, &org, Duration::days(2),
            json!({ "registrationClosesAt": at(Duration::hours(-1)) })).await;
        let body = register_as(&app, &p, json!({ "eventId": closed, "privacyConsent": true })).await;
        assert_eq!(reason(&body), "REGISTRATION_CLOSED");
        let later = published_event(&app, &org, Duration::days(9),
            json!({ "registrationOpensAt": at(Duration::days(1)) })).await;
        let body = register_as(&app, &p, json!({ "eventId": later, "privacyConsent": true })).await;
        assert_eq!(reason(&body), "REGISTRATION_NOT_OPEN");

        let cancelled = published_event(&app, &org, Duration::days(2), json!({})).await;
        app.ok(TRANSITION, json!({ "input": { "id": cancelled, "status": "CANCELLED" } })).await;
        let body = register_as(&app, &p, json!({ "eventId": cancelled, "privacyConsent": true })).await;
        assert_eq!(reason(&body), "EVENT_CANCELLED");
        let reopen = app.gql(TRANSITION, json!({ "input": { "id": cancelled, "status": "PUBLISHED" } })).await;
        assert_eq!(reason(&reopen), "INVALID_STATUS_CHANGE");

        // Self-cancellation closes at the deadline; organizers may still cancel.
        let strict = published_event(&app, &org, Duration::days(2),
            json!({ "cancellationDeadline": at(Duration::minutes(-5)) })).await;
        let r = register_as(&app, &p, json!({ "eventId": strict, "privacyConsent": true })).await;
        let rid = r["data"]["register"]["registration"]["id"].clone();
        let late = app.gql_as(&Credentials::account(&p), CANCEL, json!({ "input": { "id": rid } })).await;
        assert_eq!(reason(&late), "CANCELLATION_CLOSED");
        assert_eq!(seats(&app, &strict).await["seats"]["taken"], 1, "still registered");
        let by_organizer = app.ok(CANCEL, json!({ "input": { "id": rid } })).await;
        assert_eq!(by_organizer["cancelRegistration"]["registration"]["status"], "CANCELLED");

        let anonymous = app.gql_as(&Credentials::anonymous(), REGISTER,
            json!({ "input": { "eventId": id, "privacyConsent": true } })).await;
        assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    }

    async fn register_is_idempotent_by_client_key(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": 2 })).await;
        let p = app.account("p", &[Role::Donor]).await;
        let input = json!({ "eventId": id, "privacyConsent": true, "clientKey": "wx-7f3a" });
        let first = register_as(&app, &p, input.clone()).await;
        let second = register_as(&app, &p, input.clone()).await;
        assert_eq!(first["data"]["register"]["replayed"], false);
        assert_eq!(second["data"]["register"]["replayed"], true);
        assert_eq!(first["data"]["register"]["registration"]["id"], second["data"]["register"]["registration"]["id"]);
        assert_eq!(first["data"]["register"]["registration"]["ticketCode"],
            second["data"]["register"]["registration"]["ticketCode"]);
        assert_eq!(seats(&app, &id).await["seats"]["taken"], 1, "one seat, not two");
        let stored = registration::Entity::find_by_id(row_id(&first["data"]["register"]["registration"]["id"]))
            .one(&app.state.db).await.expect("db").expect("row");
        assert_eq!(stored.account_id, Some(p.id), "registered to the signed-in account");

        // Concurrent retries of one key still make one registration.
        let q = app.account("q", &[Role::Donor]).await;
        let input = json!({ "eventId": id, "privacyConsent": true, "clientKey": "retry-1" });
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (client, url, token, input) =
                (app.client.clone(), app.url("/graphql"), q.token.clone(), input.clone());
            tasks.push(tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": REGISTER, "variables": { "input": input } }))
                    .send().await.expect("sent").json().await.expect("json");
                body["data"]["register"]["registration"]["id"].clone()
            }));
        }
        let ids: HashSet<String> = futures::future::join_all(tasks).await.into_iter()
            .map(|r| r.expect("task").to_string()).collect();
        assert_eq!(ids.len(), 1, "all retries answer with one registration: {ids:?}");
        assert_eq!(seats(&app, &id).await["seats"]["taken"], 2);
    }

    async fn approval_puts_registrations_on_hold(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": 1, "requiresApproval": true })).await;
        let p = app.account("p", &[Role::Donor]).await;
        let q = app.account("q", &[Role::Donor]).await;
        let rp = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true })).await;
        let rq = register_as(&app, &q, json!({ "eventId": id, "privacyConsent": true })).await;
        assert_eq!(rp["data"]["register"]["registration"]["status"], "PENDING");
        assert_eq!(seats(&app, &id).await["seats"]["pendingRegistrations"], 2);
        let decide = "mutation($i: DecideRegistrationInput!) { decideRegistration(input: $i) { registration { status } } }";
        let self_accept = app.gql_as(&Credentials::account(&p), decide,
            json!({ "i": { "id": rp["data"]["register"]["registration"]["id"], "accept": true } })).await;
        assert_eq!(code(&self_accept), "FORBIDDEN");
        let accepted = app.ok(decide, json!({ "i": { "id": rp["data"]["register"]["registration"]["id"], "accept": true } })).await;
        assert_eq!(accepted["decideRegistration"]["registration"]["status"], "CONFIRMED");
        let second = app.ok(decide, json!({ "i": { "id": rq["data"]["register"]["registration"]["id"], "accept": true } })).await;
        assert_eq!(second["decideRegistration"]["registration"]["status"], "WAITLISTED", "full: accepted onto the waitlist");
        let again = app.gql(decide, json!({ "i": { "id": rq["data"]["register"]["registration"]["id"], "accept": false } })).await;
        assert_eq!(reason(&again), "NOT_PENDING");
    }

    async fn check_in_is_idempotent_and_counts_person_times(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::minutes(30), json!({ "capacity": 10, "groupLimit": 4 })).await;
        let other = published_event(&app, &org, Duration::minutes(30), json!({})).await;
        let future = published_event(&app, &org, Duration::days(3), json!({})).await;
        let p = app.account("p", &[Role::Donor]).await;
        let r = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true, "partySize": 3,
            "groups": { "women": 2, "children": 1, "familyMembers": 3 } })).await;
        let ticket = r["data"]["register"]["registration"]["ticketCode"].as_str().expect("ticket").to_owned();
        assert_eq!(ticket.len(), 16);
        assert!(ticket.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "QR alphanumeric: {ticket}");
        let fr = register_as(&app, &p, json!({ "eventId": future, "privacyConsent": true })).await;

        // The registrant cannot check themself in.
        let selfscan = app.gql_as(&Credentials::account(&p), CHECK_IN,
            json!({ "input": { "eventId": id, "ticketCode": ticket } })).await;
        assert_eq!(code(&selfscan), "FORBIDDEN");

        let first = app.ok(CHECK_IN, json!({ "input": { "eventId": id, "ticketCode": ticket.to_lowercase(), "attended": 2 } })).await;
        assert_eq!(first["checkIn"]["alreadyCheckedIn"], false);
        assert_eq!(first["checkIn"]["registration"]["attended"], 2);
        assert_eq!(first["checkIn"]["registration"]["groups"], json!({ "women": 2, "children": 1 }));
        assert_eq!(first["checkIn"]["seats"]["checkedInPersons"], 2, "live counts");
        let second = app.ok(CHECK_IN, json!({ "input": { "eventId": id, "ticketCode": ticket } })).await;
        assert_eq!(second["checkIn"]["alreadyCheckedIn"], true);
        assert_eq!(second["checkIn"]["checkedInAt"], first["checkIn"]["checkedInAt"], "reports the first scan's time");
        assert_eq!(second["checkIn"]["seats"]["checkedInRegistrations"], 1, "never a second attendance");

        let elsewhere = app.gql(CHECK_IN, json!({ "input": { "eventId": other, "ticketCode": ticket } })).await;
        assert_eq!(reason(&elsewhere), "TICKET_FOR_ANOTHER_EVENT");
        let unknown = app.gql(CHECK_IN, json!({ "input": { "eventId": id, "ticketCode": "NOSUCHTICKET" } })).await;
        assert_eq!(reason(&unknown), "UNKNOWN_TICKET");
        let early = app.gql(CHECK_IN, json!({ "input": { "eventId": future,
            "ticketCode": fr["data"]["register"]["registration"]["ticketCode"] } })).await;
        assert_eq!(reason(&early), "CHECK_IN_NOT_OPEN");

        let checked = app.gql_as(&Credentials::account(&p), CANCEL,
            json!({ "input": { "id": r["data"]["register"]["registration"]["id"] } })).await;
        assert_eq!(reason(&checked), "ALREADY_CHECKED_IN");

        let early_end = app.gql(TRANSITION, json!({ "input": { "id": future, "status": "COMPLETED" } })).await;
        assert_eq!(reason(&early_end), "EVENT_NOT_STARTED");

        let s = seats(&app, &id).await;
        assert_eq!(s["impact"], json!({ "total": 2, "women": 2, "children": 1, "familyMembers": 2, "professionals": 0 }),
            "groups are capped at the persons present");
        let period = app.ok("query($f: DateTime!, $t: DateTime!) { personTimes(from: $f, to: $t) { total women children events } }",
            json!({ "f": at(Duration::days(-1)), "t": at(Duration::days(1)) })).await;
        assert_eq!(period["personTimes"], json!({ "total": 2, "women": 2, "children": 1, "events": 1 }));
        let totals = api::service::event::person_times(&app.state.db, Utc::now() - Duration::days(1), Utc::now() + Duration::days(1))
            .await.expect("totals");
        assert_eq!(totals.total, 2);
    }

    async fn training_attendance_earns_the_certificate(app) {
        let org = organizer(&app).await;
        let programme = app.ok(
            "mutation($i: CreateTrainingProgrammeInput!) { createTrainingProgramme(input: $i) { programme { id } } }",
            json!({ "i": { "organizerId": org, "title": "社会工作实务培训" } }),
        ).await["createTrainingProgramme"]["programme"]["id"].clone();
        let id = published_event(&app, &org, Duration::minutes(20), json!({ "kind": "TRAINING",
            "training": { "programmeId": programme, "cohort": 1, "hours": 6, "certificateThresholdPercent": 80 } })).await;
        let p = app.account("p", &[Role::Donor]).await;
        let q = app.account("q", &[Role::Donor]).await;
        let rp = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true })).await;
        register_as(&app, &q, json!({ "eventId": id, "privacyConsent": true })).await;
        app.ok(CHECK_IN, json!({ "input": { "eventId": id,
            "ticketCode": rp["data"]["register"]["registration"]["ticketCode"] } })).await;
        let regs = app.ok(r#"query($id: ID!) { event(id: $id) { registrations { edges { node { name certificateEligible } } } } }"#,
            json!({ "id": id })).await;
        let eligible: Vec<&Value> = regs["event"]["registrations"]["edges"].as_array().expect("edges")
            .iter().map(|e| &e["node"]["certificateEligible"]).collect();
        assert_eq!(eligible, [&json!(true), &json!(false)]);
        let cohorts = app.ok("query($id: ID!) { trainingProgramme(id: $id) { cohorts { cohort title } } }",
            json!({ "id": programme })).await;
        assert_eq!(cohorts["trainingProgramme"]["cohorts"][0]["cohort"], 1);
    }

    async fn identity_documents_are_masked_for_organizers_and_purged(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "kind": "EXCHANGE",
            "requiresIdentityDocument": true })).await;
        let plain = published_event(&app, &org, Duration::days(2), json!({})).await;
        let p = app.account("p", &[Role::Donor]).await;
        let missing = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true })).await;
        assert_eq!(reason(&missing), "IDENTITY_DOCUMENT_REQUIRED");
        let malformed = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true,
            "identityDocument": { "type": "MAINLAND_ID", "number": "12345" } })).await;
        assert_eq!(reason(&malformed), "INVALID_IDENTITY_DOCUMENT");
        let r = register_as(&app, &p, json!({ "eventId": id, "privacyConsent": true,
            "identityDocument": { "type": "MAINLAND_ID", "number": "35020319900101123x" } })).await;
        assert_eq!(r["data"]["register"]["registration"]["identityDocument"], Value::Null, "not even the registrant sees it");
        let unneeded = register_as(&app, &p, json!({ "eventId": plain, "privacyConsent": true,
            "identityDocument": { "type": "PASSPORT", "number": "E12345678" } })).await;
        let unneeded_id = row_id(&unneeded["data"]["register"]["registration"]["id"]);
        let row = registration::Entity::find_by_id(unneeded_id).one(&app.state.db).await.expect("db").expect("row");
        assert_eq!(row.id_doc_number, None, "not stored where the event does not need it");

        let seen = app.ok(r#"query($id: ID!) { event(id: $id) { registrations { edges { node {
            identityDocument { type maskedNumber purgedAt } } } } } }"#, json!({ "id": id })).await;
        assert_eq!(seen["event"]["registrations"]["edges"][0]["node"]["identityDocument"],
            json!({ "type": "MAINLAND_ID", "maskedNumber": "35**************3X", "purgedAt": null }));

        // Not yet due: the event has not ended.
        let retention = std::time::Duration::from_secs(30 * 24 * 3600);
        let purged = api::service::event::purge_identity_documents(app.state.ctx(), &crate::helpers::actor(), retention, Utc::now()).await.expect("purge");
        assert_eq!(purged, 0);
        let later = Utc::now() + Duration::days(40);
        let purged = api::service::event::purge_identity_documents(app.state.ctx(), &crate::helpers::actor(), retention, later).await.expect("purge");
        assert_eq!(purged, 1);
        let seen = app.ok(r#"query($id: ID!) { event(id: $id) { registrations { edges { node {
            identityDocument { type maskedNumber purgedAt } } } } } }"#, json!({ "id": id })).await;
        let doc = &seen["event"]["registrations"]["edges"][0]["node"]["identityDocument"];
        assert_eq!(doc["type"], "MAINLAND_ID");
        assert_eq!(doc["maskedNumber"], Value::Null);
        assert!(doc["purgedAt"].is_string());
        let rows = registration::Entity::find().filter(registration::Column::IdDocNumber.is_not_null())
            .all(&app.state.db).await.expect("db");
        assert!(rows.is_empty(), "no number left in the database");
    }

    async fn partners_with_register_scope_register_named_guests(app) {
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({})).await;
        let ctx = app.state.ctx();
        let with = identity::create_api_key(ctx, &crate::helpers::actor(), identity::NewApiKey::secret("小程序", &[ApiScope::Register], None), 0).await.expect("key");
        let without = identity::create_api_key(ctx, &crate::helpers::actor(), identity::NewApiKey::secret("只读", &[ApiScope::Read], None), 0).await.expect("key");
        let input = json!({ "input": { "eventId": id, "privacyConsent": true,
            "guest": { "name": "黄秀英", "phone": "138-0592-0001" } } });
        let ok = app.ok_as(&Credentials::api_key(&with.secret), REGISTER, input.clone()).await;
        assert_eq!(ok["register"]["registration"]["name"], "黄秀英");
        assert_eq!(ok["register"]["registration"]["status"], "CONFIRMED");
        let twice = app.gql_as(&Credentials::api_key(&with.secret), REGISTER, input.clone()).await;
        assert_eq!(reason(&twice), "ALREADY_REGISTERED", "one registration per person (phone)");
        let denied = app.gql_as(&Credentials::api_key(&without.secret), REGISTER, input).await;
        assert_eq!(code(&denied), "FORBIDDEN");
        let cancel = app.ok_as(&Credentials::api_key(&with.secret), CANCEL,
            json!({ "input": { "id": ok["register"]["registration"]["id"] } })).await;
        assert_eq!(cancel["cancelRegistration"]["registration"]["status"], "CANCELLED");
    }

    async fn concurrent_registrations_and_cancellations_never_overfill(app) {
        const CAPACITY: i64 = 8;
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": CAPACITY, "groupLimit": 2 })).await;
        let event_row = row_id(&json!(id));
        let mut people = Vec::new();
        for i in 0..30 {
            people.push(app.account(&format!("c{i}"), &[Role::Donor]).await);
        }
        let send = |who: &TestAccount, query: &'static str, input: Value| {
            let (client, url, token) = (app.client.clone(), app.url("/graphql"), who.token.clone());
            tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": query, "variables": { "input": input } }))
                    .send().await.expect("sent").json().await.expect("json");
                body
            })
        };
        // Wave 1: 14 people register at once (parties of 1 and 2).
        let wave1: Vec<_> = people[..14].iter().enumerate()
            .map(|(i, p)| send(p, REGISTER, json!({ "eventId": id, "privacyConsent": true, "partySize": 1 + (i % 2) })))
            .collect();
        let mut first_ids = Vec::new();
        for t in wave1 {
            let body = t.await.expect("task");
            assert!(body.get("errors").is_none(), "{body}");
            first_ids.push(body["data"]["register"]["registration"]["id"].clone());
        }
        // Wave 2: 16 more register while 9 of the first cancel, all at once.
        let mut wave2 = Vec::new();
        for (i, p) in people[14..].iter().enumerate() {
            wave2.push(send(p, REGISTER, json!({ "eventId": id, "privacyConsent": true, "partySize": 1 + (i % 2) })));
        }
        for (p, rid) in people[..9].iter().zip(&first_ids) {
            wave2.push(send(p, CANCEL, json!({ "id": rid })));
        }
        for t in wave2 {
            let body = t.await.expect("task");
            assert!(body.get("errors").is_none(), "{body}");
        }

        let rows = registration::Entity::find()
            .filter(registration::Column::EventId.eq(event_row))
            .order_by_asc(registration::Column::QueuedAt)
            .order_by_asc(registration::Column::Id)
            .all(&app.state.db).await.expect("db");
        let confirmed: i64 = rows.iter().filter(|r| r.status == RegistrationStatus::Confirmed)
            .map(|r| r.party_size as i64).sum();
        let event = entity::event::Entity::find_by_id(event_row).one(&app.state.db).await.expect("db").expect("event");
        assert!(confirmed <= CAPACITY, "confirmed {confirmed} > capacity");
        assert_eq!(event.seats_taken as i64, confirmed, "the counter matches the confirmed seats");
        assert_eq!(rows.iter().filter(|r| r.status == RegistrationStatus::Cancelled).count(), 9);
        // Waitlist order: nobody waits while a seat they fit is free, and no waiting party
        // could have taken the seats of a confirmed one registered after it… unless it was
        // too large: every waitlisted party is larger than the seats left.
        let left = CAPACITY - confirmed;
        for w in rows.iter().filter(|r| r.status == RegistrationStatus::Waitlisted) {
            assert!(w.party_size as i64 > left, "registration {} waits though {left} seats are free", w.id);
        }
        let waiting_ones: Vec<&registration::Model> = rows.iter()
            .filter(|r| r.status == RegistrationStatus::Waitlisted && r.party_size == 1).collect();
        if let Some(first_waiting_single) = waiting_ones.first() {
            let later_confirmed_single = rows.iter().any(|r| r.status == RegistrationStatus::Confirmed
                && r.party_size == 1
                && (r.queued_at, r.id) > (first_waiting_single.queued_at, first_waiting_single.id));
            assert!(!later_confirmed_single, "a single registered later was confirmed before an earlier waiting single");
        }
        let s = seats(&app, &id).await;
        assert_eq!(s["seats"]["taken"].as_i64(), Some(confirmed));
    }
}

backend_tests! {
    // One order: the `registeredAt` the API shows is the time that decided the queue, so the
    // order of those times is the confirmation order and the waitlist's order.
    async fn concurrent_registrations_show_one_order(app) {
        const CAPACITY: usize = 6;
        const PEOPLE: usize = 24;
        let org = organizer(&app).await;
        let id = published_event(&app, &org, Duration::days(2), json!({ "capacity": CAPACITY, "groupLimit": 1 })).await;
        let mut people = Vec::new();
        for i in 0..PEOPLE {
            people.push(app.account(&format!("q{i}"), &[Role::Donor]).await);
        }
        const REGISTER_AT: &str = "mutation($input: RegisterInput!) { register(input: $input) {
            registration { id status registeredAt } } }";
        let tasks: Vec<_> = people.iter().map(|p| {
            let (client, url, token) = (app.client.clone(), app.url("/graphql"), p.token.clone());
            let input = json!({ "eventId": id, "privacyConsent": true });
            tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": REGISTER_AT, "variables": { "input": input } }))
                    .send().await.expect("sent").json().await.expect("json");
                body
            })
        }).collect();
        let mut answered = std::collections::HashMap::new();
        for t in tasks {
            let body = t.await.expect("task");
            assert!(body.get("errors").is_none(), "{body}");
            let r = &body["data"]["register"]["registration"];
            answered.insert(r["id"].as_str().expect("id").to_owned(), r["registeredAt"].as_str().expect("time").to_owned());
        }

        const QUEUE: &str = r#"query($id: ID!) { event(id: $id) { registrations(first: 100) {
            edges { node { id status registeredAt waitlistPosition } } } } }"#;
        let list = app.ok(QUEUE, json!({ "id": id })).await;
        let nodes: Vec<Value> = list["event"]["registrations"]["edges"].as_array().expect("edges")
            .iter().map(|e| e["node"].clone()).collect();
        assert_eq!(nodes.len(), PEOPLE);
        let time = |n: &Value| chrono::DateTime::parse_from_rfc3339(n["registeredAt"].as_str().expect("time")).expect("RFC 3339");
        for pair in nodes.windows(2) {
            assert!(time(&pair[0]) < time(&pair[1]), "the queue is in registeredAt order: {pair:?}");
        }
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(answered[n["id"].as_str().expect("id")], n["registeredAt"].as_str().expect("time"),
                "the mutation answered the registeredAt the queue shows");
            if i < CAPACITY {
                assert_eq!(n["status"], "CONFIRMED", "the {CAPACITY} earliest hold the seats: {nodes:#?}");
                assert_eq!(n["waitlistPosition"], Value::Null);
            } else {
                assert_eq!(n["status"], "WAITLISTED", "{nodes:#?}");
                assert_eq!(n["waitlistPosition"], (i - CAPACITY + 1) as i64, "waitlist places follow registeredAt");
            }
        }

        // A seat freed goes to the earliest waiting registration.
        app.ok(CANCEL, json!({ "input": { "id": nodes[0]["id"] } })).await;
        let after = app.ok(QUEUE, json!({ "id": id })).await;
        let by_id = |rid: &Value| after["event"]["registrations"]["edges"].as_array().expect("edges").iter()
            .map(|e| e["node"].clone()).find(|n| n["id"] == *rid).expect("listed");
        assert_eq!(by_id(&nodes[CAPACITY]["id"])["status"], "CONFIRMED", "the earliest waiting one is promoted");
        assert_eq!(by_id(&nodes[CAPACITY + 1]["id"])["waitlistPosition"], 1);
    }
}

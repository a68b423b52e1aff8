//! Trainings with dated sessions: check-in per session (once per session, also under
//! concurrent scans), person-times counting each session attended, certificate eligibility as
//! the share of sessions attended, and certificate numbers for the eligible when the training
//! is completed.
use chrono::Duration;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::sql_i64;
use crate::events::{CREATE_EVENT, TRANSITION, at, organizer, register_as};
use crate::helpers::{Credentials, TestApp};
use api::service::identity::Role;

const ADD_SESSION: &str = r#"
mutation($i: AddTrainingSessionInput!) { addTrainingSession(input: $i) { session { id topic startsAt endsAt } } }"#;

const REMOVE_SESSION: &str = r#"
mutation($i: RemoveTrainingSessionInput!) { removeTrainingSession(input: $i) { removedSessionId } }"#;

const CHECK_IN: &str = r#"
mutation($i: CheckInInput!) { checkIn(input: $i) { alreadyCheckedIn registration { sessionsAttended } } }"#;

const PARTICIPANTS: &str = r#"
query($id: ID!) { event(id: $id) { impact { total }
  ... on Training { sessions { id topic } }
  registrations { edges { node { name sessionsAttended certificateEligible certificateNumber } } } } }"#;

/// A published training under way (started an hour ago, five hours to go) with four sessions:
/// three open for check-in now, one later today. Returns the training and the sessions.
async fn training_with_sessions(app: &TestApp, threshold: i64) -> (String, Vec<String>) {
    let org = organizer(app).await;
    let programme = app
        .ok(
            "mutation($i: CreateTrainingProgrammeInput!) { createTrainingProgramme(input: $i) { programme { id } } }",
            json!({ "i": { "organizerId": org, "title": "社会组织项目管理能力提升培训" } }),
        )
        .await["createTrainingProgramme"]["programme"]["id"]
        .clone();
    let created = app
        .ok(
            CREATE_EVENT,
            json!({ "input": {
        "kind": "TRAINING", "organizerId": org, "title": "项目管理培训（第五期）",
        "startsAt": at(Duration::hours(-1)), "endsAt": at(Duration::hours(5)),
        "registrationClosesAt": at(Duration::hours(4)),
        "venue": { "address": "厦门市思明区社会治理创新服务基地" }, "capacity": 30,
        "training": { "programmeId": programme, "cohort": 5, "certificateThresholdPercent": threshold } } }),
        )
        .await;
    let id = created["createEvent"]["event"]["id"].as_str().unwrap().to_owned();
    let mut sessions = Vec::new();
    for (topic, from, to) in [
        ("项目设计", Duration::minutes(-50), Duration::minutes(10)),
        ("预算管理", Duration::minutes(10), Duration::minutes(30)),
        ("执行与监测", Duration::minutes(30), Duration::minutes(50)),
        ("成效评估", Duration::hours(3), Duration::hours(4)),
    ] {
        let added = app
            .ok(
                ADD_SESSION,
                json!({ "i": { "eventId": id, "topic": topic,
            "startsAt": at(from), "endsAt": at(to) } }),
            )
            .await;
        sessions.push(added["addTrainingSession"]["session"]["id"].as_str().unwrap().to_owned());
    }
    app.ok(TRANSITION, json!({ "input": { "id": id, "status": "PUBLISHED" } })).await;
    (id, sessions)
}

async fn ticket(app: &TestApp, event: &str, label: &str) -> String {
    let who = app.account(label, &[Role::Donor]).await;
    let body = register_as(app, &who, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(body["data"]["register"]["registration"]["status"], "CONFIRMED", "{body}");
    body["data"]["register"]["registration"]["ticketCode"].as_str().unwrap().to_owned()
}

fn ext(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]
}

backend_tests! {
    async fn sessions_count_attendance_person_times_and_certificates(app) {
        let (training, sessions) = training_with_sessions(&app, 50).await;
        // Sessions lie inside the training, apart from each other, and only trainings have them.
        let body = app.gql(ADD_SESSION, json!({ "i": { "eventId": training,
            "startsAt": at(Duration::hours(4)), "endsAt": at(Duration::hours(6)) } })).await;
        assert_eq!(ext(&body)["code"], "BAD_USER_INPUT", "{body}");
        let body = app.gql(ADD_SESSION, json!({ "i": { "eventId": training,
            "startsAt": at(Duration::minutes(20)), "endsAt": at(Duration::minutes(40)) } })).await;
        assert_eq!(ext(&body)["reason"], "SESSION_OVERLAP", "{body}");
        let salon = crate::events::published_event(&app, &organizer(&app).await, Duration::days(2), json!({})).await;
        let body = app.gql(ADD_SESSION, json!({ "i": { "eventId": salon,
            "startsAt": at(Duration::days(2)), "endsAt": at(Duration::days(2) + Duration::hours(1)) } })).await;
        assert_eq!(ext(&body)["reason"], "WRONG_EVENT_KIND", "{body}");
        // The training cannot move away from its sessions; it may grow around them.
        let update = "mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { endsAt } } }";
        let body = app.gql(update, json!({ "i": { "id": training, "startsAt": at(Duration::minutes(-30)) } })).await;
        assert_eq!((ext(&body)["code"].clone(), ext(&body)["reason"].clone()), (json!("BAD_USER_INPUT"), json!("SESSIONS_OUTSIDE")), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().starts_with("1 of the training's sessions"), "{body}");
        let longer = app.ok(update, json!({ "i": { "id": training, "endsAt": at(Duration::hours(6)) } })).await;
        assert!(longer["updateEvent"]["event"]["endsAt"].is_string());

        let a = ticket(&app, &training, "a").await;
        let b = ticket(&app, &training, "b").await;
        let _c = ticket(&app, &training, "c").await;
        let check_in = |code: &str, session: Option<&str>| json!({ "i": { "eventId": training, "ticketCode": code, "sessionId": session } });

        // Check-in is per session.
        let body = app.gql(CHECK_IN, check_in(&a, None)).await;
        assert_eq!(ext(&body)["field"], "sessionId", "{body}");
        let first = app.ok(CHECK_IN, check_in(&a, Some(&sessions[0]))).await;
        assert_eq!(first["checkIn"], json!({ "alreadyCheckedIn": false, "registration": { "sessionsAttended": 1 } }));
        let again = app.ok(CHECK_IN, check_in(&a, Some(&sessions[0]))).await;
        assert_eq!(again["checkIn"], json!({ "alreadyCheckedIn": true, "registration": { "sessionsAttended": 1 } }),
            "a second scan at the same session records nothing");
        let second = app.ok(CHECK_IN, check_in(&a, Some(&sessions[1]))).await;
        assert_eq!(second["checkIn"]["registration"]["sessionsAttended"], 2);
        app.ok(CHECK_IN, check_in(&b, Some(&sessions[0]))).await;
        let body = app.gql(CHECK_IN, check_in(&b, Some(&sessions[3]))).await;
        assert_eq!(ext(&body)["reason"], "CHECK_IN_NOT_OPEN", "the last session is hours away: {body}");

        // Each session attended counts: A twice, B once. A attended 2 of 4 sessions (50%).
        let data = app.ok(PARTICIPANTS, json!({ "id": training })).await["event"].clone();
        assert_eq!(data["impact"]["total"], 3, "{data}");
        assert_eq!(data["sessions"].as_array().unwrap().len(), 4);
        assert_eq!(data["sessions"][0]["topic"], "项目设计");
        let people: Vec<(i64, bool)> = data["registrations"]["edges"].as_array().unwrap().iter()
            .map(|e| (e["node"]["sessionsAttended"].as_i64().unwrap(), e["node"]["certificateEligible"].as_bool().unwrap()))
            .collect();
        assert_eq!(people, [(2, true), (1, false), (0, false)]);

        // Completing the training numbers the eligible participants' certificates.
        app.ok(TRANSITION, json!({ "input": { "id": training, "status": "COMPLETED" } })).await;
        let data = app.ok(PARTICIPANTS, json!({ "id": training })).await["event"].clone();
        let numbers: Vec<Value> = data["registrations"]["edges"].as_array().unwrap().iter()
            .map(|e| e["node"]["certificateNumber"].clone()).collect();
        let year = api::service::event::local_date(chrono::Utc::now() - Duration::hours(1)).format("%Y").to_string();
        let issued = numbers[0].as_str().expect("a certificate for A");
        assert!(issued.starts_with(&format!("ZS-{year}-")) && issued.ends_with("-05-001"), "{issued}");
        assert_eq!(&numbers[1..], [Value::Null, Value::Null], "below the threshold: no certificate");
    }

    async fn concurrent_scans_at_one_session_record_it_once(app) {
        let (training, sessions) = training_with_sessions(&app, 75).await;
        let code = ticket(&app, &training, "scanned").await;
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let client = app.client.clone();
            let url = app.url("/graphql");
            let token = app.manager.token.clone();
            let variables = json!({ "i": { "eventId": training, "ticketCode": code, "sessionId": sessions[2] } });
            tasks.push(tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": CHECK_IN, "variables": variables }))
                    .send().await.unwrap().json().await.unwrap();
                body
            }));
        }
        let mut recorded = 0;
        for task in tasks {
            let body = task.await.unwrap();
            assert!(body.get("errors").is_none(), "{body}");
            if body["data"]["checkIn"]["alreadyCheckedIn"] == false {
                recorded += 1;
            }
        }
        assert_eq!(recorded, 1, "exactly one scan records the attendance");
        let data = app.ok(PARTICIPANTS, json!({ "id": training })).await["event"].clone();
        assert_eq!(data["registrations"]["edges"][0]["node"]["sessionsAttended"], 1);
        assert_eq!(data["impact"]["total"], 1);
        assert_eq!(data["registrations"]["edges"][0]["node"]["certificateEligible"], false, "1 of 4 is below 75%");
    }

    async fn a_session_without_check_ins_can_be_removed_one_with_them_stays(app) {
        let (training, sessions) = training_with_sessions(&app, 50).await;
        let a = ticket(&app, &training, "a").await;
        app.ok(CHECK_IN, json!({ "i": { "eventId": training, "ticketCode": a, "sessionId": sessions[0] } })).await;

        // Only the organizer removes; a session with a check-in stays; nothing changes either way.
        let outsider = Credentials::account(&app.account("outsider", &[Role::Donor]).await);
        let body = app.gql_as(&outsider, REMOVE_SESSION, json!({ "i": { "id": sessions[2] } })).await;
        assert_eq!(ext(&body)["code"], "FORBIDDEN", "{body}");
        let body = app.gql(REMOVE_SESSION, json!({ "i": { "id": sessions[0] } })).await;
        assert_eq!((ext(&body)["code"].clone(), ext(&body)["reason"].clone()), (json!("CONFLICT"), json!("SESSION_ATTENDED")), "{body}");
        let missing = api::graphql::ids::encode("TrainingSession", 999_999).to_string();
        let body = app.gql(REMOVE_SESSION, json!({ "i": { "id": missing } })).await;
        assert_eq!(ext(&body)["code"], "NOT_FOUND", "{body}");
        assert_eq!(app.ok(PARTICIPANTS, json!({ "id": training })).await["event"]["sessions"].as_array().unwrap().len(), 4);

        // A session nobody attended goes, and is logged; the share for the certificate follows.
        let removed = app.ok(REMOVE_SESSION, json!({ "i": { "id": sessions[3] } })).await;
        assert_eq!(removed["removeTrainingSession"]["removedSessionId"], sessions[3]);
        let data = app.ok(PARTICIPANTS, json!({ "id": training })).await["event"].clone();
        let left: Vec<&str> = data["sessions"].as_array().unwrap().iter().map(|s| s["topic"].as_str().unwrap()).collect();
        assert_eq!(left, ["项目设计", "预算管理", "执行与监测"]);
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'event.session_removed'").await, 1);
        let body = app.gql(REMOVE_SESSION, json!({ "i": { "id": sessions[3] } })).await;
        assert_eq!(ext(&body)["code"], "NOT_FOUND", "removed once: {body}");
        // A completed training keeps its sessions.
        app.ok(TRANSITION, json!({ "input": { "id": training, "status": "COMPLETED" } })).await;
        let body = app.gql(REMOVE_SESSION, json!({ "i": { "id": sessions[2] } })).await;
        assert_eq!(ext(&body)["reason"], "EVENT_CLOSED", "{body}");
    }

    async fn removing_a_session_while_people_check_in_at_it_loses_no_attendance(app) {
        let (training, sessions) = training_with_sessions(&app, 50).await;
        let mut codes = Vec::new();
        for i in 0..6 {
            codes.push(ticket(&app, &training, &format!("p{i}")).await);
        }
        let send = |query: &'static str, variables: Value| {
            let (client, url, token) = (app.client.clone(), app.url("/graphql"), app.manager.token.clone());
            tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send().await.unwrap().json().await.unwrap();
                body
            })
        };
        // Three rounds, one per session open now: the removal sent before, amid and after the scans.
        let (mut kept, mut outcomes) = (0, Vec::new());
        for (round, at) in [0usize, 3, 6].into_iter().enumerate() {
            let session = &sessions[round];
            let mut scans = Vec::new();
            for i in 0..=codes.len() {
                if i == at {
                    scans.push(send(REMOVE_SESSION, json!({ "i": { "id": session } })));
                }
                if let Some(code) = codes.get(i) {
                    scans.push(send(CHECK_IN, json!({ "i": { "eventId": training, "ticketCode": code, "sessionId": session } })));
                }
            }
            let (mut removed, mut checked_in) = (None, 0);
            for task in scans {
                let body = task.await.unwrap();
                if body["data"]["removeTrainingSession"].is_object() {
                    removed = Some(true);
                } else if ext(&body)["reason"] == "SESSION_ATTENDED" {
                    removed = Some(false);
                } else if body["data"]["checkIn"]["alreadyCheckedIn"] == false {
                    checked_in += 1;
                } else {
                    // A scan after the removal: the session is gone, nothing recorded.
                    assert_eq!(ext(&body)["field"], "sessionId", "{body}");
                }
            }
            let removed = removed.expect("the removal answered");
            if removed {
                assert_eq!(checked_in, 0, "a session with check-ins is never removed");
            } else {
                assert!(checked_in > 0);
            }
            kept += checked_in;
            outcomes.push((removed, checked_in));
            let rows = sql_i64(&app, "SELECT COUNT(*) FROM session_attendances").await;
            let counted = sql_i64(&app, "SELECT CAST(COALESCE(SUM(sessions_attended), 0) AS BIGINT) FROM registrations").await;
            assert_eq!((rows, counted), (kept, kept), "every recorded check-in is kept and counted once: {outcomes:?}");
        }
    }
}

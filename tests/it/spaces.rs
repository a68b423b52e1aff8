//! Spaces and bookings end to end: spaces, every booking rule, buffers, the overlap guarantee
//! under concurrency, conflict suggestions, approvals, cancellation, idempotent replay,
//! availability and the cached calendar.
use chrono::{Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Credentials, TestApp};
use api::service::identity::Role;

pub const CREATE_SPACE: &str = r#"
mutation($input: CreateSpaceInput!) {
  createSpace(input: $input) {
    space { id name kind floor capacity equipment photoUrls requiresApproval timeZone
      openingHours { weekday opens closes } closures { startsOn endsOn reason }
      minNoticeMinutes maxAdvanceDays setupMinutes teardownMinutes residentOrganization { name } }
  }
}"#;

pub const CREATE_BOOKING: &str = r#"
mutation($input: CreateBookingInput!) {
  createBooking(input: $input) {
    replayed
    booking { id status startsAt endsAt blockedFrom blockedUntil purpose attendees managerNote statusReason
      space { name } bookedBy { id } organization { name } }
  }
}"#;

const CONFIRM: &str = r#"
mutation($input: ConfirmBookingInput!) {
  confirmBooking(input: $input) { booking { id status managerNote } rejected { id status statusReason } }
}"#;

const REJECT: &str = r#"
mutation($input: DecideBookingInput!) { rejectBooking(input: $input) { booking { id status statusReason } } }"#;

const CANCEL: &str = r#"
mutation($input: CancelBookingInput!) { cancelBooking(input: $input) { booking { id status statusReason } cancelled { id startsAt } } }"#;

const RECURRING: &str = r#"
mutation($input: CreateRecurringBookingInput!) {
  createRecurringBooking(input: $input) {
    series { id frequency interval weekdays count until }
    bookings { id startsAt endsAt status seriesId }
    skipped { startsAt reason message }
  }
}"#;

/// `days` from today in Shanghai, at `hh:mm` Shanghai time, as an RFC 3339 instant.
pub fn at(days: i64, hh: u32, mm: u32) -> String {
    let shanghai = FixedOffset::east_opt(8 * 3600).unwrap();
    let today = Utc::now().with_timezone(&shanghai).date_naive();
    let local = (today + Duration::days(days)).and_time(NaiveTime::from_hms_opt(hh, mm, 0).unwrap());
    shanghai.from_local_datetime(&local).unwrap().with_timezone(&Utc).to_rfc3339()
}

fn every_day(opens: &str, closes: &str) -> Value {
    json!(
        ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
            .iter()
            .map(|d| json!({ "weekday": d, "opens": opens, "closes": closes }))
            .collect::<Vec<_>>()
    )
}

/// A space open every day 08:00–22:00 Shanghai time, with `extra` fields on top.
pub async fn space(app: &TestApp, name: &str, capacity: i64, extra: Value) -> Value {
    let mut input = json!({ "name": name, "kind": "TRAINING_ROOM", "capacity": capacity,
        "openingHours": every_day("08:00", "22:00") });
    if let (Some(base), Some(more)) = (input.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    app.ok(CREATE_SPACE, json!({ "input": input })).await["createSpace"]["space"].clone()
}

fn booking_input(space: &Value, start: &str, end: &str, attendees: i64) -> Value {
    json!({ "spaceId": space["id"], "startsAt": start, "endsAt": end, "attendees": attendees, "purpose": "项目管理培训" })
}

async fn book(app: &TestApp, input: Value) -> Value {
    app.ok(CREATE_BOOKING, json!({ "input": input })).await["createBooking"]["booking"].clone()
}

fn error(body: &Value) -> &Value {
    &body["errors"][0]
}

backend_tests! {
    async fn spaces_are_created_updated_and_listed(app) {
        let org = crate::organizations::create(&app, json!({ "name": "厦门市巾帼志愿服务协会" })).await;
        let office = space(&app, "入驻办公室 301", 6, json!({
            "kind": "OFFICE", "floor": 3, "equipment": ["办公桌", "文件柜", "办公桌"],
            "photoUrls": ["https://img.example.cn/301.jpg"], "residentOrganizationId": org["id"],
            "closures": [{ "startsOn": "2027-02-10", "endsOn": "2027-02-16", "reason": "春节休假" }],
        })).await;
        assert_eq!(office["timeZone"], "Asia/Shanghai", "the base's zone by default");
        assert_eq!(office["equipment"], json!(["办公桌", "文件柜"]));
        assert_eq!(office["residentOrganization"]["name"], "厦门市巾帼志愿服务协会");
        assert_eq!(office["closures"][0]["reason"], "春节休假");
        assert_eq!(office["openingHours"].as_array().unwrap().len(), 7);
        let hall = space(&app, "多功能厅", 200, json!({ "kind": "HALL", "timeZone": "Asia/Taipei" })).await;
        assert_eq!(hall["timeZone"], "Asia/Taipei");

        let updated = app.ok(
            "mutation($i: UpdateSpaceInput!) { updateSpace(input: $i) { space { capacity setupMinutes residentOrganization { name } openingHours { weekday opens closes } } } }",
            json!({ "i": { "id": office["id"], "capacity": 8, "setupMinutes": 15, "residentOrganizationId": null,
                "openingHours": [{ "weekday": "MON", "opens": "09:00", "closes": "24:00" }] } }),
        ).await["updateSpace"]["space"].clone();
        assert_eq!(updated["capacity"], 8);
        assert_eq!(updated["setupMinutes"], 15);
        assert_eq!(updated["residentOrganization"], Value::Null, "residency ended");
        assert_eq!(updated["openingHours"], json!([{ "weekday": "MON", "opens": "09:00", "closes": "24:00" }]));

        let q = "query($f: SpaceFilter) { spaces(filter: $f) { totalCount edges { node { name } } } }";
        let halls = app.ok(q, json!({ "f": { "kind": ["HALL"] } })).await;
        assert_eq!(halls["spaces"]["edges"][0]["node"]["name"], "多功能厅");
        let big = app.ok(q, json!({ "f": { "minCapacity": 50 } })).await;
        assert_eq!(big["spaces"]["totalCount"], 1);
        let node = app.ok("query($id: ID!) { node(id: $id) { ... on Space { name } } }", json!({ "id": hall["id"] })).await;
        assert_eq!(node["node"]["name"], "多功能厅");

        let bad_zone = app.gql(CREATE_SPACE, json!({ "input": { "name": "X", "kind": "HALL", "capacity": 5, "timeZone": "Mars/Olympus" } })).await;
        assert_eq!(error(&bad_zone)["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(error(&bad_zone)["extensions"]["field"], "timeZone");
        let bad_hours = app.gql(CREATE_SPACE, json!({ "input": { "name": "X", "kind": "HALL", "capacity": 5,
            "openingHours": [{ "weekday": "MON", "opens": "18:00", "closes": "09:00" }] } })).await;
        assert_eq!(error(&bad_hours)["extensions"]["code"], "BAD_USER_INPUT");
        let count = app.ok("{ spaces { totalCount } }", json!({})).await["spaces"]["totalCount"].clone();
        assert_eq!(count, 2, "failed creations left nothing behind");
    }

    async fn every_rule_has_its_own_reason(app) {
        let room = space(&app, "培训室 A", 30, json!({
            "minNoticeMinutes": 120, "maxAdvanceDays": 30,
            "openingHours": every_day("09:00", "18:00"),
            // Shanghai dates: local noon is 04:00 UTC on the same date.
            "closures": [{ "startsOn": &at(5, 12, 0)[..10], "endsOn": &at(6, 12, 0)[..10], "reason": "设备检修" }],
        })).await;
        let cases = [
            (booking_input(&room, &at(3, 11, 0), &at(3, 10, 0), 10), "END_BEFORE_START"),
            (booking_input(&room, &at(3, 10, 0), &at(3, 10, 0), 10), "ZERO_LENGTH"),
            (booking_input(&room, &at(-2, 10, 0), &at(-2, 11, 0), 10), "IN_THE_PAST"),
            (booking_input(&room, &(Utc::now() + Duration::minutes(30)).format("%Y-%m-%dT%H:%M:00Z").to_string(),
                &(Utc::now() + Duration::minutes(90)).format("%Y-%m-%dT%H:%M:00Z").to_string(), 10), "TOO_SHORT_NOTICE"),
            (booking_input(&room, &at(40, 10, 0), &at(40, 11, 0), 10), "TOO_FAR_AHEAD"),
            (booking_input(&room, &at(3, 10, 0), &at(3, 11, 0), 31), "OVER_CAPACITY"),
            (booking_input(&room, &at(3, 10, 0), &at(3, 11, 0), 0), "NO_ATTENDEES"),
            (booking_input(&room, &at(5, 10, 0), &at(5, 11, 0), 10), "INSIDE_CLOSURE"),
            (booking_input(&room, &at(3, 17, 0), &at(3, 19, 0), 10), "OUTSIDE_HOURS"),
            (booking_input(&room, &at(3, 7, 0), &at(3, 9, 30), 10), "OUTSIDE_HOURS"),
            (booking_input(&room, "2030-01-01T02:00:30Z", "2030-01-01T03:00:00Z", 10), "NOT_WHOLE_MINUTE"),
            (json!({ "spaceId": room["id"], "startsAt": at(3, 10, 0), "endsAt": at(3, 11, 0), "attendees": 5 }), "PURPOSE_REQUIRED"),
        ];
        for (input, reason) in cases {
            let body = app.gql(CREATE_BOOKING, json!({ "input": input })).await;
            assert_eq!(error(&body)["extensions"]["code"], "BAD_USER_INPUT", "{reason}: {body}");
            assert_eq!(error(&body)["extensions"]["reason"], reason, "{body}");
        }
        let ok = book(&app, booking_input(&room, &at(3, 9, 0), &at(3, 18, 0), 30)).await;
        assert_eq!(ok["status"], "CONFIRMED", "the whole opening period, at capacity, is fine");
        let mine = app.ok("{ myBookings { totalCount } }", json!({})).await;
        assert_eq!(mine["myBookings"]["totalCount"], 1, "refused requests left nothing behind");
    }

    async fn buffers_keep_bookings_apart_and_conflicts_suggest_slots(app) {
        let room = space(&app, "培训室 B", 20, json!({ "setupMinutes": 30, "teardownMinutes": 15 })).await;
        let other = space(&app, "会议室 C", 25, json!({ "kind": "MEETING_ROOM" })).await;
        let _small = space(&app, "洽谈室 D", 4, json!({ "kind": "MEETING_ROOM" })).await;
        let first = book(&app, booking_input(&room, &at(2, 10, 0), &at(2, 12, 0), 10)).await;
        assert_eq!(first["blockedFrom"].as_str().unwrap()[..16], at(2, 9, 30)[..16]);

        // 12:00–13:00 touches the teardown (until 12:15) and its own setup (from 11:30).
        let body = app.gql(CREATE_BOOKING, json!({ "input": booking_input(&room, &at(2, 12, 0), &at(2, 13, 0), 15) })).await;
        let ext = &error(&body)["extensions"];
        assert_eq!(ext["code"], "CONFLICT", "{body}");
        assert_eq!(ext["reason"], "BOOKING_OVERLAP");
        assert_eq!(ext["conflictsWith"][0]["bookingId"], first["id"]);
        let suggestions = ext["suggestions"].as_array().unwrap();
        assert!(!suggestions.is_empty(), "{body}");
        let nearest = chrono::DateTime::parse_from_rfc3339(suggestions[0]["startsAt"].as_str().unwrap()).unwrap();
        let expected = chrono::DateTime::parse_from_rfc3339(&at(2, 12, 45)).unwrap();
        assert_eq!(nearest, expected, "teardown until 12:15 + 30 min setup: 12:45 is the nearest start: {body}");
        assert_eq!(suggestions[0]["spaceId"], room["id"]);
        let others = ext["otherSpaces"].as_array().unwrap();
        assert_eq!(others[0]["spaceId"], other["id"], "the other room holding 15 people, at the same time: {body}");
        assert_eq!(others[0]["startsAt"].as_str().unwrap()[..16], at(2, 12, 0)[..16], "at the asked time");
        assert!(others.iter().all(|o| o["spaceName"] != "洽谈室 D"), "too small rooms are not suggested");

        let after = book(&app, booking_input(&room, &at(2, 12, 45), &at(2, 13, 45), 10)).await;
        assert_eq!(after["status"], "CONFIRMED", "adjacent blocked ranges do not overlap");
    }

    async fn concurrent_conflicting_requests_yield_exactly_one_booking(app) {
        let room = space(&app, "培训室 E", 50, json!({ "setupMinutes": 10 })).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let client = app.client.clone();
            let url = app.url("/graphql");
            let token = app.manager.token.clone();
            // Different but overlapping intervals: 10:00–11:00, 10:05–11:05, …
            let input = booking_input(&room, &at(4, 10, i % 12 * 5), &at(4, 11, i % 12 * 5), 10);
            tasks.push(tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": CREATE_BOOKING, "variables": { "input": input } }))
                    .send().await.unwrap().json().await.unwrap();
                body
            }));
        }
        let mut won = 0;
        let mut conflicts = 0;
        for task in tasks {
            let body = task.await.unwrap();
            if body["data"]["createBooking"]["booking"]["status"] == "CONFIRMED" {
                won += 1;
            } else {
                assert_eq!(error(&body)["extensions"]["code"], "CONFLICT", "{body}");
                conflicts += 1;
            }
        }
        assert_eq!((won, conflicts), (1, 19));
        let calendar = app.ok("query($id: ID!, $from: DateTime!, $to: DateTime!) { space(id: $id) { bookings(from: $from, to: $to) { id } } }",
            json!({ "id": room["id"], "from": at(4, 0, 0), "to": at(5, 0, 0) })).await;
        assert_eq!(calendar["space"]["bookings"].as_array().unwrap().len(), 1);
    }

    async fn approvals_reject_clashing_requests_and_hide_manager_notes(app) {
        let org = crate::organizations::create(&app, json!({ "name": "厦门市家庭教育促进会" })).await;
        let org_row = api::graphql::ids::parse(org["id"].as_str().unwrap()).unwrap().1;
        let hall = space(&app, "多功能厅", 150, json!({ "kind": "HALL", "requiresApproval": true })).await;
        let alice = app.account("alice", &[Role::Donor]).await;
        let bob = app.account("bob", &[Role::Donor]).await;
        api::service::identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row, &alice.email, entity::membership::MemberRole::Editor, 0).await.unwrap();
        let (a, b) = (Credentials::account(&alice), Credentials::account(&bob));

        let mut input = booking_input(&hall, &at(6, 14, 0), &at(6, 16, 0), 80);
        input["organizationId"] = org["id"].clone();
        let first = app.ok_as(&a, CREATE_BOOKING, json!({ "input": input })).await["createBooking"]["booking"].clone();
        assert_eq!(first["status"], "PENDING");
        assert_eq!(first["organization"]["name"], "厦门市家庭教育促进会");
        let not_member = app.gql_as(&b, CREATE_BOOKING, json!({ "input": input })).await;
        assert_eq!(error(&not_member)["extensions"]["code"], "FORBIDDEN", "bob is not a member");
        let second = app.ok_as(&b, CREATE_BOOKING, json!({ "input": booking_input(&hall, &at(6, 15, 0), &at(6, 17, 0), 60) })).await["createBooking"]["booking"].clone();
        assert_eq!(second["status"], "PENDING", "pending requests may overlap");
        let elsewhere = app.ok_as(&b, CREATE_BOOKING, json!({ "input": booking_input(&hall, &at(6, 18, 0), &at(6, 19, 0), 60) })).await["createBooking"]["booking"].clone();

        let queue = app.ok("{ bookingRequests { totalCount edges { node { id bookedBy { id } } } } }", json!({})).await;
        assert_eq!(queue["bookingRequests"]["totalCount"], 3);
        assert_eq!(queue["bookingRequests"]["edges"][0]["node"]["id"], first["id"], "oldest first");
        let denied = app.gql_as(&a, "{ bookingRequests { totalCount } }", json!({})).await;
        assert_eq!(error(&denied)["extensions"]["code"], "FORBIDDEN");

        let confirmed = app.ok(CONFIRM, json!({ "input": { "id": first["id"], "managerNote": "需要投影和音响" } })).await["confirmBooking"].clone();
        assert_eq!(confirmed["booking"]["status"], "CONFIRMED");
        assert_eq!(confirmed["booking"]["managerNote"], "需要投影和音响");
        assert_eq!(confirmed["rejected"].as_array().unwrap().len(), 1, "{confirmed}");
        assert_eq!(confirmed["rejected"][0]["id"], second["id"]);
        assert!(confirmed["rejected"][0]["statusReason"].as_str().unwrap().contains("多功能厅"));

        let bobs = app.ok_as(&b, "{ myBookings { edges { node { id status statusReason managerNote } } } }", json!({})).await;
        let rows = bobs["myBookings"]["edges"].as_array().unwrap();
        let rejected = rows.iter().find(|e| e["node"]["id"] == second["id"]).unwrap();
        assert_eq!(rejected["node"]["status"], "REJECTED");
        assert!(rejected["node"]["statusReason"].is_string(), "the requester sees why");
        let alices = app.ok_as(&a, "{ myBookings { edges { node { status managerNote } } } }", json!({})).await;
        assert_eq!(alices["myBookings"]["edges"][0]["node"]["status"], "CONFIRMED");
        assert_eq!(alices["myBookings"]["edges"][0]["node"]["managerNote"], Value::Null, "internal notes are for staff");
        let public = app.gql_as(&Credentials::anonymous(),
            "query($id: ID!, $from: DateTime!, $to: DateTime!) { space(id: $id) { bookings(from: $from, to: $to) { id bookedBy { id } managerNote } } }",
            json!({ "id": hall["id"], "from": at(6, 0, 0), "to": at(7, 0, 0) })).await;
        assert_eq!(public["data"]["space"]["bookings"], json!([{ "id": first["id"], "bookedBy": null, "managerNote": null }]));

        let node = "query($id: ID!) { node(id: $id) { id ... on Booking { status } } }";
        let anonymous = Credentials::anonymous();
        assert_eq!(app.ok_as(&anonymous, node, json!({ "id": first["id"] })).await["node"]["status"], "CONFIRMED", "on the public calendar");
        assert_eq!(app.ok_as(&anonymous, node, json!({ "id": second["id"] })).await["node"], Value::Null, "a rejected request is private");
        assert_eq!(app.ok_as(&b, node, json!({ "id": second["id"] })).await["node"]["status"], "REJECTED", "but not to its requester");

        let again = app.gql(CONFIRM, json!({ "input": { "id": second["id"] } })).await;
        assert_eq!(error(&again)["extensions"]["reason"], "WRONG_STATUS");
        let rejected = app.ok(REJECT, json!({ "input": { "id": elsewhere["id"], "reason": "当天场地布展" } })).await;
        assert_eq!(rejected["rejectBooking"]["booking"]["status"], "REJECTED");
        let no_reason = app.gql(REJECT, json!({ "input": { "id": elsewhere["id"], "reason": "  " } })).await;
        assert_eq!(error(&no_reason)["extensions"]["code"], "BAD_USER_INPUT");

        let not_yours = app.gql_as(&b, CANCEL, json!({ "input": { "id": first["id"], "reason": "不需要了" } })).await;
        assert_eq!(error(&not_yours)["extensions"]["code"], "FORBIDDEN");
        let cancelled = app.ok_as(&a, CANCEL, json!({ "input": { "id": first["id"], "reason": "活动延期" } })).await;
        assert_eq!(cancelled["cancelBooking"]["booking"]["status"], "CANCELLED");
        assert_eq!(cancelled["cancelBooking"]["booking"]["statusReason"], "活动延期");
        let public = app.ok("query($id: ID!, $from: DateTime!, $to: DateTime!) { space(id: $id) { bookings(from: $from, to: $to) { id } } }",
            json!({ "id": hall["id"], "from": at(6, 0, 0), "to": at(7, 0, 0) })).await;
        assert_eq!(public["space"]["bookings"], json!([]), "a cancelled booking leaves the calendar (cache invalidated)");
        let retry = app.ok_as(&b, CREATE_BOOKING, json!({ "input": booking_input(&hall, &at(6, 15, 0), &at(6, 17, 0), 60) })).await;
        assert_eq!(retry["createBooking"]["booking"]["status"], "PENDING", "the slot is free again");
    }

    async fn replaying_a_client_key_returns_the_first_booking(app) {
        let room = space(&app, "培训室 F", 20, json!({})).await;
        let mut input = booking_input(&room, &at(3, 14, 0), &at(3, 15, 0), 12);
        input["clientKey"] = json!("mini-program-7f3a");
        let first = app.ok(CREATE_BOOKING, json!({ "input": input })).await["createBooking"].clone();
        assert_eq!(first["replayed"], false);
        let replay = app.ok(CREATE_BOOKING, json!({ "input": input })).await["createBooking"].clone();
        assert_eq!(replay["replayed"], true);
        assert_eq!(replay["booking"]["id"], first["booking"]["id"]);
        input["attendees"] = json!(13);
        let changed = app.gql(CREATE_BOOKING, json!({ "input": input })).await;
        assert_eq!(error(&changed)["extensions"]["code"], "CONFLICT");
        assert_eq!(error(&changed)["extensions"]["reason"], "CLIENT_KEY_REUSED");
        let mine = app.ok("{ myBookings { totalCount } }", json!({})).await;
        assert_eq!(mine["myBookings"]["totalCount"], 1);

        // A client retrying before it heard back: ten copies at once make one booking.
        let mut retry = booking_input(&room, &at(4, 14, 0), &at(4, 15, 0), 12);
        retry["clientKey"] = json!("mini-program-retry");
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (client, url, token) = (app.client.clone(), app.url("/graphql"), app.manager.token.clone());
            let body = json!({ "query": CREATE_BOOKING, "variables": { "input": retry } });
            tasks.push(tokio::spawn(async move {
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for task in tasks {
            let body = task.await.unwrap();
            ids.insert(body["data"]["createBooking"]["booking"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned());
        }
        assert_eq!(ids.len(), 1, "every copy answers with the same booking");
        let mine = app.ok("{ myBookings { totalCount } }", json!({})).await;
        assert_eq!(mine["myBookings"]["totalCount"], 2);
    }

    async fn availability_and_filters_follow_the_calendar(app) {
        let room = space(&app, "培训室 G", 20, json!({ "openingHours": every_day("09:00", "12:00"), "teardownMinutes": 30 })).await;
        let hall = space(&app, "报告厅", 120, json!({ "kind": "HALL" })).await;
        let q = "query($ids: [ID!]!, $from: DateTime!, $to: DateTime!) { availability(spaceIds: $ids, from: $from, to: $to, durationMinutes: 60) { space { name } slots { startsAt endsAt } } }";
        let vars = json!({ "ids": [room["id"], hall["id"]], "from": at(3, 0, 0), "to": at(4, 0, 0) });
        let before = app.ok(q, vars.clone()).await;
        let slots = &before["availability"][0]["slots"];
        assert_eq!(before["availability"][0]["space"]["name"], "培训室 G");
        assert_eq!(slots.as_array().unwrap().len(), 1);
        assert_eq!(slots[0]["startsAt"].as_str().unwrap()[..16], at(3, 9, 0)[..16]);
        assert_eq!(slots[0]["endsAt"].as_str().unwrap()[..16], at(3, 12, 0)[..16]);

        book(&app, booking_input(&room, &at(3, 10, 0), &at(3, 10, 30), 5)).await;
        let after = app.ok(q, vars).await;
        let slots = after["availability"][0]["slots"].as_array().unwrap().clone();
        // Blocked 10:00–11:00; an hour from 09:00 would run its own teardown into it.
        assert_eq!(slots.len(), 1, "{slots:?}");
        assert_eq!(slots[0]["startsAt"].as_str().unwrap()[..16], at(3, 11, 0)[..16]);
        assert_eq!(slots[0]["endsAt"].as_str().unwrap()[..16], at(3, 12, 0)[..16]);

        let filter = "query($f: SpaceFilter) { spaces(filter: $f) { edges { node { name } } } }";
        let free = app.ok(filter, json!({ "f": { "availableBetween": { "from": at(3, 10, 0), "to": at(3, 11, 0) } } })).await;
        assert_eq!(free["spaces"]["edges"], json!([{ "node": { "name": "报告厅" } }]));
        let too_long = app.gql(q, json!({ "ids": [room["id"]], "from": at(3, 0, 0), "to": at(40, 0, 0) })).await;
        assert_eq!(error(&too_long)["extensions"]["code"], "BAD_USER_INPUT");
    }
}

backend_tests! {
    async fn the_database_itself_refuses_overlapping_confirmed_rows(app) {
        use api::service::booking::is_overlap_violation;
        use entity::booking::{self as b, BookingStatus};
        use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
        use sea_orm::sea_query::Expr;

        let room = space(&app, "培训室 H", 20, json!({})).await;
        let space_id = api::graphql::ids::parse(room["id"].as_str().unwrap()).unwrap().1;
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let row = |start: &str, end: &str, status: BookingStatus| b::ActiveModel {
            space_id: Set(space_id),
            booked_by_account_id: Set(app.manager.id),
            organization_id: Set(None),
            purpose: Set("直接写入".into()),
            attendees: Set(5),
            starts_at: Set(t(start)),
            ends_at: Set(t(end)),
            blocked_start: Set(t(start)),
            blocked_end: Set(t(end)),
            status: Set(status),
            status_reason: Set(None),
            manager_note: Set(String::new()),
            client_key: Set(None),
            request_digest: Set(None),
            series_id: Set(None),
            decided_by_account_id: Set(None),
            decided_at: Set(None),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let db = &app.state.db;
        row(&at(3, 10, 0), &at(3, 11, 0), BookingStatus::Confirmed).insert(db).await.unwrap();
        // Bypassing the service: the constraint (PostgreSQL) or trigger (SQLite) still refuses.
        let err = row(&at(3, 10, 30), &at(3, 11, 30), BookingStatus::Confirmed).insert(db).await.unwrap_err();
        assert!(is_overlap_violation(&err), "{err:?}");
        row(&at(3, 11, 0), &at(3, 12, 0), BookingStatus::Confirmed).insert(db).await.expect("adjacent is fine");
        let pending = row(&at(3, 10, 30), &at(3, 11, 30), BookingStatus::Pending).insert(db).await.expect("pending may overlap");
        let err = b::Entity::update_many()
            .col_expr(b::Column::Status, Expr::val(BookingStatus::Confirmed))
            .filter(b::Column::Id.eq(pending.id))
            .exec(db)
            .await
            .unwrap_err();
        assert!(is_overlap_violation(&err), "confirming an overlapping row is refused too: {err:?}");
    }
}

backend_tests! {
    async fn demo_base_has_its_spaces_and_weeks_of_bookings(app) {
        api::seed::demo(app.state.ctx()).await.expect("seed");
        let data = app.ok("{ spaces(first: 100) { totalCount edges { node { kind name residentOrganization { stage } } } } }", json!({})).await;
        let kinds: std::collections::BTreeSet<String> = data["spaces"]["edges"].as_array().unwrap().iter()
            .map(|e| e["node"]["kind"].as_str().unwrap().to_owned()).collect();
        for kind in ["TRAINING_ROOM", "HALL", "EXHIBITION_AREA", "OFFICE"] {
            assert!(kinds.contains(kind), "the demo base has a {kind}: {kinds:?}");
        }
        let offices: Vec<_> = data["spaces"]["edges"].as_array().unwrap().iter()
            .filter(|e| e["node"]["kind"] == "OFFICE").collect();
        assert!(offices.iter().all(|o| o["node"]["residentOrganization"]["stage"] == "RESIDENT"), "offices are held by residents");
        let mine = app.ok("{ bookingRequests(status: CONFIRMED, first: 100) { totalCount edges { node { seriesId purpose } } } }", json!({})).await;
        assert!(mine["bookingRequests"]["totalCount"].as_i64().unwrap() >= 20, "{mine}");
        let cohort = mine["bookingRequests"]["edges"].as_array().unwrap().iter()
            .filter(|e| e["node"]["seriesId"].is_string()).count();
        assert_eq!(cohort, 10, "the training cohort is a recurring series of ten sessions");
        let pending = app.ok("{ bookingRequests { totalCount } }", json!({})).await;
        assert!(pending["bookingRequests"]["totalCount"].as_i64().unwrap() >= 1, "{pending}");
    }
}

/// Local (zone) wall-clock hour and minute of an RFC 3339 instant.
fn wall_time(instant: &str, zone: chrono_tz::Tz) -> (String, String) {
    let t = chrono::DateTime::parse_from_rfc3339(instant).unwrap().with_timezone(&zone);
    (t.format("%Y-%m-%d").to_string(), t.format("%H:%M").to_string())
}

#[test]
fn recurrence_keeps_local_wall_time_across_dst_and_months() {
    use api::service::recurrence::{Frequency, Recurrence, expand};
    let ny = chrono_tz::America::New_York;
    let start = ny.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap().with_timezone(&Utc);
    let weekly = Recurrence {
        frequency: Frequency::Weekly,
        interval: 1,
        weekdays: vec![chrono::Weekday::Mon],
        until: None,
        count: Some(4),
    };
    let got = expand(&weekly, ny, start, start + Duration::hours(2)).unwrap();
    let walls: Vec<_> = got.iter().map(|(s, _)| wall_time(&s.to_rfc3339(), ny)).collect();
    assert_eq!(
        walls.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        vec!["09:00"; 4],
        "09:00 across the DST change"
    );
    assert_eq!(got[0].0.format("%H").to_string(), "14", "EST");
    assert_eq!(got[2].0.format("%H").to_string(), "13", "EDT after 14 March");

    let shanghai = chrono_tz::Asia::Shanghai;
    let jan31 = shanghai.with_ymd_and_hms(2027, 1, 31, 14, 0, 0).unwrap().with_timezone(&Utc);
    let monthly = Recurrence {
        frequency: Frequency::Monthly,
        interval: 1,
        weekdays: vec![],
        until: chrono::NaiveDate::from_ymd_opt(2027, 6, 30),
        count: None,
    };
    let got = expand(&monthly, shanghai, jan31, jan31 + Duration::hours(1)).unwrap();
    let dates: Vec<_> = got.iter().map(|(s, _)| wall_time(&s.to_rfc3339(), shanghai).0).collect();
    assert_eq!(dates, vec!["2027-01-31", "2027-03-31", "2027-05-31"], "months without a 31st are left out");

    let mon_wed = Recurrence {
        frequency: Frequency::Weekly,
        interval: 2,
        weekdays: vec![chrono::Weekday::Wed, chrono::Weekday::Mon],
        until: None,
        count: Some(5),
    };
    let feb1 = shanghai.with_ymd_and_hms(2027, 2, 1, 9, 0, 0).unwrap().with_timezone(&Utc);
    let got = expand(&mon_wed, shanghai, feb1, feb1 + Duration::hours(1)).unwrap();
    let dates: Vec<_> = got.iter().map(|(s, _)| wall_time(&s.to_rfc3339(), shanghai).0).collect();
    assert_eq!(dates, vec!["2027-02-01", "2027-02-03", "2027-02-15", "2027-02-17", "2027-03-01"]);

    let both = Recurrence { count: Some(2), until: chrono::NaiveDate::from_ymd_opt(2027, 6, 30), ..weekly };
    assert!(expand(&both, ny, start, start + Duration::hours(2)).is_err(), "until or count, not both");
}

backend_tests! {
    async fn recurring_bookings_skip_or_fail_on_conflicts(app) {
        let room = space(&app, "培训室 R", 30, json!({ "maxAdvanceDays": 365 })).await;
        // Takes the second weekly occurrence's slot.
        book(&app, booking_input(&room, &at(10, 9, 0), &at(10, 11, 0), 5)).await;
        let mut input = booking_input(&room, &at(3, 9, 30), &at(3, 11, 30), 20);
        input["recurrence"] = json!({ "frequency": "WEEKLY", "count": 4 });
        input["onConflict"] = json!("FAIL");
        let failed = app.gql(RECURRING, json!({ "input": input })).await;
        assert_eq!(error(&failed)["extensions"]["code"], "CONFLICT", "{failed}");
        assert_eq!(error(&failed)["extensions"]["reason"], "OCCURRENCES_UNAVAILABLE");
        assert_eq!(error(&failed)["extensions"]["skipped"][0]["reason"], "BOOKING_OVERLAP");
        let mine = app.ok("{ myBookings { totalCount } }", json!({})).await;
        assert_eq!(mine["myBookings"]["totalCount"], 1, "all or nothing: only the blocker exists");

        input["onConflict"] = json!("SKIP");
        let made = app.ok(RECURRING, json!({ "input": input })).await["createRecurringBooking"].clone();
        let bookings = made["bookings"].as_array().unwrap();
        assert_eq!(bookings.len(), 3, "{made}");
        assert_eq!(made["skipped"].as_array().unwrap().len(), 1);
        assert_eq!(made["skipped"][0]["reason"], "BOOKING_OVERLAP");
        assert_eq!(made["skipped"][0]["startsAt"].as_str().unwrap()[..16], at(10, 9, 30)[..16]);
        let shanghai = chrono_tz::Asia::Shanghai;
        for b in bookings {
            assert_eq!(wall_time(b["startsAt"].as_str().unwrap(), shanghai).1, "09:30");
            assert_eq!(b["seriesId"], made["series"]["id"]);
            assert_eq!(b["status"], "CONFIRMED");
        }
        assert_eq!(made["series"]["frequency"], "WEEKLY");

        let monthly = app.ok(RECURRING, json!({ "input": {
            "spaceId": room["id"], "startsAt": at(4, 14, 0), "endsAt": at(4, 15, 0), "attendees": 8, "purpose": "月度督导",
            "recurrence": { "frequency": "MONTHLY", "count": 3 } } })).await["createRecurringBooking"].clone();
        let dates: Vec<_> = monthly["bookings"].as_array().unwrap().iter()
            .map(|b| wall_time(b["startsAt"].as_str().unwrap(), shanghai)).collect();
        assert_eq!(dates.len(), 3, "{monthly}");
        let months: std::collections::BTreeSet<_> = dates.iter().map(|(d, _)| d[..7].to_owned()).collect();
        assert_eq!(months.len(), 3, "one per month: {dates:?}");
        assert!(dates.iter().all(|(_, t)| t == "14:00"));
    }

    async fn cancelling_one_following_or_the_whole_series(app) {
        let room = space(&app, "培训室 S", 30, json!({})).await;
        let member = app.account("series-owner", &[Role::Donor]).await;
        let me = Credentials::account(&member);
        let mut input = booking_input(&room, &at(2, 19, 0), &at(2, 21, 0), 12);
        input["recurrence"] = json!({ "frequency": "DAILY", "count": 5 });
        let made = app.ok_as(&me, RECURRING, json!({ "input": input })).await["createRecurringBooking"].clone();
        let ids: Vec<Value> = made["bookings"].as_array().unwrap().iter().map(|b| b["id"].clone()).collect();
        assert_eq!(ids.len(), 5);

        let one = app.ok_as(&me, CANCEL, json!({ "input": { "id": ids[1], "reason": "讲师请假" } })).await;
        assert_eq!(one["cancelBooking"]["cancelled"].as_array().unwrap().len(), 1);
        let following = app.ok_as(&me, CANCEL, json!({ "input": { "id": ids[3], "reason": "课程提前结束", "scope": "THIS_AND_FOLLOWING" } })).await;
        let cancelled: Vec<_> = following["cancelBooking"]["cancelled"].as_array().unwrap().iter().map(|b| b["id"].clone()).collect();
        assert_eq!(cancelled, vec![ids[3].clone(), ids[4].clone()]);
        let other = app.account("stranger", &[Role::Donor]).await;
        let denied = app.gql_as(&Credentials::account(&other), CANCEL, json!({ "input": { "id": ids[0], "reason": "x", "scope": "SERIES" } })).await;
        assert_eq!(error(&denied)["extensions"]["code"], "FORBIDDEN");
        let series = app.ok(CANCEL, json!({ "input": { "id": ids[0], "reason": "场地改作他用", "scope": "SERIES" } })).await;
        let cancelled: Vec<_> = series["cancelBooking"]["cancelled"].as_array().unwrap().iter().map(|b| b["id"].clone()).collect();
        assert_eq!(cancelled, vec![ids[0].clone(), ids[2].clone()], "only what was still live");
        let calendar = app.ok("query($id: ID!, $from: DateTime!, $to: DateTime!) { space(id: $id) { bookings(from: $from, to: $to) { id } } }",
            json!({ "id": room["id"], "from": at(0, 0, 0), "to": at(10, 0, 0) })).await;
        assert_eq!(calendar["space"]["bookings"], json!([]));
        let single = book(&app, booking_input(&room, &at(3, 9, 0), &at(3, 10, 0), 5)).await;
        let not_series = app.gql(CANCEL, json!({ "input": { "id": single["id"], "reason": "x", "scope": "SERIES" } })).await;
        assert_eq!(error(&not_series)["extensions"]["reason"], "NOT_RECURRING");
    }
}

backend_tests! {
    async fn concurrent_confirmations_of_clashing_requests_confirm_exactly_one(app) {
        let hall = space(&app, "展示区 X", 80, json!({ "kind": "EXHIBITION_AREA", "requiresApproval": true, "teardownMinutes": 30 })).await;
        let mut ids = Vec::new();
        for i in 0..8u32 {
            let who = app.account(&format!("org{i}"), &[Role::Donor]).await;
            let input = booking_input(&hall, &at(5, 10, i * 5), &at(5, 12, i * 5), 30);
            let made = app.ok_as(&Credentials::account(&who), CREATE_BOOKING, json!({ "input": input })).await;
            ids.push(made["createBooking"]["booking"]["id"].clone());
        }
        let admin = app.account("second-manager", &[Role::Admin]).await;
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let client = app.client.clone();
            let url = app.url("/graphql");
            let token = if i % 2 == 0 { app.manager.token.clone() } else { admin.token.clone() };
            let body = json!({ "query": CONFIRM, "variables": { "input": { "id": id } } });
            tasks.push(tokio::spawn(async move {
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
            }));
        }
        let mut confirmed = 0;
        for task in tasks {
            let body = task.await.unwrap();
            if body["data"]["confirmBooking"]["booking"]["status"] == "CONFIRMED" {
                confirmed += 1;
            } else {
                assert_eq!(error(&body)["extensions"]["code"], "CONFLICT", "{body}");
            }
        }
        assert_eq!(confirmed, 1);
        let calendar = app.ok("query($id: ID!, $from: DateTime!, $to: DateTime!) { space(id: $id) { bookings(from: $from, to: $to) { id } } }",
            json!({ "id": hall["id"], "from": at(5, 0, 0), "to": at(6, 0, 0) })).await;
        assert_eq!(calendar["space"]["bookings"].as_array().unwrap().len(), 1);
    }
}

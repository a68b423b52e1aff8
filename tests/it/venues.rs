//! One building, one calendar: an event held in a base space holds the room like a confirmed
//! booking (the same database guarantee, the same `CONFLICT` with suggestions), shows on the
//! space's calendar with its title, moves with the event and is released when the event is
//! cancelled; cancelling an event cancels its registrations and frees their seats.
use chrono::Duration;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::events::{CREATE_EVENT, TRANSITION, organizer, register_as};
use crate::helpers::{Credentials, TestApp};
use crate::spaces::{CREATE_BOOKING, at, space};
use api::service::identity::Role;

const UPDATE_EVENT: &str = r#"
mutation($i: UpdateEventInput!) { updateEvent(input: $i) { event { id startsAt endsAt capacity venue { spaceId address } } } }"#;

const CALENDAR: &str = r#"
query($id: ID!, $from: DateTime!, $to: DateTime!) {
  space(id: $id) { bookings(from: $from, to: $to) { id status purpose attendees startsAt endsAt blockedFrom blockedUntil
    viewerCanCancel event { id title status } } }
}"#;

fn salon(org: &str, space: &Value, start: &str, end: &str, capacity: i64) -> Value {
    json!({ "input": { "kind": "SALON", "organizerId": org, "title": "巾帼经验分享沙龙", "startsAt": start,
        "endsAt": end, "venue": { "spaceId": space["id"] }, "capacity": capacity } })
}

fn booking(space: &Value, start: &str, end: &str, attendees: i64) -> Value {
    json!({ "input": { "spaceId": space["id"], "startsAt": start, "endsAt": end, "attendees": attendees,
        "purpose": "读书会" } })
}

async fn calendar(app: &TestApp, who: &Credentials, space: &Value, day: i64) -> Vec<Value> {
    let data =
        app.ok_as(who, CALENDAR, json!({ "id": space["id"], "from": at(day, 0, 0), "to": at(day + 1, 0, 0) })).await;
    data["space"]["bookings"].as_array().expect("bookings").clone()
}

fn ext(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]
}

async fn event_count(app: &TestApp) -> i64 {
    let data = app.ok("{ events(filter: { includeDrafts: true }) { totalCount } }", json!({})).await;
    data["events"]["totalCount"].as_i64().expect("count")
}

backend_tests! {
    async fn events_hold_their_room_like_confirmed_bookings(app) {
        let org = organizer(&app).await;
        let hall = space(&app, "多功能厅", 100, json!({ "kind": "HALL", "setupMinutes": 30, "teardownMinutes": 15 })).await;
        let other = space(&app, "第二培训室", 80, json!({})).await;
        let taken = app.ok(CREATE_BOOKING, booking(&hall, &at(3, 10, 0), &at(3, 12, 0), 20)).await;
        let booking_id = taken["createBooking"]["booking"]["id"].clone();

        // An event over the booking (buffers included) is the same CONFLICT a booking gets.
        let body = app.gql(CREATE_EVENT, salon(&org, &hall, &at(3, 12, 30), &at(3, 14, 0), 60)).await;
        assert_eq!(ext(&body)["code"], "CONFLICT", "{body}");
        assert_eq!(ext(&body)["reason"], "BOOKING_OVERLAP");
        assert_eq!(ext(&body)["conflictsWith"][0]["bookingId"], booking_id, "{body}");
        let suggestion = &ext(&body)["suggestions"][0];
        assert_eq!(suggestion["spaceId"], hall["id"], "{body}");
        assert_eq!(suggestion["startsAt"].as_str().unwrap()[..16], at(3, 12, 45)[..16],
            "teardown until 12:15 plus 30 minutes of setup: {body}");
        assert_eq!(ext(&body)["otherSpaces"][0]["spaceId"], other["id"], "{body}");
        assert_eq!(event_count(&app).await, 0, "nothing written");

        // The space must exist and seat the event's capacity; nothing is written either way.
        let missing = json!({ "id": api::graphql::ids::encode("Space", 999_999).to_string() });
        let body = app.gql(CREATE_EVENT, salon(&org, &missing, &at(3, 15, 0), &at(3, 17, 0), 60)).await;
        assert_eq!(ext(&body)["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(ext(&body)["field"], "venue.spaceId", "{body}");
        let body = app.gql(CREATE_EVENT, salon(&org, &hall, &at(3, 15, 0), &at(3, 17, 0), 500)).await;
        assert_eq!(ext(&body)["reason"], "OVER_CAPACITY", "{body}");
        assert_eq!(event_count(&app).await, 0, "nothing written");

        // A draft holds the room at once; the calendar hides a draft's title from outsiders.
        let created = app.ok(CREATE_EVENT, salon(&org, &hall, &at(3, 15, 0), &at(3, 17, 0), 60)).await;
        let event = created["createEvent"]["event"]["id"].clone();
        let public = calendar(&app, &Credentials::anonymous(), &hall, 3).await;
        assert_eq!(public.len(), 2, "{public:?}");
        assert_eq!(public[1]["purpose"], "活动筹备中");
        assert_eq!(public[1]["event"], Value::Null, "a draft stays unannounced");
        app.ok(TRANSITION, json!({ "input": { "id": event, "status": "PUBLISHED" } })).await;
        let public = calendar(&app, &Credentials::anonymous(), &hall, 3).await;
        assert_eq!(public[1]["purpose"], "巾帼经验分享沙龙", "the calendar shows the event's title");
        assert_eq!(public[1]["event"]["id"], event);
        assert_eq!(public[1]["attendees"], 60);
        assert_eq!(public[1]["status"], "CONFIRMED");
        assert_eq!(public[1]["blockedFrom"].as_str().unwrap()[..16], at(3, 14, 30)[..16], "with the setup buffer");
        let reservation = public[1]["id"].clone();

        // A booking over the event is refused the same way, naming the event.
        let body = app.gql(CREATE_BOOKING, booking(&hall, &at(3, 16, 0), &at(3, 18, 0), 10)).await;
        assert_eq!(ext(&body)["reason"], "BOOKING_OVERLAP", "{body}");
        assert_eq!(ext(&body)["conflictsWith"][0]["bookingId"], reservation);
        assert_eq!(ext(&body)["conflictsWith"][0]["eventId"], event, "{body}");
        // The reservation goes with the event, not on its own.
        assert_eq!(app.ok(CALENDAR, json!({ "id": hall["id"], "from": at(3, 0, 0), "to": at(4, 0, 0) })).await
            ["space"]["bookings"][1]["viewerCanCancel"], false);
        let body = app.gql("mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { booking { status } } }",
            json!({ "i": { "id": reservation, "reason": "腾出场地" } })).await;
        assert_eq!(ext(&body)["reason"], "EVENT_RESERVATION", "{body}");

        // Moving the event onto the booking is a CONFLICT and changes nothing; moving it to a
        // free time moves the reservation, and the old time is free again.
        let body = app.gql(UPDATE_EVENT, json!({ "i": { "id": event, "startsAt": at(3, 11, 0), "endsAt": at(3, 13, 0) } })).await;
        assert_eq!(ext(&body)["reason"], "BOOKING_OVERLAP", "{body}");
        assert_eq!(ext(&body)["conflictsWith"][0]["bookingId"], booking_id);
        let body = app.gql(UPDATE_EVENT, json!({ "i": { "id": event, "capacity": 101 } })).await;
        assert_eq!(ext(&body)["reason"], "OVER_CAPACITY", "{body}");
        let moved = app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "startsAt": at(3, 19, 0), "endsAt": at(3, 21, 0) } })).await;
        assert_eq!(moved["updateEvent"]["event"]["capacity"], 60);
        let public = calendar(&app, &Credentials::anonymous(), &hall, 3).await;
        assert_eq!(public.len(), 2);
        assert_eq!(public[1]["id"], reservation, "the same reservation, moved");
        assert_eq!(public[1]["startsAt"].as_str().unwrap()[..16], at(3, 19, 0)[..16]);
        let freed = app.ok(CREATE_BOOKING, booking(&hall, &at(3, 15, 0), &at(3, 17, 0), 10)).await;
        assert_eq!(freed["createBooking"]["booking"]["status"], "CONFIRMED");

        // Moving it to another room frees this one; moving it out of the base frees that one.
        app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "spaceId": other["id"] } } })).await;
        assert_eq!(calendar(&app, &Credentials::anonymous(), &hall, 3).await.len(), 2, "the booking and the freed-up one");
        assert_eq!(calendar(&app, &Credentials::anonymous(), &other, 3).await[0]["event"]["id"], event);
        app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "address": "厦门市思明区湖滨南路 1 号" } } })).await;
        assert!(calendar(&app, &Credentials::anonymous(), &other, 3).await.is_empty());
        app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "spaceId": hall["id"] } } })).await;
        let held = calendar(&app, &Credentials::anonymous(), &hall, 3).await;
        assert_eq!(held.len(), 3, "back in the hall: {held:?}");

        // Cancelling the event frees the room.
        app.ok(TRANSITION, json!({ "input": { "id": event, "status": "CANCELLED" } })).await;
        let after = calendar(&app, &Credentials::anonymous(), &hall, 3).await;
        assert_eq!(after.len(), 2, "{after:?}");
        assert!(after.iter().all(|b| b["event"].is_null()));
        let evening = app.ok(CREATE_BOOKING, booking(&hall, &at(3, 19, 0), &at(3, 21, 0), 10)).await;
        assert_eq!(evening["createBooking"]["booking"]["status"], "CONFIRMED");
    }

    async fn an_organizer_cannot_take_a_room_that_needs_approval_but_staff_can_set_it(app) {
        let org = organizer(&app).await;
        let member = app.account("organizer-member", &[Role::Donor]).await;
        let org_row = api::graphql::ids::parse(&org).expect("global id").1;
        api::service::identity::add_member(app.state.ctx(), &crate::helpers::actor(), org_row, &member.email,
            entity::membership::MemberRole::Editor, 0).await.expect("member");
        let member = Credentials::account(&member);
        let hall = space(&app, "审批多功能厅", 100, json!({ "kind": "HALL", "requiresApproval": true })).await;
        let room = space(&app, "开放活动室", 40, json!({})).await;

        // A member's event cannot take the hall: that is the base's to approve. Nothing is written.
        let body = app.gql_as(&member, CREATE_EVENT, salon(&org, &hall, &at(4, 10, 0), &at(4, 12, 0), 30)).await;
        assert_eq!(ext(&body)["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(ext(&body)["reason"], "APPROVAL_REQUIRED", "{body}");
        assert_eq!(ext(&body)["field"], "venue.spaceId", "{body}");
        assert_eq!(event_count(&app).await, 0, "nothing written");
        assert!(calendar(&app, &Credentials::anonymous(), &hall, 4).await.is_empty());

        // A room lent without approval is theirs to take; moving the event to the hall is not.
        let created = app.ok_as(&member, CREATE_EVENT, salon(&org, &room, &at(4, 10, 0), &at(4, 12, 0), 30)).await;
        let event = created["createEvent"]["event"]["id"].clone();
        let body = app.gql_as(&member, UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "spaceId": hall["id"] } } })).await;
        assert_eq!(ext(&body)["reason"], "APPROVAL_REQUIRED", "{body}");
        assert_eq!(calendar(&app, &Credentials::anonymous(), &room, 4).await.len(), 1, "still in the room");
        assert!(calendar(&app, &Credentials::anonymous(), &hall, 4).await.is_empty());

        // Staff set the hall; the member edits the event in it, but cannot move its time.
        app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "spaceId": hall["id"] } } })).await;
        let held = calendar(&app, &Credentials::anonymous(), &hall, 4).await;
        assert_eq!((held.len(), held[0]["status"].clone()), (1, json!("CONFIRMED")), "{held:?}");
        app.ok_as(&member, UPDATE_EVENT, json!({ "i": { "id": event, "capacity": 50 } })).await;
        app.ok_as(&member, TRANSITION, json!({ "input": { "id": event, "status": "PUBLISHED" } })).await;
        let body = app.gql_as(&member, UPDATE_EVENT,
            json!({ "i": { "id": event, "startsAt": at(4, 14, 0), "endsAt": at(4, 16, 0) } })).await;
        assert_eq!(ext(&body)["reason"], "APPROVAL_REQUIRED", "{body}");
        let held = calendar(&app, &Credentials::anonymous(), &hall, 4).await;
        assert_eq!((held.len(), held[0]["attendees"].clone()), (1, json!(50)));
        assert_eq!(held[0]["startsAt"].as_str().unwrap()[..16], at(4, 10, 0)[..16], "not moved");
        let moved = app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "startsAt": at(4, 14, 0), "endsAt": at(4, 16, 0) } })).await;
        assert_eq!(moved["updateEvent"]["event"]["startsAt"].as_str().unwrap()[..16], at(4, 14, 0)[..16]);
        // Moving out of the hall, or cancelling, frees it whoever does it.
        app.ok_as(&member, TRANSITION, json!({ "input": { "id": event, "status": "CANCELLED" } })).await;
        assert!(calendar(&app, &Credentials::anonymous(), &hall, 4).await.is_empty(), "the hall is free again");
    }

    async fn two_events_cannot_share_a_room_and_the_database_refuses_it_too(app) {
        let org = organizer(&app).await;
        let room = space(&app, "亲子活动室", 30, json!({})).await;
        app.ok(CREATE_EVENT, salon(&org, &room, &at(5, 9, 0), &at(5, 11, 0), 20)).await;
        let body = app.gql(CREATE_EVENT, salon(&org, &room, &at(5, 10, 0), &at(5, 12, 0), 20)).await;
        assert_eq!(ext(&body)["reason"], "BOOKING_OVERLAP", "{body}");
        assert!(ext(&body)["conflictsWith"][0]["eventId"].is_string(), "{body}");
        let later = app.ok(CREATE_EVENT, salon(&org, &room, &at(5, 11, 0), &at(5, 12, 0), 20)).await;
        assert!(later["createEvent"]["event"]["id"].is_string(), "adjacent events do not overlap");

        // Written around the service, an overlapping confirmed row is still refused, and an
        // event naming a missing space is refused by its foreign key.
        use sea_orm::ConnectionTrait;
        let db = &app.state.db;
        let space_row = api::graphql::ids::parse(room["id"].as_str().unwrap()).unwrap().1;
        let account = app.manager.id;
        let raw = format!(
            "INSERT INTO bookings (space_id, booked_by_account_id, purpose, attendees, starts_at, ends_at, blocked_start, \
             blocked_end, status, manager_note, created_at, updated_at) SELECT {space_row}, {account}, 'x', 1, starts_at, \
             ends_at, blocked_start, blocked_end, 'CONFIRMED', '', created_at, updated_at FROM bookings WHERE event_id IS NOT NULL \
             ORDER BY id LIMIT 1"
        );
        let refused = db.execute_unprepared(&raw).await.expect_err("the overlap guarantee covers event reservations");
        assert!(refused.to_string().contains("bookings_no_overlap"), "{refused}");
        let orphan = "UPDATE events SET venue_space_id = 999999";
        let refused = db.execute_unprepared(orphan).await.expect_err("the venue is a foreign key");
        assert!(refused.to_string().to_lowercase().contains("foreign key"), "{refused}");
    }

    async fn concurrent_events_and_bookings_on_one_room_exactly_one_wins(app) {
        let org = organizer(&app).await;
        let room = space(&app, "第一培训室", 50, json!({ "setupMinutes": 10 })).await;
        let mut tasks = Vec::new();
        for i in 0..20_u32 {
            let client = app.client.clone();
            let url = app.url("/graphql");
            let token = app.manager.token.clone();
            // Different but overlapping intervals: 10:00–11:00, 10:05–11:05, …
            let (start, end) = (at(4, 10, i % 12 * 5), at(4, 11, i % 12 * 5));
            let (query, variables) = if i % 2 == 0 {
                (CREATE_EVENT, salon(&org, &room, &start, &end, 30))
            } else {
                (CREATE_BOOKING, booking(&room, &start, &end, 30))
            };
            tasks.push(tokio::spawn(async move {
                let body: Value = client.post(url).bearer_auth(token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send().await.unwrap().json().await.unwrap();
                body
            }));
        }
        let (mut won, mut conflicts) = (0, 0);
        for task in tasks {
            let body = task.await.unwrap();
            if body.get("errors").is_none() {
                won += 1;
            } else {
                assert_eq!(ext(&body)["code"], "CONFLICT", "{body}");
                assert_eq!(ext(&body)["reason"], "BOOKING_OVERLAP", "{body}");
                conflicts += 1;
            }
        }
        assert_eq!((won, conflicts), (1, 19));
        assert_eq!(calendar(&app, &Credentials::anonymous(), &room, 4).await.len(), 1);
        let events = event_count(&app).await;
        assert!(events <= 1, "a losing event creation writes no event: {events}");
    }

    async fn cancelling_an_event_cancels_its_registrations_and_frees_their_seats(app) {
        let org = organizer(&app).await;
        let created = app.ok(CREATE_EVENT, json!({ "input": { "kind": "SALON", "organizerId": org,
            "title": "家庭教育公益讲座", "startsAt": crate::events::at(Duration::days(2)),
            "endsAt": crate::events::at(Duration::days(2) + Duration::hours(2)),
            "venue": { "address": "厦门市思明区湖滨南路 1 号" }, "capacity": 2, "groupLimit": 2 } })).await;
        let event = created["createEvent"]["event"]["id"].clone();
        app.ok(TRANSITION, json!({ "input": { "id": event, "status": "PUBLISHED" } })).await;
        let a = app.account("a", &[Role::Donor]).await;
        let b = app.account("b", &[Role::Donor]).await;
        let ra = register_as(&app, &a, json!({ "eventId": event, "partySize": 2, "privacyConsent": true })).await;
        assert_eq!(ra["data"]["register"]["registration"]["status"], "CONFIRMED");
        let rb = register_as(&app, &b, json!({ "eventId": event, "privacyConsent": true })).await;
        assert_eq!(rb["data"]["register"]["registration"]["status"], "WAITLISTED");

        app.ok(TRANSITION, json!({ "input": { "id": event, "status": "CANCELLED" } })).await;
        let seats = app.ok("query($id: ID!) { event(id: $id) { status seats { taken left confirmedRegistrations waitlistedRegistrations } } }",
            json!({ "id": event })).await;
        assert_eq!(seats["event"]["status"], "CANCELLED");
        assert_eq!(seats["event"]["seats"], json!({ "taken": 0, "left": 2, "confirmedRegistrations": 0, "waitlistedRegistrations": 0 }));
        for who in [&a, &b] {
            let mine = app.ok_as(&Credentials::account(who), "{ myRegistrations { edges { node { status cancelledAt } } } }", json!({})).await;
            assert_eq!(mine["myRegistrations"]["edges"][0]["node"]["status"], "CANCELLED", "{mine}");
            assert!(mine["myRegistrations"]["edges"][0]["node"]["cancelledAt"].is_string());
            // Both registrants are told, though their registrations are no longer live.
            let told = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
                let inbox = app.ok_as(&Credentials::account(who),
                    "{ viewer { notifications(first: 10) { edges { node { kind title } } } } }", json!({})).await;
                inbox["viewer"]["notifications"]["edges"].as_array().unwrap().iter()
                    .any(|e| e["node"]["kind"] == "event.cancelled" && e["node"]["title"] == "活动已取消")
            }).await;
            assert!(told, "the registrant is notified of the cancellation");
        }
    }

    async fn an_existing_database_upgrades(app) {
        use migration::{Migrator, MigratorTrait};
        use sea_orm::ConnectionTrait;
        // Back to the schema before this step (and whatever came after it), with events written
        // the old way: one in a real space, one naming a space that does not exist.
        let db = &app.state.db;
        let all = Migrator::migrations();
        let step = all.iter().position(|m| m.name() == "m20261204_001701_event_venue_reservations").expect("the step");
        Migrator::down(db, Some((all.len() - step) as u32)).await.expect("down");
        let org = crate::organizations::create(&app, json!({ "name": "升级前的组织" })).await;
        let room = space(&app, "议事会议室", 16, json!({})).await;
        let org_row = api::graphql::ids::parse(org["id"].as_str().unwrap()).unwrap().1;
        let room_row = api::graphql::ids::parse(room["id"].as_str().unwrap()).unwrap().1;
        let starts = chrono::Utc::now() + Duration::days(6);
        for (title, venue) in [("在会议室", room_row), ("在不存在的空间", 987_654)] {
            db.execute_unprepared(&format!(
                "INSERT INTO events (kind, title, starts_at, ends_at, time_zone, venue_space_id, organizer_id, status, \
                 capacity, group_limit, created_at, updated_at) VALUES ('SALON', '{title}', '{start}', '{end}', \
                 'Asia/Shanghai', {venue}, {org_row}, 'DRAFT', 10, 1, '{start}', '{start}')",
                start = starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                end = (starts + Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            )).await.expect("an old event");
        }
        Migrator::up(db, None).await.expect("up");

        let venues = app.ok("{ events(filter: { includeDrafts: true }) { edges { node { id title venue { spaceId address } } } } }",
            json!({})).await;
        let edges = venues["events"]["edges"].as_array().unwrap().clone();
        let find = |title: &str| edges.iter().find(|e| e["node"]["title"] == title).expect(title)["node"].clone();
        assert_eq!(find("在会议室")["venue"]["spaceId"], room["id"], "a real space is kept");
        assert_eq!(find("在不存在的空间")["venue"], json!({ "spaceId": null, "address": "space #987654" }),
            "a dangling space becomes an address so the foreign key holds");
        // The old event takes its reservation when it is published.
        let old = find("在会议室")["id"].clone();
        assert!(calendar(&app, &Credentials::anonymous(), &room, 6).await.is_empty());
        app.ok(TRANSITION, json!({ "input": { "id": old, "status": "PUBLISHED" } })).await;
        let held = calendar(&app, &Credentials::anonymous(), &room, 6).await;
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0]["event"]["id"], old);
    }

    async fn calendar_subscribers_see_an_event_take_move_and_free_a_room(app) {
        use crate::helpers::{next_data, quiet_for, subscribe};
        let org = organizer(&app).await;
        let first = space(&app, "第一活动室", 40, json!({})).await;
        let second = space(&app, "第二活动室", 40, json!({})).await;
        const LIVE: &str = r#"subscription($s: ID!, $from: DateTime!, $to: DateTime!) {
            spaceCalendar(spaceId: $s, from: $from, to: $to) { eventType booking { status purpose space { name } } } }"#;
        let window = |room: &Value| json!({ "s": room["id"], "from": at(7, 0, 0), "to": at(8, 0, 0) });
        let mut on_first = subscribe(&app, json!({}), LIVE, window(&first)).await;
        let mut on_second = subscribe(&app, json!({}), LIVE, window(&second)).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;

        let created = app.ok(CREATE_EVENT, salon(&org, &first, &at(7, 14, 0), &at(7, 16, 0), 30)).await;
        let event = created["createEvent"]["event"]["id"].clone();
        let taken = next_data(&mut on_first, "spaceCalendar").await;
        assert_eq!(taken["eventType"], "booking.confirmed", "{taken}");
        assert_eq!(taken["booking"]["purpose"], "活动筹备中", "a draft's title stays hidden");

        // Moved to the other room: both rooms' subscribers hear of it.
        app.ok(UPDATE_EVENT, json!({ "i": { "id": event, "venue": { "spaceId": second["id"] } } })).await;
        let left = next_data(&mut on_first, "spaceCalendar").await;
        assert_eq!(left["booking"]["space"]["name"], "第二活动室", "the reservation left this room: {left}");
        let arrived = next_data(&mut on_second, "spaceCalendar").await;
        assert_eq!(arrived["eventType"], "booking.confirmed");

        app.ok(TRANSITION, json!({ "input": { "id": event, "status": "CANCELLED" } })).await;
        let freed = next_data(&mut on_second, "spaceCalendar").await;
        assert_eq!(freed["eventType"], "booking.cancelled", "{freed}");
        assert_eq!(freed["booking"]["status"], "CANCELLED");
        assert!(quiet_for(&mut on_first, std::time::Duration::from_millis(200)).await, "nothing more for the first room");
    }
}

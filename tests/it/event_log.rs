//! The event log: written in the writer's transaction, read in commit order, followed by every
//! instance (cache coherence, live subscriptions), kept as the audit trail.
use std::collections::HashSet;
use std::time::Duration;

use api::events::{Actor, EventKind, EventLog, NewEvent, Position};
use api::service::identity::Role;
use chrono::Utc;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{campaign_gid, campaign_in};
use crate::helpers::{
    Backend, Credentials, TestApp, eventually, next_data, quiet_for, spawn_app, spawn_second_instance, subscribe,
};

const DONATE: &str = "mutation($i: DonateInput!) { donate(input: $i) { donation { id } } }";
const CONFIRM: &str = "mutation($i: ConfirmDonationInput!) { confirmDonation(input: $i) { donation { id } } }";
const AUDIT: &str = r#"query($f: AuditLogFilter) {
  auditLog(filter: $f, first: 10) {
    totalCount
    edges { node { type aggregateType aggregateId occurredAt payload cursor
      actor { kind label account { id displayName } } } }
  }
}"#;

async fn org_row(app: &TestApp, name: &str) -> (String, i64) {
    let org =
        crate::organizations::create(app, json!({ "name": format!("{name}{}", uuid::Uuid::new_v4().simple()) })).await;
    let id = org["id"].as_str().expect("id").to_owned();
    let row = api::graphql::ids::parse(&id).expect("id").1;
    (id, row)
}

/// The first error of a subscription that was refused (graphql-transport-ws sends it as an
/// `error` message or as a `next` with `errors`, depending on where it was raised).
async fn first_error(socket: &mut crate::helpers::Socket) -> Value {
    let msg = crate::helpers::next_ws_message(socket).await;
    match msg["type"].as_str() {
        Some("error") => msg["payload"][0].clone(),
        Some("next") => msg["payload"]["errors"][0].clone(),
        _ => panic!("expected a refusal, got {msg}"),
    }
}

async fn pledge(app: &TestApp, campaign: &str, donor: &Credentials) -> Value {
    let input = json!({ "campaignId": campaign, "amountFen": 8_800, "channel": "ONLINE_PLATFORM",
        "clientKey": uuid::Uuid::new_v4().to_string() });
    app.ok_as(donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone()
}

backend_tests! {
    async fn audit_log_names_who_confirmed_a_donation(app) {
        let (_, org) = org_row(&app, "审计测试组织").await;
        let campaign_row = campaign_in(&app, org, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let donation = pledge(&app, &campaign, &donor).await;
        app.ok(CONFIRM, json!({ "i": { "id": donation } })).await;

        let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
        let filter = json!({ "f": { "aggregate": donation, "types": ["donation.confirmed"] } });
        let log = app.ok_as(&admin, AUDIT, filter.clone()).await;
        assert_eq!(log["auditLog"]["totalCount"], 1, "{log:#}");
        let entry = &log["auditLog"]["edges"][0]["node"];
        assert_eq!(entry["type"], "donation.confirmed");
        assert_eq!(entry["aggregateType"], "Donation");
        assert_eq!(entry["aggregateId"], donation);
        assert_eq!(entry["actor"]["kind"], "ACCOUNT");
        assert_eq!(entry["actor"]["account"]["id"], app.manager.global_id, "the manager who confirmed it");
        // Written by one statement from the row it read on PostgreSQL, in Rust on SQLite: the same.
        assert_eq!(entry["payload"], json!({ "amountFen": 8_800, "campaignId": campaign_row }), "{entry:#}");
        let row = crate::crowdfunding::row_of(&donation);
        let named = crate::reconcile::sql_i64(&app, &format!(
            "SELECT COUNT(*) FROM domain_events e JOIN donations d ON d.id = e.aggregate_id \
             WHERE e.aggregate_type = 'Donation' AND e.aggregate_id = {row} AND e.account_id = d.donor_account_id",
        )).await;
        assert_eq!(named, 2, "the pledge and its confirmation both name the donor's account");

        // The whole log is the admins'; everyone else is refused.
        let manager = app.gql(AUDIT, filter.clone()).await;
        assert_eq!(manager["errors"][0]["extensions"]["code"], "FORBIDDEN", "{manager}");
        let anonymous = app.gql_as(&Credentials::anonymous(), AUDIT, filter.clone()).await;
        assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        let member = app.gql_as(&donor, AUDIT, filter).await;
        assert_eq!(member["errors"][0]["extensions"]["code"], "FORBIDDEN");

        // The donation's own history: for reconcilers (staff), null for the donor.
        let history = "query($id: ID!) { node(id: $id) { id } }";
        app.ok(history, json!({ "id": donation })).await;
        let all = app.ok_as(&admin, AUDIT, json!({ "f": { "aggregate": donation } })).await;
        let types: Vec<&str> = all["auditLog"]["edges"].as_array().expect("edges").iter()
            .map(|e| e["node"]["type"].as_str().expect("type")).collect();
        assert_eq!(types, ["donation.confirmed", "donation.pledged"], "newest first");
    }

    async fn stage_changes_show_in_the_organization_history_with_who_made_them(app) {
        let (id, _) = org_row(&app, "历史测试组织").await;
        app.ok(
            "mutation($i: TransitionOrganizationStageInput!) { transitionOrganizationStage(input: $i) { organization { id } } }",
            json!({ "i": { "id": id, "stage": "APPLIED", "note": "提交申请" } }),
        )
        .await;
        let query = r#"query($id: ID!) { node(id: $id) { ... on Organization {
            history(first: 5) { edges { node { type payload actor { kind account { id } } } } } } } }"#;
        let seen = app.ok(query, json!({ "id": id })).await;
        let entries = seen["node"]["history"]["edges"].as_array().expect("history").clone();
        assert_eq!(entries[0]["node"]["type"], "organization.stage_changed");
        assert_eq!(entries[0]["node"]["payload"]["from"], "LIAISON");
        assert_eq!(entries[0]["node"]["payload"]["to"], "APPLIED");
        assert_eq!(entries[0]["node"]["actor"]["account"]["id"], app.manager.global_id);
        assert_eq!(entries[1]["node"]["type"], "organization.created");
        // Not for the public.
        let public = app.ok_as(&Credentials::anonymous(), query, json!({ "id": id })).await;
        assert!(public["node"]["history"].is_null(), "{public}");
    }

    async fn a_follower_sees_every_committed_event_once_in_order_and_no_aborted_one(app) {
        // Many writers with random delays before committing (or rolling back); one consumer
        // reading after its position the whole time.
        let db = app.state.db.clone();
        // Set once the writers are done: how many committed. The consumer then reads until it has
        // seen that many (or 10 s pass: on PostgreSQL another database's open transaction may
        // hold the horizon back for a while).
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        // Where the consumer starts: before any writer begins.
        let start = api::events::log::settled_tail(&db).await.expect("tail");
        let consumer = {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let mut position = start;
                let mut seen = Vec::new();
                let mut deadline = None;
                loop {
                    let expected = stop.load(std::sync::atomic::Ordering::SeqCst);
                    let batch = api::events::log::read_after(&db, position, 50).await.expect("read");
                    for e in &batch {
                        let at = Position::of(e);
                        assert!(at > position, "positions only grow");
                        position = at;
                        // Only this test's events (the app writes its own fixtures' too).
                        if e.aggregate_id >= 1_000_000 {
                            seen.push(e.aggregate_id);
                        }
                    }
                    if expected != usize::MAX {
                        let deadline = *deadline.get_or_insert(tokio::time::Instant::now() + Duration::from_secs(10));
                        if (seen.len() >= expected && batch.is_empty()) || tokio::time::Instant::now() > deadline {
                            return seen;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        };
        let mut writers = Vec::new();
        for i in 0..60_i64 {
            let db = db.clone();
            writers.push(tokio::spawn(async move {
                let delay = Duration::from_millis(rand::random::<u64>() % 40);
                let commit = i % 5 != 0;
                let txn = db.begin().await.expect("begin");
                let event = NewEvent::new(EventKind::OrganizationUpdated, 1_000_000 + i);
                api::events::log::append(&txn, &Actor::system("ordering-test"), vec![event]).await.expect("append");
                tokio::time::sleep(delay).await;
                if commit { txn.commit().await.expect("commit") } else { txn.rollback().await.expect("rollback") }
                (1_000_000 + i, commit)
            }));
        }
        let mut committed = HashSet::new();
        for w in writers {
            let (id, commit) = w.await.expect("writer");
            if commit {
                committed.insert(id);
            }
        }
        stop.store(committed.len(), std::sync::atomic::Ordering::SeqCst);
        let seen = consumer.await.expect("consumer");
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no event seen twice");
        assert_eq!(unique, committed, "every committed event seen, no aborted one");
    }

    async fn a_subscriber_that_reconnects_with_its_cursor_gets_exactly_what_it_missed(app) {
        use crate::events::{organizer, published_event, register_as};
        let org = organizer(&app).await;
        let event = published_event(&app, &org, chrono::Duration::days(3), json!({ "capacity": 10 })).await;
        const SEATS: &str = r#"subscription($e: ID!, $after: String) {
            eventSeats(eventId: $e, after: $after) { cursor eventType registrationId seats { taken left capacity } } }"#;
        let mut socket = subscribe(&app, json!({}), SEATS, json!({ "e": event })).await;
        let first = next_data(&mut socket, "eventSeats").await;
        assert_eq!(first["eventType"], Value::Null);
        assert_eq!(first["seats"], json!({ "taken": 0, "left": 10, "capacity": 10 }));
        let someone = app.account("first", &[Role::Donor]).await;
        register_as(&app, &someone, json!({ "eventId": event, "privacyConsent": true })).await;
        let seen = next_data(&mut socket, "eventSeats").await;
        assert_eq!(seen["eventType"], "registration.confirmed");
        let cursor = seen["cursor"].as_str().expect("cursor").to_owned();
        drop(socket);

        // Three seat changes while away.
        let mut missed = Vec::new();
        for i in 0..3 {
            let who = app.account(&format!("missed{i}"), &[Role::Donor]).await;
            let r = register_as(&app, &who, json!({ "eventId": event, "privacyConsent": true, "partySize": 1 })).await;
            missed.push(r["data"]["register"]["registration"]["id"].as_str().expect("id").to_owned());
        }
        let mut socket = subscribe(&app, json!({}), SEATS, json!({ "e": event, "after": cursor })).await;
        for expected in &missed {
            let replayed = next_data(&mut socket, "eventSeats").await;
            assert_eq!(replayed["eventType"], "registration.confirmed");
            assert_eq!(&replayed["registrationId"], expected, "in order");
        }
        // Then live ones.
        let late = app.account("late", &[Role::Donor]).await;
        let r = register_as(&app, &late, json!({ "eventId": event, "privacyConsent": true })).await;
        let live = next_data(&mut socket, "eventSeats").await;
        assert_eq!(live["registrationId"], r["data"]["register"]["registration"]["id"]);
        assert_eq!(live["seats"]["taken"], 5);
        assert!(quiet_for(&mut socket, Duration::from_millis(300)).await, "nothing more");

        // A cursor the log no longer holds is refused with a stable reason.
        let gone = Position { tx: 0, id: i64::MAX - 1 }.cursor();
        let mut socket = subscribe(&app, json!({}), SEATS, json!({ "e": event, "after": gone })).await;
        let refused = first_error(&mut socket).await;
        assert_eq!(refused["extensions"]["reason"], "CURSOR_EXPIRED", "{refused}");
        let mut socket = subscribe(&app, json!({}), SEATS, json!({ "e": event, "after": "not-a-cursor" })).await;
        let refused = first_error(&mut socket).await;
        assert_eq!(refused["extensions"]["reason"], "INVALID_CURSOR", "{refused}");
    }

    async fn old_cursors_expire_after_the_replay_window(app) {
        use sea_orm::ConnectionTrait;
        let (id, _) = org_row(&app, "窗口测试组织").await;
        let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
        let log = app.ok_as(&admin, AUDIT, json!({ "f": { "aggregate": id } })).await;
        let cursor = log["auditLog"]["edges"][0]["node"]["cursor"].as_str().expect("cursor").to_owned();
        // Eight days ago: past the default window of seven.
        let past = Utc::now() - chrono::Duration::days(8);
        let sql = match app.backend {
            Backend::Postgres => format!("UPDATE domain_events SET occurred_at = '{}'", past.to_rfc3339()),
            Backend::Sqlite => format!("UPDATE domain_events SET occurred_at = '{}'", past.format("%Y-%m-%d %H:%M:%S%.6f+00:00")),
        };
        app.state.db.execute_unprepared(&sql).await.expect("backdate");
        const ACTIVITY: &str = "subscription($after: String) { myActivity(after: $after) { cursor type } }";
        let mut socket = subscribe(&app, json!({ "authorization": format!("Bearer {}", app.manager.token) }),
            ACTIVITY, json!({ "after": cursor })).await;
        let refused = first_error(&mut socket).await;
        assert_eq!(refused["extensions"]["reason"], "CURSOR_EXPIRED", "{refused}");
    }

    async fn my_activity_tells_a_waitlisted_person_they_were_promoted(app) {
        use crate::events::{organizer, published_event, register_as};
        let org = organizer(&app).await;
        let event = published_event(&app, &org, chrono::Duration::days(3), json!({ "capacity": 1 })).await;
        let holder = app.account("holder", &[Role::Donor]).await;
        let waiting = app.account("waiting", &[Role::Donor]).await;
        let held = register_as(&app, &holder, json!({ "eventId": event, "privacyConsent": true })).await;
        const ACTIVITY: &str = "subscription { myActivity { cursor type subjectType subjectId } }";
        let mut socket =
            subscribe(&app, json!({ "authorization": format!("Bearer {}", waiting.token) }), ACTIVITY, json!({})).await;
        // Give the subscription time to be registered with the server (as the calendar test does).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let queued = register_as(&app, &waiting, json!({ "eventId": event, "privacyConsent": true })).await;
        let mine = queued["data"]["register"]["registration"]["id"].clone();
        let item = next_data(&mut socket, "myActivity").await;
        assert_eq!(item["type"], "registration.waitlisted");
        assert_eq!(item["subjectId"], mine);
        // The holder cancels: the waiting person is promoted and told so; the holder's own
        // cancellation is not theirs to see.
        app.gql_as(&Credentials::account(&holder),
            "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { id } } }",
            json!({ "i": { "id": held["data"]["register"]["registration"]["id"] } })).await;
        let item = next_data(&mut socket, "myActivity").await;
        assert_eq!(item["type"], "registration.promoted");
        assert_eq!(item["subjectId"], mine);
        assert!(quiet_for(&mut socket, Duration::from_millis(300)).await);
        // Anonymous callers have no activity.
        let mut anonymous = subscribe(&app, json!({}), ACTIVITY, json!({})).await;
        let refused = first_error(&mut anonymous).await;
        assert_eq!(refused["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
    }

    async fn space_calendars_show_confirmations_to_all_and_requests_to_their_requester(app) {
        use crate::spaces::at;
        let space = crate::spaces::space(&app, "日历订阅会议室", 12, json!({ "requiresApproval": true })).await["id"]
            .as_str()
            .expect("space")
            .to_owned();
        const CALENDAR: &str = r#"subscription($s: ID!, $from: DateTime!, $to: DateTime!) {
            spaceCalendar(spaceId: $s, from: $from, to: $to) { cursor eventType booking { id status } } }"#;
        let window = json!({ "s": space, "from": at(0, 0, 0), "to": at(30, 0, 0) });
        let mut public = subscribe(&app, json!({}), CALENDAR, window.clone()).await;
        let requester = app.account("requester", &[Role::Donor]).await;
        let mut own = subscribe(&app, json!({ "authorization": format!("Bearer {}", requester.token) }), CALENDAR, window).await;
        // Give both subscriptions time to be registered with the server.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let request = app.gql_as(&Credentials::account(&requester),
            "mutation($i: CreateBookingInput!) { createBooking(input: $i) { booking { id status } } }",
            json!({ "i": { "spaceId": space, "startsAt": at(3, 10, 0), "endsAt": at(3, 11, 0), "attendees": 4, "purpose": "读书会" } })).await;
        let booking = request["data"]["createBooking"]["booking"]["id"].clone();
        assert_eq!(request["data"]["createBooking"]["booking"]["status"], "PENDING", "{request}");
        let seen = next_data(&mut own, "spaceCalendar").await;
        assert_eq!(seen["eventType"], "booking.requested");
        assert_eq!(seen["booking"]["id"], booking);
        app.ok("mutation($i: ConfirmBookingInput!) { confirmBooking(input: $i) { booking { id } } }",
            json!({ "i": { "id": booking } })).await;
        let confirmed = next_data(&mut public, "spaceCalendar").await;
        assert_eq!(confirmed["eventType"], "booking.confirmed", "the public learns of confirmations only");
        assert_eq!(confirmed["booking"]["status"], "CONFIRMED");
        assert_eq!(next_data(&mut own, "spaceCalendar").await["eventType"], "booking.confirmed");
        assert!(quiet_for(&mut public, Duration::from_millis(200)).await, "the request itself was not shown");
    }

    async fn writes_on_one_instance_reach_the_other_and_cli_writes_reach_both(app) {
        let second = spawn_second_instance(&app).await;
        let anonymous = Credentials::anonymous();
        let (id, row) = org_row(&app, "两实例组织").await;
        let page = "query($id: ID!) { node(id: $id) { ... on Organization { name } } }";
        // Cache the page on both instances.
        for instance in [&app, &second] {
            instance.ok_as(&anonymous, page, json!({ "id": id })).await;
            instance.ok_as(&anonymous, page, json!({ "id": id })).await;
        }
        app.ok("mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "id": id, "name": "改名后的组织" } })).await;
        let reached = eventually(Duration::from_secs(1), || async {
            second.ok_as(&anonymous, page, json!({ "id": id })).await["node"]["name"] == "改名后的组织"
        }).await;
        assert!(reached, "the other instance's cache follows the log within 1 s");

        // A write by another process (the CLI: no follower, its own cache) reaches both.
        let cli = api::startup::build_state((*app.state.settings).clone()).await.expect("cli state");
        let patch = api::service::organization::OrganizationPatch { name: Some("命令行改的名".into()), ..Default::default() };
        api::service::organization::update(cli.ctx(), &Actor::cli("test"), row, patch).await.expect("cli write");
        for instance in [&app, &second] {
            let reached = eventually(Duration::from_secs(1), || async {
                instance.ok_as(&anonymous, page, json!({ "id": id })).await["node"]["name"] == "命令行改的名"
            }).await;
            assert!(reached, "a CLI write reaches every instance within 1 s");
        }

        // A subscriber on the second instance sees a donation confirmed on the first.
        let (_, org) = org_row(&app, "跨实例订阅").await;
        let campaign = campaign_gid(campaign_in(&app, org, "ACTIVE").await);
        let mut socket = subscribe(&second, json!({}),
            "subscription($id: ID!) { campaignProgress(id: $id) { eventType progress { raisedFen } } }",
            json!({ "id": campaign })).await;
        assert_eq!(next_data(&mut socket, "campaignProgress").await["progress"]["raisedFen"], 0);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let donation = pledge(&app, &campaign, &donor).await;
        app.ok(CONFIRM, json!({ "i": { "id": donation } })).await;
        // A subscription without a cursor starts where the instance's follower is; on a busy
        // machine that can be just before the campaign's own approval, which then arrives first.
        let mut pushed = next_data(&mut socket, "campaignProgress").await;
        while pushed["eventType"] != "donation.confirmed" {
            assert!(pushed["eventType"].as_str().is_some_and(|t| t.starts_with("campaign.")), "{pushed}");
            assert_eq!(pushed["progress"]["raisedFen"], 0, "{pushed}");
            pushed = next_data(&mut socket, "campaignProgress").await;
        }
        assert_eq!(pushed["progress"]["raisedFen"], 8_800);
    }
}

/// With a shared cache (Redis), an instance that stopped between a commit and its delivery —
/// here: a process that committed and died before touching the cache — applies it when an
/// instance starts again: the coherence position is kept in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_delivers_after_restart_what_was_committed_while_it_was_down() {
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let mut first = spawn_app(Backend::Postgres).await;
    let anonymous = Credentials::anonymous();
    let (id, row) = org_row(&first, "重启测试组织").await;
    let page = "query($id: ID!) { node(id: $id) { ... on Organization { name } } }";
    first.ok_as(&anonymous, page, json!({ "id": id })).await;
    // Let the follower record its position past the last event (it saves at most once a
    // second while the log moves, and once idle), then stop the instance.
    let saved = eventually(Duration::from_secs(10), || async {
        use sea_orm::ConnectionTrait;
        let sql = "SELECT COUNT(*) AS n FROM event_consumers WHERE name = 'cache-coherence' \
                   AND event_id >= (SELECT MAX(id) FROM domain_events)";
        let backend = first.state.db.get_database_backend();
        let row = first.state.db.query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.expect("query");
        row.and_then(|r| r.try_get::<i64>("", "n").ok()).unwrap_or(0) == 1
    })
    .await;
    assert!(saved, "the follower saved its position past the last event");
    let settings = (*first.state.settings).clone();
    first.stop().await;

    // Committed by a process that never reached its cache.
    let lost = EventLog::writer_only(api::cache::Cache::disabled());
    let state = &first.state;
    let ctx = api::service::Ctx {
        db: &state.db,
        log: &lost,
        settings: &state.settings,
        tokens: &state.tokens,
        sign_in_limiter: &state.sign_in_limiter,
        mailer: None,
        account_mail_limiter: &state.account_mail_limiter,
        confirmations: &state.confirmations,
    };
    let db = api::db::connect(&settings, std::sync::Arc::new(api::metrics::Metrics::default())).await.expect("db");
    let ctx = api::service::Ctx { db: &db, ..ctx };
    let patch = api::service::organization::OrganizationPatch {
        name: Some("停机期间改的名".into()),
        ..Default::default()
    };
    api::service::organization::update(ctx, &Actor::cli("test"), row, patch).await.expect("write");

    let second = spawn_second_instance(&first).await;
    // Within the follower's first reads; the margin is for a loaded machine, not a speed goal.
    let reached = eventually(Duration::from_secs(5), || async {
        second.ok_as(&anonymous, page, json!({ "id": id })).await["node"]["name"] == "停机期间改的名"
    })
    .await;
    assert!(reached, "the restarted instance applied the event it had not delivered");
}

/// The README's first steps: `cargo run` in one terminal, `cargo run -- seed-demo` in another.
/// The server (in-process cache) has answered the directory already; the seed, a separate
/// process writing to the same SQLite file, shows within a second of finishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_run_beside_a_server_shows_within_a_second() {
    if !crate::helpers::selected(Backend::Sqlite) {
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let anonymous = Credentials::anonymous();
    let count = "{ organizations { totalCount } }";
    for _ in 0..2 {
        let before = app.ok_as(&anonymous, count, json!({})).await;
        assert_eq!(before["organizations"]["totalCount"], 0);
    }
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_incubase"))
        .arg("seed-demo")
        .env("DATABASE_URL", &app.state.settings.database_url)
        .env("INCUBASE_JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("seed-demo runs");
    assert!(status.success(), "seed-demo exits cleanly");
    let shown = eventually(Duration::from_secs(1), || async {
        app.ok_as(&anonymous, count, json!({})).await["organizations"]["totalCount"] == 176
    })
    .await;
    assert!(shown, "the seeded organizations show within 1 s of the seed finishing");
    // The seed's writes are in the log, recorded as the CLI's.
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let by_cli = app.ok_as(&admin, "query { auditLog(filter: { actorKind: CLI }, first: 1) { totalCount edges { node { actor { label } } } } }", json!({})).await;
    assert!(by_cli["auditLog"]["totalCount"].as_i64().expect("count") > 176, "{by_cli}");
    assert_eq!(by_cli["auditLog"]["edges"][0]["node"]["actor"]["label"], "seed-demo");
}

//! The impact dashboard counts what the other domains did: attendance at events and money
//! raised by campaigns, fresh after the writes that change them.
use chrono::Duration;
use serde_json::json;

use crate::backend_tests;
use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
use crate::events::{organizer, published_event, register_as};
use crate::helpers::Credentials;
use api::service::identity::Role;

const STATS: &str = r#"
query($from: NaiveDate!, $to: NaiveDate!) {
  baseStats(from: $from, to: $to, groupBy: MONTH) {
    totals { personTimesFromEvents campaignRaisedFen personTimes { total women children families others } }
  }
}"#;

const CHECK_IN: &str = "mutation($i: CheckInInput!) { checkIn(input: $i) { alreadyCheckedIn } }";

backend_tests! {
    async fn attendance_and_donations_reach_the_dashboard(app) {
        let today = api::service::impact::local_date(chrono::Utc::now());
        let vars = json!({ "from": today - Duration::days(1), "to": today + Duration::days(1) });
        let before = app.ok(STATS, vars.clone()).await["baseStats"]["totals"].clone();
        assert_eq!(before["personTimesFromEvents"], 0);
        assert_eq!(before["campaignRaisedFen"], 0);

        // Three people attend a salon today.
        let org = organizer(&app).await;
        let event = published_event(&app, &org, Duration::minutes(30), json!({ "capacity": 10, "groupLimit": 4 })).await;
        let person = app.account("attendee", &[Role::Donor]).await;
        let registered = register_as(&app, &person, json!({ "eventId": event, "privacyConsent": true, "partySize": 3,
            "groups": { "women": 2, "children": 1 } })).await;
        assert!(registered.get("errors").is_none(), "{registered}");
        let ticket = registered["data"]["register"]["registration"]["ticketCode"].as_str().expect("ticket").to_owned();
        app.ok(CHECK_IN, json!({ "i": { "eventId": event, "ticketCode": ticket } })).await;

        // A donor gives 88 yuan and the gift is confirmed.
        let campaign = campaign_in(&app, row_of(&json!(org)), "ACTIVE").await;
        let donor = app.account("donor", &[Role::Donor]).await;
        let pledged = app.ok_as(&Credentials::account(&donor), DONATE, json!({ "i": { "campaignId": campaign_gid(campaign),
            "amountFen": 8800, "channel": "ONLINE_PLATFORM", "clientKey": "dash-1" } })).await;
        app.ok(CONFIRM, json!({ "i": { "id": pledged["donate"]["donation"]["id"] } })).await;

        let after = app.ok(STATS, vars).await["baseStats"]["totals"].clone();
        assert_eq!(after["personTimesFromEvents"], 3, "{after}");
        assert_eq!(after["campaignRaisedFen"], 8800, "{after}");
        assert_eq!(after["personTimes"]["women"], 2);
        assert_eq!(after["personTimes"]["children"], 1);
        assert_eq!(after["personTimes"]["total"], 3, "event groups are split so they add up to attendance");
    }
}

backend_tests! {
    async fn money_raised_is_counted_on_the_local_day_it_was_confirmed(app) {
        use chrono::TimeZone;
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let org = organizer(&app).await;
        let campaign = campaign_in(&app, row_of(&json!(org)), "ACTIVE").await;
        let mut rows = Vec::new();
        for (i, amount) in [100, 200, 400].into_iter().enumerate() {
            let input = json!({ "campaignId": campaign_gid(campaign), "amountFen": amount, "channel": "CASH",
                "clientKey": format!("day-{i}"), "recordForGuest": true, "donorName": "郑女士" });
            let pledged = app.ok(DONATE, json!({ "i": input })).await;
            app.ok(CONFIRM, json!({ "i": { "id": pledged["donate"]["donation"]["id"] } })).await;
            rows.push(row_of(&pledged["donate"]["donation"]["id"]));
        }
        // Base time is UTC+8: 15:59:59Z is 23:59:59 local, 16:00Z the next local midnight.
        let at = |d: u32, h: u32, m: u32, s: u32| chrono::Utc.with_ymd_and_hms(2026, 3, d, h, m, s).single().expect("instant");
        for (row, when) in rows.iter().zip([at(1, 15, 59, 59), at(1, 16, 0, 0), at(1, 0, 0, 0) - Duration::hours(8)]) {
            entity::donation::Entity::update_many()
                .col_expr(entity::donation::Column::ConfirmedAt, Expr::value(Some(when)))
                .filter(entity::donation::Column::Id.eq(*row))
                .exec(&app.state.db)
                .await
                .expect("backdate");
        }
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).expect("date");
        let sum = |v: Vec<(chrono::NaiveDate, i64)>| v.into_iter().map(|(_, fen)| fen).sum::<i64>();
        let first = api::service::impact::campaign_contributions(&app.state.db, day(1), day(1)).await.expect("sum");
        assert!(first.iter().all(|(d, _)| *d == day(1)), "{first:?}");
        assert_eq!(sum(first), 500, "23:59:59 and 00:00:00 local of March 1");
        let second = api::service::impact::campaign_contributions(&app.state.db, day(2), day(2)).await.expect("sum");
        assert_eq!(second, vec![(day(2), 200)], "16:00Z is already March 2 at the base");
    }
}

const ADD_DELEGATION: &str = "mutation($i: AddDelegationInput!) { addDelegation(input: $i) { delegation { id } } }";

backend_tests! {
    async fn exchanges_by_origin_filter_events_and_reach_the_dashboard(app) {
        let today = api::service::impact::local_date(chrono::Utc::now());
        let vars = json!({ "from": today - Duration::days(1), "to": today + Duration::days(1) });
        let by_origin = r#"query($from: NaiveDate!, $to: NaiveDate!) { baseStats(from: $from, to: $to, groupBy: MONTH) {
            totals { delegationsByOrigin { origin delegations persons } }
            series { figures { delegationsByOrigin { origin delegations persons } } } } }"#;

        // An exchange under way today, with two delegations from Taiwan and one from Hong Kong;
        // another one next month with a delegation from Macao (not held yet).
        let org = organizer(&app).await;
        let held = published_event(&app, &org, Duration::hours(-1), json!({ "kind": "EXCHANGE", "title": "两岸妇女工作坊" })).await;
        let later = published_event(&app, &org, Duration::days(30), json!({ "kind": "EXCHANGE", "title": "港澳青年交流" })).await;
        published_event(&app, &org, Duration::days(3), json!({ "title": "没有代表团的沙龙" })).await;
        // Read (and cached) before the delegations arrive: adding them must refresh it.
        let before = app.ok(by_origin, vars.clone()).await;
        assert_eq!(before["baseStats"]["totals"]["delegationsByOrigin"][1], json!({ "origin": "TAIWAN", "delegations": 0, "persons": 0 }));
        for (event, origin, members) in [
            (&held, "TAIWAN", json!(["李美玲", "陈雅婷"])),
            (&held, "TAIWAN", json!([])),
            (&held, "HONG_KONG", json!(["何嘉欣"])),
            (&later, "MACAO", json!(["梁慧敏"])),
        ] {
            app.ok(ADD_DELEGATION, json!({ "i": { "eventId": event, "origin": origin, "name": "参访团",
                "leaderName": "王淑芬", "members": members } })).await;
        }

        let events = r#"query($o: [DelegationOrigin!]) { events(filter: { delegationOrigin: $o }) { totalCount edges { node { title } } } }"#;
        let titles = |data: &serde_json::Value| -> Vec<String> {
            data["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["title"].as_str().unwrap().to_owned()).collect()
        };
        let found = app.ok_as(&Credentials::anonymous(), events, json!({ "o": ["TAIWAN", "HONG_KONG"] })).await;
        assert_eq!(titles(&found), ["两岸妇女工作坊"], "once, though it has three matching delegations");
        assert_eq!(found["events"]["totalCount"], 1);
        let found = app.ok_as(&Credentials::anonymous(), events, json!({ "o": ["MACAO"] })).await;
        assert_eq!(titles(&found), ["港澳青年交流"]);
        let found = app.ok_as(&Credentials::anonymous(), events, json!({ "o": ["OVERSEAS"] })).await;
        assert!(titles(&found).is_empty());
        let all = app.ok_as(&Credentials::anonymous(), events, json!({ "o": null })).await;
        assert_eq!(all["events"]["totalCount"], 3, "no origin given: every event");

        // The dashboard counts delegations and persons (leader and members) of
        // exchanges held, by origin, in a fixed order.
        let after = app.ok(by_origin, vars).await;
        assert_eq!(after["baseStats"]["totals"]["delegationsByOrigin"], json!([
            { "origin": "MAINLAND", "delegations": 0, "persons": 0 },
            { "origin": "TAIWAN", "delegations": 2, "persons": 4 },
            { "origin": "HONG_KONG", "delegations": 1, "persons": 2 },
            { "origin": "MACAO", "delegations": 0, "persons": 0 },
            { "origin": "OVERSEAS", "delegations": 0, "persons": 0 },
        ]), "{after}");
        let in_buckets: i64 = after["baseStats"]["series"].as_array().unwrap().iter()
            .map(|b| b["figures"]["delegationsByOrigin"][1]["persons"].as_i64().unwrap()).sum();
        assert_eq!(in_buckets, 4, "the buckets add up to the totals");
    }
}

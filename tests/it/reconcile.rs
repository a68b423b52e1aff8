//! Money the federation can reconcile: pledges that expire, late payments and payments for
//! cancelled campaigns held for staff (the refund queue), on both backends.
use api::service::crowdfunding::{self as service, CampaignAction};
use api::service::identity::Role;
use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
use crate::helpers::{Credentials, TestApp};

pub const RECORD: &str = r#"
mutation($i: ConfirmDonationInput!) {
  recordDonationPayment(input: $i) {
    outcome donation { status holdReason receiptNumber receivedAt externalReference }
    progress { raisedFen donationCount donorCount }
  }
}"#;
const ACCEPT: &str = r#"
mutation($i: DonationIdInput!) {
  acceptLatePayment(input: $i) { donation { status holdReason receiptNumber } progress { raisedFen donationCount } }
}"#;
const REFUND: &str = r#"
mutation($i: RefundDonationInput!) {
  refundDonation(input: $i) { donation { status refundedAt } refund { status amountFen } progress { raisedFen donationCount } }
}"#;
const QUEUE: &str = r#"
query($c: ID, $r: [HoldReason!]) {
  refundQueue(campaignId: $c, reason: $r) { totalCount edges { node { id status holdReason amountFen } } }
}"#;
const DONATION: &str =
    "query($id: ID!) { node(id: $id) { ... on Donation { status expiresAt receivedAt holdReason receiptNumber } } }";

pub async fn org_row(app: &TestApp, name: &str) -> i64 {
    let org = crate::organizations::create(app, json!({ "name": name })).await;
    row_of(&org["id"])
}

pub async fn pledge(app: &TestApp, donor: &Credentials, campaign: &str, amount: i64) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    let input = json!({ "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM", "clientKey": key });
    let d = app.ok_as(donor, DONATE, json!({ "i": input })).await;
    d["donate"]["donation"]["id"].as_str().expect("id").to_owned()
}

pub async fn sql_i64(app: &TestApp, sql: &str) -> i64 {
    let backend = app.state.db.get_database_backend();
    let row = app.state.db.query_one_raw(Statement::from_string(backend, sql.to_owned())).await.expect("query");
    row.expect("row").try_get_by_index::<Option<i64>>(0).expect("value").unwrap_or(0)
}

pub async fn sql_text(app: &TestApp, sql: &str) -> Option<String> {
    let backend = app.state.db.get_database_backend();
    let row = app.state.db.query_one_raw(Statement::from_string(backend, sql.to_owned())).await.expect("query");
    row.expect("row").try_get_by_index::<Option<String>>(0).expect("value")
}

/// Moves a donation's creation `hours` into the past (its pledge then expires sooner).
pub async fn age(app: &TestApp, donation: &str, hours: i64) {
    let when = (Utc::now() - Duration::hours(hours)).format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string();
    let sql = format!("UPDATE donations SET created_at = '{when}' WHERE id = {}", row_of(&json!(donation)));
    let sql = if app.backend == crate::helpers::Backend::Postgres {
        sql.replace(&format!("'{when}'"), &format!("'{when}'::timestamptz"))
    } else {
        sql
    };
    app.state.db.execute_unprepared(&sql).await.expect("age the pledge");
}

/// raised_fen, and the SUM over the counting records it must equal.
pub async fn raised_and_sum(app: &TestApp, campaign_row: i64) -> (i64, i64) {
    let raised = sql_i64(app, &format!("SELECT raised_fen FROM campaigns WHERE id = {campaign_row}")).await;
    let sum = sql_i64(
        app,
        &format!(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM donations \
             WHERE campaign_id = {campaign_row} AND status IN ('CONFIRMED', 'REFUNDED')"
        ),
    )
    .await;
    (raised, sum)
}

fn year() -> String {
    (Utc::now() + Duration::hours(8)).format("%Y").to_string()
}

backend_tests! {
    async fn expired_pledges_leave_the_counts_and_late_payments_wait_for_staff(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市同安区妇女儿童之家").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let late = pledge(&app, &donor, &campaign, 10_000).await;
        let swept = pledge(&app, &donor, &campaign, 5_000).await;
        let live = pledge(&app, &donor, &campaign, 3_000).await;
        age(&app, &late, 73).await;
        age(&app, &swept, 80).await;

        // Expired at once, before any sweep ran: the clock decides, not a job.
        let d = app.ok(DONATION, json!({ "id": late })).await["node"].clone();
        assert_eq!(d["status"], "EXPIRED");
        let expires = chrono::DateTime::parse_from_rfc3339(d["expiresAt"].as_str().expect("expiresAt")).expect("time");
        assert!(expires < Utc::now(), "{d}");
        assert_eq!(app.ok(DONATION, json!({ "id": live })).await["node"]["status"], "PLEDGED");
        let cancel = "mutation($i: DonationIdInput!) { cancelDonation(input: $i) { donation { status } } }";
        let body = app.gql_as(&donor, cancel, json!({ "i": { "id": swept } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "an expired pledge is not cancelled: {body}");

        // Confirming an expired pledge records the money as a late payment: no receipt, no count.
        let confirmed = app.ok(CONFIRM, json!({ "i": { "id": late, "externalReference": "WX-LATE-1" } })).await["confirmDonation"].clone();
        assert_eq!(confirmed["donation"]["status"], "RECEIVED");
        assert_eq!(confirmed["donation"]["receiptNumber"], Value::Null);
        assert_eq!(confirmed["progress"], json!({ "raisedFen": 0, "donationCount": 0, "donorCount": 0 }));
        assert_eq!(app.ok(DONATION, json!({ "id": late })).await["node"]["holdReason"], "PLEDGE_EXPIRED");

        // The sweep marks what is still a pledge past the TTL, in batches (here of one).
        let ctx = app.state.ctx();
        let marked = service::expire_pledges(ctx, &crate::helpers::actor(), api::service::now(), 1).await.expect("sweep");
        assert_eq!(marked, 1, "only the pledge that is still PLEDGED");
        assert_eq!(sql_text(&app, &format!("SELECT status FROM donations WHERE id = {}", row_of(&json!(swept)))).await.as_deref(), Some("EXPIRED"));
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.expired'").await, 1);
        assert_eq!(service::expire_pledges(ctx, &crate::helpers::actor(), api::service::now(), 1).await.expect("again"), 0);

        // A live pledge still confirms and takes the first receipt number.
        let counted = app.ok(CONFIRM, json!({ "i": { "id": live } })).await["confirmDonation"].clone();
        assert_eq!(counted["donation"]["receiptNumber"], format!("{}-000001", year()));
        assert_eq!(counted["progress"]["raisedFen"], 3_000);

        // Money for the swept pledge arrives too: held, and both wait in the queue.
        let recorded = app.ok(RECORD, json!({ "i": { "id": swept } })).await["recordDonationPayment"].clone();
        assert_eq!(recorded["outcome"], "HELD");
        assert_eq!(recorded["donation"]["holdReason"], "PLEDGE_EXPIRED");
        assert_eq!(recorded["progress"]["raisedFen"], 3_000);
        let again = app.ok(RECORD, json!({ "i": { "id": swept } })).await["recordDonationPayment"].clone();
        assert_eq!(again["outcome"], "ALREADY_RECORDED");
        let queue = app.ok(QUEUE, json!({ "c": campaign })).await["refundQueue"].clone();
        assert_eq!(queue["totalCount"], 2);
        assert_eq!(queue["edges"][0]["node"]["id"], swept, "oldest first");
        assert_eq!(queue["edges"][1]["node"]["holdReason"], "PLEDGE_EXPIRED");
        let body = app.gql_as(&donor, QUEUE, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "the queue is for staff: {body}");

        // Staff accept one late payment (it counts now) and refund the other (it never counted).
        let accepted = app.ok(ACCEPT, json!({ "i": { "id": late } })).await["acceptLatePayment"].clone();
        assert_eq!(accepted["donation"], json!({ "status": "CONFIRMED", "holdReason": null, "receiptNumber": format!("{}-000002", year()) }));
        assert_eq!(accepted["progress"], json!({ "raisedFen": 13_000, "donationCount": 2 }));
        let body = app.gql(ACCEPT, json!({ "i": { "id": live } })).await;
        assert_eq!(body["errors"][0]["extensions"]["reason"], "NOT_A_LATE_PAYMENT", "{body}");
        let refunded = app.ok(REFUND, json!({ "i": { "id": swept, "reason": "逾期到账，原路退回" } })).await["refundDonation"].clone();
        assert_eq!(refunded["refund"], json!({ "status": "RETURNED", "amountFen": -5_000 }));
        assert_eq!(refunded["progress"], json!({ "raisedFen": 13_000, "donationCount": 2 }));
        assert_eq!(app.ok(QUEUE, json!({ "c": campaign })).await["refundQueue"]["totalCount"], 0, "refunding clears it");
        assert_eq!(raised_and_sum(&app, campaign_row).await, (13_000, 13_000));
    }

    async fn a_cancelled_campaign_refuses_confirmation_and_queues_arriving_money_for_refund(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市海沧区巾帼志愿服务中心").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let other = campaign_gid(campaign_in(&app, org_row(&app, "厦门市集美区家庭服务中心").await, "ACTIVE").await);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let before = pledge(&app, &donor, &campaign, 1_000).await;
        app.ok(CONFIRM, json!({ "i": { "id": before } })).await;
        let stranded = pledge(&app, &donor, &campaign, 2_000).await;
        let elsewhere = pledge(&app, &donor, &other, 700).await;
        age(&app, &elsewhere, 100).await;
        assert_eq!(app.ok(RECORD, json!({ "i": { "id": elsewhere } })).await["recordDonationPayment"]["outcome"], "HELD");
        service::change_status(app.state.ctx(), &crate::helpers::actor(), campaign_row, CampaignAction::Cancel, None).await.expect("cancel");

        // confirmDonation is refused with a stable reason and writes nothing.
        let events = crate::helpers::event_count(&app).await;
        let body = app.gql(CONFIRM, json!({ "i": { "id": stranded } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "CAMPAIGN_CANCELLED");
        assert_eq!(crate::helpers::event_count(&app).await, events);
        assert_eq!(app.ok(DONATION, json!({ "id": stranded })).await["node"]["status"], "PLEDGED");

        // The money arrives anyway: recorded, held for a refund, counted nowhere.
        let recorded = app.ok(RECORD, json!({ "i": { "id": stranded, "externalReference": "WX-CANCELLED-1" } })).await["recordDonationPayment"].clone();
        assert_eq!(recorded["outcome"], "HELD");
        assert_eq!(recorded["donation"]["status"], "RECEIVED");
        assert_eq!(recorded["donation"]["holdReason"], "CAMPAIGN_CANCELLED");
        assert_eq!(recorded["donation"]["externalReference"], "WX-CANCELLED-1");
        assert_eq!(recorded["donation"]["receiptNumber"], Value::Null);
        assert!(recorded["donation"]["receivedAt"].is_string());
        assert_eq!(recorded["progress"], json!({ "raisedFen": 1_000, "donationCount": 1, "donorCount": 1 }));
        let wall = "query($id: ID!) { campaign(id: $id) { donorWall { totalCount } } }";
        assert_eq!(app.ok(wall, json!({ "id": campaign })).await["campaign"]["donorWall"]["totalCount"], 1);

        // The refund queue shows it (and only this campaign's when asked so).
        let queue = app.ok(QUEUE, json!({ "c": campaign })).await["refundQueue"].clone();
        assert_eq!(queue["totalCount"], 1);
        assert_eq!(queue["edges"][0]["node"], json!({ "id": stranded, "status": "RECEIVED", "holdReason": "CAMPAIGN_CANCELLED", "amountFen": 2_000 }));
        assert_eq!(app.ok(QUEUE, json!({})).await["refundQueue"]["totalCount"], 2, "every campaign's");
        let cancelled_only = app.ok(QUEUE, json!({ "r": ["CAMPAIGN_CANCELLED"] })).await["refundQueue"].clone();
        assert_eq!(cancelled_only["totalCount"], 1);
        assert_eq!(cancelled_only["edges"][0]["node"]["id"], stranded);
        let body = app.gql(ACCEPT, json!({ "i": { "id": stranded } })).await;
        assert_eq!(body["errors"][0]["extensions"]["reason"], "NOT_A_LATE_PAYMENT", "cancelled campaigns' money is refunded: {body}");

        // Refunding it clears it; the campaign's totals never moved.
        let refunded = app.ok(REFUND, json!({ "i": { "id": stranded } })).await["refundDonation"].clone();
        assert_eq!(refunded["refund"], json!({ "status": "RETURNED", "amountFen": -2_000 }));
        assert_eq!(refunded["progress"], json!({ "raisedFen": 1_000, "donationCount": 1 }));
        assert_eq!(app.ok(QUEUE, json!({ "c": campaign })).await["refundQueue"]["totalCount"], 0);
        assert_eq!(raised_and_sum(&app, campaign_row).await, (1_000, 1_000));
        let body = app.gql(REFUND, json!({ "i": { "id": stranded } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "refunded once: {body}");
    }
}

#[test]
fn the_pledge_ttl_is_configurable() {
    let defaults = api::config::Settings::from_lookup(|_| None).expect("defaults");
    assert_eq!(defaults.pledge_ttl, std::time::Duration::from_secs(72 * 3600));
    let set = api::config::Settings::from_lookup(|n| (n == "INCUBASE_PLEDGE_TTL_HOURS").then(|| "24".to_owned()))
        .expect("24 hours");
    assert_eq!(set.pledge_ttl, std::time::Duration::from_secs(24 * 3600));
    assert!(
        api::config::Settings::from_lookup(|n| (n == "INCUBASE_PLEDGE_TTL_HOURS").then(|| "0".to_owned())).is_err()
    );
}

const PARTIAL: &str = r#"
mutation($i: RefundDonationInput!) {
  refundDonation(input: $i) {
    donation { refundedFen remainingFen refundedAt } refund { status amountFen refundOfId }
    progress { raisedFen donationCount donorCount }
  }
}"#;

backend_tests! {
    async fn partial_refunds_add_up_to_the_donation_and_no_further(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市思明区妇女发展基金会").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let gift = pledge(&app, &donor, &campaign, 10_000).await;
        app.ok(CONFIRM, json!({ "i": { "id": gift } })).await;

        let first = app.ok(PARTIAL, json!({ "i": { "id": gift, "amountFen": 3_000, "reason": "部分退款" } })).await["refundDonation"].clone();
        assert_eq!(first["refund"], json!({ "status": "REFUNDED", "amountFen": -3_000, "refundOfId": gift }));
        assert_eq!(first["donation"], json!({ "refundedFen": 3_000, "remainingFen": 7_000, "refundedAt": null }));
        assert_eq!(first["progress"], json!({ "raisedFen": 7_000, "donationCount": 1, "donorCount": 1 }), "still a donation and a donor");
        let wall = "query($id: ID!) { campaign(id: $id) { donorWall { edges { node { amountFen } } } } }";
        assert_eq!(app.ok(wall, json!({ "id": campaign })).await["campaign"]["donorWall"]["edges"][0]["node"]["amountFen"], 7_000);

        // More than is left is refused and writes nothing.
        let events = crate::helpers::event_count(&app).await;
        let body = app.gql(PARTIAL, json!({ "i": { "id": gift, "amountFen": 7_001 } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "REFUND_EXCEEDS_REMAINING");
        for zero in [0, -5] {
            let body = app.gql(PARTIAL, json!({ "i": { "id": gift, "amountFen": zero } })).await;
            assert_eq!(body["errors"][0]["extensions"]["field"], "amountFen", "{zero}: {body}");
        }
        assert_eq!(crate::helpers::event_count(&app).await, events);

        // Without an amount, what is left: the donation stops counting.
        let rest = app.ok(PARTIAL, json!({ "i": { "id": gift } })).await["refundDonation"].clone();
        assert_eq!(rest["refund"]["amountFen"], -7_000);
        assert_eq!(rest["donation"]["remainingFen"], 0);
        assert!(rest["donation"]["refundedAt"].is_string());
        assert_eq!(rest["progress"], json!({ "raisedFen": 0, "donationCount": 0, "donorCount": 0 }));
        let body = app.gql(PARTIAL, json!({ "i": { "id": gift, "amountFen": 1 } })).await;
        assert_eq!(body["errors"][0]["extensions"]["reason"], "NOTHING_LEFT_TO_REFUND", "{body}");
        assert_eq!(sql_i64(&app, &format!("SELECT COUNT(*) FROM donations WHERE refund_of_id = {}", row_of(&json!(gift)))).await, 2);
        assert_eq!(raised_and_sum(&app, campaign_row).await, (0, 0));

        // The donor's summary counts what was refunded, in parts.
        let summary = "query($f: DateTime!, $t: DateTime!) { myDonationSummary(from: $f, to: $t) { netFen confirmedFen refundedFen } }";
        let range = json!({ "f": (Utc::now() - Duration::days(1)).to_rfc3339(), "t": (Utc::now() + Duration::days(1)).to_rfc3339() });
        assert_eq!(app.ok_as(&donor, summary, range).await["myDonationSummary"], json!({ "netFen": 0, "confirmedFen": 10_000, "refundedFen": 10_000 }));

        // The database itself refuses a refunded amount above the donation.
        let over = format!("UPDATE donations SET refunded_fen = amount_fen + 1 WHERE id = {}", row_of(&json!(gift)));
        assert!(app.state.db.execute_unprepared(&over).await.is_err(), "the CHECK constraint holds");
    }

    async fn concurrent_partial_refunds_never_return_more_than_was_given(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市湖里区妇女儿童服务中心").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let mut gifts = Vec::new();
        for i in 0..5 {
            let donor = Credentials::account(&app.account(&format!("donor{i}"), &[Role::Donor]).await);
            let gift = pledge(&app, &donor, &campaign, 10_000).await;
            app.ok(CONFIRM, json!({ "i": { "id": gift } })).await;
            gifts.push(gift);
        }
        let app = std::sync::Arc::new(app);
        let manager = Credentials::account(&app.manager);
        // Eight refunds at once per donation: 2,500 each for the first three (four fit), 1,000
        // each for the last two (all fit, 2,000 stays).
        let mut tasks = Vec::new();
        for i in 0..40_usize {
            let gift = gifts[i % 5].clone();
            let amount = if i % 5 < 3 { 2_500 } else { 1_000 };
            let (app, manager) = (app.clone(), manager.clone());
            tasks.push(tokio::spawn(async move {
                let body = app.gql_as(&manager, PARTIAL, json!({ "i": { "id": gift, "amountFen": amount } })).await;
                match body["errors"][0]["extensions"]["reason"].as_str() {
                    None => {
                        assert!(body.get("errors").is_none(), "{body}");
                        Ok(amount)
                    }
                    Some(reason) => Err(reason.to_owned()),
                }
            }));
        }
        let results: Vec<Result<i64, String>> = futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
        let refunded: i64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
        let refused: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refunded, 3 * 10_000 + 2 * 8_000, "exactly what fit");
        assert_eq!(refused.len(), 12, "{refused:?}");
        assert!(refused.iter().all(|r| *r == "REFUND_EXCEEDS_REMAINING" || *r == "NOTHING_LEFT_TO_REFUND"), "{refused:?}");

        let (raised, sum) = raised_and_sum(&app, campaign_row).await;
        assert_eq!((raised, sum), (4_000, 4_000), "raised_fen equals confirmed minus refunded records, to the fen");
        for gift in &gifts {
            let row = row_of(&json!(gift));
            let column = sql_i64(&app, &format!("SELECT refunded_fen FROM donations WHERE id = {row}")).await;
            let records = sql_i64(&app, &format!("SELECT CAST(COALESCE(-SUM(amount_fen), 0) AS BIGINT) FROM donations WHERE refund_of_id = {row}")).await;
            assert_eq!(column, records, "refunded_fen is the sum of its reversing records");
        }
        let progress = "query($id: ID!) { campaign(id: $id) { progress { raisedFen donationCount donorCount } } }";
        assert_eq!(app.ok(progress, json!({ "id": campaign })).await["campaign"]["progress"], json!({ "raisedFen": 4_000, "donationCount": 2, "donorCount": 2 }));
    }
}

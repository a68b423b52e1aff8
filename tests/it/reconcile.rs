//! Money the federation can reconcile: pledges that expire, late payments and payments for
//! cancelled campaigns held for staff (the refund queue), on both backends.
use api::service::crowdfunding::{self as service, CampaignAction};
use api::service::identity::{self, Role};
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

// ---------------------------------------------------------------- statement imports

const IMPORT: &str = r#"
mutation($i: ImportStatementInput!) {
  importStatement(input: $i) {
    dryRun alreadyImported import { id profile identity appliedAt }
    report {
      lineCount confirmedCount heldCount createdCount mismatchCount confirmedFen
      lines(first: 100) { totalCount edges { node { line lineId reference amountFen action reason donationId receiptNumber } } }
    }
  }
}"#;

async fn pledge_with_reference(
    app: &TestApp,
    donor: &Credentials,
    campaign: &str,
    amount: i64,
    reference: &str,
) -> String {
    let input = json!({ "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM",
        "externalReference": reference, "clientKey": uuid::Uuid::new_v4().to_string() });
    app.ok_as(donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].as_str().expect("id").to_owned()
}

/// A WeChat Pay merchant bill as the platform exports it (values prefixed with a backtick,
/// a summary at the end).
fn wechat_bill(rows: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut bill = String::from(
        "交易时间,公众账号ID,商户号,微信订单号,商户订单号,交易类型,交易状态,货币种类,应结订单金额,商品名称,商户数据包,订单金额\r\n",
    );
    for (line_id, reference, status, yuan, data) in rows {
        bill.push_str(&format!(
            "`2026-12-01 10:00:00,`wx8888888888888888,`1600000001,`{line_id},`{reference},`NATIVE,`{status},`CNY,`{yuan},`公益捐赠,`{data},`{yuan}\r\n"
        ));
    }
    bill.push_str("总交易单数,应结订单总金额,退款总金额\r\n`9,`1234.00,`0.00\r\n");
    bill
}

backend_tests! {
    async fn a_client_key_two_pledges_share_matches_neither(app) {
        let campaign = campaign_gid(campaign_in(&app, org_row(&app, "厦门市湖里区妇女创业协会").await, "ACTIVE").await);
        let pledge = |who: Credentials, key: &'static str| {
            let input = json!({ "campaignId": campaign, "amountFen": 1_000, "channel": "ONLINE_PLATFORM", "clientKey": key,
                "donorName": "李女士" });
            let app = &app;
            async move { app.ok_as(&who, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone() }
        };
        // Client keys are the donors' own: two donors may pick the same one.
        let first = Credentials::account(&app.account("first", &[Role::Donor]).await);
        let second = Credentials::account(&app.account("second", &[Role::Donor]).await);
        let (a, b) = (pledge(first.clone(), "ORDER-1").await, pledge(second, "ORDER-1").await);
        assert_ne!(a, b);
        let only = pledge(first, "ORDER-2").await;
        let content = json!([
            { "lineId": "J1", "clientKey": "ORDER-1", "amountFen": 1_000 },
            { "lineId": "J2", "clientKey": "ORDER-2", "amountFen": 1_000 },
        ]).to_string();
        let planned = app.ok(IMPORT, json!({ "i": { "profile": "JSON", "content": content, "dryRun": true } })).await;
        let lines: Vec<Value> = planned["importStatement"]["report"]["lines"]["edges"].as_array().expect("lines").iter()
            .map(|e| json!([e["node"]["action"], e["node"]["reason"], e["node"]["donationId"]])).collect();
        assert_eq!(lines, vec![json!(["SKIP", "UNKNOWN_REFERENCE", null]), json!(["CONFIRM", null, only])]);

        // A partner importing its own statement means its own pledge by the key.
        let ctx = app.state.ctx();
        let key = identity::NewApiKey::secret("公益平台", &identity::ApiScope::ALL, None);
        let partner = Credentials::api_key(&identity::create_api_key(ctx, &crate::helpers::actor(), key, 0).await.expect("key").secret);
        let theirs = pledge(partner.clone(), "ORDER-1").await;
        let lines = |planned: Value| -> Vec<Value> {
            planned["importStatement"]["report"]["lines"]["edges"].as_array().expect("lines").iter()
                .map(|e| json!([e["node"]["action"], e["node"]["donationId"]])).collect()
        };
        let input = json!({ "i": { "profile": "JSON", "content": content, "dryRun": true } });
        assert_eq!(lines(app.ok_as(&partner, IMPORT, input.clone()).await), vec![json!(["CONFIRM", theirs]), json!(["CONFIRM", only])]);
        assert_eq!(lines(app.ok(IMPORT, input).await)[0], json!(["SKIP", null]), "staff: three pledges share it");
    }

    async fn a_statement_dry_runs_applies_once_and_reports_every_mismatch(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市翔安区妇女儿童服务站").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let doomed_row = campaign_in(&app, org_row(&app, "厦门市思明区家庭教育促进会").await, "ACTIVE").await;
        let doomed = campaign_gid(doomed_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let a1 = pledge_with_reference(&app, &donor, &campaign, 10_000, "WX-A1").await;
        let a2 = pledge_with_reference(&app, &donor, &campaign, 20_000, "WX-A2").await;
        pledge_with_reference(&app, &donor, &campaign, 5_000, "WX-A3").await;
        let a4 = pledge_with_reference(&app, &donor, &campaign, 3_000, "WX-A4").await;
        app.ok(CONFIRM, json!({ "i": { "id": a4 } })).await;
        let c1 = pledge_with_reference(&app, &donor, &doomed, 4_000, "WX-C1").await;
        service::change_status(app.state.ctx(), &crate::helpers::actor(), doomed_row, CampaignAction::Cancel, None).await.expect("cancel");
        let e1 = pledge_with_reference(&app, &donor, &campaign, 6_000, "WX-E1").await;
        age(&app, &e1, 100).await;
        let bill = wechat_bill(&[
            ("4200001", "WX-A1", "SUCCESS", "100.00", ""),
            ("4200002", "WX-A2", "SUCCESS", "200.00", ""),
            ("4200003", "WX-A3", "SUCCESS", "50.01", ""),
            ("4200004", "WX-A4", "SUCCESS", "30.00", ""),
            ("4200005", "WX-C1", "SUCCESS", "40.00", ""),
            ("4200006", "WX-E1", "SUCCESS", "60.00", ""),
            ("4200007", "WX-ZZZ", "SUCCESS", "8.00", ""),
            ("4200001", "WX-A1", "SUCCESS", "100.00", ""),
            ("4200009", "WX-REFUND", "REFUND", "12.00", ""),
            ("4200010", "", "SUCCESS", "88.88", &campaign),
        ]);
        let input = |dry: bool| json!({ "i": { "profile": "WECHAT_PAY", "content": bill, "statementId": "1600000001-20261201",
            "dryRun": dry, "createUnmatched": true } });

        // The dry run: the plan, nothing written.
        let events = crate::helpers::event_count(&app).await;
        let plan = app.ok(IMPORT, input(true)).await["importStatement"].clone();
        assert_eq!(plan["dryRun"], true);
        assert_eq!(plan["import"], Value::Null);
        let report = &plan["report"];
        assert_eq!(report["lineCount"], 9, "the refund line is no payment");
        let actions: Vec<(Value, Value)> = report["lines"]["edges"].as_array().expect("lines").iter()
            .map(|e| (e["node"]["action"].clone(), e["node"]["reason"].clone())).collect();
        assert_eq!(actions, vec![
            (json!("CONFIRM"), Value::Null),
            (json!("CONFIRM"), Value::Null),
            (json!("SKIP"), json!("AMOUNT_DIFFERS")),
            (json!("SKIP"), json!("ALREADY_CONFIRMED")),
            (json!("HOLD"), json!("CAMPAIGN_NOT_ACTIVE")),
            (json!("HOLD"), json!("PLEDGE_EXPIRED")),
            (json!("SKIP"), json!("UNKNOWN_REFERENCE")),
            (json!("SKIP"), json!("DUPLICATE_LINE")),
            (json!("CREATE"), json!("UNKNOWN_REFERENCE")),
        ]);
        assert_eq!(report["lines"]["edges"][0]["node"]["donationId"], a1);
        assert_eq!((report["confirmedCount"].clone(), report["heldCount"].clone(), report["createdCount"].clone()), (json!(2), json!(2), json!(1)));
        assert_eq!(report["mismatchCount"], 7);
        assert_eq!(report["confirmedFen"], 10_000 + 20_000 + 8_888);
        assert_eq!(crate::helpers::event_count(&app).await, events, "a dry run writes nothing");
        assert_eq!(app.ok(DONATION, json!({ "id": a1 })).await["node"]["status"], "PLEDGED");

        // Apply: matches confirmed with their own receipt numbers, money that must not count held.
        let applied = app.ok(IMPORT, input(false)).await["importStatement"].clone();
        assert_eq!((applied["dryRun"].clone(), applied["alreadyImported"].clone()), (json!(false), json!(false)));
        assert_eq!(applied["import"]["identity"], "WECHAT_PAY:1600000001-20261201");
        let lines = applied["report"]["lines"]["edges"].as_array().expect("lines").clone();
        let receipts: Vec<Value> = lines.iter().map(|e| e["node"]["receiptNumber"].clone()).collect();
        let y = year();
        assert_eq!(receipts[0], json!(format!("{y}-000002")));
        assert_eq!(receipts[1], json!(format!("{y}-000003")));
        assert_eq!(receipts[8], json!(format!("{y}-000004")), "gapless after the one confirmed before");
        assert_eq!(app.ok(DONATION, json!({ "id": a2 })).await["node"]["status"], "CONFIRMED");
        let held = app.ok(DONATION, json!({ "id": c1 })).await["node"].clone();
        assert_eq!((held["status"].clone(), held["holdReason"].clone()), (json!("RECEIVED"), json!("CAMPAIGN_CANCELLED")));
        assert_eq!(app.ok(DONATION, json!({ "id": e1 })).await["node"]["holdReason"], "PLEDGE_EXPIRED");
        let created = lines[8]["node"]["donationId"].clone();
        let node = "query($id: ID!) { node(id: $id) { ... on Donation { status amountFen externalReference displayMode } } }";
        assert_eq!(app.ok(node, json!({ "id": created })).await["node"], json!({ "status": "CONFIRMED", "amountFen": 8_888, "externalReference": "4200010", "displayMode": "ANONYMOUS" }));
        assert_eq!(raised_and_sum(&app, campaign_row).await, (3_000 + 10_000 + 20_000 + 8_888, 3_000 + 10_000 + 20_000 + 8_888));
        assert_eq!(raised_and_sum(&app, doomed_row).await, (0, 0));
        let progress = "query($id: ID!) { campaign(id: $id) { progress { donationCount donorCount } } }";
        assert_eq!(app.ok(progress, json!({ "id": campaign })).await["campaign"]["progress"], json!({ "donationCount": 4, "donorCount": 2 }), "one account and one guest");

        // Again: the same statement changes nothing and answers the kept report.
        let events = crate::helpers::event_count(&app).await;
        let again = app.ok(IMPORT, input(false)).await["importStatement"].clone();
        assert_eq!(again["alreadyImported"], true);
        assert_eq!(again["import"], applied["import"], "the first answer's import is the row as stored");
        assert!(applied["import"]["appliedAt"].is_string());
        assert_eq!(again["report"], applied["report"]);
        assert_eq!(crate::helpers::event_count(&app).await, events);
        // The same lines under another statement ID: everything is already recorded.
        let mut other = input(false);
        other["i"]["statementId"] = json!("1600000001-20261201-resent");
        let resent = app.ok(IMPORT, other).await["importStatement"]["report"].clone();
        assert_eq!((resent["confirmedCount"].clone(), resent["heldCount"].clone(), resent["createdCount"].clone()), (json!(0), json!(0), json!(0)));
        assert_eq!(raised_and_sum(&app, campaign_row).await.0, 3_000 + 10_000 + 20_000 + 8_888);

        // Imports and their reports are kept and listed.
        let list = "{ statementImports { totalCount edges { node { identity report { confirmedCount lines(first: 2, mismatchesOnly: true) { totalCount edges { node { reason } } } } } } } }";
        let listed = app.ok(list, json!({})).await["statementImports"].clone();
        assert_eq!(listed["totalCount"], 2);
        let first = &listed["edges"][1]["node"];
        assert_eq!(first["identity"], "WECHAT_PAY:1600000001-20261201");
        assert_eq!(first["report"]["lines"]["totalCount"], 7);
        assert_eq!(first["report"]["lines"]["edges"][0]["node"]["reason"], "AMOUNT_DIFFERS");
        // An import applied before reports were kept in pieces has it in its row, and reads the same.
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM statement_import_report_pieces").await, 2, "one piece each");
        {
            let db = &app.state.db;
            db.execute_unprepared("UPDATE statement_imports SET report = (SELECT piece FROM statement_import_report_pieces p \
                WHERE p.import_id = statement_imports.id)").await.expect("the report into the row");
            db.execute_unprepared("DELETE FROM statement_import_report_pieces").await.expect("no pieces");
        }
        assert_eq!(app.ok(list, json!({})).await["statementImports"], listed, "the same report from the row");
        let body = app.gql_as(&donor, list, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let body = app.gql_as(&donor, IMPORT, input(true)).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        // An import is a node, for those who may list them.
        let node = "query($id: ID!) { node(id: $id) { __typename ... on StatementImport { identity report { confirmedCount } } } }";
        let found = app.ok(node, json!({ "id": applied["import"]["id"] })).await["node"].clone();
        assert_eq!(found, json!({ "__typename": "StatementImport", "identity": "WECHAT_PAY:1600000001-20261201", "report": { "confirmedCount": first["report"]["confirmedCount"] } }));
        let hidden = app.gql_as(&donor, node, json!({ "id": applied["import"]["id"] })).await;
        assert_eq!(hidden["data"]["node"], Value::Null, "{hidden}");
    }
}

#[test]
fn profiles_read_alipay_bank_and_json_statements() {
    use api::service::statements::{ProfileName, StatementLine, parse, parse_yuan};
    assert_eq!(parse_yuan("¥1,234.5"), Some(123_450));
    assert_eq!(parse_yuan("0.07"), Some(7));
    assert_eq!(parse_yuan("12"), Some(1_200));
    assert_eq!(parse_yuan("1.234"), None);
    assert_eq!(parse_yuan("-3"), None);
    let alipay = "#支付宝业务明细查询\n#账号：[20881234567890120156]\n#起始日期：[2026年12月01日 00:00:00]\n\
        #-----------------------------------------业务明细列表----------------------------------------\n\
        支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,备注\n\
        2026120122001400001\t,ALI-1\t,交易,公益捐赠,2026-12-01 09:00:00,2026-12-01 09:00:05,,,,,李**(138****0000),50.00,50.00,\n\
        2026120122001400002\t,ALI-2\t,退款,公益捐赠,2026-12-01 09:10:00,2026-12-01 09:10:05,,,,,王**,20.00,20.00,\n\
        #-----------------------------------------业务明细列表结束------------------------------------\n#交易合计：1笔，共50.00元\n";
    let lines = parse(ProfileName::Alipay, alipay).expect("alipay");
    assert_eq!(
        lines,
        vec![StatementLine {
            line_id: Some("2026120122001400001".into()),
            reference: Some("ALI-1".into()),
            client_key: None,
            amount_fen: 5_000,
            campaign_id: None,
            payer_name: Some("李**(138****0000)".into()),
        }]
    );
    let bank = "交易日期,交易时间,收入金额,支出金额,对方户名,对方账号,摘要,附言,流水号,捐赠项目\n\
        20261201,101500,\"1,000.00\",,厦门某某科技有限公司,3502000000000001,转账,DON-77,B0001,\n\
        20261201,111500,,200.00,物业公司,3502000000000002,转账,物业费,B0002,\n\
        20261201,121500,300.00,,陈女士,6222000000000003,转账,,B0003,Q2FtcGFpZ246NQ\n";
    let lines = parse(ProfileName::BankCsv, bank).expect("bank");
    assert_eq!(lines.len(), 2, "the outgoing line is left out");
    assert_eq!(
        (lines[0].reference.as_deref(), lines[0].amount_fen, lines[0].line_id.as_deref()),
        (Some("DON-77"), 100_000, Some("B0001"))
    );
    assert_eq!(
        (lines[1].reference.as_deref(), lines[1].campaign_id.as_deref(), lines[1].payer_name.as_deref()),
        (Some("转账"), Some("Q2FtcGFpZ246NQ"), Some("陈女士"))
    );
    let json_lines =
        parse(ProfileName::Json, r#"[{ "lineId": "J1", "clientKey": "k-1", "amountFen": 990 }]"#).expect("json");
    assert_eq!((json_lines[0].client_key.as_deref(), json_lines[0].amount_fen), (Some("k-1"), 990));
    let with_bom =
        parse(ProfileName::Json, "\u{feff}[{ \"lineId\": \"J2\", \"amountFen\": 1 }]").expect("json with a BOM");
    assert_eq!(with_bom[0].line_id.as_deref(), Some("J2"));
    let broken = parse(ProfileName::BankCsv, "交易日期,收入金额,流水号\n20261201,abc,B9\n").expect_err("bad amount");
    assert!(broken.to_string().contains("line 2"), "{broken}");
    assert!(parse(ProfileName::WechatPay, "no header here\n").is_err());
}

#[test]
fn statements_exported_in_gbk_read_as_their_utf8_text() {
    use api::service::statements::{ProfileName, decode, parse};
    let bank = "交易日期,收入金额,对方户名,附言,流水号\n20261201,300.00,陈女士,DON-9,B0009\n";
    let (gbk, _, lossy) = encoding_rs::GBK.encode(bank);
    assert!(!lossy && std::str::from_utf8(&gbk).is_err(), "GBK bytes are not UTF-8");
    // As exported, without a charset: GBK is recognised; with one, it is followed.
    assert_eq!(decode(ProfileName::BankCsv, gbk.to_vec(), None).expect("gbk"), bank);
    assert_eq!(decode(ProfileName::Alipay, gbk.to_vec(), Some("GBK")).expect("labelled"), bank);
    assert_eq!(decode(ProfileName::BankCsv, bank.as_bytes().to_vec(), None).expect("utf-8"), bank);
    let lines =
        parse(ProfileName::BankCsv, &decode(ProfileName::BankCsv, gbk.to_vec(), None).expect("gbk")).expect("parsed");
    assert_eq!((lines[0].payer_name.as_deref(), lines[0].amount_fen), (Some("陈女士"), 30_000));

    let reason = |r: Result<String, api::error::AppError>| r.expect_err("refused").reason().map(str::to_owned);
    // Said to be UTF-8 but GBK, JSON that is not UTF-8, bytes no encoding reads, a made-up charset.
    assert_eq!(reason(decode(ProfileName::BankCsv, gbk.to_vec(), Some("utf-8"))).as_deref(), Some("NOT_TEXT"));
    assert_eq!(reason(decode(ProfileName::Json, gbk.to_vec(), None)).as_deref(), Some("NOT_TEXT"));
    assert_eq!(reason(decode(ProfileName::BankCsv, vec![0x81, 0x20, 0xff], None)).as_deref(), Some("NOT_TEXT"));
    assert_eq!(reason(decode(ProfileName::BankCsv, gbk.to_vec(), Some("klingon"))).as_deref(), Some("UNKNOWN_CHARSET"));
}

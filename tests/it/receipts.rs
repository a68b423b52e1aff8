//! Receipts for every donor: guests find theirs by receipt number and contact (and nobody
//! else does), the printable page behind its unguessable link, and statements for a period
//! that sum exactly with partial refunds.
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{CONFIRM, DONATE, campaign_gid, campaign_in, row_of};
use crate::helpers::{Credentials, TestApp, spawn_app_with};
use api::service::identity::Role;

const LOOKUP: &str = r#"
query($n: String!, $c: String!) {
  receiptLookup(receiptNumber: $n, contact: $c) {
    receiptNumber donorName amountFen refundedFen netFen campaignTitle organizationName
    fundraisingQualification filingNumber link confirmedAt
  }
}"#;

const REFUND: &str = r#"
mutation($i: RefundDonationInput!) { refundDonation(input: $i) { refund { amountFen } } }"#;

const MY_STATEMENT: &str = r#"
query($from: DateTime!, $to: DateTime!) {
  myDonationStatement(from: $from, to: $to) {
    donationCount confirmedFen refundedFen netFen truncated
    lines { receiptNumber amountFen refundedFen netFen campaignTitle }
  }
}"#;

const GUEST_STATEMENT: &str = r#"
query($c: String!, $n: String!, $from: DateTime!, $to: DateTime!) {
  guestDonationStatement(contact: $c, receiptNumber: $n, from: $from, to: $to) {
    donationCount confirmedFen refundedFen netFen lines { receiptNumber netFen }
  }
}"#;

async fn active_campaign(app: &TestApp) -> String {
    let org = crate::organizations::create(app, json!({ "name": "厦门市思明区春晖妇女服务中心" })).await;
    campaign_gid(campaign_in(app, row_of(&org["id"]), "ACTIVE").await)
}

/// Staff record a guest's gift named by `contact` (`guestPhone` or `guestEmail`) and confirm
/// it; returns the donation's id and its receipt number.
async fn guest_gift(app: &TestApp, campaign: &str, amount: i64, contact: (&str, &str)) -> (Value, String) {
    let mut input = json!({
        "campaignId": campaign, "amountFen": amount, "channel": "BANK_TRANSFER",
        "clientKey": uuid::Uuid::new_v4().to_string(), "recordForGuest": true, "donorName": "林女士",
    });
    input[contact.0] = json!(contact.1);
    let id = app.ok(DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
    let confirmed = app.ok(CONFIRM, json!({ "i": { "id": id } })).await;
    let number = confirmed["confirmDonation"]["donation"]["receiptNumber"].as_str().expect("receipt").to_owned();
    (id, number)
}

async fn lookup(app: &TestApp, number: &str, contact: &str) -> Value {
    app.gql_as(&Credentials::anonymous(), LOOKUP, json!({ "n": number, "c": contact })).await
}

fn window() -> Value {
    json!({ "from": (Utc::now() - Duration::hours(1)).to_rfc3339(), "to": (Utc::now() + Duration::hours(1)).to_rfc3339() })
}

backend_tests! {
    async fn a_guest_finds_a_receipt_with_number_and_phone_and_nobody_with_a_wrong_phone(app) {
        let campaign = active_campaign(&app).await;
        let (_, number) = guest_gift(&app, &campaign, 12_345, ("guestPhone", "+86 138-0013-8000")).await;

        // The phone as typed another way is the same phone.
        let found = lookup(&app, &number, "13800138000").await;
        let receipt = &found["data"]["receiptLookup"];
        assert_eq!(receipt["receiptNumber"], number.as_str(), "{found}");
        assert_eq!(receipt["amountFen"], 12_345);
        assert_eq!(receipt["donorName"], "林女士");
        assert_eq!(receipt["fundraisingQualification"], "厦门市民政局公开募捐资格");
        assert_eq!(receipt["filingNumber"], "53350200MJ0000000X-2026-001");
        assert!(receipt["link"].as_str().expect("link").starts_with("/receipts/"), "{receipt}");

        // A wrong phone, and an unknown number with the right phone, get the very same answer.
        let wrong_phone = lookup(&app, &number, "13800138001").await;
        let unknown_number = lookup(&app, "2099-999999", "13800138000").await;
        let malformed = lookup(&app, &number, "not a phone").await;
        assert_eq!(wrong_phone, json!({ "data": { "receiptLookup": null } }));
        assert_eq!(unknown_number, wrong_phone, "no oracle between an unknown number and a wrong contact");
        assert_eq!(malformed, wrong_phone);

        // The database keeps a keyed digest of the phone, never the phone.
        let stored: Vec<entity::donation::Model> = {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            entity::donation::Entity::find()
                .filter(entity::donation::Column::ReceiptNumber.eq(number.as_str()))
                .all(&app.state.db)
                .await
                .expect("rows")
        };
        let digest = stored[0].guest_phone_digest.clone().expect("digest kept");
        assert_eq!(digest.len(), 64);
        assert!(!format!("{:?}", stored[0]).contains("13800138000"), "the phone itself is not stored");

        // A guest named by email finds theirs by the email in any case.
        let (_, by_mail) = guest_gift(&app, &campaign, 800, ("guestEmail", "Lin.Hua@Example.org")).await;
        let found = lookup(&app, &by_mail, " lin.hua@example.ORG ").await;
        assert_eq!(found["data"]["receiptLookup"]["amountFen"], 800, "{found}");
        assert_eq!(lookup(&app, &by_mail, "13800138000").await, wrong_phone, "a phone does not open an email's receipt");

        // An account's donation is never found this way; its donor reads the receipt (and
        // link) under myDonations.
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let input = json!({ "campaignId": campaign, "amountFen": 500, "channel": "ONLINE_PLATFORM", "clientKey": "acct-1" });
        let id = app.ok_as(&donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
        let number = app.ok(CONFIRM, json!({ "i": { "id": id } })).await["confirmDonation"]["donation"]["receiptNumber"]
            .as_str()
            .expect("receipt")
            .to_owned();
        assert_eq!(lookup(&app, &number, "13800138000").await, wrong_phone);
        let mine = app.ok_as(&donor, "{ myDonations { edges { node { receipt { receiptNumber link } } } } }", json!({})).await;
        let receipt = &mine["myDonations"]["edges"][0]["node"]["receipt"];
        assert_eq!(receipt["receiptNumber"], number.as_str());
        assert!(receipt["link"].as_str().expect("link").starts_with("/receipts/"));

        // Accounts give as themselves: a guest's contact on their own donation is refused.
        let input = json!({ "campaignId": campaign, "amountFen": 500, "channel": "ONLINE_PLATFORM",
            "clientKey": "acct-2", "guestPhone": "13800138000" });
        let refused = app.gql_as(&donor, DONATE, json!({ "i": input })).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    }

    async fn the_printable_receipt_shows_qualification_and_filing_behind_its_link(app) {
        let campaign = active_campaign(&app).await;
        let (id, number) = guest_gift(&app, &campaign, 250_000, ("guestPhone", "13912345678")).await;
        let found = lookup(&app, &number, "139 1234 5678").await;
        let link = found["data"]["receiptLookup"]["link"].as_str().expect("link").to_owned();

        let response = app.client.get(app.url(&link)).send().await.expect("page");
        assert_eq!(response.status().as_u16(), 200);
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(header("content-type").starts_with("text/html"), "{}", header("content-type"));
        assert_eq!(header("cache-control"), "private, no-store");
        assert!(header("x-robots-tag").contains("noindex"));
        let html = response.text().await.expect("html");
        assert!(html.contains(r#"lang="zh-Hans""#));
        assert!(html.contains("捐赠收据"));
        assert!(html.contains(&number), "the receipt number is on the page");
        assert!(html.contains("人民币 2,500.00 元（大写：贰仟伍佰元整）"), "{html}");
        assert!(html.contains("公开募捐资格") && html.contains("厦门市民政局公开募捐资格"));
        assert!(html.contains("募捐方案备案编号") && html.contains("53350200MJ0000000X-2026-001"));

        // The link is the same every time, for the donor too.
        let again = lookup(&app, &number, "13912345678").await;
        assert_eq!(again["data"]["receiptLookup"]["link"], link.as_str());

        // A token changed by one character, a made-up one, and a genuine token of a donation
        // without a receipt are all 404.
        let token = link.trim_start_matches("/receipts/");
        let mut tampered: Vec<char> = token.chars().collect();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let pledge = app
            .ok(DONATE, json!({ "i": { "campaignId": campaign, "amountFen": 100, "channel": "CASH",
                "clientKey": "pledge-only", "recordForGuest": true, "donorName": "王先生" } }))
            .await["donate"]["donation"]["id"]
            .clone();
        let unconfirmed = api::service::receipts::link_path(&app.state.settings, row_of(&pledge)).expect("path");
        let other = api::service::receipts::link_path(&app.state.settings, row_of(&id) + 1000).expect("path");
        for path in [format!("/receipts/{tampered}"), "/receipts/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), "/receipts/x".to_owned(), unconfirmed, other] {
            let response = app.client.get(app.url(&path)).send().await.expect("page");
            assert_eq!(response.status().as_u16(), 404, "{path}");
            let cache = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert_eq!(cache, "private, no-store");
        }
    }

    async fn receipts_of_a_page_of_donations_cost_the_same_statements_for_2_or_8(app) {
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        for i in 0..8 {
            let org = crate::organizations::create(&app, json!({ "name": format!("厦门市第{i}妇女服务中心") })).await;
            let campaign = campaign_gid(campaign_in(&app, row_of(&org["id"]), "ACTIVE").await);
            let input = json!({ "campaignId": campaign, "amountFen": 100 + i, "channel": "ONLINE_PLATFORM", "clientKey": format!("p-{i}") });
            let id = app.ok_as(&donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
            app.ok(CONFIRM, json!({ "i": { "id": id } })).await;
        }
        let page = "query($n: Int!) { myDonations(first: $n) { edges { node { receipt { receiptNumber link campaignTitle organizationName filingNumber } } } } }";
        app.ok_as(&donor, page, json!({ "n": 1 })).await;
        let mut costs = Vec::new();
        for n in [2, 8] {
            let before = app.sql_statements();
            let data = app.ok_as(&donor, page, json!({ "n": n })).await;
            costs.push(app.sql_statements() - before);
            let edges = data["myDonations"]["edges"].as_array().expect("edges").clone();
            assert_eq!(edges.len(), n as usize);
            assert!(edges.iter().all(|e| e["node"]["receipt"]["organizationName"].as_str().is_some_and(|o| o.contains("妇女服务中心"))), "{data}");
        }
        assert_eq!(costs[0], costs[1], "statements for 2 and 8 receipts: {costs:?}");
    }

    async fn statements_sum_exactly_with_partial_refunds(app) {
        let campaign = active_campaign(&app).await;
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let mut ids = Vec::new();
        for (i, amount) in [10_000, 5_000, 2_500].into_iter().enumerate() {
            let input = json!({ "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM", "clientKey": format!("s-{i}") });
            let id = app.ok_as(&donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].clone();
            app.ok(CONFIRM, json!({ "i": { "id": id } })).await;
            ids.push(id);
        }
        // A pledge that never arrived is not on the statement.
        let input = json!({ "campaignId": campaign, "amountFen": 99_999, "channel": "ONLINE_PLATFORM", "clientKey": "s-pledge" });
        app.ok_as(&donor, DONATE, json!({ "i": input })).await;
        for (id, amount) in [(&ids[0], 3_000), (&ids[1], 1_000), (&ids[1], 500), (&ids[2], 2_500)] {
            app.ok(REFUND, json!({ "i": { "id": id, "amountFen": amount } })).await;
        }
        let statement = app.ok_as(&donor, MY_STATEMENT, window()).await["myDonationStatement"].clone();
        assert_eq!(statement["donationCount"], 3, "{statement}");
        assert_eq!(statement["confirmedFen"], 17_500);
        assert_eq!(statement["refundedFen"], 7_000);
        assert_eq!(statement["netFen"], 10_500);
        assert_eq!(statement["truncated"], false);
        let nets: Vec<i64> = statement["lines"].as_array().expect("lines").iter().map(|l| l["netFen"].as_i64().expect("net")).collect();
        assert_eq!(nets, vec![7_000, 3_500, 0], "each line less its refunds, oldest first");
        assert_eq!(nets.iter().sum::<i64>(), 10_500);

        // Another period has nothing; another account sees only its own (nothing).
        let later = json!({ "from": (Utc::now() + Duration::hours(1)).to_rfc3339(), "to": (Utc::now() + Duration::days(30)).to_rfc3339() });
        let empty = app.ok_as(&donor, MY_STATEMENT, later).await["myDonationStatement"].clone();
        assert_eq!((empty["donationCount"].clone(), empty["netFen"].clone()), (json!(0), json!(0)));
        let other = Credentials::account(&app.account("other", &[Role::Donor]).await);
        assert_eq!(app.ok_as(&other, MY_STATEMENT, window()).await["myDonationStatement"]["netFen"], 0);
        let anonymous = app.gql_as(&Credentials::anonymous(), MY_STATEMENT, window()).await;
        assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

        // A guest: two gifts under one phone (one partly refunded), another guest's gift
        // under another phone; one receipt number with the phone proves the statement.
        let (first, number) = guest_gift(&app, &campaign, 20_000, ("guestPhone", "13700000001")).await;
        guest_gift(&app, &campaign, 3_000, ("guestPhone", "+86 137 0000 0001")).await;
        let (_, stranger) = guest_gift(&app, &campaign, 70_000, ("guestPhone", "13700000002")).await;
        app.ok(REFUND, json!({ "i": { "id": first, "amountFen": 4_321 } })).await;
        let mut vars = window();
        vars["c"] = json!("13700000001");
        vars["n"] = json!(number);
        let guest = app.gql_as(&Credentials::anonymous(), GUEST_STATEMENT, vars.clone()).await;
        let s = &guest["data"]["guestDonationStatement"];
        assert_eq!(s["donationCount"], 2, "{guest}");
        assert_eq!(s["confirmedFen"], 23_000);
        assert_eq!(s["refundedFen"], 4_321);
        assert_eq!(s["netFen"], 18_679);
        // The stranger's receipt does not prove this phone, nor a wrong phone this receipt.
        vars["n"] = json!(stranger);
        let refused = app.gql_as(&Credentials::anonymous(), GUEST_STATEMENT, vars.clone()).await;
        assert_eq!(refused, json!({ "data": { "guestDonationStatement": null } }));
        vars["n"] = json!(number);
        vars["c"] = json!("13700000009");
        assert_eq!(app.gql_as(&Credentials::anonymous(), GUEST_STATEMENT, vars).await, refused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_rate_limited_per_receipt_number_alike_for_right_and_wrong_contacts() {
    if !crate::helpers::selected(crate::helpers::Backend::Sqlite) {
        return;
    }
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, |s| s.receipt_lookups_per_receipt_per_hour = 3).await;
    let campaign = active_campaign(&app).await;
    let (_, number) = guest_gift(&app, &campaign, 100, ("guestPhone", "13800000000")).await;
    for contact in ["13800000001", "13800000002", "13800000000"] {
        assert!(lookup(&app, &number, contact).await.get("errors").is_none());
    }
    for contact in ["13800000003", "13800000000"] {
        let limited = lookup(&app, &number, contact).await;
        assert_eq!(limited["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{limited}");
    }
    // Another receipt number has its own allowance.
    let (_, other) = guest_gift(&app, &campaign, 100, ("guestPhone", "13800000000")).await;
    assert_eq!(lookup(&app, &other, "13800000000").await["data"]["receiptLookup"]["amountFen"], 100);
}

#[test]
fn amounts_in_capital_numerals_as_receipts_write_them() {
    use api::service::receipts::capital_yuan;
    for (fen, text) in [
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角"),
        (105, "壹元零伍分"),
        (100_510, "壹仟零伍元壹角"),
        (250_000, "贰仟伍佰元整"),
        (1_000_000, "壹万元整"),
        (10_001_000, "壹拾万零壹拾元整"),
        (100_010_000, "壹佰万零壹佰元整"),
        (101_000_000, "壹佰零壹万元整"),
        (12_345_678_901, "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元零壹分"),
    ] {
        assert_eq!(capital_yuan(fen), text, "{fen} fen");
    }
}

#[test]
fn a_short_receipt_secret_is_refused() {
    let refused =
        api::config::Settings::from_lookup(|n| (n == "INCUBASE_RECEIPT_SECRET").then(|| "too short".to_owned()));
    let error = refused.expect_err("refused");
    assert_eq!(error.name, "INCUBASE_RECEIPT_SECRET");
    assert!(!error.to_string().contains("too short"), "the value is never printed: {error}");
}

/// Several PostgreSQL instances must share the receipt secret and the sealing key: in production
/// they are not generated (each instance would make its own, and guests' lookups or webhook
/// signatures would depend on which).
#[tokio::test]
async fn production_on_postgresql_needs_the_receipt_secret() {
    if !crate::helpers::selected(crate::helpers::Backend::Postgres) {
        return;
    }
    let mut settings = api::config::Settings::embedded();
    settings.environment = api::config::Environment::Production;
    settings.database_url = crate::helpers::pg_admin_url();
    settings.jwt_secret = Some(crate::helpers::TEST_JWT_SECRET.into());
    let Err(refused) = api::startup::build_state(settings.clone()).await else { panic!("started without the secret") };
    assert!(refused.to_string().contains("INCUBASE_RECEIPT_SECRET"), "{refused}");
    settings.receipt_secret = Some("r".repeat(40));
    // So must the key that seals webhook secrets (each instance must open what another sealed).
    let Err(refused) = api::startup::build_state(settings.clone()).await else { panic!("started without the key") };
    assert!(refused.to_string().contains("INCUBASE_SECRETS_KEY"), "{refused}");
    settings.secrets_key = Some("s".repeat(40));
    assert!(api::startup::build_state(settings).await.is_ok());
}

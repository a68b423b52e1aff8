//! Large statements over `POST /reconcile/statements`: thousands of matched lines applied in
//! batches, the totals, donor counts and receipt numbers exact (gapless, one each), and a
//! second upload changing nothing; on both backends.
use api::service::identity::Role;
use chrono::{Duration, Utc};
use entity::donation::{self, DisplayMode, DonationChannel, DonationStatus};
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::campaign_in;
use crate::helpers::{TestApp, event_count};
use crate::reconcile::{org_row, raised_and_sum, sql_i64};

/// More lines than three batches, so batches meet at their edges.
const LINES: i64 = 1_234;

/// Pledges `WX-BULK-<n>` of 100 + n fen, every seventh by one account (one donor), the rest guests.
async fn bulk_pledges(app: &TestApp, campaign_row: i64, account: i64) {
    let now = Utc::now() - Duration::minutes(5);
    let rows: Vec<donation::ActiveModel> = (1..=LINES)
        .map(|n| donation::ActiveModel {
            campaign_id: Set(campaign_row),
            amount_fen: Set(100 + n),
            channel: Set(DonationChannel::OnlinePlatform),
            external_reference: Set(Some(format!("WX-BULK-{n}"))),
            donor_account_id: Set((n % 7 == 0).then_some(account)),
            partner_key_id: Set(None),
            donor_name: Set(format!("捐赠人{n}")),
            display_mode: Set(DisplayMode::Masked),
            message: Set(String::new()),
            status: Set(DonationStatus::Pledged),
            client_scope: Set(None),
            client_key: Set(None),
            content_digest: Set(String::new()),
            refunded_fen: Set(0),
            created_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(400) {
        donation::Entity::insert_many(chunk.to_vec()).exec(&app.state.db).await.expect("pledges");
    }
}

/// A WeChat Pay bill of every bulk pledge, as the merchant platform exports it.
fn bill() -> String {
    let mut bill = String::from(
        "交易时间,公众账号ID,商户号,微信订单号,商户订单号,交易类型,交易状态,货币种类,应结订单金额,商品名称,商户数据包,订单金额\r\n",
    );
    for n in 1..=LINES {
        let fen = 100 + n;
        let yuan = format!("{}.{:02}", fen / 100, fen % 100);
        bill.push_str(&format!(
            "`2026-12-01 10:00:00,`wx8888888888888888,`1600000001,`42000{n:08},`WX-BULK-{n},`NATIVE,`SUCCESS,`CNY,`{yuan},`公益捐赠,`,`{yuan}\r\n"
        ));
    }
    bill.push_str(&format!("总交易单数,应结订单总金额,退款总金额\r\n`{LINES},`0.00,`0.00\r\n"));
    bill
}

async fn upload(app: &TestApp, token: &str, query: &str, body: String) -> (u16, Value) {
    upload_bytes(app, token, query, "text/csv; charset=utf-8", body.into_bytes()).await
}

async fn upload_bytes(app: &TestApp, token: &str, query: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/reconcile/statements?{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

backend_tests! {
    async fn a_large_statement_applies_in_batches_with_exact_totals_and_receipts(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市思明区妇女儿童发展基金会").await, "ACTIVE").await;
        let giver = app.account("giver", &[Role::Donor]).await;
        bulk_pledges(&app, campaign_row, giver.id).await;
        let content = bill();
        let query = "profile=WECHAT_PAY&statementId=1600000001-bulk";

        // Nobody but staff or a RECONCILE key. (The refusal comes before the body is read: a
        // client still sending a large one may see the connection closed instead.)
        let (status, body) = upload(&app, &giver.token, query, content.lines().take(10).collect::<Vec<_>>().join("\n")).await;
        assert_eq!((status, body["errors"][0]["extensions"]["code"].clone()), (403, json!("FORBIDDEN")), "{body}");

        let plan = upload(&app, &app.manager.token, &format!("{query}&dryRun=true"), content.clone()).await;
        assert_eq!(plan.0, 200, "{}", plan.1);
        assert_eq!(plan.1["report"]["confirmedCount"], LINES);
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM donations WHERE status = 'CONFIRMED'").await, 0, "a dry run writes nothing");

        let started = std::time::Instant::now();
        let (status, applied) = upload(&app, &app.manager.token, query, content.clone()).await;
        eprintln!("applied {LINES} lines in {:?} ({:?})", started.elapsed(), app.backend);
        assert_eq!(status, 200, "{applied}");
        let expected_fen: i64 = (1..=LINES).map(|n| 100 + n).sum();
        let report = &applied["report"];
        assert_eq!((report["confirmedCount"].clone(), report["mismatchCount"].clone(), report["confirmedFen"].clone()),
            (json!(LINES), json!(0), json!(expected_fen)));
        assert_eq!(applied["import"]["identity"], "WECHAT_PAY:1600000001-bulk");

        // Totals exact; one donor for the account's gifts and one per guest gift.
        assert_eq!(raised_and_sum(&app, campaign_row).await, (expected_fen, expected_fen));
        let guests = (1..=LINES).filter(|n| n % 7 != 0).count() as i64;
        let counts = sql_i64(&app, &format!("SELECT donation_count * 1000000 + donor_count FROM campaigns WHERE id = {campaign_row}")).await;
        assert_eq!(counts, LINES * 1_000_000 + guests + 1);
        // One receipt number each, gapless from the year's first.
        assert_eq!(sql_i64(&app, "SELECT COUNT(DISTINCT receipt_number) FROM donations WHERE status = 'CONFIRMED'").await, LINES);
        assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, LINES);
        let year = (Utc::now() + Duration::hours(8)).format("%Y").to_string();
        for n in [1, 500, 501, LINES] {
            let found = sql_i64(&app, &format!("SELECT COUNT(*) FROM donations WHERE receipt_number = '{year}-{n:06}'")).await;
            assert_eq!(found, 1, "receipt {n}");
        }
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed'").await, LINES);

        // The kept report is whole: written in pieces (it is longer than one), read as one.
        assert!(sql_i64(&app, "SELECT COUNT(*) FROM statement_import_report_pieces").await > 1, "more than one piece");
        assert_eq!(sql_i64(&app, "SELECT CAST(length(report) AS BIGINT) FROM statement_imports").await, 0, "none in the row");
        let kept = "{ statementImports(first: 1) { edges { node { report { lineCount confirmedCount confirmedFen
            lines(first: 2, after: \"line:1232\") { edges { node { line action receiptNumber } } } } } } } }";
        let manager = crate::helpers::Credentials::account(&app.manager);
        let kept = app.ok_as(&manager, kept, json!({})).await["statementImports"]["edges"][0]["node"]["report"].clone();
        assert_eq!((kept["lineCount"].clone(), kept["confirmedCount"].clone(), kept["confirmedFen"].clone()),
            (json!(LINES), json!(LINES), json!(expected_fen)));
        let last: Vec<Value> = kept["lines"]["edges"].as_array().expect("lines").iter().map(|e| e["node"]["line"].clone()).collect();
        assert_eq!(last, vec![json!(1233), json!(1234)], "the last lines, after the cut between pieces");
        assert!(kept["lines"]["edges"][1]["node"]["receiptNumber"].as_str().is_some_and(|r| r.starts_with(&year)));

        // The same statement again: the kept import, nothing changed.
        let events = event_count(&app).await;
        let (status, again) = upload(&app, &app.manager.token, query, content).await;
        assert_eq!((status, again["alreadyImported"].clone()), (200, json!(true)));
        assert_eq!(again["import"]["id"], applied["import"]["id"]);
        assert_eq!(event_count(&app).await, events);
        assert_eq!(raised_and_sum(&app, campaign_row).await.0, expected_fen);

        // A statement that is no statement: the stable reason, as GraphQL gives it.
        let (status, broken) = upload(&app, &app.manager.token, "profile=WECHAT_PAY", "no header\n".into()).await;
        assert_eq!((status, broken["errors"][0]["extensions"]["reason"].clone()), (400, json!("MALFORMED_STATEMENT")));

        // A bank's export in GBK, as downloaded: read without being told; refused when its
        // label says otherwise, the reason stable.
        let bank = "交易日期,收入金额,对方户名,附言,流水号\n20261201,300.00,陈女士,无此捐赠,B0009\n";
        let gbk = encoding_rs::GBK.encode(bank).0.into_owned();
        let plain = upload_bytes(&app, &app.manager.token, "profile=BANK_CSV&dryRun=true", "text/csv", gbk.clone()).await;
        assert_eq!(plain.0, 200, "{}", plain.1);
        assert_eq!((plain.1["report"]["lineCount"].clone(), plain.1["report"]["mismatches"][0]["reference"].clone()),
            (json!(1), json!("无此捐赠")), "{}", plain.1);
        let labelled = upload_bytes(&app, &app.manager.token, "profile=BANK_CSV&dryRun=true", "text/csv; charset=GB2312", gbk.clone()).await;
        assert_eq!(labelled.1["report"], plain.1["report"]);
        let mislabelled = upload_bytes(&app, &app.manager.token, "profile=BANK_CSV&dryRun=true", "text/csv; charset=utf-8", gbk).await;
        assert_eq!((mislabelled.0, mislabelled.1["errors"][0]["extensions"]["reason"].clone()), (400, json!("NOT_TEXT")));
    }
}

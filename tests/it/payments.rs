//! Payment notifications (WeChat Pay API v3, Alipay) signed with key pairs generated here:
//! a verified notification confirms its pledge once, a resent one changes nothing, a tampered,
//! foreign-signed or old one is refused and records nothing; on both backends.
use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use api::config::Settings;
use api::service::identity::Role;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use rsa::PrivateKey;
use rsa::sha2::Sha256;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::crowdfunding::{DONATE, campaign_gid, campaign_in};
use crate::helpers::{Backend, selected, spawn_app_with};
use crate::helpers::{Credentials, TestApp, event_count};
use crate::reconcile::{age, org_row, raised_and_sum, sql_i64, sql_text};

const APIV3_KEY: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
const SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000";

/// The platform's key, a stranger's key (generated once per test run: RSA generation is the
/// slow part).
fn keys() -> &'static (PrivateKey, PrivateKey) {
    static KEYS: OnceLock<(PrivateKey, PrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let generate = || PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
        (generate(), generate())
    })
}

fn configure(settings: &mut Settings) {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let pem = keys().0.to_public_key().to_public_key_pem(LineEnding::LF).expect("PEM");
    // Through the configuration's reading of PEM text, as INCUBASE_*_PUBLIC_KEY is read.
    let key = api::service::payments::parse_public_key(&pem).expect("public key");
    settings.payments.wechatpay_public_key = Some(key.clone());
    settings.payments.wechatpay_serial = Some(SERIAL.into());
    settings.payments.wechatpay_apiv3_key = Some(*APIV3_KEY);
    settings.payments.alipay_public_key = Some(key);
    settings.payments.alipay_app_id = Some("2021000000000001".into());
}

fn sign(key: &PrivateKey, message: &[u8]) -> String {
    STANDARD.encode(key.pkcs1v15_sign::<Sha256>(message).expect("sign"))
}

/// A WeChat Pay TRANSACTION.SUCCESS notification body, its resource encrypted with the APIv3 key.
fn wechat_body(out_trade_no: &str, transaction_id: &str, total: i64) -> String {
    wechat_body_in(out_trade_no, transaction_id, total, "CNY")
}

fn wechat_body_in(out_trade_no: &str, transaction_id: &str, total: i64, currency: &str) -> String {
    let transaction = json!({
        "mchid": "1600000001", "appid": "wx8888888888888888", "out_trade_no": out_trade_no,
        "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-12-01T10:00:00+08:00",
        "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
        "amount": { "total": total, "payer_total": total, "currency": currency, "payer_currency": currency }
    });
    let nonce = "fdasflkja484";
    let cipher = Aes256Gcm::new_from_slice(APIV3_KEY).expect("key");
    let nonce_bytes = Nonce::try_from(nonce.as_bytes()).expect("12-byte nonce");
    let plaintext = transaction.to_string();
    let sealed =
        cipher.encrypt(&nonce_bytes, Payload { msg: plaintext.as_bytes(), aad: b"transaction" }).expect("encrypt");
    json!({
        "id": uuid::Uuid::new_v4().to_string(), "create_time": "2026-12-01T10:00:05+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": { "original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": STANDARD.encode(sealed), "associated_data": "transaction", "nonce": nonce }
    })
    .to_string()
}

struct Wechat {
    timestamp: i64,
    signature: String,
    body: String,
}

fn signed_wechat(key: &PrivateKey, body: String, at: chrono::DateTime<Utc>) -> Wechat {
    let timestamp = at.timestamp();
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let signature = sign(key, format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
    Wechat { timestamp, signature, body }
}

async fn send_wechat(app: &TestApp, n: &Wechat) -> (u16, String) {
    let response = app
        .client
        .post(app.url("/payments/notify/wechatpay"))
        .header("Wechatpay-Timestamp", n.timestamp.to_string())
        .header("Wechatpay-Nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
        .header("Wechatpay-Signature", &n.signature)
        .header("Wechatpay-Serial", SERIAL)
        .header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
        .header("content-type", "application/json")
        .body(n.body.clone())
        .send()
        .await
        .expect("notification sent");
    (response.status().as_u16(), response.text().await.expect("body"))
}

/// Alipay's asynchronous notification parameters, signed (RSA2) unless the caller changes them after.
fn alipay_params(
    key: &PrivateKey,
    out_trade_no: &str,
    trade_no: &str,
    yuan: &str,
    status: &str,
    sent: chrono::DateTime<Utc>,
) -> Vec<(String, String)> {
    let notify_time = (sent + Duration::hours(8)).format("%Y-%m-%d %H:%M:%S").to_string();
    let mut params: Vec<(String, String)> = [
        ("notify_time", notify_time.as_str()),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", "2021000000000001"),
        ("trade_no", trade_no),
        ("out_trade_no", out_trade_no),
        ("trade_status", status),
        ("total_amount", yuan),
        ("receipt_amount", yuan),
        ("subject", "公益捐赠 爱心助学"),
        ("buyer_logon_id", "159****5620"),
        ("fund_bill_list", r#"[{"amount":"50.00","fundChannel":"ALIPAYACCOUNT"}]"#),
        ("passback_params", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let content = api::service::payments::alipay_signed_content(&params);
    params.push(("sign".into(), sign(key, content.as_bytes())));
    params.push(("sign_type".into(), "RSA2".into()));
    params
}

/// The parameters with one more, signed anew.
fn alipay_with(key: &PrivateKey, mut params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != "sign" && k != "sign_type");
    params.push((name.into(), value.into()));
    let content = api::service::payments::alipay_signed_content(&params);
    params.push(("sign".into(), sign(key, content.as_bytes())));
    params.push(("sign_type".into(), "RSA2".into()));
    params
}

async fn send_alipay(app: &TestApp, params: &[(String, String)]) -> (u16, String) {
    let response =
        app.client.post(app.url("/payments/notify/alipay")).form(params).send().await.expect("notification sent");
    (response.status().as_u16(), response.text().await.expect("body"))
}

async fn pledge_with(
    app: &TestApp,
    donor: &Credentials,
    campaign: &str,
    amount: i64,
    reference: Option<&str>,
    key: &str,
) -> String {
    let mut input =
        json!({ "campaignId": campaign, "amountFen": amount, "channel": "ONLINE_PLATFORM", "clientKey": key });
    if let Some(r) = reference {
        input["externalReference"] = json!(r);
    }
    app.ok_as(donor, DONATE, json!({ "i": input })).await["donate"]["donation"]["id"].as_str().expect("id").to_owned()
}

async fn donation(app: &TestApp, id: &str) -> Value {
    let q =
        "query($id: ID!) { node(id: $id) { ... on Donation { status holdReason receiptNumber externalReference } } }";
    app.ok(q, json!({ "id": id })).await["node"].clone()
}

async fn notifications(app: &TestApp) -> i64 {
    sql_i64(app, "SELECT COUNT(*) FROM payment_notifications").await
}

fn year() -> String {
    (Utc::now() + Duration::hours(8)).format("%Y").to_string()
}

/// Like `backend_tests!`, over an app that has the platforms' keys (`configure`).
macro_rules! configured_tests {
    ($( async fn $name:ident($app:ident) $body:block )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if selected(Backend::Sqlite) {
                    run(spawn_app_with(Backend::Sqlite, configure).await).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if selected(Backend::Postgres) {
                    run(spawn_app_with(Backend::Postgres, configure).await).await;
                }
            }
        }
    )*};
}

configured_tests! {
    async fn a_signed_wechat_pay_notification_confirms_its_pledge_once(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市湖里区妇女儿童服务中心").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let (platform, stranger) = keys();
        let by_reference = pledge_with(&app, &donor, &campaign, 12_300, Some("WX-ORDER-1"), "key-1").await;
        let by_key = pledge_with(&app, &donor, &campaign, 5_000, None, "ORDER-KEY-2").await;
        let wrong_amount = pledge_with(&app, &donor, &campaign, 7_000, Some("WX-ORDER-3"), "key-3").await;
        let expired = pledge_with(&app, &donor, &campaign, 9_900, Some("WX-ORDER-4"), "key-4").await;
        age(&app, &expired, 100).await;
        let now = Utc::now();

        // Refused, and nothing recorded: a body changed after signing, a stranger's signature,
        // an old timestamp (correctly signed), another key's serial.
        let events = event_count(&app).await;
        let mut tampered = signed_wechat(platform, wechat_body("WX-ORDER-1", "4200000001", 12_300), now);
        tampered.body = wechat_body("WX-ORDER-1", "4200000001", 1);
        let (status, body) = send_wechat(&app, &tampered).await;
        assert_eq!(status, 401, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON answer");
        assert_eq!(answer["code"], "FAIL");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("signature")), "{answer}");
        let foreign = signed_wechat(stranger, wechat_body("WX-ORDER-1", "4200000001", 12_300), now);
        assert_eq!(send_wechat(&app, &foreign).await.0, 401);
        let old = signed_wechat(platform, wechat_body("WX-ORDER-1", "4200000001", 12_300), now - Duration::minutes(6));
        let (status, body) = send_wechat(&app, &old).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("window"), "{body}");
        assert_eq!(event_count(&app).await, events, "a refused notification records nothing");
        assert_eq!(notifications(&app).await, 0);
        assert_eq!(donation(&app, &by_reference).await["status"], "PLEDGED");

        // Verified: confirmed with the year's first receipt number, counted once.
        let good = signed_wechat(platform, wechat_body("WX-ORDER-1", "4200000001", 12_300), now);
        let (status, body) = send_wechat(&app, &good).await;
        assert_eq!((status, body.as_str()), (204, ""));
        let d = donation(&app, &by_reference).await;
        assert_eq!((d["status"].clone(), d["receiptNumber"].clone()), (json!("CONFIRMED"), json!(format!("{}-000001", year()))));
        assert_eq!(raised_and_sum(&app, campaign_row).await, (12_300, 12_300));
        let actor = sql_text(&app, "SELECT actor_label FROM domain_events WHERE event_type = 'donation.confirmed'").await;
        assert_eq!(actor.as_deref(), Some("wechatpay-notify"), "the platform is the actor");

        // Resent (the platform retries until acknowledged): acknowledged, nothing changes.
        let events = event_count(&app).await;
        let resent = signed_wechat(platform, wechat_body("WX-ORDER-1", "4200000001", 12_300), now + Duration::seconds(30));
        assert_eq!(send_wechat(&app, &resent).await.0, 204);
        assert_eq!(event_count(&app).await, events);
        assert_eq!(notifications(&app).await, 1);
        assert_eq!(donation(&app, &by_reference).await["receiptNumber"], format!("{}-000001", year()));

        // The order number may be the pledge's client key.
        let n = signed_wechat(platform, wechat_body("ORDER-KEY-2", "4200000002", 5_000), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        let d = donation(&app, &by_key).await;
        assert_eq!((d["status"].clone(), d["receiptNumber"].clone(), d["externalReference"].clone()),
            (json!("CONFIRMED"), json!(format!("{}-000002", year())), json!("ORDER-KEY-2")));

        // Another amount than the pledge's: kept for staff, nothing confirmed.
        let n = signed_wechat(platform, wechat_body("WX-ORDER-3", "4200000003", 6_999), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        assert_eq!(donation(&app, &wrong_amount).await["status"], "PLEDGED");
        let outcome = sql_text(&app, "SELECT outcome FROM payment_notifications WHERE transaction_id = '4200000003'").await;
        assert_eq!(outcome.as_deref(), Some("AMOUNT_DIFFERS"));
        // An order nobody pledged: kept too.
        let n = signed_wechat(platform, wechat_body("WX-NOBODY", "4200000009", 100), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        let outcome = sql_text(&app, "SELECT outcome FROM payment_notifications WHERE transaction_id = '4200000009'").await;
        assert_eq!(outcome.as_deref(), Some("UNKNOWN_REFERENCE"));

        // Money for an expired pledge: recorded and held as a late payment, not counted.
        let n = signed_wechat(platform, wechat_body("WX-ORDER-4", "4200000004", 9_900), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        let d = donation(&app, &expired).await;
        assert_eq!((d["status"].clone(), d["holdReason"].clone(), d["receiptNumber"].clone()),
            (json!("RECEIVED"), json!("PLEDGE_EXPIRED"), Value::Null));
        assert_eq!(raised_and_sum(&app, campaign_row).await, (17_300, 17_300));
        let progress = "query($id: ID!) { campaign(id: $id) { progress { raisedFen donationCount donorCount } } }";
        assert_eq!(app.ok(progress, json!({ "id": campaign })).await["campaign"]["progress"],
            json!({ "raisedFen": 17_300, "donationCount": 2, "donorCount": 1 }));
        assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, 2, "receipt numbers gapless");

        // A client key two donors happen to share names neither pledge for sure.
        let other = Credentials::account(&app.account("other", &[Role::Donor]).await);
        let mine = pledge_with(&app, &donor, &campaign, 1_000, None, "SHARED-KEY").await;
        let theirs = pledge_with(&app, &other, &campaign, 1_000, None, "SHARED-KEY").await;
        let n = signed_wechat(platform, wechat_body("SHARED-KEY", "4200000010", 1_000), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        assert_eq!((donation(&app, &mine).await["status"].clone(), donation(&app, &theirs).await["status"].clone()),
            (json!("PLEDGED"), json!("PLEDGED")));

        // Staff see the payments that confirmed nothing; donors see none.
        let flagged = "query($o: [PaymentNotificationOutcome!]) { paymentNotifications(outcome: $o) { totalCount edges { node { platform transactionId outTradeNo amountFen outcome donationId } } } }";
        let seen = app.ok(flagged, json!({ "o": ["AMOUNT_DIFFERS", "UNKNOWN_REFERENCE"] })).await["paymentNotifications"].clone();
        assert_eq!(seen["totalCount"], 3);
        assert_eq!(seen["edges"][0]["node"]["outTradeNo"], "SHARED-KEY");
        assert_eq!(seen["edges"][0]["node"]["donationId"], Value::Null);
        assert_eq!(seen["edges"][2]["node"], json!({ "platform": "WECHAT_PAY", "transactionId": "4200000003",
            "outTradeNo": "WX-ORDER-3", "amountFen": 6_999, "outcome": "AMOUNT_DIFFERS", "donationId": wrong_amount }));
        assert_eq!(seen["edges"][1]["node"]["donationId"], Value::Null);
        assert_eq!(app.ok(flagged, json!({})).await["paymentNotifications"]["totalCount"], 6);
        // A kept notification is a node, for staff and reconciling partners.
        let first = app.ok("{ paymentNotifications(first: 1) { edges { node { id transactionId } } } }", json!({})).await;
        let first = first["paymentNotifications"]["edges"][0]["node"].clone();
        let node = "query($id: ID!) { node(id: $id) { ... on PaymentNotification { id transactionId } } }";
        assert_eq!(app.ok(node, json!({ "id": first["id"] })).await["node"], first);
        assert_eq!(app.ok_as(&donor, node, json!({ "id": first["id"] })).await["node"], Value::Null, "staff only");
        let body = app.gql_as(&donor, flagged, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    }

    async fn concurrent_deliveries_of_one_notification_confirm_once(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市海沧区妇女联合会").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let id = pledge_with(&app, &donor, &campaign, 20_000, Some("WX-RACE"), "race-key").await;
        let n = signed_wechat(&keys().0, wechat_body("WX-RACE", "4200000077", 20_000), Utc::now());
        let sends: Vec<_> = (0..6).map(|_| send_wechat(&app, &n)).collect();
        let answers = futures::future::join_all(sends).await;
        assert!(answers.iter().all(|(status, _)| *status == 204), "{answers:?}");
        assert_eq!(donation(&app, &id).await["status"], "CONFIRMED");
        assert_eq!(raised_and_sum(&app, campaign_row).await, (20_000, 20_000));
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed'").await, 1);
        assert_eq!(notifications(&app).await, 1);
        assert_eq!(sql_i64(&app, "SELECT last_number FROM receipt_counters").await, 1);
    }

    async fn a_signed_alipay_notification_confirms_its_pledge_once(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市集美区巾帼志愿服务队").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let (platform, stranger) = keys();
        let id = pledge_with(&app, &donor, &campaign, 5_000, Some("ALI-ORDER-1"), "ali-key-1").await;
        let now = Utc::now();

        // Refused with `failure`, nothing recorded: a changed amount, a stranger's signature,
        // an old notification, another application.
        let events = event_count(&app).await;
        let mut tampered = alipay_params(platform, "ALI-ORDER-1", "2026120122001400001", "50.00", "TRADE_SUCCESS", now);
        if let Some(amount) = tampered.iter_mut().find(|(k, _)| k == "total_amount") {
            amount.1 = "0.01".into();
        }
        assert_eq!(send_alipay(&app, &tampered).await, (401, "failure".to_owned()));
        let foreign = alipay_params(stranger, "ALI-ORDER-1", "2026120122001400001", "50.00", "TRADE_SUCCESS", now);
        assert_eq!(send_alipay(&app, &foreign).await.1, "failure");
        let old = alipay_params(platform, "ALI-ORDER-1", "2026120122001400001", "50.00", "TRADE_SUCCESS", now - Duration::minutes(10));
        assert_eq!(send_alipay(&app, &old).await, (401, "failure".to_owned()));
        assert_eq!(event_count(&app).await, events);
        assert_eq!(notifications(&app).await, 0);

        // A trade still waiting for the buyer: acknowledged, nothing recorded.
        let waiting = alipay_params(platform, "ALI-ORDER-1", "2026120122001400001", "50.00", "WAIT_BUYER_PAY", now);
        assert_eq!(send_alipay(&app, &waiting).await, (200, "success".to_owned()));
        assert_eq!(donation(&app, &id).await["status"], "PLEDGED");

        // Paid: confirmed once; TRADE_FINISHED later for the same trade changes nothing.
        let paid = alipay_params(platform, "ALI-ORDER-1", "2026120122001400001", "50.00", "TRADE_SUCCESS", now);
        assert_eq!(send_alipay(&app, &paid).await, (200, "success".to_owned()));
        let d = donation(&app, &id).await;
        assert_eq!((d["status"].clone(), d["receiptNumber"].clone()), (json!("CONFIRMED"), json!(format!("{}-000001", year()))));
        let events = event_count(&app).await;
        let finished = alipay_params(platform, "ALI-ORDER-1", "2026120122001400001", "50.00", "TRADE_FINISHED", now);
        assert_eq!(send_alipay(&app, &finished).await, (200, "success".to_owned()));
        assert_eq!(event_count(&app).await, events);
        assert_eq!(raised_and_sum(&app, campaign_row).await, (5_000, 5_000));
        assert_eq!(notifications(&app).await, 1);
        let actor = sql_text(&app, "SELECT actor_label FROM domain_events WHERE event_type = 'donation.confirmed'").await;
        assert_eq!(actor.as_deref(), Some("alipay-notify"));
    }

    async fn money_in_another_currency_confirms_nothing_and_is_kept_for_staff(app) {
        let campaign_row = campaign_in(&app, org_row(&app, "厦门市思明区妇女儿童服务中心").await, "ACTIVE").await;
        let campaign = campaign_gid(campaign_row);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let (platform, _) = keys();
        let wechat = pledge_with(&app, &donor, &campaign, 10_000, Some("WX-FX-1"), "fx-key-1").await;
        let alipay = pledge_with(&app, &donor, &campaign, 10_000, Some("ALI-FX-1"), "fx-key-2").await;
        let now = Utc::now();

        // 10,000 in the smallest unit of US dollars is not 100 yuan, though the number matches.
        let n = signed_wechat(platform, wechat_body_in("WX-FX-1", "4200000101", 10_000, "USD"), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204, "acknowledged: a resend could not change it");
        let paid = alipay_params(platform, "ALI-FX-1", "2026120122001400101", "100.00", "TRADE_SUCCESS", now);
        let cross_border = alipay_with(platform, paid, "trans_currency", "HKD");
        assert_eq!(send_alipay(&app, &cross_border).await, (200, "success".to_owned()));

        for id in [&wechat, &alipay] {
            let d = donation(&app, id).await;
            assert_eq!((d["status"].clone(), d["receiptNumber"].clone()), (json!("PLEDGED"), Value::Null));
        }
        assert_eq!(raised_and_sum(&app, campaign_row).await, (0, 0), "nothing counts");
        assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM domain_events WHERE event_type = 'donation.confirmed'").await, 0);
        let flagged = "query($o: [PaymentNotificationOutcome!]) { paymentNotifications(outcome: $o) { totalCount edges { node { platform outTradeNo amountFen outcome donationId } } } }";
        let seen = app.ok(flagged, json!({ "o": ["OTHER_CURRENCY"] })).await["paymentNotifications"].clone();
        assert_eq!(seen["totalCount"], 2, "{seen}");
        let mut nodes: Vec<Value> = seen["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()).collect();
        nodes.sort_by_key(|n| n["platform"].as_str().map(str::to_owned));
        assert_eq!(nodes, vec![
            json!({ "platform": "ALIPAY", "outTradeNo": "ALI-FX-1", "amountFen": 10_000, "outcome": "OTHER_CURRENCY", "donationId": alipay }),
            json!({ "platform": "WECHAT_PAY", "outTradeNo": "WX-FX-1", "amountFen": 10_000, "outcome": "OTHER_CURRENCY", "donationId": wechat }),
        ]);

        // The same order paid in yuan afterwards confirms as usual.
        let n = signed_wechat(platform, wechat_body("WX-FX-1", "4200000102", 10_000), now);
        assert_eq!(send_wechat(&app, &n).await.0, 204);
        assert_eq!(donation(&app, &wechat).await["status"], "CONFIRMED");
        assert_eq!(raised_and_sum(&app, campaign_row).await, (10_000, 10_000));
    }
}

backend_tests! {
    async fn platforms_without_keys_refuse_notifications(app) {
        let n = signed_wechat(&keys().0, wechat_body("WX-ORDER-1", "4200000001", 100), Utc::now());
        let (status, body) = send_wechat(&app, &n).await;
        assert_eq!(status, 503, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON answer");
        assert_eq!(answer["code"], "FAIL");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("not configured")), "{answer}");
        let params = alipay_params(&keys().0, "ALI-1", "2026120122001400009", "1.00", "TRADE_SUCCESS", Utc::now());
        assert_eq!(send_alipay(&app, &params).await, (503, "failure".to_owned()));
        assert_eq!(notifications(&app).await, 0);
    }
}

#[test]
fn payment_keys_are_read_from_pem_text_or_a_file_and_never_printed() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let pem = keys().0.to_public_key().to_public_key_pem(LineEnding::LF).expect("PEM");
    let file = std::env::temp_dir().join(format!("incubase-wechatpay-{}.pem", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, &pem).expect("key file");
    let path = file.display().to_string();
    let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let settings = Settings::from_lookup(|name| match name {
        "INCUBASE_WECHATPAY_PUBLIC_KEY" => Some(path.clone()),
        "INCUBASE_WECHATPAY_APIV3_KEY" => Some(String::from_utf8(APIV3_KEY.to_vec()).expect("text")),
        "INCUBASE_ALIPAY_PUBLIC_KEY" => Some(bare.clone()),
        _ => None,
    })
    .expect("keys read");
    let _ = std::fs::remove_file(&file);
    assert_eq!(settings.payments.wechatpay_public_key, Some(keys().0.to_public_key()));
    assert_eq!(settings.payments.alipay_public_key, Some(keys().0.to_public_key()), "bare base64 DER");
    assert_eq!(settings.payments.wechatpay_apiv3_key, Some(*APIV3_KEY));
    assert_eq!(settings.payments.notify_tolerance, std::time::Duration::from_secs(300));

    let secret = "not-32-characters-secret";
    let err = Settings::from_lookup(|n| (n == "INCUBASE_WECHATPAY_APIV3_KEY").then(|| secret.to_owned()))
        .err()
        .map(|e| e.to_string())
        .expect("refused");
    assert!(err.contains("INCUBASE_WECHATPAY_APIV3_KEY") && !err.contains(secret), "{err}");
    let err = Settings::from_lookup(|n| (n == "INCUBASE_ALIPAY_PUBLIC_KEY").then(|| "MIIBIjANBgkq-broken".to_owned()))
        .err()
        .map(|e| e.to_string())
        .expect("refused");
    assert!(err.contains("INCUBASE_ALIPAY_PUBLIC_KEY") && !err.contains("MIIBIjANBgkq"), "{err}");
}

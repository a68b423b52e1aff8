//! SMS and WeChat template messages through the partner relay: a real HTTP receiver started by
//! the test is the relay endpoint (subscribed to `message.sms`); it receives, signed, the SMS
//! for a waitlist promotion with the person's phone and text in their script, and nothing for
//! a person who opted out. An endpoint subscribed to the domain event gets no phone.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration as Span;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::events::{organizer, published_event, register_as};
use crate::helpers::{Backend, Credentials, TestApp, eventually, selected, spawn_app_with};
use api::service::identity::Role;

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A relay on loopback that answers 200 to everything and keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = received.clone();
    let endpoint = poem::endpoint::make(move |request: poem::Request| {
        let log = log.clone();
        async move {
            let header = |name: &str| request.header(name).unwrap_or_default().to_owned();
            let (id, timestamp, signature) =
                (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
            let body = request.into_body().into_string().await.unwrap_or_default();
            log.lock().unwrap().push(Received { id, timestamp, signature, body });
            poem::Response::builder().status(poem::http::StatusCode::OK).body("relayed")
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(endpoint).await;
    });
    (format!("http://127.0.0.1:{port}/relay"), received)
}

/// The Standard Webhooks check, from the specification.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_")).expect("key");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id eventTypes } } }";
const PREFS: &str = "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) {
    preferences { locale smsPhone smsKinds wechatOpenId wechatKinds } } }";
const CANCEL: &str =
    "mutation($i: CancelRegistrationInput!) { cancelRegistration(input: $i) { registration { status } } }";
const INBOX: &str = "{ viewer { notifications(first: 10) { edges { node { kind } } } } }";

async fn kinds_in_inbox(app: &TestApp, who: &Credentials) -> Vec<String> {
    app.ok_as(who, INBOX, json!({})).await["viewer"]["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["kind"].as_str().expect("kind").to_owned())
        .collect()
}

fn bodies(received: &Arc<Mutex<Vec<Received>>>) -> Vec<(Received, Value)> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.clone(), serde_json::from_str::<Value>(&r.body).expect("JSON body")))
        .collect()
}

async fn promotion_is_relayed_as_sms(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.webhooks.allow_private = true;
        s.webhooks.poll_interval = Duration::from_millis(50);
        s.webhooks.retry_schedule = vec![Duration::from_millis(100)];
    })
    .await;
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let (relay_url, relayed) = receiver().await;
    let (domain_url, domain) = receiver().await;
    let types = app.ok_as(&admin, "{ webhookEventTypes { name public personal } }", json!({})).await;
    let sms_type =
        types["webhookEventTypes"].as_array().expect("types").iter().find(|t| t["name"] == "message.sms").cloned();
    assert_eq!(sms_type, Some(json!({ "name": "message.sms", "public": true, "personal": true })), "{types}");
    let created = app.ok_as(&admin, CREATE, json!({ "i": { "url": relay_url, "eventTypes": ["message.sms"] } })).await;
    let secret = created["createWebhookEndpoint"]["secret"].as_str().expect("secret").to_owned();
    let (wechat_url, wechat) = receiver().await;
    let created = app
        .ok_as(&admin, CREATE, json!({ "i": { "url": wechat_url, "eventTypes": ["message.wechat_template"] } }))
        .await;
    let wechat_secret = created["createWebhookEndpoint"]["secret"].as_str().expect("secret").to_owned();
    // The federation's own endpoint for the domain event: it hears of the promotion, without
    // anybody's phone.
    app.ok_as(&admin, CREATE, json!({ "i": { "url": domain_url, "eventTypes": ["registration.promoted"] } })).await;

    let org = organizer(&app).await;
    let event = published_event(&app, &org, Span::days(3), json!({ "capacity": 1, "title": "两岸青年交流营" })).await;
    let first = app.account("first", &[Role::Donor]).await;
    let guest = app.account("taipei-guest", &[Role::Donor]).await;
    let quiet = app.account("opted-out", &[Role::Donor]).await;
    let (guest_c, quiet_c) = (Credentials::account(&guest), Credentials::account(&quiet));

    // The guest reads Traditional script and wants promotions by SMS; the other person
    // registered a phone too but chose no kind for SMS.
    let prefs = app
        .ok_as(&guest_c, PREFS, json!({ "i": { "locale": "ZH_HANT", "smsPhone": "+886 912-345-678", "smsKinds": ["registration.promoted"],
            "wechatOpenId": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "wechatKinds": ["registration.promoted", "registration.waitlisted"] } }))
        .await;
    let p = &prefs["updateNotificationPreferences"]["preferences"];
    assert_eq!(
        (p["smsPhone"].clone(), p["smsKinds"].clone()),
        (json!("+886912345678"), json!(["registration.promoted"])),
        "{prefs}"
    );
    let prefs = app.ok_as(&quiet_c, PREFS, json!({ "i": { "smsPhone": "13800138000", "smsKinds": [] } })).await;
    assert_eq!(prefs["updateNotificationPreferences"]["preferences"]["smsKinds"], json!([]));
    let bad = app.gql_as(&quiet_c, PREFS, json!({ "i": { "smsPhone": "call me" } })).await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");

    let taken = register_as(&app, &first, json!({ "eventId": event, "privacyConsent": true })).await;
    let first_registration = taken["data"]["register"]["registration"]["id"].clone();
    let waiting = register_as(&app, &guest, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(waiting["data"]["register"]["registration"]["status"], "WAITLISTED", "{waiting}");
    let guest_registration = waiting["data"]["register"]["registration"]["id"].clone();
    let waiting = register_as(&app, &quiet, json!({ "eventId": event, "privacyConsent": true })).await;
    assert_eq!(waiting["data"]["register"]["registration"]["status"], "WAITLISTED", "{waiting}");

    // The first registrant cancels: the guest is promoted and the relay gets the SMS.
    app.ok_as(&Credentials::account(&first), CANCEL, json!({ "i": { "id": first_registration } })).await;
    let arrived = eventually(Duration::from_secs(20), || async { !relayed.lock().unwrap().is_empty() }).await;
    assert!(arrived, "the relay got nothing");
    let got = bodies(&relayed);
    assert_eq!(got.len(), 1, "one SMS (the waitlisting was not chosen): {got:#?}");
    let (request, body) = &got[0];
    assert!(verifies(&secret, request), "signed with the endpoint's secret: {request:?}");
    assert!(request.id.starts_with("msg_sms_"), "{}", request.id);
    assert_eq!(body["type"], "message.sms");
    let data = &body["data"];
    assert_eq!(data["channel"], "SMS");
    assert_eq!(data["to"], "+886912345678", "the phone as the person registered it");
    assert_eq!(data["template"], "registration.promoted");
    assert_eq!(data["locale"], "zh-Hant");
    assert_eq!(data["title"], "候補轉正：您已獲得名額");
    assert!(data["text"].as_str().expect("text").contains("「两岸青年交流营」的正式報名"), "{data}");
    assert_eq!(data["variables"]["eventTitle"], "两岸青年交流营");
    assert_eq!(data["subject"]["object"], "Registration");

    // WeChat: the waitlisting and the promotion (both chosen), each to the openid, signed with
    // that endpoint's own secret; never to the SMS relay or the other way round.
    assert!(eventually(Duration::from_secs(20), || async { wechat.lock().unwrap().len() >= 2 }).await);
    let got = bodies(&wechat);
    let templates: Vec<&str> = got.iter().map(|(_, b)| b["data"]["template"].as_str().expect("template")).collect();
    assert_eq!(templates.len(), 2, "{got:#?}");
    assert!(templates.contains(&"registration.waitlisted") && templates.contains(&"registration.promoted"));
    for (request, body) in &got {
        assert!(verifies(&wechat_secret, request) && !verifies(&secret, request));
        assert!(request.id.starts_with("msg_wx_"));
        assert_eq!(
            (body["type"].as_str(), body["data"]["to"].as_str()),
            (Some("message.wechat_template"), Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
        );
    }

    // The domain event's endpoint got the promotion without anybody's phone.
    assert!(eventually(Duration::from_secs(10), || async { !domain.lock().unwrap().is_empty() }).await);
    let domain_bodies = bodies(&domain);
    assert!(
        domain_bodies.iter().all(|(r, _)| !r.body.contains("912345678") && !r.body.contains("候補")),
        "{domain_bodies:#?}"
    );

    // The guest gives the seat up: the opted-out person is promoted, told in the inbox, and
    // the relay gets nothing for them.
    app.ok_as(&guest_c, CANCEL, json!({ "i": { "id": guest_registration } })).await;
    let told = eventually(Duration::from_secs(20), || async {
        kinds_in_inbox(&app, &quiet_c).await.iter().any(|k| k == "registration.promoted")
    })
    .await;
    assert!(told, "the opted-out person still has the inbox");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = bodies(&relayed);
    assert_eq!(got.len(), 1, "nothing relayed for a person who opted out: {got:#?}");
    assert!(got.iter().all(|(_, b)| b["data"]["to"] != "13800138000"));

    // The relayed messages hold the guest's phone, openid and texts: deleting the account
    // erases them with the preferences.
    let kept = |account: i64| {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        entity::channel_message::Entity::find()
            .filter(entity::channel_message::Column::AccountId.eq(account))
            .count(&app.state.db)
    };
    assert_eq!(kept(guest.id).await.expect("count"), 3, "one SMS and two WeChat messages");
    let deleted = app
        .ok_as(
            &guest_c,
            "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) { deleted } }",
            json!({ "i": { "password": "correct-horse-42" } }),
        )
        .await;
    assert_eq!(deleted["deleteAccount"]["deleted"], true, "{deleted}");
    assert_eq!(kept(guest.id).await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_promotion_is_relayed_as_a_signed_sms_sqlite() {
    if selected(Backend::Sqlite) {
        promotion_is_relayed_as_sms(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_promotion_is_relayed_as_a_signed_sms_postgres() {
    if selected(Backend::Postgres) {
        promotion_is_relayed_as_sms(Backend::Postgres).await;
    }
}

/// Two instances relay each message once: both run the notifications consumer and the
/// message deliverer (claims with `FOR UPDATE SKIP LOCKED`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_relay_each_message_once() {
    if !selected(Backend::Postgres) {
        return;
    }
    let first = spawn_app_with(Backend::Postgres, |s| {
        s.webhooks.allow_private = true;
        s.webhooks.poll_interval = Duration::from_millis(20);
        s.webhooks.retry_schedule = vec![Duration::from_millis(100)];
    })
    .await;
    let second = crate::helpers::spawn_second_instance(&first).await;
    let admin = Credentials::account(&first.account("admin", &[Role::Admin]).await);
    let (relay_url, relayed) = receiver().await;
    first.ok_as(&admin, CREATE, json!({ "i": { "url": relay_url, "eventTypes": ["message.sms"] } })).await;
    let org = organizer(&first).await;
    let event = published_event(&first, &org, Span::days(3), json!({ "capacity": 50 })).await;
    let mut people = Vec::new();
    for i in 0..12 {
        let person = first.account(&format!("p{i}"), &[Role::Donor]).await;
        let prefs = json!({ "i": { "smsPhone": format!("1390000{i:04}"), "smsKinds": ["registration.confirmed"] } });
        first.ok_as(&Credentials::account(&person), PREFS, prefs).await;
        people.push(person);
    }
    let registrations: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, person)| {
            let app = if i % 2 == 0 { &first } else { &second };
            register_as(app, person, json!({ "eventId": event, "privacyConsent": true }))
        })
        .collect();
    for done in futures::future::join_all(registrations).await {
        assert_eq!(done["data"]["register"]["registration"]["status"], "CONFIRMED", "{done}");
    }
    assert!(eventually(Duration::from_secs(30), || async { relayed.lock().unwrap().len() >= 12 }).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = bodies(&relayed);
    let ids: std::collections::BTreeSet<String> = got.iter().map(|(r, _)| r.id.clone()).collect();
    let phones: std::collections::BTreeSet<String> =
        got.iter().map(|(_, b)| b["data"]["to"].as_str().expect("to").to_owned()).collect();
    assert_eq!((ids.len(), phones.len()), (12, 12), "every person told");
    assert_eq!(got.len(), 12, "and each once: {:?}", got.iter().map(|(r, _)| &r.id).collect::<Vec<_>>());
}

//! Partner webhooks against a real HTTP receiver started by the test: Standard Webhooks
//! signatures checked with the specification's algorithm, retries on the configured schedule,
//! the delivery log, redelivery under the same `webhook-id`, secret rotation, the address
//! checks, no redirects, and several instances sending each attempt once.
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::{Backend, Credentials, TestApp, eventually, selected, spawn_app_with, spawn_second_instance};
use api::service::identity::Role;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback: answers with the scripted statuses in order (then 200),
/// or with a redirect to `redirect_to`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Vec<u16>, redirect_to: Option<String>) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers = Arc::new(Mutex::new(VecDeque::from(script)));
        let (log, redirect) = (received.clone(), redirect_to.clone());
        let endpoint = poem::endpoint::make(move |request: poem::Request| {
            let (log, answers, redirect) = (log.clone(), answers.clone(), redirect.clone());
            async move {
                let header = |name: &str| request.header(name).unwrap_or_default().to_owned();
                let (id, timestamp, signature) =
                    (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
                let body = request.into_body().into_string().await.unwrap_or_default();
                log.lock().unwrap().push(Received { at: Instant::now(), id, timestamp, signature, body });
                if let Some(location) = redirect {
                    return poem::Response::builder()
                        .status(poem::http::StatusCode::FOUND)
                        .header("location", location)
                        .finish();
                }
                let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                poem::Response::builder()
                    .status(poem::http::StatusCode::from_u16(status).unwrap())
                    .body(format!("answer {status}"))
            }
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Receiver { url: format!("http://127.0.0.1:{port}/hooks"), received, _server: server }
    }

    fn got(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let got = eventually(Duration::from_secs(30), || async { self.got().len() >= n }).await;
        assert!(got, "the receiver got {} of {n} requests: {:#?}", self.got().len(), self.got());
        self.got()
    }
}

/// The Standard Webhooks check, written from the specification: base64 HMAC-SHA256 with the
/// key that follows `whsec_`, over `{id}.{timestamp}.{body}`, against each `v1,` signature.
fn verifies(secret: &str, received: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 key");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received.signature.split(' ').any(|s| s == expected)
}

async fn app_with_webhooks(backend: Backend, schedule: &[u64]) -> TestApp {
    let schedule: Vec<Duration> = schedule.iter().map(|ms| Duration::from_millis(*ms)).collect();
    spawn_app_with(backend, move |s| {
        s.webhooks.allow_private = true;
        s.webhooks.retry_schedule = schedule;
        s.webhooks.poll_interval = Duration::from_millis(50);
    })
    .await
}

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id url enabled eventTypes } } }";
const DELIVERIES: &str = "query($id: ID!) { webhookEndpoint(id: $id) { failingSince deliveries(first: 10) { totalCount edges { node {
    id messageId eventType status attemptCount lastStatusCode deliveredAt attempts { statusCode error durationMs responseExcerpt } } } } } }";

async fn create_endpoint(app: &TestApp, admin: &Credentials, url: &str, types: &[&str]) -> (String, String) {
    let created = app.ok_as(admin, CREATE, json!({ "i": { "url": url, "eventTypes": types } })).await;
    let endpoint = &created["createWebhookEndpoint"];
    assert!(endpoint["secret"].as_str().expect("secret").starts_with("whsec_"), "{created}");
    (
        endpoint["endpoint"]["id"].as_str().expect("id").to_owned(),
        endpoint["secret"].as_str().expect("secret").to_owned(),
    )
}

async fn deliveries(app: &TestApp, admin: &Credentials, endpoint: &str) -> Value {
    app.ok_as(admin, DELIVERIES, json!({ "id": endpoint })).await["webhookEndpoint"].clone()
}

fn body(received: &Received) -> Value {
    serde_json::from_str(&received.body).expect("a JSON body")
}

async fn signed_retries_redelivery_and_rotation(backend: Backend) {
    let app = app_with_webhooks(backend, &[300, 600]).await;
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let receiver = Receiver::start(vec![500, 500], None).await;
    let (endpoint, secret) = create_endpoint(&app, &admin, &receiver.url, &["organization.created"]).await;

    // Not subscribed: an update is not delivered; the creation is, after two failures.
    let org = crate::organizations::create(&app, json!({ "name": "钩子测试社工站" })).await;
    let org_id = org["id"].as_str().expect("id").to_owned();
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3, "two failures, then the success: {got:#?}");
    for attempt in &got {
        assert_eq!(attempt.id, got[0].id, "every attempt carries one webhook-id");
        assert!(verifies(&secret, attempt), "the signature verifies: {attempt:?}");
        let sent: i64 = attempt.timestamp.parse().expect("unix seconds");
        assert!((chrono::Utc::now().timestamp() - sent).abs() < 300, "a current timestamp");
        let body = body(attempt);
        assert_eq!(body["type"], "organization.created");
        assert_eq!(body["data"]["object"], "Organization");
        assert_eq!(body["data"]["id"], org_id.as_str(), "what changed, as a global ID: {body}");
        assert!(body["timestamp"].as_str().expect("time").ends_with('Z'));
    }
    assert!(got[0].id.starts_with("msg_"), "{}", got[0].id);
    // The configured schedule: at least 300 ms, then at least 600 ms between attempts.
    assert!(got[1].at - got[0].at >= Duration::from_millis(300), "{:?}", got[1].at - got[0].at);
    assert!(got[2].at - got[1].at >= Duration::from_millis(600), "{:?}", got[2].at - got[1].at);

    // The delivery log.
    let logged = eventually(Duration::from_secs(10), || async {
        deliveries(&app, &admin, &endpoint).await["deliveries"]["edges"][0]["node"]["status"] == "SUCCEEDED"
    })
    .await;
    assert!(logged, "{}", deliveries(&app, &admin, &endpoint).await);
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log["deliveries"]["totalCount"], 1, "{log}");
    let delivery = &log["deliveries"]["edges"][0]["node"];
    assert_eq!(delivery["messageId"], got[0].id.as_str());
    assert_eq!(delivery["attemptCount"], 3);
    assert_eq!(delivery["lastStatusCode"], 200);
    assert!(log["failingSince"].is_null(), "a success clears the failure record: {log}");
    let codes: Vec<i64> = delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["statusCode"].as_i64().expect("code"))
        .collect();
    assert_eq!(codes, vec![200, 500, 500], "newest first: {delivery}");
    assert_eq!(delivery["attempts"][1]["responseExcerpt"], "answer 500");

    // A redelivery goes under the same webhook-id: the receiver keeps one delivery.
    let delivery_id = delivery["id"].as_str().expect("id").to_owned();
    let again = app
        .ok_as(
            &admin,
            "mutation($i: RedeliverWebhookInput!) { redeliverWebhook(input: $i) { delivery { status messageId } } }",
            json!({ "i": { "deliveryId": delivery_id } }),
        )
        .await;
    assert_eq!(again["redeliverWebhook"]["delivery"]["status"], "PENDING");
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].id, got[0].id);
    let unique: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), 1, "deduplicated by webhook-id, the receiver has one delivery");

    // Rotation with a grace period: both secrets sign; then only the new one.
    let rotated = app
        .ok_as(
            &admin,
            "mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { secret endpoint { previousSecretExpiresAt } } }",
            json!({ "i": { "id": endpoint, "graceHours": 2 } }),
        )
        .await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    assert!(!rotated["rotateWebhookSecret"]["endpoint"]["previousSecretExpiresAt"].is_null(), "{rotated}");
    crate::organizations::create(&app, json!({ "name": "轮换密钥之后" })).await;
    let got = receiver.wait_for(5).await;
    assert!(verifies(&secret, &got[4]) && verifies(&new_secret, &got[4]), "both sign: {:?}", got[4]);
    assert_eq!(got[4].signature.split(' ').count(), 2);
    app.ok_as(
        &admin,
        "mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { secret } }",
        json!({ "i": { "id": endpoint, "graceHours": 0 } }),
    )
    .await;
    crate::organizations::create(&app, json!({ "name": "立即轮换之后" })).await;
    let got = receiver.wait_for(6).await;
    assert!(!verifies(&secret, &got[5]) && !verifies(&new_secret, &got[5]), "older secrets no longer sign");
    assert_eq!(got[5].signature.split(' ').count(), 1);

    // Replay: every organization.created since the start, under their first webhook-ids.
    let replayed = app
        .ok_as(
            &admin,
            "mutation($i: ReplayWebhookEventsInput!) { replayWebhookEvents(input: $i) { queued } }",
            json!({ "i": { "endpointId": endpoint, "since": (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339() } }),
        )
        .await;
    assert_eq!(replayed["replayWebhookEvents"]["queued"], 3, "{replayed}");
    let got = receiver.wait_for(9).await;
    let unique: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), 3, "replays keep their webhook-ids");

    // Managers are not admins; the log is not theirs to read either.
    let manager = Credentials::account(&app.manager);
    let refused = app
        .gql_as(&manager, CREATE, json!({ "i": { "url": receiver.url, "eventTypes": ["organization.created"] } }))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let hidden = app.gql_as(&manager, DELIVERIES, json!({ "id": endpoint })).await;
    assert_eq!(hidden["errors"][0]["extensions"]["code"], "FORBIDDEN", "{hidden}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_are_retried_logged_redelivered_and_rotated_sqlite() {
    if selected(Backend::Sqlite) {
        signed_retries_redelivery_and_rotation(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_are_retried_logged_redelivered_and_rotated_postgres() {
    if selected(Backend::Postgres) {
        signed_retries_redelivery_and_rotation(Backend::Postgres).await;
    }
}

async fn addresses_redirects_and_visibility(backend: Backend) {
    // Without the allow flag: loopback, private and metadata addresses are refused, and
    // nothing is stored.
    let strict = spawn_app_with(backend, |_| {}).await;
    let admin = Credentials::account(&strict.account("admin", &[Role::Admin]).await);
    for (url, reason) in [
        ("http://127.0.0.1:8080/hooks", "WEBHOOK_URL_FORBIDDEN"),
        ("http://[::1]/hooks", "WEBHOOK_URL_FORBIDDEN"),
        ("http://10.1.2.3/hooks", "WEBHOOK_URL_FORBIDDEN"),
        ("http://169.254.169.254/latest/meta-data", "WEBHOOK_URL_FORBIDDEN"),
        ("http://localhost:9/hooks", "WEBHOOK_URL_FORBIDDEN"),
        ("ftp://93.184.215.14/hooks", "INVALID_WEBHOOK_URL"),
        ("https://user:pw@93.184.215.14/hooks", "INVALID_WEBHOOK_URL"),
    ] {
        let refused =
            strict.gql_as(&admin, CREATE, json!({ "i": { "url": url, "eventTypes": ["campaign.approved"] } })).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{url}: {refused}");
        assert_eq!(refused["errors"][0]["extensions"]["reason"], reason, "{url}: {refused}");
    }
    let unknown = strict
        .gql_as(
            &admin,
            CREATE,
            json!({ "i": { "url": "https://93.184.215.14/h", "eventTypes": ["campaign.exploded"] } }),
        )
        .await;
    assert_eq!(unknown["errors"][0]["extensions"]["reason"], "UNKNOWN_EVENT_TYPE", "{unknown}");
    // A partner key's endpoint takes public changes only.
    let key = strict
        .ok_as(
            &admin,
            "mutation { createApiKey(input: { name: \"公众号\", scopes: [] }) { apiKey { id } } }",
            json!({}),
        )
        .await["createApiKey"]["apiKey"]["id"]
        .clone();
    let private = strict
        .gql_as(
            &admin,
            CREATE,
            json!({ "i": { "url": "https://93.184.215.14/h", "eventTypes": ["donation.pledged"], "apiKeyId": key } }),
        )
        .await;
    assert_eq!(private["errors"][0]["extensions"]["reason"], "EVENT_TYPE_NOT_VISIBLE", "{private}");
    let listed = strict.ok_as(&admin, "{ webhookEndpoints { totalCount } }", json!({})).await;
    assert_eq!(listed["webhookEndpoints"]["totalCount"], 0, "refusals stored nothing");
    // An endpoint is a node, for admins only (as `webhookEndpoints`).
    let (endpoint, _) = create_endpoint(&strict, &admin, "https://93.184.215.14/h", &["campaign.approved"]).await;
    let node = "query($id: ID!) { node(id: $id) { __typename ... on WebhookEndpoint { url } } }";
    let found = strict.ok_as(&admin, node, json!({ "id": endpoint })).await["node"].clone();
    assert_eq!(found, json!({ "__typename": "WebhookEndpoint", "url": "https://93.184.215.14/h" }));
    for other in [Credentials::account(&strict.manager), Credentials::anonymous()] {
        assert_eq!(strict.ok_as(&other, node, json!({ "id": endpoint })).await["node"], Value::Null, "admins only");
    }

    // With the flag (tests): a redirect is recorded, not followed; the schedule ends in FAILED.
    let app = app_with_webhooks(backend, &[200]).await;
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let elsewhere = Receiver::start(vec![], None).await;
    let redirecting = Receiver::start(vec![], Some(elsewhere.url.clone())).await;
    let (endpoint, _) = create_endpoint(&app, &admin, &redirecting.url, &["organization.created"]).await;
    crate::organizations::create(&app, json!({ "name": "重定向测试" })).await;
    redirecting.wait_for(2).await;
    let failed = eventually(Duration::from_secs(10), || async {
        deliveries(&app, &admin, &endpoint).await["deliveries"]["edges"][0]["node"]["status"] == "FAILED"
    })
    .await;
    let log = deliveries(&app, &admin, &endpoint).await;
    assert!(failed, "{log}");
    let attempt = &log["deliveries"]["edges"][0]["node"]["attempts"][0];
    assert_eq!(attempt["statusCode"], 302, "{log}");
    assert_eq!(attempt["error"], "redirects are not followed", "{log}");
    assert!(!log["failingSince"].is_null(), "{log}");
    assert!(elsewhere.got().is_empty(), "the redirect's target got nothing");
    assert_eq!(redirecting.got().len(), 2, "one attempt and one retry, then given up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_and_redirects_are_refused_sqlite() {
    if selected(Backend::Sqlite) {
        addresses_redirects_and_visibility(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_and_redirects_are_refused_postgres() {
    if selected(Backend::Postgres) {
        addresses_redirects_and_visibility(Backend::Postgres).await;
    }
}

/// Two instances on one PostgreSQL database fan out and deliver together: each event reaches
/// the receiver exactly once (claims with `FOR UPDATE SKIP LOCKED`, the fan-out under an
/// advisory lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_send_each_delivery_once() {
    if !selected(Backend::Postgres) {
        return;
    }
    let first = app_with_webhooks(Backend::Postgres, &[200]).await;
    let second = spawn_second_instance(&first).await;
    let admin = Credentials::account(&first.account("admin", &[Role::Admin]).await);
    let receiver = Receiver::start(vec![], None).await;
    create_endpoint(&first, &admin, &receiver.url, &["organization.created"]).await;
    let writes: Vec<_> = (0..24)
        .map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            crate::organizations::create(app, json!({ "name": format!("双实例组织{i}") }))
        })
        .collect();
    futures::future::join_all(writes).await;
    receiver.wait_for(24).await;
    // Whatever else was due has been sent by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.got();
    let unique: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), 24, "every event delivered");
    assert_eq!(got.len(), 24, "and each once: {:?}", got.iter().map(|r| &r.id).collect::<Vec<_>>());
}

/// The endpoint's signing secret as stored.
async fn stored_secret(app: &TestApp, endpoint: &str) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let row = api::graphql::ids::parse(endpoint).expect("endpoint id").1;
    let backend = app.state.db.get_database_backend();
    let sql = format!("SELECT secret FROM webhook_endpoints WHERE id = {row}");
    let found = app.state.db.query_one_raw(Statement::from_string(backend, sql)).await.expect("query");
    found.and_then(|r| r.try_get::<String>("", "secret").ok()).expect("the endpoint's secret")
}

async fn set_stored_secret(app: &TestApp, endpoint: &str, value: &str) {
    use sea_orm::{ConnectionTrait, Statement};
    let row = api::graphql::ids::parse(endpoint).expect("endpoint id").1;
    let backend = app.state.db.get_database_backend();
    let sql = format!("UPDATE webhook_endpoints SET secret = '{value}' WHERE id = {row}");
    app.state.db.execute_raw(Statement::from_string(backend, sql)).await.expect("update");
}

/// Signing secrets are stored sealed (AES-256-GCM under `INCUBASE_SECRETS_KEY`), never as
/// the text the admin was shown; a secret stored in plaintext before sealing existed still
/// signs, and is sealed when an instance starts.
async fn secrets_stored_sealed(backend: Backend) {
    let app = app_with_webhooks(backend, &[200]).await;
    let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
    let receiver = Receiver::start(vec![], None).await;
    let (endpoint, secret) = create_endpoint(&app, &admin, &receiver.url, &["organization.created"]).await;
    let stored = stored_secret(&app, &endpoint).await;
    let key_part = secret.trim_start_matches("whsec_");
    assert!(stored.starts_with("sealed:v1:") && !stored.contains(key_part), "stored sealed: {stored}");

    crate::organizations::create(&app, json!({ "name": "密封密钥组织" })).await;
    let got = receiver.wait_for(1).await;
    assert!(verifies(&secret, &got[0]), "a sealed secret signs: {:?}", got[0]);

    // A row from before sealing: the plaintext secret still signs.
    set_stored_secret(&app, &endpoint, &secret).await;
    crate::organizations::create(&app, json!({ "name": "明文密钥组织" })).await;
    let got = receiver.wait_for(2).await;
    assert!(verifies(&secret, &got[1]), "a plaintext secret from before still signs: {:?}", got[1]);

    // An instance starting seals it.
    let _second = spawn_second_instance(&app).await;
    let resealed = stored_secret(&app, &endpoint).await;
    assert!(resealed.starts_with("sealed:v1:") && !resealed.contains(key_part), "sealed at start: {resealed}");
    let rotate = "mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) { secret } }";
    let rotated = app.ok_as(&admin, rotate, json!({ "i": { "id": endpoint, "graceHours": 1 } })).await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().expect("secret").to_owned();
    crate::organizations::create(&app, json!({ "name": "轮换密钥组织" })).await;
    let got = receiver.wait_for(3).await;
    let last = got.last().expect("a delivery");
    assert!(verifies(&new_secret, last) && verifies(&secret, last), "both sealed secrets sign in the grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_secrets_are_stored_sealed_sqlite() {
    if selected(Backend::Sqlite) {
        secrets_stored_sealed(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_secrets_are_stored_sealed_postgres() {
    if selected(Backend::Postgres) {
        secrets_stored_sealed(Backend::Postgres).await;
    }
}

//! Trusted documents: registering manifests, running them by `documentId`, APQ hash or exact
//! text, and each `INCUBASE_TRUSTED_DOCUMENTS` mode, over HTTP and WebSocket.
use api::config::{Settings, TrustedDocumentsMode};
use api::service::identity::{Role, sha256_hex};
use serde_json::{Value, json};

use crate::helpers::{Backend, Credentials, TestApp, selected, spawn_app_with};

const COUNT: &str = "query CampaignCount { campaigns { totalCount } }";
const PROGRESS: &str =
    "subscription CampaignProgress($id: ID!) { campaignProgress(id: $id) { progress { raisedFen donationCount } } }";
const REGISTER: &str = r#"
mutation($i: RegisterTrustedDocumentsInput!) {
  registerTrustedDocuments(input: $i) { registered alreadyRegistered documents { documentId operationName clientName } }
}"#;
const GQL_RESPONSE: &str = "application/graphql-response+json";

fn manifest(documents: &[&str]) -> String {
    let map: serde_json::Map<String, Value> = documents.iter().map(|d| (sha256_hex(d), json!(d))).collect();
    Value::Object(map).to_string()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn admin(app: &TestApp) -> Credentials {
    Credentials::account(&app.account("admin", &[Role::Admin]).await)
}

/// POSTs a raw body (with `documentId` and friends) as `credentials`; (status, body).
async fn post(app: &TestApp, credentials: &Credentials, accept: &str, body: Value) -> (u16, Value) {
    let mut request = app.client.post(app.url("/graphql")).header("accept", accept).json(&body);
    if let Some(token) = &credentials.token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = &credentials.api_key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("sent");
    (response.status().as_u16(), response.json().await.expect("json"))
}

async fn register(app: &TestApp, who: &Credentials, documents: &[&str]) -> Value {
    app.ok_as(who, REGISTER, json!({ "i": { "manifest": manifest(documents), "clientName": "partner-web" } })).await
        ["registerTrustedDocuments"]
        .clone()
}

macro_rules! mode_tests {
    ($mode:expr => $( async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: TestApp) $body

                fn configure(s: &mut Settings) {
                    s.trusted_documents = $mode;
                }

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
        )*
    };
}

mode_tests! { TrustedDocumentsMode::Allow =>
    async fn allow_mode_runs_registered_documents_by_id_and_free_form_text_too(app) {
        let admin = admin(&app).await;
        let first = register(&app, &admin, &[COUNT, PROGRESS]).await;
        assert_eq!((first["registered"].as_i64(), first["alreadyRegistered"].as_i64()), (Some(2), Some(0)));
        let names: Vec<&str> = first["documents"].as_array().unwrap().iter()
            .map(|d| d["operationName"].as_str().unwrap()).collect();
        assert!(names.contains(&"CampaignCount") && names.contains(&"CampaignProgress"), "{names:?}");
        let again = register(&app, &admin, &[COUNT]).await;
        assert_eq!((again["registered"].as_i64(), again["alreadyRegistered"].as_i64()), (Some(0), Some(1)), "idempotent");
        let id = format!("sha256:{}", sha256_hex(COUNT));
        assert!(first["documents"].as_array().unwrap().iter().any(|d| d["documentId"] == json!(id)));

        let anonymous = Credentials::anonymous();
        let (status, body) = post(&app, &anonymous, "application/json", json!({ "documentId": id })).await;
        assert_eq!((status, body["data"]["campaigns"]["totalCount"].as_i64()), (200, Some(0)), "{body}");
        // The bare hex works too, and so does GET (cacheable by CDNs).
        let (_, body) = post(&app, &anonymous, "application/json", json!({ "documentId": sha256_hex(COUNT) })).await;
        assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "{body}");
        let response = app.client.get(app.url("/graphql")).query(&[("documentId", id.as_str())])
            .header("accept", "application/json").send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "{body}");
        // An APQ hash alone finds the registered document, never sent as text before.
        let apq = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(COUNT) } } });
        let (_, body) = post(&app, &anonymous, "application/json", apq).await;
        assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "{body}");
        // Registered documents go straight to the response cache: a repeat costs no statement.
        let before = app.sql_statements();
        post(&app, &anonymous, "application/json", json!({ "documentId": id })).await;
        assert_eq!(app.sql_statements(), before, "served from the response cache by its id");
        // Free-form text still runs in allow mode.
        assert_eq!(app.ok_as(&anonymous, "{ campaigns { totalCount } }", json!({})).await["campaigns"]["totalCount"], 0);

        // Unknown and malformed ids, and both text and id.
        let unknown = format!("sha256:{}", sha256_hex("query Nope { campaigns { totalCount } }"));
        let (status, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "documentId": unknown })).await;
        assert_eq!((status, code(&body)), (400, "TRUSTED_DOCUMENT_NOT_FOUND"), "{body}");
        let (status, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "documentId": "md5:abc" })).await;
        assert_eq!((status, code(&body)), (400, "BAD_REQUEST"));
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "documentId": id, "query": COUNT })).await;
        assert_eq!(code(&body), "BAD_REQUEST");
    }

    async fn manifests_are_checked_and_registered_by_admins_or_secret_keys_only(app) {
        let admin = admin(&app).await;
        let send = |manifest: String| json!({ "i": { "manifest": manifest } });
        let mut wrong = serde_json::Map::new();
        wrong.insert(sha256_hex("query A { campaigns { totalCount } }"), json!("query B { campaigns { totalCount } }"));
        for (manifest, reason) in [
            (Value::Object(wrong).to_string(), "DOCUMENT_ID_MISMATCH"),
            (manifest(&["query Broken { campaigns { "]), "INVALID_DOCUMENT"),
            ("[1, 2]".to_owned(), "INVALID_MANIFEST"),
            ("{}".to_owned(), "INVALID_MANIFEST"),
            (json!({ "not-a-hash": COUNT }).to_string(), "INVALID_MANIFEST"),
        ] {
            let body = app.gql_as(&admin, REGISTER, send(manifest.clone())).await;
            assert_eq!((code(&body), body["errors"][0]["extensions"]["reason"].as_str()), ("BAD_USER_INPUT", Some(reason)),
                "{manifest}: {body}");
        }
        // Apollo's manifest format is read too.
        let apollo = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
            { "id": sha256_hex(COUNT), "name": "CampaignCount", "type": "query", "body": COUNT } ] });
        let body = app.ok_as(&admin, REGISTER, send(apollo.to_string())).await;
        assert_eq!(body["registerTrustedDocuments"]["registered"], 1);
        let listed = app.ok_as(&admin, "{ trustedDocuments { totalCount edges { node { operationName body } } } }", json!({})).await;
        assert_eq!(listed["trustedDocuments"]["totalCount"], 1, "nothing else was stored: {listed}");

        // A secret key registers from the partner's servers; a publishable one (anyone's) may not,
        // nor may a donor or anonymous caller.
        let (secret, _) = crate::partners::issue_key(&app, json!({ "name": "伙伴后台" })).await;
        let (public, _) = crate::partners::issue_key(&app, json!({ "name": "伙伴页面", "publishable": true,
            "allowedOrigins": [crate::partners::PARTNER] })).await;
        let other = "query Other { organizations { totalCount } }";
        let body = app.ok_as(&Credentials::api_key(&secret), REGISTER, send(manifest(&[other]))).await;
        assert_eq!(body["registerTrustedDocuments"]["registered"], 1);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        for who in [Credentials::api_key(&public), donor, Credentials::anonymous()] {
            let body = app.gql_as(&who, REGISTER, send(manifest(&["query X { campaigns { totalCount } }"]))).await;
            assert!(matches!(code(&body), "FORBIDDEN" | "UNAUTHENTICATED"), "{body}");
        }
        let listed = app.ok_as(&admin, "{ trustedDocuments { totalCount } }", json!({})).await;
        assert_eq!(listed["trustedDocuments"]["totalCount"], 2);
        let body = app.gql_as(&Credentials::account(&app.manager), "{ trustedDocuments { totalCount } }", json!({})).await;
        assert_eq!(code(&body), "FORBIDDEN", "the list is for admins");
    }
}

mode_tests! { TrustedDocumentsMode::Require =>
    async fn require_mode_refuses_unregistered_documents_except_from_staff(app) {
        let admin = admin(&app).await;
        register(&app, &admin, &[COUNT, PROGRESS]).await;
        let anonymous = Credentials::anonymous();
        let free_form = "{ campaigns { totalCount } }";

        // Unregistered text: refused with a stable code, 400 for GraphQL-response clients.
        let (status, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "query": free_form })).await;
        assert_eq!((status, code(&body)), (400, "TRUSTED_DOCUMENT_REQUIRED"), "{body}");
        assert!(body.get("data").is_none());
        let (status, body) = post(&app, &anonymous, "application/json", json!({ "query": free_form })).await;
        assert_eq!((status, code(&body)), (200, "TRUSTED_DOCUMENT_REQUIRED"), "legacy clients get 200");
        // APQ cannot smuggle a document in: sending text with its hash does not register it.
        let apq = json!({ "query": free_form,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(free_form) } } });
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, apq).await;
        assert_eq!(code(&body), "TRUSTED_DOCUMENT_REQUIRED", "{body}");
        let hash_only = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(free_form) } } });
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, hash_only).await;
        assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

        // A failed mutation writes nothing.
        let sign_up = r#"mutation { signUp(input: { email: "stray@test.incubase.cn", password: "correct-horse-42", displayName: "x" }) { accessToken } }"#;
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "query": sign_up })).await;
        assert_eq!(code(&body), "TRUSTED_DOCUMENT_REQUIRED");
        assert!(api::service::identity::account_by_email(&app.state.db, "stray@test.incubase.cn").await.unwrap().is_none());

        // Registered documents run: by id, or as their exact text.
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "documentId": format!("sha256:{}", sha256_hex(COUNT)) })).await;
        assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "{body}");
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "query": COUNT })).await;
        assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "{body}");

        // Partner keys and self-registered donors are held to it; staff tools are not.
        let (secret, _) = crate::partners::issue_key(&app, json!({ "name": "伙伴后台", "scopes": ["DONATE"] })).await;
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        for who in [Credentials::api_key(&secret), donor] {
            let (_, body) = post(&app, &who, GQL_RESPONSE, json!({ "query": free_form })).await;
            assert_eq!(code(&body), "TRUSTED_DOCUMENT_REQUIRED", "{body}");
        }
        let reviewer = Credentials::account(&app.account("reviewer", &[Role::Reviewer]).await);
        for who in [Credentials::account(&app.manager), admin, reviewer] {
            let (_, body) = post(&app, &who, GQL_RESPONSE, json!({ "query": free_form })).await;
            assert_eq!(body["data"]["campaigns"]["totalCount"], 0, "staff keep free-form queries: {body}");
        }
    }

    async fn require_mode_holds_over_websocket_too(app) {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        register(&app, &admin(&app).await, &[PROGRESS]).await;
        let org = crate::events::organizer(&app).await;
        let org_row = api::graphql::ids::parse(&org).expect("id").1;
        let campaign = crate::crowdfunding::campaign_gid(crate::crowdfunding::campaign_in(&app, org_row, "ACTIVE").await);

        let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connects");
        socket.send(Message::text(json!({ "type": "connection_init", "payload": {} }).to_string())).await.unwrap();
        // The next message for operation `id` (None: connection messages).
        async fn next(socket: &mut crate::partners::Socket, id: Option<&str>) -> Value {
            loop {
                let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await
                    .expect("a message").expect("open").expect("message");
                if let Message::Text(text) = msg {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] != "ping" && value["type"] != "pong" && value["id"].as_str() == id {
                        return value;
                    }
                }
            }
        }
        assert_eq!(next(&mut socket, None).await["type"], "connection_ack");
        let free_form = "subscription($id: ID!) { campaignProgress(id: $id) { progress { raisedFen } } }";
        let subscribe = |id: &str, payload: Value| Message::text(json!({ "id": id, "type": "subscribe", "payload": payload }).to_string());
        socket.send(subscribe("1", json!({ "query": free_form, "variables": { "id": campaign } }))).await.unwrap();
        let refused = next(&mut socket, Some("1")).await;
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "TRUSTED_DOCUMENT_REQUIRED", "{refused}");
        let by_hash = json!({ "query": "", "variables": { "id": campaign },
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(PROGRESS) } } });
        socket.send(subscribe("2", by_hash)).await.unwrap();
        let progress = next(&mut socket, Some("2")).await;
        assert_eq!(progress["type"], "next", "{progress}");
        assert_eq!(progress["payload"]["data"]["campaignProgress"]["progress"], json!({ "raisedFen": 0, "donationCount": 0 }));
    }
}

mode_tests! { TrustedDocumentsMode::Off =>
    async fn off_mode_refuses_document_ids_and_runs_text(app) {
        let admin = admin(&app).await;
        register(&app, &admin, &[COUNT]).await;
        let anonymous = Credentials::anonymous();
        let (status, body) = post(&app, &anonymous, GQL_RESPONSE, json!({ "documentId": sha256_hex(COUNT) })).await;
        assert_eq!((status, code(&body)), (400, "TRUSTED_DOCUMENTS_OFF"), "{body}");
        let hash_only = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(COUNT) } } });
        let (_, body) = post(&app, &anonymous, GQL_RESPONSE, hash_only.clone()).await;
        assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "registered documents are not consulted");
        // Plain APQ keeps working: text with its hash, then the hash alone.
        let mut with_text = hash_only.clone();
        with_text["query"] = json!(COUNT);
        assert_eq!(post(&app, &anonymous, GQL_RESPONSE, with_text).await.1["data"]["campaigns"]["totalCount"], 0);
        assert_eq!(post(&app, &anonymous, GQL_RESPONSE, hash_only).await.1["data"]["campaigns"]["totalCount"], 0);
    }
}

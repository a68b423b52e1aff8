//! The server as it is deployed: behind trusted reverse proxies (client addresses from
//! forwarding headers), with native TLS, behind a real Nginx, and on Redis Sentinel.
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, selected, spawn_app_with};

/// One test per backend on a server that allows three operations a minute per client and
/// believes forwarding headers from `$trusted`.
macro_rules! proxy_tests {
    ($( async fn $name:ident($app:ident, trusted = $trusted:expr) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if selected(Backend::Sqlite) {
                        run(spawn_limited(Backend::Sqlite, $trusted).await).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if selected(Backend::Postgres) {
                        run(spawn_limited(Backend::Postgres, $trusted).await).await;
                    }
                }
            }
        )*
    };
}

const AUDIT: &str = r#"query($f: AuditLogFilter) {
  auditLog(filter: $f, first: 5) { edges { node { type actor { kind address } } } }
}"#;
const CREATE_ORG: &str = "mutation($n: String!) { createOrganization(input: { name: $n }) { organization { id } } }";

/// POSTs `query` with extra headers (forwarding headers a client or a proxy adds).
async fn send_with(
    app: &TestApp,
    headers: &[(&str, &str)],
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// Where the audit trail says the organization `id` was created from.
async fn created_from(app: &TestApp, id: &Value) -> Value {
    let admin = app.account("admin", &[api::service::identity::Role::Admin]).await;
    let filter = json!({ "f": { "aggregate": id, "types": ["organization.created"] } });
    let log = app.ok_as(&crate::helpers::Credentials::account(&admin), AUDIT, filter).await;
    log["auditLog"]["edges"][0]["node"]["actor"]["address"].clone()
}

async fn create_org(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let name = format!("代理测试{}", uuid::Uuid::new_v4().simple());
    let (status, body) =
        send_with(app, headers, Some(&app.manager.token.clone()), CREATE_ORG, json!({ "n": name })).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["createOrganization"]["organization"]["id"].clone()
}

const ANONYMOUS_READ: &str = "{ __typename }";

proxy_tests! {
    async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app, trusted = "10.0.0.0/8, 192.0.2.10") {
        // Trusted proxies are configured, but this peer (127.0.0.1) is not one of them.
        let spoofs: [&[(&str, &str)]; 4] = [
            &[("x-forwarded-for", "203.0.113.1")],
            &[("x-forwarded-for", "203.0.113.2, 203.0.113.3")],
            &[("forwarded", "for=203.0.113.4;proto=https")],
            &[("x-forwarded-for", "203.0.113.5"), ("x-real-ip", "203.0.113.5")],
        ];
        for headers in &spoofs[..3] {
            let (status, body) = send_with(&app, headers, None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200, "{body}");
        }
        // The fourth anonymous operation of this minute is the peer's fourth, whatever it claims.
        let (status, body) = send_with(&app, spoofs[3], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");

        // The audit trail records the peer, not the claim.
        let id = create_org(&app, &[("x-forwarded-for", "198.51.100.77")]).await;
        assert_eq!(created_from(&app, &id).await, "127.0.0.1");
    }

    async fn clients_behind_a_trusted_proxy_get_their_own_buckets(app, trusted = "127.0.0.0/8") {
        let (status, _) = send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200);
        for _ in 0..2 {
            let (status, _) =
                send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200);
        }
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.7")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "client A used its three: {body}");
        // A client that puts another address in front of its own still counts as itself: the
        // proxy appended the real one at the right.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.8, 203.0.113.7")], None, ANONYMOUS_READ, json!({}))
                .await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "prepending an address does not help: {body}");

        // Client B behind the same proxy has a bucket of its own.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.8")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200, "client B is not limited by client A: {body}");
        // Several trusted hops (a load balancer in front of the proxy) are walked past.
        let (status, body) =
            send_with(&app, &[("x-forwarded-for", "203.0.113.9, 127.0.0.5")], None, ANONYMOUS_READ, json!({})).await;
        assert_eq!(status, 200, "{body}");
        // RFC 7239 `Forwarded` is read first, IPv6 and ports included.
        for _ in 0..3 {
            let headers = [("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https"#), ("x-forwarded-for", "203.0.113.7")];
            let (status, body) = send_with(&app, &headers, None, ANONYMOUS_READ, json!({})).await;
            assert_eq!(status, 200, "the Forwarded client is not client A: {body}");
        }

        // The audit trail records the resolved client.
        let id = create_org(&app, &[("x-forwarded-for", "198.51.100.20")]).await;
        assert_eq!(created_from(&app, &id).await, "198.51.100.20");
        let id = create_org(&app, &[("forwarded", "for=198.51.100.21, for=127.0.0.9")]).await;
        assert_eq!(created_from(&app, &id).await, "198.51.100.21");
    }
}

/// Three operations a minute per client, forwarding headers believed from `trusted`.
pub async fn spawn_limited(backend: Backend, trusted: &str) -> TestApp {
    let trusted = api::proxy::TrustedProxies::parse(trusted).expect("proxies");
    spawn_app_with(backend, move |s| {
        s.limits.operations_per_minute = 3;
        s.trusted_proxies = trusted;
    })
    .await
}

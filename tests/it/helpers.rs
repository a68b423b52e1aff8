//! `spawn_app()`: a real server on port 0 over a fresh database — a temporary SQLite file
//! with the in-process cache, or a uuid-named PostgreSQL database with Redis under a
//! uuid-named key prefix — migrated with the real `Migrator`.
use std::time::Duration;

use api::config::{Environment, Settings};
use api::service::identity::{self, Role};
use api::startup::Application;
use api::state::AppState;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("INCUBASE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("INCUBASE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether this run covers `backend`. `INCUBASE_TEST_BACKENDS=sqlite` runs only the SQLite
/// half on a machine without PostgreSQL; under CI=true both halves are mandatory.
pub fn selected(backend: Backend) -> bool {
    let list = std::env::var("INCUBASE_TEST_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted = list.split(',').any(|b| b.trim().eq_ignore_ascii_case(&format!("{backend:?}")));
    if !wanted && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true requires the {backend:?} backend, but INCUBASE_TEST_BACKENDS={list}");
    }
    if !wanted {
        eprintln!("note: {backend:?} half not selected (INCUBASE_TEST_BACKENDS={list})");
    }
    wanted
}

/// A signed-in test account.
#[derive(Clone, Debug)]
pub struct TestAccount {
    pub id: i64,
    pub global_id: String,
    pub email: String,
    pub token: String,
}

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub struct TestApp {
    pub address: String,
    /// A manager, who sends `gql`/`ok`/`error_code` unless a test says otherwise.
    pub manager: TestAccount,
    pub client: reqwest::Client,
    pub state: AppState,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pg_database: Option<String>,
    redis_prefix: Option<String>,
    sqlite_dir: Option<std::path::PathBuf>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("INCUBASE_TEST_LOG").is_some() {
        api::telemetry::init(&api::config::LogFormat::Human);
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = Settings::embedded();
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.environment = Environment::Development;
    settings.jwt_secret = Some(TEST_JWT_SECRET.into());
    settings.receipt_secret = Some(TEST_JWT_SECRET.replace("test", "rcpt"));
    settings.secrets_key = Some(TEST_JWT_SECRET.replace("test", "seal"));
    // Suites send many anonymous calls from one address; the limit itself has its own test.
    settings.limits.anonymous_mutations_per_minute = 100_000;
    let (mut pg_database, mut redis_prefix, mut sqlite_dir) = (None, None, None);
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("incubase-test-{id}"));
            settings.database_url = format!("sqlite://{}/test.db?mode=rwc", dir.display());
            sqlite_dir = Some(dir);
        }
        Backend::Postgres => {
            let name = format!("incubase_test_{id}");
            let admin = Database::connect(pg_admin_url()).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is unreachable ({e}). Start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                     or run only the SQLite half with INCUBASE_TEST_BACKENDS=sqlite (not allowed under CI=true).",
                    pg_admin_url()
                )
            });
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
            admin.close().await.ok();
            let base = pg_admin_url();
            let root = base.rsplit_once('/').map(|(r, _)| r.to_owned()).unwrap_or(base);
            settings.database_url = format!("{root}/{name}");
            pg_database = Some(name);

            let prefix = format!("incubase-test:{id}");
            require_redis().await;
            settings.redis_url = Some(redis_url());
            settings.cache_prefix = prefix.clone();
            redis_prefix = Some(prefix);
        }
    }
    configure(&mut settings);
    let app = Application::build(settings).await.expect("application starts");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let manager = new_account(&state, "manager", &[Role::Manager]).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        rx.await.ok();
    }));
    TestApp {
        address,
        manager,
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        state,
        backend,
        shutdown: Some(tx),
        server: Some(server),
        pg_database,
        redis_prefix,
        sqlite_dir,
    }
}

/// A second server on the same database and Redis prefix as `first`, as a second instance
/// behind a load balancer would be. Dropping it leaves the shared database alone.
pub async fn spawn_second_instance(first: &TestApp) -> TestApp {
    let mut settings = (*first.state.settings).clone();
    settings.listen = "127.0.0.1:0".parse().expect("address");
    let app = Application::build(settings).await.expect("second instance starts");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        rx.await.ok();
    }));
    TestApp {
        address,
        manager: first.manager.clone(),
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        state,
        backend: first.backend,
        shutdown: Some(tx),
        server: Some(server),
        pg_database: None,
        redis_prefix: None,
        sqlite_dir: None,
    }
}

async fn require_redis() {
    let fail = |e: String| -> ! {
        panic!(
            "Redis at {} is unreachable ({e}). Start it with \
             `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`, \
             or run only the SQLite half with INCUBASE_TEST_BACKENDS=sqlite (not allowed under CI=true).",
            redis_url()
        )
    };
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| fail(e.to_string()));
    let mut conn = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
        .await
        .unwrap_or_else(|_| fail("timed out".into()))
        .unwrap_or_else(|e| fail(e.to_string()));
    let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap_or_else(|e| fail(e.to_string()));
}

/// Creates an account directly through the service (no HTTP, no sign-in limits) and
/// signs it in.
pub async fn new_account(state: &AppState, label: &str, roles: &[Role]) -> TestAccount {
    let email = format!("{label}-{}@test.incubase.cn", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let account =
        identity::create_account(state.ctx(), &crate::helpers::actor(), &email, "correct-horse-42", label, roles)
            .await
            .expect("account");
    let issued = identity::start_session(&state.db, &state.tokens, account).await.expect("session");
    TestAccount {
        id: issued.account.id,
        global_id: api::graphql::ids::encode("Account", issued.account.id).to_string(),
        email,
        token: issued.access_token,
    }
}

/// Who sends a request: an account's token, a partner key, both, or neither.
#[derive(Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub api_key: Option<String>,
}

impl Credentials {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn account(account: &TestAccount) -> Self {
        Self { token: Some(account.token.clone()), api_key: None }
    }

    pub fn api_key(secret: &str) -> Self {
        Self { token: None, api_key: Some(secret.to_owned()) }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn account(&self, label: &str, roles: &[Role]) -> TestAccount {
        new_account(&self.state, label, roles).await
    }

    /// POSTs an operation with these credentials; returns the status and JSON body.
    pub async fn send(&self, credentials: &Credentials, query: &str, variables: Value) -> (u16, Value) {
        let mut request =
            self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &credentials.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = &credentials.api_key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// POSTs as `credentials`; asserts the HTTP status is 200.
    pub async fn gql_as(&self, credentials: &Credentials, query: &str, variables: Value) -> Value {
        let (status, body) = self.send(credentials, query, variables).await;
        assert_eq!(status, 200, "GraphQL over application/json answers 200: {body}");
        body
    }

    pub async fn ok_as(&self, credentials: &Credentials, query: &str, variables: Value) -> Value {
        let body = self.gql_as(credentials, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// POSTs as the manager; returns the whole JSON response (data and errors).
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_as(&Credentials::account(&self.manager), query, variables).await
    }

    /// POSTs as the manager an operation that must succeed; returns `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.ok_as(&Credentials::account(&self.manager), query, variables).await
    }

    /// POSTs as the manager an operation that must fail; returns the first error's code.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let body = self.gql(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {body:#}"))
            .to_owned()
    }

    pub fn sql_statements(&self) -> u64 {
        self.state.metrics.sql_statements()
    }

    /// Stops the server the way SIGTERM would and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(40), server).await;
            assert!(matches!(result, Ok(Ok(Ok(())))), "server stops cleanly: {result:?}");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let pg = self.pg_database.take();
        let prefix = self.redis_prefix.take();
        if pg.is_none() && prefix.is_none() {
            return;
        }
        // Cleanup needs async I/O; a thread with its own runtime keeps Drop synchronous.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Some(name) = pg
                    && let Ok(admin) = Database::connect(pg_admin_url()).await
                {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                    let _ = admin.close().await;
                }
                if let Some(prefix) = prefix
                    && let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> =
                        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Generates one test per backend from one body:
/// `backend_tests! { async fn name(app) { ... } }` → `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                $(#[$meta])*
                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if $crate::helpers::selected($crate::helpers::Backend::Sqlite) {
                        run($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::helpers::selected($crate::helpers::Backend::Postgres) {
                        run($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await;
                    }
                }
            }
        )*
    };
}

/// Who fixtures written straight through the services are recorded as in the event log.
pub fn actor() -> api::events::Actor {
    api::events::Actor::system("test-fixture")
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection (with `init` as the connection_init payload) and
/// starts one subscription under id "1".
pub async fn subscribe(app: &TestApp, init: Value, query: &str, variables: Value) -> Socket {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    socket.send(Message::text(json!({ "type": "connection_init", "payload": init }).to_string())).await.expect("init");
    assert_eq!(next_ws_message(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    socket
}

/// The next protocol message (bounded wait: a missing push fails instead of hanging).
pub async fn next_ws_message(socket: &mut Socket) -> Value {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("message");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] != "ping" && value["type"] != "pong" {
                return value;
            }
        }
    }
}

/// The data of the next `next` message's `field`; panics on anything else.
pub async fn next_data(socket: &mut Socket, field: &str) -> Value {
    let msg = next_ws_message(socket).await;
    assert_eq!(msg["type"], "next", "{msg}");
    assert!(msg["payload"].get("errors").is_none(), "{msg}");
    msg["payload"]["data"][field].clone()
}

/// Whether no message arrives within `wait` (what a subscriber must not be sent).
pub async fn quiet_for(socket: &mut Socket, wait: Duration) -> bool {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if value["type"] != "ping" && value["type"] != "pong" {
                    return false;
                }
            }
            Ok(_) => return false,
        }
    }
}

/// Polls `check` until it holds or `within` passes; returns whether it held. For bounds that
/// are part of the contract (a write on one instance reaches another within 1 s).
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How many events the log holds.
pub async fn event_count(app: &TestApp) -> i64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::domain_event::Entity::find().count(&app.state.db).await.expect("count events") as i64
}

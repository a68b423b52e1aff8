//! Settings: defaults that run out of the box, overridden by environment variables.
//! A bad value stops start-up with one line naming the variable.
//!
//! Each field that a variable sets is named after it (`#[serde(rename = "…")]`) and converted by
//! a helper of `values`; `read` extracts each section with figment. Checks across variables
//! come after, in `from_lookup`.
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

mod read;
mod values;

use values::{DAY, HOUR, MILLISECOND, MINUTE, SECOND};
pub use values::{normalize_origin, parse_duration, redact_url};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Embedded default: GraphiQL, introspection and field suggestions on.
    Development,
    Production,
}

/// Which origins browsers may call the API from (`INCUBASE_CORS_ORIGINS`), besides the
/// origins each publishable partner key is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// Only the origins of publishable keys (the default).
    #[default]
    KeysOnly,
    /// These origins (canonical `scheme://host[:port]`), and those of publishable keys.
    List(Vec<String>),
    /// Any origin (`*`): for a read-mostly public deployment. The API never answers
    /// `Access-Control-Allow-Credentials` (it uses no cookies), so the wildcard never goes with
    /// credentials; publishable keys stay bound to their own origins and secret keys are still
    /// refused from browsers.
    Any,
}

/// Whether requests may name a registered operation instead of sending its text, and whether
/// they must (`INCUBASE_TRUSTED_DOCUMENTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrustedDocumentsMode {
    /// Registered documents are not consulted; `documentId` is refused.
    Off,
    /// `documentId` (or an APQ hash) of a registered document is accepted, free-form text too.
    #[default]
    Allow,
    /// Anonymous, partner-key and non-staff traffic may run registered documents only; staff
    /// tools keep free-form queries.
    Require,
}

#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    #[serde(rename = "INCUBASE_LISTEN", deserialize_with = "values::parsed")]
    pub listen: SocketAddr,
    #[serde(rename = "INCUBASE_ENV", deserialize_with = "values::environment")]
    pub environment: Environment,
    #[serde(rename = "DATABASE_URL", deserialize_with = "values::database_url")]
    pub database_url: String,
    #[serde(rename = "INCUBASE_DB_MAX_CONNECTIONS", deserialize_with = "values::positive")]
    pub database_max_connections: u32,
    #[serde(rename = "INCUBASE_DB_ACQUIRE_TIMEOUT_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub database_acquire_timeout: Duration,
    #[serde(rename = "REDIS_URL", deserialize_with = "values::redis_url")]
    pub redis_url: Option<String>,
    /// `INCUBASE_CACHE=off`: no cache at all (for measuring uncached reads).
    #[serde(rename = "INCUBASE_CACHE", deserialize_with = "values::on_off")]
    pub cache_enabled: bool,
    #[serde(rename = "INCUBASE_CACHE_PREFIX")]
    pub cache_prefix: String,
    #[serde(rename = "INCUBASE_CACHE_TTL_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub cache_ttl: Duration,
    #[serde(rename = "INCUBASE_CACHE_TIMEOUT_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub cache_timeout: Duration,
    /// Entries of the in-process response cache (0 turns it off).
    #[serde(rename = "INCUBASE_RESPONSE_CACHE_ENTRIES", deserialize_with = "values::parsed")]
    pub response_cache_entries: u64,
    #[serde(rename = "INCUBASE_LOG_FORMAT", deserialize_with = "values::log_format")]
    pub log_format: LogFormat,
    #[serde(skip)]
    pub limits: Limits,
    /// HS256 signing secret of access tokens; when unset, one is generated and kept beside
    /// the SQLite database (or in ./data for PostgreSQL in development).
    #[serde(rename = "INCUBASE_JWT_SECRET", deserialize_with = "values::secret")]
    pub jwt_secret: Option<String>,
    /// Secrets whose access tokens are still accepted, never used to sign
    /// (`INCUBASE_JWT_PREVIOUS_SECRETS`, comma-separated): for rotating the secret.
    #[serde(rename = "INCUBASE_JWT_PREVIOUS_SECRETS", deserialize_with = "values::previous_secrets")]
    pub jwt_previous_secrets: Vec<String>,
    /// Seals the secrets the server must read back, webhook signing secrets
    /// (`INCUBASE_SECRETS_KEY`, at least 32 characters); when unset, one is generated and kept
    /// beside the SQLite database like the token secret (required with PostgreSQL in production).
    #[serde(rename = "INCUBASE_SECRETS_KEY", deserialize_with = "values::secret")]
    pub secrets_key: Option<String>,
    /// Keys that still open sealed secrets, never used to seal
    /// (`INCUBASE_SECRETS_PREVIOUS_KEYS`, comma-separated): for rotating the key; values sealed
    /// under them are sealed again under the current key at start.
    #[serde(rename = "INCUBASE_SECRETS_PREVIOUS_KEYS", deserialize_with = "values::previous_secrets")]
    pub secrets_previous_keys: Vec<String>,
    #[serde(rename = "INCUBASE_ACCESS_TOKEN_TTL_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub access_token_ttl: Duration,
    #[serde(rename = "INCUBASE_REFRESH_TOKEN_TTL_DAYS", deserialize_with = "values::duration::<_, DAY>")]
    pub refresh_token_ttl: Duration,
    #[serde(rename = "INCUBASE_SIGNIN_LIMIT_PER_ACCOUNT", deserialize_with = "values::positive")]
    pub sign_in_per_account_per_minute: u32,
    #[serde(rename = "INCUBASE_SIGNIN_LIMIT_PER_ADDRESS", deserialize_with = "values::positive")]
    pub sign_in_per_address_per_minute: u32,
    /// Introspection and "did you mean" suggestions; `None`: on in development only.
    #[serde(rename = "INCUBASE_INTROSPECTION", deserialize_with = "values::optional_flag")]
    pub introspection: Option<bool>,
    #[serde(rename = "INCUBASE_SUGGESTIONS", deserialize_with = "values::optional_flag")]
    pub suggestions: Option<bool>,
    /// GraphiQL at `/` (and `GET /graphql` from a browser); `None`: on in development only.
    #[serde(rename = "INCUBASE_GRAPHIQL", deserialize_with = "values::optional_flag")]
    pub graphiql: Option<bool>,
    /// Mounts `/debug/panic`, a route that panics, so tests can show a panic is contained.
    /// Not settable from the environment.
    #[serde(skip)]
    pub debug_panic_route: bool,
    /// How long before an event starts its check-in opens.
    #[serde(rename = "INCUBASE_CHECK_IN_OPENS_MINUTES", deserialize_with = "values::duration::<_, MINUTE>")]
    pub check_in_opens_before: Duration,
    /// How long after an event ends identity documents of its registrations are kept.
    #[serde(rename = "INCUBASE_ID_DOC_RETENTION_DAYS", deserialize_with = "values::duration::<_, DAY>")]
    pub identity_document_retention: Duration,
    /// How long operational events stay in the log (`INCUBASE_EVENT_RETENTION_DAYS`).
    #[serde(rename = "INCUBASE_EVENT_RETENTION_DAYS", deserialize_with = "values::duration::<_, DAY>")]
    pub event_retention: Duration,
    /// How long audit events (money, stage changes, awards, roles) stay; `None`: forever
    /// (`INCUBASE_AUDIT_RETENTION_DAYS`).
    #[serde(rename = "INCUBASE_AUDIT_RETENTION_DAYS", deserialize_with = "values::days_or_forever")]
    pub audit_retention: Option<Duration>,
    /// How far back a subscription's `after:` cursor may reach (`INCUBASE_REPLAY_WINDOW_HOURS`).
    #[serde(rename = "INCUBASE_REPLAY_WINDOW_HOURS", deserialize_with = "values::duration::<_, HOUR>")]
    pub replay_window: Duration,
    /// The follower's backstop poll of the log (`INCUBASE_EVENT_POLL_MS`).
    #[serde(rename = "INCUBASE_EVENT_POLL_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub event_poll_interval: Duration,
    #[serde(rename = "INCUBASE_CORS_ORIGINS", deserialize_with = "values::cors_origins")]
    pub cors_origins: CorsOrigins,
    /// `Access-Control-Max-Age` of preflight answers.
    #[serde(rename = "INCUBASE_CORS_MAX_AGE_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub cors_max_age: Duration,
    #[serde(rename = "INCUBASE_TRUSTED_DOCUMENTS", deserialize_with = "values::trusted_documents")]
    pub trusted_documents: TrustedDocumentsMode,
    /// Reverse proxies and load balancers whose forwarding headers name the client
    /// (`INCUBASE_TRUSTED_PROXIES`); empty: every TCP peer is the client.
    #[serde(rename = "INCUBASE_TRUSTED_PROXIES", deserialize_with = "values::trusted_proxies")]
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// Serve HTTPS with this certificate and key (`INCUBASE_TLS_CERT`, `INCUBASE_TLS_KEY`),
    /// reloaded on SIGHUP; `None`: plain HTTP (behind a TLS-terminating proxy).
    #[serde(skip)]
    pub tls: Option<crate::tls::TlsFiles>,
    #[serde(skip)]
    pub webhooks: WebhookSettings,
    /// `INCUBASE_SMTP_URL` (`smtp://user:pass@host:587` with STARTTLS, `smtps://…:465`,
    /// `smtp://host:25?tls=none` for a relay on a closed network); unset: no email, the inbox
    /// still works.
    #[serde(rename = "INCUBASE_SMTP_URL", deserialize_with = "values::smtp_url")]
    pub smtp_url: Option<String>,
    /// `INCUBASE_SMTP_FROM`: the sender of notification emails.
    #[serde(rename = "INCUBASE_SMTP_FROM", deserialize_with = "values::mailbox")]
    pub smtp_from: String,
    /// How long a pledge waits for its money before it expires (`INCUBASE_PLEDGE_TTL_HOURS`).
    #[serde(rename = "INCUBASE_PLEDGE_TTL_HOURS", deserialize_with = "values::duration::<_, HOUR>")]
    pub pledge_ttl: Duration,
    /// The most confirmations one transaction counts together on PostgreSQL
    /// (`INCUBASE_CONFIRMATION_BATCH`, 64); `1`: each confirmation runs alone, as its own
    /// statement, on the request's task.
    #[serde(rename = "INCUBASE_CONFIRMATION_BATCH", deserialize_with = "values::positive")]
    pub confirmation_batch: usize,
    #[serde(skip)]
    pub accounts: AccountSettings,
    /// Keys guests' receipt lookups and the printable receipts' links
    /// (`INCUBASE_RECEIPT_SECRET`, at least 32 characters); when unset, one is generated and
    /// kept beside the SQLite database like the token secret. Never change it: guests' contacts
    /// are stored only as digests under it, and receipt links are derived from it.
    #[serde(rename = "INCUBASE_RECEIPT_SECRET", deserialize_with = "values::secret")]
    pub receipt_secret: Option<String>,
    /// Guest receipt lookups and statements per client address per hour
    /// (`INCUBASE_RECEIPT_LOOKUPS_PER_ADDRESS_PER_HOUR`, 30) and per receipt number per hour
    /// (`INCUBASE_RECEIPT_LOOKUPS_PER_RECEIPT_PER_HOUR`, 10).
    #[serde(rename = "INCUBASE_RECEIPT_LOOKUPS_PER_ADDRESS_PER_HOUR", deserialize_with = "values::positive")]
    pub receipt_lookups_per_address_per_hour: u32,
    #[serde(rename = "INCUBASE_RECEIPT_LOOKUPS_PER_RECEIPT_PER_HOUR", deserialize_with = "values::positive")]
    pub receipt_lookups_per_receipt_per_hour: u32,
    #[serde(skip)]
    pub payments: PaymentSettings,
}

/// Payment platforms' notifications (`POST /payments/notify/wechatpay`, `/payments/notify/alipay`):
/// a platform's route works once its keys are set, and answers 503 before. Keys are PEM text, a
/// path to a PEM file, or (Alipay) the bare base64 the console shows; never printed.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct PaymentSettings {
    /// `INCUBASE_WECHATPAY_PUBLIC_KEY`: the WeChat Pay platform public key (or the platform
    /// certificate's public key) that verifies `Wechatpay-Signature`.
    #[serde(rename = "INCUBASE_WECHATPAY_PUBLIC_KEY", deserialize_with = "values::public_key")]
    pub wechatpay_public_key: Option<rsa::PublicKey>,
    /// `INCUBASE_WECHATPAY_PUBLIC_KEY_ID`: that key's ID (`PUB_KEY_ID_…`) or the certificate's
    /// serial; when set, a notification whose `Wechatpay-Serial` names another is refused.
    #[serde(rename = "INCUBASE_WECHATPAY_PUBLIC_KEY_ID", deserialize_with = "values::trimmed")]
    pub wechatpay_serial: Option<String>,
    /// `INCUBASE_WECHATPAY_APIV3_KEY`: the merchant's 32-character APIv3 key (decrypts `resource`).
    #[serde(rename = "INCUBASE_WECHATPAY_APIV3_KEY", deserialize_with = "values::apiv3_key")]
    pub wechatpay_apiv3_key: Option<[u8; 32]>,
    /// `INCUBASE_ALIPAY_PUBLIC_KEY`: the Alipay public key (支付宝公钥) that verifies RSA2 `sign`.
    #[serde(rename = "INCUBASE_ALIPAY_PUBLIC_KEY", deserialize_with = "values::public_key")]
    pub alipay_public_key: Option<rsa::PublicKey>,
    /// `INCUBASE_ALIPAY_APP_ID`: when set, notifications for another application are refused.
    #[serde(rename = "INCUBASE_ALIPAY_APP_ID", deserialize_with = "values::trimmed")]
    pub alipay_app_id: Option<String>,
    /// How far a notification's time may be from ours (`INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS`, 300).
    #[serde(rename = "INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub notify_tolerance: Duration,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            wechatpay_public_key: None,
            wechatpay_serial: None,
            wechatpay_apiv3_key: None,
            alipay_public_key: None,
            alipay_app_id: None,
            notify_tolerance: Duration::from_secs(300),
        }
    }
}

/// Recovering and controlling accounts: how long mailed tokens live, how often they may be
/// asked for, and where the mails' links point.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct AccountSettings {
    /// A password reset token's life (`INCUBASE_PASSWORD_RESET_TTL_SECS`, 30 minutes).
    #[serde(rename = "INCUBASE_PASSWORD_RESET_TTL_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub password_reset_ttl: Duration,
    /// An email verification or email change token's life (`INCUBASE_EMAIL_TOKEN_TTL_HOURS`, 24).
    #[serde(rename = "INCUBASE_EMAIL_TOKEN_TTL_HOURS", deserialize_with = "values::duration::<_, HOUR>")]
    pub email_token_ttl: Duration,
    /// Account mails asked for per address mailed, per hour (`INCUBASE_ACCOUNT_MAILS_PER_EMAIL_PER_HOUR`, 5).
    #[serde(rename = "INCUBASE_ACCOUNT_MAILS_PER_EMAIL_PER_HOUR", deserialize_with = "values::positive")]
    pub mails_per_email_per_hour: u32,
    /// Account mails asked for per client address, per hour (`INCUBASE_ACCOUNT_MAILS_PER_ADDRESS_PER_HOUR`, 30).
    #[serde(rename = "INCUBASE_ACCOUNT_MAILS_PER_ADDRESS_PER_HOUR", deserialize_with = "values::positive")]
    pub mails_per_address_per_hour: u32,
    /// The page of the federation's site that takes the tokens (`INCUBASE_ACCOUNT_LINK_URL`,
    /// e.g. `https://www.example.org/account`): mails link to `<url>/reset-password?token=…` and
    /// `<url>/verify-email?token=…`. Unset: mails show the token to paste.
    #[serde(rename = "INCUBASE_ACCOUNT_LINK_URL", deserialize_with = "values::link_url")]
    pub link_url: Option<String>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            password_reset_ttl: Duration::from_secs(30 * 60),
            email_token_ttl: Duration::from_secs(24 * 3600),
            mails_per_email_per_hour: 5,
            mails_per_address_per_hour: 30,
            link_url: None,
        }
    }
}

/// How partner webhooks are delivered.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Endpoints may resolve to loopback, private, link-local or metadata addresses
    /// (`INCUBASE_WEBHOOK_ALLOW_PRIVATE`; tests and closed networks only).
    #[serde(rename = "INCUBASE_WEBHOOK_ALLOW_PRIVATE", deserialize_with = "values::flag")]
    pub allow_private: bool,
    /// The pause before each retry (`INCUBASE_WEBHOOK_RETRY_SCHEDULE`, e.g. `5s,1m,5m`): a
    /// delivery is tried once, then once after each pause, then given up.
    #[serde(rename = "INCUBASE_WEBHOOK_RETRY_SCHEDULE", deserialize_with = "values::retry_schedule")]
    pub retry_schedule: Vec<Duration>,
    /// How often deliverers look for due deliveries (`INCUBASE_WEBHOOK_POLL_MS`).
    #[serde(rename = "INCUBASE_WEBHOOK_POLL_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub poll_interval: Duration,
    /// One request's limit.
    #[serde(skip)]
    pub request_timeout: Duration,
    /// An endpoint whose every attempt failed for this long is disabled
    /// (`INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS`).
    #[serde(rename = "INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS", deserialize_with = "values::duration::<_, HOUR>")]
    pub disable_after: Duration,
    /// Opens and seals the endpoints' signing secrets (from `INCUBASE_SECRETS_KEY`, set at start).
    #[serde(skip)]
    pub sealing: crate::sealing::Sealing,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let schedule = ["5s", "30s", "2m", "10m", "30m", "2h", "6h", "24h"];
        Self {
            allow_private: false,
            retry_schedule: schedule.iter().filter_map(|d| parse_duration(d)).collect(),
            poll_interval: Duration::from_millis(1000),
            request_timeout: Duration::from_secs(10),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            sealing: crate::sealing::Sealing::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Limits {
    #[serde(rename = "INCUBASE_MAX_BODY_BYTES", deserialize_with = "values::positive")]
    pub max_body_bytes: usize,
    /// A statement uploaded to `POST /reconcile/statements` (`INCUBASE_MAX_STATEMENT_BYTES`,
    /// 16 MiB): a day of 10,000 WeChat Pay lines is about 2 MiB, past `max_body_bytes`.
    #[serde(rename = "INCUBASE_MAX_STATEMENT_BYTES", deserialize_with = "values::positive")]
    pub max_statement_bytes: usize,
    #[serde(rename = "INCUBASE_MAX_QUERY_BYTES", deserialize_with = "values::positive")]
    pub max_query_bytes: usize,
    #[serde(rename = "INCUBASE_MAX_BATCH", deserialize_with = "values::positive")]
    pub max_batch: usize,
    #[serde(rename = "INCUBASE_MAX_DEPTH", deserialize_with = "values::positive")]
    pub max_depth: usize,
    #[serde(rename = "INCUBASE_MAX_COMPLEXITY", deserialize_with = "values::positive")]
    pub max_complexity: usize,
    /// Fields in one operation with fragments expanded, `__typename` included.
    #[serde(rename = "INCUBASE_MAX_FIELDS", deserialize_with = "values::positive")]
    pub max_fields: usize,
    #[serde(rename = "INCUBASE_MAX_ALIASES", deserialize_with = "values::positive")]
    pub max_aliases: usize,
    #[serde(rename = "INCUBASE_MAX_DIRECTIVES", deserialize_with = "values::positive")]
    pub max_directives_per_field: usize,
    #[serde(rename = "INCUBASE_DEFAULT_PAGE_SIZE", deserialize_with = "values::positive")]
    pub default_page_size: usize,
    #[serde(rename = "INCUBASE_MAX_PAGE_SIZE", deserialize_with = "values::positive")]
    pub max_page_size: usize,
    #[serde(rename = "INCUBASE_EXECUTION_TIMEOUT_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub execution_timeout: Duration,
    #[serde(rename = "INCUBASE_BODY_READ_TIMEOUT_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub body_read_timeout: Duration,
    /// From a connection's accept (or a kept-alive request's first byte) to the end of its
    /// request head.
    #[serde(rename = "INCUBASE_HEADER_READ_TIMEOUT_MS", deserialize_with = "values::duration::<_, MILLISECOND>")]
    pub header_read_timeout: Duration,
    #[serde(rename = "INCUBASE_IDLE_TIMEOUT_SECS", deserialize_with = "values::duration::<_, SECOND>")]
    pub idle_timeout: Duration,
    /// Operations per minute per client (API key, account, or address).
    #[serde(rename = "INCUBASE_RATE_LIMIT_PER_MINUTE", deserialize_with = "values::positive")]
    pub operations_per_minute: u32,
    /// Mutations per minute per address from anonymous clients (and from browsers using a
    /// publishable key, whose mutations are anyone's).
    #[serde(rename = "INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE", deserialize_with = "values::positive")]
    pub anonymous_mutations_per_minute: u32,
    /// Operations per minute per client address under one publishable key (the key as a whole
    /// counts under `operations_per_minute`).
    #[serde(rename = "INCUBASE_PUBLISHABLE_KEY_PER_ADDRESS_PER_MINUTE", deserialize_with = "values::positive")]
    pub publishable_key_per_address_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_statement_bytes: 16 * 1024 * 1024,
            max_query_bytes: 32 * 1024,
            max_batch: 10,
            max_depth: 12,
            max_complexity: 5000,
            max_fields: 1000,
            max_aliases: 100,
            max_directives_per_field: 8,
            default_page_size: 20,
            max_page_size: 100,
            execution_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            operations_per_minute: 1200,
            anonymous_mutations_per_minute: 30,
            publishable_key_per_address_per_minute: 120,
        }
    }
}

impl std::fmt::Debug for Settings {
    // Never print secrets: database and Redis URLs may carry passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("environment", &self.environment)
            .field("database", &redact_url(&self.database_url))
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}={value:?}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl SettingsError {
    fn new(name: &'static str, value: &str, reason: &str) -> Self {
        Self { name, value: value.to_owned(), reason: reason.to_owned() }
    }
}

/// `INCUBASE_TLS_CERT` and `INCUBASE_TLS_KEY`: both or neither.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TlsVariables {
    #[serde(rename = "INCUBASE_TLS_CERT")]
    cert: Option<String>,
    #[serde(rename = "INCUBASE_TLS_KEY")]
    key: Option<String>,
}

impl TlsVariables {
    fn files(self) -> Result<Option<crate::tls::TlsFiles>, SettingsError> {
        match (self.cert, self.key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles { cert: cert.into(), key: key.into() })),
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err(SettingsError::new("INCUBASE_TLS_KEY", "", "INCUBASE_TLS_CERT is set: set the key too"))
            }
            (None, Some(_)) => {
                Err(SettingsError::new("INCUBASE_TLS_CERT", "", "INCUBASE_TLS_KEY is set: set the certificate too"))
            }
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::embedded()
    }
}

impl Settings {
    /// Defaults for the embedded setup: SQLite file in ./data, in-process cache.
    pub fn embedded() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            environment: Environment::Development,
            database_url: "sqlite://data/incubase.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            database_acquire_timeout: Duration::from_secs(3),
            redis_url: None,
            cache_enabled: true,
            cache_prefix: "incubase".to_owned(),
            cache_ttl: Duration::from_secs(300),
            cache_timeout: Duration::from_millis(250),
            response_cache_entries: 10_000,
            log_format: LogFormat::Human,
            limits: Limits::default(),
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            secrets_key: None,
            secrets_previous_keys: Vec::new(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            sign_in_per_account_per_minute: 5,
            sign_in_per_address_per_minute: 20,
            introspection: None,
            graphiql: None,
            suggestions: None,
            debug_panic_route: false,
            check_in_opens_before: Duration::from_secs(60 * 60),
            identity_document_retention: Duration::from_secs(30 * 24 * 3600),
            event_retention: Duration::from_secs(365 * 24 * 3600),
            audit_retention: None,
            replay_window: Duration::from_secs(7 * 24 * 3600),
            event_poll_interval: Duration::from_millis(200),
            cors_origins: CorsOrigins::KeysOnly,
            cors_max_age: Duration::from_secs(600),
            trusted_documents: TrustedDocumentsMode::Allow,
            trusted_proxies: crate::proxy::TrustedProxies::default(),
            tls: None,
            webhooks: WebhookSettings::default(),
            smtp_url: None,
            smtp_from: "妇女社会组织孵化基地 <noreply@incubase.local>".to_owned(),
            accounts: AccountSettings::default(),
            pledge_ttl: Duration::from_secs(72 * 3600),
            confirmation_batch: 64,
            receipt_secret: None,
            receipt_lookups_per_address_per_hour: 30,
            receipt_lookups_per_receipt_per_hour: 10,
            payments: PaymentSettings::default(),
        }
    }

    /// Reads the environment over the embedded defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables `get` answers for over the embedded defaults; unknown variables are
    /// never asked for, blank ones count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s: Self = read::section(&get)?;
        s.limits = read::section(&get)?;
        s.webhooks = read::section(&get)?;
        s.accounts = read::section(&get)?;
        s.payments = read::section(&get)?;
        s.tls = read::section::<TlsVariables>(&get)?.files()?;
        if s.limits.default_page_size > s.limits.max_page_size {
            return Err(SettingsError::new(
                "INCUBASE_DEFAULT_PAGE_SIZE",
                &s.limits.default_page_size.to_string(),
                "must not exceed INCUBASE_MAX_PAGE_SIZE",
            ));
        }
        Ok(s)
    }

    pub fn introspection_enabled(&self) -> bool {
        self.introspection.unwrap_or(self.environment == Environment::Development)
    }

    pub fn graphiql_enabled(&self) -> bool {
        self.graphiql.unwrap_or(self.environment == Environment::Development)
    }

    pub fn suggestions_enabled(&self) -> bool {
        self.suggestions.unwrap_or(self.environment == Environment::Development)
    }

    /// Whether signed-in sessions may be read through the cache: only when an invalidation
    /// reaches every instance before the writer answers (Redis, or SQLite's one instance). With
    /// PostgreSQL and no Redis, each instance checks the session in the database.
    pub fn sessions_cacheable(&self) -> bool {
        self.cache_enabled && (self.redis_url.is_some() || !self.is_postgres())
    }

    pub fn is_postgres(&self) -> bool {
        !self.database_url.starts_with("sqlite:")
    }
}

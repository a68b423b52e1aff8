//! Settings: defaults that run out of the box, overridden by environment variables.
//! A bad value stops start-up with one line naming the variable.
use std::net::SocketAddr;
use std::time::Duration;

mod values;

use values::{invalid, parse, parse_bool, parse_cors_origins, parse_positive};
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

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub environment: Environment,
    pub database_url: String,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: Option<String>,
    /// `INCUBASE_CACHE=off`: no cache at all (for measuring uncached reads).
    pub cache_enabled: bool,
    pub cache_prefix: String,
    pub cache_ttl: Duration,
    pub cache_timeout: Duration,
    /// Entries of the in-process response cache (0 turns it off).
    pub response_cache_entries: u64,
    pub log_format: LogFormat,
    pub limits: Limits,
    /// HS256 signing secret of access tokens; when unset, one is generated and kept beside
    /// the SQLite database (or in ./data for PostgreSQL in development).
    pub jwt_secret: Option<String>,
    /// Secrets whose access tokens are still accepted, never used to sign
    /// (`INCUBASE_JWT_PREVIOUS_SECRETS`, comma-separated): for rotating the secret.
    pub jwt_previous_secrets: Vec<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub sign_in_per_account_per_minute: u32,
    pub sign_in_per_address_per_minute: u32,
    /// Introspection and "did you mean" suggestions; `None`: on in development only.
    pub introspection: Option<bool>,
    pub suggestions: Option<bool>,
    /// GraphiQL at `/` (and `GET /graphql` from a browser); `None`: on in development only.
    pub graphiql: Option<bool>,
    /// Mounts `/debug/panic`, a route that panics, so tests can show a panic is contained.
    /// Not settable from the environment.
    pub debug_panic_route: bool,
    /// How long before an event starts its check-in opens.
    pub check_in_opens_before: Duration,
    /// How long after an event ends identity documents of its registrations are kept.
    pub identity_document_retention: Duration,
    /// How long operational events stay in the log (`INCUBASE_EVENT_RETENTION_DAYS`).
    pub event_retention: Duration,
    /// How long audit events (money, stage changes, awards, roles) stay; `None`: forever
    /// (`INCUBASE_AUDIT_RETENTION_DAYS`).
    pub audit_retention: Option<Duration>,
    /// How far back a subscription's `after:` cursor may reach (`INCUBASE_REPLAY_WINDOW_HOURS`).
    pub replay_window: Duration,
    /// The follower's backstop poll of the log (`INCUBASE_EVENT_POLL_MS`).
    pub event_poll_interval: Duration,
    pub cors_origins: CorsOrigins,
    /// `Access-Control-Max-Age` of preflight answers.
    pub cors_max_age: Duration,
    pub trusted_documents: TrustedDocumentsMode,
    /// Reverse proxies and load balancers whose forwarding headers name the client
    /// (`INCUBASE_TRUSTED_PROXIES`); empty: every TCP peer is the client.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// Serve HTTPS with this certificate and key (`INCUBASE_TLS_CERT`, `INCUBASE_TLS_KEY`),
    /// reloaded on SIGHUP; `None`: plain HTTP (behind a TLS-terminating proxy).
    pub tls: Option<crate::tls::TlsFiles>,
    pub webhooks: WebhookSettings,
    /// `INCUBASE_SMTP_URL` (`smtp://user:pass@host:587` with STARTTLS, `smtps://…:465`,
    /// `smtp://host:25?tls=none` for a relay on a closed network); unset: no email, the inbox
    /// still works.
    pub smtp_url: Option<String>,
    /// `INCUBASE_SMTP_FROM`: the sender of notification emails.
    pub smtp_from: String,
    /// How long a pledge waits for its money before it expires (`INCUBASE_PLEDGE_TTL_HOURS`).
    pub pledge_ttl: Duration,
    pub accounts: AccountSettings,
    /// Keys guests' receipt lookups and the printable receipts' links
    /// (`INCUBASE_RECEIPT_SECRET`, at least 32 characters); when unset, one is generated and
    /// kept beside the SQLite database like the token secret. Never change it: guests' contacts
    /// are stored only as digests under it, and receipt links are derived from it.
    pub receipt_secret: Option<String>,
    /// Guest receipt lookups and statements per client address per hour
    /// (`INCUBASE_RECEIPT_LOOKUPS_PER_ADDRESS_PER_HOUR`, 30) and per receipt number per hour
    /// (`INCUBASE_RECEIPT_LOOKUPS_PER_RECEIPT_PER_HOUR`, 10).
    pub receipt_lookups_per_address_per_hour: u32,
    pub receipt_lookups_per_receipt_per_hour: u32,
    pub payments: PaymentSettings,
}

/// Payment platforms' notifications (`POST /payments/notify/wechatpay`, `/payments/notify/alipay`):
/// a platform's route works once its keys are set, and answers 503 before. Keys are PEM text, a
/// path to a PEM file, or (Alipay) the bare base64 the console shows; never printed.
#[derive(Clone)]
pub struct PaymentSettings {
    /// `INCUBASE_WECHATPAY_PUBLIC_KEY`: the WeChat Pay platform public key (or the platform
    /// certificate's public key) that verifies `Wechatpay-Signature`.
    pub wechatpay_public_key: Option<rsa::PublicKey>,
    /// `INCUBASE_WECHATPAY_PUBLIC_KEY_ID`: that key's ID (`PUB_KEY_ID_…`) or the certificate's
    /// serial; when set, a notification whose `Wechatpay-Serial` names another is refused.
    pub wechatpay_serial: Option<String>,
    /// `INCUBASE_WECHATPAY_APIV3_KEY`: the merchant's 32-character APIv3 key (decrypts `resource`).
    pub wechatpay_apiv3_key: Option<[u8; 32]>,
    /// `INCUBASE_ALIPAY_PUBLIC_KEY`: the Alipay public key (支付宝公钥) that verifies RSA2 `sign`.
    pub alipay_public_key: Option<rsa::PublicKey>,
    /// `INCUBASE_ALIPAY_APP_ID`: when set, notifications for another application are refused.
    pub alipay_app_id: Option<String>,
    /// How far a notification's time may be from ours (`INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS`, 300).
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

impl PaymentSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut p = Self::default();
        let key = |name: &'static str| -> Result<Option<rsa::PublicKey>, SettingsError> {
            get(name)
                .map(|v| {
                    crate::service::payments::parse_public_key(&v).map_err(|reason| invalid(name, "(key)", &reason))
                })
                .transpose()
        };
        p.wechatpay_public_key = key("INCUBASE_WECHATPAY_PUBLIC_KEY")?;
        p.alipay_public_key = key("INCUBASE_ALIPAY_PUBLIC_KEY")?;
        p.wechatpay_serial = get("INCUBASE_WECHATPAY_PUBLIC_KEY_ID").map(|v| v.trim().to_owned());
        p.alipay_app_id = get("INCUBASE_ALIPAY_APP_ID").map(|v| v.trim().to_owned());
        if let Some(v) = get("INCUBASE_WECHATPAY_APIV3_KEY") {
            let bytes: [u8; 32] = v
                .trim()
                .as_bytes()
                .try_into()
                .map_err(|_| invalid("INCUBASE_WECHATPAY_APIV3_KEY", "(key)", "expected 32 characters"))?;
            p.wechatpay_apiv3_key = Some(bytes);
        }
        if let Some(v) = get("INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS") {
            p.notify_tolerance = Duration::from_secs(parse_positive("INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS", &v)?);
        }
        Ok(p)
    }
}

/// Recovering and controlling accounts: how long mailed tokens live, how often they may be
/// asked for, and where the mails' links point.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// A password reset token's life (`INCUBASE_PASSWORD_RESET_TTL_SECS`, 30 minutes).
    pub password_reset_ttl: Duration,
    /// An email verification or email change token's life (`INCUBASE_EMAIL_TOKEN_TTL_HOURS`, 24).
    pub email_token_ttl: Duration,
    /// Account mails asked for per address mailed, per hour (`INCUBASE_ACCOUNT_MAILS_PER_EMAIL_PER_HOUR`, 5).
    pub mails_per_email_per_hour: u32,
    /// Account mails asked for per client address, per hour (`INCUBASE_ACCOUNT_MAILS_PER_ADDRESS_PER_HOUR`, 30).
    pub mails_per_address_per_hour: u32,
    /// The page of the federation's site that takes the tokens (`INCUBASE_ACCOUNT_LINK_URL`,
    /// e.g. `https://www.example.org/account`): mails link to `<url>/reset-password?token=…` and
    /// `<url>/verify-email?token=…`. Unset: mails show the token to paste.
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
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Endpoints may resolve to loopback, private, link-local or metadata addresses
    /// (`INCUBASE_WEBHOOK_ALLOW_PRIVATE`; tests and closed networks only).
    pub allow_private: bool,
    /// The pause before each retry (`INCUBASE_WEBHOOK_RETRY_SCHEDULE`, e.g. `5s,1m,5m`): a
    /// delivery is tried once, then once after each pause, then given up.
    pub retry_schedule: Vec<Duration>,
    /// How often deliverers look for due deliveries (`INCUBASE_WEBHOOK_POLL_MS`).
    pub poll_interval: Duration,
    /// One request's limit.
    pub request_timeout: Duration,
    /// An endpoint whose every attempt failed for this long is disabled
    /// (`INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS`).
    pub disable_after: Duration,
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
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// A statement uploaded to `POST /reconcile/statements` (`INCUBASE_MAX_STATEMENT_BYTES`,
    /// 16 MiB): a day of 10,000 WeChat Pay lines is about 2 MiB, past `max_body_bytes`.
    pub max_statement_bytes: usize,
    pub max_query_bytes: usize,
    pub max_batch: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Fields in one operation with fragments expanded, `__typename` included.
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_directives_per_field: usize,
    pub default_page_size: usize,
    pub max_page_size: usize,
    pub execution_timeout: Duration,
    pub body_read_timeout: Duration,
    /// From a connection's accept (or a kept-alive request's first byte) to the end of its
    /// request head.
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Operations per minute per client (API key, account, or address).
    pub operations_per_minute: u32,
    /// Mutations per minute per address from anonymous clients (and from browsers using a
    /// publishable key, whose mutations are anyone's).
    pub anonymous_mutations_per_minute: u32,
    /// Operations per minute per client address under one publishable key (the key as a whole
    /// counts under `operations_per_minute`).
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

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s = Self::embedded();
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("INCUBASE_LISTEN") {
            s.listen = parse("INCUBASE_LISTEN", &v)?;
        }
        if let Some(v) = get("INCUBASE_ENV") {
            s.environment = match v.as_str() {
                "development" | "dev" => Environment::Development,
                "production" | "prod" => Environment::Production,
                _ => return Err(invalid("INCUBASE_ENV", &v, "expected development or production")),
            };
        }
        if let Some(v) = get("DATABASE_URL") {
            if !(v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://")) {
                return Err(SettingsError {
                    name: "DATABASE_URL",
                    value: redact_url(&v),
                    reason: "expected sqlite:… or postgres://…".into(),
                });
            }
            s.database_url = v;
        }
        if let Some(v) = get("INCUBASE_DB_MAX_CONNECTIONS") {
            s.database_max_connections = parse_positive("INCUBASE_DB_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("INCUBASE_DB_ACQUIRE_TIMEOUT_MS") {
            s.database_acquire_timeout = Duration::from_millis(parse_positive("INCUBASE_DB_ACQUIRE_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("REDIS_URL") {
            if let Err(reason) = crate::redis_conn::RedisTarget::parse(&v) {
                return Err(SettingsError { name: "REDIS_URL", value: redact_url(&v), reason });
            }
            s.redis_url = Some(v);
        }
        if let Some(v) = get("INCUBASE_CACHE") {
            s.cache_enabled = match v.as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(invalid("INCUBASE_CACHE", &v, "expected on or off")),
            };
        }
        if let Some(v) = get("INCUBASE_CACHE_PREFIX") {
            s.cache_prefix = v;
        }
        if let Some(v) = get("INCUBASE_CACHE_TTL_SECS") {
            s.cache_ttl = Duration::from_secs(parse_positive("INCUBASE_CACHE_TTL_SECS", &v)?);
        }
        if let Some(v) = get("INCUBASE_CACHE_TIMEOUT_MS") {
            s.cache_timeout = Duration::from_millis(parse_positive("INCUBASE_CACHE_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_RESPONSE_CACHE_ENTRIES") {
            s.response_cache_entries = parse("INCUBASE_RESPONSE_CACHE_ENTRIES", &v)?;
        }
        if let Some(v) = get("INCUBASE_LOG_FORMAT") {
            s.log_format = match v.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => return Err(invalid("INCUBASE_LOG_FORMAT", &v, "expected human or json")),
            };
        }
        if let Some(v) = get("INCUBASE_MAX_BODY_BYTES") {
            s.limits.max_body_bytes = parse_positive("INCUBASE_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_STATEMENT_BYTES") {
            s.limits.max_statement_bytes = parse_positive("INCUBASE_MAX_STATEMENT_BYTES", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_BATCH") {
            s.limits.max_batch = parse_positive("INCUBASE_MAX_BATCH", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_QUERY_BYTES") {
            s.limits.max_query_bytes = parse_positive("INCUBASE_MAX_QUERY_BYTES", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_FIELDS") {
            s.limits.max_fields = parse_positive("INCUBASE_MAX_FIELDS", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_ALIASES") {
            s.limits.max_aliases = parse_positive("INCUBASE_MAX_ALIASES", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_DIRECTIVES") {
            s.limits.max_directives_per_field = parse_positive("INCUBASE_MAX_DIRECTIVES", &v)?;
        }
        if let Some(v) = get("INCUBASE_EXECUTION_TIMEOUT_MS") {
            s.limits.execution_timeout = Duration::from_millis(parse_positive("INCUBASE_EXECUTION_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_BODY_READ_TIMEOUT_MS") {
            s.limits.body_read_timeout = Duration::from_millis(parse_positive("INCUBASE_BODY_READ_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_HEADER_READ_TIMEOUT_MS") {
            s.limits.header_read_timeout =
                Duration::from_millis(parse_positive("INCUBASE_HEADER_READ_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_IDLE_TIMEOUT_SECS") {
            s.limits.idle_timeout = Duration::from_secs(parse_positive("INCUBASE_IDLE_TIMEOUT_SECS", &v)?);
        }
        if let Some(v) = get("INCUBASE_RATE_LIMIT_PER_MINUTE") {
            s.limits.operations_per_minute = parse_positive("INCUBASE_RATE_LIMIT_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE") {
            s.limits.anonymous_mutations_per_minute = parse_positive("INCUBASE_ANONYMOUS_MUTATIONS_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_DEPTH") {
            s.limits.max_depth = parse_positive("INCUBASE_MAX_DEPTH", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_COMPLEXITY") {
            s.limits.max_complexity = parse_positive("INCUBASE_MAX_COMPLEXITY", &v)?;
        }
        if let Some(v) = get("INCUBASE_MAX_PAGE_SIZE") {
            s.limits.max_page_size = parse_positive("INCUBASE_MAX_PAGE_SIZE", &v)?;
        }
        if let Some(v) = get("INCUBASE_DEFAULT_PAGE_SIZE") {
            s.limits.default_page_size = parse_positive("INCUBASE_DEFAULT_PAGE_SIZE", &v)?;
        }
        if s.limits.default_page_size > s.limits.max_page_size {
            return Err(invalid(
                "INCUBASE_DEFAULT_PAGE_SIZE",
                &s.limits.default_page_size.to_string(),
                "must not exceed INCUBASE_MAX_PAGE_SIZE",
            ));
        }
        if let Some(v) = get("INCUBASE_INTROSPECTION") {
            s.introspection = Some(parse_bool("INCUBASE_INTROSPECTION", &v)?);
        }
        if let Some(v) = get("INCUBASE_GRAPHIQL") {
            s.graphiql = Some(parse_bool("INCUBASE_GRAPHIQL", &v)?);
        }
        if let Some(v) = get("INCUBASE_SUGGESTIONS") {
            s.suggestions = Some(parse_bool("INCUBASE_SUGGESTIONS", &v)?);
        }
        if let Some(v) = get("INCUBASE_JWT_SECRET") {
            if v.len() < 32 {
                return Err(SettingsError {
                    name: "INCUBASE_JWT_SECRET",
                    value: "***".into(),
                    reason: "must be at least 32 characters".into(),
                });
            }
            s.jwt_secret = Some(v);
        }
        if let Some(v) = get("INCUBASE_JWT_PREVIOUS_SECRETS") {
            let secrets: Vec<String> =
                v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
            if secrets.iter().any(|p| p.len() < 32) {
                return Err(SettingsError {
                    name: "INCUBASE_JWT_PREVIOUS_SECRETS",
                    value: "***".into(),
                    reason: "each secret must be at least 32 characters".into(),
                });
            }
            s.jwt_previous_secrets = secrets;
        }
        if let Some(v) = get("INCUBASE_ACCESS_TOKEN_TTL_SECS") {
            s.access_token_ttl = Duration::from_secs(parse_positive("INCUBASE_ACCESS_TOKEN_TTL_SECS", &v)?);
        }
        if let Some(v) = get("INCUBASE_REFRESH_TOKEN_TTL_DAYS") {
            s.refresh_token_ttl =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_REFRESH_TOKEN_TTL_DAYS", &v)? * 24 * 3600);
        }
        if let Some(v) = get("INCUBASE_SIGNIN_LIMIT_PER_ACCOUNT") {
            s.sign_in_per_account_per_minute = parse_positive("INCUBASE_SIGNIN_LIMIT_PER_ACCOUNT", &v)?;
        }
        if let Some(v) = get("INCUBASE_SIGNIN_LIMIT_PER_ADDRESS") {
            s.sign_in_per_address_per_minute = parse_positive("INCUBASE_SIGNIN_LIMIT_PER_ADDRESS", &v)?;
        }
        if let Some(v) = get("INCUBASE_CHECK_IN_OPENS_MINUTES") {
            s.check_in_opens_before =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_CHECK_IN_OPENS_MINUTES", &v)? * 60);
        }
        if let Some(v) = get("INCUBASE_ID_DOC_RETENTION_DAYS") {
            s.identity_document_retention =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_ID_DOC_RETENTION_DAYS", &v)? * 24 * 3600);
        }
        if let Some(v) = get("INCUBASE_EVENT_RETENTION_DAYS") {
            s.event_retention =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_EVENT_RETENTION_DAYS", &v)? * 24 * 3600);
        }
        if let Some(v) = get("INCUBASE_AUDIT_RETENTION_DAYS") {
            s.audit_retention = match v.as_str() {
                "forever" => None,
                _ => Some(Duration::from_secs(parse_positive::<u64>("INCUBASE_AUDIT_RETENTION_DAYS", &v)? * 24 * 3600)),
            };
        }
        if let Some(v) = get("INCUBASE_REPLAY_WINDOW_HOURS") {
            s.replay_window = Duration::from_secs(parse_positive::<u64>("INCUBASE_REPLAY_WINDOW_HOURS", &v)? * 3600);
        }
        if let Some(v) = get("INCUBASE_EVENT_POLL_MS") {
            s.event_poll_interval = Duration::from_millis(parse_positive("INCUBASE_EVENT_POLL_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_PUBLISHABLE_KEY_PER_ADDRESS_PER_MINUTE") {
            s.limits.publishable_key_per_address_per_minute =
                parse_positive("INCUBASE_PUBLISHABLE_KEY_PER_ADDRESS_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("INCUBASE_CORS_ORIGINS") {
            s.cors_origins = parse_cors_origins(&v)?;
        }
        if let Some(v) = get("INCUBASE_CORS_MAX_AGE_SECS") {
            s.cors_max_age = Duration::from_secs(parse_positive("INCUBASE_CORS_MAX_AGE_SECS", &v)?);
        }
        if let Some(v) = get("INCUBASE_TRUSTED_DOCUMENTS") {
            s.trusted_documents = match v.trim() {
                "off" => TrustedDocumentsMode::Off,
                "allow" => TrustedDocumentsMode::Allow,
                "require" => TrustedDocumentsMode::Require,
                _ => return Err(invalid("INCUBASE_TRUSTED_DOCUMENTS", &v, "expected off, allow or require")),
            };
        }
        if let Some(v) = get("INCUBASE_TRUSTED_PROXIES") {
            s.trusted_proxies = crate::proxy::TrustedProxies::parse(&v)
                .map_err(|reason| invalid("INCUBASE_TRUSTED_PROXIES", &v, &reason))?;
        }
        match (get("INCUBASE_TLS_CERT"), get("INCUBASE_TLS_KEY")) {
            (Some(cert), Some(key)) => s.tls = Some(crate::tls::TlsFiles { cert: cert.into(), key: key.into() }),
            (None, None) => {}
            (Some(_), None) => {
                return Err(invalid("INCUBASE_TLS_KEY", "", "INCUBASE_TLS_CERT is set: set the key too"));
            }
            (None, Some(_)) => {
                return Err(invalid("INCUBASE_TLS_CERT", "", "INCUBASE_TLS_KEY is set: set the certificate too"));
            }
        }
        if let Some(v) = get("INCUBASE_SMTP_URL").filter(|v| !v.trim().is_empty()) {
            if !(v.starts_with("smtp://") || v.starts_with("smtps://")) {
                return Err(invalid("INCUBASE_SMTP_URL", "(hidden)", "expected smtp://… or smtps://…"));
            }
            s.smtp_url = Some(v);
        }
        if let Some(v) = get("INCUBASE_SMTP_FROM") {
            if !v.contains('@') {
                return Err(invalid(
                    "INCUBASE_SMTP_FROM",
                    &v,
                    "expected an address such as 基地 <noreply@example.org>",
                ));
            }
            s.smtp_from = v;
        }
        if let Some(v) = get("INCUBASE_PASSWORD_RESET_TTL_SECS") {
            s.accounts.password_reset_ttl =
                Duration::from_secs(parse_positive("INCUBASE_PASSWORD_RESET_TTL_SECS", &v)?);
        }
        if let Some(v) = get("INCUBASE_EMAIL_TOKEN_TTL_HOURS") {
            s.accounts.email_token_ttl =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_EMAIL_TOKEN_TTL_HOURS", &v)? * 3600);
        }
        if let Some(v) = get("INCUBASE_ACCOUNT_MAILS_PER_EMAIL_PER_HOUR") {
            s.accounts.mails_per_email_per_hour = parse_positive("INCUBASE_ACCOUNT_MAILS_PER_EMAIL_PER_HOUR", &v)?;
        }
        if let Some(v) = get("INCUBASE_ACCOUNT_MAILS_PER_ADDRESS_PER_HOUR") {
            s.accounts.mails_per_address_per_hour = parse_positive("INCUBASE_ACCOUNT_MAILS_PER_ADDRESS_PER_HOUR", &v)?;
        }
        if let Some(v) = get("INCUBASE_ACCOUNT_LINK_URL") {
            let url = v.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("INCUBASE_ACCOUNT_LINK_URL", &v, "expected https://…"));
            }
            s.accounts.link_url = Some(url);
        }
        if let Some(v) = get("INCUBASE_RECEIPT_SECRET") {
            if v.len() < 32 {
                return Err(SettingsError {
                    name: "INCUBASE_RECEIPT_SECRET",
                    value: "***".into(),
                    reason: "must be at least 32 characters".into(),
                });
            }
            s.receipt_secret = Some(v);
        }
        if let Some(v) = get("INCUBASE_RECEIPT_LOOKUPS_PER_ADDRESS_PER_HOUR") {
            s.receipt_lookups_per_address_per_hour =
                parse_positive("INCUBASE_RECEIPT_LOOKUPS_PER_ADDRESS_PER_HOUR", &v)?;
        }
        if let Some(v) = get("INCUBASE_RECEIPT_LOOKUPS_PER_RECEIPT_PER_HOUR") {
            s.receipt_lookups_per_receipt_per_hour =
                parse_positive("INCUBASE_RECEIPT_LOOKUPS_PER_RECEIPT_PER_HOUR", &v)?;
        }
        if let Some(v) = get("INCUBASE_PLEDGE_TTL_HOURS") {
            s.pledge_ttl = Duration::from_secs(parse_positive::<u64>("INCUBASE_PLEDGE_TTL_HOURS", &v)? * 3600);
        }
        if let Some(v) = get("INCUBASE_WEBHOOK_ALLOW_PRIVATE") {
            s.webhooks.allow_private = parse_bool("INCUBASE_WEBHOOK_ALLOW_PRIVATE", &v)?;
        }
        if let Some(v) = get("INCUBASE_WEBHOOK_RETRY_SCHEDULE") {
            let schedule: Option<Vec<Duration>> = v.split(',').map(parse_duration).collect();
            s.webhooks.retry_schedule = match schedule {
                Some(list) if list.len() <= 20 => list,
                _ => {
                    return Err(invalid(
                        "INCUBASE_WEBHOOK_RETRY_SCHEDULE",
                        &v,
                        "expected up to 20 comma-separated pauses such as 5s,1m,10m,2h,1d",
                    ));
                }
            };
        }
        if let Some(v) = get("INCUBASE_WEBHOOK_POLL_MS") {
            s.webhooks.poll_interval = Duration::from_millis(parse_positive("INCUBASE_WEBHOOK_POLL_MS", &v)?);
        }
        if let Some(v) = get("INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS") {
            s.webhooks.disable_after =
                Duration::from_secs(parse_positive::<u64>("INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS", &v)? * 3600);
        }
        s.payments = PaymentSettings::from_lookup(&get)?;
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

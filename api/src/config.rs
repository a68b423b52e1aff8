//! Settings: defaults that run out of the box, overridden by environment variables.
//! A bad value stops start-up with one line naming the variable.
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Embedded default: GraphiQL and introspection on, organization mutations open
    /// until the identity layer lands.
    Development,
    Production,
}

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub environment: Environment,
    pub database_url: String,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: Option<String>,
    pub cache_prefix: String,
    pub cache_ttl: Duration,
    pub cache_timeout: Duration,
    pub log_format: LogFormat,
    pub limits: Limits,
    /// HS256 signing secret of access tokens; when unset, one is generated and kept beside
    /// the SQLite database (or in ./data for PostgreSQL in development).
    pub jwt_secret: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub sign_in_per_account_per_minute: u32,
    pub sign_in_per_address_per_minute: u32,
    /// How long before an event starts its check-in opens.
    pub check_in_opens_before: Duration,
    /// How long after an event ends identity documents of its registrations are kept.
    pub identity_document_retention: Duration,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub default_page_size: usize,
    pub max_page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch: 10,
            max_depth: 12,
            max_complexity: 5000,
            default_page_size: 20,
            max_page_size: 100,
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
            .finish_non_exhaustive()
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
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
            cache_prefix: "incubase".to_owned(),
            cache_ttl: Duration::from_secs(300),
            cache_timeout: Duration::from_millis(250),
            log_format: LogFormat::Human,
            limits: Limits::default(),
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            sign_in_per_account_per_minute: 5,
            sign_in_per_address_per_minute: 20,
            check_in_opens_before: Duration::from_secs(60 * 60),
            identity_document_retention: Duration::from_secs(30 * 24 * 3600),
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
            if !(v.starts_with("redis://") || v.starts_with("rediss://")) {
                return Err(SettingsError {
                    name: "REDIS_URL",
                    value: redact_url(&v),
                    reason: "expected redis://…".into(),
                });
            }
            s.redis_url = Some(v);
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
        if let Some(v) = get("INCUBASE_MAX_BATCH") {
            s.limits.max_batch = parse_positive("INCUBASE_MAX_BATCH", &v)?;
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
        Ok(s)
    }

    pub fn is_postgres(&self) -> bool {
        !self.database_url.starts_with("sqlite:")
    }
}

fn invalid(name: &'static str, value: &str, reason: &str) -> SettingsError {
    SettingsError { name, value: value.to_owned(), reason: reason.to_owned() }
}

fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| invalid(name, value, &e.to_string()))
}

fn parse_positive<T>(name: &'static str, value: &str) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let parsed: T = parse(name, value)?;
    if parsed <= T::default() {
        return Err(invalid(name, value, "must be greater than zero"));
    }
    Ok(parsed)
}

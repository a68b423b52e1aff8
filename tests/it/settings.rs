//! Settings read from the environment: every variable's one-line error, word for word, and
//! values with their units, trimming and defaults (pinned before settings moved to figment).
use api::config::{CorsOrigins, Settings, TrustedDocumentsMode};
use std::time::Duration;

fn one(name: &str, value: &str) -> Result<Settings, String> {
    Settings::from_lookup(|n| (n == name).then(|| value.to_owned())).map_err(|e| e.to_string())
}
fn err(name: &str, value: &str) -> String {
    one(name, value).err().unwrap_or_else(|| format!("accepted {name}={value}"))
}

#[test]
fn every_bad_value_gets_its_one_line_error_naming_the_variable() {
    let long = "a".repeat(40);
    let redis_reason = api::redis_conn::RedisTarget::parse("http://u:pw@x").unwrap_err();
    let proxy_reason = api::proxy::TrustedProxies::parse("10.0.0.0/33").unwrap_err();
    let origin_reason = api::config::normalize_origin("https://b.org/x").unwrap_err();
    let key_reason = api::service::payments::parse_public_key("MIIB-broken").err().unwrap();
    let cases: Vec<(&str, String, String)> = vec![
        ("INCUBASE_LISTEN", "nowhere".into(), r#"invalid setting INCUBASE_LISTEN="nowhere": invalid socket address syntax"#.into()),
        ("INCUBASE_ENV", "staging".into(), r#"invalid setting INCUBASE_ENV="staging": expected development or production"#.into()),
        ("DATABASE_URL", "mysql://u:secret@h/db".into(), r#"invalid setting DATABASE_URL="mysql://u:***@h/db": expected sqlite:… or postgres://…"#.into()),
        ("INCUBASE_DB_MAX_CONNECTIONS", "0".into(), r#"invalid setting INCUBASE_DB_MAX_CONNECTIONS="0": must be greater than zero"#.into()),
        ("INCUBASE_DB_MAX_CONNECTIONS", "-1".into(), r#"invalid setting INCUBASE_DB_MAX_CONNECTIONS="-1": invalid digit found in string"#.into()),
        ("INCUBASE_DB_MAX_CONNECTIONS", "99999999999".into(), r#"invalid setting INCUBASE_DB_MAX_CONNECTIONS="99999999999": number too large to fit in target type"#.into()),
        ("REDIS_URL", "http://u:pw@x".into(), format!(r#"invalid setting REDIS_URL="http://u:***@x": {redis_reason}"#)),
        ("INCUBASE_CACHE", "maybe".into(), r#"invalid setting INCUBASE_CACHE="maybe": expected on or off"#.into()),
        ("INCUBASE_CACHE_TTL_SECS", "0".into(), r#"invalid setting INCUBASE_CACHE_TTL_SECS="0": must be greater than zero"#.into()),
        ("INCUBASE_RESPONSE_CACHE_ENTRIES", "x".into(), r#"invalid setting INCUBASE_RESPONSE_CACHE_ENTRIES="x": invalid digit found in string"#.into()),
        ("INCUBASE_LOG_FORMAT", "xml".into(), r#"invalid setting INCUBASE_LOG_FORMAT="xml": expected human or json"#.into()),
        ("INCUBASE_LOG_FORMAT", "json ".into(), r#"invalid setting INCUBASE_LOG_FORMAT="json ": expected human or json"#.into()),
        ("INCUBASE_INTROSPECTION", "maybe".into(), r#"invalid setting INCUBASE_INTROSPECTION="maybe": expected true or false"#.into()),
        ("INCUBASE_JWT_SECRET", "short".into(), r#"invalid setting INCUBASE_JWT_SECRET="***": must be at least 32 characters"#.into()),
        ("INCUBASE_JWT_PREVIOUS_SECRETS", format!("{long},short"), r#"invalid setting INCUBASE_JWT_PREVIOUS_SECRETS="***": each secret must be at least 32 characters"#.into()),
        ("INCUBASE_AUDIT_RETENTION_DAYS", "never".into(), r#"invalid setting INCUBASE_AUDIT_RETENTION_DAYS="never": invalid digit found in string"#.into()),
        ("INCUBASE_AUDIT_RETENTION_DAYS", "0".into(), r#"invalid setting INCUBASE_AUDIT_RETENTION_DAYS="0": must be greater than zero"#.into()),
        ("INCUBASE_CORS_ORIGINS", "https://a.org, https://b.org/x".into(), format!(r#"invalid setting INCUBASE_CORS_ORIGINS="https://b.org/x": {origin_reason}"#)),
        ("INCUBASE_TRUSTED_DOCUMENTS", " maybe ".into(), r#"invalid setting INCUBASE_TRUSTED_DOCUMENTS=" maybe ": expected off, allow or require"#.into()),
        ("INCUBASE_TRUSTED_PROXIES", "10.0.0.0/33".into(), format!(r#"invalid setting INCUBASE_TRUSTED_PROXIES="10.0.0.0/33": {proxy_reason}"#)),
        ("INCUBASE_TLS_CERT", "/x".into(), r#"invalid setting INCUBASE_TLS_KEY="": INCUBASE_TLS_CERT is set: set the key too"#.into()),
        ("INCUBASE_TLS_KEY", "/x".into(), r#"invalid setting INCUBASE_TLS_CERT="": INCUBASE_TLS_KEY is set: set the certificate too"#.into()),
        ("INCUBASE_SMTP_URL", "http://u:pw@x".into(), r#"invalid setting INCUBASE_SMTP_URL="(hidden)": expected smtp://… or smtps://…"#.into()),
        ("INCUBASE_SMTP_FROM", "nobody".into(), r#"invalid setting INCUBASE_SMTP_FROM="nobody": expected an address such as 基地 <noreply@example.org>"#.into()),
        ("INCUBASE_ACCOUNT_LINK_URL", " ftp://x ".into(), r#"invalid setting INCUBASE_ACCOUNT_LINK_URL=" ftp://x ": expected https://…"#.into()),
        ("INCUBASE_RECEIPT_SECRET", "short".into(), r#"invalid setting INCUBASE_RECEIPT_SECRET="***": must be at least 32 characters"#.into()),
        ("INCUBASE_SECRETS_KEY", "short".into(), r#"invalid setting INCUBASE_SECRETS_KEY="***": must be at least 32 characters"#.into()),
        ("INCUBASE_SECRETS_PREVIOUS_KEYS", "short".into(), r#"invalid setting INCUBASE_SECRETS_PREVIOUS_KEYS="***": each secret must be at least 32 characters"#.into()),
        ("INCUBASE_WEBHOOK_RETRY_SCHEDULE", "5s,bad".into(), r#"invalid setting INCUBASE_WEBHOOK_RETRY_SCHEDULE="5s,bad": expected up to 20 comma-separated pauses such as 5s,1m,10m,2h,1d"#.into()),
        ("INCUBASE_WEBHOOK_ALLOW_PRIVATE", "maybe".into(), r#"invalid setting INCUBASE_WEBHOOK_ALLOW_PRIVATE="maybe": expected true or false"#.into()),
        ("INCUBASE_WECHATPAY_APIV3_KEY", "short".into(), r#"invalid setting INCUBASE_WECHATPAY_APIV3_KEY="(key)": expected 32 characters"#.into()),
        ("INCUBASE_ALIPAY_PUBLIC_KEY", "MIIB-broken".into(), format!(r#"invalid setting INCUBASE_ALIPAY_PUBLIC_KEY="(key)": {key_reason}"#)),
        ("INCUBASE_DEFAULT_PAGE_SIZE", "200".into(), r#"invalid setting INCUBASE_DEFAULT_PAGE_SIZE="200": must not exceed INCUBASE_MAX_PAGE_SIZE"#.into()),
        ("INCUBASE_MAX_BATCH", "0".into(), r#"invalid setting INCUBASE_MAX_BATCH="0": must be greater than zero"#.into()),
        ("INCUBASE_PUBLISHABLE_KEY_PER_ADDRESS_PER_MINUTE", "0".into(), r#"invalid setting INCUBASE_PUBLISHABLE_KEY_PER_ADDRESS_PER_MINUTE="0": must be greater than zero"#.into()),
        ("INCUBASE_PASSWORD_RESET_TTL_SECS", "0".into(), r#"invalid setting INCUBASE_PASSWORD_RESET_TTL_SECS="0": must be greater than zero"#.into()),
        ("INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS", "x".into(), r#"invalid setting INCUBASE_PAYMENT_NOTIFY_TOLERANCE_SECS="x": invalid digit found in string"#.into()),
        ("INCUBASE_WEBHOOK_POLL_MS", "0".into(), r#"invalid setting INCUBASE_WEBHOOK_POLL_MS="0": must be greater than zero"#.into()),
        ("INCUBASE_CONFIRMATION_BATCH", "0".into(), r#"invalid setting INCUBASE_CONFIRMATION_BATCH="0": must be greater than zero"#.into()),
    ];
    let mut bad = Vec::new();
    for (name, value, expected) in &cases {
        let got = err(name, value);
        if &got != expected {
            bad.push(format!("{name}={value}\n   got: {got}\n  want: {expected}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(Settings::from_lookup(|_| None).unwrap().limits.max_page_size, 100);
}

#[test]
fn settings_are_read_with_their_units_trimming_and_defaults() {
    let vars = [
        ("INCUBASE_LISTEN", "0.0.0.0:9000"),
        ("INCUBASE_ENV", "prod"),
        ("DATABASE_URL", "postgres://u:p@h/db"),
        ("INCUBASE_DB_ACQUIRE_TIMEOUT_MS", "1500"),
        ("REDIS_URL", "redis://h:6379"),
        ("INCUBASE_CACHE", "off"),
        ("INCUBASE_CACHE_PREFIX", "pfx"),
        ("INCUBASE_RESPONSE_CACHE_ENTRIES", "0"),
        ("INCUBASE_LOG_FORMAT", "json"),
        ("INCUBASE_REFRESH_TOKEN_TTL_DAYS", "2"),
        ("INCUBASE_CHECK_IN_OPENS_MINUTES", "5"),
        ("INCUBASE_REPLAY_WINDOW_HOURS", "3"),
        ("INCUBASE_AUDIT_RETENTION_DAYS", "forever"),
        ("INCUBASE_EVENT_RETENTION_DAYS", "10"),
        ("INCUBASE_TRUSTED_DOCUMENTS", " require "),
        ("INCUBASE_CORS_ORIGINS", "https://a.org, https://a.org/, "),
        ("INCUBASE_TLS_CERT", "/c"),
        ("INCUBASE_TLS_KEY", "/k"),
        ("INCUBASE_SMTP_URL", "smtp://h:25"),
        ("INCUBASE_ACCOUNT_LINK_URL", " https://x.org/account/ "),
        ("INCUBASE_WECHATPAY_PUBLIC_KEY_ID", "  id "),
        ("INCUBASE_WEBHOOK_RETRY_SCHEDULE", "1s,2m"),
        ("INCUBASE_WEBHOOK_ALLOW_PRIVATE", "yes"),
        ("INCUBASE_WEBHOOK_DISABLE_AFTER_HOURS", "1"),
        ("INCUBASE_MAX_PAGE_SIZE", "10"),
        ("INCUBASE_DEFAULT_PAGE_SIZE", "10"),
        ("INCUBASE_GRAPHIQL", "1"),
        ("INCUBASE_SUGGESTIONS", "   "),
        ("INCUBASE_JWT_PREVIOUS_SECRETS", " , "),
        ("INCUBASE_CONFIRMATION_BATCH", "1"),
        ("UNKNOWN", "garbage"),
    ];
    let s = Settings::from_lookup(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())).unwrap();
    assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(s.confirmation_batch, 1);
    assert_eq!(Settings::from_lookup(|_| None).unwrap().confirmation_batch, 64);
    assert_eq!(s.environment, api::config::Environment::Production);
    assert_eq!(s.database_acquire_timeout, Duration::from_millis(1500));
    assert_eq!(s.redis_url.as_deref(), Some("redis://h:6379"));
    assert!(!s.cache_enabled);
    assert_eq!(s.cache_prefix, "pfx");
    assert_eq!(s.response_cache_entries, 0);
    assert_eq!(s.log_format, api::config::LogFormat::Json);
    assert_eq!(s.refresh_token_ttl, Duration::from_secs(2 * 86400));
    assert_eq!(s.check_in_opens_before, Duration::from_secs(300));
    assert_eq!(s.replay_window, Duration::from_secs(3 * 3600));
    assert_eq!(s.audit_retention, None);
    assert_eq!(s.event_retention, Duration::from_secs(10 * 86400));
    assert_eq!(s.trusted_documents, TrustedDocumentsMode::Require);
    assert_eq!(s.cors_origins, CorsOrigins::List(vec!["https://a.org".into()]));
    assert_eq!(s.tls.as_ref().map(|t| t.cert.display().to_string()), Some("/c".into()));
    assert_eq!(s.smtp_url.as_deref(), Some("smtp://h:25"));
    assert_eq!(s.accounts.link_url.as_deref(), Some("https://x.org/account"));
    assert_eq!(s.payments.wechatpay_serial.as_deref(), Some("id"));
    assert_eq!(s.webhooks.retry_schedule, vec![Duration::from_secs(1), Duration::from_secs(120)]);
    assert!(s.webhooks.allow_private);
    assert_eq!(s.webhooks.disable_after, Duration::from_secs(3600));
    assert_eq!(s.webhooks.request_timeout, Duration::from_secs(10));
    assert_eq!(s.limits.default_page_size, 10);
    assert_eq!(s.graphiql, Some(true));
    assert_eq!(s.suggestions, None);
    assert!(s.jwt_previous_secrets.is_empty());
    assert_eq!(s.audit_retention, None);
    let d = Settings::from_lookup(|_| None).unwrap();
    let e = Settings::embedded();
    assert_eq!(format!("{d:?}"), format!("{e:?}"));
    assert_eq!(d.smtp_from, e.smtp_from);
    assert_eq!(d.webhooks.retry_schedule.len(), 8);
    assert_eq!(
        Settings::from_lookup(|n| (n == "INCUBASE_AUDIT_RETENTION_DAYS").then(|| "2".into())).unwrap().audit_retention,
        Some(Duration::from_secs(2 * 86400))
    );
}

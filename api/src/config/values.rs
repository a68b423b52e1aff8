//! Reading one setting's value: the `deserialize_with` helpers that the fields of `Settings`
//! name (numbers, flags, durations, secrets, URLs, origins). A refused value travels through
//! serde as an invalid value carrying what may be shown of it and the reason; `read` adds the
//! variable's name to make the one-line error.
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error as _, Unexpected};

use super::{CorsOrigins, Environment, LogFormat, TrustedDocumentsMode};

/// Units of `duration`, in milliseconds.
pub(super) const MILLISECOND: u64 = 1;
pub(super) const SECOND: u64 = 1000;
pub(super) const MINUTE: u64 = 60 * SECOND;
pub(super) const HOUR: u64 = 60 * MINUTE;
pub(super) const DAY: u64 = 24 * HOUR;

/// A value refused: what may be shown of it (never a secret) and why.
pub(super) struct Rejected {
    shown: String,
    reason: String,
}

fn invalid(shown: &str, reason: &str) -> Rejected {
    Rejected { shown: shown.to_owned(), reason: reason.to_owned() }
}

/// Reads the variable's text and converts it.
fn read<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    convert: impl FnOnce(&str) -> Result<T, Rejected>,
) -> Result<T, D::Error> {
    let raw = String::deserialize(deserializer)?;
    convert(&raw).map_err(|r| D::Error::invalid_value(Unexpected::Str(&r.shown), &r.reason.as_str()))
}

fn parse<T: std::str::FromStr>(value: &str) -> Result<T, Rejected>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| invalid(value, &e.to_string()))
}

fn parse_positive<T>(value: &str) -> Result<T, Rejected>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let parsed: T = parse(value)?;
    if parsed <= T::default() {
        return Err(invalid(value, "must be greater than zero"));
    }
    Ok(parsed)
}

fn parse_bool(value: &str) -> Result<bool, Rejected> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(value, "expected true or false")),
    }
}

/// One of a few words, each naming a value.
fn one_of<T: Clone>(value: &str, words: &[(&str, T)], reason: &str) -> Result<T, Rejected> {
    words.iter().find(|(word, _)| *word == value).map(|(_, v)| v.clone()).ok_or_else(|| invalid(value, reason))
}

/// A secret of at least 32 characters, never shown.
fn long_secret(value: &str, reason: &str) -> Result<String, Rejected> {
    if value.len() < 32 {
        return Err(invalid("***", reason));
    }
    Ok(value.to_owned())
}

/// Anything with `FromStr` (addresses, counts that may be zero); the reason is its error's text.
pub(super) fn parsed<'de, D: Deserializer<'de>, T: std::str::FromStr>(d: D) -> Result<T, D::Error>
where
    T::Err: std::fmt::Display,
{
    read(d, parse)
}

/// A number greater than zero.
pub(super) fn positive<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    read(d, parse_positive)
}

/// A whole number of `UNIT`s (`MILLISECOND`, `SECOND`, … `DAY`), greater than zero.
pub(super) fn duration<'de, D: Deserializer<'de>, const UNIT: u64>(d: D) -> Result<Duration, D::Error> {
    read(d, |v| parse_positive::<u64>(v).map(|n| Duration::from_millis(n.saturating_mul(UNIT))))
}

/// `INCUBASE_AUDIT_RETENTION_DAYS`: days, or `forever`.
pub(super) fn days_or_forever<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    read(d, |v| match v {
        "forever" => Ok(None),
        _ => parse_positive::<u64>(v).map(|n| Some(Duration::from_millis(n.saturating_mul(DAY)))),
    })
}

pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    read(d, parse_bool)
}

/// A flag whose absence means "as the environment says".
pub(super) fn optional_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    read(d, |v| parse_bool(v).map(Some))
}

/// `INCUBASE_CACHE`: `on` or `off`.
pub(super) fn on_off<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    read(d, |v| one_of(v, &[("on", true), ("off", false)], "expected on or off"))
}

pub(super) fn environment<'de, D: Deserializer<'de>>(d: D) -> Result<Environment, D::Error> {
    use Environment::{Development, Production};
    let words = [("development", Development), ("dev", Development), ("production", Production), ("prod", Production)];
    read(d, |v| one_of(v, &words, "expected development or production"))
}

pub(super) fn log_format<'de, D: Deserializer<'de>>(d: D) -> Result<LogFormat, D::Error> {
    let words = [("human", LogFormat::Human), ("json", LogFormat::Json)];
    read(d, |v| one_of(v, &words, "expected human or json"))
}

/// `INCUBASE_TRUSTED_DOCUMENTS`, spaces around the word allowed.
pub(super) fn trusted_documents<'de, D: Deserializer<'de>>(d: D) -> Result<TrustedDocumentsMode, D::Error> {
    use TrustedDocumentsMode::{Allow, Off, Require};
    let words = [("off", Off), ("allow", Allow), ("require", Require)];
    read(d, |v| one_of(v.trim(), &words, "expected off, allow or require").map_err(|r| invalid(v, &r.reason)))
}

/// The database: its URL is shown with the password hidden.
pub(super) fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    read(d, |v| {
        if !(v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://")) {
            return Err(invalid(&redact_url(v), "expected sqlite:… or postgres://…"));
        }
        Ok(v.to_owned())
    })
}

/// `REDIS_URL`, shown with the password hidden.
pub(super) fn redis_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |v| match crate::redis_conn::RedisTarget::parse(v) {
        Ok(_) => Ok(Some(v.to_owned())),
        Err(reason) => Err(invalid(&redact_url(v), &reason)),
    })
}

/// A signing or keying secret: at least 32 characters.
pub(super) fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |v| long_secret(v, "must be at least 32 characters").map(Some))
}

/// `INCUBASE_JWT_PREVIOUS_SECRETS`: comma-separated secrets, each at least 32 characters.
pub(super) fn previous_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    read(d, |v| {
        let secrets = v.split(',').map(str::trim).filter(|p| !p.is_empty());
        secrets.map(|p| long_secret(p, "each secret must be at least 32 characters")).collect()
    })
}

/// `INCUBASE_SMTP_URL`, never shown (it may carry the mailbox's password).
pub(super) fn smtp_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |v| {
        if !(v.starts_with("smtp://") || v.starts_with("smtps://")) {
            return Err(invalid("(hidden)", "expected smtp://… or smtps://…"));
        }
        Ok(Some(v.to_owned()))
    })
}

/// `INCUBASE_SMTP_FROM`: a mailbox, with or without a display name.
pub(super) fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    read(d, |v| {
        if !v.contains('@') {
            return Err(invalid(v, "expected an address such as 基地 <noreply@example.org>"));
        }
        Ok(v.to_owned())
    })
}

/// `INCUBASE_ACCOUNT_LINK_URL`: an http(s) page, kept without its trailing `/`.
pub(super) fn link_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |v| {
        let url = v.trim().trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(v, "expected https://…"));
        }
        Ok(Some(url.to_owned()))
    })
}

/// Text kept without surrounding spaces (key IDs, application IDs).
pub(super) fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |v| Ok(Some(v.trim().to_owned())))
}

/// `INCUBASE_WEBHOOK_RETRY_SCHEDULE`: up to 20 comma-separated pauses.
pub(super) fn retry_schedule<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    read(d, |v| {
        let schedule: Option<Vec<Duration>> = v.split(',').map(parse_duration).collect();
        match schedule {
            Some(list) if list.len() <= 20 => Ok(list),
            _ => Err(invalid(v, "expected up to 20 comma-separated pauses such as 5s,1m,10m,2h,1d")),
        }
    })
}

pub(super) fn trusted_proxies<'de, D: Deserializer<'de>>(d: D) -> Result<crate::proxy::TrustedProxies, D::Error> {
    read(d, |v| crate::proxy::TrustedProxies::parse(v).map_err(|reason| invalid(v, &reason)))
}

/// A payment platform's public key (PEM text, a PEM file's path, bare base64), never shown.
pub(super) fn public_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<rsa::PublicKey>, D::Error> {
    read(d, |v| crate::service::payments::parse_public_key(v).map(Some).map_err(|reason| invalid("(key)", &reason)))
}

/// `INCUBASE_WECHATPAY_APIV3_KEY`: 32 characters, never shown.
pub(super) fn apiv3_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
    read(d, |v| {
        let key: Result<[u8; 32], _> = v.trim().as_bytes().try_into();
        key.map(Some).map_err(|_| invalid("(key)", "expected 32 characters"))
    })
}

/// `INCUBASE_CORS_ORIGINS`: `*`, or a comma-separated list of origins; a bad one is shown alone.
pub(super) fn cors_origins<'de, D: Deserializer<'de>>(d: D) -> Result<CorsOrigins, D::Error> {
    read(d, |raw| {
        if raw.trim() == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let origin = normalize_origin(part).map_err(|reason| invalid(part, &reason))?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(if origins.is_empty() { CorsOrigins::KeysOnly } else { CorsOrigins::List(origins) })
    })
}

/// `250ms`, `5s`, `10m`, `2h`, `1d`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    (millis > 0).then(|| Duration::from_millis(millis))
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

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, scheme and host in lower
/// case, the scheme's default port left out. Only `http` and `https`; no path, query, user or
/// wildcard. Hosts are ASCII (internationalized names in their `xn--` form).
pub fn normalize_origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").ok_or("an origin looks like https://www.example.org")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return Err("the scheme must be http or https".into()),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return Err("an origin is scheme://host[:port], without path, query, user or wildcard".into());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unclosed [ in an IPv6 origin")?;
        if !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("not an IPv6 address".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !host.starts_with(['.', '-'])
            && !host.ends_with(['.', '-']);
        if !valid {
            return Err("the host has characters an origin cannot have (use the xn-- form of a Chinese domain)".into());
        }
        (host.to_ascii_lowercase(), port)
    };
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) => {
            let number: u16 = p.parse().map_err(|_| format!("{p:?} is not a port"))?;
            if number == 0 {
                return Err("port 0 is not a port".into());
            }
            let p = number.to_string();
            if p == default_port { Ok(format!("{scheme}://{host}")) } else { Ok(format!("{scheme}://{host}:{p}")) }
        }
    }
}

//! Reading one setting's value: numbers, flags, durations, origins, and the one-line error
//! naming the variable when a value is bad.
use std::time::Duration;

use super::{CorsOrigins, SettingsError};

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

/// `*`, or a comma-separated list of origins.
pub(super) fn parse_cors_origins(raw: &str) -> Result<CorsOrigins, SettingsError> {
    if raw.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let origin = normalize_origin(part).map_err(|reason| invalid("INCUBASE_CORS_ORIGINS", part, &reason))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(if origins.is_empty() { CorsOrigins::KeysOnly } else { CorsOrigins::List(origins) })
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

pub(super) fn invalid(name: &'static str, value: &str, reason: &str) -> SettingsError {
    SettingsError { name, value: value.to_owned(), reason: reason.to_owned() }
}

pub(super) fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| invalid(name, value, &e.to_string()))
}

pub(super) fn parse_positive<T>(name: &'static str, value: &str) -> Result<T, SettingsError>
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

pub(super) fn parse_bool(name: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

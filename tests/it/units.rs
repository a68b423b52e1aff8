//! Pure functions: settings, credit codes, cursors.
use api::config::{Settings, redact_url};
use api::service::credit_code;

#[test]
fn settings_default_to_the_embedded_setup() {
    let s = Settings::from_lookup(|_| None).expect("defaults");
    assert!(s.database_url.starts_with("sqlite:"));
    assert!(s.redis_url.is_none());
    assert_eq!(s.limits.max_page_size, 100);
}

#[test]
fn a_bad_setting_names_the_variable() {
    for (name, value) in [
        ("INCUBASE_MAX_BATCH", "zero"),
        ("INCUBASE_MAX_BATCH", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("INCUBASE_LISTEN", "nowhere"),
        ("INCUBASE_LOG_FORMAT", "xml"),
    ] {
        let err = Settings::from_lookup(|n| (n == name).then(|| value.to_owned())).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains(name)), "{name}={value}: {err:?}");
    }
    let err = Settings::from_lookup(|n| (n == "DATABASE_URL").then(|| "mysql://u:secret@h/db".to_owned()))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| !e.contains("secret")), "passwords are never echoed");
}

#[test]
fn urls_are_redacted() {
    assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
}

#[test]
fn credit_codes_are_checked() {
    // A code with a correct check character, and the same with one typo.
    let valid = {
        let body = "52350203MJ0000001";
        format!("{body}{}", credit_code::check_char(body).expect("alphabet"))
    };
    assert_eq!(credit_code::normalize(&valid.to_lowercase()), Ok(valid.clone()));
    let mut typo = valid.clone().into_bytes();
    typo[10] = if typo[10] == b'1' { b'2' } else { b'1' };
    assert!(credit_code::normalize(&String::from_utf8(typo).expect("ascii")).is_err());
    assert!(credit_code::normalize("52350203MJ000000I").is_err(), "I is not in the alphabet");
    assert!(credit_code::normalize("123").is_err());
}

#[tokio::test]
async fn transient_errors_are_retried_a_bounded_number_of_times() {
    use api::error::AppError;
    use api::service::retry_transient;
    let mut calls = 0;
    let result = retry_transient(|| {
        calls += 1;
        let n = calls;
        async move { if n < 3 { Err(AppError::Transient("deadlock".into())) } else { Ok(n) } }
    })
    .await;
    assert_eq!(result.ok(), Some(3), "succeeds on the third attempt");

    let mut calls = 0;
    let result: Result<(), _> = retry_transient(|| {
        calls += 1;
        async { Err(AppError::Transient("serialization failure".into())) }
    })
    .await;
    assert!(matches!(result, Err(AppError::Transient(_))), "reported after the last attempt");
    assert_eq!(calls, 5);

    let mut calls = 0;
    let result: Result<(), _> = retry_transient(|| {
        calls += 1;
        async { Err(AppError::Conflict("taken".into())) }
    })
    .await;
    assert!(matches!(result, Err(AppError::Conflict(_))));
    assert_eq!(calls, 1, "other errors are not retried");
}

#[test]
fn identity_numbers_are_masked_but_for_the_ends() {
    use api::service::event::mask;
    assert_eq!(mask("350203199001011234"), "35**************34");
    assert_eq!(mask("E1234"), "E***4");
}

#[test]
fn calendar_months_are_shanghai_midnights() {
    let (from, to) = api::service::event::month_bounds(2026, 12).expect("bounds");
    assert_eq!(from.to_rfc3339(), "2026-11-30T16:00:00+00:00");
    assert_eq!(to.to_rfc3339(), "2026-12-31T16:00:00+00:00");
}

#[tokio::test]
async fn the_header_deadline_covers_exactly_the_request_heads() {
    use api::listener::HeaderDeadline;
    let mut d = HeaderDeadline::new((), std::time::Duration::from_secs(1));
    assert!(d.timing_headers(), "a new connection is timed from its accept");
    d.saw_read(b"POST / HTTP/1.1\r\nExpect: 100-continue\r");
    d.saw_read(b"\n\r");
    assert!(d.timing_headers(), "the blank line is split across reads");
    d.saw_read(b"\n");
    assert!(!d.timing_headers(), "the head ended");
    d.saw_write(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(!d.timing_headers() && !d.awaiting_next_request(), "an interim response does not end the request");
    d.saw_read(b"{\"query\":\"{ a }\"}");
    d.saw_write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    assert!(d.awaiting_next_request(), "idle keep-alive time is not timed");
    d.saw_read(b"G");
    assert!(d.timing_headers(), "the next request's first byte starts the deadline");
    d.saw_read(b"ET /graphql/ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    d.saw_write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert!(d.upgraded());
    d.saw_write(b"HTTP/1.1 200 OK\r\n");
    d.saw_read(b"frame bytes");
    assert!(d.upgraded() && !d.timing_headers(), "frames after an upgrade are never parsed as HTTP");
}

#[test]
fn formatting_does_not_split_response_cache_entries() {
    use api::response_cache::normalize;
    let compact = "query($id:ID!){campaign(id:$id){title progress{raisedFen}}}";
    let pretty = "# the campaign page\nquery ($id: ID!) {\n  campaign(id: $id) {\n    title,\n    progress { raisedFen }\n  }\n}\n";
    assert_eq!(normalize(pretty), normalize(compact));
    assert_eq!(normalize(compact), compact, "already minimal");
    // Names stay apart; string literals are kept byte for byte, comments inside them too.
    assert_ne!(normalize("{ a b }"), normalize("{ ab }"));
    assert_eq!(normalize("{ a(s: \"x  # y, z\") }"), "{a(s:\"x  # y, z\")}");
    assert_eq!(
        normalize("{ a(s: \"\"\"two\n  lines \\\"\"\" \"\"\") b }"),
        "{a(s:\"\"\"two\n  lines \\\"\"\" \"\"\")b}"
    );
    assert_ne!(normalize("{ a(s: \"x\" t: \"y\") }"), normalize("{ a(s: \"x\"\"t: \"y\") }"));
    assert_ne!(normalize("{ a(s: \"x y\") }"), normalize("{ a(s: \"x  y\") }"));
}

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

#[test]
fn trusted_proxies_and_forwarding_headers() {
    use api::proxy::TrustedProxies;
    use poem::http::{HeaderMap, HeaderValue};
    let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.10 ::1").expect("parses");
    assert!(proxies.contains("10.20.30.40".parse().expect("ip")));
    assert!(proxies.contains("::ffff:192.0.2.10".parse().expect("ip")), "IPv4-mapped peers are the same peer");
    assert!(!proxies.contains("192.0.2.11".parse().expect("ip")));
    let err = Settings::from_lookup(|n| (n == "INCUBASE_TRUSTED_PROXIES").then(|| "10.0.0.0/33".to_owned())).err();
    assert!(err.is_some_and(|e| e.to_string().contains("INCUBASE_TRUSTED_PROXIES")));

    let resolve = |peer: &str, headers: &[(&str, &str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = poem::http::HeaderName::from_bytes(name.as_bytes()).expect("name");
            map.append(name, HeaderValue::from_str(value).expect("header"));
        }
        let client = proxies.resolve(Some(peer.parse().expect("peer")), "http", &map);
        (client.address_text(), client.scheme)
    };
    let from = |s: &str| (s.to_owned(), "http".to_owned());
    // An untrusted peer is the client, whatever it says.
    assert_eq!(resolve("203.0.113.1:5000", &[("x-forwarded-for", "1.2.3.4")]), from("203.0.113.1"));
    // A trusted peer: the rightmost address that is not a trusted proxy.
    assert_eq!(resolve("10.0.0.1:5000", &[("x-forwarded-for", "1.2.3.4, 5.6.7.8, 10.9.9.9")]), from("5.6.7.8"));
    // Header lines are one list; X-Forwarded-Proto from the nearest proxy.
    assert_eq!(
        resolve(
            "10.0.0.1:5000",
            &[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8"), ("x-forwarded-proto", "https")]
        ),
        ("5.6.7.8".to_owned(), "https".to_owned())
    );
    // Forwarded wins over X-Forwarded-For; quoted IPv6 with a port; proto of the same element.
    assert_eq!(
        resolve(
            "[::1]:5000",
            &[
                ("forwarded", r#"for=1.2.3.4;proto=http, for="[2001:db8::17]:4711";proto=https;by=_lb"#),
                ("x-forwarded-for", "9.9.9.9")
            ]
        ),
        ("2001:db8::17".to_owned(), "https".to_owned())
    );
    // `unknown` stops at the proxy that wrote it; all-trusted chains end at the leftmost.
    assert_eq!(resolve("10.0.0.1:5000", &[("forwarded", "for=unknown, for=10.0.0.2")]), from("10.0.0.2"));
    assert_eq!(resolve("10.0.0.1:5000", &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]), from("10.0.0.3"));
    // No forwarding headers: the peer.
    assert_eq!(resolve("10.0.0.1:5000", &[]), from("10.0.0.1"));
}

#[test]
fn redis_urls_name_a_server_or_sentinels_and_a_master() {
    use api::redis_conn::RedisTarget;
    assert_eq!(RedisTarget::parse("redis://h:6379/2"), Ok(RedisTarget::Server("redis://h:6379/2".into())));
    assert_eq!(
        RedisTarget::parse("redis+sentinel://:pw@s1:26379,s2:26380/incubase/3"),
        Ok(RedisTarget::Sentinel {
            nodes: vec!["redis://s1:26379".into(), "redis://s2:26380".into()],
            master: "incubase".into(),
            username: None,
            password: Some("pw".into()),
            db: 3,
        })
    );
    for bad in ["redis+sentinel://s1:26379", "redis+sentinel://s1:26379/", "redis+sentinel:///m", "http://h"] {
        assert!(RedisTarget::parse(bad).is_err(), "{bad}");
    }
    let err = Settings::from_lookup(|n| (n == "REDIS_URL").then(|| "redis+sentinel://:secret@s1:26379".to_owned()))
        .err()
        .map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("REDIS_URL") && !e.contains("secret")), "{err:?}");
}

#[test]
fn kept_statement_reports_leave_absent_values_out_and_read_older_ones_with_nulls() {
    use api::service::statements::PlannedLine;
    let older = r#"[{"line":1,"lineId":"4200001","reference":null,"amountFen":10000,"action":"CONFIRM","reason":null,
        "donationId":7,"campaignId":null,"receiptNumber":"2026-000002"},
        {"line":2,"lineId":null,"reference":"WX-ZZZ","amountFen":800,"action":"SKIP","reason":"UNKNOWN_REFERENCE","donationId":null,"campaignId":null}]"#;
    let lines: Vec<PlannedLine> = serde_json::from_str(older).expect("a report kept with nulls");
    assert_eq!(lines[0].receipt_number.as_deref(), Some("2026-000002"));
    assert_eq!(lines[1].receipt_number, None, "kept before receipt numbers were");
    let written = serde_json::to_string(&lines).expect("report");
    assert_eq!(
        written,
        r#"[{"line":1,"lineId":"4200001","amountFen":10000,"action":"CONFIRM","donationId":7,"receiptNumber":"2026-000002"},{"line":2,"reference":"WX-ZZZ","amountFen":800,"action":"SKIP","reason":"UNKNOWN_REFERENCE"}]"#
    );
    assert_eq!(serde_json::from_str::<Vec<PlannedLine>>(&written).expect("reads back"), lines);
}

mod sealing {
    use api::sealing::{Sealing, Unsealable};

    const A: &str = "an-old-secrets-key-of-at-least-32-characters";
    const B: &str = "a-new-secrets-key-of-at-least-32-characters!";

    #[test]
    fn sealed_values_open_for_their_purpose_under_current_and_previous_keys() {
        let old = Sealing::new(A, &[]).expect("key");
        let sealed = old.seal("webhook_endpoints.secret", "whsec_abc").expect("seal");
        assert!(sealed.starts_with("sealed:v1:") && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, old.seal("webhook_endpoints.secret", "whsec_abc").expect("seal"), "a fresh nonce each time");
        assert_eq!(old.open("webhook_endpoints.secret", &sealed).as_deref(), Ok("whsec_abc"));
        assert_eq!(old.open("webhook_endpoints.previous_secret", &sealed), Err(Unsealable::WrongKey));

        let rotated = Sealing::new(B, &[A.to_owned()]).expect("keys");
        assert_eq!(rotated.open("webhook_endpoints.secret", &sealed).as_deref(), Ok("whsec_abc"));
        let resealed = rotated.needs_resealing("webhook_endpoints.secret", &sealed).expect("opens").expect("reseal");
        assert_eq!(
            Sealing::new(B, &[]).expect("key").open("webhook_endpoints.secret", &resealed).as_deref(),
            Ok("whsec_abc")
        );
        assert_eq!(rotated.needs_resealing("webhook_endpoints.secret", &resealed), Ok(None));
        assert_eq!(
            Sealing::new(B, &[]).expect("key").open("webhook_endpoints.secret", &sealed),
            Err(Unsealable::WrongKey)
        );

        // Plaintext from before sealing opens as itself and is sealed when asked.
        assert_eq!(rotated.open("webhook_endpoints.secret", "whsec_plain").as_deref(), Ok("whsec_plain"));
        assert!(rotated.needs_resealing("webhook_endpoints.secret", "whsec_plain").expect("opens").is_some());
        assert_eq!(Sealing::default().open("webhook_endpoints.secret", &sealed), Err(Unsealable::NoKey));
        assert_eq!(old.open("webhook_endpoints.secret", "sealed:v1:%%%"), Err(Unsealable::Malformed));
    }
}

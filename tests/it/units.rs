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

//! Passwords (strength, argon2 hashing in a blocking task) and the checks of emails and display names.
#[allow(unused_imports)]
use super::*;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
const COMMON_PASSWORDS: [&str; 8] = [
    "1234567890",
    "password123",
    "qwertyuiop",
    "1qaz2wsx3edc",
    "iloveyou123",
    "a123456789",
    "woaini1314",
    "1234qwer!@",
];

pub fn check_password_strength(password: &str, email: &str) -> AppResult<()> {
    let chars = password.chars().count();
    let weak = |m: &str| Err(AppError::bad_input("password", m.to_owned()));
    if chars < MIN_PASSWORD_CHARS {
        return weak(&format!("password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return weak(&format!("password must have at most {MAX_PASSWORD_CHARS} characters"));
    }
    let classes = [
        password.chars().any(|c| c.is_alphabetic()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 2 {
        return weak("password must mix at least two of letters, digits and symbols");
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) || (!local.is_empty() && lower.contains(&local)) {
        return weak("password is too easy to guess");
    }
    Ok(())
}

pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
}

pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A real hash of a random password, so an unknown email costs the same time as a wrong
/// password and the two cannot be told apart.
pub(super) async fn dummy_hash() -> &'static str {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY.get_or_init(|| async { hash_password(uuid::Uuid::new_v4().to_string()).await.unwrap_or_default() }).await
}

pub fn normalize_email(raw: &str) -> AppResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, host)| {
            // `.invalid` is reserved (RFC 2606): deleted accounts' tombstones use it.
            !user.is_empty()
                && host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
                && !host.ends_with(".invalid")
        })
        && !email.contains(char::is_whitespace);
    if valid { Ok(email) } else { Err(AppError::bad_input("email", "not an email address")) }
}

pub(super) fn display_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("displayName", "displayName is 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

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

/// Argon2id with 9 MiB and 4 passes: one of the settings OWASP's password-storage guide gives
/// as equally strong (19 MiB with 2 passes, the crate's default, is another), chosen so that a
/// sign-in holds half the memory for about the same time.
const ARGON2_M_COST_KIB: u32 = 9 * 1024;
const ARGON2_T_COST: u32 = 4;

fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes run a few at a time (as many as there are cores): each holds its memory cost while
/// it runs, so a burst of sign-ins queues here instead of taking that memory once per request.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    });
    let _permit = permits.acquire().await.map_err(|e| AppError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| AppError::Internal(e.to_string()))
}

pub async fn hash_password(password: String) -> AppResult<String> {
    hashing(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(e.to_string()))
    })
    .await?
}

/// Checks a password against its stored hash, with the parameters the hash names (older
/// hashes keep verifying after the parameters change).
pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    hashing(move || argon2().verify_password(password.as_bytes(), hash.as_str()).is_ok()).await.unwrap_or(false)
}

/// Whether a stored hash was made with other parameters than today's (or is not Argon2id):
/// a successful sign-in then stores the password hashed anew.
pub(crate) fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(hash) else { return true };
    let costs = |p: &argon2::Params| (p.m_cost(), p.t_cost(), p.p_cost());
    let made_with = argon2::Params::try_from(&parsed).ok().map(|p| costs(&p));
    parsed.algorithm.as_str() != "argon2id" || made_with != Some(costs(argon2().params()))
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

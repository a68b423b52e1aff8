//! Accounts, passwords, sessions (access + refresh tokens), partner API keys and
//! organization membership.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::membership::MemberRole;
use entity::{account, api_key, invitation, membership, session};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{AppError, AppResult};

/// Global roles. Organization membership (`ORG_MEMBER`) is per organization, not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Manager,
    Reviewer,
    Donor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Reviewer, Role::Donor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::Reviewer => "REVIEWER",
            Role::Donor => "DONOR",
        }
    }

    pub fn parse_list(raw: &str) -> Vec<Role> {
        raw.split(',').filter_map(|r| Role::ALL.into_iter().find(|role| role.as_str() == r.trim())).collect()
    }

    pub fn join(roles: &[Role]) -> String {
        let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    }
}

/// What a partner key may do beyond reading public data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiScope {
    /// Read public data (every key may).
    Read,
    /// Register people for events and training.
    Register,
    /// Record donations.
    Donate,
    /// Confirm donations after reconciliation with a payment platform.
    Reconcile,
}

impl ApiScope {
    pub const ALL: [ApiScope; 4] = [ApiScope::Read, ApiScope::Register, ApiScope::Donate, ApiScope::Reconcile];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "READ",
            ApiScope::Register => "REGISTER",
            ApiScope::Donate => "DONATE",
            ApiScope::Reconcile => "RECONCILE",
        }
    }

    pub fn parse_list(raw: &str) -> Vec<ApiScope> {
        raw.split(',').filter_map(|r| ApiScope::ALL.into_iter().find(|s| s.as_str() == r.trim())).collect()
    }

    /// Whether a key holding this scope may sit in a web page, where anyone can read it:
    /// reading public data, registering guests and recording guest pledges (which count only
    /// once staff confirm them). Never reconciliation.
    pub fn is_publishable(self) -> bool {
        matches!(self, ApiScope::Read | ApiScope::Register | ApiScope::Donate)
    }

    pub fn join(scopes: &[ApiScope]) -> String {
        let mut names: Vec<&str> = scopes.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    }
}

// ---------------------------------------------------------------- passwords

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

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A real hash of a random password, so an unknown email costs the same time as a wrong
/// password and the two cannot be told apart.
async fn dummy_hash() -> &'static str {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY.get_or_init(|| async { hash_password(uuid::Uuid::new_v4().to_string()).await.unwrap_or_default() }).await
}

pub fn normalize_email(raw: &str) -> AppResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
        })
        && !email.contains(char::is_whitespace);
    if valid { Ok(email) } else { Err(AppError::bad_input("email", "not an email address")) }
}

fn display_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("displayName", "displayName is 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

// ---------------------------------------------------------------- accounts

pub async fn create_account(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<account::Model> {
    let email = normalize_email(email)?;
    check_password_strength(password, &email)?;
    let name = display_name(name)?;
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let hash = hash_password(password.to_owned()).await?;
    let txn = db.begin().await?;
    let account = account::ActiveModel {
        email: Set(email.clone()),
        password_hash: Set(hash),
        display_name: Set(name),
        roles: Set(Role::join(roles)),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => AppError::Conflict("an account with this email already exists".into()),
        other => other,
    })?;
    // Invitations sent to this email become memberships.
    let pending = invitation::Entity::find().filter(invitation::Column::Email.eq(&email)).all(&txn).await?;
    for invite in &pending {
        membership::ActiveModel {
            organization_id: Set(invite.organization_id),
            account_id: Set(account.id),
            role: Set(invite.role),
            created_at: Set(super::now()),
        }
        .insert(&txn)
        .await?;
    }
    invitation::Entity::delete_many().filter(invitation::Column::Email.eq(&email)).exec(&txn).await?;
    txn.commit().await?;
    Ok(account)
}

pub async fn set_roles(db: &DatabaseConnection, account_id: i64, roles: &[Role]) -> AppResult<account::Model> {
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let found =
        account::Entity::find_by_id(account_id).one(db).await?.ok_or_else(|| AppError::NotFound("account".into()))?;
    let mut model: account::ActiveModel = found.into();
    model.roles = Set(Role::join(roles));
    Ok(model.update(db).await?)
}

pub async fn account_by_email(db: &impl ConnectionTrait, email: &str) -> AppResult<Option<account::Model>> {
    let email = email.trim().to_lowercase();
    Ok(account::Entity::find().filter(account::Column::Email.eq(email)).one(db).await?)
}

pub async fn accounts_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<account::Model>> {
    Ok(account::Entity::find().filter(account::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Checks credentials. Unknown email and wrong password give the same error, in the same time.
pub async fn verify_credentials(db: &DatabaseConnection, email: &str, password: &str) -> AppResult<account::Model> {
    let wrong = || AppError::InvalidCredentials;
    let found = account_by_email(db, email).await?;
    let Some(account) = found else {
        verify_password(password.to_owned(), dummy_hash().await.to_owned()).await;
        return Err(wrong());
    };
    if !verify_password(password.to_owned(), account.password_hash.clone()).await || account.disabled_at.is_some() {
        return Err(wrong());
    }
    Ok(account)
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: i64,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

const ISSUER: &str = "incubase";

/// Signing keys and lifetimes of tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Result<Self, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            validation,
            access_ttl,
            refresh_ttl,
        })
    }

    fn access_token(&self, account_id: i64, session_id: i64) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(self.access_ttl).unwrap_or(chrono::Duration::minutes(15));
        let claims = Claims {
            sub: account_id.to_string(),
            sid: session_id,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            iss: ISSUER.into(),
            aud: ISSUER.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok((token, expires))
    }

    /// The (account, session) an access token names, if its signature and times are valid.
    fn verify(&self, token: &str) -> Option<(i64, i64)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        Some((data.claims.sub.parse().ok()?, data.claims.sid))
    }
}

pub struct IssuedTokens {
    pub account: account::Model,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn sha256_hex(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn start_session(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    account: account::Model,
) -> AppResult<IssuedTokens> {
    let now = super::now();
    let refresh_token = random_token("rt_");
    let refresh_expires_at = now + chrono::Duration::from_std(keys.refresh_ttl).unwrap_or(chrono::Duration::days(30));
    let session = session::ActiveModel {
        account_id: Set(account.id),
        token_hash: Set(sha256_hex(&refresh_token)),
        created_at: Set(now),
        expires_at: Set(refresh_expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let (access_token, access_expires_at) = keys.access_token(account.id, session.id)?;
    Ok(IssuedTokens { account, access_token, access_expires_at, refresh_token, refresh_expires_at })
}

/// Swaps a refresh token for new tokens; the old one stops working. A refresh token used
/// twice means it leaked: every session of that account is revoked.
pub async fn refresh_session(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    refresh_token: &str,
) -> AppResult<IssuedTokens> {
    let now = super::now();
    let txn = db.begin().await?;
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(sha256_hex(refresh_token.trim())))
        .one(&txn)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if found.revoked_at.is_some() {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::val(now))
            .filter(session::Column::AccountId.eq(found.account_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::warn!(account = found.account_id, "refresh token reused; all sessions revoked");
        return Err(AppError::Unauthenticated);
    }
    if found.expires_at <= now {
        return Err(AppError::Unauthenticated);
    }
    let revoked = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(now))
        .filter(session::Column::Id.eq(found.id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if revoked.rows_affected != 1 {
        return Err(AppError::Unauthenticated);
    }
    let account = account::Entity::find_by_id(found.account_id)
        .one(&txn)
        .await?
        .filter(|a| a.disabled_at.is_none())
        .ok_or(AppError::Unauthenticated)?;
    let issued = start_session(&txn, keys, account).await?;
    txn.commit().await?;
    Ok(issued)
}

/// Revokes the session of a refresh token; its access tokens stop working too.
pub async fn sign_out(db: &DatabaseConnection, refresh_token: &str) -> AppResult<bool> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(super::now()))
        .filter(session::Column::TokenHash.eq(sha256_hex(refresh_token.trim())))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The account behind an access token, if the token is valid and its session alive.
pub async fn account_for_access_token(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    token: &str,
) -> AppResult<(account::Model, Vec<(i64, MemberRole)>)> {
    let (account_id, session_id) = keys.verify(token).ok_or(AppError::Unauthenticated)?;
    let now = super::now();
    let live = session::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .filter(|s| s.account_id == account_id && s.revoked_at.is_none() && s.expires_at > now);
    if live.is_none() {
        return Err(AppError::Unauthenticated);
    }
    let account = account::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .filter(|a| a.disabled_at.is_none())
        .ok_or(AppError::Unauthenticated)?;
    let memberships = memberships_of(db, account_id).await?;
    Ok((account, memberships))
}

pub async fn memberships_of(db: &impl ConnectionTrait, account_id: i64) -> AppResult<Vec<(i64, MemberRole)>> {
    Ok(membership::Entity::find()
        .filter(membership::Column::AccountId.eq(account_id))
        .order_by_asc(membership::Column::OrganizationId)
        .limit(500)
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.organization_id, m.role))
        .collect())
}

// ---------------------------------------------------------------- API keys

pub struct IssuedKey {
    pub key: api_key::Model,
    /// The whole key; shown once, stored only as a hash.
    pub secret: String,
}

/// Issues a secret key: for a partner's servers, refused from browsers.
pub async fn create_api_key(
    db: &DatabaseConnection,
    name: &str,
    scopes: &[ApiScope],
    expires_at: Option<DateTime<Utc>>,
    created_by: i64,
) -> AppResult<IssuedKey> {
    issue_api_key(db, NewApiKey { name, scopes, expires_at, created_by, publishable: false, allowed_origins: &[] })
        .await
}

/// Issues a publishable key, bound to the origins of the sites that embed it.
pub async fn create_publishable_api_key(
    db: &DatabaseConnection,
    name: &str,
    scopes: &[ApiScope],
    allowed_origins: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: i64,
) -> AppResult<IssuedKey> {
    issue_api_key(db, NewApiKey { name, scopes, expires_at, created_by, publishable: true, allowed_origins }).await
}

pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub scopes: &'a [ApiScope],
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: i64,
    pub publishable: bool,
    /// Origins a publishable key may be used from (`https://www.example.org`); secret keys have none.
    pub allowed_origins: &'a [String],
}

/// At most this many origins per publishable key.
pub const MAX_KEY_ORIGINS: usize = 20;
/// Secrets of publishable keys start with this, so a key in a page is recognisable as meant to be there.
pub const PUBLISHABLE_PREFIX: &str = "ib_pub_";

pub async fn issue_api_key(db: &DatabaseConnection, new: NewApiKey<'_>) -> AppResult<IssuedKey> {
    let NewApiKey { name, scopes, expires_at, created_by, publishable, allowed_origins } = new;
    let origins = key_origins(publishable, scopes, allowed_origins)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "name is 1 to 100 characters"));
    }
    if expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(AppError::bad_input("expiresAt", "expiresAt is in the past"));
    }
    let mut scopes = scopes.to_vec();
    scopes.push(ApiScope::Read);
    let secret = random_token(if publishable { PUBLISHABLE_PREFIX } else { "ib_" });
    let key = api_key::ActiveModel {
        publishable: Set(publishable),
        allowed_origins: Set(origins.join("\n")),
        name: Set(name.to_owned()),
        prefix: Set(secret.chars().take(10).collect()),
        key_hash: Set(sha256_hex(&secret)),
        scopes: Set(ApiScope::join(&scopes)),
        created_by: Set(created_by),
        created_at: Set(super::now()),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(IssuedKey { key, secret })
}

/// The canonical origins of a new key, after the rules: a publishable key is bound to 1 to
/// `MAX_KEY_ORIGINS` origins and holds only publishable scopes; a secret key has no origins
/// (it is refused from every browser).
fn key_origins(publishable: bool, scopes: &[ApiScope], allowed_origins: &[String]) -> AppResult<Vec<String>> {
    if !publishable {
        if !allowed_origins.is_empty() {
            return Err(AppError::rule(
                "allowedOrigins",
                "ORIGINS_NEED_PUBLISHABLE_KEY",
                "only publishable keys are bound to origins; secret keys are refused from browsers",
            ));
        }
        return Ok(Vec::new());
    }
    if let Some(scope) = scopes.iter().find(|s| !s.is_publishable()) {
        return Err(AppError::rule(
            "scopes",
            "SCOPE_NOT_PUBLISHABLE",
            format!(
                "a publishable key is readable by anyone who opens the page, so it cannot hold {}: \
                 use a secret key on a server for that",
                scope.as_str()
            ),
        ));
    }
    if allowed_origins.is_empty() || allowed_origins.len() > MAX_KEY_ORIGINS {
        return Err(AppError::rule(
            "allowedOrigins",
            "ORIGINS_REQUIRED",
            format!("a publishable key is bound to 1 to {MAX_KEY_ORIGINS} origins, e.g. https://www.example.org"),
        ));
    }
    let mut origins = Vec::new();
    for raw in allowed_origins {
        let origin = crate::config::normalize_origin(raw).map_err(|reason| {
            AppError::rule("allowedOrigins", "INVALID_ORIGIN", format!("{raw:?} is not an origin: {reason}"))
        })?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The origins a key is bound to.
pub fn origins_of(key: &api_key::Model) -> Vec<String> {
    key.allowed_origins.lines().map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect()
}

/// Every origin some live publishable key is bound to: the browsers' preflights are answered
/// for these (a preflight carries no key, only the page's origin).
pub async fn publishable_origins(db: &impl ConnectionTrait) -> AppResult<std::collections::HashSet<String>> {
    let now = super::now();
    let keys = api_key::Entity::find()
        .filter(api_key::Column::Publishable.eq(true))
        .filter(api_key::Column::RevokedAt.is_null())
        .limit(10_000)
        .all(db)
        .await?;
    Ok(keys.iter().filter(|k| k.expires_at.is_none_or(|t| t > now)).flat_map(origins_of).collect())
}

pub async fn revoke_api_key(db: &DatabaseConnection, id: i64) -> AppResult<api_key::Model> {
    let key = api_key::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("API key".into()))?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut model: api_key::ActiveModel = key.into();
    model.revoked_at = Set(Some(super::now()));
    Ok(model.update(db).await?)
}

pub async fn list_api_keys(db: &impl ConnectionTrait, limit: u64) -> AppResult<Vec<api_key::Model>> {
    Ok(api_key::Entity::find().order_by_desc(api_key::Column::Id).limit(limit).all(db).await?)
}

/// The live key matching a presented secret.
pub async fn api_key_for_secret(db: &impl ConnectionTrait, secret: &str) -> AppResult<api_key::Model> {
    let now = super::now();
    let key = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(sha256_hex(secret.trim())))
        .one(db)
        .await?
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now))
        .ok_or(AppError::Unauthenticated)?;
    // Record use at most once a minute: a write per request would be a hot-path cost.
    if key.last_used_at.is_none_or(|t| now - t > chrono::Duration::minutes(1)) {
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::val(now))
            .filter(api_key::Column::Id.eq(key.id))
            .exec(db)
            .await?;
    }
    Ok(key)
}

// ---------------------------------------------------------------- membership

pub enum Added {
    Member(membership::Model),
    /// No account has this email yet: it becomes a member on sign-up.
    Invited(invitation::Model),
}

async fn ensure_organization(db: &impl ConnectionTrait, org_id: i64) -> AppResult<()> {
    entity::organization::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or_else(|| AppError::NotFound("organization".into()))
}

pub async fn add_member(
    db: &DatabaseConnection,
    org_id: i64,
    email: &str,
    role: MemberRole,
    invited_by: i64,
) -> AppResult<Added> {
    let email = normalize_email(email)?;
    ensure_organization(db, org_id).await?;
    match account_by_email(db, &email).await? {
        Some(account) => {
            let existing = membership::Entity::find_by_id((org_id, account.id)).one(db).await?;
            if existing.is_some() {
                return Err(AppError::Conflict("this account is already a member".into()));
            }
            let m = membership::ActiveModel {
                organization_id: Set(org_id),
                account_id: Set(account.id),
                role: Set(role),
                created_at: Set(super::now()),
            }
            .insert(db)
            .await?;
            Ok(Added::Member(m))
        }
        None => {
            let invite = invitation::ActiveModel {
                organization_id: Set(org_id),
                email: Set(email),
                role: Set(role),
                invited_by: Set(invited_by),
                created_at: Set(super::now()),
                ..Default::default()
            }
            .insert(db)
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict(_) => AppError::Conflict("this email is already invited".into()),
                other => other,
            })?;
            Ok(Added::Invited(invite))
        }
    }
}

async fn owner_count(db: &impl ConnectionTrait, org_id: i64) -> AppResult<usize> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org_id))
        .filter(membership::Column::Role.eq(MemberRole::Owner))
        .all(db)
        .await?
        .len())
}

pub async fn change_member_role(
    db: &DatabaseConnection,
    org_id: i64,
    account_id: i64,
    role: MemberRole,
) -> AppResult<membership::Model> {
    let txn = db.begin().await?;
    let current = membership::Entity::find_by_id((org_id, account_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound("membership".into()))?;
    if current.role == MemberRole::Owner && role != MemberRole::Owner && owner_count(&txn, org_id).await? <= 1 {
        return Err(AppError::Conflict("an organization keeps at least one owner".into()));
    }
    let mut model: membership::ActiveModel = current.into();
    model.role = Set(role);
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn remove_member(db: &DatabaseConnection, org_id: i64, account_id: i64) -> AppResult<()> {
    let txn = db.begin().await?;
    let current = membership::Entity::find_by_id((org_id, account_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound("membership".into()))?;
    if current.role == MemberRole::Owner && owner_count(&txn, org_id).await? <= 1 {
        return Err(AppError::Conflict("an organization keeps at least one owner".into()));
    }
    membership::Entity::delete_by_id((org_id, account_id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Members of many organizations in one statement, at most 200 each.
pub async fn members_of(
    db: &impl ConnectionTrait,
    org_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<(membership::Model, account::Model)>>> {
    let rows = membership::Entity::find()
        .filter(membership::Column::OrganizationId.is_in(org_ids.iter().copied()))
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    let account_ids: Vec<i64> = rows.iter().map(|m| m.account_id).collect();
    let accounts: HashMap<i64, account::Model> =
        accounts_by_ids(db, &account_ids).await?.into_iter().map(|a| (a.id, a)).collect();
    let mut map: HashMap<i64, Vec<(membership::Model, account::Model)>> = HashMap::new();
    for m in rows {
        if let Some(a) = accounts.get(&m.account_id) {
            let list = map.entry(m.organization_id).or_default();
            if list.len() < 200 {
                list.push((m, a.clone()));
            }
        }
    }
    Ok(map)
}

/// Sign-in attempt limits, per account and per client address.
pub struct SignInLimiter {
    per_account: governor::DefaultKeyedRateLimiter<String>,
    per_address: governor::DefaultKeyedRateLimiter<String>,
}

impl SignInLimiter {
    pub fn new(per_account_per_minute: u32, per_address_per_minute: u32) -> Arc<Self> {
        use std::num::NonZeroU32;
        let quota = |n: u32| governor::Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            per_account: governor::RateLimiter::keyed(quota(per_account_per_minute)),
            per_address: governor::RateLimiter::keyed(quota(per_address_per_minute)),
        })
    }

    /// Counts one attempt; over the limit, the error says when to retry.
    pub fn check(&self, email: &str, address: &str) -> AppResult<()> {
        use governor::clock::{Clock, DefaultClock};
        let clock = DefaultClock::default();
        for (limiter, key) in
            [(&self.per_account, email.trim().to_lowercase()), (&self.per_address, address.to_owned())]
        {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(clock.now());
                return Err(AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) });
            }
        }
        // Keep memory bounded: forget keys whose limits have fully recovered.
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
            self.per_account.retain_recent();
        }
        Ok(())
    }
}

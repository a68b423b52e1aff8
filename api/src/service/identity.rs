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

use serde_json::json;

use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

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

pub(crate) async fn verify_password(password: String, hash: String) -> bool {
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

fn display_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("displayName", "displayName is 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

// ---------------------------------------------------------------- accounts

/// Command: a donor creates an account and is signed in.
pub async fn sign_up(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    email: &str,
    password: &str,
    name: &str,
) -> AppResult<IssuedTokens> {
    let actor = Actor::of(viewer);
    let (email, hash, name) = new_credentials(email, password, name, &[Role::Donor]).await?;
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let (account, mut events) = insert_account(&txn, &email, &hash, &name, &[Role::Donor]).await?;
        let (token, verification) = super::account::issue_sign_up_verification(ctx, &txn, &account).await?;
        events.push(verification);
        let issued = start_session(&txn, ctx.tokens, account).await?;
        events.push(NewEvent::new(EventKind::AccountSignedIn, issued.account.id).account(Some(issued.account.id)));
        ctx.commit(txn, &actor.as_account(issued.account.id), events).await?;
        Ok((issued, token))
    })
    .await
    .map(|(issued, token)| {
        // The address is checked by a mail right away (`requestEmailVerification` sends another).
        super::account::mail_sign_up_verification(ctx, &issued.account, &token);
        issued
    })
}

/// Command: signs in with email and password; attempts are limited per account and address.
pub async fn sign_in(ctx: Ctx<'_>, viewer: &Viewer, email: &str, password: &str) -> AppResult<IssuedTokens> {
    ctx.sign_in_limiter.check(email, viewer.address.as_deref().unwrap_or("unknown"))?;
    let account = verify_credentials(ctx.db, email, password).await?;
    let actor = Actor::of(viewer).as_account(account.id);
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let issued = start_session(&txn, ctx.tokens, account.clone()).await?;
        let event = NewEvent::new(EventKind::AccountSignedIn, account.id).account(Some(account.id));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(issued)
    })
    .await
}

/// Command: an admin creates a staff, reviewer or donor account.
pub async fn create_account_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<account::Model> {
    viewer.require_admin("create accounts")?;
    create_account(ctx, &Actor::of(viewer), email, password, name, roles).await
}

/// Command: an admin replaces an account's global roles.
pub async fn set_account_roles(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    account_id: i64,
    roles: &[Role],
) -> AppResult<account::Model> {
    viewer.require_admin("change roles")?;
    let actor = Actor::of(viewer);
    retry_transient(|| set_roles(ctx, &actor, account_id, roles)).await
}

/// Validates and hashes what a new account is made of.
async fn new_credentials(
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<(String, String, String)> {
    let email = normalize_email(email)?;
    check_password_strength(password, &email)?;
    let name = display_name(name)?;
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let hash = hash_password(password.to_owned()).await?;
    Ok((email, hash, name))
}

/// Inserts an account; invitations sent to its email become memberships.
async fn insert_account(
    txn: &sea_orm::DatabaseTransaction,
    email: &str,
    hash: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<(account::Model, Vec<NewEvent>)> {
    let account = account::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set(hash.to_owned()),
        display_name: Set(name.to_owned()),
        roles: Set(Role::join(roles)),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => AppError::Conflict("an account with this email already exists".into()),
        other => other,
    })?;
    let mut events = vec![
        NewEvent::new(EventKind::AccountCreated, account.id)
            .account(Some(account.id))
            .payload(json!({ "roles": account.roles })),
    ];
    events.extend(claim_invitations(txn, account.id, email).await?);
    Ok((account, events))
}

/// Invitations waiting for `email` become memberships of `account_id` (at sign-up, and when
/// an account's new address is confirmed). Returns their events.
pub(crate) async fn claim_invitations(
    txn: &impl ConnectionTrait,
    account_id: i64,
    email: &str,
) -> AppResult<Vec<NewEvent>> {
    let mut events = Vec::new();
    let pending = invitation::Entity::find().filter(invitation::Column::Email.eq(email)).all(txn).await?;
    for invite in &pending {
        let existing = membership::Entity::find_by_id((invite.organization_id, account_id)).one(txn).await?;
        if existing.is_none() {
            membership::ActiveModel {
                organization_id: Set(invite.organization_id),
                account_id: Set(account_id),
                role: Set(invite.role),
                created_at: Set(super::now()),
            }
            .insert(txn)
            .await?;
            events.push(member_event(EventKind::MemberAdded, invite.organization_id, account_id, invite.role));
        }
    }
    invitation::Entity::delete_many().filter(invitation::Column::Email.eq(email)).exec(txn).await?;
    Ok(events)
}

pub(crate) fn member_event(kind: EventKind, org_id: i64, account_id: i64, role: MemberRole) -> NewEvent {
    use sea_orm::ActiveEnum;
    NewEvent::new(kind, org_id)
        .organization(Some(org_id))
        .account(Some(account_id))
        .payload(json!({ "accountId": account_id, "role": role.to_value() }))
}

/// Creates an account (for the CLI, tests and the admin command).
pub async fn create_account(
    ctx: Ctx<'_>,
    actor: &Actor,
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<account::Model> {
    let (email, hash, name) = new_credentials(email, password, name, roles).await?;
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let (account, events) = insert_account(&txn, &email, &hash, &name, roles).await?;
        ctx.commit(txn, actor, events).await?;
        Ok(account)
    })
    .await
}

pub async fn set_roles(ctx: Ctx<'_>, actor: &Actor, account_id: i64, roles: &[Role]) -> AppResult<account::Model> {
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let txn = ctx.db.begin().await?;
    let found =
        account::Entity::find_by_id(account_id).one(&txn).await?.ok_or_else(|| AppError::NotFound("account".into()))?;
    let from = found.roles.clone();
    let mut model: account::ActiveModel = found.into();
    model.roles = Set(Role::join(roles));
    let updated = model.update(&txn).await?;
    let event = NewEvent::new(EventKind::AccountRolesChanged, account_id)
        .account(Some(account_id))
        .payload(json!({ "from": from, "to": updated.roles }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(updated)
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
    /// Earlier (or upcoming) secrets whose tokens are still accepted, never used to sign: a
    /// rotation signs nobody out (`INCUBASE_JWT_PREVIOUS_SECRETS`).
    also_accepted: Vec<DecodingKey>,
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
            also_accepted: Vec::new(),
            validation,
            access_ttl,
            refresh_ttl,
        })
    }

    /// Also accepts tokens signed with `secrets` (verification only).
    pub fn also_accepting(mut self, secrets: &[&[u8]]) -> Result<Self, String> {
        for secret in secrets {
            self.also_accepted.push(DecodingKey::from_secret(secret).map_err(|e| e.to_string())?);
        }
        Ok(self)
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
        let data = std::iter::once(&self.decoding)
            .chain(&self.also_accepted)
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &self.validation).ok())?;
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

pub(crate) fn random_token(prefix: &str) -> String {
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

/// Command: swaps a refresh token for new tokens; the old one stops working. A refresh token
/// used twice means it leaked: every session of that account is revoked (and recorded).
pub async fn refresh_session(ctx: Ctx<'_>, viewer: &Viewer, refresh_token: &str) -> AppResult<IssuedTokens> {
    let actor = Actor::of(viewer);
    retry_transient(|| refresh(ctx, &actor, refresh_token)).await
}

async fn refresh(ctx: Ctx<'_>, actor: &Actor, refresh_token: &str) -> AppResult<IssuedTokens> {
    let keys = ctx.tokens;
    let now = super::now();
    let txn = ctx.db.begin().await?;
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
        let event = NewEvent::new(EventKind::AccountSessionsRevoked, found.account_id)
            .account(Some(found.account_id))
            .payload(json!({ "reason": "REFRESH_TOKEN_REUSED" }));
        ctx.commit(txn, &actor.as_account(found.account_id), vec![event]).await?;
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
    let event = NewEvent::new(EventKind::SessionRefreshed, issued.account.id).account(Some(issued.account.id));
    ctx.commit(txn, &actor.as_account(issued.account.id), vec![event]).await?;
    Ok(issued)
}

/// Command: revokes the session of a refresh token; its access tokens stop working too. An
/// unknown or already revoked token answers `false` and changes nothing.
pub async fn sign_out(ctx: Ctx<'_>, viewer: &Viewer, refresh_token: &str) -> AppResult<bool> {
    let actor = Actor::of(viewer);
    let hash = sha256_hex(refresh_token.trim());
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::val(super::now()))
            .filter(session::Column::TokenHash.eq(hash.as_str()))
            .filter(session::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await?;
        let Some(session) = revoked.first() else { return Ok(false) };
        let event = NewEvent::new(EventKind::AccountSignedOut, session.account_id).account(Some(session.account_id));
        ctx.commit(txn, &actor.as_account(session.account_id), vec![event]).await?;
        Ok(true)
    })
    .await
}

/// Who an access token speaks for, as kept between requests: no password hash, and the
/// session's end, checked on every use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionAccount {
    pub id: i64,
    pub session_id: i64,
    pub email: String,
    pub display_name: String,
    pub roles: String,
    pub memberships: Vec<(i64, MemberRole)>,
    pub session_expires_at: DateTime<Utc>,
}

/// The account behind an access token, if the token is valid and its session alive.
///
/// With `cache` (a cache every instance shares, or the only instance's), a hot session costs
/// no database statement: the entry lives under the account's tag, which every write that
/// ends a session or changes roles or memberships bumps in its own request (see
/// `events::coherence`), so the very next request after a sign-out is refused.
pub async fn account_for_access_token(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    cache: Option<&crate::cache::Cache>,
    token: &str,
) -> AppResult<SessionAccount> {
    let (account_id, session_id) = keys.verify(token).ok_or(AppError::Unauthenticated)?;
    let load = load_session_account(db, account_id, session_id);
    let found = match cache {
        Some(cache) => {
            cache.get_or_load(&crate::tags::account(account_id), &format!("session:{session_id}"), load).await?
        }
        None => load.await?,
    };
    if found.session_expires_at <= super::now() {
        return Err(AppError::Unauthenticated);
    }
    Ok(found)
}

async fn load_session_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    session_id: i64,
) -> AppResult<SessionAccount> {
    let now = super::now();
    let live = session::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .filter(|s| s.account_id == account_id && s.revoked_at.is_none() && s.expires_at > now)
        .ok_or(AppError::Unauthenticated)?;
    let account = account::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .filter(|a| a.disabled_at.is_none())
        .ok_or(AppError::Unauthenticated)?;
    let memberships = memberships_of(db, account_id).await?;
    Ok(SessionAccount {
        id: account.id,
        session_id,
        email: account.email,
        display_name: account.display_name,
        roles: account.roles,
        memberships,
        session_expires_at: live.expires_at,
    })
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

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub publishable: bool,
    /// Origins a publishable key may be used from (`https://www.example.org`); secret keys have none.
    pub allowed_origins: Vec<String>,
}

impl NewApiKey {
    /// A secret key: for a partner's servers, refused from browsers.
    pub fn secret(name: &str, scopes: &[ApiScope], expires_at: Option<DateTime<Utc>>) -> Self {
        Self { name: name.to_owned(), scopes: scopes.to_vec(), expires_at, publishable: false, allowed_origins: vec![] }
    }

    /// A publishable key, bound to the origins of the sites that embed it.
    pub fn publishable(name: &str, scopes: &[ApiScope], allowed_origins: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            expires_at: None,
            publishable: true,
            allowed_origins: allowed_origins.to_vec(),
        }
    }
}

/// At most this many origins per publishable key.
pub const MAX_KEY_ORIGINS: usize = 20;
/// Secrets of publishable keys start with this, so a key in a page is recognisable as meant to be there.
pub const PUBLISHABLE_PREFIX: &str = "ib_pub_";

/// Command: an admin issues a partner API key (secret or publishable); the secret is returned once.
pub async fn issue_api_key(ctx: Ctx<'_>, viewer: &Viewer, new: NewApiKey) -> AppResult<IssuedKey> {
    viewer.require_admin("issue API keys")?;
    let admin = viewer.require_account()?.id;
    let actor = Actor::of(viewer);
    retry_transient(|| create_api_key(ctx, &actor, new.clone(), admin)).await
}

/// Command: an admin revokes a partner API key at once (revoking a revoked key changes nothing).
pub async fn revoke_api_key_as(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<api_key::Model> {
    viewer.require_admin("revoke API keys")?;
    let actor = Actor::of(viewer);
    retry_transient(|| revoke_api_key(ctx, &actor, id)).await
}

pub async fn create_api_key(ctx: Ctx<'_>, actor: &Actor, new: NewApiKey, created_by: i64) -> AppResult<IssuedKey> {
    let NewApiKey { name, scopes, expires_at, publishable, allowed_origins } = new;
    let origins = key_origins(publishable, &scopes, &allowed_origins)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "name is 1 to 100 characters"));
    }
    if expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(AppError::bad_input("expiresAt", "expiresAt is in the past"));
    }
    let mut scopes = scopes;
    scopes.push(ApiScope::Read);
    let secret = random_token(if publishable { PUBLISHABLE_PREFIX } else { "ib_" });
    let txn = ctx.db.begin().await?;
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
    .insert(&txn)
    .await?;
    let event = NewEvent::new(EventKind::ApiKeyCreated, key.id).payload(json!({
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "publishable": key.publishable,
        "allowedOrigins": origins,
    }));
    ctx.commit(txn, actor, vec![event]).await?;
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

pub async fn revoke_api_key(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<api_key::Model> {
    let txn = ctx.db.begin().await?;
    let key = api_key::Entity::find_by_id(id).one(&txn).await?.ok_or_else(|| AppError::NotFound("API key".into()))?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut model: api_key::ActiveModel = key.into();
    model.revoked_at = Set(Some(super::now()));
    let key = model.update(&txn).await?;
    let event = NewEvent::new(EventKind::ApiKeyRevoked, key.id)
        .payload(json!({ "name": key.name, "publishable": key.publishable }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(key)
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

/// Command: owners and admins add a member by email; without an account yet, an invitation
/// is kept and becomes a membership when that email signs up.
pub async fn add_organization_member(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    org_id: i64,
    email: &str,
    role: MemberRole,
) -> AppResult<Added> {
    viewer.require_manage_members(org_id)?;
    let by = viewer.account.as_ref().map(|a| a.id).unwrap_or_default();
    let actor = Actor::of(viewer);
    retry_transient(|| add_member(ctx, &actor, org_id, email, role, by)).await
}

/// Command: owners and admins change a member's role; an organization keeps an owner.
pub async fn change_organization_member_role(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    org_id: i64,
    account_id: i64,
    role: MemberRole,
) -> AppResult<membership::Model> {
    viewer.require_manage_members(org_id)?;
    let actor = Actor::of(viewer);
    retry_transient(|| change_member_role(ctx, &actor, org_id, account_id, role)).await
}

/// Command: owners and admins remove a member; an organization keeps an owner.
pub async fn remove_organization_member(ctx: Ctx<'_>, viewer: &Viewer, org_id: i64, account_id: i64) -> AppResult<()> {
    viewer.require_manage_members(org_id)?;
    let actor = Actor::of(viewer);
    retry_transient(|| remove_member(ctx, &actor, org_id, account_id)).await
}

pub async fn add_member(
    ctx: Ctx<'_>,
    actor: &Actor,
    org_id: i64,
    email: &str,
    role: MemberRole,
    invited_by: i64,
) -> AppResult<Added> {
    use sea_orm::ActiveEnum;
    let email = normalize_email(email)?;
    let txn = ctx.db.begin().await?;
    let db = &txn;
    ensure_organization(db, org_id).await?;
    let added = match account_by_email(db, &email).await? {
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
            Added::Member(m)
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
            Added::Invited(invite)
        }
    };
    let event = match &added {
        Added::Member(m) => member_event(EventKind::MemberAdded, org_id, m.account_id, m.role),
        // The email stays out of the log (it is personal data an account deletion erases).
        Added::Invited(i) => NewEvent::new(EventKind::MemberInvited, org_id)
            .organization(Some(org_id))
            .payload(json!({ "invitationId": i.id, "role": i.role.to_value() })),
    };
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(added)
}

pub(crate) async fn owner_count(db: &impl ConnectionTrait, org_id: i64) -> AppResult<usize> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org_id))
        .filter(membership::Column::Role.eq(MemberRole::Owner))
        .all(db)
        .await?
        .len())
}

pub async fn change_member_role(
    ctx: Ctx<'_>,
    actor: &Actor,
    org_id: i64,
    account_id: i64,
    role: MemberRole,
) -> AppResult<membership::Model> {
    let txn = ctx.db.begin().await?;
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
    ctx.commit(txn, actor, vec![member_event(EventKind::MemberRoleChanged, org_id, account_id, role)]).await?;
    Ok(updated)
}

pub async fn remove_member(ctx: Ctx<'_>, actor: &Actor, org_id: i64, account_id: i64) -> AppResult<()> {
    let txn = ctx.db.begin().await?;
    let current = membership::Entity::find_by_id((org_id, account_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound("membership".into()))?;
    if current.role == MemberRole::Owner && owner_count(&txn, org_id).await? <= 1 {
        return Err(AppError::Conflict("an organization keeps at least one owner".into()));
    }
    membership::Entity::delete_by_id((org_id, account_id)).exec(&txn).await?;
    ctx.commit(txn, actor, vec![member_event(EventKind::MemberRemoved, org_id, account_id, current.role)]).await?;
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
        Self::with_quotas(quota(per_account_per_minute), quota(per_address_per_minute))
    }

    /// Limits with quotas of any period (account mails are counted per hour).
    pub fn with_quotas(per_account: governor::Quota, per_address: governor::Quota) -> Arc<Self> {
        Arc::new(Self {
            per_account: governor::RateLimiter::keyed(per_account),
            per_address: governor::RateLimiter::keyed(per_address),
        })
    }

    /// Counts one attempt for an account only (a signed-in person giving their password again:
    /// the address limit is for guessing across accounts).
    pub fn check_account(&self, email: &str) -> AppResult<()> {
        use governor::clock::{Clock, DefaultClock};
        if let Err(not_until) = self.per_account.check_key(&email.trim().to_lowercase()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) });
        }
        Ok(())
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

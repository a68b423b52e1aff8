//! Access tokens (JWT) and refresh-token sessions: issuing, refreshing, signing out, and the
//! account an access token speaks for.
#[allow(unused_imports)]
use super::*;

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
    as_viewer!(viewer, |actor| refresh(ctx, actor, refresh_token))
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
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(now))
        .filter(session::Column::Id.eq(found.id))
        .filter(session::Column::RevokedAt.is_null())
        .exec_one(&txn, || AppError::Unauthenticated)
        .await?;
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
    let hash = sha256_hex(refresh_token.trim());
    as_viewer!(viewer, |actor| async {
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

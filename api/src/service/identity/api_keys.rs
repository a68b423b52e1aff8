//! Partner API keys, secret and publishable: issuing, revoking, their origins and looking one up.
#[allow(unused_imports)]
use super::*;

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
    as_viewer!(viewer, |actor| create_api_key(ctx, actor, new.clone(), admin))
}

/// Command: an admin revokes a partner API key at once (revoking a revoked key changes nothing).
pub async fn revoke_api_key_as(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<api_key::Model> {
    viewer.require_admin("revoke API keys")?;
    as_viewer!(viewer, |actor| revoke_api_key(ctx, actor, id))
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
    let key = found::<api_key::Entity>(&txn, id, "API key").await?;
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

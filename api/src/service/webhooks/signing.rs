//! Signing secrets: issued, sealed for storage, opened to sign (Standard Webhooks), and sealed
//! again at start when stored in plaintext or under a previous key.
use super::*;

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">` with the key the secret encodes.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The associated data of the sealed signing secrets (both columns: a rotation moves the
/// current one to `previous_secret` as it is).
const SECRET_PURPOSE: &str = "webhook_endpoints.secret";

pub(super) fn seal_secret(sealing: &Sealing, secret: &str) -> AppResult<String> {
    sealing.seal(SECRET_PURPOSE, secret).map_err(|e| AppError::Internal(format!("cannot seal a webhook secret: {e}")))
}

/// A stored signing secret's plaintext; `None` (logged) when it does not open.
fn open_secret(sealing: &Sealing, endpoint_id: i64, stored: &str) -> Option<String> {
    match sealing.open(SECRET_PURPOSE, stored) {
        Ok(secret) => Some(secret),
        Err(e) => {
            tracing::error!(endpoint = endpoint_id, error = %e, "a webhook signing secret does not open: rotate it");
            None
        }
    }
}

/// The `webhook-signature` header: the current secret's signature, and during a rotation's
/// grace period the previous secret's too (space-separated, as the specification allows).
/// Secrets are stored sealed ([`crate::sealing`]); one that does not open signs nothing.
pub fn signatures(
    sealing: &Sealing,
    endpoint: &webhook_endpoint::Model,
    message_id: &str,
    at: DateTime<Utc>,
    body: &[u8],
) -> String {
    let timestamp = at.timestamp();
    let current = open_secret(sealing, endpoint.id, &endpoint.secret);
    let mut all: Vec<String> = current.and_then(|s| sign(&s, message_id, timestamp, body)).into_iter().collect();
    if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_secret_expires_at)
        && until > at
        && let Some(previous) = open_secret(sealing, endpoint.id, previous)
    {
        all.extend(sign(&previous, message_id, timestamp, body));
    }
    all.join(" ")
}

/// At start: seals the signing secrets stored in plaintext (before sealing existed) or under a
/// previous key, each with a conditional update (another instance starting at the same time
/// changes nothing twice). Logs the endpoints whose secrets open under no configured key.
pub async fn reseal_stored_secrets(db: &sea_orm::DatabaseConnection, sealing: &Sealing) {
    let endpoints = match webhook_endpoint::Entity::find().all(db).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read webhook endpoints to seal their secrets");
            return;
        }
    };
    let mut sealed = 0;
    for endpoint in endpoints {
        let columns = [
            (webhook_endpoint::Column::Secret, Some(endpoint.secret.clone())),
            (webhook_endpoint::Column::PreviousSecret, endpoint.previous_secret.clone()),
        ];
        for (column, stored) in columns {
            let Some(stored) = stored else { continue };
            let resealed = match sealing.needs_resealing(SECRET_PURPOSE, &stored) {
                Ok(Some(resealed)) => resealed,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(endpoint = endpoint.id, error = %e, "a webhook signing secret does not open: rotate it");
                    continue;
                }
            };
            let update = webhook_endpoint::Entity::update_many()
                .col_expr(column, Expr::value(resealed))
                .filter(webhook_endpoint::Column::Id.eq(endpoint.id))
                .filter(column.eq(stored))
                .exec(db)
                .await;
            match update {
                Ok(done) => sealed += done.rows_affected,
                Err(e) => tracing::warn!(endpoint = endpoint.id, error = %e, "cannot seal a webhook secret"),
            }
        }
    }
    if sealed > 0 {
        tracing::info!(sealed, "sealed stored webhook signing secrets under the current key");
    }
}

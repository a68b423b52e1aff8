//! Who sent a request: access tokens, API keys and the origin of the page that sent it.
use crate::auth::{AccountViewer, PartnerViewer, Viewer};
use crate::cors::Sender;
use crate::error::{AppError, AppResult};
use crate::service::identity;
use crate::state::AppState;

/// What a request presented: its credentials and where it came from.
#[derive(Clone, Copy)]
pub(crate) struct Presented<'a> {
    pub(crate) authorization: Option<&'a str>,
    pub(crate) api_key: Option<&'a str>,
    pub(crate) sender: &'a Sender,
}

/// Reads `Authorization: Bearer <access token | API key>` and `X-Api-Key`. No credentials:
/// anonymous. Credentials that do not check out: an error, never a silent downgrade. A page on
/// another origin may use a publishable key bound to that origin, never a secret key.
pub(crate) async fn authenticate(state: &AppState, presented: Presented<'_>) -> AppResult<Viewer> {
    let Presented { authorization, api_key, sender } = presented;
    let mut viewer = Viewer::anonymous();
    let mut key_secret = api_key.map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
    if let Some(header) = authorization {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthenticated)?;
        if token.starts_with("ib_") {
            key_secret = key_secret.or(Some(token.to_owned()));
        } else {
            let cache = state.settings.sessions_cacheable().then_some(&state.cache);
            let account = identity::account_for_access_token(&state.db, &state.tokens, cache, token).await?;
            viewer.account = Some(AccountViewer {
                id: account.id,
                session_id: Some(account.session_id),
                email: account.email,
                display_name: account.display_name,
                roles: identity::Role::parse_list(&account.roles),
                memberships: account.memberships,
                granted: Default::default(),
            });
        }
    }
    if let Some(secret) = key_secret {
        let key = identity::api_key_for_secret(&state.db, &secret).await?;
        let mut scopes = identity::ApiScope::parse_list(&key.scopes);
        if key.publishable {
            // The database refuses other scopes on publishable keys; this keeps it so in memory.
            scopes.retain(|s| s.is_publishable());
            if let Some(origin) = sender.cross_origin()
                && !identity::origins_of(&key).iter().any(|o| o == origin)
            {
                return Err(AppError::forbidden(
                    "ORIGIN_NOT_ALLOWED",
                    format!(
                        "this publishable key is not bound to the origin {origin}; an admin adds it to the key's allowedOrigins"
                    ),
                ));
            }
        } else if let Some(origin) = sender.cross_origin() {
            return Err(AppError::forbidden(
                "SECRET_KEY_IN_BROWSER",
                format!(
                    "a secret API key was sent from the web page at {origin}: secret keys belong on servers. \
                     Ask for a publishable key bound to {origin}, and have this key revoked, since its secret is now exposed"
                ),
            ));
        }
        viewer.partner = Some(PartnerViewer { key_id: key.id, name: key.name, scopes, publishable: key.publishable });
    }
    Ok(viewer)
}

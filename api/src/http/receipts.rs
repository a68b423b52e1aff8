//! The printable receipt: `GET /receipts/<token>`, an HTML page (zh-Hans) behind the
//! unguessable link `receipt.link` gives its donor (see `service::receipts`). Whoever holds the
//! link may read it, so it is never stored by shared caches, never indexed, and sends no
//! `Referer` onwards; a forged or unknown token is 404 like any missing page.
use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Response, handler};

use super::error_response;
use crate::service::receipts;
use crate::state::AppState;

/// What every answer of this route carries, the 404 included.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "private, no-store"),
        (header::HeaderName::from_static("x-robots-tag"), "noindex, nofollow"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

#[handler]
pub(super) async fn printable(Path(token): Path<String>, state: poem::web::Data<&AppState>) -> Response {
    match receipts::by_token(&state.db, &state.settings, &token).await {
        Ok(Some(receipt)) => {
            private(Response::builder().content_type("text/html; charset=utf-8").body(receipts::render_html(&receipt)))
        }
        Ok(None) => private(error_response(StatusCode::NOT_FOUND, "no such receipt", "NOT_FOUND")),
        Err(error) => {
            tracing::error!(?error, "the printable receipt failed");
            private(super::service_error_response(&error))
        }
    }
}

//! Payment platforms' notifications, answered as each platform expects:
//!
//! - `POST /payments/notify/wechatpay` (WeChat Pay API v3): 204 once recorded (or known);
//!   otherwise 4xx/5xx with `{"code":"FAIL","message":"…"}` (the platform resends for hours);
//! - `POST /payments/notify/alipay` (form-encoded): the text `success`, else `failure`.
//!
//! Verification and recording are one service command ([`payments::notify`]); a platform
//! whose keys are not configured answers 503.
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::json;

use crate::service::payments::{self, Notification, NotifyError, NotifyOutcome, Rejection};
use crate::state::AppState;

/// A notification is a few kilobytes.
const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

fn status_of(error: &NotifyError) -> StatusCode {
    match error {
        NotifyError::Refused { rejection: Rejection::NotConfigured, .. } => StatusCode::SERVICE_UNAVAILABLE,
        NotifyError::Refused { rejection: Rejection::BadSignature | Rejection::Stale, .. } => StatusCode::UNAUTHORIZED,
        NotifyError::Refused { rejection: Rejection::Malformed, .. } => StatusCode::BAD_REQUEST,
        NotifyError::Failed(crate::error::AppError::BadUserInput(_)) => StatusCode::BAD_REQUEST,
        NotifyError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs what a notification did; internal errors in full (their answer has no detail).
fn logged(provider: &str, result: &Result<NotifyOutcome, NotifyError>) {
    match result {
        Ok(outcome) => tracing::info!(provider, outcome = outcome.as_str(), "payment notification"),
        Err(NotifyError::Failed(error)) => tracing::error!(provider, ?error, "payment notification failed"),
        Err(error) => tracing::warn!(provider, %error, "payment notification refused"),
    }
}

#[handler]
pub(super) async fn wechatpay(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let fail = |status: StatusCode, message: &str| {
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(json!({ "code": "FAIL", "message": message }).to_string())
    };
    let body = match read(body, &state).await {
        Ok(body) => body,
        Err(status) => return fail(status, "the notification is too large or too slow to arrive"),
    };
    let header = |name: &str| req.header(name).unwrap_or_default();
    let notification = Notification::WechatPay {
        timestamp: header("Wechatpay-Timestamp"),
        nonce: header("Wechatpay-Nonce"),
        signature: header("Wechatpay-Signature"),
        serial: header("Wechatpay-Serial"),
        body: &body,
    };
    let address = crate::proxy::Client::of(req).address_text();
    let result = payments::notify(state.ctx(), notification, Some(address)).await;
    logged("WECHAT_PAY", &result);
    match result {
        Ok(_) => Response::builder().status(StatusCode::NO_CONTENT).finish(),
        Err(error) => fail(status_of(&error), &error.to_string()),
    }
}

#[handler]
pub(super) async fn alipay(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let failure = |status: StatusCode| Response::builder().status(status).content_type("text/plain").body("failure");
    let body = match read(body, &state).await {
        Ok(body) => body,
        Err(status) => return failure(status),
    };
    let params: Vec<(String, String)> = match form_pairs(&body) {
        Some(params) => params,
        None => return failure(StatusCode::BAD_REQUEST),
    };
    let address = crate::proxy::Client::of(req).address_text();
    let result = payments::notify(state.ctx(), Notification::Alipay { params: &params }, Some(address)).await;
    logged("ALIPAY", &result);
    match result {
        Ok(_) => Response::builder().content_type("text/plain").body("success"),
        Err(error) => failure(status_of(&error)),
    }
}

/// The body, within the size limit and the body read timeout (these routes take anyone's
/// requests: a slow sender must not hold a connection).
async fn read(body: Body, state: &AppState) -> Result<Vec<u8>, StatusCode> {
    match tokio::time::timeout(state.settings.limits.body_read_timeout, body.into_bytes_limit(MAX_NOTIFICATION_BYTES))
        .await
    {
        Ok(Ok(body)) => Ok(body.to_vec()),
        Ok(Err(_)) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space); `None` if not UTF-8.
fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let decode = |raw: &str| -> Option<String> {
        let raw = raw.replace('+', " ");
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

//! Payment notifications: a payment platform tells us that money arrived for an order.
//!
//! Each platform has its verifier ([`Notification::verify`]): WeChat Pay API v3
//! (`Wechatpay-Signature`, SHA256withRSA over `timestamp\nnonce\nbody\n` with the platform
//! public key, a timestamp window, then `resource` decrypted with AEAD_AES_256_GCM and the
//! APIv3 key) and Alipay's asynchronous notification (RSA2, SHA256withRSA over the
//! parameters sorted by name without `sign` and `sign_type`, with the Alipay public key).
//! A verified [`Payment`] feeds one command, [`record_payment`], whatever the platform:
//!
//! - the order (`out_trade_no`) is matched to a pledge as statement lines are
//!   ([`statements::plan`]: by external reference, else by client key, the amount equal); a
//!   client key several pledges share (keys are unique per client only) matches none;
//! - a match is recorded as `recordDonationPayment` records it ([`cf::receive_in`]): a live
//!   pledge is confirmed with its receipt number, money for an expired or cancelled pledge or a
//!   cancelled campaign is held for staff; its events are written in the same transaction, the
//!   actor being the platform (a `SYSTEM` actor);
//! - every verified notification is kept once per platform and transaction
//!   (`payment_notifications`, unique), so a resent notification changes nothing;
//! - an amount that differs from the pledge's, an order no pledge has, or money in another
//!   currency than yuan (pledges are in fen) confirms nothing: it is kept with the outcome
//!   `AMOUNT_DIFFERS` / `UNKNOWN_REFERENCE` / `OTHER_CURRENCY` for staff (and answered as
//!   received, so the platform stops resending what a retry cannot change).
//!
//! A notification that fails verification is refused before anything is read or written.
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use entity::payment_notification;
use rsa::PublicKey;
use rsa::sha2::Sha256;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde::Deserialize;

use super::crowdfunding::{self as cf, Arrival, PaymentOutcome};
use super::statements::{self, LineAction, Mismatch, StatementLine};
use super::{Ctx, retry_transient};
use crate::config::PaymentSettings;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, ActorKind};

/// A payment platform that notifies us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    WechatPay,
    Alipay,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::WechatPay => "WECHAT_PAY",
            Provider::Alipay => "ALIPAY",
        }
    }

    fn job(self) -> &'static str {
        match self {
            Provider::WechatPay => "wechatpay-notify",
            Provider::Alipay => "alipay-notify",
        }
    }
}

/// A notification as it arrived, before verification.
pub enum Notification<'a> {
    /// WeChat Pay API v3: the four `Wechatpay-*` headers and the JSON body as sent.
    WechatPay { timestamp: &'a str, nonce: &'a str, signature: &'a str, serial: &'a str, body: &'a [u8] },
    /// Alipay: the form parameters, decoded.
    Alipay { params: &'a [(String, String)] },
}

/// A payment a platform vouched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub provider: Provider,
    /// The platform's transaction ID (WeChat Pay `transaction_id`, Alipay `trade_no`).
    pub transaction_id: String,
    /// The merchant's order number the payment was made for.
    pub out_trade_no: String,
    /// In the currency's smallest unit: fen when `currency` is `CNY`.
    pub amount_fen: i64,
    /// ISO 4217, as the platform names it (`CNY` when it names none).
    pub currency: String,
}

/// The currency pledges are made in.
const PLEDGE_CURRENCY: &str = "CNY";

fn pledge_currency() -> String {
    PLEDGE_CURRENCY.to_owned()
}

/// What a verified notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    Paid(Payment),
    /// A notification about something other than a completed payment (an Alipay trade
    /// waiting or closed): acknowledged, nothing recorded.
    NotAPayment,
}

/// Why a notification is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The platform's keys are not configured here.
    NotConfigured,
    /// The signature does not verify, or names another key.
    BadSignature,
    /// The notification's time is outside the window.
    Stale,
    /// Not a notification of this platform (missing fields, undecryptable resource).
    Malformed,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{message}")]
    Refused { rejection: Rejection, message: String },
    #[error(transparent)]
    Failed(#[from] AppError),
}

fn refuse(rejection: Rejection, message: impl Into<String>) -> NotifyError {
    NotifyError::Refused { rejection, message: message.into() }
}

/// What recording a payment did (kept as the notification's outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// The pledge counts now, with its receipt number.
    Confirmed,
    /// The money is recorded and held for staff (expired or cancelled pledge, cancelled campaign).
    Held,
    /// The pledge's money was recorded before (by a statement, staff, another transaction).
    AlreadyRecorded,
    /// The amount is not the pledge's: nothing confirmed, kept for staff.
    AmountDiffers,
    /// The money is in another currency than the pledge's yuan: nothing confirmed, kept for staff.
    OtherCurrency,
    /// No pledge has this order number: kept for staff.
    UnknownReference,
    /// This transaction was notified before: nothing changed.
    Duplicate,
    /// Not a completed payment: nothing recorded.
    NotAPayment,
}

impl NotifyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOutcome::Confirmed => "CONFIRMED",
            NotifyOutcome::Held => "HELD",
            NotifyOutcome::AlreadyRecorded => "ALREADY_RECORDED",
            NotifyOutcome::AmountDiffers => "AMOUNT_DIFFERS",
            NotifyOutcome::OtherCurrency => "OTHER_CURRENCY",
            NotifyOutcome::UnknownReference => "UNKNOWN_REFERENCE",
            NotifyOutcome::Duplicate => "DUPLICATE",
            NotifyOutcome::NotAPayment => "NOT_A_PAYMENT",
        }
    }
}

/// A public key from configuration: PEM text (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`),
/// a path to a file holding it, or the bare base64 DER Alipay's console shows.
pub fn parse_public_key(value: &str) -> Result<PublicKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let value = value.trim();
    let text = if value.contains("-----BEGIN") {
        value.to_owned()
    } else if std::path::Path::new(value).is_file() {
        std::fs::read_to_string(value).map_err(|e| format!("cannot read {value}: {e}"))?.trim().to_owned()
    } else {
        value.to_owned()
    };
    if text.contains("BEGIN RSA PUBLIC KEY") {
        return PublicKey::from_pkcs1_pem(&text).map_err(|e| format!("not an RSA public key: {e}"));
    }
    if text.contains("-----BEGIN") {
        return PublicKey::from_public_key_pem(&text).map_err(|e| format!("not an RSA public key: {e}"));
    }
    let der: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(der).map_err(|_| "expected PEM text, a file path or base64 DER".to_owned())?;
    PublicKey::from_public_key_der(&der).map_err(|e| format!("not an RSA public key: {e}"))
}

fn verify_rsa_sha256(key: &PublicKey, message: &[u8], signature_b64: &str) -> Result<(), NotifyError> {
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| refuse(Rejection::BadSignature, "the signature is not base64"))?;
    key.pkcs1v15_verify::<Sha256>(message, &signature)
        .map_err(|_| refuse(Rejection::BadSignature, "the signature does not verify"))
}

fn within(tolerance: Duration, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(tolerance).is_ok_and(|t| (now - at).abs() <= t)
}

impl Notification<'_> {
    pub fn provider(&self) -> Provider {
        match self {
            Notification::WechatPay { .. } => Provider::WechatPay,
            Notification::Alipay { .. } => Provider::Alipay,
        }
    }

    /// Checks the notification against the platform's keys; nothing is read from the database.
    pub fn verify(&self, keys: &PaymentSettings, now: DateTime<Utc>) -> Result<Verified, NotifyError> {
        match self {
            Notification::WechatPay { timestamp, nonce, signature, serial, body } => {
                verify_wechatpay(keys, timestamp, nonce, signature, serial, body, now)
            }
            Notification::Alipay { params } => verify_alipay(keys, params, now),
        }
    }
}

#[derive(Deserialize)]
struct WechatEnvelope {
    event_type: String,
    resource: WechatResource,
}

#[derive(Deserialize)]
struct WechatResource {
    algorithm: String,
    ciphertext: String,
    #[serde(default)]
    associated_data: String,
    nonce: String,
}

#[derive(Deserialize)]
struct WechatTransaction {
    out_trade_no: String,
    transaction_id: String,
    trade_state: String,
    amount: WechatAmount,
}

#[derive(Deserialize)]
struct WechatAmount {
    total: i64,
    #[serde(default = "pledge_currency")]
    currency: String,
}

fn verify_wechatpay(
    keys: &PaymentSettings,
    timestamp: &str,
    nonce: &str,
    signature: &str,
    serial: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, NotifyError> {
    let (Some(key), Some(apiv3)) = (&keys.wechatpay_public_key, &keys.wechatpay_apiv3_key) else {
        return Err(refuse(Rejection::NotConfigured, "WeChat Pay notifications are not configured on this server"));
    };
    if let Some(expected) = &keys.wechatpay_serial
        && serial.trim() != expected
    {
        return Err(refuse(Rejection::BadSignature, "Wechatpay-Serial names a key this server does not have"));
    }
    let seconds: i64 =
        timestamp.trim().parse().map_err(|_| refuse(Rejection::BadSignature, "Wechatpay-Timestamp is not a number"))?;
    let at = DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| refuse(Rejection::BadSignature, "Wechatpay-Timestamp is out of range"))?;
    if !within(keys.notify_tolerance, at, now) {
        return Err(refuse(Rejection::Stale, "Wechatpay-Timestamp is outside the accepted window"));
    }
    let mut message = Vec::with_capacity(body.len() + timestamp.len() + nonce.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    verify_rsa_sha256(key, &message, signature)?;
    let envelope: WechatEnvelope = serde_json::from_slice(body)
        .map_err(|e| refuse(Rejection::Malformed, format!("not a WeChat Pay notification: {e}")))?;
    if envelope.resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(refuse(Rejection::Malformed, "resource.algorithm is not AEAD_AES_256_GCM"));
    }
    let plain = decrypt_resource(apiv3, &envelope.resource)?;
    if !envelope.event_type.starts_with("TRANSACTION.") {
        return Ok(Verified::NotAPayment);
    }
    let tx: WechatTransaction = serde_json::from_slice(&plain)
        .map_err(|e| refuse(Rejection::Malformed, format!("not a WeChat Pay transaction: {e}")))?;
    if tx.trade_state != "SUCCESS" {
        return Ok(Verified::NotAPayment);
    }
    Ok(Verified::Paid(Payment {
        provider: Provider::WechatPay,
        transaction_id: tx.transaction_id,
        out_trade_no: tx.out_trade_no,
        amount_fen: tx.amount.total,
        currency: tx.amount.currency,
    }))
}

/// AEAD_AES_256_GCM with the APIv3 key, the resource's nonce and associated data; the
/// ciphertext is base64 of the encrypted bytes followed by the 16-byte tag.
fn decrypt_resource(apiv3: &[u8; 32], resource: &WechatResource) -> Result<Vec<u8>, NotifyError> {
    let undecryptable = || refuse(Rejection::Malformed, "resource does not decrypt with the APIv3 key");
    let cipher = Aes256Gcm::new_from_slice(apiv3).map_err(|_| undecryptable())?;
    let nonce = Nonce::try_from(resource.nonce.as_bytes()).map_err(|_| undecryptable())?;
    let ciphertext = STANDARD.decode(&resource.ciphertext).map_err(|_| undecryptable())?;
    cipher
        .decrypt(&nonce, Payload { msg: &ciphertext, aad: resource.associated_data.as_bytes() })
        .map_err(|_| undecryptable())
}

/// The text Alipay signs: every parameter but `sign` and `sign_type`, empty ones left out,
/// sorted by name, joined as `k=v&k=v` (values decoded).
pub fn alipay_signed_content(params: &[(String, String)]) -> String {
    let mut kept: Vec<&(String, String)> =
        params.iter().filter(|(k, v)| k != "sign" && k != "sign_type" && !v.is_empty()).collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn verify_alipay(
    keys: &PaymentSettings,
    params: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Verified, NotifyError> {
    let Some(key) = &keys.alipay_public_key else {
        return Err(refuse(Rejection::NotConfigured, "Alipay notifications are not configured on this server"));
    };
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if get("sign_type").is_some_and(|t| t != "RSA2") {
        return Err(refuse(Rejection::BadSignature, "sign_type is not RSA2"));
    }
    let sign = get("sign").ok_or_else(|| refuse(Rejection::BadSignature, "sign is missing"))?;
    verify_rsa_sha256(key, alipay_signed_content(params).as_bytes(), sign)?;
    // The time Alipay sent this notification, at the base (UTC+8); each resend has its own.
    let sent = get("notify_time")
        .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
        .map(crate::time::from_base_local)
        .ok_or_else(|| refuse(Rejection::Malformed, "notify_time (yyyy-MM-dd HH:mm:ss) is missing"))?;
    if !within(keys.notify_tolerance, sent, now) {
        return Err(refuse(Rejection::Stale, "notify_time is outside the accepted window"));
    }
    if let Some(expected) = &keys.alipay_app_id
        && get("app_id") != Some(expected.as_str())
    {
        return Err(refuse(Rejection::BadSignature, "app_id is not this server's application"));
    }
    if !matches!(get("trade_status"), Some("TRADE_SUCCESS" | "TRADE_FINISHED")) {
        return Ok(Verified::NotAPayment);
    }
    let field = |name: &str| {
        get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| refuse(Rejection::Malformed, format!("{name} is missing")))
    };
    // Cross-border trades name the currency the buyer paid in; a domestic one names none.
    let currency = get("trans_currency").filter(|c| !c.is_empty()).unwrap_or(PLEDGE_CURRENCY).to_owned();
    let amount = field("total_amount")?;
    let amount_fen = statements::parse_yuan(&amount)
        .ok_or_else(|| refuse(Rejection::Malformed, format!("total_amount {amount:?} is not an amount")))?;
    Ok(Verified::Paid(Payment {
        provider: Provider::Alipay,
        transaction_id: field("trade_no")?,
        out_trade_no: field("out_trade_no")?,
        amount_fen,
        currency,
    }))
}

/// Command: verifies a notification and records its payment (see the module). The actor is
/// the platform (`SYSTEM`, labelled by the platform, with the sender's address).
pub async fn notify(
    ctx: Ctx<'_>,
    notification: Notification<'_>,
    address: Option<String>,
) -> Result<NotifyOutcome, NotifyError> {
    let provider = notification.provider();
    match notification.verify(&ctx.settings.payments, super::now())? {
        Verified::NotAPayment => Ok(NotifyOutcome::NotAPayment),
        Verified::Paid(payment) => {
            let actor = Actor { kind: ActorKind::System, id: None, label: Some(provider.job().to_owned()), address };
            Ok(record_payment(ctx, &actor, &payment).await?)
        }
    }
}

/// Whether this platform's transaction is kept already.
async fn known(ctx: Ctx<'_>, payment: &Payment) -> AppResult<bool> {
    let found = payment_notification::Entity::find()
        .filter(payment_notification::Column::Provider.eq(payment.provider.as_str()))
        .filter(payment_notification::Column::TransactionId.eq(payment.transaction_id.as_str()))
        .one(ctx.db)
        .await?;
    Ok(found.is_some())
}

/// Records a verified payment once per platform transaction: matched as a statement line,
/// recorded as `recordDonationPayment` records money, kept with its outcome.
pub async fn record_payment(ctx: Ctx<'_>, actor: &Actor, payment: &Payment) -> AppResult<NotifyOutcome> {
    let too_long = |v: &str, n: usize| v.is_empty() || v.chars().count() > n;
    if too_long(&payment.transaction_id, 64) || too_long(&payment.out_trade_no, 128) {
        return Err(AppError::bad_input("out_trade_no", "transaction and order numbers are 1 to 64/128 characters"));
    }
    if known(ctx, payment).await? {
        return Ok(NotifyOutcome::Duplicate);
    }
    retry_transient(|| record_once(ctx, actor, payment)).await
}

async fn record_once(ctx: Ctx<'_>, actor: &Actor, payment: &Payment) -> AppResult<NotifyOutcome> {
    let now = super::now();
    let line = StatementLine {
        line_id: Some(payment.transaction_id.clone()),
        reference: Some(payment.out_trade_no.clone()),
        client_key: Some(payment.out_trade_no.clone()),
        amount_fen: payment.amount_fen,
        campaign_id: None,
        payer_name: None,
    };
    // A client key is unique per client only: an order number that is no pledge's external
    // reference and the client key of several pledges names none of them (the plan's rule).
    let planned = statements::plan(ctx.db, vec![line], None, false, ctx.settings.pledge_ttl, now)
        .await?
        .pop()
        .ok_or_else(|| AppError::Internal("a plan of one line is one line".into()))?;
    let txn = ctx.db.begin().await?;
    let (outcome, appended) = match (planned.action, planned.donation_id) {
        // The amount is in another unit than the pledge's: whatever it matched, it is not that.
        _ if !payment.currency.eq_ignore_ascii_case(PLEDGE_CURRENCY) => {
            (NotifyOutcome::OtherCurrency, crate::events::Appended::default())
        }
        (LineAction::Confirm | LineAction::Hold, Some(id)) => {
            let reference = Some(payment.out_trade_no.clone());
            let (_, recorded, appended) = cf::receive_in(&txn, ctx, actor, id, reference, Arrival::Payment).await?;
            let outcome = match recorded {
                PaymentOutcome::Confirmed => NotifyOutcome::Confirmed,
                PaymentOutcome::Held(_) => NotifyOutcome::Held,
                PaymentOutcome::AlreadyRecorded => NotifyOutcome::AlreadyRecorded,
            };
            (outcome, appended)
        }
        _ => {
            let outcome = match planned.reason {
                Some(Mismatch::AmountDiffers) => NotifyOutcome::AmountDiffers,
                Some(Mismatch::AlreadyConfirmed) => NotifyOutcome::AlreadyRecorded,
                _ => NotifyOutcome::UnknownReference,
            };
            (outcome, crate::events::Appended::default())
        }
    };
    // Last, so that of two deliveries of one transaction at once the second waits here for
    // the first and then finds it (the unique index), and everything it did rolls back.
    let kept = payment_notification::ActiveModel {
        provider: Set(payment.provider.as_str().to_owned()),
        transaction_id: Set(payment.transaction_id.clone()),
        out_trade_no: Set(payment.out_trade_no.clone()),
        amount_fen: Set(payment.amount_fen),
        donation_id: Set(planned.donation_id),
        outcome: Set(outcome.as_str().to_owned()),
        received_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    match kept {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(NotifyOutcome::Duplicate);
        }
        Err(e) => return Err(e.into()),
    }
    ctx.finish(txn, appended).await?;
    Ok(outcome)
}

/// Notifications kept, newest first, optionally only those with one of `outcomes` (staff look
/// at `AMOUNT_DIFFERS` and `UNKNOWN_REFERENCE`).
pub async fn kept(
    db: &impl sea_orm::ConnectionTrait,
    outcomes: &[NotifyOutcome],
    page: super::pagination::PageRequest<'_>,
) -> AppResult<super::pagination::Page<payment_notification::Model>> {
    use super::pagination::{SortDirection, SortKey};
    let key = SortKey::<payment_notification::Entity>::time(
        payment_notification::Column::ReceivedAt,
        payment_notification::Column::Id,
        SortDirection::Desc,
    );
    let mut select = payment_notification::Entity::find();
    if !outcomes.is_empty() {
        select = select.filter(payment_notification::Column::Outcome.is_in(outcomes.iter().map(|o| o.as_str())));
    }
    super::pagination::paginate(db, select, &key, page).await
}

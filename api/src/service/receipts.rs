//! Receipts for every donor: guests' contacts kept as keyed digests, receipt lookups by number
//! and contact, the printable receipt's unguessable link, and statements for a period.
//!
//! - **Guests' contacts.** A guest named by phone or email when their donation is recorded
//!   (a partner key or staff) is kept only as an HMAC-SHA256 of the normalized contact under a
//!   key derived from the receipt secret (`INCUBASE_RECEIPT_SECRET`): the database can tell
//!   whether a contact is the one given, and nothing more — no phone number to purge, none in
//!   the event log, nothing a leaked dump reveals without the secret.
//! - **Lookups.** By receipt number and contact, anonymous, limited per receipt number and per
//!   client address; an unknown number and a wrong contact get the same answer (`None`).
//! - **Links.** A receipt's printable page is `/receipts/<token>`, the token being the
//!   donation id and a 128-bit HMAC of it under another derived key: unguessable, nothing
//!   stored, the same link every time it is asked for.
//! - **Statements.** Donations confirmed in a period, each with what was refunded of it so far
//!   subtracted, summed exactly in fen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use entity::donation::{self, DonationStatus};
use entity::{campaign, organization};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::Sha256;

use super::identity::SignInLimiter;
use crate::auth::Viewer;
use crate::config::Settings;
use crate::error::{AppError, AppResult};

/// The longest period of one statement (about three years, as `myDonationSummary`).
pub const MAX_STATEMENT_DAYS: i64 = 3 * 366;
/// Lines one statement lists; its totals always cover every donation of the period.
pub const MAX_STATEMENT_LINES: u64 = 500;

/// How a guest was named when their donation was recorded.
#[derive(Clone, Debug, Default)]
pub struct GuestContact {
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl GuestContact {
    pub fn is_empty(&self) -> bool {
        self.phone.as_deref().is_none_or(|p| p.trim().is_empty())
            && self.email.as_deref().is_none_or(|e| e.trim().is_empty())
    }
}

/// A contact as compared: a normalized phone or email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// Digits only; a mainland number without its `+86`/`0086`/`86` prefix.
    Phone(String),
    /// Trimmed and lowercased.
    Email(String),
}

/// `+86 138-0013-8000`, `0086 13800138000` and `13800138000` are one number; other
/// international numbers keep their country code (without `+` or `00`).
pub fn normalize_phone(raw: &str) -> Option<String> {
    let p = raw.trim();
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) {
        return None;
    }
    let mut digits: String = p.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("00") {
        digits = rest.to_owned();
    }
    if digits.len() == 13 && digits.starts_with("861") {
        digits = digits[2..].to_owned();
    }
    (5..=20).contains(&digits.len()).then_some(digits)
}

pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// A contact as a guest types it: an email if it has an `@`, otherwise a phone.
pub fn parse_contact(raw: &str) -> Option<Contact> {
    if raw.contains('@') { normalize_email(raw).map(Contact::Email) } else { normalize_phone(raw).map(Contact::Phone) }
}

fn secret(settings: &Settings) -> AppResult<&[u8]> {
    settings
        .receipt_secret
        .as_deref()
        .map(str::as_bytes)
        .ok_or_else(|| AppError::Internal("the receipt secret was not resolved at start-up".into()))
}

/// A key of its own per purpose, derived from the receipt secret.
fn keyed(settings: &Settings, purpose: &str) -> AppResult<Hmac<Sha256>> {
    let mut derive = Hmac::<Sha256>::new_from_slice(secret(settings)?)
        .map_err(|e| AppError::Internal(format!("receipt key: {e}")))?;
    derive.update(format!("incubase receipts v1: {purpose}").as_bytes());
    let key = derive.finalize().into_bytes();
    Hmac::<Sha256>::new_from_slice(&key).map_err(|e| AppError::Internal(format!("receipt key: {e}")))
}

/// The stored digest of a contact (hex HMAC-SHA256).
pub fn contact_digest(settings: &Settings, contact: &Contact) -> AppResult<String> {
    let mut mac = keyed(settings, "guest contact")?;
    match contact {
        Contact::Phone(p) => mac.update(format!("phone:{p}").as_bytes()),
        Contact::Email(e) => mac.update(format!("email:{e}").as_bytes()),
    }
    Ok(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

/// The digests a guest's donation keeps: `(phone, email)`. A contact given in a bad shape is
/// `BAD_USER_INPUT` (fields `guestPhone`, `guestEmail`).
pub fn digests_of(settings: &Settings, contact: &GuestContact) -> AppResult<(Option<String>, Option<String>)> {
    let phone = digest_given(settings, contact.phone.as_deref(), "guestPhone", "a phone number", |raw| {
        normalize_phone(raw).map(Contact::Phone)
    })?;
    let email = digest_given(settings, contact.email.as_deref(), "guestEmail", "an email address", |raw| {
        normalize_email(raw).map(Contact::Email)
    })?;
    Ok((phone, email))
}

/// The digest of one contact field when it was given (not blank); `BAD_USER_INPUT` on `field`
/// when it is not `what` it should be.
fn digest_given(
    settings: &Settings,
    raw: Option<&str>,
    field: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<Contact>,
) -> AppResult<Option<String>> {
    let Some(raw) = raw.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let contact = parse(raw).ok_or_else(|| AppError::bad_input(field, format!("{field} is not {what}")))?;
    contact_digest(settings, &contact).map(Some)
}

/// Whether `d` was given by the guest named by `contact` (constant-time comparison).
fn given_by(d: &donation::Model, digest: &str, contact: &Contact) -> bool {
    let stored = match contact {
        Contact::Phone(_) => d.guest_phone_digest.as_deref(),
        Contact::Email(_) => d.guest_email_digest.as_deref(),
    };
    stored.is_some_and(|s| {
        s.len() == digest.len() && s.bytes().zip(digest.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

// ------------------------------------------------------------------ links

fn link_tag(settings: &Settings, donation_id: i64) -> AppResult<[u8; 16]> {
    let mut mac = keyed(settings, "receipt link")?;
    mac.update(&donation_id.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full[..16]);
    Ok(tag)
}

/// The printable receipt's token: the donation id and a 128-bit HMAC of it, base64url.
pub fn link_token(settings: &Settings, donation_id: i64) -> AppResult<String> {
    let mut bytes = donation_id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&link_tag(settings, donation_id)?);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The path of the printable receipt, relative to the API's address.
pub fn link_path(settings: &Settings, donation_id: i64) -> AppResult<String> {
    Ok(format!("/receipts/{}", link_token(settings, donation_id)?))
}

/// The donation a token names, if the token is genuine.
pub fn donation_of_token(settings: &Settings, token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if bytes.len() != 24 {
        return None;
    }
    let id = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    let mut mac = keyed(settings, "receipt link").ok()?;
    mac.update(&id.to_be_bytes());
    mac.verify_truncated_left(&bytes[8..]).ok()?;
    Some(id)
}

// ------------------------------------------------------------------ receipts

/// A receipt: the confirmed donation, its campaign and the organization that raised it.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub donation: donation::Model,
    pub campaign: campaign::Model,
    pub organization_name: String,
}

impl Receipt {
    pub fn number(&self) -> &str {
        self.donation.receipt_number.as_deref().unwrap_or_default()
    }

    /// What is left of the gift after refunds.
    pub fn net_fen(&self) -> i64 {
        (self.donation.amount_fen - self.donation.refunded_fen).max(0)
    }
}

/// Whether `d` has a receipt: a confirmed donation with its number (not a reversing record).
pub fn has_receipt(d: &donation::Model) -> bool {
    d.status == DonationStatus::Confirmed && d.receipt_number.is_some() && d.refund_of_id.is_none()
}

/// The receipts of `donations` (those that have one), with two more statements in all.
pub async fn receipts_of(db: &impl ConnectionTrait, donations: Vec<donation::Model>) -> AppResult<Vec<Receipt>> {
    let donations: Vec<donation::Model> = donations.into_iter().filter(has_receipt).collect();
    if donations.is_empty() {
        return Ok(Vec::new());
    }
    let campaign_ids: Vec<i64> = donations.iter().map(|d| d.campaign_id).collect();
    let campaigns = crate::service::common::by_id(db, campaign::Column::Id, campaign_ids, |c| c.id).await?;
    let org_ids: Vec<i64> = campaigns.values().map(|c| c.organization_id).collect();
    let organizations = crate::service::common::by_id(db, organization::Column::Id, org_ids, |o| o.id).await?;
    Ok(donations
        .into_iter()
        .filter_map(|d| {
            let campaign = campaigns.get(&d.campaign_id)?.clone();
            let organization_name =
                organizations.get(&campaign.organization_id).map(|o| o.name.clone()).unwrap_or_default();
            Some(Receipt { donation: d, campaign, organization_name })
        })
        .collect())
}

pub async fn receipt_of(db: &impl ConnectionTrait, d: donation::Model) -> AppResult<Option<Receipt>> {
    Ok(receipts_of(db, vec![d]).await?.pop())
}

/// Counts one guest lookup against the limits (per receipt number and per client address).
fn count_lookup(limiter: &SignInLimiter, viewer: &Viewer, receipt_number: &str) -> AppResult<()> {
    limiter.check(receipt_number, viewer.address.as_deref().unwrap_or("unknown"))
}

/// The confirmed donation with `receipt_number` if it was given by the guest named by
/// `contact`; `None` for an unknown number, a wrong contact or a contact in a bad shape alike.
async fn proven(
    db: &impl ConnectionTrait,
    settings: &Settings,
    receipt_number: &str,
    contact: &str,
) -> AppResult<Option<(donation::Model, Contact, String)>> {
    let Some(contact) = parse_contact(contact) else { return Ok(None) };
    let digest = contact_digest(settings, &contact)?;
    let found = donation::Entity::find()
        .filter(donation::Column::ReceiptNumber.eq(receipt_number.trim()))
        .one(db)
        .await?
        .filter(|d| has_receipt(d) && given_by(d, &digest, &contact));
    Ok(found.map(|d| (d, contact, digest)))
}

/// `proven`, for a guest's lookup: the receipt number is checked, then counted against the
/// limits (per receipt number and per client address) before anything is read.
async fn proven_within_limits(
    db: &impl ConnectionTrait,
    settings: &Settings,
    limiter: &SignInLimiter,
    viewer: &Viewer,
    receipt_number: &str,
    contact: &str,
) -> AppResult<Option<(donation::Model, Contact, String)>> {
    let number = receipt_number.trim();
    if number.is_empty() || number.len() > 40 {
        return Err(AppError::bad_input("receiptNumber", "receiptNumber is 1 to 40 characters"));
    }
    count_lookup(limiter, viewer, number)?;
    proven(db, settings, number, contact).await
}

/// A guest's receipt by its number and the phone or email they were named by (anyone, within
/// the limits). The same `None` for an unknown number and a wrong contact.
pub async fn lookup(
    db: &impl ConnectionTrait,
    settings: &Settings,
    limiter: &SignInLimiter,
    viewer: &Viewer,
    receipt_number: &str,
    contact: &str,
) -> AppResult<Option<Receipt>> {
    match proven_within_limits(db, settings, limiter, viewer, receipt_number, contact).await? {
        Some((d, _, _)) => receipt_of(db, d).await,
        None => Ok(None),
    }
}

/// The receipt a printable link names; `None` for a forged token or a donation without one.
pub async fn by_token(db: &impl ConnectionTrait, settings: &Settings, token: &str) -> AppResult<Option<Receipt>> {
    let Some(id) = donation_of_token(settings, token) else { return Ok(None) };
    match donation::Entity::find_by_id(id).one(db).await? {
        Some(d) => receipt_of(db, d).await,
        None => Ok(None),
    }
}

// ------------------------------------------------------------------ statements

/// One donation on a statement.
#[derive(Clone, Debug)]
pub struct StatementLine {
    pub donation: donation::Model,
    pub campaign_title: String,
    pub organization_name: String,
}

/// Giving over a period: donations confirmed in `[from, to)`, each less what was refunded of
/// it so far (whenever refunded), summed exactly.
#[derive(Clone, Debug)]
pub struct Statement {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub donation_count: i64,
    pub confirmed_fen: i64,
    pub refunded_fen: i64,
    pub net_fen: i64,
    /// Oldest first, at most `MAX_STATEMENT_LINES`.
    pub lines: Vec<StatementLine>,
    /// More donations than lines (the totals still count them all).
    pub truncated: bool,
    pub generated_at: DateTime<Utc>,
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> AppResult<()> {
    let messages = ("`to` must be after `from`", "a statement covers at most three years");
    crate::service::validate::period((from, to), Duration::days(MAX_STATEMENT_DAYS), "to", messages)
}

/// The statement of the donations `whose` selects: one aggregate and one page of lines (and
/// one statement each for their campaigns and organizations).
async fn statement(
    db: &impl ConnectionTrait,
    whose: Condition,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Statement> {
    use donation::Column as D;
    let scope = Condition::all()
        .add(whose)
        .add(D::Status.eq(DonationStatus::Confirmed))
        .add(D::RefundOfId.is_null())
        .add(D::ConfirmedAt.gte(from))
        .add(D::ConfirmedAt.lt(to));
    let (count, confirmed, refunded) = donation::Entity::find()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .column_as(Expr::cust("CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT)"), "confirmed")
        .column_as(Expr::cust("CAST(COALESCE(SUM(refunded_fen), 0) AS BIGINT)"), "refunded")
        .filter(scope.clone())
        .into_tuple::<(i64, i64, i64)>()
        .one(db)
        .await?
        .unwrap_or_default();
    let rows = donation::Entity::find()
        .filter(scope)
        .order_by_asc(D::ConfirmedAt)
        .order_by_asc(D::Id)
        .limit(MAX_STATEMENT_LINES + 1)
        .all(db)
        .await?;
    let truncated = rows.len() as u64 > MAX_STATEMENT_LINES;
    let rows: Vec<donation::Model> = rows.into_iter().take(MAX_STATEMENT_LINES as usize).collect();
    let lines = receipts_of(db, rows)
        .await?
        .into_iter()
        .map(|r| StatementLine {
            campaign_title: r.campaign.title,
            organization_name: r.organization_name,
            donation: r.donation,
        })
        .collect();
    Ok(Statement {
        from,
        to,
        donation_count: count,
        confirmed_fen: confirmed,
        refunded_fen: refunded,
        net_fen: confirmed - refunded,
        lines,
        truncated,
        generated_at: super::now(),
    })
}

/// The signed-in account's statement for `[from, to)`.
pub async fn account_statement(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Statement> {
    let account = viewer.require_account()?;
    check_period(from, to)?;
    statement(db, Condition::all().add(donation::Column::DonorAccountId.eq(account.id)), from, to).await
}

/// A guest's statement for `[from, to)`: every donation given under `contact`, once the guest
/// proves they are that guest with one receipt number given under it (any year). `None`, the
/// same for an unknown number and a wrong contact, when the proof fails; limited as lookups.
#[allow(clippy::too_many_arguments)]
pub async fn guest_statement(
    db: &impl ConnectionTrait,
    settings: &Settings,
    limiter: &SignInLimiter,
    viewer: &Viewer,
    contact: &str,
    receipt_number: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Option<Statement>> {
    check_period(from, to)?;
    let proof = proven_within_limits(db, settings, limiter, viewer, receipt_number, contact).await?;
    let Some((_, contact, digest)) = proof else { return Ok(None) };
    let column = match contact {
        Contact::Phone(_) => donation::Column::GuestPhoneDigest,
        Contact::Email(_) => donation::Column::GuestEmailDigest,
    };
    let whose = Condition::all().add(donation::Column::DonorAccountId.is_null()).add(column.eq(digest));
    statement(db, whose, from, to).await.map(Some)
}

// ------------------------------------------------------------------ the printable page

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `123456` fen → `1,234.56`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", fen % 100)
}

/// An amount in Chinese capital numerals as receipts write it: `100510` fen →
/// `壹仟零伍元壹角`, `1000000` → `壹万元整`, `5` → `伍分`.
pub fn capital_yuan(fen: i64) -> String {
    const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
    const UNITS: [&str; 4] = ["", "拾", "佰", "仟"];
    const GROUPS: [&str; 4] = ["", "万", "亿", "万亿"];
    let fen = fen.max(0);
    let (yuan, jiao, cents) = (fen / 100, (fen / 10 % 10) as usize, (fen % 10) as usize);
    let mut out = String::new();
    if yuan > 0 {
        let digits: Vec<usize> = yuan.to_string().bytes().map(|b| usize::from(b - b'0')).collect();
        let mut zero = false;
        for (i, d) in digits.iter().enumerate() {
            let pos = digits.len() - 1 - i;
            if *d == 0 {
                zero = true;
            } else {
                if zero {
                    out.push('零');
                    zero = false;
                }
                out.push(DIGITS[*d]);
                out.push_str(UNITS[pos % 4]);
            }
            let group = pos / 4;
            if pos.is_multiple_of(4) && group > 0 && (yuan / 10_i64.pow(4 * group as u32)) % 10_000 > 0 {
                out.push_str(GROUPS[group.min(3)]);
            }
        }
        out.push('元');
    }
    match (jiao, cents) {
        (0, 0) if yuan == 0 => out.push_str("零元整"),
        (0, 0) => out.push('整'),
        _ => {
            if jiao > 0 {
                out.push(DIGITS[jiao]);
                out.push('角');
            } else if yuan > 0 {
                out.push('零');
            }
            if cents > 0 {
                out.push(DIGITS[cents]);
                out.push('分');
            }
        }
    }
    out
}

fn local(t: DateTime<Utc>) -> String {
    crate::time::format_at_base(t, "%Y年%m月%d日 %H:%M")
}

/// The printable receipt (zh-Hans): who gave how much to which campaign and when, with the
/// campaign's public-fundraising qualification and the filing number of its plan.
pub fn render_html(r: &Receipt) -> String {
    let d = &r.donation;
    let donor = if d.donor_name.trim().is_empty() { "匿名捐赠人".to_owned() } else { d.donor_name.clone() };
    let dash = "—".to_owned();
    let mut rows = vec![
        ("收据编号", escape(r.number())),
        ("捐赠人", escape(&donor)),
        ("捐赠金额", format!("人民币 {} 元（大写：{}）", yuan(d.amount_fen), capital_yuan(d.amount_fen))),
    ];
    if d.refunded_fen > 0 {
        rows.push(("已退款", format!("人民币 {} 元", yuan(d.refunded_fen))));
        rows.push(("实际捐赠", format!("人民币 {} 元（大写：{}）", yuan(r.net_fen()), capital_yuan(r.net_fen()))));
    }
    rows.extend([
        ("捐赠时间", d.confirmed_at.map(local).unwrap_or_else(|| dash.clone())),
        ("捐赠项目", escape(&r.campaign.title)),
        ("募捐组织", escape(&r.organization_name)),
        ("公开募捐资格", r.campaign.fundraising_qualification.as_deref().map(escape).unwrap_or_else(|| dash.clone())),
        ("募捐方案备案编号", r.campaign.filing_number.as_deref().map(escape).unwrap_or_else(|| dash.clone())),
    ]);
    let table: String =
        rows.iter().map(|(label, value)| format!("<tr><th>{label}</th><td>{value}</td></tr>\n")).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>捐赠收据 {number}</title>
<style>
body {{ font-family: "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em auto; max-width: 40em; color: #222; }}
h1 {{ text-align: center; letter-spacing: .3em; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: .6em .8em; text-align: left; }}
th {{ width: 10em; background: #f4f4f4; font-weight: normal; }}
p.note {{ font-size: .9em; color: #555; }}
@media print {{ body {{ margin: 0; }} }}
</style>
</head>
<body>
<h1>捐赠收据</h1>
<table>
{table}</table>
<p class="note">感谢您的爱心捐赠。本收据由妇女社会组织孵化基地平台根据已确认的捐赠记录生成{refunded}。</p>
</body>
</html>
"#,
        number = escape(r.number()),
        refunded = if d.refunded_fen > 0 { "，已扣除退款" } else { "" },
    )
}

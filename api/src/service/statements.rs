//! Statement imports: a payment platform's or bank's statement (CSV as WeChat Pay's merchant
//! platform, Alipay or a bank exports it, columns mapped by a named import profile, or a JSON
//! list) matched to pledges and applied.
//!
//! A dry run answers the plan: each line matched to a pledge (by external reference, else by
//! client key, the amount equal) or a mismatch with a stable reason. Applying confirms the
//! matches in batched transactions (each donation its own receipt number, gapless per year),
//! records money for pledges that must not count as held (see `crowdfunding::receive`), and,
//! when staff choose so, records unmatched payments that name a campaign as new confirmed
//! donations. An import is kept with its report and is idempotent by the statement's identity.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::campaign::{self, CampaignStatus};
use entity::donation::{self, DisplayMode, DonationChannel, DonationStatus};
use entity::statement_import;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::crowdfunding::{self as cf, Arrival, PaymentOutcome};
use super::pagination::{self, Page, PageArgs, SortDirection, SortKey, SortValue};
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

/// Lines applied per transaction.
pub const BATCH: usize = 500;
/// Lines in one statement.
pub const MAX_LINES: usize = 20_000;

/// A named way to read a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProfileName {
    WechatPay,
    Alipay,
    BankCsv,
    Json,
}

impl ProfileName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::WechatPay => "WECHAT_PAY",
            ProfileName::Alipay => "ALIPAY",
            ProfileName::BankCsv => "BANK_CSV",
            ProfileName::Json => "JSON",
        }
    }
}

/// How a CSV profile maps columns (by header name; the first name present wins). Profiles are
/// data: a new bank's export is a new value of this, not new code.
#[derive(Clone, Debug)]
pub struct CsvProfile {
    /// The header row is the first row holding this column.
    pub header_marker: &'static str,
    /// Lines starting with any of these are not data (comments, summaries).
    pub skip_prefixes: &'static [&'static str],
    /// Characters trimmed off every value (WeChat Pay prefixes values with a backtick).
    pub trim: &'static [char],
    pub line_id: &'static [&'static str],
    pub reference: &'static [&'static str],
    pub amount_yuan: &'static [&'static str],
    /// A column whose value must be one of `paid_values` for the line to be a payment.
    pub kind: Option<(&'static str, &'static [&'static str])>,
    pub payer: &'static [&'static str],
    pub campaign: &'static [&'static str],
    pub client_key: &'static [&'static str],
    pub channel: DonationChannel,
}

pub fn csv_profile(name: ProfileName) -> Option<CsvProfile> {
    match name {
        ProfileName::WechatPay => Some(CsvProfile {
            header_marker: "交易时间",
            skip_prefixes: &["总交易单数", "`总"],
            trim: &['`', ' ', '\t'],
            line_id: &["微信订单号"],
            reference: &["商户订单号"],
            amount_yuan: &["订单金额", "应结订单金额"],
            kind: Some(("交易状态", &["SUCCESS"])),
            payer: &[],
            campaign: &["商户数据包"],
            client_key: &[],
            channel: DonationChannel::OnlinePlatform,
        }),
        ProfileName::Alipay => Some(CsvProfile {
            header_marker: "支付宝交易号",
            skip_prefixes: &["#"],
            trim: &[' ', '\t'],
            line_id: &["支付宝交易号"],
            reference: &["商户订单号"],
            amount_yuan: &["订单金额（元）", "订单金额(元)", "商家实收（元）"],
            kind: Some(("业务类型", &["交易"])),
            payer: &["对方账户"],
            campaign: &["备注"],
            client_key: &[],
            channel: DonationChannel::OnlinePlatform,
        }),
        ProfileName::BankCsv => Some(CsvProfile {
            header_marker: "流水号",
            skip_prefixes: &["#"],
            trim: &[' ', '\t'],
            line_id: &["流水号"],
            reference: &["附言", "摘要"],
            amount_yuan: &["收入金额", "贷方发生额"],
            kind: None,
            payer: &["对方户名"],
            campaign: &["捐赠项目"],
            client_key: &[],
            channel: DonationChannel::BankTransfer,
        }),
        ProfileName::Json => None,
    }
}

/// One payment of a statement, read by a profile.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatementLine {
    #[serde(default)]
    pub line_id: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub client_key: Option<String>,
    pub amount_fen: i64,
    /// A campaign's global ID, for an unmatched payment that names one.
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub payer_name: Option<String>,
}

/// "12.30", "¥1,234.5", "8" → fen, exactly (no floating point).
pub fn parse_yuan(raw: &str) -> Option<i64> {
    let cleaned: String = raw.chars().filter(|c| !matches!(c, '¥' | '￥' | ',' | ' ')).collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(frac)
}

/// Splits one CSV record (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn bad_line(n: usize, message: impl std::fmt::Display) -> AppError {
    AppError::rule("content", "MALFORMED_STATEMENT", format!("line {n}: {message}"))
}

/// Reads a statement into its payment lines (lines that are no payment, such as refunds on a
/// platform's export, are left out).
pub fn parse(profile: ProfileName, content: &str) -> AppResult<Vec<StatementLine>> {
    let lines = match csv_profile(profile) {
        None => serde_json::from_str::<Vec<StatementLine>>(content)
            .map_err(|e| AppError::rule("content", "MALFORMED_STATEMENT", format!("not a JSON list of lines: {e}")))?,
        Some(p) => parse_csv(&p, content)?,
    };
    if lines.len() > MAX_LINES {
        return Err(AppError::rule("content", "STATEMENT_TOO_LARGE", format!("at most {MAX_LINES} lines")));
    }
    Ok(lines)
}

fn parse_csv(p: &CsvProfile, content: &str) -> AppResult<Vec<StatementLine>> {
    let content = content.trim_start_matches('\u{feff}');
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || p.skip_prefixes.iter().any(|s| line.trim_start().starts_with(s)) {
            continue;
        }
        let fields: Vec<String> =
            csv_fields(line).into_iter().map(|f| f.trim_matches(|c| p.trim.contains(&c)).to_owned()).collect();
        let Some(names) = &header else {
            if fields.iter().any(|f| f == p.header_marker) {
                header = Some(fields);
            }
            continue;
        };
        let get = |candidates: &[&str]| -> Option<String> {
            candidates.iter().find_map(|c| {
                names.iter().position(|n| n == c).and_then(|i| fields.get(i)).filter(|v| !v.is_empty()).cloned()
            })
        };
        if let Some((column, paid)) = p.kind
            && !get(&[column]).is_some_and(|v| paid.contains(&v.as_str()))
        {
            continue;
        }
        let Some(amount) = get(p.amount_yuan) else {
            // Outgoing lines of a bank statement have no income.
            continue;
        };
        let amount_fen = parse_yuan(&amount).ok_or_else(|| bad_line(n, format!("{amount:?} is not an amount")))?;
        out.push(StatementLine {
            line_id: get(p.line_id),
            reference: get(p.reference),
            client_key: get(p.client_key),
            amount_fen,
            campaign_id: get(p.campaign),
            payer_name: get(p.payer),
        });
    }
    if header.is_none() {
        return Err(AppError::rule(
            "content",
            "MALFORMED_STATEMENT",
            format!("no header row (a row with the column {})", p.header_marker),
        ));
    }
    Ok(out)
}

/// What applying a line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineAction {
    /// Confirms the matched pledge.
    Confirm,
    /// Records the money for a pledge that must not count (held for staff).
    Hold,
    /// Records a new confirmed donation to the campaign the line names.
    Create,
    /// Nothing.
    Skip,
}

/// Why a line is not a plain match (stable names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mismatch {
    AmountDiffers,
    UnknownReference,
    AlreadyConfirmed,
    CampaignNotActive,
    DuplicateLine,
    /// Matched a pledge whose time ran out: the money is held as a late payment.
    PledgeExpired,
    /// Matched a cancelled pledge: the money is held.
    PledgeCancelled,
}

/// One line of the plan and of the kept report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedLine {
    pub line: usize,
    pub line_id: Option<String>,
    pub reference: Option<String>,
    pub amount_fen: i64,
    pub action: LineAction,
    pub reason: Option<Mismatch>,
    pub donation_id: Option<i64>,
    pub campaign_id: Option<i64>,
    /// The receipt number a confirmation got (after applying).
    #[serde(default)]
    pub receipt_number: Option<String>,
    #[serde(skip)]
    pub payer_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub lines: i64,
    pub confirmed: i64,
    pub held: i64,
    pub created: i64,
    pub mismatches: i64,
    pub confirmed_fen: i64,
}

impl Totals {
    pub fn of(lines: &[PlannedLine]) -> Self {
        let mut t = Totals { lines: lines.len() as i64, ..Default::default() };
        for l in lines {
            match l.action {
                LineAction::Confirm => t.confirmed += 1,
                LineAction::Hold => t.held += 1,
                LineAction::Create => t.created += 1,
                LineAction::Skip => {}
            }
            if matches!(l.action, LineAction::Confirm | LineAction::Create) {
                t.confirmed_fen += l.amount_fen;
            }
            if l.reason.is_some() {
                t.mismatches += 1;
            }
        }
        t
    }
}

/// The outcome of an import (or its dry run).
#[derive(Clone, Debug)]
pub struct ImportReport {
    pub dry_run: bool,
    /// The statement was imported before: nothing changed, this is that import.
    pub already_imported: bool,
    pub import: Option<statement_import::Model>,
    pub lines: Vec<PlannedLine>,
    pub totals: Totals,
}

#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub profile: ProfileName,
    pub content: String,
    /// The platform's or bank's ID of the statement (its bill date and account, its file
    /// name…); without it the statement is known by its content's SHA-256.
    pub statement_id: Option<String>,
    pub dry_run: bool,
    /// Record unmatched payments that name an active campaign as new confirmed donations.
    pub create_unmatched: bool,
}

fn identity(req: &ImportRequest) -> AppResult<String> {
    match req.statement_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            if id.chars().count() > 150 || id.chars().any(char::is_control) {
                return Err(AppError::bad_input("statementId", "statementId is 1 to 150 printable characters"));
            }
            Ok(format!("{}:{id}", req.profile.as_str()))
        }
        _ => Ok(format!("sha256:{}", super::identity::sha256_hex(&req.content))),
    }
}

/// Matches lines to donations: three statements whatever the statement's size (by reference,
/// by client key, the campaigns named).
pub async fn plan(
    db: &impl ConnectionTrait,
    lines: &[StatementLine],
    create_unmatched: bool,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<Vec<PlannedLine>> {
    let references: HashSet<&str> = lines.iter().filter_map(|l| l.reference.as_deref()).collect();
    let keys: HashSet<&str> = lines.iter().filter_map(|l| l.client_key.as_deref()).collect();
    let line_keys: HashSet<String> = lines.iter().filter_map(line_key).collect();
    let mut found: Vec<donation::Model> = Vec::new();
    for chunk in references.into_iter().collect::<Vec<_>>().chunks(BATCH) {
        found.extend(
            donation::Entity::find()
                .filter(donation::Column::ExternalReference.is_in(chunk.iter().copied()))
                .filter(donation::Column::RefundOfId.is_null())
                .all(db)
                .await?,
        );
    }
    for chunk in keys.into_iter().collect::<Vec<_>>().chunks(BATCH) {
        found.extend(
            donation::Entity::find().filter(donation::Column::ClientKey.is_in(chunk.iter().copied())).all(db).await?,
        );
    }
    for chunk in line_keys.iter().collect::<Vec<_>>().chunks(BATCH) {
        found.extend(
            donation::Entity::find()
                .filter(donation::Column::ClientScope.eq(CREATED_SCOPE))
                .filter(donation::Column::ClientKey.is_in(chunk.iter().map(|s| s.as_str())))
                .all(db)
                .await?,
        );
    }
    // A reference may name several records over time; the live one wins.
    let rank = |d: &donation::Model| match d.status {
        DonationStatus::Pledged | DonationStatus::Expired | DonationStatus::Cancelled => 0,
        _ => 1,
    };
    let mut by_reference: HashMap<String, donation::Model> = HashMap::new();
    let mut by_key: HashMap<String, donation::Model> = HashMap::new();
    let mut created: HashMap<String, donation::Model> = HashMap::new();
    for d in found {
        if d.client_scope.as_deref() == Some(CREATED_SCOPE)
            && let Some(k) = &d.client_key
        {
            created.insert(k.clone(), d.clone());
        }
        if let Some(r) = &d.external_reference {
            let keep = by_reference.get(r).is_none_or(|e| rank(&d) < rank(e));
            if keep {
                by_reference.insert(r.clone(), d.clone());
            }
        }
        if let Some(k) = &d.client_key {
            by_key.insert(k.clone(), d);
        }
    }
    let mut campaign_ids: HashSet<i64> = by_reference.values().chain(by_key.values()).map(|d| d.campaign_id).collect();
    let named: HashMap<usize, i64> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let gid = l.campaign_id.as_deref()?;
            campaign_row(gid).map(|id| (i, id))
        })
        .collect();
    campaign_ids.extend(named.values().copied());
    let campaigns: HashMap<i64, campaign::Model> = campaign::Entity::find()
        .filter(campaign::Column::Id.is_in(campaign_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();

    let mut seen: HashSet<String> = HashSet::new();
    let mut planned_donations: HashSet<i64> = HashSet::new();
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let mut p = PlannedLine {
            line: i + 1,
            line_id: l.line_id.clone(),
            reference: l.reference.clone(),
            amount_fen: l.amount_fen,
            action: LineAction::Skip,
            reason: None,
            donation_id: None,
            campaign_id: None,
            receipt_number: None,
            payer_name: l.payer_name.clone(),
        };
        let identity = line_key(l);
        if let Some(k) = &identity
            && !seen.insert(k.clone())
        {
            p.reason = Some(Mismatch::DuplicateLine);
            out.push(p);
            continue;
        }
        let matched = l
            .reference
            .as_ref()
            .and_then(|r| by_reference.get(r))
            .or_else(|| l.client_key.as_ref().and_then(|k| by_key.get(k)))
            .or_else(|| identity.as_ref().and_then(|k| created.get(k)));
        match matched {
            Some(d) => {
                p.donation_id = Some(d.id);
                p.campaign_id = Some(d.campaign_id);
                let cancelled = campaigns.get(&d.campaign_id).is_some_and(|c| c.status == CampaignStatus::Cancelled);
                (p.action, p.reason) = if !planned_donations.insert(d.id) {
                    (LineAction::Skip, Some(Mismatch::DuplicateLine))
                } else if d.amount_fen != l.amount_fen {
                    (LineAction::Skip, Some(Mismatch::AmountDiffers))
                } else {
                    match d.status {
                        DonationStatus::Confirmed | DonationStatus::Received => {
                            (LineAction::Skip, Some(Mismatch::AlreadyConfirmed))
                        }
                        DonationStatus::Refunded | DonationStatus::Returned => {
                            (LineAction::Skip, Some(Mismatch::UnknownReference))
                        }
                        _ if cancelled => (LineAction::Hold, Some(Mismatch::CampaignNotActive)),
                        DonationStatus::Cancelled => (LineAction::Hold, Some(Mismatch::PledgeCancelled)),
                        _ if cf::pledge_expired(d, ttl, now) => (LineAction::Hold, Some(Mismatch::PledgeExpired)),
                        _ => (LineAction::Confirm, None),
                    }
                };
            }
            None => match named.get(&i).and_then(|id| campaigns.get(id)) {
                Some(c) if create_unmatched => {
                    p.campaign_id = Some(c.id);
                    if cf::accepting_donations(c, now).is_ok() && identity.is_some() && l.amount_fen > 0 {
                        p.action = LineAction::Create;
                        p.reason = Some(Mismatch::UnknownReference);
                    } else {
                        p.reason = Some(Mismatch::CampaignNotActive);
                    }
                }
                _ => p.reason = Some(Mismatch::UnknownReference),
            },
        }
        out.push(p);
    }
    Ok(out)
}

/// A campaign named on a statement line: its global ID as the API shows it, or its number.
fn campaign_row(named: &str) -> Option<i64> {
    use base64::Engine;
    let named = named.trim();
    if let Ok(row) = named.parse::<i64>() {
        return (row > 0).then_some(row);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(named).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let row: i64 = text.strip_prefix("Campaign:")?.parse().ok()?;
    (row > 0).then_some(row)
}

/// The scope of donations an import created (their client key is the line's identity).
const CREATED_SCOPE: &str = "statement";

/// What names a line within and across statements: the platform's transaction ID, else the
/// reference.
fn line_key(l: &StatementLine) -> Option<String> {
    l.line_id.clone().or_else(|| l.reference.clone()).filter(|s| !s.is_empty())
}

/// Command: imports a statement (staff or a RECONCILE key); see the module.
pub async fn import_statement(ctx: Ctx<'_>, viewer: &Viewer, req: ImportRequest) -> AppResult<ImportReport> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    let (account, partner) = (viewer.account.as_ref().map(|a| a.id), viewer.partner.as_ref().map(|p| p.key_id));
    import(ctx, &actor, account, partner, req).await
}

async fn find_import(db: &impl ConnectionTrait, identity: &str) -> AppResult<Option<statement_import::Model>> {
    Ok(statement_import::Entity::find().filter(statement_import::Column::Identity.eq(identity)).one(db).await?)
}

fn report_of(import: statement_import::Model) -> AppResult<ImportReport> {
    let lines: Vec<PlannedLine> =
        serde_json::from_str(&import.report).map_err(|e| AppError::Internal(format!("stored report: {e}")))?;
    let totals = Totals::of(&lines);
    Ok(ImportReport { dry_run: false, already_imported: true, import: Some(import), lines, totals })
}

pub async fn import(
    ctx: Ctx<'_>,
    actor: &Actor,
    account: Option<i64>,
    partner: Option<i64>,
    req: ImportRequest,
) -> AppResult<ImportReport> {
    let identity = identity(&req)?;
    if let Some(done) = find_import(ctx.db, &identity).await?.filter(|i| i.status == "APPLIED") {
        return report_of(done);
    }
    let lines = parse(req.profile, &req.content)?;
    let now = super::now();
    let mut planned = plan(ctx.db, &lines, req.create_unmatched, ctx.settings.pledge_ttl, now).await?;
    if req.dry_run {
        let totals = Totals::of(&planned);
        return Ok(ImportReport { dry_run: true, already_imported: false, import: None, lines: planned, totals });
    }
    // The import row first: its unique identity makes a concurrent import of the same
    // statement fail here, before any line is applied.
    let started = match find_import(ctx.db, &identity).await? {
        Some(resumed) => resumed,
        None => {
            let inserted = statement_import::ActiveModel {
                identity: Set(identity.clone()),
                profile: Set(req.profile.as_str().to_owned()),
                status: Set("APPLYING".into()),
                line_count: Set(planned.len() as i64),
                report: Set("[]".into()),
                created_by_account_id: Set(account),
                partner_key_id: Set(partner),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(ctx.db)
            .await;
            match inserted {
                Ok(model) => model,
                Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(AppError::conflict(
                        "STATEMENT_BEING_IMPORTED",
                        "this statement is being imported right now; ask again for its report",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let channel = csv_profile(req.profile).map(|p| p.channel).unwrap_or(DonationChannel::OnlinePlatform);
    for batch in planned.chunks_mut(BATCH) {
        if batch.iter().all(|l| l.action == LineAction::Skip) {
            continue;
        }
        let snapshot = batch.to_vec();
        let applied = retry_transient(|| apply_batch(ctx, actor, started.id, channel, snapshot.clone())).await?;
        batch.clone_from_slice(&applied);
    }
    let totals = Totals::of(&planned);
    let report = serde_json::to_string(&planned).map_err(|e| AppError::Internal(e.to_string()))?;
    let txn = ctx.db.begin().await?;
    statement_import::Entity::update_many()
        .col_expr(statement_import::Column::Status, Expr::val("APPLIED"))
        .col_expr(statement_import::Column::LineCount, Expr::val(totals.lines))
        .col_expr(statement_import::Column::ConfirmedCount, Expr::val(totals.confirmed))
        .col_expr(statement_import::Column::HeldCount, Expr::val(totals.held))
        .col_expr(statement_import::Column::CreatedCount, Expr::val(totals.created))
        .col_expr(statement_import::Column::MismatchCount, Expr::val(totals.mismatches))
        .col_expr(statement_import::Column::ConfirmedFen, Expr::val(totals.confirmed_fen))
        .col_expr(statement_import::Column::Report, Expr::val(report))
        .col_expr(statement_import::Column::AppliedAt, Expr::val(Some(now)))
        .filter(statement_import::Column::Id.eq(started.id))
        .exec(&txn)
        .await?;
    let event = NewEvent::new(EventKind::StatementImported, started.id).payload(json!({
        "profile": req.profile.as_str(),
        "lines": totals.lines,
        "confirmed": totals.confirmed,
        "held": totals.held,
        "created": totals.created,
        "mismatches": totals.mismatches,
        "confirmedFen": totals.confirmed_fen,
    }));
    ctx.commit(txn, actor, vec![event]).await?;
    let import = statement_import::Entity::find_by_id(started.id).one(ctx.db).await?;
    Ok(ImportReport { dry_run: false, already_imported: false, import, lines: planned, totals })
}

/// Applies one batch of planned lines in one transaction. Lines whose donation changed since
/// the plan (confirmed meanwhile by someone else) become `ALREADY_CONFIRMED` skips.
async fn apply_batch(
    ctx: Ctx<'_>,
    actor: &Actor,
    import_id: i64,
    channel: DonationChannel,
    mut lines: Vec<PlannedLine>,
) -> AppResult<Vec<PlannedLine>> {
    let now = super::now();
    let txn = ctx.db.begin().await?;
    let mut appended = crate::events::Appended::default();
    // New donations for chosen unmatched payments, as pledges confirmed with the rest below.
    for l in lines.iter_mut().filter(|l| l.action == LineAction::Create) {
        let (Some(campaign_id), Some(key)) = (l.campaign_id, l.line_id.clone().or_else(|| l.reference.clone())) else {
            continue;
        };
        let name = l.payer_name.clone().unwrap_or_default();
        let model = donation::ActiveModel {
            campaign_id: Set(campaign_id),
            amount_fen: Set(l.amount_fen),
            channel: Set(channel),
            external_reference: Set(l.reference.clone().or(l.line_id.clone())),
            donor_account_id: Set(None),
            partner_key_id: Set(None),
            display_mode: Set(if name.is_empty() { DisplayMode::Anonymous } else { DisplayMode::Masked }),
            donor_name: Set(name.chars().take(100).collect()),
            message: Set(String::new()),
            status: Set(DonationStatus::Pledged),
            client_scope: Set(Some(CREATED_SCOPE.into())),
            client_key: Set(Some(key.chars().take(100).collect())),
            content_digest: Set(format!("statement:{import_id}")),
            refunded_fen: Set(0),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        l.donation_id = Some(model.id);
    }
    // Held money, one by one (rare: late payments, cancelled campaigns).
    for l in lines.iter_mut().filter(|l| l.action == LineAction::Hold) {
        let Some(id) = l.donation_id else { continue };
        let (_, outcome, more) = cf::receive_in(&txn, ctx, actor, id, l.reference.clone(), Arrival::Payment).await?;
        if outcome == PaymentOutcome::AlreadyRecorded {
            (l.action, l.reason) = (LineAction::Skip, Some(Mismatch::AlreadyConfirmed));
        }
        appended.events.extend(more.events);
    }
    let confirming: Vec<usize> =
        (0..lines.len()).filter(|i| matches!(lines[*i].action, LineAction::Confirm | LineAction::Create)).collect();
    if !confirming.is_empty() {
        let ids: Vec<i64> = confirming.iter().filter_map(|i| lines[*i].donation_id).collect();
        let locked: HashMap<i64, donation::Model> = donation::Entity::find()
            .filter(donation::Column::Id.is_in(ids.clone()))
            .lock_exclusive()
            .all(&txn)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let mut rows = Vec::new();
        for i in confirming {
            let line = &mut lines[i];
            match line.donation_id.and_then(|id| locked.get(&id)) {
                Some(d)
                    if d.status == DonationStatus::Pledged && !cf::pledge_expired(d, ctx.settings.pledge_ttl, now) =>
                {
                    rows.push((i, d.clone()));
                }
                _ => (line.action, line.reason) = (LineAction::Skip, Some(Mismatch::AlreadyConfirmed)),
            }
        }
        let numbers = confirm_many(&txn, actor, &rows, &lines, now, &mut appended).await?;
        for ((i, _), number) in rows.iter().zip(numbers) {
            lines[*i].receipt_number = Some(number);
        }
    }
    ctx.finish(txn, appended).await?;
    Ok(lines)
}

/// Confirms many pledges in one transaction with a fixed number of statements: their events
/// in one append, each campaign's totals in one update (in id order, so concurrent imports and
/// confirmations never wait in a cycle), the donor counts, one block of receipt numbers from
/// the year's counter (gapless: it commits or rolls back with them), one update of the rows.
async fn confirm_many(
    txn: &DatabaseTransaction,
    actor: &Actor,
    rows: &[(usize, donation::Model)],
    lines: &[PlannedLine],
    now: DateTime<Utc>,
    appended: &mut crate::events::Appended,
) -> AppResult<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let events = rows.iter().map(|(_, d)| cf::donation_event(EventKind::DonationConfirmed, d)).collect();
    appended.events.extend(crate::events::log::append(txn, actor, events).await?.events);
    let mut per_campaign: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    let mut accounts: HashSet<(i64, i64)> = HashSet::new();
    for (_, d) in rows {
        let entry = per_campaign.entry(d.campaign_id).or_default();
        entry.0 += d.amount_fen;
        entry.1 += 1;
        entry.2 += cf::guest_donor(d);
        if let Some(a) = d.donor_account_id {
            accounts.insert((d.campaign_id, a));
        }
    }
    for (campaign_id, (fen, count, guests)) in &per_campaign {
        cf::add_to_totals(txn, *campaign_id, *fen, *count, *guests).await?;
    }
    // With the campaign rows locked: accounts that already count on a campaign are not new donors.
    if !accounts.is_empty() {
        let account_ids: HashSet<i64> = accounts.iter().map(|(_, a)| *a).collect();
        let counting: HashSet<(i64, i64)> = donation::Entity::find()
            .select_only()
            .column(donation::Column::CampaignId)
            .column(donation::Column::DonorAccountId)
            .filter(donation::Column::CampaignId.is_in(per_campaign.keys().copied()))
            .filter(donation::Column::DonorAccountId.is_in(account_ids))
            .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
            .filter(donation::Column::RefundedAt.is_null())
            .distinct()
            .into_tuple::<(i64, Option<i64>)>()
            .all(txn)
            .await?
            .into_iter()
            .filter_map(|(c, a)| Some((c, a?)))
            .collect();
        let mut new_donors: HashMap<i64, i64> = HashMap::new();
        for (campaign_id, account) in &accounts {
            if !counting.contains(&(*campaign_id, *account)) {
                *new_donors.entry(*campaign_id).or_default() += 1;
            }
        }
        let mut new_donors: Vec<(i64, i64)> = new_donors.into_iter().collect();
        new_donors.sort_unstable();
        for (campaign_id, n) in new_donors {
            cf::add_to_totals(txn, campaign_id, 0, 0, n).await?;
        }
    }
    let year = cf::year_at_base(now);
    cf::ensure_receipt_counter(txn, year).await?;
    let n = rows.len() as i64;
    let batch_size = i32::try_from(rows.len()).map_err(|e| AppError::Internal(e.to_string()))?;
    let counters = entity::receipt_counter::Entity::update_many()
        .col_expr(
            entity::receipt_counter::Column::LastNumber,
            // An i32 like `next_receipt_number`'s: PostgreSQL connections cache the statement
            // with its parameter types, and an i64 here would not fit the cached int4.
            Expr::col(entity::receipt_counter::Column::LastNumber).add(batch_size),
        )
        .filter(entity::receipt_counter::Column::Year.eq(year))
        .exec_with_returning(txn)
        .await?;
    let last =
        counters.first().map(|c| c.last_number).ok_or_else(|| AppError::Internal("no receipt counter".into()))?;
    let numbers: Vec<String> = (0..n).map(|k| format!("{year}-{:06}", last - n + 1 + k)).collect();
    let mut receipt = CaseStatement::new();
    let mut reference = CaseStatement::new();
    let mut references = 0;
    for ((i, d), number) in rows.iter().zip(&numbers) {
        receipt = receipt.case(donation::Column::Id.eq(d.id), Expr::val(number.as_str()));
        // The statement's reference for pledges recorded without one.
        if let (None, Some(r)) = (&d.external_reference, &lines[*i].reference) {
            reference = reference.case(donation::Column::Id.eq(d.id), Expr::val(r.as_str()));
            references += 1;
        }
    }
    let mut update = donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Confirmed))
        .col_expr(donation::Column::ConfirmedAt, Expr::val(Some(now)))
        .col_expr(donation::Column::ReceivedAt, Expr::val(Some(now)))
        .col_expr(donation::Column::ReceiptNumber, receipt.into());
    if references > 0 {
        let reference = reference.finally(Expr::col(donation::Column::ExternalReference));
        update = update.col_expr(donation::Column::ExternalReference, reference.into());
    }
    update
        .filter(donation::Column::Id.is_in(rows.iter().map(|(_, d)| d.id)))
        .filter(donation::Column::Status.eq(DonationStatus::Pledged))
        .exec(txn)
        .await?;
    Ok(numbers)
}

/// Imports kept, newest first.
pub async fn imports(
    db: &impl ConnectionTrait,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<statement_import::Model>> {
    let key = SortKey {
        column: statement_import::Column::CreatedAt,
        id: statement_import::Column::Id,
        direction: SortDirection::Desc,
        value_of: |m: &statement_import::Model| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, statement_import::Entity::find(), &key, args, limits, with_total).await
}

pub async fn import_by_id(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<statement_import::Model>> {
    Ok(statement_import::Entity::find_by_id(id).one(db).await?)
}

pub fn lines_of(import: &statement_import::Model) -> AppResult<Vec<PlannedLine>> {
    serde_json::from_str(&import.report).map_err(|e| AppError::Internal(format!("stored report: {e}")))
}

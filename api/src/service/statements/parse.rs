//! Reading a statement: the import profiles (CSV columns by header name, or JSON) and the
//! payment lines they yield.
use entity::donation::DonationChannel;
use serde::{Deserialize, Serialize};

use super::MAX_LINES;
use crate::error::{AppError, AppResult};

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

/// A statement's bytes as text. A `charset` (from the upload's `Content-Type`) is followed;
/// without one, UTF-8 is read as it is and anything else of a CSV profile as GB18030, the
/// superset of GBK in which Alipay's and many banks' exports arrive. JSON is UTF-8 (RFC 8259).
/// Nothing is replaced: bytes that are not text in the encoding are refused.
pub fn decode(profile: ProfileName, bytes: Vec<u8>, charset: Option<&str>) -> AppResult<String> {
    let encoding = match charset {
        Some(label) => encoding_rs::Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
            AppError::rule("content", "UNKNOWN_CHARSET", format!("{label:?} is not a character encoding"))
        })?,
        None => match String::from_utf8(bytes) {
            Ok(text) => return Ok(text),
            Err(e) if profile == ProfileName::Json => {
                return Err(AppError::rule(
                    "content",
                    "NOT_TEXT",
                    format!("a JSON statement is UTF-8 text: {}", e.utf8_error()),
                ));
            }
            Err(e) => return decode_as(encoding_rs::GB18030, e.into_bytes(), "neither UTF-8 nor GBK (GB18030)"),
        },
    };
    if encoding == encoding_rs::UTF_8 {
        return String::from_utf8(bytes)
            .map_err(|e| AppError::rule("content", "NOT_TEXT", format!("not UTF-8 text: {}", e.utf8_error())));
    }
    decode_as(encoding, bytes, &format!("not {} text", encoding.name()))
}

fn decode_as(encoding: &'static encoding_rs::Encoding, bytes: Vec<u8>, refusal: &str) -> AppResult<String> {
    encoding
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .map(|text| text.into_owned())
        .ok_or_else(|| AppError::rule("content", "NOT_TEXT", format!("the statement is {refusal}")))
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
    // A byte-order mark, as editors on Windows write one, is no part of the statement.
    let content = content.trim_start_matches('\u{feff}');
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
    let mut header: Option<Vec<String>> = None;
    // Sized by the rows (one pass over the text), not doubled: at most one line per row.
    let rows = content.bytes().filter(|b| *b == b'\n').count() + 1;
    let mut out = Vec::with_capacity(rows.min(MAX_LINES + 1));
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

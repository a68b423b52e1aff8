//! Matching a statement's lines to donations: the plan a dry run answers and apply follows.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::campaign::{self, CampaignStatus};
use entity::donation::{self, DonationStatus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use super::BATCH;
use super::parse::StatementLine;
use crate::error::AppResult;
use crate::service::crowdfunding as cf;

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
    // Absent values are left out of the kept report (a fifth of its size on a day of matched
    // lines); reports kept with `null`s read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub amount_fen: i64,
    pub action: LineAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Mismatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<i64>,
    /// The receipt number a confirmation got (after applying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// Matches lines to donations: three statements whatever the statement's size (by reference,
/// by client key, the campaigns named). `partner`: the partner key importing, whose own
/// pledges a client key names first.
pub async fn plan(
    db: &impl ConnectionTrait,
    lines: Vec<StatementLine>,
    partner: Option<i64>,
    create_unmatched: bool,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<Vec<PlannedLine>> {
    let references: HashSet<&str> = lines.iter().filter_map(|l| l.reference.as_deref()).collect();
    let keys: HashSet<&str> = lines.iter().filter_map(|l| l.client_key.as_deref()).collect();
    let line_keys: HashSet<&str> = lines.iter().filter_map(line_key).collect();
    // Only what matching needs: a statement of 10,000 lines matches 10,000 donations, and
    // their whole rows (names, messages, digests) would be most of an import's memory.
    let mut found: Vec<Candidate> = Vec::new();
    for chunk in references.into_iter().collect::<Vec<_>>().chunks(BATCH) {
        let select = donation::Entity::find()
            .filter(donation::Column::ExternalReference.is_in(chunk.iter().copied()))
            .filter(donation::Column::RefundOfId.is_null());
        found.extend(Candidate::select(select).all(db).await?);
    }
    for chunk in keys.into_iter().collect::<Vec<_>>().chunks(BATCH) {
        let select = donation::Entity::find()
            .filter(donation::Column::ClientKey.is_in(chunk.iter().copied()))
            .filter(donation::Column::RefundOfId.is_null());
        found.extend(Candidate::select(select).all(db).await?);
    }
    for chunk in line_keys.into_iter().collect::<Vec<_>>().chunks(BATCH) {
        let select = donation::Entity::find()
            .filter(donation::Column::ClientScope.eq(CREATED_SCOPE))
            .filter(donation::Column::ClientKey.is_in(chunk.iter().copied()));
        found.extend(Candidate::select(select).all(db).await?);
    }
    // A reference may name several records over time; the live one wins.
    let rank = |d: &Candidate| match d.status {
        DonationStatus::Pledged | DonationStatus::Expired | DonationStatus::Cancelled => 0,
        _ => 1,
    };
    let mut by_reference: HashMap<&str, &Candidate> = HashMap::new();
    // A client key is unique only within its scope (an account's, a partner key's).
    let mut by_key: HashMap<&str, Vec<&Candidate>> = HashMap::new();
    let mut created: HashMap<&str, &Candidate> = HashMap::new();
    for d in &found {
        if d.client_scope.as_deref() == Some(CREATED_SCOPE)
            && let Some(k) = &d.client_key
        {
            created.insert(k, d);
        }
        if let Some(r) = &d.external_reference {
            let keep = by_reference.get(r.as_str()).is_none_or(|e| rank(d) < rank(e));
            if keep {
                by_reference.insert(r, d);
            }
        }
        if let Some(k) = &d.client_key
            && d.client_scope.as_deref() != Some(CREATED_SCOPE)
        {
            let same = by_key.entry(k).or_default();
            if !same.iter().any(|e| e.id == d.id) {
                same.push(d);
            }
        }
    }
    // The importing partner's own pledge with the key; else the one pledge that has it. A key
    // two pledges share names neither for sure, as for payment notifications.
    let own_scope = partner.map(|key_id| cf::Donor::Partner { key_id }.scope());
    let by_key: HashMap<&str, &Candidate> = by_key
        .into_iter()
        .filter_map(|(k, same)| {
            let own = same.iter().find(|d| own_scope.is_some() && d.client_scope == own_scope);
            let only = if same.len() == 1 { same.first() } else { None };
            own.or(only).map(|d| (k, *d))
        })
        .collect();
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
    let campaigns = crate::service::common::by_id(db, campaign::Column::Id, campaign_ids, |c| c.id).await?;

    let mut seen: HashSet<String> = HashSet::new();
    let mut planned_donations: HashSet<i64> = HashSet::new();
    let mut out = Vec::with_capacity(lines.len());
    // The lines are taken apart as they are planned: their texts move into the plan rather
    // than being copied (a day of 10,000 lines is 30,000 of them).
    for (i, l) in lines.into_iter().enumerate() {
        let identity = line_key(&l);
        let duplicate = identity.is_some_and(|k| !seen.insert(k.to_owned()));
        let matched = l
            .reference
            .as_deref()
            .and_then(|r| by_reference.get(r).copied())
            .or_else(|| l.client_key.as_deref().and_then(|k| by_key.get(k).copied()))
            .or_else(|| identity.and_then(|k| created.get(k).copied()))
            .filter(|_| !duplicate);
        let has_identity = identity.is_some();
        let mut p = PlannedLine {
            line: i + 1,
            line_id: l.line_id,
            reference: l.reference,
            amount_fen: l.amount_fen,
            action: LineAction::Skip,
            reason: None,
            donation_id: None,
            campaign_id: None,
            receipt_number: None,
            payer_name: l.payer_name,
        };
        if duplicate {
            p.reason = Some(Mismatch::DuplicateLine);
            out.push(p);
            continue;
        }
        match matched {
            Some(d) => {
                p.donation_id = Some(d.id);
                p.campaign_id = Some(d.campaign_id);
                let cancelled = campaigns.get(&d.campaign_id).is_some_and(|c| c.status == CampaignStatus::Cancelled);
                (p.action, p.reason) = if !planned_donations.insert(d.id) {
                    (LineAction::Skip, Some(Mismatch::DuplicateLine))
                } else if d.amount_fen != p.amount_fen {
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
                        _ if cf::pledge_expired_at(d.status, d.created_at, ttl, now) => {
                            (LineAction::Hold, Some(Mismatch::PledgeExpired))
                        }
                        _ => (LineAction::Confirm, None),
                    }
                };
            }
            None => match named.get(&i).and_then(|id| campaigns.get(id)) {
                Some(c) if create_unmatched => {
                    p.campaign_id = Some(c.id);
                    if cf::accepting_donations(c, now).is_ok() && has_identity && p.amount_fen > 0 {
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

/// The columns of a donation that matching a line reads.
#[derive(Debug, FromQueryResult)]
struct Candidate {
    id: i64,
    campaign_id: i64,
    amount_fen: i64,
    status: DonationStatus,
    external_reference: Option<String>,
    client_scope: Option<String>,
    client_key: Option<String>,
    created_at: DateTime<Utc>,
}

impl Candidate {
    fn select(select: sea_orm::Select<donation::Entity>) -> sea_orm::Selector<sea_orm::SelectModel<Self>> {
        use donation::Column as C;
        select
            .select_only()
            .columns([
                C::Id,
                C::CampaignId,
                C::AmountFen,
                C::Status,
                C::ExternalReference,
                C::ClientScope,
                C::ClientKey,
                C::CreatedAt,
            ])
            .into_model()
    }
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
pub(super) const CREATED_SCOPE: &str = "statement";

/// What names a line within and across statements: the platform's transaction ID, else the
/// reference.
fn line_key(l: &StatementLine) -> Option<&str> {
    l.line_id.as_deref().or(l.reference.as_deref()).filter(|s| !s.is_empty())
}

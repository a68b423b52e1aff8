//! Charity crowdfunding: campaigns (`DRAFT → PENDING_REVIEW → ACTIVE → ENDED/CANCELLED`),
//! recorded donations (`PLEDGED → CONFIRMED/CANCELLED`, refunds as reversing records), exact
//! totals, idempotent donating, receipts numbered per year, and the cached public views.
//!
//! Money never moves through this service: it records donations and their confirmation.
//! `campaigns.raised_fen` and `donation_count` change only by `col = col + delta` inside the
//! transaction that confirms or refunds, so concurrent writers never lose an update.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::campaign::{self, CampaignStatus};
use entity::campaign_budget_line as budget_line;
use entity::campaign_update;
use entity::donation::{self, DisplayMode, DonationChannel, DonationStatus, HoldReason};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::common::{ExecOne, changed_meanwhile, found, grouped, rows_by_ids};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::{optional_text, optional_url, required_text};
use crate::tags;

/// One donation is at most 1,000,000 yuan: larger gifts are agreements, not web donations.
pub const MAX_DONATION_FEN: i64 = 100_000_000;
/// A campaign's goal is at most 100 million yuan.
pub const MAX_GOAL_FEN: i64 = 10_000_000_000;
pub const MAX_BUDGET_LINES: usize = 50;
pub const MAX_UPDATES_SHOWN: usize = 50;
pub const MAX_CAMPAIGN_DAYS: i64 = 3 * 366;
/// The longest date range a donor summary covers.
pub const MAX_SUMMARY_DAYS: i64 = 3 * 366;
/// Shown on the donor wall for anonymous donations.
pub const ANONYMOUS_NAME: &str = "爱心人士";

/// Cache tag of every public crowdfunding view (campaign pages, the list, donor walls).
const CACHE_TAG: &str = tags::CAMPAIGNS;

/// The calendar year at the base (`crate::time`).
pub(crate) use crate::time::year_at_base;

/// A campaign with what it is always shown with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub campaign: campaign::Model,
    /// `None` when the read left the lines out (a list whose page does not show them).
    #[serde(default)]
    pub budget: Option<Vec<budget_line::Model>>,
}

/// What a donor sees, computed from the status, the dates and the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DonorState {
    /// Approved, but collection has not started.
    Upcoming,
    Collecting,
    /// The goal is reached; donations are still welcome until the end.
    GoalReached,
    Ended,
}

impl CampaignRecord {
    pub fn is_published(&self) -> bool {
        self.campaign.published_at.is_some()
    }

    /// `None` while the campaign is not published.
    pub fn donor_state(&self, now: DateTime<Utc>) -> Option<DonorState> {
        let c = &self.campaign;
        if !self.is_published() {
            return None;
        }
        Some(match c.status {
            CampaignStatus::Ended | CampaignStatus::Cancelled => DonorState::Ended,
            _ if now >= c.ends_at => DonorState::Ended,
            _ if now < c.starts_at => DonorState::Upcoming,
            _ if c.raised_fen >= c.goal_fen => DonorState::GoalReached,
            _ => DonorState::Collecting,
        })
    }

    /// Whole days left until the end, rounded up; 0 once ended.
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        if matches!(self.campaign.status, CampaignStatus::Ended | CampaignStatus::Cancelled) {
            return 0;
        }
        let left = self.campaign.ends_at - now;
        if left <= Duration::zero() { 0 } else { (left.num_seconds() + 86_399) / 86_400 }
    }

    /// Percent of the goal raised, with two decimals (may exceed 100).
    pub fn percent_of_goal(&self) -> f64 {
        let c = &self.campaign;
        if c.goal_fen <= 0 {
            return 0.0;
        }
        ((Ord::max(c.raised_fen, 0) as f64) * 10_000.0 / c.goal_fen as f64).floor() / 100.0
    }
}

// ---------------------------------------------------------------- validation

fn long_text(field: &str, value: Option<String>, max: usize) -> AppResult<String> {
    let v = value.unwrap_or_default().trim().to_owned();
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v)
}

fn validate_goal(goal_fen: i64) -> AppResult<i64> {
    if goal_fen <= 0 || goal_fen > MAX_GOAL_FEN {
        return Err(AppError::bad_input("goalFen", format!("goalFen is between 1 and {MAX_GOAL_FEN} fen")));
    }
    Ok(goal_fen)
}

fn validate_period(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> AppResult<()> {
    let messages = ("endsAt must be after startsAt", "a campaign runs for at most three years");
    crate::service::validate::period((starts_at, ends_at), Duration::days(MAX_CAMPAIGN_DAYS), "endsAt", messages)
}

#[derive(Clone, Debug)]
pub struct BudgetLineInput {
    pub item: String,
    pub amount_fen: i64,
}

fn validate_budget(lines: Vec<BudgetLineInput>) -> AppResult<Vec<(String, i64)>> {
    if lines.len() > MAX_BUDGET_LINES {
        return Err(AppError::bad_input("budget", format!("at most {MAX_BUDGET_LINES} budget lines")));
    }
    lines
        .into_iter()
        .map(|l| {
            let item = required_text("budget.item", &l.item, 200)?;
            if l.amount_fen <= 0 || l.amount_fen > MAX_GOAL_FEN {
                return Err(AppError::bad_input("budget.amountFen", "a budget line's amount must be positive"));
            }
            Ok((item, l.amount_fen))
        })
        .collect()
}

/// Masks a name for display: 王小明 → 王*明, 欧阳小明 → 欧**明, 王明 → 王*.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => ANONYMOUS_NAME.to_owned(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

mod batches;
mod cached;
mod campaign_reads;
mod campaign_writes;
mod counting;
mod donation_reads;
mod gifts;
mod pledges;

pub use batches::ConfirmationBatches;
pub use cached::*;
pub use campaign_reads::*;
pub use campaign_writes::*;
pub use counting::*;
pub use donation_reads::*;
pub use gifts::*;
pub use pledges::*;

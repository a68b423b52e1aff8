//! Venture philanthropy: grant rounds with their rubric, proposals by organizations, reviews
//! by assigned reviewers, the ranking, and awards that never exceed a round's budget.
//!
//! Proposal lifecycle: `DRAFT → SUBMITTED → UNDER_REVIEW → AWARDED | DECLINED`, and
//! `WITHDRAWN` from any state before a decision. Every state change is a conditional update
//! on the state it was checked in, so two concurrent requests cannot both apply.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::grant_proposal::{self as proposal, ProposalStatus};
use entity::grant_review::{self as review, ReviewStatus};
use entity::grant_round as round;
use entity::organization::{self, Stage};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use serde_json::json;

use super::common::{ExecOne, changed_meanwhile, found, grouped, rows_by_ids};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
pub(crate) use crate::service::validate::required_text;

// ---------------------------------------------------------------- shared value types

/// People (or person-times) by the groups the base reports on.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeopleByGroup {
    pub women: i64,
    pub children: i64,
    pub families: i64,
    pub elderly: i64,
    pub others: i64,
}

impl PeopleByGroup {
    pub fn total(&self) -> i64 {
        self.women + self.children + self.families + self.elderly + self.others
    }

    pub fn add(&mut self, other: &PeopleByGroup) {
        self.women += other.women;
        self.children += other.children;
        self.families += other.families;
        self.elderly += other.elderly;
        self.others += other.others;
    }

    pub fn validate(&self, field: &str, max_each: i64) -> AppResult<()> {
        for n in [self.women, self.children, self.families, self.elderly, self.others] {
            if !(0..=max_each).contains(&n) {
                return Err(AppError::bad_input(field, format!("{field}: each count is between 0 and {max_each}")));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetLine {
    pub item: String,
    pub amount_fen: i64,
}

pub fn validate_budget_lines(lines: &[BudgetLine]) -> AppResult<i64> {
    if lines.len() > 50 {
        return Err(AppError::bad_input("budgetLines", "at most 50 budget lines"));
    }
    let mut sum: i64 = 0;
    for line in lines {
        let item = line.item.trim();
        if item.is_empty() || item.chars().count() > 200 {
            return Err(AppError::bad_input("budgetLines", "each budget line has an item of 1 to 200 characters"));
        }
        if line.amount_fen <= 0 {
            return Err(AppError::bad_input("budgetLines", "each budget line has a positive amount"));
        }
        sum =
            sum.checked_add(line.amount_fen).ok_or_else(|| AppError::bad_input("budgetLines", "amounts too large"))?;
    }
    Ok(sum)
}

pub(crate) fn bounded_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v.to_owned())
}

fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned + Default>(raw: &str) -> T {
    serde_json::from_str(raw).unwrap_or_default()
}

mod commands;
mod decisions;
mod proposals;
mod ranking;
mod reviews;
mod rounds;

pub use commands::*;
pub use decisions::*;
pub use proposals::*;
pub use ranking::*;
pub use reviews::*;
pub use rounds::*;

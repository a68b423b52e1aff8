//! Accounts, passwords, sessions (access + refresh tokens), partner API keys and
//! organization membership.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::membership::MemberRole;
use entity::{account, api_key, invitation, membership, session};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use serde_json::json;

use super::common::{ExecOne, found, rows_by_ids};
use super::{Ctx, as_viewer, now, retry_transient};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

/// Global roles. Organization membership (`ORG_MEMBER`) is per organization, not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Manager,
    Reviewer,
    Donor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Reviewer, Role::Donor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::Reviewer => "REVIEWER",
            Role::Donor => "DONOR",
        }
    }

    pub fn parse_list(raw: &str) -> Vec<Role> {
        raw.split(',').filter_map(|r| Role::ALL.into_iter().find(|role| role.as_str() == r.trim())).collect()
    }

    pub fn join(roles: &[Role]) -> String {
        let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    }
}

/// What a partner key may do beyond reading public data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiScope {
    /// Read public data (every key may).
    Read,
    /// Register people for events and training.
    Register,
    /// Record donations.
    Donate,
    /// Confirm donations after reconciliation with a payment platform.
    Reconcile,
}

impl ApiScope {
    pub const ALL: [ApiScope; 4] = [ApiScope::Read, ApiScope::Register, ApiScope::Donate, ApiScope::Reconcile];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "READ",
            ApiScope::Register => "REGISTER",
            ApiScope::Donate => "DONATE",
            ApiScope::Reconcile => "RECONCILE",
        }
    }

    pub fn parse_list(raw: &str) -> Vec<ApiScope> {
        raw.split(',').filter_map(|r| ApiScope::ALL.into_iter().find(|s| s.as_str() == r.trim())).collect()
    }

    /// Whether a key holding this scope may sit in a web page, where anyone can read it:
    /// reading public data, registering guests and recording guest pledges (which count only
    /// once staff confirm them). Never reconciliation.
    pub fn is_publishable(self) -> bool {
        matches!(self, ApiScope::Read | ApiScope::Register | ApiScope::Donate)
    }

    pub fn join(scopes: &[ApiScope]) -> String {
        let mut names: Vec<&str> = scopes.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    }
}

mod accounts;
mod api_keys;
mod limiter;
mod members;
mod passwords;
mod sessions;

pub use accounts::*;
pub use api_keys::*;
pub use limiter::*;
pub use members::*;
pub use passwords::*;
pub use sessions::*;

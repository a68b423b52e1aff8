//! Bookings of spaces: requests, approval, cancellation, and the guarantee that no two
//! confirmed bookings of one space overlap (buffers included).
//!
//! The guarantee is the database's: an exclusion constraint over confirmed rows on
//! PostgreSQL, triggers on SQLite. The checks in here come first only to answer with a useful
//! error (what it collides with, nearby free slots); when two writers race, the loser's
//! constraint violation is turned into the same `CONFLICT`.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::booking::{self, BookingStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, RuntimeErr, Set, SqlErr, TransactionTrait,
};
use serde_json::json;

use super::common::{ExecOne, found};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::space::{self, CheckAt, SpaceRecord, blocked_intervals};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::optional_text;

/// Cache tag of every calendar read; bumped by every booking change.
const CACHE_TAG: &str = crate::tags::BOOKINGS;
pub const MAX_CALENDAR_DAYS: i64 = 62;
pub const MAX_AVAILABILITY_DAYS: i64 = 31;
pub const MAX_AVAILABILITY_SPACES: usize = 20;
/// How far around the requested time conflict suggestions look.
const SUGGEST_WITHIN_DAYS: i64 = 14;
const SUGGESTIONS: usize = 3;

#[derive(Clone, Debug)]
pub struct BookingRequest {
    pub space_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub attendees: i32,
    pub purpose: Option<String>,
    pub organization_id: Option<i64>,
    pub client_key: Option<String>,
    pub manager_note: Option<String>,
}

/// Who books, as the service needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct Booker {
    pub account_id: i64,
    /// Staff bookings are confirmed at once, also in spaces that need approval.
    pub is_staff: bool,
}

mod calendar;
mod commands;
mod conflicts;
mod event_rooms;
mod reads;
mod recurring;
mod writes;

pub use calendar::*;
pub use commands::*;
pub use conflicts::*;
pub use event_rooms::*;
pub use reads::*;
pub use recurring::*;
pub use writes::*;

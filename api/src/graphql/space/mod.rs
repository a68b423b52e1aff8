//! Spaces and bookings in the schema: the building's rooms, their calendar, availability,
//! booking requests and the managers' decisions.
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::booking::{self as booking_entity, BookingStatus as EntityStatus};

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::identity::{Account, viewer};
use super::ids;
use super::loaders::Loaders;
use super::organization::Organization;
use super::state;
use crate::error::AppError;
use crate::events::Aggregate;
use crate::response_cache::{Family, ResponseTags};
use crate::service::booking::{self as service, BookingRequest, CancelScope, OnConflict};
use crate::service::recurrence::Recurrence;
use crate::service::space::{
    self as spaces, Closure, OpeningHours, SpaceFilter as ServiceFilter, SpaceInput, SpaceRecord,
};

pub use super::ids::{BOOKING, SERIES, SPACE};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::space::SpaceKind")]
pub enum SpaceKind {
    /// 培训室
    TrainingRoom,
    /// 会议室
    MeetingRoom,
    /// 多功能厅
    Hall,
    /// 展示区
    ExhibitionArea,
    /// 入驻组织办公室
    Office,
    /// 活动室
    ActivityRoom,
    /// 心理咨询室
    CounselingRoom,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::booking::BookingStatus")]
pub enum BookingStatus {
    /// Waiting for a manager's decision.
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "chrono::Weekday")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A bookable period of one weekday, in the space's local time.
#[derive(SimpleObject)]
pub struct OpeningPeriod {
    pub weekday: Weekday,
    /// `HH:MM`.
    pub opens: String,
    /// `HH:MM`; `24:00` is the end of the day.
    pub closes: String,
}

#[derive(InputObject)]
pub struct OpeningPeriodInput {
    pub weekday: Weekday,
    /// `HH:MM`.
    pub opens: String,
    /// `HH:MM`; `24:00` is the end of the day.
    pub closes: String,
}

/// Local dates (inclusive) when a space cannot be booked.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "SpaceClosureInput")]
pub struct SpaceClosure {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub reason: String,
}

mod mutations;
mod queries;
mod subscriptions;
mod types;

pub use mutations::*;
pub use queries::*;
pub use subscriptions::*;
pub use types::*;

//! Events in the schema: the `Event` interface and its five kinds, training programmes,
//! exhibits, delegations, registrations with their waitlist, check-in and impact counts.
use super::common::Count;
use crate::events::Aggregate;
use crate::response_cache::{Family, ResponseTags};
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, Interface, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::event::{self as event_entity, EventKind as ModelKind};
use entity::{delegation, exhibit, registration, training_programme};

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::Organization;
use super::state;
use crate::error::AppError;
use crate::service::event::{
    self as service, Answer, EventFilter as ServiceFilter, EventPatch, Groups, NewDelegation, NewEvent, NewExhibit,
    QuestionInput, RegistrationRequest, TrainingFields,
};

pub use super::ids::{DELEGATION, EVENT, EXHIBIT, PROGRAMME, REGISTRATION, SESSION, SPACE};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::event::EventKind")]
pub enum EventKind {
    /// A cohort of a training programme.
    Training,
    /// An excellent-case exhibition or project-result showcase.
    Exhibition,
    /// An experience-sharing salon.
    Salon,
    /// A promotional event.
    Promotion,
    /// A cross-strait exchange.
    Exchange,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::event::EventStatus")]
pub enum EventStatus {
    /// Being prepared; visible to its organizers only.
    Draft,
    /// Public and, within its window, open for registration.
    Published,
    Cancelled,
    Completed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::registration::RegistrationStatus")]
pub enum RegistrationStatus {
    /// Awaiting the organizer's decision; holds no seat.
    Pending,
    /// Holds seats for the whole party.
    Confirmed,
    /// Waiting for seats, in registration order.
    Waitlisted,
    /// Declined by the organizer.
    Declined,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::delegation::Origin")]
pub enum DelegationOrigin {
    Mainland,
    Taiwan,
    HongKong,
    Macao,
    Overseas,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::registration::IdDocType")]
pub enum IdentityDocumentType {
    /// 居民身份证
    MainlandId,
    /// 台湾居民来往大陆通行证
    TaiwanCompatriotPermit,
    Passport,
}

mod inputs;
mod mutations;
mod parts;
mod queries;
mod registrations;
mod subscriptions;
/// Where an event takes place: a base space or an outside address.
mod types;

pub use inputs::*;
pub use mutations::*;
pub use parts::*;
pub use queries::*;
pub use registrations::*;
pub use subscriptions::*;
pub use types::*;

//! Events in the schema: the `Event` interface and its five kinds, training programmes,
//! exhibits, delegations, registrations with their waitlist, check-in and impact counts.
use super::common::Count;
use crate::response_cache::{Family, ResponseTags};
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, Interface, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::event::{self as event_entity, EventKind as ModelKind};
use entity::{delegation, exhibit, registration, training_programme};

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

pub const EVENT: &str = "Event";
pub const PROGRAMME: &str = "TrainingProgramme";
pub const EXHIBIT: &str = "Exhibit";
pub const DELEGATION: &str = "Delegation";
pub const SESSION: &str = "TrainingSession";
pub const REGISTRATION: &str = "Registration";
/// Spaces live in another slice; their IDs are encoded the same way.
pub const SPACE: &str = "Space";

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

/// Where an event takes place: a base space or an outside address.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Venue {
    /// The base space, when the event is held in the base.
    pub space_id: Option<ID>,
    pub address: Option<String>,
    #[graphql(skip)]
    pub space_row: Option<i64>,
}

#[async_graphql::ComplexObject]
impl Venue {
    /// The base space itself (rooms, capacity, calendar), when the event is held in the base.
    async fn space(&self, ctx: &Context<'_>) -> Result<Option<super::space::Space>> {
        let Some(row) = self.space_row else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        let found = loaders.space.load_one(row).await.map_err(|e| e.extend())?;
        Ok(found.map(super::space::Space))
    }
}

#[derive(SimpleObject)]
pub struct Question {
    /// What answers refer to (`q1`, `q2`, …).
    pub key: String,
    pub prompt: String,
    pub required: bool,
}

/// Live seat and attendance counts (never cached).
#[derive(SimpleObject)]
pub struct EventSeats {
    pub capacity: i32,
    /// Persons holding confirmed seats.
    pub taken: i32,
    pub left: i32,
    pub confirmed_registrations: i64,
    pub pending_registrations: i64,
    pub waitlisted_registrations: i64,
    pub waitlisted_persons: i64,
    pub checked_in_registrations: i64,
    pub checked_in_persons: i64,
}

/// Person-times served (人次) at events, split by who was served; the groups overlap.
#[derive(SimpleObject)]
#[graphql(name = "EventPersonTimes")]
pub struct PersonTimes {
    pub total: Count,
    pub women: Count,
    pub children: Count,
    pub family_members: Count,
    pub professionals: Count,
    /// Events that contributed.
    pub events: i64,
}

impl From<service::PersonTimes> for PersonTimes {
    fn from(p: service::PersonTimes) -> Self {
        Self {
            total: p.total.into(),
            women: p.women.into(),
            children: p.children.into(),
            family_members: p.family_members.into(),
            professionals: p.professionals.into(),
            events: p.events,
        }
    }
}

/// The fields every kind of event has.
// Interface fields repeat `ty = "…"` by design; the lint reads them as duplicate attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID"),
    field(name = "kind", ty = "EventKind"),
    field(name = "title", ty = "&str"),
    field(name = "title_traditional", ty = "Option<&str>"),
    field(name = "summary", ty = "&str"),
    field(name = "description", ty = "&str"),
    field(name = "starts_at", ty = "DateTime<Utc>"),
    field(name = "ends_at", ty = "DateTime<Utc>"),
    field(name = "time_zone", ty = "&str"),
    field(name = "venue", ty = "Venue"),
    field(name = "organizer", ty = "Option<Organization>"),
    field(name = "status", ty = "EventStatus"),
    field(name = "capacity", ty = "i32"),
    field(name = "group_limit", ty = "i32"),
    field(name = "registration_opens_at", ty = "Option<DateTime<Utc>>"),
    field(name = "registration_closes_at", ty = "DateTime<Utc>"),
    field(name = "cancellation_deadline", ty = "DateTime<Utc>"),
    field(name = "requires_approval", ty = "bool"),
    field(name = "requires_identity_document", ty = "bool"),
    field(name = "audience_tags", ty = "Vec<String>"),
    field(name = "questions", ty = "Vec<Question>"),
    field(name = "seats", ty = "EventSeats"),
    field(name = "impact", ty = "PersonTimes"),
    field(name = "viewer_can_manage", ty = "bool"),
    field(
        name = "registrations",
        ty = "Option<PagedConnection<Registration>>",
        arg(name = "status", ty = "Option<Vec<RegistrationStatus>>"),
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>"),
        arg(name = "last", ty = "Option<i32>"),
        arg(name = "before", ty = "Option<String>")
    )
)]
pub enum Event {
    Training(Training),
    Exhibition(Exhibition),
    Salon(Salon),
    PromotionEvent(PromotionEvent),
    ExchangeEvent(ExchangeEvent),
}

impl Event {
    pub fn from_model(m: event_entity::Model) -> Self {
        match m.kind {
            ModelKind::Training => Event::Training(Training(m)),
            ModelKind::Exhibition => Event::Exhibition(Exhibition(m)),
            ModelKind::Salon => Event::Salon(Salon(m)),
            ModelKind::Promotion => Event::PromotionEvent(PromotionEvent(m)),
            ModelKind::Exchange => Event::ExchangeEvent(ExchangeEvent(m)),
        }
    }
}

pub struct Training(pub event_entity::Model);
pub struct Exhibition(pub event_entity::Model);
pub struct Salon(pub event_entity::Model);
pub struct PromotionEvent(pub event_entity::Model);
pub struct ExchangeEvent(pub event_entity::Model);

async fn seats_of(ctx: &Context<'_>, m: &event_entity::Model) -> Result<EventSeats> {
    let loaders = ctx.data::<Loaders>()?;
    let c = loaders.event_counts.load_one(m.id).await.map_err(|e| e.extend())?.unwrap_or_default();
    // The live row, not the (possibly cached) model: seats change with every registration.
    let taken = c.confirmed_persons as i32;
    Ok(EventSeats {
        capacity: m.capacity,
        taken,
        left: (m.capacity - taken).max(0),
        confirmed_registrations: c.confirmed_registrations,
        pending_registrations: c.pending_registrations,
        waitlisted_registrations: c.waitlisted_registrations,
        waitlisted_persons: c.waitlisted_persons,
        checked_in_registrations: c.checked_in_registrations,
        checked_in_persons: c.checked_in_persons,
    })
}

async fn impact_of(ctx: &Context<'_>, id: i64) -> Result<PersonTimes> {
    let loaders = ctx.data::<Loaders>()?;
    Ok(loaders.event_impact.load_one(id).await.map_err(|e| e.extend())?.unwrap_or_default().into())
}

#[allow(clippy::too_many_arguments)]
async fn registrations_of(
    ctx: &Context<'_>,
    m: &event_entity::Model,
    status: Option<Vec<RegistrationStatus>>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<Option<PagedConnection<Registration>>> {
    if !viewer(ctx).can_manage_event(m.organizer_id) {
        return Ok(None);
    }
    let state = state(ctx)?;
    let statuses: Vec<registration::RegistrationStatus> =
        status.unwrap_or_default().into_iter().map(Into::into).collect();
    let page = service::registrations_of_event(
        &state.db,
        m.id,
        &statuses,
        &connection::args(first, after, last, before),
        &state.settings.limits,
        connection::wants_total(ctx),
    )
    .await
    .extend()?;
    Ok(Some(connection::from_page(page, Registration)))
}

/// Loads the organizers and seat counts a page of events selects for the whole page at once,
/// one statement each, and primes the loaders its nested resolvers read (see `loaders`).
async fn load_ahead(ctx: &Context<'_>, page: &[(String, event_entity::Model)]) -> Result<()> {
    if page.is_empty() {
        return Ok(());
    }
    let db = &state(ctx)?.db;
    let loaders = ctx.data::<Loaders>()?;
    let organizers = async {
        if connection::node_selections(ctx, "organizer").is_empty() {
            return Ok(());
        }
        let mut ids: Vec<i64> = page.iter().map(|(_, e)| e.organizer_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let orgs = crate::service::organization::find_by_ids(db, &ids).await?;
        loaders.organization.prime(orgs.into_iter().map(|o| (o.org.id, o)));
        Ok::<_, AppError>(())
    };
    let seats = async {
        if connection::node_selections(ctx, "seats").is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = page.iter().map(|(_, e)| e.id).collect();
        loaders.event_counts.prime(service::counts_of(db, &ids).await?);
        Ok::<_, AppError>(())
    };
    futures::try_join!(organizers, seats).extend()?;
    Ok(())
}

/// Writes the `#[Object]` impl of one kind of event: the interface's fields, then its own.
macro_rules! event_object {
    ($ty:ident { $($extra:tt)* }) => {
        #[Object]
        impl $ty {
            pub async fn id(&self) -> ID {
                ids::encode(EVENT, self.0.id)
            }

            async fn kind(&self) -> EventKind {
                self.0.kind.into()
            }

            /// Title in Simplified Chinese.
            async fn title(&self) -> &str {
                &self.0.title
            }

            /// Title in Traditional Chinese, for cross-strait audiences.
            async fn title_traditional(&self) -> Option<&str> {
                self.0.title_traditional.as_deref()
            }

            async fn summary(&self) -> &str {
                &self.0.summary
            }

            async fn summary_traditional(&self) -> Option<&str> {
                self.0.summary_traditional.as_deref()
            }

            async fn description(&self) -> &str {
                &self.0.description
            }

            async fn description_traditional(&self) -> Option<&str> {
                self.0.description_traditional.as_deref()
            }

            async fn starts_at(&self) -> DateTime<Utc> {
                self.0.starts_at
            }

            async fn ends_at(&self) -> DateTime<Utc> {
                self.0.ends_at
            }

            /// The zone the event's times are shown in (IANA name).
            async fn time_zone(&self) -> &str {
                &self.0.time_zone
            }

            async fn venue(&self) -> Venue {
                Venue {
                    space_id: self.0.venue_space_id.map(|id| ids::encode(SPACE, id)),
                    address: self.0.venue_address.clone(),
                    space_row: self.0.venue_space_id,
                }
            }

            /// The organization running the event.
            async fn organizer(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
                let loaders = ctx.data::<Loaders>()?;
                let org = loaders.organization.load_one(self.0.organizer_id).await.map_err(|e| e.extend())?;
                Ok(org.map(Organization))
            }

            async fn status(&self) -> EventStatus {
                self.0.status.into()
            }

            /// Persons the event seats.
            async fn capacity(&self) -> i32 {
                self.0.capacity
            }

            /// Most persons one registration may bring, the registrant included.
            async fn group_limit(&self) -> i32 {
                self.0.group_limit
            }

            /// `null`: open as soon as the event is published.
            async fn registration_opens_at(&self) -> Option<DateTime<Utc>> {
                self.0.registration_opens_at
            }

            async fn registration_closes_at(&self) -> DateTime<Utc> {
                self.0.registration_closes_at.unwrap_or(self.0.starts_at)
            }

            /// Until when registrants may cancel themselves.
            async fn cancellation_deadline(&self) -> DateTime<Utc> {
                self.0.cancellation_deadline.unwrap_or(self.0.starts_at)
            }

            /// Registrations wait for the organizer's decision.
            async fn requires_approval(&self) -> bool {
                self.0.requires_approval
            }

            /// Registrants give an identity document number (cross-strait exchanges).
            async fn requires_identity_document(&self) -> bool {
                self.0.requires_identity_document
            }

            async fn audience_tags(&self) -> Vec<String> {
                service::tags_of(&self.0)
            }

            /// Questions registrants answer.
            async fn questions(&self) -> Vec<Question> {
                service::questions_of(&self.0)
                    .into_iter()
                    .map(|q| Question { key: q.key, prompt: q.prompt, required: q.required })
                    .collect()
            }

            /// Live seat and attendance counts.
            async fn seats(&self, ctx: &Context<'_>) -> Result<EventSeats> {
                seats_of(ctx, &self.0).await
            }

            /// Person-times this event has served (checked-in attendance).
            async fn impact(&self, ctx: &Context<'_>) -> Result<PersonTimes> {
                impact_of(ctx, self.0.id).await
            }

            /// Whether the viewer runs this event (edit, decide, check in, see registrants).
            async fn viewer_can_manage(&self, ctx: &Context<'_>) -> bool {
                viewer(ctx).can_manage_event(self.0.organizer_id)
            }

            /// Registrations in queue order; `null` unless the viewer runs the event.
            async fn registrations(
                &self,
                ctx: &Context<'_>,
                status: Option<Vec<RegistrationStatus>>,
                first: Option<i32>,
                after: Option<String>,
                last: Option<i32>,
                before: Option<String>,
            ) -> Result<Option<PagedConnection<Registration>>> {
                registrations_of(ctx, &self.0, status, first, after, last, before).await
            }

            $($extra)*
        }
    };
}

event_object!(Training {
    /// The training's dated sessions, in time order. With sessions, check-in is per session,
    /// each session attended counts as person-times, and the certificate needs
    /// `certificateThresholdPercent` of the sessions.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<TrainingSession>> {
        let loaders = ctx.data::<Loaders>()?;
        let rows = loaders.sessions.load_one(self.0.id).await.map_err(|e| e.extend())?;
        Ok(rows.unwrap_or_default().into_iter().map(TrainingSession).collect())
    }

    /// The programme this cohort belongs to.
    async fn programme(&self, ctx: &Context<'_>) -> Result<Option<TrainingProgramme>> {
        let Some(id) = self.0.programme_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.programme.load_one(id).await.map_err(|e| e.extend())?.map(TrainingProgramme))
    }

    /// Cohort number within the programme (1, 2, …).
    async fn cohort(&self) -> i32 {
        self.0.cohort.unwrap_or_default()
    }

    async fn trainers(&self) -> Vec<String> {
        service::strings_of(self.0.trainers.as_deref())
    }

    async fn syllabus(&self) -> Option<&str> {
        self.0.syllabus.as_deref()
    }

    /// Teaching hours.
    async fn hours(&self) -> Option<i32> {
        self.0.hours
    }

    /// Share of the training a participant attends to earn the certificate.
    async fn certificate_threshold_percent(&self) -> Option<i32> {
        self.0.certificate_threshold_percent
    }
});

event_object!(Exhibition {
    /// Exhibits in display order.
    async fn exhibits(&self, ctx: &Context<'_>) -> Result<Vec<Exhibit>> {
        let loaders = ctx.data::<Loaders>()?;
        let rows = loaders.exhibits.load_one(self.0.id).await.map_err(|e| e.extend())?;
        Ok(rows.unwrap_or_default().into_iter().map(Exhibit).collect())
    }
});

event_object!(Salon {});

event_object!(PromotionEvent {});

event_object!(ExchangeEvent {
    async fn delegations(&self, ctx: &Context<'_>) -> Result<Vec<Delegation>> {
        let loaders = ctx.data::<Loaders>()?;
        let rows = loaders.delegations.load_one(self.0.id).await.map_err(|e| e.extend())?;
        Ok(rows.unwrap_or_default().into_iter().map(Delegation).collect())
    }
});

/// A course run as numbered cohorts (e.g. project-management training, cohorts 1–5).
pub struct TrainingProgramme(pub training_programme::Model);

#[Object]
impl TrainingProgramme {
    pub async fn id(&self) -> ID {
        ids::encode(PROGRAMME, self.0.id)
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn organizer(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.organization.load_one(self.0.organizer_id).await.map_err(|e| e.extend())?.map(Organization))
    }

    /// Cohorts by number (drafts only for those who run them).
    async fn cohorts(&self, ctx: &Context<'_>) -> Result<Vec<Training>> {
        let loaders = ctx.data::<Loaders>()?;
        let viewer = viewer(ctx);
        let rows = loaders.cohorts.load_one(self.0.id).await.map_err(|e| e.extend())?.unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter(|e| e.status != event_entity::EventStatus::Draft || viewer.can_manage_event(e.organizer_id))
            .map(Training)
            .collect())
    }
}

/// One piece of an exhibition: a case or a project result.
pub struct Exhibit(pub exhibit::Model);

#[Object]
impl Exhibit {
    async fn id(&self) -> ID {
        ids::encode(EXHIBIT, self.0.id)
    }

    async fn position(&self) -> i32 {
        self.0.position
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn story(&self) -> &str {
        &self.0.story
    }

    async fn media_urls(&self) -> Vec<String> {
        service::strings_of(Some(&self.0.media_urls))
    }

    /// The organization the exhibit shows.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.organization.load_one(id).await.map_err(|e| e.extend())?.map(Organization))
    }

    /// The project it shows.
    async fn project_name(&self) -> Option<&str> {
        self.0.project_name.as_deref()
    }
}

/// One dated session of a training.
pub struct TrainingSession(pub entity::training_session::Model);

#[Object]
impl TrainingSession {
    async fn id(&self) -> ID {
        ids::encode(SESSION, self.0.id)
    }

    async fn topic(&self) -> &str {
        &self.0.topic
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
}

/// A delegation taking part in an exchange.
pub struct Delegation(pub delegation::Model);

#[Object]
impl Delegation {
    async fn id(&self) -> ID {
        ids::encode(DELEGATION, self.0.id)
    }

    async fn origin(&self) -> DelegationOrigin {
        self.0.origin.into()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn name_traditional(&self) -> Option<&str> {
        self.0.name_traditional.as_deref()
    }

    async fn leader_name(&self) -> &str {
        &self.0.leader_name
    }

    async fn members(&self) -> Vec<String> {
        service::strings_of(Some(&self.0.members))
    }

    async fn host_organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        let ids: Vec<i64> = serde_json::from_str(&self.0.host_organization_ids).unwrap_or_default();
        let loaders = ctx.data::<Loaders>()?;
        let found = loaders.organization.load_many(ids.clone()).await.map_err(|e| e.extend())?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).map(Organization).collect())
    }
}

#[derive(SimpleObject)]
pub struct AttendanceGroups {
    pub women: i32,
    pub children: i32,
    pub family_members: i32,
    pub professionals: i32,
}

#[derive(SimpleObject)]
pub struct RegistrationAnswer {
    pub question: String,
    pub answer: String,
}

/// An identity document as organizers see it: masked, and gone once purged.
#[derive(SimpleObject)]
pub struct IdentityDocument {
    #[graphql(name = "type")]
    pub kind: IdentityDocumentType,
    /// e.g. `35**************34`; `null` once purged.
    pub masked_number: Option<String>,
    pub purged_at: Option<DateTime<Utc>>,
}

/// A registration for an event. Reaches only the registrant and the event's organizers.
pub struct Registration(pub registration::Model);

#[Object]
impl Registration {
    pub async fn id(&self) -> ID {
        ids::encode(REGISTRATION, self.0.id)
    }

    /// What happened to it, newest first: who created, changed, decided or paid what, and
    /// when. `null` unless the viewer is staff (and, for donations, reconcilers).
    #[graphql(complexity = "connection::cost(first, None, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<PagedConnection<super::audit::AuditEntry>>> {
        let allowed = viewer(ctx).can_see_history();
        super::audit::history_of(ctx, crate::events::Aggregate::Registration, self.0.id, allowed, first, after).await
    }

    async fn event(&self, ctx: &Context<'_>) -> Result<Option<Event>> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.event.load_one(self.0.event_id).await.map_err(|e| e.extend())?.map(Event::from_model))
    }

    async fn status(&self) -> RegistrationStatus {
        self.0.status.into()
    }

    /// The registrant's name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Persons on this registration, the registrant included.
    async fn party_size(&self) -> i32 {
        self.0.party_size
    }

    /// Who is served, as declared at registration (or at check-in, once checked in).
    async fn groups(&self) -> AttendanceGroups {
        AttendanceGroups {
            women: self.0.women,
            children: self.0.children,
            family_members: self.0.family_members,
            professionals: self.0.professionals,
        }
    }

    async fn answers(&self) -> Vec<RegistrationAnswer> {
        service::answers_of(&self.0)
            .into_iter()
            .map(|a| RegistrationAnswer { question: a.question, answer: a.answer })
            .collect()
    }

    /// The code to show at the door (QR alphanumeric mode).
    async fn ticket_code(&self) -> &str {
        &self.0.ticket_code
    }

    async fn checked_in_at(&self) -> Option<DateTime<Utc>> {
        self.0.checked_in_at
    }

    /// Persons present at check-in.
    async fn attended(&self) -> Option<i32> {
        self.0.attended
    }

    /// Place in the waitlist (1 = next to be promoted); `null` unless waitlisted.
    async fn waitlist_position(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        if self.0.status != registration::RegistrationStatus::Waitlisted {
            return Ok(None);
        }
        let loaders = ctx.data::<Loaders>()?;
        loaders.waitlist_position.load_one(self.0.id).await.map_err(|e| e.extend())
    }

    /// Trainings: whether the attendance earns the certificate: sessions attended are at least
    /// `certificateThresholdPercent` of the training's sessions (a training without sessions:
    /// checked in). `null` for other kinds and trainings without a threshold.
    async fn certificate_eligible(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        let loaders = ctx.data::<Loaders>()?;
        let Some(event) = loaders.event.load_one(self.0.event_id).await.map_err(|e| e.extend())? else {
            return Ok(None);
        };
        if event.kind != ModelKind::Training {
            return Ok(None);
        }
        let sessions = loaders.sessions.load_one(event.id).await.map_err(|e| e.extend())?.map_or(0, |s| s.len());
        Ok(service::certificate_eligible(&event, sessions, &self.0))
    }

    /// Trainings with sessions: the sessions checked in to.
    async fn sessions_attended(&self) -> i32 {
        self.0.sessions_attended
    }

    /// Trainings: the certificate number, issued to eligible participants when the training
    /// is completed.
    async fn certificate_number(&self) -> Option<&str> {
        self.0.certificate_number.as_deref()
    }

    /// When the registration joined the event's queue. These times are strictly increasing per
    /// event in the order registrations were taken: the order seats were confirmed in and the
    /// waitlist's order (`waitlistPosition`).
    async fn registered_at(&self) -> DateTime<Utc> {
        self.0.queued_at
    }

    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }

    /// Only the event's organizers see it, masked; `null` for everyone else.
    async fn identity_document(&self, ctx: &Context<'_>) -> Result<Option<IdentityDocument>> {
        let Some(kind) = self.0.id_doc_type else { return Ok(None) };
        let loaders = ctx.data::<Loaders>()?;
        let Some(event) = loaders.event.load_one(self.0.event_id).await.map_err(|e| e.extend())? else {
            return Ok(None);
        };
        if !viewer(ctx).can_manage_event(event.organizer_id) {
            return Ok(None);
        }
        Ok(Some(IdentityDocument {
            kind: kind.into(),
            masked_number: self.0.id_doc_number.as_deref().map(service::mask),
            purged_at: self.0.id_doc_purged_at,
        }))
    }
}

// ---------------------------------------------------------------- queries

#[derive(InputObject, Default)]
pub struct EventFilter {
    /// Events of any of these kinds.
    pub kind: Option<Vec<EventKind>>,
    /// Events that end at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events that start before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Events run by this organization.
    pub organizer: Option<ID>,
    /// Substring of the title (either script) or the summary.
    pub search: Option<String>,
    /// Drafts too: staff, and members of the `organizer` given.
    #[graphql(default)]
    pub include_drafts: bool,
    /// Exchanges with a delegation from any of these origins (e.g. `[TAIWAN]`).
    pub delegation_origin: Option<Vec<DelegationOrigin>>,
}

#[derive(SimpleObject)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// Events on this day (a multi-day event appears on each of its days).
    pub events: Vec<Event>,
}

/// One month of events in the base's zone (Asia/Shanghai), only days that have events.
#[derive(SimpleObject)]
pub struct EventCalendarMonth {
    pub year: i32,
    pub month: u32,
    pub days: Vec<CalendarDay>,
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// An event by ID; `null` when there is none (or it is a draft the viewer does not run).
    async fn event(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Event>> {
        let state = state(ctx)?;
        let id = ids::decode(&id, EVENT, "id").extend()?;
        ResponseTags::entity(ctx, Family::Event, id).await;
        let found = match service::find(&state.db, id).await {
            Ok(e) => e,
            Err(AppError::NotFound(_)) => {
                ResponseTags::missing(ctx, Family::Event);
                return Ok(None);
            }
            Err(e) => return Err(e.extend()),
        };
        if found.status == event_entity::EventStatus::Draft && !viewer(ctx).can_manage_event(found.organizer_id) {
            ResponseTags::missing(ctx, Family::Event);
            return Ok(None);
        }
        Ok(Some(Event::from_model(found)))
    }

    /// Events by start time.
    async fn events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EventFilter>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Event>> {
        let state = state(ctx)?;
        let filter = filter.unwrap_or_default();
        let organizer_id = match &filter.organizer {
            Some(id) => Some(ids::decode(id, super::organization::TYPE_NAME, "filter.organizer").extend()?),
            None => None,
        };
        let service_filter = ServiceFilter {
            kinds: filter.kind.unwrap_or_default().into_iter().map(Into::into).collect(),
            from: filter.from,
            to: filter.to,
            organizer_id,
            search: filter.search,
            // Staff see every draft; organization members their organization's.
            include_drafts: filter.include_drafts
                && (viewer(ctx).is_staff() || organizer_id.is_some_and(|o| viewer(ctx).can_manage_event(o))),
            delegation_origins: filter.delegation_origin.unwrap_or_default().into_iter().map(Into::into).collect(),
        };
        let page = state
            .events()
            .list(&service_filter, &connection::args(first, after, last, before), connection::wants_total(ctx))
            .await
            .extend()?;
        load_ahead(ctx, &page.items).await?;
        Ok(connection::from_page(page, Event::from_model))
    }

    /// A month of events, day by day, in the base's zone.
    async fn event_calendar(&self, ctx: &Context<'_>, year: i32, month: u32) -> Result<EventCalendarMonth> {
        let state = state(ctx)?;
        let include_drafts = viewer(ctx).is_staff();
        let events = state.events().month(year, month, include_drafts).await.extend()?;
        let mut days: std::collections::BTreeMap<NaiveDate, Vec<Event>> = std::collections::BTreeMap::new();
        for e in events {
            for d in service::days_in_month(&e, year, month) {
                days.entry(d).or_default().push(Event::from_model(e.clone()));
            }
        }
        Ok(EventCalendarMonth {
            year,
            month,
            days: days.into_iter().map(|(date, events)| CalendarDay { date, events }).collect(),
        })
    }

    async fn training_programme(&self, ctx: &Context<'_>, id: ID) -> Result<Option<TrainingProgramme>> {
        let state = state(ctx)?;
        let id = ids::decode(&id, PROGRAMME, "id").extend()?;
        match service::find_programme(&state.db, id).await {
            Ok(p) => Ok(Some(TrainingProgramme(p))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.extend()),
        }
    }

    /// The signed-in person's registrations, newest first.
    async fn my_registrations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Registration>> {
        let state = state(ctx)?;
        let account = viewer(ctx).require_account().extend()?;
        let page = service::registrations_of_account(
            &state.db,
            account.id,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Registration))
    }

    /// Person-times served by events that started in `[from, to)`.
    async fn person_times(&self, ctx: &Context<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<PersonTimes> {
        let state = state(ctx)?;
        Ok(service::person_times(&state.db, from, to).await.extend()?.into())
    }
}

// ---------------------------------------------------------------- mutations

#[derive(InputObject)]
pub struct QuestionInputObject {
    pub prompt: String,
    #[graphql(default)]
    pub required: bool,
}

#[derive(InputObject)]
#[graphql(name = "VenueInput")]
pub struct VenueInput {
    /// A base space (from the spaces API).
    pub space_id: Option<ID>,
    /// An outside address.
    pub address: Option<String>,
}

#[derive(InputObject)]
pub struct TrainingInput {
    pub programme_id: ID,
    pub cohort: i32,
    #[graphql(default)]
    pub trainers: Vec<String>,
    pub syllabus: Option<String>,
    pub hours: Option<i32>,
    pub certificate_threshold_percent: Option<i32>,
}

#[derive(InputObject)]
pub struct CreateEventInput {
    pub kind: EventKind,
    pub organizer_id: ID,
    pub title: String,
    pub title_traditional: Option<String>,
    pub summary: Option<String>,
    pub summary_traditional: Option<String>,
    pub description: Option<String>,
    pub description_traditional: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Default Asia/Shanghai.
    pub time_zone: Option<String>,
    pub venue: VenueInput,
    pub capacity: i32,
    /// Most persons per registration, the registrant included (default 1).
    pub group_limit: Option<i32>,
    pub registration_opens_at: Option<DateTime<Utc>>,
    /// Default: the start.
    pub registration_closes_at: Option<DateTime<Utc>>,
    /// Until when registrants may cancel themselves; default: the start.
    pub cancellation_deadline: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub requires_approval: bool,
    #[graphql(default)]
    pub requires_identity_document: bool,
    #[graphql(default)]
    pub audience_tags: Vec<String>,
    #[graphql(default)]
    pub questions: Vec<QuestionInputObject>,
    /// Required for TRAINING, refused otherwise.
    pub training: Option<TrainingInput>,
}

/// Fields left out stay as they are; nullable fields set to `null` are cleared.
#[derive(InputObject)]
pub struct UpdateEventInput {
    pub id: ID,
    pub title: Option<String>,
    pub title_traditional: MaybeUndefined<String>,
    pub summary: Option<String>,
    pub summary_traditional: MaybeUndefined<String>,
    pub description: Option<String>,
    pub description_traditional: MaybeUndefined<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
    pub venue: Option<VenueInput>,
    /// Raising it promotes the waitlist; it cannot go below the confirmed seats.
    pub capacity: Option<i32>,
    pub group_limit: Option<i32>,
    pub registration_opens_at: MaybeUndefined<DateTime<Utc>>,
    pub registration_closes_at: MaybeUndefined<DateTime<Utc>>,
    pub cancellation_deadline: MaybeUndefined<DateTime<Utc>>,
    pub requires_approval: Option<bool>,
    pub requires_identity_document: Option<bool>,
    pub audience_tags: Option<Vec<String>>,
    /// Replaces the questions (keys are renumbered q1, q2, …).
    pub questions: Option<Vec<QuestionInputObject>>,
    pub trainers: Option<Vec<String>>,
    pub syllabus: MaybeUndefined<String>,
    pub hours: MaybeUndefined<i32>,
    pub certificate_threshold_percent: MaybeUndefined<i32>,
}

#[derive(InputObject)]
pub struct TransitionEventStatusInput {
    pub id: ID,
    /// PUBLISHED or CANCELLED from DRAFT; CANCELLED or COMPLETED (once started) from PUBLISHED.
    pub status: EventStatus,
}

#[derive(InputObject)]
pub struct CreateTrainingProgrammeInput {
    pub organizer_id: ID,
    pub title: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct AddExhibitInput {
    pub event_id: ID,
    pub title: String,
    pub story: Option<String>,
    #[graphql(default)]
    pub media_urls: Vec<String>,
    pub organization_id: Option<ID>,
    pub project_name: Option<String>,
}

#[derive(InputObject)]
pub struct AddDelegationInput {
    pub event_id: ID,
    pub origin: DelegationOrigin,
    pub name: String,
    pub name_traditional: Option<String>,
    pub leader_name: String,
    #[graphql(default)]
    pub members: Vec<String>,
    #[graphql(default)]
    pub host_organization_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct RemoveExhibitInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RemoveDelegationInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveExhibitPayload {
    pub removed_exhibit_id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveDelegationPayload {
    pub removed_delegation_id: ID,
}

#[derive(InputObject, Default)]
pub struct GroupsInput {
    #[graphql(default)]
    pub women: i32,
    #[graphql(default)]
    pub children: i32,
    #[graphql(default)]
    pub family_members: i32,
    #[graphql(default)]
    pub professionals: i32,
}

impl From<GroupsInput> for Groups {
    fn from(g: GroupsInput) -> Self {
        Groups {
            women: g.women,
            children: g.children,
            family_members: g.family_members,
            professionals: g.professionals,
        }
    }
}

#[derive(InputObject)]
pub struct AnswerInput {
    /// The question's key (`q1`, …).
    pub question: String,
    pub answer: String,
}

#[derive(InputObject)]
pub struct IdentityDocumentInput {
    #[graphql(name = "type")]
    pub kind: IdentityDocumentType,
    pub number: String,
}

/// A partner's named guest.
#[derive(InputObject)]
pub struct GuestInput {
    pub name: String,
    pub phone: String,
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub event_id: ID,
    /// Persons on this registration, the registrant included (default 1).
    #[graphql(default = 1)]
    pub party_size: i32,
    /// Who is served (each at most the party size).
    pub groups: Option<GroupsInput>,
    #[graphql(default)]
    pub answers: Vec<AnswerInput>,
    /// Consent to the privacy terms; must be true.
    pub privacy_consent: bool,
    /// Retrying with the same key returns the first result instead of registering twice.
    pub client_key: Option<String>,
    /// Where the event requires one; ignored (not stored) otherwise.
    pub identity_document: Option<IdentityDocumentInput>,
    /// Partner keys with REGISTER scope register named guests.
    pub guest: Option<GuestInput>,
}

#[derive(InputObject)]
pub struct CancelRegistrationInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct DecideRegistrationInput {
    pub id: ID,
    pub accept: bool,
}

#[derive(InputObject)]
pub struct CheckInInput {
    pub event_id: ID,
    pub ticket_code: String,
    /// Persons present; default the whole party.
    pub attended: Option<i32>,
    /// Who was served, declared at the door; default what the registration declared.
    pub groups: Option<GroupsInput>,
    /// The session checked in to: required for trainings with sessions (persons and groups
    /// are recorded at the first session attended).
    pub session_id: Option<ID>,
}

#[derive(InputObject)]
pub struct AddTrainingSessionInput {
    pub event_id: ID,
    pub topic: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct AddTrainingSessionPayload {
    pub session: TrainingSession,
}

#[derive(SimpleObject)]
pub struct EventPayload {
    pub event: Event,
}

#[derive(SimpleObject)]
pub struct CreateTrainingProgrammePayload {
    pub programme: TrainingProgramme,
}

#[derive(SimpleObject)]
pub struct AddExhibitPayload {
    pub exhibit: Exhibit,
}

#[derive(SimpleObject)]
pub struct AddDelegationPayload {
    pub delegation: Delegation,
}

#[derive(SimpleObject)]
pub struct RegisterPayload {
    pub registration: Registration,
    /// The same clientKey was seen before: this is the first call's registration.
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct RegistrationPayload {
    pub registration: Registration,
}

#[derive(SimpleObject)]
pub struct CheckInPayload {
    pub registration: Registration,
    /// The ticket had been scanned before; nothing new was recorded.
    pub already_checked_in: bool,
    /// When the (first) check-in happened.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// Live counts after this scan.
    pub seats: EventSeats,
}

fn questions(list: Vec<QuestionInputObject>) -> Vec<QuestionInput> {
    list.into_iter().map(|q| QuestionInput { prompt: q.prompt, required: q.required }).collect()
}

fn venue(v: VenueInput) -> Result<(Option<i64>, Option<String>)> {
    let space = match &v.space_id {
        Some(id) => Some(ids::decode(id, SPACE, "venue.spaceId").extend()?),
        None => None,
    };
    Ok((space, v.address))
}

/// The event an input names, and the check that the viewer runs it.
#[derive(Default)]
pub struct EventMutation;

#[Object]
impl EventMutation {
    /// Creates an event as a draft.
    async fn create_event(&self, ctx: &Context<'_>, input: CreateEventInput) -> Result<EventPayload> {
        let state = state(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, super::organization::TYPE_NAME, "organizerId").extend()?;
        let training = match input.training {
            Some(t) => Some(TrainingFields {
                programme_id: ids::decode(&t.programme_id, PROGRAMME, "training.programmeId").extend()?,
                cohort: t.cohort,
                trainers: t.trainers,
                syllabus: t.syllabus,
                hours: t.hours,
                certificate_threshold_percent: t.certificate_threshold_percent,
            }),
            None => None,
        };
        let (venue_space_id, venue_address) = venue(input.venue)?;
        let created = service::create_event(
            state.ctx(),
            viewer(ctx),
            NewEvent {
                kind: input.kind.into(),
                title: input.title,
                title_traditional: input.title_traditional,
                summary: input.summary,
                summary_traditional: input.summary_traditional,
                description: input.description,
                description_traditional: input.description_traditional,
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                time_zone: input.time_zone,
                venue_space_id,
                venue_address,
                organizer_id,
                capacity: input.capacity,
                group_limit: input.group_limit,
                registration_opens_at: input.registration_opens_at,
                registration_closes_at: input.registration_closes_at,
                cancellation_deadline: input.cancellation_deadline,
                requires_approval: input.requires_approval,
                requires_identity_document: input.requires_identity_document,
                audience_tags: input.audience_tags,
                questions: questions(input.questions),
                training,
            },
        )
        .await
        .map_err(super::space::with_global_ids)?;
        Ok(EventPayload { event: Event::from_model(created) })
    }

    async fn update_event(&self, ctx: &Context<'_>, input: UpdateEventInput) -> Result<EventPayload> {
        let id = ids::decode(&input.id, EVENT, "id").extend()?;
        let state = state(ctx)?;
        let venue = match input.venue {
            Some(v) => Some(venue(v)?),
            None => None,
        };
        let updated = service::update_event(
            state.ctx(),
            viewer(ctx),
            id,
            EventPatch {
                title: input.title,
                title_traditional: input.title_traditional.into(),
                summary: input.summary,
                summary_traditional: input.summary_traditional.into(),
                description: input.description,
                description_traditional: input.description_traditional.into(),
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                time_zone: input.time_zone,
                venue,
                capacity: input.capacity,
                group_limit: input.group_limit,
                registration_opens_at: input.registration_opens_at.into(),
                registration_closes_at: input.registration_closes_at.into(),
                cancellation_deadline: input.cancellation_deadline.into(),
                requires_approval: input.requires_approval,
                requires_identity_document: input.requires_identity_document,
                audience_tags: input.audience_tags,
                questions: input.questions.map(questions),
                trainers: input.trainers,
                syllabus: input.syllabus.into(),
                hours: input.hours.into(),
                certificate_threshold_percent: input.certificate_threshold_percent.into(),
            },
        )
        .await
        .map_err(super::space::with_global_ids)?;
        Ok(EventPayload { event: Event::from_model(updated) })
    }

    /// Publishes, cancels or completes an event.
    async fn transition_event_status(
        &self,
        ctx: &Context<'_>,
        input: TransitionEventStatusInput,
    ) -> Result<EventPayload> {
        let id = ids::decode(&input.id, EVENT, "id").extend()?;
        let updated = service::change_event_status(state(ctx)?.ctx(), viewer(ctx), id, input.status.into())
            .await
            .map_err(super::space::with_global_ids)?;
        Ok(EventPayload { event: Event::from_model(updated) })
    }

    async fn create_training_programme(
        &self,
        ctx: &Context<'_>,
        input: CreateTrainingProgrammeInput,
    ) -> Result<CreateTrainingProgrammePayload> {
        let state = state(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, super::organization::TYPE_NAME, "organizerId").extend()?;
        let programme =
            service::create_training_programme(state.ctx(), viewer(ctx), &input.title, input.description, organizer_id)
                .await
                .extend()?;
        Ok(CreateTrainingProgrammePayload { programme: TrainingProgramme(programme) })
    }

    async fn add_exhibit(&self, ctx: &Context<'_>, input: AddExhibitInput) -> Result<AddExhibitPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId").extend()?;
        let state = state(ctx)?;
        let organization_id = match &input.organization_id {
            Some(id) => Some(ids::decode(id, super::organization::TYPE_NAME, "organizationId").extend()?),
            None => None,
        };
        let exhibit = service::add_event_exhibit(
            state.ctx(),
            viewer(ctx),
            NewExhibit {
                event_id,
                title: input.title,
                story: input.story,
                media_urls: input.media_urls,
                organization_id,
                project_name: input.project_name,
            },
        )
        .await
        .extend()?;
        Ok(AddExhibitPayload { exhibit: Exhibit(exhibit) })
    }

    /// Adds a dated session to a training (within its time, overlapping none of its sessions).
    async fn add_training_session(
        &self,
        ctx: &Context<'_>,
        input: AddTrainingSessionInput,
    ) -> Result<AddTrainingSessionPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId").extend()?;
        let session = service::add_training_session_as(
            state(ctx)?.ctx(),
            viewer(ctx),
            service::NewSession { event_id, topic: input.topic, starts_at: input.starts_at, ends_at: input.ends_at },
        )
        .await
        .extend()?;
        Ok(AddTrainingSessionPayload { session: TrainingSession(session) })
    }

    async fn add_delegation(&self, ctx: &Context<'_>, input: AddDelegationInput) -> Result<AddDelegationPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId").extend()?;
        let state = state(ctx)?;
        let mut hosts = Vec::with_capacity(input.host_organization_ids.len());
        for id in &input.host_organization_ids {
            hosts.push(ids::decode(id, super::organization::TYPE_NAME, "hostOrganizationIds").extend()?);
        }
        let delegation = service::add_event_delegation(
            state.ctx(),
            viewer(ctx),
            NewDelegation {
                event_id,
                origin: input.origin.into(),
                name: input.name,
                name_traditional: input.name_traditional,
                leader_name: input.leader_name,
                members: input.members,
                host_organization_ids: hosts,
            },
        )
        .await
        .extend()?;
        Ok(AddDelegationPayload { delegation: Delegation(delegation) })
    }

    /// Removes an exhibit; those after it move up one place.
    async fn remove_exhibit(&self, ctx: &Context<'_>, input: RemoveExhibitInput) -> Result<RemoveExhibitPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, EXHIBIT, "id").extend()?;
        service::remove_event_exhibit(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RemoveExhibitPayload { removed_exhibit_id: input.id })
    }

    async fn remove_delegation(
        &self,
        ctx: &Context<'_>,
        input: RemoveDelegationInput,
    ) -> Result<RemoveDelegationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DELEGATION, "id").extend()?;
        service::remove_event_delegation(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RemoveDelegationPayload { removed_delegation_id: input.id })
    }

    /// Registers the signed-in person (with those they bring), or — with a partner key holding
    /// REGISTER — a named guest. Over capacity the registration joins the waitlist.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<RegisterPayload> {
        let state = state(ctx)?;
        let event_id = ids::decode(&input.event_id, EVENT, "eventId").extend()?;
        let request = RegistrationRequest {
            event_id,
            guest: input.guest.map(|g| (g.name, g.phone)),
            party_size: input.party_size,
            groups: input.groups.unwrap_or_default().into(),
            answers: input.answers.into_iter().map(|a| Answer { question: a.question, answer: a.answer }).collect(),
            privacy_consent: input.privacy_consent,
            client_key: input.client_key,
            identity_document: input.identity_document.map(|d| (d.kind.into(), d.number)),
        };
        let (registration, replayed) = service::register_as(state.ctx(), viewer(ctx), request).await.extend()?;
        Ok(RegisterPayload { registration: Registration(registration), replayed })
    }

    /// Cancels a registration; its seats go to the waitlist at once.
    async fn cancel_registration(
        &self,
        ctx: &Context<'_>,
        input: CancelRegistrationInput,
    ) -> Result<RegistrationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, REGISTRATION, "id").extend()?;
        let updated = service::cancel_registration_as(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RegistrationPayload { registration: Registration(updated) })
    }

    /// Accepts or declines a registration awaiting approval.
    async fn decide_registration(
        &self,
        ctx: &Context<'_>,
        input: DecideRegistrationInput,
    ) -> Result<RegistrationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, REGISTRATION, "id").extend()?;
        let updated = service::decide_registration_as(state.ctx(), viewer(ctx), id, input.accept).await.extend()?;
        Ok(RegistrationPayload { registration: Registration(updated) })
    }

    /// Checks a ticket in at the door. A second scan reports the first one.
    async fn check_in(&self, ctx: &Context<'_>, input: CheckInInput) -> Result<CheckInPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId").extend()?;
        let state = state(ctx)?;
        let session_id = match &input.session_id {
            Some(id) => Some(ids::decode(id, SESSION, "sessionId").extend()?),
            None => None,
        };
        let (event, outcome) = service::check_in_as(
            state.ctx(),
            viewer(ctx),
            event_id,
            input.ticket_code,
            input.attended,
            input.groups.map(Into::into),
            session_id,
        )
        .await
        .extend()?;
        let seats = seats_of(ctx, &event).await?;
        Ok(CheckInPayload {
            checked_in_at: outcome.registration.checked_in_at,
            already_checked_in: outcome.already_checked_in,
            registration: Registration(outcome.registration),
            seats,
        })
    }
}

impl From<Event> for super::node::Node {
    fn from(e: Event) -> Self {
        use super::node::Node;
        match e {
            Event::Training(x) => Node::Training(x),
            Event::Exhibition(x) => Node::Exhibition(x),
            Event::Salon(x) => Node::Salon(x),
            Event::PromotionEvent(x) => Node::PromotionEvent(x),
            Event::ExchangeEvent(x) => Node::ExchangeEvent(x),
        }
    }
}

// ---------------------------------------------------------------- subscriptions

#[derive(Default)]
pub struct EventSubscription;

/// An event's seats after something changed them.
#[derive(SimpleObject)]
pub struct EventSeatsChange {
    /// Pass as `after` when reconnecting to receive what came after this message.
    pub cursor: String,
    /// What changed them (`registration.confirmed`, `registration.promoted`,
    /// `registration.cancelled`, `event.updated`, …); `null` on the first message, which shows
    /// the seats as they are.
    pub event_type: Option<String>,
    pub event_id: Option<ID>,
    /// The registration concerned, when the change is about one.
    pub registration_id: Option<ID>,
    /// The seats when the message is delivered (also when replaying missed changes).
    pub seats: EventSeats,
}

async fn seats_now(db: &sea_orm::DatabaseConnection, id: i64) -> crate::error::AppResult<EventSeats> {
    let m = service::find(db, id).await?;
    let c = service::counts_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let taken = c.confirmed_persons as i32;
    Ok(EventSeats {
        capacity: m.capacity,
        taken,
        left: (m.capacity - taken).max(0),
        confirmed_registrations: c.confirmed_registrations,
        pending_registrations: c.pending_registrations,
        waitlisted_registrations: c.waitlisted_registrations,
        waitlisted_persons: c.waitlisted_persons,
        checked_in_registrations: c.checked_in_registrations,
        checked_in_persons: c.checked_in_persons,
    })
}

/// Whether `e` changes event `id`'s seats.
fn changes_seats(e: &entity::domain_event::Model, id: i64) -> bool {
    use crate::events::{Aggregate, EventKind as K};
    match crate::events::log::kind_of(e) {
        Some(K::EventUpdated | K::EventPublished | K::EventCancelled | K::EventCompleted) => e.aggregate_id == id,
        Some(kind) if kind.aggregate() == Aggregate::Registration => {
            e.payload.get("eventId").and_then(serde_json::Value::as_i64) == Some(id)
        }
        _ => false,
    }
}

#[async_graphql::Subscription]
impl EventSubscription {
    /// An event's seats now (capacity, taken, left, waitlisted, checked in), then again each
    /// time a registration, cancellation, promotion, decision, check-in or edit changes them,
    /// written by any server instance or the CLI. Published events, or any event for those who
    /// run it. With `after` (a cursor of an earlier message) the changes since come first, in
    /// order; a cursor past the replay window answers `BAD_USER_INPUT`, reason `CURSOR_EXPIRED`.
    async fn event_seats(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = EventSeatsChange> + use<>> {
        let id = ids::decode(&event_id, EVENT, "eventId").extend()?;
        let state = state(ctx)?.clone();
        let after = super::audit::resume(&state, after).await?;
        let (start, changes) =
            crate::events::live::events(&state.log, state.db.clone(), after, move |e| changes_seats(e, id))
                .await
                .map_err(|e| e.extend())?;
        let event = service::find(&state.db, id).await.extend()?;
        let v = viewer(ctx);
        if event.status == entity::event::EventStatus::Draft && !v.can_manage_event(event.organizer_id) {
            return Err(AppError::NotFound("event".into()).extend());
        }
        let first = match after {
            Some(_) => None,
            None => Some(EventSeatsChange {
                cursor: start.cursor(),
                event_type: None,
                event_id: None,
                registration_id: None,
                seats: seats_now(&state.db, id).await.extend()?,
            }),
        };
        let db = state.db.clone();
        let changes = futures::StreamExt::filter_map(changes, move |e| {
            let db = db.clone();
            async move {
                let registration = (e.aggregate_type == crate::events::Aggregate::Registration.type_name())
                    .then(|| ids::encode(REGISTRATION, e.aggregate_id));
                match seats_now(&db, id).await {
                    Ok(seats) => Some(EventSeatsChange {
                        cursor: crate::events::Position::of(&e).cursor(),
                        event_type: Some(e.event_type.clone()),
                        event_id: Some(ids::encode(super::audit::AUDIT_ENTRY, e.id)),
                        registration_id: registration,
                        seats,
                    }),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read seats for a subscriber");
                        None
                    }
                }
            }
        });
        Ok(futures::StreamExt::chain(futures::stream::iter(first), changes))
    }
}

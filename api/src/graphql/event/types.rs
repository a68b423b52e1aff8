//! Event types: the Event interface and its kinds, venues, seats and person-times, with the page look-ahead.
#[allow(unused_imports)]
use super::*;
use crate::graphql::common::convert_fields;

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
    async fn space(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::space::Space>> {
        let Some(row) = self.space_row else { return Ok(None) };
        let found = Loaders::of(ctx)?.space.get(row).await?;
        Ok(found.map(crate::graphql::space::Space))
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

impl EventSeats {
    /// The seats of event `m` given its registration counts `c`.
    pub(super) fn of(m: &event_entity::Model, c: &crate::service::event::EventCounts) -> Self {
        let taken = c.confirmed_persons as i32;
        Self {
            capacity: m.capacity,
            taken,
            left: (m.capacity - taken).max(0),
            confirmed_registrations: c.confirmed_registrations,
            pending_registrations: c.pending_registrations,
            waitlisted_registrations: c.waitlisted_registrations,
            waitlisted_persons: c.waitlisted_persons,
            checked_in_registrations: c.checked_in_registrations,
            checked_in_persons: c.checked_in_persons,
        }
    }
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

convert_fields!(service::PersonTimes => PersonTimes { total, women, children, family_members, professionals, events });

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

pub(super) async fn seats_of(ctx: &Context<'_>, m: &event_entity::Model) -> Result<EventSeats> {
    let c = Loaders::of(ctx)?.event_counts.get_or_default(m.id).await?;
    // The live row, not the (possibly cached) model: seats change with every registration.
    Ok(EventSeats::of(m, &c))
}

pub(super) async fn impact_of(ctx: &Context<'_>, id: i64) -> Result<PersonTimes> {
    Ok(Loaders::of(ctx)?.event_impact.get_or_default(id).await?.into())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn registrations_of(
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
    let statuses: Vec<registration::RegistrationStatus> =
        status.unwrap_or_default().into_iter().map(Into::into).collect();
    connection::list(ctx, connection::args(first, after, last, before), Registration, async |db, page| {
        service::registrations_of_event(db, m.id, &statuses, page).await
    })
    .await
    .map(Some)
}

/// Loads the organizers and seat counts a page of events selects for the whole page at once,
/// one statement each, and primes the loaders its nested resolvers read (see `loaders`).
pub(super) async fn load_ahead(ctx: &Context<'_>, page: &[(String, event_entity::Model)]) -> Result<()> {
    if page.is_empty() {
        return Ok(());
    }
    let db = &state(ctx)?.db;
    let loaders = Loaders::of(ctx)?;
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
                                let org = Loaders::of(ctx)?.organization.get(self.0.organizer_id).await?;
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
                let rows = Loaders::of(ctx)?.sessions.get_or_default(self.0.id).await?;
        Ok(rows.into_iter().map(TrainingSession).collect())
    }

    /// The programme this cohort belongs to.
    async fn programme(&self, ctx: &Context<'_>) -> Result<Option<TrainingProgramme>> {
        let Some(id) = self.0.programme_id else { return Ok(None) };
                Ok(Loaders::of(ctx)?.programme.get(id).await?.map(TrainingProgramme))
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
                let rows = Loaders::of(ctx)?.exhibits.get_or_default(self.0.id).await?;
        Ok(rows.into_iter().map(Exhibit).collect())
    }
});

event_object!(Salon {});

event_object!(PromotionEvent {});

event_object!(ExchangeEvent {
    async fn delegations(&self, ctx: &Context<'_>) -> Result<Vec<Delegation>> {
                let rows = Loaders::of(ctx)?.delegations.get_or_default(self.0.id).await?;
        Ok(rows.into_iter().map(Delegation).collect())
    }
});

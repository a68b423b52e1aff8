//! Event mutations: resolvers decode, call the service command and map.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct EventMutation;

#[Object]
impl EventMutation {
    /// Creates an event as a draft.
    async fn create_event(&self, ctx: &Context<'_>, input: CreateEventInput) -> Result<EventPayload> {
        let state = state(ctx)?;
        let created = service::create_event(state.ctx(), viewer(ctx), input.into_new()?).await.extend()?;
        Ok(EventPayload { event: Event::from_model(created) })
    }

    async fn update_event(&self, ctx: &Context<'_>, input: UpdateEventInput) -> Result<EventPayload> {
        let id = ids::decode(&input.id, EVENT, "id")?;
        let state = state(ctx)?;
        let updated = service::update_event(state.ctx(), viewer(ctx), id, input.into_patch()?).await.extend()?;
        Ok(EventPayload { event: Event::from_model(updated) })
    }

    /// Publishes, cancels or completes an event.
    async fn transition_event_status(
        &self,
        ctx: &Context<'_>,
        input: TransitionEventStatusInput,
    ) -> Result<EventPayload> {
        let id = ids::decode(&input.id, EVENT, "id")?;
        let updated =
            service::change_event_status(state(ctx)?.ctx(), viewer(ctx), id, input.status.into()).await.extend()?;
        Ok(EventPayload { event: Event::from_model(updated) })
    }

    async fn create_training_programme(
        &self,
        ctx: &Context<'_>,
        input: CreateTrainingProgrammeInput,
    ) -> Result<CreateTrainingProgrammePayload> {
        let state = state(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, ids::ORGANIZATION, "organizerId")?;
        let programme =
            service::create_training_programme(state.ctx(), viewer(ctx), &input.title, input.description, organizer_id)
                .await
                .extend()?;
        Ok(CreateTrainingProgrammePayload { programme: TrainingProgramme(programme) })
    }

    async fn add_exhibit(&self, ctx: &Context<'_>, input: AddExhibitInput) -> Result<AddExhibitPayload> {
        let new = input.into_new()?;
        let exhibit = service::add_event_exhibit(state(ctx)?.ctx(), viewer(ctx), new).await.extend()?;
        Ok(AddExhibitPayload { exhibit: Exhibit(exhibit) })
    }

    /// Adds a dated session to a training (within its time, overlapping none of its sessions).
    async fn add_training_session(
        &self,
        ctx: &Context<'_>,
        input: AddTrainingSessionInput,
    ) -> Result<AddTrainingSessionPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId")?;
        let session = service::add_training_session_as(
            state(ctx)?.ctx(),
            viewer(ctx),
            service::NewSession { event_id, topic: input.topic, starts_at: input.starts_at, ends_at: input.ends_at },
        )
        .await
        .extend()?;
        Ok(AddTrainingSessionPayload { session: TrainingSession(session) })
    }

    /// Removes a session nobody has checked in to (`SESSION_ATTENDED` otherwise); not from a
    /// cancelled or completed training.
    async fn remove_training_session(
        &self,
        ctx: &Context<'_>,
        input: RemoveTrainingSessionInput,
    ) -> Result<RemoveTrainingSessionPayload> {
        let id = ids::decode(&input.id, SESSION, "id")?;
        service::remove_training_session_as(state(ctx)?.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RemoveTrainingSessionPayload { removed_session_id: input.id })
    }

    async fn add_delegation(&self, ctx: &Context<'_>, input: AddDelegationInput) -> Result<AddDelegationPayload> {
        let new = input.into_new()?;
        let delegation = service::add_event_delegation(state(ctx)?.ctx(), viewer(ctx), new).await.extend()?;
        Ok(AddDelegationPayload { delegation: Delegation(delegation) })
    }

    /// Removes an exhibit; those after it move up one place.
    async fn remove_exhibit(&self, ctx: &Context<'_>, input: RemoveExhibitInput) -> Result<RemoveExhibitPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, EXHIBIT, "id")?;
        service::remove_event_exhibit(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RemoveExhibitPayload { removed_exhibit_id: input.id })
    }

    async fn remove_delegation(
        &self,
        ctx: &Context<'_>,
        input: RemoveDelegationInput,
    ) -> Result<RemoveDelegationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DELEGATION, "id")?;
        service::remove_event_delegation(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(RemoveDelegationPayload { removed_delegation_id: input.id })
    }

    /// Registers the signed-in person (with those they bring), or — with a partner key holding
    /// REGISTER — a named guest. Over capacity the registration joins the waitlist.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<RegisterPayload> {
        let state = state(ctx)?;
        let event_id = ids::decode(&input.event_id, EVENT, "eventId")?;
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
        let id = ids::decode(&input.id, REGISTRATION, "id")?;
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
        let id = ids::decode(&input.id, REGISTRATION, "id")?;
        let updated = service::decide_registration_as(state.ctx(), viewer(ctx), id, input.accept).await.extend()?;
        Ok(RegistrationPayload { registration: Registration(updated) })
    }

    /// Checks a ticket in at the door. A second scan reports the first one.
    async fn check_in(&self, ctx: &Context<'_>, input: CheckInInput) -> Result<CheckInPayload> {
        let event_id = ids::decode(&input.event_id, EVENT, "eventId")?;
        let state = state(ctx)?;
        let session_id = ids::decode_optional(input.session_id.as_ref(), SESSION, "sessionId")?;
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

impl From<Event> for crate::graphql::node::Node {
    fn from(e: Event) -> Self {
        use crate::graphql::node::Node;
        match e {
            Event::Training(x) => Node::Training(x),
            Event::Exhibition(x) => Node::Exhibition(x),
            Event::Salon(x) => Node::Salon(x),
            Event::PromotionEvent(x) => Node::PromotionEvent(x),
            Event::ExchangeEvent(x) => Node::ExchangeEvent(x),
        }
    }
}

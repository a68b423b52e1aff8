//! Registrations as the API shows them.
#[allow(unused_imports)]
use super::*;

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

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::Registration, self.0.id)
    }

    async fn event(&self, ctx: &Context<'_>) -> Result<Option<Event>> {
        Ok(Loaders::of(ctx)?.event.get(self.0.event_id).await?.map(Event::from_model))
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
        let loaders = Loaders::of(ctx)?;
        loaders.waitlist_position.get(self.0.id).await
    }

    /// Trainings: whether the attendance earns the certificate: sessions attended are at least
    /// `certificateThresholdPercent` of the training's sessions (a training without sessions:
    /// checked in). `null` for other kinds and trainings without a threshold.
    async fn certificate_eligible(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        let loaders = Loaders::of(ctx)?;
        let Some(event) = loaders.event.get(self.0.event_id).await? else {
            return Ok(None);
        };
        if event.kind != ModelKind::Training {
            return Ok(None);
        }
        let sessions = loaders.sessions.get(event.id).await?.map_or(0, |s| s.len());
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
        let loaders = Loaders::of(ctx)?;
        let Some(event) = loaders.event.get(self.0.event_id).await? else {
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

//! Inputs and payloads of the event mutations.
#[allow(unused_imports)]
use super::*;
use crate::graphql::common::convert_fields;
use crate::graphql::common::payload;

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

payload!(RemoveExhibitPayload { removed_exhibit_id: ID });
payload!(RemoveDelegationPayload { removed_delegation_id: ID });

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

convert_fields!(GroupsInput => Groups { women, children, family_members, professionals });

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

payload!(AddTrainingSessionPayload { session: TrainingSession });

#[derive(InputObject)]
pub struct RemoveTrainingSessionInput {
    pub id: ID,
}

payload!(RemoveTrainingSessionPayload { removed_session_id: ID });
payload!(EventPayload { event: Event });
payload!(CreateTrainingProgrammePayload { programme: TrainingProgramme });
payload!(AddExhibitPayload { exhibit: Exhibit });
payload!(AddDelegationPayload { delegation: Delegation });

#[derive(SimpleObject)]
pub struct RegisterPayload {
    pub registration: Registration,
    /// The same clientKey was seen before: this is the first call's registration.
    pub replayed: bool,
}

payload!(RegistrationPayload { registration: Registration });

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

pub(super) fn questions(list: Vec<QuestionInputObject>) -> Vec<QuestionInput> {
    list.into_iter().map(|q| QuestionInput { prompt: q.prompt, required: q.required }).collect()
}

pub(super) fn venue(v: VenueInput) -> Result<(Option<i64>, Option<String>)> {
    let space = ids::decode_optional(v.space_id.as_ref(), SPACE, "venue.spaceId")?;
    Ok((space, v.address))
}

impl CreateEventInput {
    /// The service's `NewEvent`, its IDs decoded.
    pub(super) fn into_new(self) -> Result<NewEvent> {
        let organizer_id = ids::decode(&self.organizer_id, ids::ORGANIZATION, "organizerId")?;
        let training = match self.training {
            Some(t) => Some(TrainingFields {
                programme_id: ids::decode(&t.programme_id, PROGRAMME, "training.programmeId")?,
                cohort: t.cohort,
                trainers: t.trainers,
                syllabus: t.syllabus,
                hours: t.hours,
                certificate_threshold_percent: t.certificate_threshold_percent,
            }),
            None => None,
        };
        let (venue_space_id, venue_address) = venue(self.venue)?;
        Ok(NewEvent {
            kind: self.kind.into(),
            title: self.title,
            title_traditional: self.title_traditional,
            summary: self.summary,
            summary_traditional: self.summary_traditional,
            description: self.description,
            description_traditional: self.description_traditional,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            time_zone: self.time_zone,
            venue_space_id,
            venue_address,
            organizer_id,
            capacity: self.capacity,
            group_limit: self.group_limit,
            registration_opens_at: self.registration_opens_at,
            registration_closes_at: self.registration_closes_at,
            cancellation_deadline: self.cancellation_deadline,
            requires_approval: self.requires_approval,
            requires_identity_document: self.requires_identity_document,
            audience_tags: self.audience_tags,
            questions: questions(self.questions),
            training,
        })
    }
}

impl UpdateEventInput {
    /// The service's `EventPatch`, the venue's space decoded.
    pub(super) fn into_patch(self) -> Result<EventPatch> {
        let venue = match self.venue {
            Some(v) => Some(venue(v)?),
            None => None,
        };
        Ok(EventPatch {
            title: self.title,
            title_traditional: self.title_traditional.into(),
            summary: self.summary,
            summary_traditional: self.summary_traditional.into(),
            description: self.description,
            description_traditional: self.description_traditional.into(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            time_zone: self.time_zone,
            venue,
            capacity: self.capacity,
            group_limit: self.group_limit,
            registration_opens_at: self.registration_opens_at.into(),
            registration_closes_at: self.registration_closes_at.into(),
            cancellation_deadline: self.cancellation_deadline.into(),
            requires_approval: self.requires_approval,
            requires_identity_document: self.requires_identity_document,
            audience_tags: self.audience_tags,
            questions: self.questions.map(questions),
            trainers: self.trainers,
            syllabus: self.syllabus.into(),
            hours: self.hours.into(),
            certificate_threshold_percent: self.certificate_threshold_percent.into(),
        })
    }
}

impl AddExhibitInput {
    pub(super) fn into_new(self) -> Result<NewExhibit> {
        let event_id = ids::decode(&self.event_id, EVENT, "eventId")?;
        let organization_id = ids::decode_optional(self.organization_id.as_ref(), ids::ORGANIZATION, "organizationId")?;
        Ok(NewExhibit {
            event_id,
            title: self.title,
            story: self.story,
            media_urls: self.media_urls,
            organization_id,
            project_name: self.project_name,
        })
    }
}

impl AddDelegationInput {
    pub(super) fn into_new(self) -> Result<NewDelegation> {
        let event_id = ids::decode(&self.event_id, EVENT, "eventId")?;
        let hosts = ids::decode_all(&self.host_organization_ids, ids::ORGANIZATION, "hostOrganizationIds")?;
        Ok(NewDelegation {
            event_id,
            origin: self.origin.into(),
            name: self.name,
            name_traditional: self.name_traditional,
            leader_name: self.leader_name,
            members: self.members,
            host_organization_ids: hosts,
        })
    }
}

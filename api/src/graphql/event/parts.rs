//! What events hold: training programmes, exhibits, training sessions and delegations.
#[allow(unused_imports)]
use super::*;

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
        Ok(Loaders::of(ctx)?.organization.get(self.0.organizer_id).await?.map(Organization))
    }

    /// Cohorts by number (drafts only for those who run them).
    async fn cohorts(&self, ctx: &Context<'_>) -> Result<Vec<Training>> {
        let loaders = Loaders::of(ctx)?;
        let viewer = viewer(ctx);
        let rows = loaders.cohorts.get_or_default(self.0.id).await?;
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
        Ok(Loaders::of(ctx)?.organization.get(id).await?.map(Organization))
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
        let found = Loaders::of(ctx)?.organization.get_many(ids.clone()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).map(Organization).collect())
    }
}

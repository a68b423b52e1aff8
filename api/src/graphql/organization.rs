//! Organizations in the schema: the directory, profiles, and stage transitions.
use crate::graphql::common::payload;
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::organization_stage_transition as transition;

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::identity::{MemberRole, OrganizationMember, viewer};
use super::ids;
use super::loaders::Loaders;
use super::state;
use crate::events::Aggregate;
use crate::response_cache::{Family, ResponseTags};
use crate::service::organization::{
    self as service, NewOrganization, OrganizationFilter as ServiceFilter, OrganizationPatch, OrganizationRecord,
    OrganizationSort, StageChange,
};
use crate::service::pagination::SortDirection;

/// Where an organization stands with the base.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::organization::Stage")]
pub enum OrganizationStage {
    /// In the federation's liaison network of women's social organizations.
    Liaison,
    /// Applied for incubation.
    Applied,
    /// Being incubated.
    Incubating,
    /// Resident in the base.
    Resident,
    /// Graduated from incubation.
    Graduated,
    /// Left the base and the network.
    Exited,
}

/// Legal form under Chinese registration rules.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::organization::OrganizationKind")]
pub enum OrganizationKind {
    /// 社会团体
    SocialGroup,
    /// 社会服务机构 (formerly 民办非企业单位)
    SocialServiceAgency,
    /// 基金会
    Foundation,
    /// 社区社会组织, filed with the sub-district
    CommunityGroup,
}

/// Who or what an organization serves.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::organization_focus_area::FocusArea")]
pub enum FocusArea {
    Women,
    Children,
    Family,
    Elderly,
    Disability,
    LegalAid,
    MentalHealth,
    Education,
    Employment,
    Community,
    Volunteering,
    CrossStrait,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum OrganizationOrderField {
    /// By the Chinese name, in Unicode code point order.
    #[default]
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(remote = "SortDirection")]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(InputObject, Default)]
pub struct OrganizationOrder {
    #[graphql(default)]
    pub field: OrganizationOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct OrganizationFilter {
    /// Organizations in any of these stages.
    pub stage: Option<Vec<OrganizationStage>>,
    /// Organizations serving any of these areas.
    pub focus_area: Option<Vec<FocusArea>>,
    /// Organizations of any of these kinds.
    pub kind: Option<Vec<OrganizationKind>>,
    /// Substring of the Chinese, Traditional-Chinese or English name, or of the slug.
    pub search: Option<String>,
}

/// An organization incubated, hosted or networked by the base.
pub struct Organization(pub OrganizationRecord);

/// Contact details of an organization.
#[derive(SimpleObject)]
pub struct OrganizationContact {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[Object]
impl Organization {
    pub async fn id(&self) -> ID {
        ids::encode(ids::ORGANIZATION, self.0.org.id)
    }

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::Organization, self.0.org.id)
    }

    /// Stable, URL-friendly identifier.
    async fn slug(&self) -> &str {
        &self.0.org.slug
    }

    /// Registered (Simplified Chinese) name.
    async fn name(&self) -> &str {
        &self.0.org.name
    }

    /// Name in Traditional Chinese, for cross-strait material.
    async fn name_traditional(&self) -> Option<&str> {
        self.0.org.name_traditional.as_deref()
    }

    async fn name_en(&self) -> Option<&str> {
        self.0.org.name_en.as_deref()
    }

    async fn kind(&self) -> OrganizationKind {
        self.0.org.kind.into()
    }

    /// Unified social credit code (统一社会信用代码).
    async fn credit_code(&self) -> Option<&str> {
        self.0.org.credit_code.as_deref()
    }

    async fn founded_on(&self) -> Option<NaiveDate> {
        self.0.org.founded_on
    }

    async fn focus_areas(&self) -> Vec<FocusArea> {
        self.0.focus_areas.iter().map(|a| (*a).into()).collect()
    }

    async fn stage(&self) -> OrganizationStage {
        self.0.org.stage.into()
    }

    /// When the current stage began.
    async fn stage_changed_at(&self) -> DateTime<Utc> {
        self.0.org.stage_changed_at
    }

    /// Stages this organization may move to next.
    async fn allowed_transitions(&self) -> Vec<OrganizationStage> {
        service::allowed_next(self.0.org.stage).iter().map(|s| (*s).into()).collect()
    }

    /// Stage changes, oldest first (the latest 100).
    async fn stage_history(&self, ctx: &Context<'_>) -> Result<Vec<StageTransition>> {
        let history = Loaders::of(ctx)?.stage_history.get_or_default(self.0.org.id).await?;
        Ok(history.into_iter().map(StageTransition).collect())
    }

    /// The phone and email are visible to staff and the organization's members only.
    async fn contact(&self, ctx: &Context<'_>) -> OrganizationContact {
        let o = &self.0.org;
        let private = viewer(ctx).can_see_private_contact(o.id);
        OrganizationContact {
            name: o.contact_name.clone(),
            phone: o.contact_phone.clone().filter(|_| private),
            email: o.contact_email.clone().filter(|_| private),
        }
    }

    async fn website(&self) -> Option<&str> {
        self.0.org.website.as_deref()
    }

    async fn description(&self) -> &str {
        &self.0.org.description
    }

    async fn logo_url(&self) -> Option<&str> {
        self.0.org.logo_url.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.org.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.org.updated_at
    }

    /// Whether the viewer may edit this organization's profile.
    async fn viewer_can_edit(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).can_edit_organization(self.0.org.id)
    }

    /// Whether the viewer may move this organization to another stage.
    async fn viewer_can_change_stage(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).is_staff()
    }

    /// Whether the viewer may add, change and remove members.
    async fn viewer_can_manage_members(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).can_manage_members(self.0.org.id)
    }

    /// The viewer's role in this organization, if a member.
    async fn viewer_role(&self, ctx: &Context<'_>) -> Option<MemberRole> {
        viewer(ctx).member_role(self.0.org.id).map(Into::into)
    }

    /// Members (at most 200), visible to staff and to the organization's members; `null`
    /// for everyone else.
    async fn members(&self, ctx: &Context<'_>) -> Result<Option<Vec<OrganizationMember>>> {
        if !viewer(ctx).can_edit_organization(self.0.org.id) {
            return Ok(None);
        }
        let members = Loaders::of(ctx)?.members.get_or_default(self.0.org.id).await?;
        Ok(Some(members.into_iter().map(|(m, a)| OrganizationMember(m, a)).collect()))
    }
}

/// One change of an organization's stage.
pub struct StageTransition(pub transition::Model);

#[Object]
impl StageTransition {
    /// `null` for the stage an organization joined with.
    async fn from_stage(&self) -> Option<OrganizationStage> {
        self.0.from_stage.map(Into::into)
    }

    async fn to_stage(&self) -> OrganizationStage {
        self.0.to_stage.into()
    }

    async fn note(&self) -> &str {
        &self.0.note
    }

    /// When the change took effect.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// When it was recorded.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

/// Reads one organization's stage history when the page shows it, here rather than through
/// the loader: a single key gains nothing from batching, and the loader's task and its
/// batching delay are a hop per request.
async fn prime_history(ctx: &Context<'_>, id: i64) -> Result<()> {
    if ctx.look_ahead().field("stageHistory").exists() {
        let mut histories = state(ctx)?.directory().stage_histories(&[id]).await.extend()?;
        Loaders::of(ctx)?.stage_history.prime([(id, histories.remove(&id).unwrap_or_default())]);
    }
    Ok(())
}

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// An organization by slug; `null` when there is none.
    async fn organization(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Organization>> {
        let directory = state(ctx)?.directory();
        // Not kept by the response cache (signed in, or the cache off): what is read is what
        // is served, the page with its history in one read when the history is asked for.
        if !ResponseTags::collecting(ctx) {
            if !ctx.look_ahead().field("stageHistory").exists() {
                return Ok(directory.by_slug(&slug).await.extend()?.map(Organization));
            }
            let Some(page) = directory.page_by_slug(&slug).await.extend()? else { return Ok(None) };
            Loaders::of(ctx)?.stage_history.prime([(page.record.org.id, page.history)]);
            return Ok(Some(Organization(page.record)));
        }
        // The slug names the entity only once it is found; the read is then re-checked under
        // the entity's tag, so the tag's generation is taken before the data that is served.
        match directory.by_slug(&slug).await.extend()? {
            Some(found) => {
                let id = found.org.id;
                ResponseTags::entity(ctx, Family::Organization, id).await;
                let fresh = state(ctx)?.directory().by_id(id).await.extend()?;
                if fresh.is_none() {
                    ResponseTags::missing(ctx, Family::Organization);
                } else {
                    prime_history(ctx, id).await?;
                }
                Ok(fresh.map(Organization))
            }
            None => {
                ResponseTags::missing(ctx, Family::Organization);
                Ok(None)
            }
        }
    }

    /// The organization directory.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrganizationFilter>,
        order_by: Option<OrganizationOrder>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Page size from the end (at most 100).")] last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Organization>> {
        let filter = filter.unwrap_or_default();
        let order = order_by.unwrap_or_default();
        let service_filter = ServiceFilter {
            stages: filter.stage.unwrap_or_default().into_iter().map(Into::into).collect(),
            focus_areas: filter.focus_area.unwrap_or_default().into_iter().map(Into::into).collect(),
            kinds: filter.kind.unwrap_or_default().into_iter().map(Into::into).collect(),
            search: filter.search,
        };
        let sort = match order.field {
            OrganizationOrderField::Name => OrganizationSort::Name,
            OrganizationOrderField::CreatedAt => OrganizationSort::CreatedAt,
            OrganizationOrderField::UpdatedAt => OrganizationSort::UpdatedAt,
        };
        let args = connection::args(first, after, last, before);
        let page = state(ctx)?
            .directory()
            .list(&service_filter, sort, order.direction.into(), connection::page_request(ctx, &args)?)
            .await
            .extend()?;
        // Histories of the whole page in one statement, primed for the nested resolvers.
        if !page.items.is_empty() && !connection::node_selections(ctx, "stageHistory").is_empty() {
            let ids: Vec<i64> = page.items.iter().map(|(_, r)| r.org.id).collect();
            let mut histories = state(ctx)?.directory().stage_histories(&ids).await.extend()?;
            let loaders = Loaders::of(ctx)?;
            loaders.stage_history.prime(ids.iter().map(|id| (*id, histories.remove(id).unwrap_or_default())));
        }
        Ok(connection::from_page(page, Organization))
    }
}

#[derive(InputObject)]
pub struct ContactInput {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Registered name in Simplified Chinese.
    pub name: String,
    pub name_traditional: Option<String>,
    pub name_en: Option<String>,
    /// Generated from the English name (or at random) when omitted.
    pub slug: Option<String>,
    /// Default SOCIAL_SERVICE_AGENCY.
    pub kind: Option<OrganizationKind>,
    pub credit_code: Option<String>,
    pub founded_on: Option<NaiveDate>,
    #[graphql(default)]
    pub focus_areas: Vec<FocusArea>,
    pub contact: Option<ContactInput>,
    pub website: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    /// LIAISON or APPLIED (staff; default LIAISON). Anyone else signed in applies for
    /// incubation: the stage is APPLIED and they become the organization's owner.
    pub stage: Option<OrganizationStage>,
    /// When the organization joined the network or applied; default now.
    pub joined_at: Option<DateTime<Utc>>,
}

/// Fields left out stay as they are; fields set to `null` are cleared.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    pub id: ID,
    pub name: Option<String>,
    pub name_traditional: MaybeUndefined<String>,
    pub name_en: MaybeUndefined<String>,
    pub slug: Option<String>,
    pub kind: Option<OrganizationKind>,
    pub credit_code: MaybeUndefined<String>,
    pub founded_on: MaybeUndefined<NaiveDate>,
    pub focus_areas: Option<Vec<FocusArea>>,
    pub contact_name: MaybeUndefined<String>,
    pub contact_phone: MaybeUndefined<String>,
    pub contact_email: MaybeUndefined<String>,
    pub website: MaybeUndefined<String>,
    pub description: Option<String>,
    pub logo_url: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct TransitionOrganizationStageInput {
    pub id: ID,
    pub stage: OrganizationStage,
    pub note: Option<String>,
    /// When the change took effect; default now. Not before the current stage began.
    pub occurred_at: Option<DateTime<Utc>>,
}

payload!(CreateOrganizationPayload { organization: Organization });
payload!(UpdateOrganizationPayload { organization: Organization });

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TransitionOrganizationStagePayload {
    pub organization: Organization,
    #[graphql(skip)]
    pub entry: transition::Model,
}

#[ComplexObject]
impl TransitionOrganizationStagePayload {
    /// The history entry this change added.
    async fn transition(&self) -> StageTransition {
        StageTransition(self.entry.clone())
    }
}

impl From<CreateOrganizationInput> for NewOrganization {
    fn from(input: CreateOrganizationInput) -> Self {
        let contact = input.contact.unwrap_or(ContactInput { name: None, phone: None, email: None });
        NewOrganization {
            name: input.name,
            name_traditional: input.name_traditional,
            name_en: input.name_en,
            slug: input.slug,
            kind: input.kind.map(Into::into),
            credit_code: input.credit_code,
            founded_on: input.founded_on,
            focus_areas: input.focus_areas.into_iter().map(Into::into).collect(),
            contact_name: contact.name,
            contact_phone: contact.phone,
            contact_email: contact.email,
            website: input.website,
            description: input.description,
            logo_url: input.logo_url,
            stage: input.stage.map(Into::into),
            joined_at: input.joined_at,
            owner_account_id: None,
        }
    }
}

impl From<UpdateOrganizationInput> for OrganizationPatch {
    fn from(input: UpdateOrganizationInput) -> Self {
        OrganizationPatch {
            name: input.name,
            name_traditional: input.name_traditional.into(),
            name_en: input.name_en.into(),
            slug: input.slug,
            kind: input.kind.map(Into::into),
            credit_code: input.credit_code.into(),
            founded_on: input.founded_on.into(),
            focus_areas: input.focus_areas.map(|a| a.into_iter().map(Into::into).collect()),
            contact_name: input.contact_name.into(),
            contact_phone: input.contact_phone.into(),
            contact_email: input.contact_email.into(),
            website: input.website.into(),
            description: input.description,
            logo_url: input.logo_url.into(),
        }
    }
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<CreateOrganizationPayload> {
        let state = state(ctx)?;
        let record = service::create_organization(state.ctx(), viewer(ctx), input.into()).await.extend()?;
        Ok(CreateOrganizationPayload { organization: Organization(record) })
    }

    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> Result<UpdateOrganizationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, ids::ORGANIZATION, "id")?;
        let record = service::update_organization(state.ctx(), viewer(ctx), id, input.into()).await.extend()?;
        Ok(UpdateOrganizationPayload { organization: Organization(record) })
    }

    /// Moves an organization along its lifecycle; only allowed transitions succeed.
    async fn transition_organization_stage(
        &self,
        ctx: &Context<'_>,
        input: TransitionOrganizationStageInput,
    ) -> Result<TransitionOrganizationStagePayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, ids::ORGANIZATION, "id")?;
        let change = StageChange {
            organization_id: id,
            to: input.stage.into(),
            note: input.note,
            occurred_at: input.occurred_at,
        };
        let (record, entry) = service::change_stage(state.ctx(), viewer(ctx), change).await.extend()?;
        Ok(TransitionOrganizationStagePayload { organization: Organization(record), entry })
    }
}

//! Accounts, sessions, partner API keys and organization membership in the schema.
use crate::graphql::common::payload;
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{account, api_key, invitation, membership, trusted_document};

use super::connection::{self, PagedConnection};
use super::ids;
use super::loaders::Loaders;
use super::organization::Organization;
use super::state;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::service::identity::{self as service, Added};
use crate::service::pagination::{self, SortDirection, SortKey};
use crate::service::trusted_documents;

pub use super::ids::{ACCOUNT, API_KEY};

/// A global role. Organization membership is per organization (see `Membership`).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::identity::Role")]
pub enum Role {
    /// Federation staff: everything.
    Admin,
    /// Base managers: spaces, bookings, events, organization stages, campaign approval.
    Manager,
    /// Scores the proposals assigned to them.
    Reviewer,
    /// Gives, and sees their own giving.
    Donor,
}

/// What a partner API key may do beyond reading public data. Publishable (browser) keys may
/// hold READ, REGISTER and DONATE only.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::identity::ApiScope")]
pub enum ApiScope {
    /// Read public data (every key may).
    Read,
    /// Register named guests for events and training.
    Register,
    /// Record guests' pledges (they count once staff or a RECONCILE key confirm them).
    Donate,
    /// Confirm and refund donations after reconciliation: secret keys only.
    Reconcile,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::membership::MemberRole")]
pub enum MemberRole {
    /// Edits the organization and manages its members.
    Owner,
    /// Edits the organization.
    Editor,
}

pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    static ANONYMOUS: std::sync::LazyLock<Viewer> = std::sync::LazyLock::new(Viewer::anonymous);
    ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS)
}

/// The client address, for per-address limits.
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

/// A person's account. Email and roles are visible to the person and to admins.
pub struct Account(pub account::Model);

/// The account in a payload that belongs to the person who just signed up or in: shown
/// whole to them, though the request itself came without a token.
pub struct OwnAccount(pub account::Model);

#[Object(name = "OwnAccount")]
impl OwnAccount {
    async fn id(&self) -> ID {
        ids::encode(ACCOUNT, self.0.id)
    }

    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Whether the person proved they read mail at `email`.
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }

    async fn roles(&self) -> Vec<Role> {
        service::Role::parse_list(&self.0.roles).into_iter().map(Into::into).collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[Object]
impl Account {
    pub async fn id(&self) -> ID {
        ids::encode(ACCOUNT, self.0.id)
    }

    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.visible_to(viewer(ctx)).then_some(self.0.email.as_str())
    }

    async fn roles(&self, ctx: &Context<'_>) -> Option<Vec<Role>> {
        self.visible_to(viewer(ctx))
            .then(|| service::Role::parse_list(&self.0.roles).into_iter().map(Into::into).collect())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

impl Account {
    fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_admin() || viewer.account.as_ref().is_some_and(|a| a.id == self.0.id)
    }
}

/// Who is asking.
pub struct ViewerInfo;

#[Object(name = "Viewer")]
impl ViewerInfo {
    async fn is_authenticated(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).account.is_some()
    }

    /// The signed-in account, if any.
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        let Some(me) = &viewer(ctx).account else { return Ok(None) };
        let found = service::accounts_by_ids(&state(ctx)?.db, &[me.id]).await.extend()?;
        Ok(found.into_iter().next().map(Account))
    }

    /// Whether the signed-in person verified their email address (`false` when anonymous).
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<bool> {
        let Some(me) = &viewer(ctx).account else { return Ok(false) };
        let found = service::accounts_by_ids(&state(ctx)?.db, &[me.id]).await.extend()?;
        Ok(found.first().is_some_and(|a| a.email_verified_at.is_some()))
    }

    async fn roles(&self, ctx: &Context<'_>) -> Vec<Role> {
        viewer(ctx).account.as_ref().map(|a| a.roles.iter().map(|r| (*r).into()).collect()).unwrap_or_default()
    }

    /// Organizations the viewer belongs to, with their role in each.
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<ViewerMembership>> {
        let Some(me) = &viewer(ctx).account else { return Ok(Vec::new()) };
        Ok(me.memberships.iter().map(|(org, role)| ViewerMembership { organization_id: *org, role: *role }).collect())
    }

    /// The signed-in person's notifications, newest first (`UNAUTHENTICATED` without an
    /// account).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<super::notifications::Notification>> {
        super::notifications::inbox(ctx, unread_only, connection::args(first, after, last, before)).await
    }

    /// How many of the signed-in person's notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        super::notifications::unread(ctx).await
    }

    /// The signed-in person's language and email choices.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> Result<super::notifications::NotificationPreferences> {
        super::notifications::preferences(ctx).await
    }

    /// The partner key the request came with, if any.
    async fn partner(&self, ctx: &Context<'_>) -> Option<PartnerInfo> {
        viewer(ctx).partner.as_ref().map(|p| PartnerInfo {
            name: p.name.clone(),
            scopes: p.scopes.iter().map(|s| (*s).into()).collect(),
            publishable: p.publishable,
        })
    }
}

#[derive(SimpleObject)]
pub struct PartnerInfo {
    pub name: String,
    pub scopes: Vec<ApiScope>,
    /// A browser-safe key.
    pub publishable: bool,
}

pub struct ViewerMembership {
    organization_id: i64,
    role: entity::membership::MemberRole,
}

#[Object(name = "ViewerMembership")]
impl ViewerMembership {
    async fn role(&self) -> MemberRole {
        self.role.into()
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let found = Loaders::of(ctx)?.organization.get(self.organization_id).await?;
        Ok(found.map(Organization))
    }
}

/// A member of an organization.
pub struct OrganizationMember(pub membership::Model, pub account::Model);

#[Object]
impl OrganizationMember {
    async fn account(&self) -> Account {
        Account(self.1.clone())
    }

    async fn role(&self) -> MemberRole {
        self.0.role.into()
    }

    async fn since(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A membership waiting for its account: it is claimed when someone signs up with this email.
pub struct OrganizationInvitation(pub invitation::Model);

#[Object]
impl OrganizationInvitation {
    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn role(&self) -> MemberRole {
        self.0.role.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A partner frontend's key. The secret itself is shown once, when it is created.
pub struct ApiKey(pub api_key::Model);

#[Object]
impl ApiKey {
    pub async fn id(&self) -> ID {
        ids::encode(API_KEY, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the key, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    async fn scopes(&self) -> Vec<ApiScope> {
        service::ApiScope::parse_list(&self.0.scopes).into_iter().map(Into::into).collect()
    }

    /// A browser-safe key, meant to sit in web pages: bound to `allowedOrigins`, limited to
    /// READ, REGISTER and DONATE, rate-limited per visitor address too. Secret keys are refused
    /// from browsers.
    async fn publishable(&self) -> bool {
        self.0.publishable
    }

    /// The origins (`https://www.example.org`) whose pages may use a publishable key.
    async fn allowed_origins(&self) -> Vec<String> {
        service::origins_of(&self.0)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }

    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// An operation registered ahead: requests may send its `documentId` instead of its text.
pub struct TrustedDocument(pub trusted_document::Model);

#[Object]
impl TrustedDocument {
    /// `sha256:` and the lower-case hex SHA-256 of `body`; send it as `documentId` (or the
    /// hex alone as an APQ `sha256Hash`).
    async fn document_id(&self) -> String {
        format!("sha256:{}", self.0.document_id)
    }

    async fn operation_name(&self) -> Option<&str> {
        self.0.operation_name.as_deref()
    }

    async fn client_name(&self) -> Option<&str> {
        self.0.client_name.as_deref()
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// Who is asking: account, roles, memberships, partner key.
    async fn viewer(&self) -> ViewerInfo {
        ViewerInfo
    }

    /// Partner API keys, newest first (admins).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<ApiKey>> {
        viewer(ctx).require_admin("list API keys").extend()?;
        let key =
            SortKey::<api_key::Entity>::time(api_key::Column::CreatedAt, api_key::Column::Id, SortDirection::Desc);
        newest_first(ctx, connection::args(first, after, last, before), key, ApiKey).await
    }

    /// Registered operations, newest first (admins).
    #[graphql(complexity = "connection::cost(first, last, child_complexity)")]
    async fn trusted_documents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<TrustedDocument>> {
        viewer(ctx).require_list_documents().extend()?;
        use trusted_document::Column;
        let key = SortKey::<trusted_document::Entity>::time(Column::CreatedAt, Column::Id, SortDirection::Desc);
        newest_first(ctx, connection::args(first, after, last, before), key, TrustedDocument).await
    }
}

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    /// At least 10 characters, mixing two of letters, digits and symbols.
    pub password: String,
    pub display_name: String,
}

#[derive(InputObject)]
pub struct SignInInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct RefreshSessionInput {
    pub refresh_token: String,
}

#[derive(InputObject)]
pub struct SignOutInput {
    pub refresh_token: String,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub roles: Vec<Role>,
}

#[derive(InputObject)]
pub struct SetAccountRolesInput {
    pub account_id: ID,
    pub roles: Vec<Role>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    #[graphql(default)]
    pub scopes: Vec<ApiScope>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A browser-safe key for web pages (its secret starts with `ib_pub_`); needs
    /// `allowedOrigins` and publishable scopes only. Default: a secret key for servers.
    #[graphql(default)]
    pub publishable: bool,
    /// Origins (`scheme://host[:port]`) whose pages may use a publishable key, 1 to 20.
    #[graphql(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(InputObject)]
pub struct RegisterTrustedDocumentsInput {
    /// The manifest file's text, as persisted-document tooling emits it: a JSON object of
    /// `"<sha256 hex>": "<document>"` (GraphQL Code Generator), or Apollo's persisted query
    /// manifest. Ids are the SHA-256 of the exact document text. At most 500 documents.
    pub manifest: String,
    /// Which frontend the documents are for, shown to admins.
    pub client_name: Option<String>,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct AddOrganizationMemberInput {
    pub organization_id: ID,
    pub email: String,
    pub role: MemberRole,
}

#[derive(InputObject)]
pub struct ChangeOrganizationMemberRoleInput {
    pub organization_id: ID,
    pub account_id: ID,
    pub role: MemberRole,
}

#[derive(InputObject)]
pub struct RemoveOrganizationMemberInput {
    pub organization_id: ID,
    pub account_id: ID,
}

/// Tokens of a new session. Send `accessToken` as `Authorization: Bearer …`; swap the
/// `refreshToken` for new tokens with `refreshSession` before the access token expires.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub account: OwnAccount,
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
}

impl From<service::IssuedTokens> for AuthPayload {
    fn from(t: service::IssuedTokens) -> Self {
        Self {
            account: OwnAccount(t.account),
            access_token: t.access_token,
            access_token_expires_at: t.access_expires_at,
            refresh_token: t.refresh_token,
            refresh_token_expires_at: t.refresh_expires_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct SignOutPayload {
    /// False when the token was unknown or already revoked.
    pub revoked: bool,
}

payload!(AccountPayload { account: Account });

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The key itself. Shown only here: store it now.
    pub secret: String,
}

#[derive(SimpleObject)]
pub struct RegisterTrustedDocumentsPayload {
    /// Stored by this call.
    pub registered: i32,
    /// Registered before (registering is idempotent).
    pub already_registered: i32,
    pub documents: Vec<TrustedDocument>,
}

payload!(RevokeApiKeyPayload { api_key: ApiKey });

#[derive(SimpleObject)]
pub struct AddOrganizationMemberPayload {
    /// Set when an account with this email exists.
    pub member: Option<OrganizationMember>,
    /// Set when none does yet: the membership waits for the sign-up.
    pub invitation: Option<OrganizationInvitation>,
}

payload!(ChangeOrganizationMemberRolePayload { member: OrganizationMember });
payload!(RemoveOrganizationMemberPayload { removed_account_id: ID });

fn roles_of(roles: Vec<Role>) -> Vec<service::Role> {
    roles.into_iter().map(Into::into).collect()
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// Creates a donor account and signs it in.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        let issued = crate::service::account::sign_up(
            state.ctx(),
            viewer(ctx),
            &input.email,
            &input.password,
            &input.display_name,
        )
        .await
        .extend()?;
        Ok(issued.into())
    }

    /// Signs in with email and password. Attempts are limited per account and per address.
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        Ok(service::sign_in(state.ctx(), viewer(ctx), &input.email, &input.password).await.extend()?.into())
    }

    /// Swaps a refresh token for new tokens. Each refresh token works once.
    async fn refresh_session(&self, ctx: &Context<'_>, input: RefreshSessionInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        Ok(service::refresh_session(state.ctx(), viewer(ctx), &input.refresh_token).await.extend()?.into())
    }

    /// Ends the session of a refresh token; its access tokens stop working too.
    async fn sign_out(&self, ctx: &Context<'_>, input: SignOutInput) -> Result<SignOutPayload> {
        let state = state(ctx)?;
        Ok(SignOutPayload {
            revoked: service::sign_out(state.ctx(), viewer(ctx), &input.refresh_token).await.extend()?,
        })
    }

    /// Creates a staff, reviewer or donor account (admins).
    async fn create_account(&self, ctx: &Context<'_>, input: CreateAccountInput) -> Result<AccountPayload> {
        let state = state(ctx)?;
        let roles = roles_of(input.roles);
        let account = service::create_account_as(
            state.ctx(),
            viewer(ctx),
            &input.email,
            &input.password,
            &input.display_name,
            &roles,
        )
        .await
        .extend()?;
        Ok(AccountPayload { account: Account(account) })
    }

    /// Replaces an account's global roles (admins).
    async fn set_account_roles(&self, ctx: &Context<'_>, input: SetAccountRolesInput) -> Result<AccountPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.account_id, ACCOUNT, "accountId")?;
        let account =
            service::set_account_roles(state.ctx(), viewer(ctx), id, &roles_of(input.roles)).await.extend()?;
        Ok(AccountPayload { account: Account(account) })
    }

    /// Issues a partner API key (admins). The secret is returned once.
    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> Result<CreateApiKeyPayload> {
        let state = state(ctx)?;
        let scopes: Vec<service::ApiScope> = input.scopes.into_iter().map(Into::into).collect();
        let new = service::NewApiKey {
            name: input.name,
            scopes,
            expires_at: input.expires_at,
            publishable: input.publishable,
            allowed_origins: input.allowed_origins,
        };
        let issued = service::issue_api_key(state.ctx(), viewer(ctx), new).await.extend()?;
        Ok(CreateApiKeyPayload { api_key: ApiKey(issued.key), secret: issued.secret })
    }

    /// Registers a manifest of operations (admins, or a partner with a secret key from its
    /// servers). Each document must parse and stay within the API's limits.
    async fn register_trusted_documents(
        &self,
        ctx: &Context<'_>,
        input: RegisterTrustedDocumentsInput,
    ) -> Result<RegisterTrustedDocumentsPayload> {
        let state = state(ctx)?;
        let mut entries = trusted_documents::parse_manifest(&input.manifest).extend()?;
        for entry in &mut entries {
            entry.operation_name = check_document(&entry.body, &state.settings.limits).extend()?;
        }
        let registration =
            trusted_documents::register_documents(state.ctx(), viewer(ctx), &entries, input.client_name.as_deref())
                .await
                .extend()?;
        Ok(RegisterTrustedDocumentsPayload {
            registered: i32::try_from(registration.registered).unwrap_or(i32::MAX),
            already_registered: i32::try_from(registration.already_registered).unwrap_or(i32::MAX),
            documents: registration.documents.into_iter().map(TrustedDocument).collect(),
        })
    }

    /// Revokes a partner API key at once (admins).
    async fn revoke_api_key(&self, ctx: &Context<'_>, input: RevokeApiKeyInput) -> Result<RevokeApiKeyPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, API_KEY, "id")?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKey(service::revoke_api_key_as(state.ctx(), viewer(ctx), id).await.extend()?),
        })
    }

    /// Adds a member by email (owners and admins). Without an account yet, an invitation
    /// is kept and becomes a membership when that email signs up.
    async fn add_organization_member(
        &self,
        ctx: &Context<'_>,
        input: AddOrganizationMemberInput,
    ) -> Result<AddOrganizationMemberPayload> {
        let org_id = ids::decode(&input.organization_id, ids::ORGANIZATION, "organizationId")?;
        let state = state(ctx)?;
        let added = service::add_organization_member(state.ctx(), viewer(ctx), org_id, &input.email, input.role.into())
            .await
            .extend()?;
        Ok(match added {
            Added::Member(m) => {
                let account = service::accounts_by_ids(&state.db, &[m.account_id]).await.extend()?.into_iter().next();
                AddOrganizationMemberPayload { member: account.map(|a| OrganizationMember(m, a)), invitation: None }
            }
            Added::Invited(i) => {
                AddOrganizationMemberPayload { member: None, invitation: Some(OrganizationInvitation(i)) }
            }
        })
    }

    /// Changes a member's role (owners and admins); an organization keeps at least one owner.
    async fn change_organization_member_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeOrganizationMemberRoleInput,
    ) -> Result<ChangeOrganizationMemberRolePayload> {
        let (org_id, account_id) = member_ids(&input.organization_id, &input.account_id)?;
        let state = state(ctx)?;
        let m =
            service::change_organization_member_role(state.ctx(), viewer(ctx), org_id, account_id, input.role.into())
                .await
                .extend()?;
        let account = service::accounts_by_ids(&state.db, &[account_id])
            .await
            .extend()?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::NotFound("account".into()).extend())?;
        Ok(ChangeOrganizationMemberRolePayload { member: OrganizationMember(m, account) })
    }

    /// Removes a member (owners and admins); an organization keeps at least one owner.
    async fn remove_organization_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveOrganizationMemberInput,
    ) -> Result<RemoveOrganizationMemberPayload> {
        let (org_id, account_id) = member_ids(&input.organization_id, &input.account_id)?;
        let state = state(ctx)?;
        service::remove_organization_member(state.ctx(), viewer(ctx), org_id, account_id).await.extend()?;
        Ok(RemoveOrganizationMemberPayload { removed_account_id: input.account_id })
    }
}

/// A whole table as a connection in the order of `key`: the admins' lists of partner keys and
/// registered documents, which have no filters.
async fn newest_first<E, T>(
    ctx: &Context<'_>,
    args: crate::service::pagination::PageArgs,
    key: SortKey<E>,
    to_node: impl Fn(E::Model) -> T,
) -> Result<PagedConnection<T>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
    T: async_graphql::OutputType,
{
    connection::list(ctx, args, to_node, async |db, page| pagination::paginate(db, E::find(), &key, page).await).await
}

/// The organization and the account a member mutation names, decoded in that order.
fn member_ids(organization_id: &ID, account_id: &ID) -> Result<(i64, i64)> {
    let org_id = ids::decode(organization_id, ids::ORGANIZATION, "organizationId")?;
    let account_id = ids::decode(account_id, ACCOUNT, "accountId")?;
    Ok((org_id, account_id))
}

/// A manifest document must parse, hold operations, and stay within the request limits (it
/// would be refused at every use otherwise). Returns the name of its first operation.
fn check_document(body: &str, limits: &crate::config::Limits) -> Result<Option<String>, AppError> {
    use async_graphql::parser::types::DocumentOperations;
    let refused = |message: String| AppError::rule("manifest", "INVALID_DOCUMENT", message);
    if body.len() > limits.max_query_bytes {
        return Err(refused(format!("a document is larger than {} bytes", limits.max_query_bytes)));
    }
    if super::cost::nesting_depth(body) > super::cost::MAX_NESTING {
        return Err(refused(format!("a document nests brackets deeper than {}", super::cost::MAX_NESTING)));
    }
    let doc =
        async_graphql::parser::parse_query(body).map_err(|e| refused(format!("a document does not parse: {e}")))?;
    super::cost::check(&doc, limits).map_err(|over| refused(over.message))?;
    Ok(match &doc.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(ops) => ops.keys().next().map(|name| name.to_string()),
    })
}

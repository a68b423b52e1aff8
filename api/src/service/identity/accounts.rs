//! Accounts: signing in, creating accounts and setting their roles, invitations claimed by a new
//! account, and looking accounts up.
#[allow(unused_imports)]
use super::*;

/// Command: signs in with email and password; attempts are limited per account and address.
pub async fn sign_in(ctx: Ctx<'_>, viewer: &Viewer, email: &str, password: &str) -> AppResult<IssuedTokens> {
    ctx.sign_in_limiter.check(email, viewer.address.as_deref().unwrap_or("unknown"))?;
    let account = verify_credentials(ctx.db, email, password).await?;
    let actor = Actor::of(viewer).as_account(account.id);
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let issued = start_session(&txn, ctx.tokens, account.clone()).await?;
        let event = NewEvent::new(EventKind::AccountSignedIn, account.id).account(Some(account.id));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(issued)
    })
    .await
}

/// Command: an admin creates a staff, reviewer or donor account.
pub async fn create_account_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<account::Model> {
    viewer.require_admin("create accounts")?;
    create_account(ctx, &Actor::of(viewer), email, password, name, roles).await
}

/// Command: an admin replaces an account's global roles.
pub async fn set_account_roles(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    account_id: i64,
    roles: &[Role],
) -> AppResult<account::Model> {
    viewer.require_admin("change roles")?;
    as_viewer!(viewer, |actor| set_roles(ctx, actor, account_id, roles))
}

/// Validates and hashes what a new account is made of.
pub(crate) async fn new_credentials(
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<(String, String, String)> {
    let email = normalize_email(email)?;
    check_password_strength(password, &email)?;
    let name = display_name(name)?;
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let hash = hash_password(password.to_owned()).await?;
    Ok((email, hash, name))
}

/// Inserts an account; invitations sent to its email become memberships.
pub(crate) async fn insert_account(
    txn: &sea_orm::DatabaseTransaction,
    email: &str,
    hash: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<(account::Model, Vec<NewEvent>)> {
    let account = account::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set(hash.to_owned()),
        display_name: Set(name.to_owned()),
        roles: Set(Role::join(roles)),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(AppError::on_unique("an account with this email already exists"))?;
    let mut events = vec![
        NewEvent::new(EventKind::AccountCreated, account.id)
            .account(Some(account.id))
            .payload(json!({ "roles": account.roles })),
    ];
    events.extend(claim_invitations(txn, account.id, email).await?);
    Ok((account, events))
}

/// Invitations waiting for `email` become memberships of `account_id` (at sign-up, and when
/// an account's new address is confirmed). Returns their events.
pub(crate) async fn claim_invitations(
    txn: &impl ConnectionTrait,
    account_id: i64,
    email: &str,
) -> AppResult<Vec<NewEvent>> {
    let mut events = Vec::new();
    let pending = invitation::Entity::find().filter(invitation::Column::Email.eq(email)).all(txn).await?;
    for invite in &pending {
        let existing = membership::Entity::find_by_id((invite.organization_id, account_id)).one(txn).await?;
        if existing.is_none() {
            membership::ActiveModel {
                organization_id: Set(invite.organization_id),
                account_id: Set(account_id),
                role: Set(invite.role),
                created_at: Set(super::now()),
            }
            .insert(txn)
            .await?;
            events.push(member_event(EventKind::MemberAdded, invite.organization_id, account_id, invite.role));
        }
    }
    invitation::Entity::delete_many().filter(invitation::Column::Email.eq(email)).exec(txn).await?;
    Ok(events)
}

pub(crate) fn member_event(kind: EventKind, org_id: i64, account_id: i64, role: MemberRole) -> NewEvent {
    use sea_orm::ActiveEnum;
    NewEvent::new(kind, org_id)
        .organization(Some(org_id))
        .account(Some(account_id))
        .payload(json!({ "accountId": account_id, "role": role.to_value() }))
}

/// Creates an account (for the CLI, tests and the admin command).
pub async fn create_account(
    ctx: Ctx<'_>,
    actor: &Actor,
    email: &str,
    password: &str,
    name: &str,
    roles: &[Role],
) -> AppResult<account::Model> {
    let (email, hash, name) = new_credentials(email, password, name, roles).await?;
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let (account, events) = insert_account(&txn, &email, &hash, &name, roles).await?;
        ctx.commit(txn, actor, events).await?;
        Ok(account)
    })
    .await
}

/// The `create-admin` command: creates an admin account, or gives an existing account the
/// ADMIN role.
pub async fn create_admin(ctx: Ctx<'_>, email: &str, name: &str, password: String) -> AppResult<String> {
    let actor = Actor::cli("create-admin");
    if let Some(existing) = account_by_email(ctx.db, email).await? {
        let mut roles = Role::parse_list(&existing.roles);
        roles.push(Role::Admin);
        set_roles(ctx, &actor, existing.id, &roles).await?;
        return Ok(format!("{} is now an admin", existing.email));
    }
    let account = create_account(ctx, &actor, email, &password, name, &[Role::Admin]).await?;
    Ok(format!("created admin account {}", account.email))
}

pub async fn set_roles(ctx: Ctx<'_>, actor: &Actor, account_id: i64, roles: &[Role]) -> AppResult<account::Model> {
    if roles.is_empty() {
        return Err(AppError::bad_input("roles", "an account needs at least one role"));
    }
    let txn = ctx.db.begin().await?;
    let found = found::<account::Entity>(&txn, account_id, "account").await?;
    let from = found.roles.clone();
    let mut model: account::ActiveModel = found.into();
    model.roles = Set(Role::join(roles));
    let updated = model.update(&txn).await?;
    let event = NewEvent::new(EventKind::AccountRolesChanged, account_id)
        .account(Some(account_id))
        .payload(json!({ "from": from, "to": updated.roles }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(updated)
}

pub async fn account_by_email(db: &impl ConnectionTrait, email: &str) -> AppResult<Option<account::Model>> {
    let email = email.trim().to_lowercase();
    Ok(account::Entity::find().filter(account::Column::Email.eq(email)).one(db).await?)
}

pub async fn accounts_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<account::Model>> {
    rows_by_ids(db, account::Column::Id, ids).await
}

/// Checks credentials. Unknown email and wrong password give the same error, in the same time.
pub async fn verify_credentials(db: &DatabaseConnection, email: &str, password: &str) -> AppResult<account::Model> {
    let wrong = || AppError::InvalidCredentials;
    let found = account_by_email(db, email).await?;
    let Some(account) = found else {
        verify_password(password.to_owned(), dummy_hash().await.to_owned()).await;
        return Err(wrong());
    };
    if !verify_password(password.to_owned(), account.password_hash.clone()).await || account.disabled_at.is_some() {
        return Err(wrong());
    }
    if needs_rehash(&account.password_hash) {
        rehash(db, &account, password).await;
    }
    Ok(account)
}

/// Stores a password that just verified against a hash of older parameters hashed with
/// today's. Only if the hash is still the one verified (a password changed meanwhile wins);
/// the sign-in goes on if this fails, and the next sign-in tries again.
async fn rehash(db: &DatabaseConnection, account: &account::Model, password: &str) {
    let stored: AppResult<()> = async {
        let hash = hash_password(password.to_owned()).await?;
        account::Entity::update_many()
            .col_expr(account::Column::PasswordHash, sea_orm::sea_query::Expr::value(hash))
            .filter(account::Column::Id.eq(account.id))
            .filter(account::Column::PasswordHash.eq(account.password_hash.as_str()))
            .exec(db)
            .await?;
        Ok(())
    }
    .await;
    if let Err(e) = stored {
        tracing::warn!(account = account.id, error = %e, "could not store the password hashed anew");
    }
}

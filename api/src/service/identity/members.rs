//! Organization membership: adding members (or inviting an email), changing roles and removing
//! members, with an organization always keeping an owner.
#[allow(unused_imports)]
use super::*;

pub enum Added {
    Member(membership::Model),
    /// No account has this email yet: it becomes a member on sign-up.
    Invited(invitation::Model),
}

async fn ensure_organization(db: &impl ConnectionTrait, org_id: i64) -> AppResult<()> {
    entity::organization::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or_else(|| AppError::NotFound("organization".into()))
}

/// Command: owners and admins add a member by email; without an account yet, an invitation
/// is kept and becomes a membership when that email signs up.
pub async fn add_organization_member(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    org_id: i64,
    email: &str,
    role: MemberRole,
) -> AppResult<Added> {
    viewer.require_manage_members(org_id)?;
    let by = viewer.account.as_ref().map(|a| a.id).unwrap_or_default();
    as_viewer!(viewer, |actor| add_member(ctx, actor, org_id, email, role, by))
}

/// Command: owners and admins change a member's role; an organization keeps an owner.
pub async fn change_organization_member_role(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    org_id: i64,
    account_id: i64,
    role: MemberRole,
) -> AppResult<membership::Model> {
    viewer.require_manage_members(org_id)?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = keeping_an_owner(&txn, org_id, account_id, role == MemberRole::Owner).await?;
        let mut model: membership::ActiveModel = current.into();
        model.role = Set(role);
        let updated = model.update(&txn).await?;
        ctx.commit(txn, actor, vec![member_event(EventKind::MemberRoleChanged, org_id, account_id, role)]).await?;
        Ok(updated)
    })
}

/// Command: owners and admins remove a member; an organization keeps an owner.
pub async fn remove_organization_member(ctx: Ctx<'_>, viewer: &Viewer, org_id: i64, account_id: i64) -> AppResult<()> {
    viewer.require_manage_members(org_id)?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = keeping_an_owner(&txn, org_id, account_id, false).await?;
        membership::Entity::delete_by_id((org_id, account_id)).exec(&txn).await?;
        ctx.commit(txn, actor, vec![member_event(EventKind::MemberRemoved, org_id, account_id, current.role)]).await?;
        Ok(())
    })
}

pub async fn add_member(
    ctx: Ctx<'_>,
    actor: &Actor,
    org_id: i64,
    email: &str,
    role: MemberRole,
    invited_by: i64,
) -> AppResult<Added> {
    use sea_orm::ActiveEnum;
    let email = normalize_email(email)?;
    let txn = ctx.db.begin().await?;
    let db = &txn;
    ensure_organization(db, org_id).await?;
    let added = match account_by_email(db, &email).await? {
        Some(account) => {
            let existing = membership::Entity::find_by_id((org_id, account.id)).one(db).await?;
            if existing.is_some() {
                return Err(AppError::Conflict("this account is already a member".into()));
            }
            let m = membership::ActiveModel {
                organization_id: Set(org_id),
                account_id: Set(account.id),
                role: Set(role),
                created_at: Set(super::now()),
            }
            .insert(db)
            .await?;
            Added::Member(m)
        }
        None => {
            let invite = invitation::ActiveModel {
                organization_id: Set(org_id),
                email: Set(email),
                role: Set(role),
                invited_by: Set(invited_by),
                created_at: Set(super::now()),
                ..Default::default()
            }
            .insert(db)
            .await
            .map_err(AppError::on_unique("this email is already invited"))?;
            Added::Invited(invite)
        }
    };
    let event = match &added {
        Added::Member(m) => member_event(EventKind::MemberAdded, org_id, m.account_id, m.role),
        // The email stays out of the log (it is personal data an account deletion erases).
        Added::Invited(i) => NewEvent::new(EventKind::MemberInvited, org_id)
            .organization(Some(org_id))
            .payload(json!({ "invitationId": i.id, "role": i.role.to_value() })),
    };
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(added)
}

pub(crate) async fn owner_count(db: &impl ConnectionTrait, org_id: i64) -> AppResult<usize> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org_id))
        .filter(membership::Column::Role.eq(MemberRole::Owner))
        .all(db)
        .await?
        .len())
}

/// The membership, locked; refused when the change would leave the organization without an
/// owner (unless the member `stays_owner`).
async fn keeping_an_owner(
    txn: &sea_orm::DatabaseTransaction,
    org_id: i64,
    account_id: i64,
    stays_owner: bool,
) -> AppResult<membership::Model> {
    let current = membership::Entity::find_by_id((org_id, account_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| AppError::NotFound("membership".into()))?;
    if current.role == MemberRole::Owner && !stays_owner && owner_count(txn, org_id).await? <= 1 {
        return Err(AppError::Conflict("an organization keeps at least one owner".into()));
    }
    Ok(current)
}

/// Members of many organizations in one statement, at most 200 each.
pub async fn members_of(
    db: &impl ConnectionTrait,
    org_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<(membership::Model, account::Model)>>> {
    let rows = membership::Entity::find()
        .filter(membership::Column::OrganizationId.is_in(org_ids.iter().copied()))
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    let account_ids: Vec<i64> = rows.iter().map(|m| m.account_id).collect();
    let accounts: HashMap<i64, account::Model> =
        accounts_by_ids(db, &account_ids).await?.into_iter().map(|a| (a.id, a)).collect();
    let mut map: HashMap<i64, Vec<(membership::Model, account::Model)>> = HashMap::new();
    for m in rows {
        if let Some(a) = accounts.get(&m.account_id) {
            let list = map.entry(m.organization_id).or_default();
            if list.len() < 200 {
                list.push((m, a.clone()));
            }
        }
    }
    Ok(map)
}

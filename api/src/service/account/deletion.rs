//! Deleting an account: what is erased, what is kept anonymous, and what is cancelled.
#[allow(unused_imports)]
use super::*;

/// What a deletion did.
#[derive(Clone, Debug, Default)]
pub struct Deletion {
    pub registrations_cancelled: u64,
    pub bookings_cancelled: u64,
    pub donations_kept: u64,
}

/// Command: the signed-in person deletes the account, giving the password.
///
/// In one transaction: registrations for events that have not started are cancelled (their
/// seats go to the waitlist), the person's own bookings that have not started are cancelled
/// (bookings made for an organization, and events' room reservations, stay); donations stay with
/// their amounts, statuses and receipt numbers, shown as anonymous with no name or message,
/// so campaign totals and donor counts do not move; other registrations keep their counts but
/// lose name, phone, answers and identity document; memberships, sessions, mailed tokens,
/// notifications and preferences are erased; the account row stays as a tombstone (no name,
/// no address, no password, no roles) so donations, reviews and the log still point at
/// something. The last owner of an organization must hand it over first.
pub async fn delete_account(ctx: Ctx<'_>, viewer: &Viewer, password: &str) -> AppResult<Deletion> {
    let me = viewer.require_own_account("delete the account")?;
    let account = live_account(ctx.db, me.id).await?;
    limit_password_attempts(ctx, &account.email)?;
    check_current_password(&account, password).await?;
    let locale = locale_of(ctx.db, account.id).await?;
    let deletion = as_viewer!(viewer, |actor| erase(ctx, actor, account.id))?;
    send(ctx, texts::deleted(locale, &account));
    Ok(deletion)
}

async fn erase(ctx: Ctx<'_>, actor: &Actor, account_id: i64) -> AppResult<Deletion> {
    let txn = ctx.db.begin().await?;
    let current = lock_account(&txn, account_id).await?;
    let now = super::now();
    let memberships = membership::Entity::find().filter(membership::Column::AccountId.eq(current.id)).all(&txn).await?;
    for m in memberships.iter().filter(|m| m.role == MemberRole::Owner) {
        if identity::owner_count(&txn, m.organization_id).await? <= 1 {
            let name = organization::Entity::find_by_id(m.organization_id)
                .one(&txn)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
            return Err(AppError::conflict(
                "LAST_OWNER",
                format!("you are the only owner of “{name}”: make another member an owner first"),
            ));
        }
    }
    let mut events = Vec::new();

    let (registrations_cancelled, cancelled) =
        crate::service::event::cancel_future_registrations(&txn, current.id, now).await?;
    events.extend(cancelled);
    // Documents are erased as the retention purge erases them: number gone, time recorded.
    registration::Entity::update_many()
        .col_expr(registration::Column::IdDocPurgedAt, Expr::val(Some(now)))
        .filter(registration::Column::AccountId.eq(current.id))
        .filter(registration::Column::IdDocNumber.is_not_null())
        .exec(&txn)
        .await?;
    registration::Entity::update_many()
        .col_expr(registration::Column::Name, Expr::val(DELETED_NAME))
        .col_expr(registration::Column::Phone, Expr::val(Option::<String>::None))
        .col_expr(registration::Column::Answers, Expr::val("[]"))
        .col_expr(registration::Column::IdDocNumber, Expr::val(Option::<String>::None))
        .col_expr(registration::Column::UpdatedAt, Expr::val(now))
        .filter(registration::Column::AccountId.eq(current.id))
        .exec(&txn)
        .await?;

    let own_bookings = booking::Entity::find()
        .filter(booking::Column::BookedByAccountId.eq(current.id))
        .filter(booking::Column::OrganizationId.is_null())
        // An event's reservation of its room is the event's, whoever booked it.
        .filter(booking::Column::EventId.is_null())
        .filter(booking::Column::Status.is_in([BookingStatus::Pending, BookingStatus::Confirmed]))
        .filter(booking::Column::StartsAt.gt(now))
        .all(&txn)
        .await?;
    for b in &own_bookings {
        booking::Entity::update_many()
            .col_expr(booking::Column::Status, Expr::val(BookingStatus::Cancelled))
            .col_expr(booking::Column::StatusReason, Expr::val("账户已注销"))
            .col_expr(booking::Column::DecidedByAccountId, Expr::val(current.id))
            .col_expr(booking::Column::DecidedAt, Expr::val(now))
            .col_expr(booking::Column::UpdatedAt, Expr::val(now))
            .filter(booking::Column::Id.eq(b.id))
            .exec(&txn)
            .await?;
        let row = booking::Model {
            status: BookingStatus::Cancelled,
            status_reason: Some("账户已注销".into()),
            decided_by_account_id: Some(current.id),
            decided_at: Some(now),
            updated_at: now,
            ..b.clone()
        };
        events.push(crate::service::booking::cancelled_event(b.status, &row));
    }

    let campaigns: Vec<i64> = donation::Entity::find()
        .select_only()
        .column(donation::Column::CampaignId)
        .filter(donation::Column::DonorAccountId.eq(current.id))
        .distinct()
        .into_tuple::<i64>()
        .all(&txn)
        .await?;
    let donations_kept = donation::Entity::update_many()
        .col_expr(donation::Column::DonorName, Expr::val(ANONYMOUS_DONOR))
        .col_expr(donation::Column::DisplayMode, Expr::val(DisplayMode::Anonymous))
        .col_expr(donation::Column::Message, Expr::val(""))
        .filter(donation::Column::DonorAccountId.eq(current.id))
        .exec(&txn)
        .await?
        .rows_affected;

    for m in &memberships {
        events.push(identity::member_event(EventKind::MemberRemoved, m.organization_id, current.id, m.role));
    }
    membership::Entity::delete_many().filter(membership::Column::AccountId.eq(current.id)).exec(&txn).await?;
    session::Entity::delete_many().filter(session::Column::AccountId.eq(current.id)).exec(&txn).await?;
    account_token::Entity::delete_many().filter(account_token::Column::AccountId.eq(current.id)).exec(&txn).await?;
    notification::Entity::delete_many().filter(notification::Column::AccountId.eq(current.id)).exec(&txn).await?;
    // Relayed messages hold the person's phone or openid and texts.
    entity::channel_message::Entity::delete_many()
        .filter(entity::channel_message::Column::AccountId.eq(current.id))
        .exec(&txn)
        .await?;
    notification_setting::Entity::delete_many()
        .filter(notification_setting::Column::AccountId.eq(current.id))
        .exec(&txn)
        .await?;
    account::Entity::update_many()
        .col_expr(account::Column::Email, Expr::val(format!("deleted-{}@accounts.invalid", current.id)))
        .col_expr(account::Column::DisplayName, Expr::val(DELETED_NAME))
        // Not a password hash: nothing verifies against it.
        .col_expr(account::Column::PasswordHash, Expr::val("!deleted"))
        .col_expr(account::Column::Roles, Expr::val(""))
        .col_expr(account::Column::EmailVerifiedAt, Expr::val(Option::<DateTime<Utc>>::None))
        .col_expr(account::Column::DisabledAt, Expr::val(Some(now)))
        .col_expr(account::Column::DeletedAt, Expr::val(Some(now)))
        .filter(account::Column::Id.eq(current.id))
        .exec(&txn)
        .await?;
    let deletion = Deletion { registrations_cancelled, bookings_cancelled: own_bookings.len() as u64, donations_kept };
    events.push(NewEvent::new(EventKind::AccountDeleted, current.id).account(Some(current.id)).payload(json!({
        "registrationsCancelled": deletion.registrations_cancelled,
        "bookingsCancelled": deletion.bookings_cancelled,
        "donationsKept": deletion.donations_kept,
        "campaignIds": campaigns,
    })));
    ctx.commit(txn, actor, events).await?;
    Ok(deletion)
}

//! Accounts people recover and control: password resets by email, changing the password,
//! verifying and changing the email address, downloading one's data and deleting the account
//! (the rights China's Personal Information Protection Law gives).
//!
//! Tokens mailed for these are random, single-use and stored only as SHA-256 hashes, one row
//! per account and purpose (`account_tokens`): issuing a token replaces the row, so a newer
//! token makes the older one useless, and using one is a conditional update that only one
//! request can win. Mails go through the instance's mailer whatever the person chose for
//! notifications (they are how a person keeps control of the account); they are sent after
//! the commit and never queued in the database, since they carry the token.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::account_token::{self, TokenPurpose};
use entity::booking::BookingStatus;
use entity::donation::DisplayMode;
use entity::membership::MemberRole;
use entity::{account, booking, campaign, donation, event, membership, notification, notification_setting};
use entity::{organization, registration, session, space};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Value, json};

use super::identity::{self, hash_password, sha256_hex, verify_password};
use super::notifications::Locale;
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::mail::AccountMail;

/// What a deleted account's name and address become.
pub const DELETED_NAME: &str = "已注销用户";
/// What the donor name of a deleted account's donations becomes.
pub const ANONYMOUS_DONOR: &str = "匿名";
/// At most this many rows of each kind in a data export.
pub const EXPORT_LIMIT: u64 = 5_000;

fn prefix(purpose: TokenPurpose) -> &'static str {
    match purpose {
        TokenPurpose::PasswordReset => "pr_",
        TokenPurpose::EmailVerification => "ev_",
        TokenPurpose::EmailChange => "ec_",
    }
}

fn token_invalid() -> AppError {
    AppError::refused(
        "TOKEN_INVALID",
        "this token is unknown, used, replaced by a newer one or expired: ask for a new mail",
    )
}

fn wrong_password() -> AppError {
    AppError::rule("password", "WRONG_PASSWORD", "the current password is not right")
}

fn ttl(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::minutes(30))
}

/// Issues a token of `purpose` for `account_id`, to be mailed to `email`, replacing any earlier
/// one of that purpose. Returns the token itself; only its hash is stored.
pub async fn issue_token(
    db: &impl ConnectionTrait,
    account_id: i64,
    purpose: TokenPurpose,
    email: &str,
    lifetime: std::time::Duration,
) -> AppResult<String> {
    let token = identity::random_token(prefix(purpose));
    let now = super::now();
    let row = account_token::ActiveModel {
        account_id: Set(account_id),
        purpose: Set(purpose),
        token_hash: Set(sha256_hex(&token)),
        email: Set(email.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + ttl(lifetime)),
        used_at: Set(None),
        ..Default::default()
    };
    account_token::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([account_token::Column::AccountId, account_token::Column::Purpose])
                .update_columns([
                    account_token::Column::TokenHash,
                    account_token::Column::Email,
                    account_token::Column::CreatedAt,
                    account_token::Column::ExpiresAt,
                    account_token::Column::UsedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(token)
}

/// The live token (unused, unexpired, of one of `purposes`), without using it.
async fn live_token(
    db: &impl ConnectionTrait,
    token: &str,
    purposes: &[TokenPurpose],
) -> AppResult<account_token::Model> {
    account_token::Entity::find()
        .filter(account_token::Column::TokenHash.eq(sha256_hex(token.trim())))
        .filter(account_token::Column::Purpose.is_in(purposes.iter().copied()))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(super::now()))
        .one(db)
        .await?
        .ok_or_else(token_invalid)
}

/// Uses a live token: one conditional update, so of two requests with the same token one wins.
async fn take_token(
    db: &impl ConnectionTrait,
    token: &str,
    purposes: &[TokenPurpose],
) -> AppResult<account_token::Model> {
    let now = super::now();
    let taken = account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::val(now))
        .filter(account_token::Column::TokenHash.eq(sha256_hex(token.trim())))
        .filter(account_token::Column::Purpose.is_in(purposes.iter().copied()))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .exec_with_returning(db)
        .await?;
    taken.into_iter().next().ok_or_else(token_invalid)
}

/// A live (not disabled, not deleted) account, locked until the transaction ends.
async fn lock_account(db: &impl ConnectionTrait, id: i64) -> AppResult<account::Model> {
    account::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .filter(|a| a.disabled_at.is_none() && a.deleted_at.is_none())
        .ok_or(AppError::Unauthenticated)
}

async fn live_account(db: &impl ConnectionTrait, id: i64) -> AppResult<account::Model> {
    account::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|a| a.disabled_at.is_none() && a.deleted_at.is_none())
        .ok_or(AppError::Unauthenticated)
}

/// Ends the account's sessions (all of them, or all but `keep`). Returns how many ended.
async fn end_sessions(db: &impl ConnectionTrait, account_id: i64, keep: Option<i64>) -> AppResult<u64> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(super::now()))
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    Ok(update.exec(db).await?.rows_affected)
}

async fn locale_of(db: &impl ConnectionTrait, account_id: i64) -> AppResult<Locale> {
    Ok(super::notifications::preferences(db, account_id).await?.locale)
}

fn send(ctx: Ctx<'_>, mail: AccountMail) {
    match ctx.mailer {
        Some(mailer) => mailer.send_account_mail(mail),
        None => tracing::warn!(kind = mail.kind, "an account mail cannot be sent: INCUBASE_SMTP_URL is not set"),
    }
}

/// Counts one request for a mail to `email` from the viewer's address.
fn limit_mails(ctx: Ctx<'_>, viewer: &Viewer, email: &str) -> AppResult<()> {
    ctx.account_mail_limiter.check(email, viewer.address.as_deref().unwrap_or("unknown"))
}

/// Counts one attempt at the current password (a stolen access token must not make it
/// guessable): the sign-in limit per account applies.
fn limit_password_attempts(ctx: Ctx<'_>, email: &str) -> AppResult<()> {
    ctx.sign_in_limiter.check_account(email)
}

async fn check_current_password(account: &account::Model, password: &str) -> AppResult<()> {
    if verify_password(password.to_owned(), account.password_hash.clone()).await {
        Ok(())
    } else {
        Err(wrong_password())
    }
}

// ---------------------------------------------------------------- password reset

/// Command: mails a password reset token to `email` when an account has it. The answer is
/// the same whether or not one does; an unknown address gets no mail and writes nothing.
/// Limited per address mailed and per client address, known or not.
pub async fn request_password_reset(ctx: Ctx<'_>, viewer: &Viewer, email: &str) -> AppResult<()> {
    viewer.may_recover_account()?;
    let email = identity::normalize_email(email)?;
    limit_mails(ctx, viewer, &email)?;
    let found = identity::account_by_email(ctx.db, &email).await?;
    let Some(account) = found.filter(|a| a.disabled_at.is_none() && a.deleted_at.is_none()) else {
        return Ok(());
    };
    let lifetime = ctx.settings.accounts.password_reset_ttl;
    let actor = Actor::of(viewer).as_account(account.id);
    let token = retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let token = issue_token(&txn, account.id, TokenPurpose::PasswordReset, &account.email, lifetime).await?;
        let event = NewEvent::new(EventKind::AccountPasswordResetRequested, account.id).account(Some(account.id));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(token)
    })
    .await?;
    let locale = locale_of(ctx.db, account.id).await?;
    send(ctx, texts::reset(locale, &account, &token, ctx.settings.accounts.link_url.as_deref(), lifetime));
    Ok(())
}

/// What a reset did.
pub struct PasswordReset {
    pub account: account::Model,
    pub sessions_ended: u64,
}

/// Command: sets a new password with a mailed reset token (once) and ends every session of
/// the account. Proves the mailbox too: the address counts as verified from then on.
pub async fn reset_password(ctx: Ctx<'_>, viewer: &Viewer, token: &str, password: &str) -> AppResult<PasswordReset> {
    viewer.may_recover_account()?;
    // Checked before the token is used, so a weak password does not waste it.
    let peek = live_token(ctx.db, token, &[TokenPurpose::PasswordReset]).await?;
    let account = live_account(ctx.db, peek.account_id).await.map_err(|_| token_invalid())?;
    identity::check_password_strength(password, &account.email)?;
    let hash = hash_password(password.to_owned()).await?;
    let actor = Actor::of(viewer).as_account(account.id);
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let taken = take_token(&txn, token, &[TokenPurpose::PasswordReset]).await?;
        let current = lock_account(&txn, taken.account_id).await.map_err(|_| token_invalid())?;
        let now = super::now();
        let verified = current.email_verified_at.or((current.email == taken.email).then_some(now));
        account::Entity::update_many()
            .col_expr(account::Column::PasswordHash, Expr::val(hash.clone()))
            .col_expr(account::Column::EmailVerifiedAt, Expr::val(verified))
            .filter(account::Column::Id.eq(current.id))
            .exec(&txn)
            .await?;
        let sessions_ended = end_sessions(&txn, current.id, None).await?;
        let event = NewEvent::new(EventKind::AccountPasswordReset, current.id)
            .account(Some(current.id))
            .payload(json!({ "sessionsEnded": sessions_ended }));
        ctx.commit(txn, &actor, vec![event]).await?;
        let account = account::Model { email_verified_at: verified, ..current };
        Ok(PasswordReset { account, sessions_ended })
    })
    .await
}

// ---------------------------------------------------------------- change password

/// Command: the signed-in person sets a new password, giving the current one. Every other
/// session ends; the one this request came with stays signed in. The address is told.
pub async fn change_password(ctx: Ctx<'_>, viewer: &Viewer, current: &str, new: &str) -> AppResult<u64> {
    let me = viewer.require_own_account("change the password")?;
    let account = live_account(ctx.db, me.id).await?;
    limit_password_attempts(ctx, &account.email)?;
    check_current_password(&account, current).await?;
    identity::check_password_strength(new, &account.email)?;
    let hash = hash_password(new.to_owned()).await?;
    let actor = Actor::of(viewer);
    let ended = retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let locked = lock_account(&txn, account.id).await?;
        account::Entity::update_many()
            .col_expr(account::Column::PasswordHash, Expr::val(hash.clone()))
            .filter(account::Column::Id.eq(locked.id))
            .exec(&txn)
            .await?;
        let ended = end_sessions(&txn, locked.id, me.session_id).await?;
        // A pending reset must not undo this change later.
        account_token::Entity::delete_many()
            .filter(account_token::Column::AccountId.eq(locked.id))
            .filter(account_token::Column::Purpose.eq(TokenPurpose::PasswordReset))
            .exec(&txn)
            .await?;
        let event = NewEvent::new(EventKind::AccountPasswordChanged, locked.id)
            .account(Some(locked.id))
            .payload(json!({ "sessionsEnded": ended }));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(ended)
    })
    .await?;
    let locale = locale_of(ctx.db, account.id).await?;
    send(ctx, texts::password_changed(locale, &account));
    Ok(ended)
}

// ---------------------------------------------------------------- email

/// In a sign-up's transaction: a verification token for the new address, and its event.
pub(crate) async fn issue_sign_up_verification(
    ctx: Ctx<'_>,
    db: &impl ConnectionTrait,
    account: &account::Model,
) -> AppResult<(String, NewEvent)> {
    let lifetime = ctx.settings.accounts.email_token_ttl;
    let token = issue_token(db, account.id, TokenPurpose::EmailVerification, &account.email, lifetime).await?;
    Ok((token, NewEvent::new(EventKind::AccountEmailVerificationRequested, account.id).account(Some(account.id))))
}

/// After a sign-up's commit: mails the verification token (in Simplified script: a new
/// account has chosen no language yet).
pub(crate) fn mail_sign_up_verification(ctx: Ctx<'_>, account: &account::Model, token: &str) {
    if ctx.mailer.is_none() {
        // Expected without SMTP: `requestEmailVerification` mails one once it is configured.
        return;
    }
    let (lifetime, link) = (ctx.settings.accounts.email_token_ttl, ctx.settings.accounts.link_url.as_deref());
    send(ctx, texts::verify(Locale::Hans, &account.display_name, &account.email, token, link, lifetime, false));
}

/// Command: mails a verification token to the signed-in person's address. Answers `false`
/// (and mails nothing) when the address is verified already.
pub async fn request_email_verification(ctx: Ctx<'_>, viewer: &Viewer) -> AppResult<bool> {
    let me = viewer.require_own_account("verify the email address")?;
    let account = live_account(ctx.db, me.id).await?;
    if account.email_verified_at.is_some() {
        return Ok(false);
    }
    limit_mails(ctx, viewer, &account.email)?;
    let lifetime = ctx.settings.accounts.email_token_ttl;
    let actor = Actor::of(viewer);
    let token = retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let token = issue_token(&txn, account.id, TokenPurpose::EmailVerification, &account.email, lifetime).await?;
        let event = NewEvent::new(EventKind::AccountEmailVerificationRequested, account.id).account(Some(account.id));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(token)
    })
    .await?;
    let locale = locale_of(ctx.db, account.id).await?;
    let link = ctx.settings.accounts.link_url.as_deref();
    send(ctx, texts::verify(locale, &account.display_name, &account.email, &token, link, lifetime, false));
    Ok(true)
}

/// Command: the signed-in person asks to change the address to `new_email`, giving the
/// password. A token goes to the new address; the change applies when it is used.
pub async fn request_email_change(ctx: Ctx<'_>, viewer: &Viewer, new_email: &str, password: &str) -> AppResult<()> {
    let me = viewer.require_own_account("change the email address")?;
    let account = live_account(ctx.db, me.id).await?;
    limit_password_attempts(ctx, &account.email)?;
    check_current_password(&account, password).await?;
    let new_email = identity::normalize_email(new_email)?;
    if new_email == account.email {
        return Err(AppError::rule("newEmail", "SAME_EMAIL", "this is the account's address already"));
    }
    if identity::account_by_email(ctx.db, &new_email).await?.is_some() {
        return Err(AppError::conflict("EMAIL_TAKEN", "an account with this email already exists"));
    }
    limit_mails(ctx, viewer, &new_email)?;
    let lifetime = ctx.settings.accounts.email_token_ttl;
    let actor = Actor::of(viewer);
    let token = retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let token = issue_token(&txn, account.id, TokenPurpose::EmailChange, &new_email, lifetime).await?;
        let event = NewEvent::new(EventKind::AccountEmailChangeRequested, account.id).account(Some(account.id));
        ctx.commit(txn, &actor, vec![event]).await?;
        Ok(token)
    })
    .await?;
    let locale = locale_of(ctx.db, account.id).await?;
    let link = ctx.settings.accounts.link_url.as_deref();
    send(ctx, texts::verify(locale, &account.display_name, &new_email, &token, link, lifetime, true));
    Ok(())
}

/// Command: uses a mailed verification or email change token (once). A verification marks
/// the address verified; a change makes the new address the account's (verified), takes up
/// invitations waiting for it, and tells the old address.
pub async fn verify_email(ctx: Ctx<'_>, viewer: &Viewer, token: &str) -> AppResult<account::Model> {
    viewer.may_recover_account()?;
    let purposes = [TokenPurpose::EmailVerification, TokenPurpose::EmailChange];
    let peek = live_token(ctx.db, token, &purposes).await?;
    let actor = Actor::of(viewer).as_account(peek.account_id);
    let (before, after) = retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let taken = take_token(&txn, token, &purposes).await?;
        let current = lock_account(&txn, taken.account_id).await.map_err(|_| token_invalid())?;
        let now = super::now();
        let mut events = Vec::new();
        let updated = match taken.purpose {
            TokenPurpose::EmailChange => {
                account::Entity::update_many()
                    .col_expr(account::Column::Email, Expr::val(taken.email.clone()))
                    .col_expr(account::Column::EmailVerifiedAt, Expr::val(Some(now)))
                    .filter(account::Column::Id.eq(current.id))
                    .exec(&txn)
                    .await
                    .map_err(|e| match AppError::from(e) {
                        AppError::Conflict(_) => {
                            AppError::conflict("EMAIL_TAKEN", "an account with this email already exists")
                        }
                        other => other,
                    })?;
                // A verification mailed to the old address means nothing now.
                account_token::Entity::delete_many()
                    .filter(account_token::Column::AccountId.eq(current.id))
                    .filter(account_token::Column::Purpose.eq(TokenPurpose::EmailVerification))
                    .exec(&txn)
                    .await?;
                events.push(NewEvent::new(EventKind::AccountEmailChanged, current.id).account(Some(current.id)));
                events.extend(identity::claim_invitations(&txn, current.id, &taken.email).await?);
                account::Model { email: taken.email.clone(), email_verified_at: Some(now), ..current.clone() }
            }
            _ => {
                // The address changed since the mail went out: this token proves nothing.
                if current.email != taken.email {
                    return Err(token_invalid());
                }
                let verified = current.email_verified_at.unwrap_or(now);
                account::Entity::update_many()
                    .col_expr(account::Column::EmailVerifiedAt, Expr::val(Some(verified)))
                    .filter(account::Column::Id.eq(current.id))
                    .exec(&txn)
                    .await?;
                events.push(NewEvent::new(EventKind::AccountEmailVerified, current.id).account(Some(current.id)));
                account::Model { email_verified_at: Some(verified), ..current.clone() }
            }
        };
        ctx.commit(txn, &actor, events).await?;
        Ok((current, updated))
    })
    .await?;
    if before.email != after.email {
        let locale = locale_of(ctx.db, after.id).await?;
        send(ctx, texts::email_changed(locale, &before, &after.email));
    }
    Ok(after)
}

// ---------------------------------------------------------------- deletion

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
    let actor = Actor::of(viewer);
    let deletion = retry_transient(|| erase(ctx, &actor, account.id)).await?;
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

    let (registrations_cancelled, cancelled) = super::event::cancel_future_registrations(&txn, current.id, now).await?;
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
        events.push(super::booking::cancelled_event(b.status, &row));
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

// ---------------------------------------------------------------- export

/// The signed-in person's data as JSON: profile, notification choices, memberships,
/// registrations, bookings and donations (at most `EXPORT_LIMIT` of each, newest first, with
/// `truncated` saying so). Nothing of anyone else: only rows that are the person's own.
pub async fn export(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<Value> {
    let me = viewer.require_own_account("download your data")?;
    let account = live_account(db, me.id).await?;
    let prefs = super::notifications::preferences(db, account.id).await?;

    let memberships = membership::Entity::find()
        .filter(membership::Column::AccountId.eq(account.id))
        .order_by_asc(membership::Column::OrganizationId)
        .limit(EXPORT_LIMIT + 1)
        .all(db)
        .await?;
    let orgs: HashMap<i64, String> = organization::Entity::find()
        .filter(organization::Column::Id.is_in(memberships.iter().map(|m| m.organization_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();

    let registrations = registration::Entity::find()
        .filter(registration::Column::AccountId.eq(account.id))
        .order_by_desc(registration::Column::Id)
        .limit(EXPORT_LIMIT + 1)
        .all(db)
        .await?;
    let event_ids: HashSet<i64> = registrations.iter().map(|r| r.event_id).collect();
    let events: HashMap<i64, event::Model> = event::Entity::find()
        .filter(event::Column::Id.is_in(event_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();

    let bookings = booking::Entity::find()
        .filter(booking::Column::BookedByAccountId.eq(account.id))
        .order_by_desc(booking::Column::Id)
        .limit(EXPORT_LIMIT + 1)
        .all(db)
        .await?;
    let space_ids: HashSet<i64> = bookings.iter().map(|b| b.space_id).collect();
    let spaces: HashMap<i64, String> = space::Entity::find()
        .filter(space::Column::Id.is_in(space_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();

    let donations = donation::Entity::find()
        .filter(donation::Column::DonorAccountId.eq(account.id))
        .order_by_desc(donation::Column::Id)
        .limit(EXPORT_LIMIT + 1)
        .all(db)
        .await?;
    let campaign_ids: HashSet<i64> = donations.iter().map(|d| d.campaign_id).collect();
    let campaigns: HashMap<i64, String> = campaign::Entity::find()
        .filter(campaign::Column::Id.is_in(campaign_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.title))
        .collect();

    let limit = EXPORT_LIMIT as usize;
    let truncated =
        [memberships.len(), registrations.len(), bookings.len(), donations.len()].iter().any(|n| *n > limit);
    let kinds: Vec<&str> = prefs.email_kinds.iter().map(|k| k.name()).collect();
    Ok(json!({
        "exportedAt": super::now(),
        "truncated": truncated,
        "profile": {
            "id": account.id,
            "email": account.email,
            "emailVerifiedAt": account.email_verified_at,
            "displayName": account.display_name,
            "roles": identity::Role::parse_list(&account.roles).iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "createdAt": account.created_at,
            "locale": prefs.locale.as_str(),
            "emailKinds": kinds,
            "smsPhone": prefs.sms_phone,
            "smsKinds": prefs.sms_kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "wechatOpenId": prefs.wechat_openid,
            "wechatKinds": prefs.wechat_kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        },
        "memberships": memberships.iter().take(limit).map(|m| json!({
            "organizationId": m.organization_id,
            "organization": orgs.get(&m.organization_id),
            "role": m.role.to_value(),
            "since": m.created_at,
        })).collect::<Vec<_>>(),
        "registrations": registrations.iter().take(limit).map(|r| {
            let e = events.get(&r.event_id);
            json!({
                "id": r.id,
                "eventId": r.event_id,
                "event": e.map(|e| e.title.clone()),
                "eventStartsAt": e.map(|e| e.starts_at),
                "status": r.status.to_value(),
                "name": r.name,
                "phone": r.phone,
                "partySize": r.party_size,
                "women": r.women,
                "children": r.children,
                "familyMembers": r.family_members,
                "professionals": r.professionals,
                "answers": serde_json::from_str::<Value>(&r.answers).unwrap_or(Value::Null),
                "consentAt": r.consent_at,
                "registeredAt": r.queued_at,
                "ticketCode": r.ticket_code,
                "checkedInAt": r.checked_in_at,
                "identityDocumentType": r.id_doc_type.map(|t| t.to_value()),
                // Masked as everywhere else: the number itself is not handed out again.
                "identityDocumentNumber": r.id_doc_number.as_deref().map(super::event::mask),
                "cancelledAt": r.cancelled_at,
            })
        }).collect::<Vec<_>>(),
        "bookings": bookings.iter().take(limit).map(|b| json!({
            "id": b.id,
            "spaceId": b.space_id,
            "space": spaces.get(&b.space_id),
            "organizationId": b.organization_id,
            "purpose": b.purpose,
            "attendees": b.attendees,
            "startsAt": b.starts_at,
            "endsAt": b.ends_at,
            "status": b.status.to_value(),
            "statusReason": b.status_reason,
            "createdAt": b.created_at,
        })).collect::<Vec<_>>(),
        "donations": donations.iter().take(limit).map(|d| json!({
            "id": d.id,
            "campaignId": d.campaign_id,
            "campaign": campaigns.get(&d.campaign_id),
            "amountFen": d.amount_fen,
            "channel": d.channel.to_value(),
            "status": d.status.to_value(),
            "donorName": d.donor_name,
            "displayMode": d.display_mode.to_value(),
            "message": d.message,
            "receiptNumber": d.receipt_number,
            "refundOfId": d.refund_of_id,
            "confirmedAt": d.confirmed_at,
            "createdAt": d.created_at,
        })).collect::<Vec<_>>(),
    }))
}

// ---------------------------------------------------------------- mails

/// The account mails, in Simplified or Traditional script.
mod texts {
    use super::{AccountMail, Locale, account};

    fn pick(locale: Locale, hans: String, hant: String) -> String {
        match locale {
            Locale::Hans => hans,
            Locale::Hant => hant,
        }
    }

    /// `a***@example.org`.
    pub fn mask_email(email: &str) -> String {
        match email.split_once('@') {
            Some((user, host)) => format!("{}***@{host}", user.chars().next().unwrap_or('*')),
            None => "***".into(),
        }
    }

    fn minutes(d: std::time::Duration) -> u64 {
        (d.as_secs() / 60).max(1)
    }

    fn code_lines(locale: Locale, token: &str, link: Option<String>) -> String {
        let code = pick(locale, format!("验证码：{token}"), format!("驗證碼：{token}"));
        match link {
            Some(link) => format!("{link}\n\n{code}"),
            None => code,
        }
    }

    pub fn reset(
        locale: Locale,
        account: &account::Model,
        token: &str,
        link: Option<&str>,
        ttl: std::time::Duration,
    ) -> AccountMail {
        let m = minutes(ttl);
        let code = code_lines(locale, token, link.map(|l| format!("{l}/reset-password?token={token}")));
        let name = &account.display_name;
        AccountMail {
            kind: "password_reset",
            address: account.email.clone(),
            name: name.clone(),
            subject: pick(locale, "重置密码".into(), "重設密碼".into()),
            body: pick(
                locale,
                format!(
                    "{name}，您好：\n\n我们收到了重置您账户密码的请求。请在 {m} 分钟内用下面的链接或验证码设置新密码，它只能使用一次：\n\n{code}\n\n如果这不是您本人的操作，请忽略本邮件，您的密码不会改变。\n"
                ),
                format!(
                    "{name}，您好：\n\n我們收到了重設您帳戶密碼的請求。請在 {m} 分鐘內用下面的連結或驗證碼設定新密碼，它只能使用一次：\n\n{code}\n\n如果這不是您本人的操作，請忽略本郵件，您的密碼不會改變。\n"
                ),
            ),
        }
    }

    pub fn verify(
        locale: Locale,
        name: &str,
        address: &str,
        token: &str,
        link: Option<&str>,
        ttl: std::time::Duration,
        change: bool,
    ) -> AccountMail {
        let h = (ttl.as_secs() / 3600).max(1);
        let code = code_lines(locale, token, link.map(|l| format!("{l}/verify-email?token={token}")));
        let (subject, body) = if change {
            (
                pick(locale, "确认新的邮箱地址".into(), "確認新的電子郵件地址".into()),
                pick(
                    locale,
                    format!(
                        "{name}，您好：\n\n您申请将账户邮箱改为 {address}。请在 {h} 小时内用下面的链接或验证码确认，确认后才会更改：\n\n{code}\n\n如果这不是您本人的操作，请忽略本邮件。\n"
                    ),
                    format!(
                        "{name}，您好：\n\n您申請將帳戶電子郵件改為 {address}。請在 {h} 小時內用下面的連結或驗證碼確認，確認後才會更改：\n\n{code}\n\n如果這不是您本人的操作，請忽略本郵件。\n"
                    ),
                ),
            )
        } else {
            (
                pick(locale, "验证邮箱地址".into(), "驗證電子郵件地址".into()),
                pick(
                    locale,
                    format!(
                        "{name}，您好：\n\n请在 {h} 小时内用下面的链接或验证码确认 {address} 是您的邮箱：\n\n{code}\n"
                    ),
                    format!(
                        "{name}，您好：\n\n請在 {h} 小時內用下面的連結或驗證碼確認 {address} 是您的電子郵件：\n\n{code}\n"
                    ),
                ),
            )
        };
        AccountMail {
            kind: if change { "email_change" } else { "email_verification" },
            address: address.to_owned(),
            name: name.to_owned(),
            subject,
            body,
        }
    }

    pub fn email_changed(locale: Locale, before: &account::Model, new_email: &str) -> AccountMail {
        let (name, masked) = (&before.display_name, mask_email(new_email));
        AccountMail {
            kind: "email_changed",
            address: before.email.clone(),
            name: name.clone(),
            subject: pick(locale, "账户邮箱已更改".into(), "帳戶電子郵件已更改".into()),
            body: pick(
                locale,
                format!(
                    "{name}，您好：\n\n您账户的邮箱已改为 {masked}，此地址不再用于登录。如果这不是您本人的操作，请立即联系基地工作人员。\n"
                ),
                format!(
                    "{name}，您好：\n\n您帳戶的電子郵件已改為 {masked}，此地址不再用於登入。如果這不是您本人的操作，請立即聯絡基地工作人員。\n"
                ),
            ),
        }
    }

    pub fn password_changed(locale: Locale, account: &account::Model) -> AccountMail {
        let name = &account.display_name;
        AccountMail {
            kind: "password_changed",
            address: account.email.clone(),
            name: name.clone(),
            subject: pick(locale, "密码已更改".into(), "密碼已更改".into()),
            body: pick(
                locale,
                format!(
                    "{name}，您好：\n\n您账户的密码刚刚更改，其他设备上的登录已退出。如果这不是您本人的操作，请立即用“忘记密码”重置密码，并联系基地工作人员。\n"
                ),
                format!(
                    "{name}，您好：\n\n您帳戶的密碼剛剛更改，其他裝置上的登入已登出。如果這不是您本人的操作，請立即用「忘記密碼」重設密碼，並聯絡基地工作人員。\n"
                ),
            ),
        }
    }

    pub fn deleted(locale: Locale, account: &account::Model) -> AccountMail {
        let name = &account.display_name;
        AccountMail {
            kind: "account_deleted",
            address: account.email.clone(),
            name: name.clone(),
            subject: pick(locale, "账户已注销".into(), "帳戶已註銷".into()),
            body: pick(
                locale,
                format!(
                    "{name}，您好：\n\n您的账户已注销，个人信息已删除或匿名化。您的捐赠记录以匿名方式保留，收据编号不变；尚未开始的活动报名和场地预约已取消。\n"
                ),
                format!(
                    "{name}，您好：\n\n您的帳戶已註銷，個人資訊已刪除或匿名化。您的捐贈紀錄以匿名方式保留，收據編號不變；尚未開始的活動報名和場地預約已取消。\n"
                ),
            ),
        }
    }
}

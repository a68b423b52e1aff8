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
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Value, json};

use super::common::upsert;
use super::identity::{self, hash_password, sha256_hex, verify_password};
use super::notifications::Locale;
use super::{Ctx, as_viewer, now, retry_transient};
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
    use account_token::Column as C;
    let replaced = [C::TokenHash, C::Email, C::CreatedAt, C::ExpiresAt, C::UsedAt];
    upsert(db, row, &[C::AccountId, C::Purpose], &replaced).await?;
    Ok(token)
}

/// Issues a token for `account` (mailed to `email`) with the event `kind` that records the
/// request, in one transaction (retried when transient).
async fn issue_logged_token(
    ctx: Ctx<'_>,
    actor: &Actor,
    account: &account::Model,
    (purpose, kind): (TokenPurpose, EventKind),
    email: &str,
    lifetime: std::time::Duration,
) -> AppResult<String> {
    retry_transient(|| async {
        let txn = ctx.db.begin().await?;
        let token = issue_token(&txn, account.id, purpose, email, lifetime).await?;
        let event = NewEvent::new(kind, account.id).account(Some(account.id));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(token)
    })
    .await
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

mod deletion;
mod email;
mod export;
mod password;
mod texts;

pub use deletion::*;
pub use email::*;
pub use export::*;
pub use password::*;

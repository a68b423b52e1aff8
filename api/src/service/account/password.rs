//! Passwords a person recovers or changes: reset by a mailed token, and the change of a known one.
#[allow(unused_imports)]
use super::*;

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
    let requested = (TokenPurpose::PasswordReset, EventKind::AccountPasswordResetRequested);
    let token = issue_logged_token(ctx, &actor, &account, requested, &account.email, lifetime).await?;
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
    let ended = as_viewer!(viewer, |actor| async {
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
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(ended)
    })?;
    let locale = locale_of(ctx.db, account.id).await?;
    send(ctx, texts::password_changed(locale, &account));
    Ok(ended)
}

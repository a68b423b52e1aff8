//! Email addresses: signing up (the new address is verified by a mailed token), verification,
//! and changing the address.
#[allow(unused_imports)]
use super::*;

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

/// Command: a donor creates an account and is signed in.
pub async fn sign_up(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    email: &str,
    password: &str,
    name: &str,
) -> AppResult<identity::IssuedTokens> {
    let (email, hash, name) = identity::new_credentials(email, password, name, &[identity::Role::Donor]).await?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let (account, mut events) =
            identity::insert_account(&txn, &email, &hash, &name, &[identity::Role::Donor]).await?;
        let (token, verification) = issue_sign_up_verification(ctx, &txn, &account).await?;
        events.push(verification);
        let issued = identity::start_session(&txn, ctx.tokens, account).await?;
        events.push(NewEvent::new(EventKind::AccountSignedIn, issued.account.id).account(Some(issued.account.id)));
        ctx.commit(txn, &actor.as_account(issued.account.id), events).await?;
        Ok((issued, token))
    })
    .map(|(issued, token)| {
        // The address is checked by a mail right away (`requestEmailVerification` sends another).
        mail_sign_up_verification(ctx, &issued.account, &token);
        issued
    })
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
    let requested = (TokenPurpose::EmailVerification, EventKind::AccountEmailVerificationRequested);
    let token = issue_logged_token(ctx, &actor, &account, requested, &account.email, lifetime).await?;
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
    let requested = (TokenPurpose::EmailChange, EventKind::AccountEmailChangeRequested);
    let token = issue_logged_token(ctx, &actor, &account, requested, &new_email, lifetime).await?;
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
                    .map_err(AppError::on_unique(
                        crate::error::Rejection::new("an account with this email already exists").reason("EMAIL_TAKEN"),
                    ))?;
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

//! The person's own account in the schema: password resets by email, changing the password,
//! verifying and changing the email address, deleting the account. (The data download is
//! `GET /account/export`, see `crate::http`.)
use crate::graphql::common::payload;
use async_graphql::{Context, InputObject, Object, Result, ResultExt, SimpleObject};

use super::identity::{OwnAccount, viewer};
use super::state;
use crate::service::account as service;

#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    pub email: String,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token from the mail (`pr_…`).
    pub token: String,
    /// At least 10 characters, mixing two of letters, digits and symbols.
    pub new_password: String,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
}

#[derive(InputObject)]
pub struct RequestEmailChangeInput {
    pub new_email: String,
    /// The account's current password.
    pub password: String,
}

#[derive(InputObject)]
pub struct VerifyEmailInput {
    /// The token from the mail (`ev_…` to verify the address, `ec_…` to confirm a new one).
    pub token: String,
}

#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The account's current password.
    pub password: String,
}

#[derive(SimpleObject)]
pub struct RequestPasswordResetPayload {
    /// Always true: the answer is the same whether or not an account has this address (only
    /// one that has gets a mail).
    pub accepted: bool,
    /// How long a mailed token stays valid.
    pub valid_for_minutes: i32,
}

#[derive(SimpleObject)]
pub struct ResetPasswordPayload {
    pub account: OwnAccount,
    /// Sessions ended by the reset (every one the account had): sign in with the new password.
    pub sessions_ended: i32,
}

#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// Other sessions ended; the one this request came with stays signed in.
    pub sessions_ended: i32,
}

#[derive(SimpleObject)]
pub struct RequestEmailVerificationPayload {
    /// False when the address is verified already (no mail then).
    pub sent: bool,
}

#[derive(SimpleObject)]
pub struct RequestEmailChangePayload {
    /// True: a token went to the new address; the change applies when it is used.
    pub sent: bool,
}

payload!(VerifyEmailPayload { account: OwnAccount });

#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    pub deleted: bool,
    /// Registrations for events that had not started, cancelled (their seats went to the waitlist).
    pub registrations_cancelled: i32,
    /// The person's own bookings that had not started, cancelled.
    pub bookings_cancelled: i32,
    /// Donations kept as anonymous records, with their receipt numbers.
    pub donations_kept: i32,
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Mails a password reset token to this address if an account has it (valid 30 minutes,
    /// once). The answer is the same either way; limited per address and per client.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        input: RequestPasswordResetInput,
    ) -> Result<RequestPasswordResetPayload> {
        let state = state(ctx)?;
        service::request_password_reset(state.ctx(), viewer(ctx), &input.email).await.extend()?;
        let minutes = state.settings.accounts.password_reset_ttl.as_secs() / 60;
        Ok(RequestPasswordResetPayload { accepted: true, valid_for_minutes: count(minutes.max(1)) })
    }

    /// Sets a new password with a mailed token; every session of the account ends. A used,
    /// expired or replaced token is refused (`TOKEN_INVALID`).
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> Result<ResetPasswordPayload> {
        let state = state(ctx)?;
        let reset =
            service::reset_password(state.ctx(), viewer(ctx), &input.token, &input.new_password).await.extend()?;
        Ok(ResetPasswordPayload { account: OwnAccount(reset.account), sessions_ended: count(reset.sessions_ended) })
    }

    /// Sets a new password, giving the current one (signed in). Other sessions end.
    async fn change_password(&self, ctx: &Context<'_>, input: ChangePasswordInput) -> Result<ChangePasswordPayload> {
        let state = state(ctx)?;
        let ended = service::change_password(state.ctx(), viewer(ctx), &input.current_password, &input.new_password)
            .await
            .extend()?;
        Ok(ChangePasswordPayload { sessions_ended: count(ended) })
    }

    /// Mails a token that verifies the signed-in person's address.
    async fn request_email_verification(&self, ctx: &Context<'_>) -> Result<RequestEmailVerificationPayload> {
        let state = state(ctx)?;
        let sent = service::request_email_verification(state.ctx(), viewer(ctx)).await.extend()?;
        Ok(RequestEmailVerificationPayload { sent })
    }

    /// Mails a token to a new address (signed in, with the password); the account's email
    /// changes when the token is used with `verifyEmail`, and the old address is told.
    async fn request_email_change(
        &self,
        ctx: &Context<'_>,
        input: RequestEmailChangeInput,
    ) -> Result<RequestEmailChangePayload> {
        let state = state(ctx)?;
        service::request_email_change(state.ctx(), viewer(ctx), &input.new_email, &input.password).await.extend()?;
        Ok(RequestEmailChangePayload { sent: true })
    }

    /// Uses a mailed verification or email change token (once; no sign-in needed).
    async fn verify_email(&self, ctx: &Context<'_>, input: VerifyEmailInput) -> Result<VerifyEmailPayload> {
        let state = state(ctx)?;
        let account = service::verify_email(state.ctx(), viewer(ctx), &input.token).await.extend()?;
        Ok(VerifyEmailPayload { account: OwnAccount(account) })
    }

    /// Deletes the signed-in person's account, giving the password (docs/identity.md says what
    /// is erased, anonymized and kept). The last owner of an organization hands it over first.
    async fn delete_account(&self, ctx: &Context<'_>, input: DeleteAccountInput) -> Result<DeleteAccountPayload> {
        let state = state(ctx)?;
        let d = service::delete_account(state.ctx(), viewer(ctx), &input.password).await.extend()?;
        Ok(DeleteAccountPayload {
            deleted: true,
            registrations_cancelled: count(d.registrations_cancelled),
            bookings_cancelled: count(d.bookings_cancelled),
            donations_kept: count(d.donations_kept),
        })
    }
}

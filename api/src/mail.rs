//! Email over SMTP (`INCUBASE_SMTP_URL`, the `lettre` crate): one transport per instance,
//! shared by the notifications' mailer (inbox entries people chose to get by email) and by the
//! account mails (password resets, address verification, notices of changes), which go whatever
//! a person chose: they are how a person keeps control of the account.
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The transport and the sender address; `None` where SMTP is not configured.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Pauses before the second and third attempts of an account mail (the person may ask again
/// after that: the mail carries nothing that is not issued anew).
const ACCOUNT_MAIL_RETRIES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

impl Mailer {
    /// The mailer of `smtp_url` sending as `from`; `None` (logged) when either is unusable.
    pub fn new(smtp_url: Option<&str>, from: &str) -> Option<Self> {
        let url = smtp_url?;
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
            Ok(builder) => builder.timeout(Some(Duration::from_secs(20))).build(),
            Err(e) => {
                tracing::error!(error = %e, "INCUBASE_SMTP_URL cannot be used: no emails are sent");
                return None;
            }
        };
        let Ok(from) = from.parse::<Mailbox>() else {
            tracing::error!(from = %from, "INCUBASE_SMTP_FROM is not an address: no emails are sent");
            return None;
        };
        Some(Self { transport, from })
    }

    /// Sends one plain-text message to `name <address>`.
    pub async fn send(&self, address: &str, name: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = format!("{} <{address}>", name.replace(['<', '>', '"', '\r', '\n'], ""))
            .parse()
            .or_else(|_| address.parse())
            .map_err(|e| format!("not an address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
    }

    /// Sends an account mail in the background, trying three times. It is not queued in the
    /// database: it may carry a token, and tokens are stored only as hashes.
    pub fn send_account_mail(&self, mail: AccountMail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let mut pauses = ACCOUNT_MAIL_RETRIES.iter();
            loop {
                match mailer.send(&mail.address, &mail.name, &mail.subject, &mail.body).await {
                    Ok(()) => return,
                    Err(e) => match pauses.next() {
                        Some(pause) => {
                            tracing::warn!(error = %e, kind = mail.kind, "an account mail was not sent; retrying");
                            tokio::time::sleep(*pause).await;
                        }
                        None => {
                            tracing::error!(error = %e, kind = mail.kind, "an account mail was not sent; giving up");
                            return;
                        }
                    },
                }
            }
        });
    }
}

/// One account mail, already written in the person's language.
#[derive(Clone, Debug)]
pub struct AccountMail {
    /// What it is, for the logs (never the token).
    pub kind: &'static str,
    pub address: String,
    pub name: String,
    pub subject: String,
    pub body: String,
}

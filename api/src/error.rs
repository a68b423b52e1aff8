//! One error type for the whole service layer. A request the service refuses is an
//! [`AppError`] whose variant is its stable `extensions.code` ([`Code`]); refusals the client can
//! act on carry a [`Rejection`]: a message, a stable `reason`, the input `field` at fault and
//! typed [`Details`] (a [`BookingConflict`], the skipped occurrences of a series). Failures of
//! the machinery (database, Redis, IO) are `ServiceUnavailable`, `Transient` or `Internal`: their
//! text is for the server's log, never for the client.
//!
//! Nothing here knows GraphQL or HTTP: `graphql::errors` maps an error to GraphQL extensions,
//! `http` to status codes and JSON bodies.
mod details;

use std::fmt;

use sea_orm::{DbErr, SqlErr};

pub use details::{BookingConflict, ConflictingBooking, Details, FreeSlot, SkippedOccurrence};

/// The stable `extensions.code` of a service error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    NotFound,
    BadUserInput,
    Unauthenticated,
    Forbidden,
    Conflict,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client is told about a refused request beyond its code: the message, a stable
/// machine-readable `reason` (`REGISTRATION_CLOSED`, `BOOKING_OVERLAP`), the input field at
/// fault, and typed details. Built from a message alone (`"taken".into()`) or with the
/// builders; the constructors on [`AppError`] cover the usual shapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejection {
    pub message: String,
    pub reason: Option<&'static str>,
    pub field: Option<String>,
    pub details: Option<Box<Details>>,
}

impl Rejection {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), ..Self::default() }
    }

    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn details(mut self, details: impl Into<Details>) -> Self {
        self.details = Some(Box::new(details.into()));
        self
    }
}

impl From<String> for Rejection {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Rejection {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every way a service call fails. Each client-visible code has one variant; `Display` is the
/// message the client sees (generic for the last three).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// What was not found (`"organization"`): the message is "organization not found".
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadUserInput(Rejection),
    #[error("authentication required")]
    Unauthenticated,
    /// Same answer for an unknown email and a wrong password.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(Rejection),
    #[error("{0}")]
    Conflict(Rejection),
    #[error("too many requests, retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// The database or another dependency cannot be reached; the text is for the log.
    #[error("service temporarily unavailable")]
    ServiceUnavailable(String),
    /// A serialization failure, deadlock or busy database: the same work may succeed if run
    /// again (see `service::retry_transient`). The text is for the log.
    #[error("the database is busy; retry")]
    Transient(String),
    /// A bug or a broken dependency; the text is for the log.
    #[error("internal error")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Bad input in `field` (`BAD_USER_INPUT`, no reason).
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput(Rejection::new(message).field(field))
    }

    /// A rule refused bad input (`BAD_USER_INPUT` with `extensions.reason`).
    pub fn refused(reason: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput(Rejection::new(message).reason(reason))
    }

    /// A rule refused a request that conflicts with the current state (`CONFLICT` with
    /// `extensions.reason`).
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict(Rejection::new(message).reason(reason))
    }

    /// For a write that may take a unique key: the database's CONFLICT answers `rejection`
    /// instead (the caller knows what was taken); other failures convert as usual.
    pub fn on_unique(rejection: impl Into<Rejection>) -> impl FnOnce(DbErr) -> Self {
        move |e| match Self::from(e) {
            Self::Conflict(_) => Self::Conflict(rejection.into()),
            other => other,
        }
    }

    /// A rule broken by the value of `field` (`BAD_USER_INPUT` with `reason` and `field`).
    pub fn rule(field: &str, reason: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput(Rejection::new(message).reason(reason).field(field))
    }

    /// Not allowed for a stated reason (`FORBIDDEN` with `extensions.reason`).
    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden(Rejection::new(message).reason(reason))
    }

    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::BadUserInput(_) => Code::BadUserInput,
            Self::Unauthenticated | Self::InvalidCredentials => Code::Unauthenticated,
            Self::Forbidden(_) => Code::Forbidden,
            Self::Conflict(_) => Code::Conflict,
            Self::RateLimited { .. } => Code::RateLimited,
            Self::ServiceUnavailable(_) | Self::Transient(_) => Code::ServiceUnavailable,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The refusal's reason, field and details, for the codes that carry them.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Self::BadUserInput(r) | Self::Forbidden(r) | Self::Conflict(r) => Some(r),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&'static str> {
        self.rejection().and_then(|r| r.reason)
    }

    pub fn field(&self) -> Option<&str> {
        self.rejection().and_then(|r| r.field.as_deref())
    }

    pub fn details(&self) -> Option<&Details> {
        self.rejection().and_then(|r| r.details.as_deref())
    }

    /// What only the server's log may see: the text behind a generic client message.
    pub fn internal_detail(&self) -> Option<&str> {
        match self {
            Self::ServiceUnavailable(detail) | Self::Transient(detail) | Self::Internal(detail) => Some(detail),
            _ => None,
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            return Self::Conflict(format!("already exists: {}", unique_subject(&detail)).into());
        }
        if let Some(code) = driver_code(&err)
            && matches!(code.as_str(), "40001" | "40P01" | "5" | "6" | "261" | "517")
        {
            // PostgreSQL serialization failure / deadlock; SQLite BUSY / LOCKED.
            return Self::Transient(err.to_string());
        }
        match &err {
            _ if connection_lost(&err) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::ServiceUnavailable(err.to_string())
            }
            // Logged once, where it leaves for a client (`graphql::errors::log_internal`) or
            // by the background task that met it.
            _ => Self::Internal(err.to_string()),
        }
    }
}

/// The database could not be reached, is shutting down, or dropped the connection: the request
/// can be tried again later. A transaction whose connection died is rolled back by the server;
/// only a COMMIT lost in flight has an unknown outcome, which the mutations' `clientKey`
/// idempotency makes safe to retry.
fn connection_lost(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            Sqlx::Io(_)
                | Sqlx::Tls(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed
                | Sqlx::Protocol(_)
        ),
        _ => driver_code(err).is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
    }
}

/// The database's own error code (SQLSTATE on PostgreSQL, the result code on SQLite).
pub fn driver_code(err: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// Names the column of a unique violation without echoing the driver's whole message.
fn unique_subject(detail: &str) -> &'static str {
    if detail.contains("slug") {
        "an organization with this slug"
    } else if detail.contains("credit_code") {
        "an organization with this unified social credit code"
    } else {
        "a record with these values"
    }
}

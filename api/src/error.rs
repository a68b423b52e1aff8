//! One error type for the whole service layer. Every variant maps to a stable
//! `extensions.code`; internal errors are logged in full and returned without detail.
use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    BadUserInput { message: String, field: Option<String> },
    #[error("authentication required")]
    Unauthenticated,
    /// Same answer for an unknown email and a wrong password.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A domain rule refused the request: `code` is BAD_USER_INPUT or CONFLICT, `reason` a
    /// stable machine-readable name such as `REGISTRATION_CLOSED`.
    #[error("{message}")]
    Refused { code: &'static str, reason: &'static str, message: String },
    #[error("too many requests, retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("service temporarily unavailable")]
    ServiceUnavailable(String),
    /// A serialization failure, deadlock or busy database: the same work may succeed if run
    /// again (see `service::retry_transient`).
    #[error("the database is busy; retry")]
    Transient(String),
    #[error("internal error")]
    Internal(String),
    /// A broken domain rule: `BAD_USER_INPUT` with a machine-readable `reason`.
    #[error("{message}")]
    RuleBroken { message: String, field: Option<String>, reason: &'static str },
    /// A `CONFLICT` with a `reason` and more extensions for the client (a JSON object whose
    /// keys are merged into `extensions`).
    #[error("{message}")]
    ConflictDetailed { message: String, reason: &'static str, details: serde_json::Value },
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: Some(field.to_owned()) }
    }

    /// A rule refused bad input (`BAD_USER_INPUT` with `extensions.reason`).
    pub fn refused(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Refused { code: "BAD_USER_INPUT", reason, message: message.into() }
    }

    /// A rule refused a request that conflicts with the current state (`CONFLICT` with
    /// `extensions.reason`).
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Refused { code: "CONFLICT", reason, message: message.into() }
    }

    pub fn rule(field: &str, reason: &'static str, message: impl Into<String>) -> Self {
        Self::RuleBroken { message: message.into(), field: Some(field.to_owned()), reason }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { code, .. } => code,
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Unauthenticated | Self::InvalidCredentials => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::ServiceUnavailable(_) | Self::Transient(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
            Self::RuleBroken { .. } => "BAD_USER_INPUT",
            Self::ConflictDetailed { .. } => "CONFLICT",
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            return Self::Conflict(format!("already exists: {}", unique_subject(&detail)));
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
            _ => {
                tracing::error!(error = %err, "database error");
                Self::Internal(err.to_string())
            }
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

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            match self {
                Self::BadUserInput { field: Some(field), .. } => e.set("field", field.as_str()),
                Self::RateLimited { retry_after_secs } => e.set("retryAfter", *retry_after_secs),
                Self::Refused { reason, .. } => e.set("reason", *reason),
                Self::RuleBroken { field, reason, .. } => {
                    e.set("reason", *reason);
                    if let Some(field) = field {
                        e.set("field", field.as_str());
                    }
                }
                Self::ConflictDetailed { reason, details, .. } => {
                    e.set("reason", *reason);
                    if let Some(map) = details.as_object() {
                        for (key, value) in map {
                            if let Ok(value) = async_graphql::Value::from_json(value.clone()) {
                                e.set(key.as_str(), value);
                            }
                        }
                    }
                }
                _ => {}
            }
        })
    }
}

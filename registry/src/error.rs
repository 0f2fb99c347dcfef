//! The registry's one error type, and the one place it becomes a `tonic::Status`.
//!
//! Refusals by a rule carry the rule ID (DOMAIN.md) both in the message and as
//! a `PreconditionFailure` violation whose type is the ID, so a client can act
//! on it without parsing text.

use kyso_server::status;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Everything the registry can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; every problem is listed.
    #[error("{}", kyso_server::config::describe(.0))]
    Config(Vec<String>),
    /// A request field is malformed (empty, not DER, impossible dates, ...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The proto field path.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A request names something the registry does not hold.
    #[error("{what} {id:?} not found ({field})")]
    NotFound {
        /// The kind of thing (`organisation`, `certificate`, ...).
        what: &'static str,
        /// The request field that named it.
        field: &'static str,
        /// The identifier given.
        id: String,
    },
    /// The change would create a second copy of something unique.
    #[error("{what} {value:?} already exists ({field})")]
    AlreadyExists {
        /// The kind of thing.
        what: &'static str,
        /// The request field.
        field: &'static str,
        /// The duplicate value.
        value: String,
    },
    /// A domain rule refuses the change; `rule` is its DOMAIN.md ID.
    #[error("refused by {rule}: {reason} ({field})")]
    Rule {
        /// DOMAIN.md rule ID (`I3`, `A2`, ...).
        rule: &'static str,
        /// The request field the refusal is about.
        field: &'static str,
        /// Why, for a person to read.
        reason: String,
        /// InvalidArgument when the request itself is wrong whatever the
        /// state (a delegation to oneself); FailedPrecondition when the
        /// state refuses it (a renewal too late).
        invalid_argument: bool,
    },
    /// The caller has no role that allows the call (access/): names the caller, the call
    /// and the missing right.
    /// The request contradicts what is recorded (an audit anchor that does not move the
    /// log's head forward): FAILED_PRECONDITION, nothing changed.
    #[error("refused: {reason} ({field})")]
    Conflict { field: &'static str, reason: String },
    #[error("permission denied: {caller} may not call {call}: it lacks {missing}")]
    PermissionDenied {
        /// The caller: its certificate's subject and fingerprint.
        caller: String,
        /// The RPC, or the change (event kind and entity) refused inside its transaction.
        call: String,
        /// The right or role missing.
        missing: String,
    },
    /// The caller did not authenticate (no client certificate).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// This replica has not caught up with the database within its staleness bound, so it
    /// does not answer decisions (the signer fails closed).
    #[error(
        "this registry replica has not caught up with its database for {behind_ms} ms (bound \
         {bound_ms} ms): not answering from stale state"
    )]
    Stale {
        /// How long since it last caught up.
        behind_ms: u64,
        /// The configured bound.
        bound_ms: u64,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The service host failed (set-up, TLS, serving).
    #[error(transparent)]
    Server(#[from] kyso_server::Error),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The benchmark's synthetic province could not be made (book/seed.rs).
    #[error("synthetic province: {0}")]
    Synthetic(String),
}

impl Error {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(
        what: &'static str,
        field: &'static str,
        id: impl Into<String>,
    ) -> Self {
        Self::NotFound {
            what,
            field,
            id: id.into(),
        }
    }

    /// A refusal by the state of the registry (FailedPrecondition).
    pub(crate) fn rule(rule: &'static str, field: &'static str, reason: impl Into<String>) -> Self {
        Self::Rule {
            rule,
            field,
            reason: reason.into(),
            invalid_argument: false,
        }
    }

    /// A refusal of the request itself (InvalidArgument).
    pub(crate) fn rule_invalid(
        rule: &'static str,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Rule {
            rule,
            field,
            reason: reason.into(),
            invalid_argument: true,
        }
    }

    /// The short outcome label used in metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } => "invalid_argument",
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::Rule { .. } | Self::Conflict { .. } => "refused",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Stale { .. } => "unavailable",
            Self::Database(e) if is_unavailable(e) => "unavailable",
            _ => "internal",
        }
    }
}

/// Pool exhaustion and lost connections are worth a retry; the rest is a bug or corruption.
fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    )
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidField { field, reason } => {
                status::bad_field(Code::InvalidArgument, message, field, reason)
            }
            Error::NotFound { what, id, .. } => {
                let details = ErrorDetails::with_resource_info(what, id, "", message.clone());
                Status::with_error_details(Code::NotFound, message, details)
            }
            Error::AlreadyExists { what, value, .. } => {
                let details = ErrorDetails::with_resource_info(what, value, "", message.clone());
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::Rule {
                rule,
                field,
                reason,
                invalid_argument,
            } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(rule, field, reason.clone());
                details.add_bad_request_violation(field, format!("{rule}: {reason}"));
                let code = if invalid_argument {
                    Code::InvalidArgument
                } else {
                    Code::FailedPrecondition
                };
                Status::with_error_details(code, message, details)
            }
            Error::Conflict { field, reason } => {
                status::bad_field(Code::FailedPrecondition, message, field, reason)
            }
            Error::PermissionDenied { .. } => {
                tracing::warn!(refusal = %message, "permission denied");
                Status::permission_denied(message)
            }
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::Stale { .. } => {
                tracing::warn!(error = %message, "stale replica");
                Status::unavailable(message)
            }
            Error::Database(ref d) if is_unavailable(d) => {
                tracing::warn!(error = %e, "database unavailable");
                Status::unavailable("the registry database is unavailable; retry with backoff")
            }
            // Internal details stay in the log, not in the answer.
            other => status::internal("registry", &other),
        }
    }
}

/// Result alias of the registry.
pub type Result<T, E = Error> = std::result::Result<T, E>;

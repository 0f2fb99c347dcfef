//! The signer's one error type, and the one place it becomes a gRPC status.

use kyso_server::status;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::hsm::HsmError;

/// Result with the signer's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the signer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; every problem is listed.
    #[error("{}", kyso_server::config::describe(.0))]
    Config(Vec<String>),
    /// A request field is malformed.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The proto field path.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The request names a key this signer does not hold.
    #[error("unknown key {key:?}")]
    UnknownKey {
        /// As given.
        key: String,
    },
    /// A rule refuses the signature: the registry's (A1-A7, V1, ...) or the
    /// signer's own (A7 classification, W2 issue date, caller policy).
    #[error("refused: {}", .0.iter().map(|r| format!("{} {}", r.rule, r.reason)).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Refusal>),
    /// The signer's own certificate is not usable at signing time (N1).
    #[error("N1: the certificate of key {key:?} cannot sign now: {reason}")]
    OwnCertificate {
        /// The key.
        key: String,
        /// What the check found.
        reason: String,
    },
    /// The signature level asked for cannot be reached by this signer (N1): refused before
    /// anything is signed.
    #[error("N1: level {level} cannot be reached: {reason}")]
    LevelUnavailable {
        /// The level (`B_T`, ...).
        level: &'static str,
        /// Why.
        reason: String,
    },
    /// The registry did not answer: the signer fails closed.
    #[error("the registry cannot answer ({reason}); no signature without an authority decision")]
    RegistryUnavailable {
        /// Transport or status detail.
        reason: String,
    },
    /// The HSM refused or is unreachable.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The audit log cannot take the record: the signature is withheld.
    #[error("the audit log cannot record this signature ({0}); no signature returned")]
    Audit(String),
    /// The audit log does not hold its last anchor in the registry, or the anchor cannot be
    /// read: the signer refuses to start (`anchor`).
    #[error("audit log: {0}")]
    AuditStart(String),
    /// The store of signed originals cannot keep or give back a file (D7): the flow stops
    /// before the register is written.
    #[error("the document store failed: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// The idempotency key cannot be used for this request: it was used for a different
    /// request, or the state a crash left cannot be resumed without a person's look.
    #[error("{0}")]
    Idempotency(String),
    /// A request with the same idempotency key is running now.
    #[error("{0}")]
    InFlight(String),
    /// An edXML message could not be written or signed (N6).
    #[error("edXML: {0}")]
    Edxml(#[from] kyso_edxml::EdxmlError),
    /// Building the CMS failed.
    #[error("building the CMS: {0}")]
    Cms(#[from] kyso_pki::cms_build::BuildError),
    /// The PKI core refused an input.
    #[error("pki: {0}")]
    Pki(#[from] kyso_pki::Error),
    /// The revocation fetcher could not be set up.
    #[error("revocation: {0}")]
    Revocation(#[from] kyso_revocation::Error),
    /// A server could not start.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The service host failed (set-up, TLS, serving).
    #[error(transparent)]
    Server(#[from] kyso_server::Error),
    /// A bounded table is full (live activation tokens): try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// One failed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// DOMAIN.md rule ID (`A5`, `A7`, ...), or `CALLER` for the signer's caller policy.
    pub rule: String,
    /// For a person to read.
    pub reason: String,
}

impl Error {
    /// The rule IDs of a refusal (for metrics and the audit log).
    pub fn rule_ids(&self) -> Vec<String> {
        match self {
            Self::Refused(r) => r.iter().map(|r| r.rule.clone()).collect(),
            Self::OwnCertificate { .. } => vec!["N1".into()],
            _ => Vec::new(),
        }
    }

    /// A short label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } | Self::UnknownKey { .. } => "invalid",
            Self::Refused(_) => "refused",
            Self::OwnCertificate { .. } => "own_certificate",
            Self::RegistryUnavailable { .. } => "registry_unavailable",
            Self::Hsm(HsmError::Unavailable { .. }) => "hsm_unavailable",
            Self::Hsm(_) => "hsm_error",
            Self::Audit(_) => "audit_error",
            Self::Storage { .. } => "storage_error",
            Self::Idempotency(_) | Self::InFlight(_) => "idempotency",
            _ => "error",
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidField { field, reason } => {
                status::bad_field(Code::InvalidArgument, message, field, reason)
            }
            Error::UnknownKey { key } => status::bad_field(
                Code::InvalidArgument,
                message,
                "key",
                format!("{key:?} is not a key of this signer"),
            ),
            Error::Refused(refusals) => {
                // Each failed rule is a precondition violation typed by its
                // rule ID, so callers can act on the ID without parsing text.
                let mut details = ErrorDetails::new();
                for r in &refusals {
                    details.add_precondition_failure_violation(
                        r.rule.clone(),
                        "signature",
                        r.reason.clone(),
                    );
                }
                let rules: Vec<&str> = refusals.iter().map(|r| r.rule.as_str()).collect();
                details.set_error_info(
                    "AUTHORITY_REFUSED",
                    "kyso.signer",
                    [("rules".to_string(), rules.join(","))],
                );
                Status::with_error_details(Code::PermissionDenied, message, details)
            }
            Error::OwnCertificate { key, reason } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("N1", key, reason);
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::LevelUnavailable { level, reason } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("N1", level, reason);
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::RegistryUnavailable { .. } => Status::unavailable(message),
            Error::Hsm(h) => hsm_status(h, message),
            Error::Audit(_) => Status::unavailable(message),
            Error::Storage { .. } => Status::unavailable(message),
            Error::Idempotency(_) => status::bad_field(
                Code::FailedPrecondition,
                message.clone(),
                "idempotency_key",
                message,
            ),
            Error::InFlight(_) => Status::aborted(message),
            Error::Busy(_) => Status::resource_exhausted(message),
            // Internal details stay in the log, not in the answer.
            other => status::internal("signer", &other),
        }
    }
}

fn hsm_status(h: HsmError, message: String) -> Status {
    match h {
        HsmError::UnknownKey { .. } => Status::invalid_argument(message),
        HsmError::BadDigest { .. } => {
            status::bad_field(Code::InvalidArgument, message.clone(), "digest", message)
        }
        HsmError::Unavailable { .. } => Status::unavailable(message),
        HsmError::Pin { .. } => Status::failed_precondition(message),
        other => {
            tracing::error!(error = %other, "HSM error");
            Status::unavailable(format!("HSM error: {other}"))
        }
    }
}

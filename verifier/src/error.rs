//! The verifier's one error type, and the one place it becomes a `tonic::Status`.

use kyso_server::status;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Everything the verifier service can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; every problem is listed.
    #[error("{}", kyso_server::config::describe(.0))]
    Config(Vec<String>),
    /// A request field is wrong.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The proto field path (`signature`, `content_digest.value`, ...).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The signature or certificate input cannot be judged (not a CMS, ...).
    #[error(transparent)]
    Pki(#[from] kyso_pki::Error),
    /// The PDF cannot be read (not a PDF, encrypted, broken, over a limit).
    #[error(transparent)]
    Pdf(#[from] kyso_pdf::PdfError),
    /// The edXML document cannot be read (not well-formed, ambiguous, unsafe, over a limit).
    #[error(transparent)]
    Edxml(#[from] kyso_edxml::EdxmlError),
    /// The service host failed (set-up, TLS, serving).
    #[error(transparent)]
    Server(#[from] kyso_server::Error),
    /// The HTTP client of revocation checking could not be set up.
    #[error(transparent)]
    Revocation(#[from] kyso_revocation::Error),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The work pool could not be started or lost a task.
    #[error(transparent)]
    Pool(#[from] kyso_server::PoolError),
    /// The work pool's threads could not be started.
    #[error("work pool: {0}")]
    PoolStart(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    /// The short outcome label used in metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } | Self::Pki(_) => "invalid_argument",
            Self::Pdf(kyso_pdf::PdfError::TooLarge { .. }) => "resource_exhausted",
            Self::Pdf(_) => "invalid_argument",
            Self::Edxml(kyso_edxml::EdxmlError::Limit { .. }) => "resource_exhausted",
            Self::Edxml(_) => "invalid_argument",
            _ => "internal",
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidField { field, reason } => status::bad_field(
                Code::InvalidArgument,
                format!("invalid {field}: {reason}"),
                field,
                reason,
            ),
            Error::Pki(p) => {
                let field = match &p {
                    kyso_pki::Error::InvalidRequest(_) => "request",
                    _ => "signature",
                };
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, p.to_string());
                Status::with_error_details(Code::InvalidArgument, p.to_string(), details)
            }
            Error::Pdf(p) => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation("pdf", p.to_string());
                // A limit is a resource the request would exhaust; anything
                // else is a file that cannot be verified as sent (V5: the
                // sender is told why).
                let code = match p {
                    kyso_pdf::PdfError::TooLarge { .. } => Code::ResourceExhausted,
                    _ => Code::InvalidArgument,
                };
                Status::with_error_details(code, p.to_string(), details)
            }
            Error::Edxml(e) => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation("edxml", e.to_string());
                let code = match e {
                    kyso_edxml::EdxmlError::Limit { .. } => Code::ResourceExhausted,
                    _ => Code::InvalidArgument,
                };
                Status::with_error_details(code, e.to_string(), details)
            }
            // Internal details stay in the log, not in the answer.
            other => status::internal("verifier", &other),
        }
    }
}

/// Result alias of the verifier.
pub type Result<T, E = Error> = std::result::Result<T, E>;

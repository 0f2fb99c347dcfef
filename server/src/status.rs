//! The shapes of `tonic::Status` the services answer with, built one way: a rejected field
//! as a `BadRequest` violation, and internal failures kept in the log, out of the answer.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `code` with `message`, and `field` named with `reason` as a `BadRequest` field
/// violation, so a client can point at the field without parsing the message.
pub fn bad_field(
    code: Code,
    message: impl Into<String>,
    field: impl Into<String>,
    reason: impl Into<String>,
) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, reason);
    Status::with_error_details(code, message, details)
}

/// INTERNAL for `service` (`verifier`, ...): the error is logged, the answer says only
/// where to look.
pub fn internal(service: &str, error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "internal error");
    Status::internal(format!("internal error in the {service}; see its log"))
}

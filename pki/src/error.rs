//! The one error type of `kyso-pki`.
//!
//! Errors are for input that cannot be judged at all (not a CMS, an algorithm
//! we do not know). A signature that can be judged and fails is not an error:
//! it is a report with an indication. Fetch and configuration failures belong
//! to the crates that fetch and configure.

use const_oid::ObjectIdentifier;

/// Everything that can go wrong in `kyso-pki` before a verdict can be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed DER/BER, or not the structure expected.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded ("CMS ContentInfo", "certificate", ...).
        what: &'static str,
        /// Why it failed, precise enough for the sender to fix it.
        reason: String,
    },
    /// The input is larger or deeper than the configured bounds allow.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An algorithm identifier that kyso does not implement.
    #[error("unsupported {what} algorithm {oid}")]
    UnsupportedAlgorithm {
        /// "digest", "signature", ...
        what: &'static str,
        /// The identifier found.
        oid: ObjectIdentifier,
    },
    /// The caller asked for something inconsistent (wrong digest length, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// A [`Error::Malformed`] for `what`, with the decoder's complaint.
    pub fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Result alias of `kyso-pki`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The one error type of `kyso-revocation`.
//!
//! A source that fails is not an error of the checker: it becomes evidence
//! with a detail, and the policy decides. Errors here are set-up failures and
//! fetches a caller asked for directly.

/// What can go wrong outside the evidence a check reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used (the HTTP client cannot be built, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// Fetching revocation data or an intermediate failed.
    #[error("fetch {url}: {reason}")]
    Fetch {
        /// The URL after rewriting.
        url: String,
        /// Why the fetch failed.
        reason: String,
    },
}

/// Result alias of `kyso-revocation`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The one error type of `kyso-edxml`.
//!
//! An error means the input cannot be judged at all (not well-formed, over a limit, an
//! ambiguous header). A signature that can be judged and fails is not an error: it is a
//! [`kyso_pki::cms::SignerCheck`] with a failure.

/// Everything that stops an edXML document from being read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdxmlError {
    /// Not well-formed XML, or not the structure expected (N6).
    #[error("edXML format: {0}")]
    Format(String),
    /// Larger, deeper or wider than [`crate::EdxmlLimits`] allows.
    #[error("edXML limit: {what} exceeds {limit}")]
    Limit {
        /// What was too large ("depth", "attachments", ...).
        what: &'static str,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An algorithm, transform or construct kyso refuses to process.
    #[error("edXML unsupported: {0}")]
    Unsupported(String),
    /// Two readings are possible (a repeated singleton, two signatures, a comment
    /// splitting a signed value): refused rather than guessed.
    #[error("edXML ambiguous: {0}")]
    Ambiguous(String),
}

/// The result type of `kyso-edxml`.
pub type Result<T, E = EdxmlError> = std::result::Result<T, E>;

//! Why a timestamp response or token is refused, with the RFC text that says so.

/// A timestamp response or token that kyso refuses. Each variant names the
/// RFC 3161 (or RFC 5816) requirement it fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TspError {
    /// Not a well-formed `TimeStampResp`/`TSTInfo` (RFC 3161 §2.4.2).
    #[error("malformed timestamp {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// Larger than [`super::MAX_RESPONSE_LEN`].
    #[error("the timestamp response exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The TSA refused the request (RFC 3161 §2.4.2 PKIStatus rejection/waiting/revocation).
    #[error("the TSA refused the request: status {status}, failInfo [{fail_info}], text {text:?}")]
    Rejected {
        /// The PKIStatus value.
        status: u8,
        /// The failInfo bits, by their RFC 3161 names.
        fail_info: String,
        /// The statusString, joined.
        text: String,
    },
    /// Status granted but no token (RFC 3161 §2.4.2: "the timeStampToken MUST be present").
    #[error("the TSA granted the request but returned no timeStampToken (RFC 3161 §2.4.2)")]
    NoToken,
    /// The token is not a SignedData of id-ct-TSTInfo with one signer (RFC 3161 §2.4.2).
    #[error("not a timestamp token: {0}")]
    NotAToken(String),
    /// The CMS signature over TSTInfo does not verify.
    #[error("the timestamp token's signature does not verify: {0}")]
    Signature(String),
    /// ESS signing-certificate(-v2) missing or not the signer's (RFC 3161 §2.4.1, RFC 5816).
    #[error("the token does not identify its TSA certificate: {0} (RFC 3161 §2.4.1, RFC 5816)")]
    SigningCertificate(String),
    /// The TSA certificate is not for timestamping (RFC 3161 §2.3).
    #[error(
        "the TSA certificate {0}: it must have one critical extendedKeyUsage of only id-kp-timeStamping (RFC 3161 §2.3)"
    )]
    NotTimestampingCert(String),
    /// The messageImprint is not the digest asked for (RFC 3161 §2.4.2).
    #[error("the token's messageImprint differs from the request's: {0} (RFC 3161 §2.4.2)")]
    ImprintMismatch(String),
    /// The nonce is missing or not the request's (RFC 3161 §2.4.2).
    #[error("the token's nonce differs from the request's (RFC 3161 §2.4.2)")]
    NonceMismatch,
    /// The policy is not the one requested (RFC 3161 §2.4.2).
    #[error("the token's policy {got} is not the requested {wanted} (RFC 3161 §2.4.2)")]
    PolicyMismatch {
        /// The requested policy.
        wanted: String,
        /// The token's policy.
        got: String,
    },
    /// The genTime is outside the TSA certificate's validity, or the tsa name is not its subject.
    #[error("the token is inconsistent with its TSA certificate: {0}")]
    TsaMismatch(String),
}

impl TspError {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

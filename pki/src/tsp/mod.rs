//! RFC 3161 timestamps (with the RFC 5816 ESS update): the request kyso sends to
//! a timestamp authority, the response it parses and the token it verifies.
//!
//! Pure, like the rest of the crate: the HTTP exchange is `kyso-revocation`'s
//! TSA client, the TSA certificate's path and revocation are judged by the
//! caller (`kyso-validation`), as for CMS signers.
//!
//! - [`req`]: `TimeStampReq` building.
//! - [`resp`]: `TimeStampResp`, `PKIStatusInfo` and `TSTInfo` parsing.
//! - [`verify`]: the token's checks (signature, ESS, EKU, imprint, nonce, policy).

pub mod error;
pub mod req;
pub mod resp;
pub mod verify;

pub use error::TspError;
pub use req::{MessageImprint, TimeStampReq};
pub use resp::{Accuracy, PkiStatus, TimeStampResp, TstInfo};
pub use verify::{Expected, VerifiedTimestamp, verify_response, verify_token};

/// Largest `TimeStampResp` accepted: a token is a few kilobytes with its chain.
pub const MAX_RESPONSE_LEN: usize = 256 * 1024;

/// Object identifiers of RFC 3161.
pub mod oid {
    use const_oid::ObjectIdentifier as Oid;

    /// id-ct-TSTInfo (RFC 3161 §2.4.2): the eContentType of a token.
    pub const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
    /// id-kp-timeStamping (RFC 3161 §2.3).
    pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// id-ce-extKeyUsage.
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
}

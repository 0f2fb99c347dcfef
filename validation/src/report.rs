//! The verification report: one [`SignatureReport`] per signature, with an
//! ETSI EN 319 102-1 style indication and sub-indication.

use kyso_pki::time::OffsetDateTime;
use serde::Serialize;

pub use crate::certsource::CertificateOrigin;
pub use crate::timestamps::{SignatureLevel, TimestampKind, TimestampReport};

pub use kyso_pki::cert::{CertKind, SignerIdentity};
pub use kyso_pki::path::{CertSource, PathEntry};
pub use kyso_revocation::{
    CertStatus, EvidenceOrigin, RevocationEvidence, RevocationPolicy, RevocationSource,
};

/// The main verdict (ETSI EN 319 102-1, 5.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed.
    TotalPassed,
    /// Evidence that more information cannot change: the signature is invalid.
    TotalFailed,
    /// The checks could not conclude (missing chain, revocation data, ...).
    Indeterminate,
}

impl Indication {
    /// How bad it is, for "the worst indication of a document".
    pub fn severity(self) -> u8 {
        match self {
            Self::TotalPassed => 0,
            Self::Indeterminate => 1,
            Self::TotalFailed => 2,
        }
    }
}

/// Why the verdict is not `TOTAL_PASSED` (ETSI EN 319 102-1, table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum SubIndication {
    /// The structure cannot be processed.
    FormatFailure,
    /// The message digest does not match the content.
    HashFailure,
    /// The signature value does not verify with the signer's key.
    SigCryptoFailure,
    /// The certificate was revoked (or on hold, N7) at the reference time.
    Revoked,
    /// The reference time is after the certificate's notAfter.
    Expired,
    /// The reference time is before the certificate's notBefore.
    NotYetValid,
    /// Revoked after the claimed signing time, which nothing proves.
    RevokedNoPoe,
    /// A CA of the path was revoked after the claimed signing time.
    RevokedCaNoPoe,
    /// Outside validity at validation time, with no proof of an earlier signature.
    OutOfBoundsNoPoe,
    /// No path to a trust anchor.
    NoCertificateChainFound,
    /// The signer's certificate is not in the CMS nor given.
    NoSigningCertificateFound,
    /// The path violates a constraint (basic constraints, key usage, ...).
    ChainConstraintsFailure,
    /// The path is broken in another way (critical extension, bad CA signature, ...).
    CertificateChainGeneralFailure,
    /// An algorithm or key size below what the policy accepts.
    CryptoConstraintsFailure,
    /// The signed attributes break a constraint (ESS signing certificate mismatch, ...).
    SigConstraintsFailure,
    /// Revocation data could not be had now; asking again later may help.
    TryLater,
    /// Detached signature without the content or its digest.
    SignedDataNotFound,
}

/// Where the reference time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeSource {
    /// Given by the caller (a trusted time, e.g. the exchange receipt, W5).
    Caller,
    /// The signed signing-time attribute: claimed by the signer, not proven. Never a
    /// reference time since issue 16 (a claim is no proof); kept in the wire enum.
    SigningTimeAttribute,
    /// A PDF signature dictionary's `/M` (PAdES signs no signing-time attribute): claimed
    /// by the signer and not even covered by the signature value, so never proof.
    PdfSignatureDictionary,
    /// The genTime of a verified signature timestamp over the signature value (B-T):
    /// the signature existed then.
    SignatureTimestamp,
    /// The genTime of a verified document timestamp covering the signature's revision
    /// (PAdES B-LTA): the signature existed then.
    DocumentTimestamp,
    /// Nothing else: the moment of validation.
    ValidationTime,
}

/// The time at which certificates are judged (N2: status at signing time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReferenceTime {
    /// The time.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Its source.
    pub source: TimeSource,
}

/// The report for one signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    /// Position of the SignerInfo in the SignedData (0-based).
    pub index: u32,
    /// The verdict.
    pub indication: Indication,
    /// Why, when not passed.
    pub sub_indication: Option<SubIndication>,
    /// A sentence a clerk can read.
    pub message: String,
    /// The signer, when its certificate was found.
    pub signer: Option<SignerIdentity>,
    /// The time certificates were judged at.
    pub reference_time: ReferenceTime,
    /// The signing-time attribute, when present.
    #[serde(with = "time::serde::rfc3339::option")]
    pub claimed_signing_time: Option<OffsetDateTime>,
    /// The path from the signer's certificate to the anchor.
    pub path: Vec<PathEntry>,
    /// The revocation evidence used.
    pub revocation: Vec<RevocationEvidence>,
    /// Things a clerk should know that do not change the verdict.
    pub warnings: Vec<String>,
    /// Digest algorithm name.
    pub digest_algorithm: Option<String>,
    /// Signature algorithm name.
    pub signature_algorithm: Option<String>,
    /// The revocation policy applied.
    pub revocation_policy: RevocationPolicy,
    /// Whether the signer used signed attributes.
    pub signed_attributes: bool,
    /// Whether an ESS signing-certificate-v2 attribute was present and matched.
    pub ess_signing_certificate_v2: bool,
    /// Whether the content was outside the CMS.
    pub detached: bool,
    /// The signed commitment-type indication: what the signer committed to (for kyso's
    /// signatures, the legal form: `proof-of-approval`, `proof-of-origin`, …).
    pub commitment_type: Option<String>,
    /// Where the signer's certificate was found: in the signature, or among the
    /// certificates supplied with the request (issue 15 item 8).
    pub signer_certificate_origin: Option<CertificateOrigin>,
    /// The timestamps that may prove when the signature existed (its own signature
    /// timestamps, then PDF document timestamps covering it), each with its verdict.
    pub timestamps: Vec<TimestampReport>,
    /// The earliest time a verified timestamp proves the signature existed at (whether
    /// or not a caller's time took precedence as the reference time).
    pub poe: Option<ReferenceTime>,
    /// The level the signature carries and verifies (B-B, B-T, B-LT, B-LTA).
    pub level: SignatureLevel,
}

/// The report for one document (all its signatures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentReport {
    /// The worst indication of all signatures.
    pub indication: Indication,
    /// Per signature.
    pub signatures: Vec<SignatureReport>,
}

impl DocumentReport {
    /// Builds the document verdict from its signatures (no signature = failed).
    pub fn new(signatures: Vec<SignatureReport>) -> Self {
        let indication = signatures
            .iter()
            .map(|s| s.indication)
            .max_by_key(|i| i.severity())
            .unwrap_or(Indication::TotalFailed);
        Self {
            indication,
            signatures,
        }
    }
}

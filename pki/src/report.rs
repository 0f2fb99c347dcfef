//! The verification report: one [`SignatureReport`] per signature, with an
//! ETSI EN 319 102-1 style indication and sub-indication.

use serde::Serialize;

use crate::cert::{Cert, CertKind, name_to_string};
use crate::time::OffsetDateTime;

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
    /// The signed signing-time attribute: claimed by the signer, not proven.
    SigningTimeAttribute,
    /// A PDF signature dictionary's `/M` (PAdES signs no signing-time attribute): claimed
    /// by the signer and not even covered by the signature value, so never proof.
    PdfSignatureDictionary,
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

/// What to do when revocation status cannot be obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationPolicy {
    /// Fail closed: no evidence gives `INDETERMINATE/TRY_LATER`.
    #[default]
    Require,
    /// No evidence passes, with a warning in the report.
    SoftFail,
    /// Revocation is not checked; the report says so.
    Off,
}

impl RevocationPolicy {
    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Require => "require",
            Self::SoftFail => "soft-fail",
            Self::Off => "off",
        }
    }
}

impl std::str::FromStr for RevocationPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "require" => Ok(Self::Require),
            "soft-fail" | "soft_fail" => Ok(Self::SoftFail),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown revocation policy {other:?} (require, soft-fail, off)"
            )),
        }
    }
}

/// Who signed, as the certificate says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SignerIdentity {
    /// RFC 4514 subject.
    pub subject: String,
    /// CN.
    pub common_name: Option<String>,
    /// Title (2.5.4.12), e.g. "Chủ tịch".
    pub title: Option<String>,
    /// O.
    pub organisation: Option<String>,
    /// OU.
    pub organisational_unit: Option<String>,
    /// emailAddress in the subject, or the first rfc822Name of subjectAltName.
    pub email: Option<String>,
    /// L.
    pub locality: Option<String>,
    /// ST.
    pub province: Option<String>,
    /// C.
    pub country: Option<String>,
    /// UID (personal identification numbers are carried here).
    pub uid: Option<String>,
    /// Certificate serial number, hex.
    pub serial_number: String,
    /// RFC 4514 issuer.
    pub issuer: String,
    /// Personal, organisation or CA.
    pub kind: Option<CertKind>,
    /// SHA-256 of the certificate, hex.
    pub fingerprint_sha256: String,
}

impl SignerIdentity {
    /// The identity a certificate states (rendered once per certificate).
    pub fn from_cert(c: &Cert) -> Self {
        c.identity().clone()
    }

    pub(crate) fn render(c: &Cert) -> Self {
        use const_oid::db::{rfc3280, rfc4519};
        Self {
            subject: name_to_string(c.subject()),
            common_name: c.subject_attr(rfc4519::CN),
            title: c.subject_attr(rfc4519::TITLE),
            organisation: c.subject_attr(rfc4519::O),
            organisational_unit: c.subject_attr(rfc4519::OU),
            email: c.subject_attr(rfc3280::EMAIL_ADDRESS),
            locality: c.subject_attr(rfc4519::L),
            province: c.subject_attr(rfc4519::ST),
            country: c.subject_attr(rfc4519::C),
            uid: c.subject_attr(rfc4519::UID),
            serial_number: c.serial_hex(),
            issuer: name_to_string(c.issuer()),
            kind: Some(c.kind()),
            fingerprint_sha256: c.fingerprint_hex(),
        }
    }
}

/// Where a certificate of the path came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "url")]
pub enum CertSource {
    /// The CMS `certificates` field (or the request's chain).
    Signature,
    /// The configured intermediates.
    Configured,
    /// Downloaded through the AIA caIssuers URL.
    Aia(String),
    /// A configured trust anchor.
    Anchor,
}

/// One certificate of the validated path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathEntry {
    /// RFC 4514 subject.
    pub subject: String,
    /// RFC 4514 issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial_number: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256, hex.
    pub fingerprint_sha256: String,
    /// The algorithm the issuer signed this certificate with.
    pub signature_algorithm: String,
    /// Whether this is the trust anchor that ends the path.
    pub trust_anchor: bool,
    /// Where it came from.
    pub source: CertSource,
}

impl PathEntry {
    /// The report entry for a certificate of a path.
    pub fn new(c: &Cert, source: CertSource) -> Self {
        let names = c.entry_names();
        Self {
            subject: names.subject.clone(),
            issuer: names.issuer.clone(),
            serial_number: names.serial_hex.clone(),
            not_before: c.not_before(),
            not_after: c.not_after(),
            fingerprint_sha256: names.fingerprint_hex.clone(),
            signature_algorithm: names.signature_algorithm.clone(),
            trust_anchor: source == CertSource::Anchor,
            source,
        }
    }
}

/// Where revocation evidence came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RevocationSource {
    /// An OCSP response.
    Ocsp,
    /// A CRL.
    Crl,
    /// Nothing could be had.
    None,
}

/// The status a source gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked (or on hold).
    Revoked,
    /// The source does not know, or failed.
    Unknown,
    /// Not checked (policy off, or a trust anchor).
    NotChecked,
}

/// One piece of revocation evidence, as used for the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevocationEvidence {
    /// The certificate the evidence is about.
    pub certificate_subject: String,
    /// Its serial, hex.
    pub certificate_serial: String,
    /// OCSP, CRL, or none.
    pub source: RevocationSource,
    /// The URL asked (after rewriting).
    pub url: Option<String>,
    /// The status the source gave.
    pub status: CertStatus,
    /// thisUpdate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub this_update: Option<OffsetDateTime>,
    /// nextUpdate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    /// OCSP producedAt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub produced_at: Option<OffsetDateTime>,
    /// When the revocation (or hold) took effect.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revocation_time: Option<OffsetDateTime>,
    /// RFC 5280 reason name (keyCompromise, certificateHold, ...).
    pub revocation_reason: Option<String>,
    /// Served from the cache rather than fetched for this request.
    pub from_cache: bool,
    /// Past its nextUpdate, served inside the configured grace.
    pub stale: bool,
    /// Why a source failed, when it did.
    pub detail: Option<String>,
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

//! What the revocation checker found, as the reports show it: per certificate and
//! per source, the status, the times and where the answer came from.

use serde::Serialize;
use time::OffsetDateTime;

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

/// Where a piece of revocation evidence was found (ETSI EN 319 102-1 past validation:
/// evidence embedded with the signature counts like fetched evidence once verified).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EvidenceOrigin {
    /// Fetched from the source the certificate names (or the cache of such fetches).
    #[default]
    Fetched,
    /// A PDF's Document Security Store (PAdES B-LT).
    EmbeddedDss,
    /// A CAdES signer's revocation-values, or `SignedData.crls` (CAdES B-LT).
    EmbeddedCms,
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
    /// Fetched, or embedded with the signature (and where).
    pub origin: EvidenceOrigin,
}

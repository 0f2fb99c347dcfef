//! The checks of a timestamp token (RFC 3161 §2.4.2, RFC 5816): the CMS
//! signature over TSTInfo, the TSA certificate named by ESS
//! signing-certificate(-v2), its critical id-kp-timeStamping EKU, and the
//! request's imprint, nonce and policy. The TSA certificate's path and
//! revocation are the caller's (as for any CMS signer).

use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::Uint;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::pkix::name::GeneralName;

use super::error::TspError;
use super::resp::{TimeStampResp, TstInfo};
use super::{MAX_RESPONSE_LEN, oid};
use crate::cert::Cert;
use crate::cms::{self, Detached, EssStatus, SignerFailure};
use crate::crypto::DigestAlgorithm;
use crate::time::{OffsetDateTime, rfc3339};

/// What the token must attest: the request's imprint, nonce and policy.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The imprint's hash algorithm.
    pub algorithm: DigestAlgorithm,
    /// The imprint's hash value.
    pub digest: &'a [u8],
    /// The nonce bytes the request carried (`None`: the request had none).
    pub nonce: Option<&'a [u8]>,
    /// The policy the request asked for, if any.
    pub policy: Option<ObjectIdentifier>,
}

/// A token whose checks all passed.
#[derive(Clone, Debug)]
pub struct VerifiedTimestamp {
    /// The token (ContentInfo) as the TSA encoded it, to embed unchanged.
    pub token: Vec<u8>,
    /// The decoded TSTInfo.
    pub tst_info: TstInfo,
    /// The TSA certificate, identified by ESS and verified by the signature.
    pub tsa_cert: Cert,
    /// The token's other certificates, for the caller's path building.
    pub pool: Vec<Cert>,
    /// Oddities that do not fail the token.
    pub warnings: Vec<String>,
}

impl VerifiedTimestamp {
    /// genTime.
    pub fn gen_time(&self) -> OffsetDateTime {
        self.tst_info.gen_time
    }

    /// genTime − accuracy: the earliest the datum can have been stamped.
    /// Without accuracy the TSA states none; the time is taken as given.
    pub fn earliest(&self) -> OffsetDateTime {
        self.tst_info.gen_time - self.accuracy()
    }

    /// genTime + accuracy: the latest the datum is proven to exist at.
    pub fn latest(&self) -> OffsetDateTime {
        self.tst_info.gen_time + self.accuracy()
    }

    fn accuracy(&self) -> time::Duration {
        self.tst_info
            .accuracy
            .map(|a| a.duration())
            .unwrap_or(time::Duration::ZERO)
    }
}

/// Parses a `TimeStampResp`, refuses a non-granted status, and verifies the
/// token against `expected`. `extra_certs` help find the TSA certificate when
/// the TSA did not include it.
pub fn verify_response(
    response: &[u8],
    expected: &Expected<'_>,
    extra_certs: &[Cert],
) -> Result<VerifiedTimestamp, TspError> {
    let token = TimeStampResp::parse(response)?.into_token()?;
    verify_token(&token, expected, extra_certs)
}

/// Verifies a `TimeStampToken` (a ContentInfo, DER or BER) against `expected`.
pub fn verify_token(
    token: &[u8],
    expected: &Expected<'_>,
    extra_certs: &[Cert],
) -> Result<VerifiedTimestamp, TspError> {
    if token.len() > MAX_RESPONSE_LEN {
        return Err(TspError::TooLarge {
            limit: MAX_RESPONSE_LEN,
        });
    }
    let msg = cms::parse(token).map_err(|e| TspError::NotAToken(e.to_string()))?;
    // §2.4.2: "The eContentType ... MUST be id-ct-TSTInfo"; "the TimeStampToken
    // ... MUST NOT include any signatures other than the signature of the TSA".
    if msg.econtent_type() != oid::TST_INFO {
        return Err(TspError::NotAToken(format!(
            "eContentType {} is not id-ct-TSTInfo",
            msg.econtent_type()
        )));
    }
    if msg.signer_count() != 1 {
        return Err(TspError::NotAToken(format!(
            "{} signers, a token has exactly one",
            msg.signer_count()
        )));
    }
    let content = msg
        .content()
        .ok_or_else(|| TspError::NotAToken("the TSTInfo is not encapsulated".into()))?;

    let check = cms::check_signer(&msg, 0, &Detached::None, extra_certs);
    if let Some(f) = &check.failure {
        return Err(match f {
            SignerFailure::SigConstraints(m) => TspError::SigningCertificate(m.clone()),
            other => TspError::Signature(other.to_string()),
        });
    }
    let tsa_cert = check
        .signer_cert
        .clone()
        .ok_or_else(|| TspError::Signature("no signer certificate".into()))?;
    // RFC 3161 §2.4.1 (ESSCertID) and RFC 5816 §2.2.1 (ESSCertIDv2): the
    // signing certificate attribute "MUST be present" and names the TSA's.
    if check.ess == EssStatus::Absent {
        return Err(TspError::SigningCertificate(
            "neither signing-certificate nor signing-certificate-v2 is present".into(),
        ));
    }
    check_eku(&tsa_cert)?;

    let tst = TstInfo::from_der(content)?;
    check_against(&tst, expected)?;
    if let Some(GeneralName::DirectoryName(n)) = &tst.tsa
        && n != tsa_cert.subject()
    {
        // §2.4.2: the tsa name, when present, is one of the TSA certificate's names.
        return Err(TspError::TsaMismatch(
            "the tsa field does not name the TSA certificate's subject".into(),
        ));
    }
    if tst.gen_time < tsa_cert.not_before() || tst.gen_time > tsa_cert.not_after() {
        return Err(TspError::TsaMismatch(format!(
            "genTime {} is outside the TSA certificate's validity",
            rfc3339(tst.gen_time)
        )));
    }

    let pool = msg
        .certificates()
        .iter()
        .filter(|c| **c != tsa_cert)
        .cloned()
        .collect();
    let mut warnings = check.warnings.clone();
    if check.ess == EssStatus::V1Matched {
        warnings.push("the TSA certificate is identified by SHA-1 ESSCertID (RFC 3161), not ESSCertIDv2 (RFC 5816)".into());
    }
    Ok(VerifiedTimestamp {
        token: token.to_vec(),
        tst_info: tst,
        tsa_cert,
        pool,
        warnings,
    })
}

/// RFC 3161 §2.3: "The corresponding certificate MUST contain only one instance
/// of the extended key usage field extension ... with KeyPurposeID having value
/// id-kp-timeStamping. This extension MUST be critical."
fn check_eku(cert: &Cert) -> Result<(), TspError> {
    let exts = cert
        .x509()
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    let mut ekus = exts.iter().filter(|e| e.extn_id == oid::EXT_KEY_USAGE);
    let (Some(ext), None) = (ekus.next(), ekus.next()) else {
        return Err(TspError::NotTimestampingCert(
            "does not have exactly one extendedKeyUsage extension".into(),
        ));
    };
    if !ext.critical {
        return Err(TspError::NotTimestampingCert(
            "has a non-critical extendedKeyUsage".into(),
        ));
    }
    let eku = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).map_err(|e| {
        TspError::NotTimestampingCert(format!("has a malformed extendedKeyUsage: {e}"))
    })?;
    if eku.0.as_slice() != [oid::KP_TIME_STAMPING] {
        return Err(TspError::NotTimestampingCert(format!(
            "has extendedKeyUsage {:?}",
            eku.0.iter().map(ToString::to_string).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

fn check_against(tst: &TstInfo, expected: &Expected<'_>) -> Result<(), TspError> {
    let mi = &tst.message_imprint;
    if mi.hash_algorithm.oid != expected.algorithm.oid() {
        return Err(TspError::ImprintMismatch(format!(
            "hash algorithm {}, {} was asked",
            mi.hash_algorithm.oid, expected.algorithm
        )));
    }
    if mi.hashed_message.as_bytes() != expected.digest {
        return Err(TspError::ImprintMismatch(
            "the hashed message is not the digest sent".into(),
        ));
    }
    if let Some(nonce) = expected.nonce {
        let wanted = Uint::new(nonce).map_err(|_| TspError::NonceMismatch)?;
        if tst.nonce.as_ref() != Some(&wanted) {
            return Err(TspError::NonceMismatch);
        }
    }
    if let Some(policy) = expected.policy
        && tst.policy != policy
    {
        return Err(TspError::PolicyMismatch {
            wanted: policy.to_string(),
            got: tst.policy.to_string(),
        });
    }
    Ok(())
}

//! CMS SignedData (RFC 5652) parsing and the per-signer cryptographic checks:
//! the content's digest, the signed attributes (content-type,
//! message-digest, signing-time, ESS signing-certificate v1/v2) and the
//! signature value. No path building and no revocation here: that is
//! [`crate::verify`]'s job once the signature itself holds.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911;
use der::asn1::OctetString;
use der::{Decode, Encode, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::ber;
use crate::cert::Cert;
use crate::crypto::{self, AlgorithmPolicy, DigestAlgorithm, SigError};
use crate::error::{Error, Result};
use crate::time::{self as t, OffsetDateTime};

/// Largest CMS accepted.
pub const MAX_CMS_LEN: usize = 64 << 20;

const ID_CONTENT_TYPE: ObjectIdentifier = rfc5911::ID_CONTENT_TYPE;
const ID_MESSAGE_DIGEST: ObjectIdentifier = rfc5911::ID_MESSAGE_DIGEST;
const ID_SIGNING_TIME: ObjectIdentifier = rfc5911::ID_SIGNING_TIME;
const ID_SIGNED_DATA: ObjectIdentifier = rfc5911::ID_SIGNED_DATA;
const ID_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// A parsed SignedData with what the checks need.
#[derive(Clone, Debug)]
pub struct SignedDataMessage {
    signed_data: SignedData,
    content: Option<Vec<u8>>,
    certificates: Vec<Cert>,
}

impl SignedDataMessage {
    /// The decoded SignedData.
    pub fn signed_data(&self) -> &SignedData {
        &self.signed_data
    }

    /// eContentType.
    pub fn content_type(&self) -> ObjectIdentifier {
        self.signed_data.encap_content_info.econtent_type
    }

    /// The encapsulated content; `None` for a detached signature.
    pub fn content(&self) -> Option<&[u8]> {
        self.content.as_deref()
    }

    /// The certificates carried in the SignedData.
    pub fn certificates(&self) -> &[Cert] {
        &self.certificates
    }

    /// How many SignerInfos there are.
    pub fn signer_count(&self) -> usize {
        self.signed_data.signer_infos.0.len()
    }

    fn signer(&self, index: usize) -> Option<&SignerInfo> {
        self.signed_data.signer_infos.0.get(index)
    }
}

/// Parses a ContentInfo holding SignedData, from DER, BER or PEM.
pub fn parse(input: &[u8]) -> Result<SignedDataMessage> {
    const WHAT: &str = "CMS ContentInfo";
    if input.len() > MAX_CMS_LEN {
        return Err(Error::TooLarge {
            what: "CMS",
            limit: MAX_CMS_LEN,
        });
    }
    let pem_der;
    let input = if input.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(input).map_err(|e| Error::malformed(WHAT, e))?;
        if !matches!(label, "CMS" | "PKCS7") {
            return Err(Error::malformed(WHAT, format!("PEM label {label:?} (expected CMS or PKCS7)")));
        }
        pem_der = der;
        &pem_der[..]
    } else {
        input
    };
    if input.is_empty() {
        return Err(Error::malformed(WHAT, "empty input"));
    }
    let der = ber::to_der(input, ber::Limits::default())?;
    let ci = ContentInfo::from_der(&der).map_err(|e| Error::malformed(WHAT, e))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(Error::malformed(
            WHAT,
            format!(
                "wrong content type {}: a SignedData is required",
                crypto::algorithm_name(&ci.content_type)
            ),
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| Error::malformed("CMS SignedData", e))?;
    if sd.signer_infos.0.is_empty() {
        return Err(Error::malformed("CMS SignedData", "no signer"));
    }
    let content = match &sd.encap_content_info.econtent {
        None => None,
        Some(any) if any.tag() == Tag::OctetString => Some(any.value().to_vec()),
        Some(any) => {
            return Err(Error::malformed(
                "CMS SignedData",
                format!("eContent is a {} rather than an OCTET STRING", any.tag()),
            ));
        }
    };
    let mut certificates = Vec::new();
    for choice in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let cms::cert::CertificateChoices::Certificate(c) = choice {
            certificates.push(Cert::from_parsed(c.clone())?);
        }
    }
    Ok(SignedDataMessage {
        signed_data: sd,
        content,
        certificates,
    })
}

/// The content of a detached signature, as the caller has it.
#[derive(Clone, Copy, Debug)]
pub enum Detached<'a> {
    /// Nothing: the signature must carry its content.
    None,
    /// The content itself.
    Content(&'a [u8]),
    /// Only the content's digest (large documents hashed by the caller).
    Digest {
        /// Its algorithm (must be the signer's).
        algorithm: DigestAlgorithm,
        /// The digest.
        value: &'a [u8],
    },
}

/// Which ESS signing-certificate attribute bound the signer's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EssStatus {
    /// None present.
    Absent,
    /// signing-certificate-v2 present and matching the signer certificate.
    V2Matched,
    /// signing-certificate (v1, SHA-1) present and matching.
    V1Matched,
}

/// Why a signer's own checks failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerFailure {
    /// The structure is not processable.
    Format(String),
    /// The content digest does not match.
    HashFailure(String),
    /// The signature value does not verify.
    SigCrypto(String),
    /// The signer's certificate is nowhere.
    NoSigningCertificate(String),
    /// Detached and no content given.
    SignedDataNotFound(String),
    /// Algorithm not implemented or not acceptable.
    CryptoConstraints(String),
    /// A signed attribute breaks a constraint.
    SigConstraints(String),
}

/// The outcome of one signer's own checks.
#[derive(Clone, Debug)]
pub struct SignerCheck {
    /// Index of the SignerInfo.
    pub index: usize,
    /// The signer's certificate, when found.
    pub signer_cert: Option<Cert>,
    /// The signer's digest algorithm.
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// The signature algorithm, as verified.
    pub signature_algorithm: Option<String>,
    /// The signing-time attribute.
    pub signing_time: Option<OffsetDateTime>,
    /// Whether signed attributes are present.
    pub signed_attributes: bool,
    /// ESS binding of the certificate.
    pub ess: EssStatus,
    /// Whether the content came from outside the CMS.
    pub detached: bool,
    /// Notes that do not change the verdict.
    pub warnings: Vec<String>,
    /// The first failure, if any.
    pub failure: Option<SignerFailure>,
}

/// Runs the cryptographic checks of SignerInfo `index`. Pure: no I/O, no clock.
pub fn check_signer(
    msg: &SignedDataMessage,
    index: usize,
    detached: &Detached<'_>,
    extra_certs: &[Cert],
) -> SignerCheck {
    let mut check = SignerCheck {
        index,
        signer_cert: None,
        digest_algorithm: None,
        signature_algorithm: None,
        signing_time: None,
        signed_attributes: false,
        ess: EssStatus::Absent,
        detached: msg.content.is_none(),
        warnings: Vec::new(),
        failure: None,
    };
    if let Err(f) = run_checks(msg, index, detached, extra_certs, &mut check) {
        check.failure = Some(f);
    }
    check
}

fn run_checks(
    msg: &SignedDataMessage,
    index: usize,
    detached: &Detached<'_>,
    extra_certs: &[Cert],
    check: &mut SignerCheck,
) -> Result<(), SignerFailure> {
    let si = msg
        .signer(index)
        .ok_or_else(|| SignerFailure::Format(format!("no SignerInfo number {index}")))?;
    let digest_alg = DigestAlgorithm::from_oid(&si.digest_alg.oid).ok_or_else(|| {
        SignerFailure::CryptoConstraints(format!(
            "digest algorithm {} is not supported",
            crypto::algorithm_name(&si.digest_alg.oid)
        ))
    })?;
    check.digest_algorithm = Some(digest_alg);
    if digest_alg == DigestAlgorithm::Sha1 {
        return Err(SignerFailure::CryptoConstraints(
            "SHA-1 is not accepted for a signer's digest".into(),
        ));
    }

    // The signer's certificate, by issuer and serial or by key identifier.
    let signer_cert = msg
        .certificates
        .iter()
        .chain(extra_certs)
        .find(|c| matches_sid(c, &si.sid))
        .cloned()
        .ok_or_else(|| {
            SignerFailure::NoSigningCertificate(
                "the signer's certificate is neither in the signature nor given".into(),
            )
        })?;
    check.signer_cert = Some(signer_cert.clone());

    // The content's digest.
    let content_digest: Vec<u8> = match (&msg.content, detached) {
        (Some(c), d) => {
            if !matches!(d, Detached::None) {
                check.warnings.push(
                    "the signature carries its content; the detached content given was ignored"
                        .into(),
                );
            }
            digest_alg.digest(c)
        }
        (None, Detached::Content(c)) => digest_alg.digest(c),
        (None, Detached::Digest { algorithm, value }) => {
            if *algorithm != digest_alg {
                return Err(SignerFailure::Format(format!(
                    "the content digest given is {}, the signer used {}",
                    algorithm.name(),
                    digest_alg.name()
                )));
            }
            if value.len() != digest_alg.output_len() {
                return Err(SignerFailure::Format(format!(
                    "the content digest given has {} bytes, {} has {}",
                    value.len(),
                    digest_alg.name(),
                    digest_alg.output_len()
                )));
            }
            value.to_vec()
        }
        (None, Detached::None) => {
            return Err(SignerFailure::SignedDataNotFound(
                "the signature is detached and neither the content nor its digest was given"
                    .into(),
            ));
        }
    };

    let spki = &signer_cert.x509().tbs_certificate.subject_public_key_info;
    let signature = si.signature.as_bytes();
    let policy = AlgorithmPolicy::default();
    let verified = match &si.signed_attrs {
        Some(attrs) => {
            check.signed_attributes = true;
            check_signed_attributes(msg, attrs, &content_digest, &signer_cert, check)?;
            // RFC 5652 §5.4: the signature is over the DER of the attributes
            // as a SET OF, not with the [0] IMPLICIT tag they travel under.
            let message = attrs
                .to_der()
                .map_err(|e| SignerFailure::Format(format!("signed attributes: {e}")))?;
            crypto::verify_signature(spki, &si.signature_algorithm, Some(digest_alg), &message, signature, policy)
        }
        None => {
            let content: &[u8] = match (&msg.content, detached) {
                (Some(c), _) => c,
                (None, Detached::Content(c)) => c,
                _ => {
                    return Err(SignerFailure::Format(
                        "a digest alone cannot verify a signature without signed attributes; give the content".into(),
                    ));
                }
            };
            if msg.content_type() != rfc5911::ID_DATA {
                return Err(SignerFailure::Format(
                    "content of a type other than id-data requires signed attributes (RFC 5652 §5.3)".into(),
                ));
            }
            crypto::verify_signature(spki, &si.signature_algorithm, Some(digest_alg), content, signature, policy)
        }
    };
    match verified {
        Ok(alg) => {
            check.signature_algorithm = Some(alg.name());
            Ok(())
        }
        Err(SigError::Invalid) => Err(SignerFailure::SigCrypto(
            "the signature value does not verify with the signer's public key".into(),
        )),
        Err(e) => Err(SignerFailure::CryptoConstraints(e.to_string())),
    }
}

fn check_signed_attributes(
    msg: &SignedDataMessage,
    attrs: &cms::signed_data::SignedAttributes,
    content_digest: &[u8],
    signer_cert: &Cert,
    check: &mut SignerCheck,
) -> Result<(), SignerFailure> {
    let single = |oid: ObjectIdentifier, name: &str| -> Result<Option<der::Any>, SignerFailure> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        let Some(a) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() || a.values.len() != 1 {
            return Err(SignerFailure::Format(format!(
                "the {name} attribute must appear once with one value (RFC 5652 §11)"
            )));
        }
        Ok(a.values.iter().next().cloned())
    };
    let ct = single(ID_CONTENT_TYPE, "content-type")?
        .ok_or_else(|| SignerFailure::Format("signed attributes without content-type".into()))?;
    let ct: ObjectIdentifier = ct
        .decode_as()
        .map_err(|e| SignerFailure::Format(format!("content-type attribute: {e}")))?;
    if ct != msg.content_type() {
        return Err(SignerFailure::Format(format!(
            "content-type attribute {} differs from eContentType {}",
            crypto::algorithm_name(&ct),
            crypto::algorithm_name(&msg.content_type())
        )));
    }
    let md = single(ID_MESSAGE_DIGEST, "message-digest")?
        .ok_or_else(|| SignerFailure::Format("signed attributes without message-digest".into()))?;
    let md: OctetString = md
        .decode_as()
        .map_err(|e| SignerFailure::Format(format!("message-digest attribute: {e}")))?;
    if md.as_bytes() != content_digest {
        return Err(SignerFailure::HashFailure(
            "the content's digest differs from the signed message-digest: the document was altered or is not the one signed".into(),
        ));
    }
    if let Some(st) = single(ID_SIGNING_TIME, "signing-time")? {
        let time = st
            .to_der()
            .and_then(|d| x509_cert::time::Time::from_der(&d))
            .map_err(|e| SignerFailure::Format(format!("signing-time attribute: {e}")))?;
        check.signing_time = Some(t::from_x509(&time));
    }
    if let Some(v2) = single(ID_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")? {
        let sc: SigningCertificateV2 = v2
            .decode_as()
            .map_err(|e| SignerFailure::Format(format!("signing-certificate-v2 attribute: {e}")))?;
        let first = sc.certs.first().ok_or_else(|| {
            SignerFailure::Format("signing-certificate-v2 without a certificate".into())
        })?;
        let alg_oid = first
            .hash_algorithm
            .as_ref()
            .map(|a| a.oid)
            .unwrap_or(const_oid::db::rfc5912::ID_SHA_256);
        let alg = DigestAlgorithm::from_oid(&alg_oid).ok_or_else(|| {
            SignerFailure::CryptoConstraints(format!(
                "signing-certificate-v2 hash {} is not supported",
                crypto::algorithm_name(&alg_oid)
            ))
        })?;
        if alg.digest(signer_cert.der()) != first.cert_hash.as_bytes() {
            return Err(SignerFailure::SigConstraints(
                "the signing-certificate-v2 attribute names another certificate than the one the signer used".into(),
            ));
        }
        check.ess = EssStatus::V2Matched;
    } else if let Some(v1) = single(ID_SIGNING_CERTIFICATE, "signing-certificate")? {
        let sc: SigningCertificate = v1
            .decode_as()
            .map_err(|e| SignerFailure::Format(format!("signing-certificate attribute: {e}")))?;
        let first = sc.certs.first().ok_or_else(|| {
            SignerFailure::Format("signing-certificate without a certificate".into())
        })?;
        if DigestAlgorithm::Sha1.digest(signer_cert.der()) != first.cert_hash.as_bytes() {
            return Err(SignerFailure::SigConstraints(
                "the signing-certificate attribute names another certificate than the one the signer used".into(),
            ));
        }
        check.ess = EssStatus::V1Matched;
    }
    Ok(())
}

fn matches_sid(c: &Cert, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.issuer() == &ias.issuer && c.serial() == ias.serial_number.as_bytes()
        }
        SignerIdentifier::SubjectKeyIdentifier(skid) => c
            .extension(const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .and_then(|(_, raw)| SubjectKeyIdentifier::from_der(raw).ok())
            .is_some_and(|k| k.0 == skid.0),
    }
}

/// ESS SigningCertificateV2 (RFC 5035). The `cms` crate has no types for it.
#[derive(Clone, Debug, der::Sequence)]
pub struct SigningCertificateV2 {
    /// The certificates; the first is the signer's.
    pub certs: Vec<EssCertIdV2>,
    /// Policies (not processed).
    #[asn1(optional = "true")]
    pub policies: Option<der::Any>,
}

/// ESSCertIDv2.
#[derive(Clone, Debug, der::Sequence)]
pub struct EssCertIdV2 {
    /// DEFAULT id-sha256.
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// Hash of the whole certificate.
    pub cert_hash: OctetString,
    /// IssuerSerial (not needed to match: the hash binds the certificate).
    #[asn1(optional = "true")]
    pub issuer_serial: Option<der::Any>,
}

/// ESS SigningCertificate (RFC 2634, SHA-1).
#[derive(Clone, Debug, der::Sequence)]
pub struct SigningCertificate {
    /// The certificates; the first is the signer's.
    pub certs: Vec<EssCertId>,
    /// Policies (not processed).
    #[asn1(optional = "true")]
    pub policies: Option<der::Any>,
}

/// ESSCertID.
#[derive(Clone, Debug, der::Sequence)]
pub struct EssCertId {
    /// SHA-1 of the whole certificate.
    pub cert_hash: OctetString,
    /// IssuerSerial.
    #[asn1(optional = "true")]
    pub issuer_serial: Option<der::Any>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncations_are_errors() {
        for bad in [&b""[..], b"\x30", b"\x30\x80", b"-----BEGIN CMS-----\n!!\n-----END CMS-----\n", b"\x06\x03\x2a\x03\x04"] {
            assert!(parse(bad).is_err());
        }
    }
}

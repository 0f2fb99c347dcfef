//! CMS SignedData (RFC 5652) parsing and the per-signer cryptographic checks.
//!
//! [`parse`] accepts DER, BER (openssl `-stream`) and PEM. [`check_signer`] is
//! a pure function: it finds the signer's certificate, binds the content to
//! the signed attributes and verifies the signature value. Certification
//! paths, revocation and time checks belong to the verification engine
//! (`kyso-validation`).
//!
//! The SignedData is taken apart element by element rather than decoded in
//! one go, for three reasons: signers stay in their encoded order (`der`
//! sorts SET OF); a certificate that fails to parse, an attribute certificate
//! or a duplicate does not make the whole message unreadable; and the signed
//! attributes are kept as the signer encoded them.

use std::cmp::Ordering;
use std::collections::HashSet;

use cms::cert::CertificateChoices;
use cms::content_info::CmsVersion;
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString, SetOfVec};
use der::{Any, Decode, DerOrd, Encode, Sequence, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;

use crate::ber::{self, Limits, Tlv};
use crate::cert::Cert;
use crate::crypto::{self, AlgorithmPolicy, DigestAlgorithm, SigError, SignatureAlgorithm};
use crate::error::{Error, Result};
use crate::name::rfc4514;
use crate::time::{self as t, OffsetDateTime};

mod check;
pub mod commitment;
mod embedded;

pub use check::{check_signer, matches_sid};
pub use embedded::{Embedded, embedded, signature_value};

/// Largest CMS accepted (after PEM decoding).
pub const MAX_CMS_LEN: usize = 64 * 1024 * 1024;
/// Most elements in any SET OF (certificates, signers, attributes, RDNs):
/// `der` sorts sets with a quadratic insertion sort.
use crate::ber::MAX_SET_ELEMENTS;
/// Most certificates tried for one signer identifier.
const MAX_SIGNER_CANDIDATES: usize = 8;

/// Object identifiers of RFC 5652 and RFC 5035.
pub mod oid {
    use const_oid::ObjectIdentifier as Oid;

    /// id-data.
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData.
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    /// id-contentType.
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    /// id-messageDigest.
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    /// id-signingTime.
    pub const SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
    /// id-aa-signingCertificate (ESS, SHA-1).
    pub const SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
    /// id-aa-signingCertificateV2 (ESS).
    pub const SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// id-ce-subjectKeyIdentifier.
    pub const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
}

/// ESS `SigningCertificateV2` (RFC 5035 §3).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    /// The signer's certificate first, then optionally its chain.
    pub certs: Vec<EssCertIdV2>,
    /// Policy information, not interpreted.
    pub policies: Option<Any>,
}

/// ESS `ESSCertIDv2` (RFC 5035 §4).
///
/// `hashAlgorithm` is `DEFAULT sha256`: decoded as SHA-256 when absent,
/// omitted when encoding SHA-256 without parameters.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct EssCertIdV2 {
    /// Hash algorithm, SHA-256 when absent.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the whole certificate DER.
    pub cert_hash: OctetString,
    /// Issuer and serial of the certificate.
    pub issuer_serial: Option<IssuerSerial>,
}

/// The wire form of [`EssCertIdV2`]: der's derive handles `DEFAULT` only for
/// `Copy` types.
#[derive(Sequence)]
struct EssCertIdV2Wire {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

impl EssCertIdV2 {
    fn wire(&self) -> EssCertIdV2Wire {
        EssCertIdV2Wire {
            hash_algorithm: (self.hash_algorithm != default_ess_hash())
                .then(|| self.hash_algorithm.clone()),
            cert_hash: self.cert_hash.clone(),
            issuer_serial: self.issuer_serial.clone(),
        }
    }
}

impl<'a> der::DecodeValue<'a> for EssCertIdV2 {
    fn decode_value<R: der::Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        let w = EssCertIdV2Wire::decode_value(reader, header)?;
        Ok(Self {
            hash_algorithm: w.hash_algorithm.unwrap_or_else(default_ess_hash),
            cert_hash: w.cert_hash,
            issuer_serial: w.issuer_serial,
        })
    }
}

impl der::EncodeValue for EssCertIdV2 {
    fn value_len(&self) -> der::Result<der::Length> {
        self.wire().value_len()
    }

    fn encode_value(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        self.wire().encode_value(writer)
    }
}

impl<'a> Sequence<'a> for EssCertIdV2 {}

fn default_ess_hash() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: DigestAlgorithm::Sha256.oid(),
        parameters: None,
    }
}

/// ESS `SigningCertificate` (RFC 2634 §5.4), SHA-1 hashes.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificate {
    /// The signer's certificate first.
    pub certs: Vec<EssCertId>,
    /// Policy information, not interpreted.
    pub policies: Option<Any>,
}

/// ESS `ESSCertID` (RFC 2634 §5.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertId {
    /// SHA-1 of the whole certificate DER.
    pub cert_hash: OctetString,
    /// Issuer and serial of the certificate.
    pub issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial` (RFC 5755 §4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    /// The issuer, as a directoryName.
    pub issuer: GeneralNames,
    /// The certificate serial number.
    pub serial_number: SerialNumber,
    /// Issuer unique ID, rarely present.
    #[asn1(optional = "true")]
    pub issuer_uid: Option<BitString>,
}

/// A parsed CMS SignedData.
#[derive(Clone, Debug)]
pub struct SignedDataMessage {
    signed_data: SignedData,
    econtent_type: ObjectIdentifier,
    content: Option<Vec<u8>>,
    certificates: Vec<Cert>,
    digest_algorithms: Vec<DigestAlgorithm>,
    signers: Vec<Signer>,
    warnings: Vec<String>,
}

/// One SignerInfo, in encoded order, with its signed attributes as encoded.
#[derive(Clone, Debug)]
struct Signer {
    info: SignerInfo,
    /// The signed attributes as the signer encoded them, re-tagged SET OF.
    signed_attrs_raw: Option<Vec<u8>>,
}

impl SignedDataMessage {
    /// The decoded SignedData (SET OF fields in DER order, duplicates and
    /// undecodable certificates dropped).
    pub fn signed_data(&self) -> &SignedData {
        &self.signed_data
    }

    /// The eContentType.
    pub fn econtent_type(&self) -> ObjectIdentifier {
        self.econtent_type
    }

    /// The encapsulated content; `None` for a detached signature.
    pub fn content(&self) -> Option<&[u8]> {
        self.content.as_deref()
    }

    /// Whether the signature is detached (no encapsulated content).
    pub fn is_detached(&self) -> bool {
        self.content.is_none()
    }

    /// The certificates carried in the message.
    pub fn certificates(&self) -> &[Cert] {
        &self.certificates
    }

    /// The supported digest algorithms of the message and of its signers,
    /// without duplicates: what to compute over streamed detached content.
    pub fn digest_algorithms(&self) -> &[DigestAlgorithm] {
        &self.digest_algorithms
    }

    /// The number of signers.
    pub fn signer_count(&self) -> usize {
        self.signers.len()
    }

    /// A SignerInfo by index, in encoded order.
    pub fn signer(&self, index: usize) -> Option<&SignerInfo> {
        self.signers.get(index).map(|s| &s.info)
    }

    /// Oddities found while parsing (skipped certificates, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Content given by the caller for a detached signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detached<'a> {
    /// Nothing given.
    None,
    /// The content itself.
    Content(&'a [u8]),
    /// The content's digest.
    Digest {
        /// The algorithm; must be the signer's digest algorithm.
        algorithm: DigestAlgorithm,
        /// The digest value.
        value: &'a [u8],
    },
}

/// Which ESS signing-certificate attribute bound the signer's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EssStatus {
    /// Neither attribute is present.
    Absent,
    /// signing-certificate-v2 is present and matches.
    V2Matched,
    /// Only the SHA-1 signing-certificate is present, and matches.
    V1Matched,
}

/// Why a signer failed the cryptographic checks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignerFailure {
    /// The structure cannot be processed.
    #[error("format: {0}")]
    Format(String),
    /// The content does not match the message digest.
    #[error("hash: {0}")]
    HashFailure(String),
    /// The signature value does not verify.
    #[error("signature: {0}")]
    SigCrypto(String),
    /// The signer's certificate is neither in the message nor given.
    #[error("no signing certificate: {0}")]
    NoSigningCertificate(String),
    /// Detached signature and no content nor digest given.
    #[error("signed data not found: {0}")]
    SignedDataNotFound(String),
    /// An algorithm unsupported or below policy.
    #[error("crypto constraints: {0}")]
    CryptoConstraints(String),
    /// The signed attributes break a constraint (ESS certificate mismatch).
    #[error("signature constraints: {0}")]
    SigConstraints(String),
}

/// The outcome of [`check_signer`] for one SignerInfo.
#[derive(Clone, Debug)]
pub struct SignerCheck {
    /// Index of the SignerInfo, in encoded order.
    pub index: usize,
    /// The certificate whose key verified the signature; when the signature
    /// failed, the first certificate matching the signer identifier.
    pub signer_cert: Option<Cert>,
    /// The SignerInfo digest algorithm, if supported.
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// What verified the signature ("RSA PKCS#1 v1.5 SHA-256"), or the name
    /// of the signature algorithm when it did not verify.
    pub signature_algorithm: Option<String>,
    /// The signing-time attribute: claimed by the signer, not proven.
    pub signing_time: Option<OffsetDateTime>,
    /// The commitment-type indication (ETSI EN 319 122-1 §5.2.3): `proof-of-approval`,
    /// … or the dotted identifier of another commitment; `None` without the attribute.
    pub commitment_type: Option<String>,
    /// Whether signed attributes are present.
    pub signed_attributes: bool,
    /// ESS signing-certificate binding.
    pub ess: EssStatus,
    /// Whether the signature is detached.
    pub detached: bool,
    /// Oddities that do not fail the signature.
    pub warnings: Vec<String>,
    /// The first failed check, if any.
    pub failure: Option<SignerFailure>,
}

impl SignerCheck {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Parses a CMS ContentInfo holding a SignedData, from DER, BER or PEM.
pub fn parse(input: &[u8]) -> Result<SignedDataMessage> {
    if input.len() > MAX_CMS_LEN.saturating_mul(2) {
        // PEM is 4/3 of the DER: anything twice the limit is too large anyway.
        return Err(Error::TooLarge {
            what: "CMS",
            limit: MAX_CMS_LEN,
        });
    }
    let pem;
    let bytes = if looks_like_pem(input) {
        pem = decode_pem(input)?;
        pem.as_slice()
    } else {
        input
    };
    if bytes.len() > MAX_CMS_LEN {
        return Err(Error::TooLarge {
            what: "CMS",
            limit: MAX_CMS_LEN,
        });
    }
    let limits = Limits {
        max_len: MAX_CMS_LEN,
        ..Limits::default()
    };
    // One walk for the DER form and the SET bound (issue 17: the second walk over input
    // that is already DER was ~4 % of a warm verification).
    let der = ber::to_der_set_limited(bytes, limits, MAX_SET_ELEMENTS)?;
    parse_der(&der)
}

fn parse_der(der: &[u8]) -> Result<SignedDataMessage> {
    const WHAT: &str = "CMS ContentInfo";
    let (ci, _) = ber::read_tlv(der)?;
    expect_tag(&ci, 0x30, WHAT, "a SEQUENCE")?;
    let mut kids = ber::children(ci.content);
    let ct = next_child(&mut kids, WHAT, "contentType")?;
    let content_type = ObjectIdentifier::from_der(ct.raw).map_err(|e| Error::malformed(WHAT, e))?;
    if content_type != oid::SIGNED_DATA {
        return Err(Error::malformed(
            WHAT,
            format!(
                "wrong content type {} ({}), expected id-signedData",
                content_type,
                crypto::algorithm_name(&content_type)
            ),
        ));
    }
    let explicit = next_child(&mut kids, WHAT, "content")?;
    expect_tag(&explicit, 0xA0, WHAT, "[0] EXPLICIT content")?;
    if kids.next().is_some() {
        return Err(Error::malformed(
            WHAT,
            "unexpected element after the content",
        ));
    }
    let (sd, rest) = ber::read_tlv(explicit.content)?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            WHAT,
            "unexpected data after the SignedData",
        ));
    }
    parse_signed_data(&sd)
}

fn parse_signed_data(sd: &Tlv<'_>) -> Result<SignedDataMessage> {
    const WHAT: &str = "CMS SignedData";
    expect_tag(sd, 0x30, WHAT, "a SEQUENCE")?;
    let mut warnings = Vec::new();
    let mut kids = ber::children(sd.content).peekable();
    let mut next = |field: &str| -> Result<Tlv<'_>> {
        match kids.next() {
            Some(r) => r,
            None => Err(Error::malformed(WHAT, format!("missing {field}"))),
        }
    };

    let version = CmsVersion::from_der(next("version")?.raw)
        .map_err(|e| Error::malformed(WHAT, format!("version: {e}")))?;

    let digest_set = next("digestAlgorithms")?;
    expect_tag(&digest_set, 0x31, WHAT, "digestAlgorithms SET")?;
    let mut digest_ids: Vec<AlgorithmIdentifierOwned> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for d in ber::children(digest_set.content) {
        let d = d?;
        if !seen.insert(d.raw) {
            continue;
        }
        digest_ids.push(
            AlgorithmIdentifierOwned::from_der(d.raw)
                .map_err(|e| Error::malformed(WHAT, format!("digest algorithm: {e}")))?,
        );
    }

    let encap = EncapsulatedContentInfo::from_der(next("encapContentInfo")?.raw)
        .map_err(|e| Error::malformed(WHAT, format!("encapContentInfo: {e}")))?;

    // Optional [0] certificates and [1] crls, then the signerInfos SET.
    let mut element = next("signerInfos")?;
    let mut certificates = Vec::new();
    let mut cert_choices = Vec::new();
    if element.tag == 0xA0 {
        parse_certificates(
            &element,
            &mut certificates,
            &mut cert_choices,
            &mut warnings,
        )?;
        element = next("signerInfos")?;
    }
    let mut crls = None;
    if element.tag == 0xA1 {
        crls = parse_crls(&element, &mut warnings)?;
        element = next("signerInfos")?;
    }
    expect_tag(&element, 0x31, WHAT, "signerInfos SET")?;
    if kids.next().is_some() {
        return Err(Error::malformed(
            WHAT,
            "unexpected element after signerInfos",
        ));
    }

    let mut signers = Vec::new();
    for s in ber::children(element.content) {
        let s = s?;
        signers.push(parse_signer(&s)?);
    }
    if signers.is_empty() {
        return Err(Error::malformed(WHAT, "no signer"));
    }

    let content = encap.econtent.as_ref().map(|c| {
        if c.tag() != der::Tag::OctetString {
            // PKCS#7 v1.5 allowed any type here; RFC 5652 §5.2.1 digests the
            // contents octets of the value, which is what `value()` is.
            warnings.push(format!(
                "the encapsulated content is a {} rather than an OCTET STRING",
                c.tag()
            ));
        }
        c.value().to_vec()
    });

    let mut digest_algorithms: Vec<DigestAlgorithm> = Vec::new();
    let signer_digests = signers.iter().map(|s| &s.info.digest_alg.oid);
    for oid in digest_ids.iter().map(|d| &d.oid).chain(signer_digests) {
        if let Some(d) = DigestAlgorithm::from_oid(oid)
            && !digest_algorithms.contains(&d)
        {
            digest_algorithms.push(d);
        }
    }

    let signed_data = SignedData {
        version,
        digest_algorithms: sorted_set(digest_ids, "digestAlgorithms")?,
        encap_content_info: encap.clone(),
        certificates: if cert_choices.is_empty() {
            None
        } else {
            Some(CertificateSet(sorted_set(cert_choices, "certificates")?))
        },
        crls,
        signer_infos: SignerInfos(sorted_set(
            signers.iter().map(|s| s.info.clone()).collect(),
            "signerInfos",
        )?),
    };

    Ok(SignedDataMessage {
        signed_data,
        econtent_type: encap.econtent_type,
        content,
        certificates,
        digest_algorithms,
        signers,
        warnings,
    })
}

fn parse_certificates(
    set: &Tlv<'_>,
    certificates: &mut Vec<Cert>,
    choices: &mut Vec<CertificateChoices>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for c in ber::children(set.content) {
        let c = c?;
        if !seen.insert(c.raw) {
            warnings.push("a certificate is included twice; the copy was ignored".into());
            continue;
        }
        match c.tag {
            0x30 => match Cert::from_der(c.raw) {
                Ok(cert) => {
                    choices.push(CertificateChoices::Certificate(cert.x509().clone()));
                    certificates.push(cert);
                }
                Err(e) => warnings.push(format!("an embedded certificate was ignored: {e}")),
            },
            0xA3 => {
                if let Ok(other) = CertificateChoices::from_der(c.raw) {
                    choices.push(other);
                }
            }
            // Extended and attribute certificates: not certificates of a signer.
            _ => {}
        }
    }
    Ok(())
}

fn parse_crls(set: &Tlv<'_>, warnings: &mut Vec<String>) -> Result<Option<RevocationInfoChoices>> {
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut out = Vec::new();
    for c in ber::children(set.content) {
        let c = c?;
        if !seen.insert(c.raw) {
            continue;
        }
        match RevocationInfoChoice::from_der(c.raw) {
            Ok(r) => out.push(r),
            Err(e) => warnings.push(format!("embedded revocation data was ignored: {e}")),
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(RevocationInfoChoices(sorted_set(out, "crls")?)))
}

fn parse_signer(s: &Tlv<'_>) -> Result<Signer> {
    const WHAT: &str = "CMS SignerInfo";
    let info = SignerInfo::from_der(s.raw).map_err(|e| Error::malformed(WHAT, e))?;
    let mut signed_attrs_raw = None;
    for k in ber::children(s.content) {
        let k = k?;
        // [0] IMPLICIT SignedAttributes; the sid's [0] SubjectKeyIdentifier
        // is primitive (0x80), so the constructed tag is unambiguous.
        if k.tag == 0xA0 {
            let mut raw = k.raw.to_vec();
            if let Some(first) = raw.first_mut() {
                *first = 0x31;
            }
            signed_attrs_raw = Some(raw);
            break;
        }
    }
    Ok(Signer {
        info,
        signed_attrs_raw,
    })
}

/// Builds a SET OF in DER order: an O(n log n) sort first, so that `der`'s
/// own insertion sort has nothing left to do.
fn sorted_set<T: DerOrd + Clone>(mut items: Vec<T>, what: &str) -> Result<SetOfVec<T>> {
    items.sort_by(|a, b| a.der_cmp(b).unwrap_or(Ordering::Equal));
    SetOfVec::try_from(items)
        .map_err(|e| Error::malformed("CMS SignedData", format!("{what}: {e}")))
}

fn expect_tag(tlv: &Tlv<'_>, tag: u8, what: &'static str, expected: &str) -> Result<()> {
    if tlv.tag == tag {
        Ok(())
    } else {
        Err(Error::malformed(
            what,
            format!("expected {expected}, found tag 0x{:02x}", tlv.tag),
        ))
    }
}

fn next_child<'a>(
    kids: &mut ber::Children<'a>,
    what: &'static str,
    field: &str,
) -> Result<Tlv<'a>> {
    kids.next()
        .unwrap_or_else(|| Err(Error::malformed(what, format!("missing {field}"))))
}

fn looks_like_pem(input: &[u8]) -> bool {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    input
        .get(start..)
        .is_some_and(|rest| rest.starts_with(b"-----BEGIN "))
}

/// Decodes a PEM CMS leniently: any line length, CRLF, surrounding text.
fn decode_pem(input: &[u8]) -> Result<Vec<u8>> {
    const WHAT: &str = "PEM CMS";
    let text = std::str::from_utf8(input).map_err(|e| Error::malformed(WHAT, e))?;
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| Error::malformed(WHAT, "no BEGIN line"))?;
    let after_begin = text.get(begin + 11..).unwrap_or_default();
    let label_end = after_begin
        .find("-----")
        .ok_or_else(|| Error::malformed(WHAT, "unterminated BEGIN line"))?;
    let label = after_begin.get(..label_end).unwrap_or_default();
    if !matches!(label, "CMS" | "PKCS7" | "PKCS #7 SIGNED DATA") {
        return Err(Error::malformed(
            WHAT,
            format!("label {label:?}, expected CMS or PKCS7"),
        ));
    }
    let body_start = label_end + 5;
    let body = after_begin.get(body_start..).unwrap_or_default();
    let end_marker = format!("-----END {label}-----");
    let body_end = body
        .find(&end_marker)
        .ok_or_else(|| Error::malformed(WHAT, format!("no {end_marker} line")))?;
    base64_decode(body.get(..body_end).unwrap_or_default())
        .map_err(|reason| Error::malformed(WHAT, reason))
}

fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            c => return Err(format!("invalid base64 character {:?}", char::from(c))),
        };
        if padding > 0 {
            return Err("base64 data after padding".into());
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || bits >= 6 {
        return Err("truncated base64".into());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_pem() {
        assert_eq!(base64_decode("aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbA==").unwrap(), b"hell");
        assert!(base64_decode("aGVsbA=x").is_err());
        assert!(base64_decode("a").is_err());
        assert!(base64_decode("a$==").is_err());
        let pem = b"\n-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n";
        assert!(looks_like_pem(pem));
        assert_eq!(decode_pem(pem).unwrap(), [0x30, 0x00]);
        assert!(
            decode_pem(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----").is_err()
        );
        assert!(decode_pem(b"-----BEGIN CMS-----\nMAA=\n").is_err());
    }

    #[test]
    fn wrong_content_type_and_garbage() {
        // ContentInfo with id-data.
        let data_ci = [
            0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x04, 0x04, 0x02, 0x68, 0x69,
        ];
        match parse(&data_ci) {
            Err(Error::Malformed { reason, .. }) => {
                assert!(reason.contains("wrong content type"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        for input in [&b""[..], b"\x30\x00", b"garbage", b"\x30\x80\x00\x00"] {
            assert!(parse(input).is_err());
        }
    }

    #[test]
    fn ess_default_hash_is_sha256() {
        let id = EssCertIdV2 {
            hash_algorithm: default_ess_hash(),
            cert_hash: OctetString::new(vec![1; 32]).unwrap(),
            issuer_serial: None,
        };
        let der = id.to_der().unwrap();
        // DER omits the default algorithm: SEQUENCE { OCTET STRING }.
        assert_eq!(&der[..4], &[0x30, 0x22, 0x04, 0x20]);
        let back = EssCertIdV2::from_der(&der).unwrap();
        assert_eq!(back.hash_algorithm.oid, DigestAlgorithm::Sha256.oid());
    }
}

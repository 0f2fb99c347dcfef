//! CAdES-BES CMS SignedData builder (RFC 5652, RFC 5035, ETSI EN 319 122-1 baseline B).
//!
//! Signing is two-phase, because the private keys live in an HSM and this
//! module does no private-key cryptography:
//!
//! 1. [`prepare`] checks the request, hashes the content and encodes the
//!    signed attributes (content-type, message-digest, signing-time, ESS
//!    signing-certificate-v2). [`PreparedSignature::to_be_signed`] is the DER
//!    `SET OF Attribute` (tag `0x31`) that the signature covers;
//!    [`PreparedSignature::digest_to_sign`] is its hash, which the HSM signs
//!    as a prehashed input.
//! 2. [`PreparedSignature::finish`] takes the signature value and returns the
//!    DER `ContentInfo`; in the SignerInfo the same attributes appear with the
//!    `[0] IMPLICIT` tag (`0xA0`), byte for byte otherwise.
//!
//! What is written matches `openssl cms -sign -cades`: SignerInfo version 1
//! with issuerAndSerialNumber; SHA-2 digest identifiers without parameters;
//! `rsaEncryption` with NULL parameters for PKCS#1 v1.5, `id-RSASSA-PSS` with
//! full parameters (hash and MGF1 hash with NULL parameters, salt as long as
//! the hash, default trailer) for PSS, `ecdsa-with-SHA*` without parameters
//! for ECDSA. The certificates are the signer's then the chain, as a DER
//! `SET OF` (so sorted by encoding, duplicates dropped).
//!
//! "Now" is a parameter ([`CadesRequest::signing_time`]).
//!
//! Co-signatures (a personal then an organisation signature over the same
//! document, two SignerInfos in one SignedData) are assembled with
//! [`add_signers`], which merges two CMS made separately.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, OctetString, SetOfVec, UintRef, UtcTime};
use der::{Any, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::{OffsetDateTime, UtcOffset};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::time::Time;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};

use crate::ber::{self, Limits, Tlv};
use crate::cms::{EssCertIdV2, IssuerSerial, MAX_CMS_LEN, SigningCertificateV2, oid as cms_oid};
use crate::crypto::{self, AlgorithmPolicy, DigestAlgorithm, oid as alg_oid};

mod merge;
pub mod unsigned;

pub use merge::add_signers;
pub use unsigned::{ValidationData, add_signature_timestamp, add_validation_data};

/// The signature scheme the HSM will use, with its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 (written as `rsaEncryption`, as openssl does).
    RsaPkcs1(DigestAlgorithm),
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash.
    RsaPss(DigestAlgorithm),
    /// ECDSA; the signature value is a DER `ECDSA-Sig-Value`
    /// (see [`ecdsa_raw_to_der`] for the PKCS#11 `r || s` form).
    Ecdsa(DigestAlgorithm),
}

impl SigningAlgorithm {
    /// The hash the signature covers.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            Self::RsaPkcs1(d) | Self::RsaPss(d) | Self::Ecdsa(d) => d,
        }
    }

    /// "RSA PKCS#1 v1.5 SHA-256", "RSASSA-PSS SHA-256", "ECDSA SHA-256".
    pub fn name(self) -> String {
        match self {
            Self::RsaPkcs1(d) => format!("RSA PKCS#1 v1.5 {d}"),
            Self::RsaPss(d) => format!("RSASSA-PSS {d}"),
            Self::Ecdsa(d) => format!("ECDSA {d}"),
        }
    }
}

impl std::fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// What is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// The content, hashed and embedded (encapsulated) in the SignedData.
    Attached(&'a [u8]),
    /// The content, hashed but not embedded (detached signature).
    Detached(&'a [u8]),
    /// The content's digest, computed by the caller with the request's
    /// digest algorithm: a detached signature.
    Digest(&'a [u8]),
}

/// A CAdES-BES signing request.
#[derive(Clone, Debug)]
pub struct CadesRequest<'a> {
    /// Digest of the content and of the signed attributes; must be the
    /// signature algorithm's hash. SHA-1 is refused.
    pub digest_algorithm: DigestAlgorithm,
    /// The content, or its digest.
    pub content: Content<'a>,
    /// The signer's certificate, DER.
    pub signer_certificate: &'a [u8],
    /// More certificates to embed (the chain), DER.
    pub chain: &'a [Vec<u8>],
    /// The signing-time attribute ("now", as a parameter). Sub-seconds are
    /// dropped; UTCTime for 1950–2049, GeneralizedTime from 2050 (RFC 5652 §11.3).
    /// `None` omits the attribute: PAdES baseline (ETSI EN 319 142-1 §5.2.1)
    /// forbids it, the time being the signature dictionary's `/M`.
    pub signing_time: Option<OffsetDateTime>,
    /// The signature scheme; must fit the certificate's key.
    pub signature_algorithm: SigningAlgorithm,
    /// eContentType; `None` is id-data.
    pub content_type: Option<ObjectIdentifier>,
    /// The commitment-type indication signed attribute (what the signer commits to: the
    /// legal form, `crate::cms::commitment`); `None` omits it.
    pub commitment_type: Option<crate::cms::commitment::CommitmentType>,
}

/// Why a signature cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// [`Content::Digest`] with a length that is not the digest algorithm's.
    #[error("a {algorithm} digest has {expected} bytes, {actual} given")]
    DigestLength {
        /// The request's digest algorithm.
        algorithm: DigestAlgorithm,
        /// Its output length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The digest algorithm is not accepted for new signatures (SHA-1).
    #[error("{0} is not accepted for new signatures")]
    WeakDigest(DigestAlgorithm),
    /// The request's digest algorithm is not the signature algorithm's hash.
    #[error("the digest algorithm is {digest} but the signature algorithm is {signature}")]
    DigestMismatch {
        /// The request's digest algorithm.
        digest: DigestAlgorithm,
        /// The signature algorithm asked for.
        signature: SigningAlgorithm,
    },
    /// The signer certificate is not a DER X.509 certificate.
    #[error("the signer certificate is not a DER X.509 certificate: {0}")]
    SignerCertificate(String),
    /// A chain certificate is not a DER X.509 certificate.
    #[error("chain certificate #{index} is not a DER X.509 certificate: {reason}")]
    ChainCertificate {
        /// Index in [`CadesRequest::chain`].
        index: usize,
        /// Why.
        reason: String,
    },
    /// The signature algorithm does not fit the certificate's key (RSA vs EC).
    #[error("{algorithm} cannot be used with the signer certificate's {key} key")]
    KeyMismatch {
        /// The signature algorithm asked for.
        algorithm: SigningAlgorithm,
        /// The key type of the certificate ("RSA", "EC", or an OID name).
        key: String,
    },
    /// The signing time cannot be encoded (before 1970 or after 9999).
    #[error("signing time {0} cannot be encoded")]
    SigningTime(String),
    /// [`PreparedSignature::finish`] was given an empty signature value.
    #[error("the signature value is empty")]
    EmptySignature,
    /// The signature value has the wrong shape for the algorithm (RSA length
    /// other than the modulus length, ECDSA not a DER `ECDSA-Sig-Value`).
    #[error("malformed signature value: {0}")]
    MalformedSignature(String),
    /// [`PreparedSignature::check_signature`]: the value does not verify with
    /// the certificate's key.
    #[error("the signature value does not verify with the signer certificate's key: {0}")]
    SignatureInvalid(String),
    /// DER encoding failed (a bug or an absurdly large input).
    #[error("encoding the CMS: {0}")]
    Encoding(String),
    /// [`add_signers`]: an input is not a CMS `ContentInfo` holding a
    /// SignedData (DER or BER).
    #[error("the {which} CMS cannot be merged: {reason}")]
    InvalidCms {
        /// `"existing"` or `"other"`.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// [`add_signers`]: the two SignedData have different eContentTypes.
    #[error("the existing CMS signs content type {existing}, the other {other}")]
    ContentTypeMismatch {
        /// eContentType of the existing CMS.
        existing: ObjectIdentifier,
        /// eContentType of the other CMS.
        other: ObjectIdentifier,
    },
    /// [`add_signers`]: the two CMS are not over the same content (different
    /// encapsulated contents, or a message-digest attribute that does not
    /// match the content or the other signers' message digests).
    #[error("the signatures are not over the same content: {0}")]
    ContentMismatch(String),
    /// [`add_signers`]: a signer of the other CMS has no message-digest
    /// attribute, so its content cannot be compared (detached signatures).
    #[error("signer #{index} of the other CMS has no message-digest signed attribute")]
    NoMessageDigest {
        /// Index of the SignerInfo, in encoded order.
        index: usize,
    },
}

impl From<BuildError> for crate::Error {
    fn from(e: BuildError) -> Self {
        crate::Error::InvalidRequest(e.to_string())
    }
}

fn enc(e: der::Error) -> BuildError {
    BuildError::Encoding(e.to_string())
}

/// RSASSA-PSS-params (RFC 4055 §3.1).
#[derive(Clone, Debug, Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
}

/// ECDSA-Sig-Value (RFC 5480 / SEC 1).
#[derive(Clone, Debug, Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// DigestInfo (RFC 8017 §9.2).
#[derive(Clone, Debug, Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// The key type of a certificate, as far as signing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    /// rsaEncryption: PKCS#1 v1.5 or PSS.
    Rsa,
    /// id-RSASSA-PSS: PSS only.
    RsaPssOnly,
    /// id-ecPublicKey.
    Ec,
}

/// A signature ready for the HSM: the encoded signed attributes and everything
/// else of the SignedData, waiting for the signature value.
#[derive(Clone)]
pub struct PreparedSignature {
    version: CmsVersion,
    digest_algorithm: DigestAlgorithm,
    signing_algorithm: SigningAlgorithm,
    encap: EncapsulatedContentInfo,
    certificates: CertificateSet,
    signer_info: SignerInfo,
    to_be_signed: Vec<u8>,
    message_digest: Vec<u8>,
    spki: SubjectPublicKeyInfoOwned,
    rsa_signature_len: Option<usize>,
}

impl std::fmt::Debug for PreparedSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSignature")
            .field("signing_algorithm", &self.signing_algorithm)
            .field("econtent_type", &self.encap.econtent_type)
            .field("attached", &self.encap.econtent.is_some())
            .field("message_digest", &hex::encode(&self.message_digest))
            .field("to_be_signed_len", &self.to_be_signed.len())
            .finish_non_exhaustive()
    }
}

/// Checks the request, hashes the content and encodes the signed attributes.
pub fn prepare(req: CadesRequest<'_>) -> Result<PreparedSignature, BuildError> {
    let digest_algorithm = req.digest_algorithm;
    let alg = req.signature_algorithm;
    if digest_algorithm == DigestAlgorithm::Sha1 {
        return Err(BuildError::WeakDigest(digest_algorithm));
    }
    if alg.digest() != digest_algorithm {
        return Err(BuildError::DigestMismatch {
            digest: digest_algorithm,
            signature: alg,
        });
    }

    let signer = parse_der_cert(req.signer_certificate).map_err(BuildError::SignerCertificate)?;
    let spki = signer.tbs_certificate.subject_public_key_info.clone();
    let key = key_kind(&spki);
    let fits = matches!(
        (&key, alg),
        (
            Ok(KeyKind::Rsa),
            SigningAlgorithm::RsaPkcs1(_) | SigningAlgorithm::RsaPss(_)
        ) | (Ok(KeyKind::RsaPssOnly), SigningAlgorithm::RsaPss(_))
            | (Ok(KeyKind::Ec), SigningAlgorithm::Ecdsa(_))
    );
    if !fits {
        let key = match key {
            Ok(KeyKind::Rsa) => "RSA".to_owned(),
            Ok(KeyKind::RsaPssOnly) => "RSASSA-PSS".to_owned(),
            Ok(KeyKind::Ec) => "EC".to_owned(),
            Err(other) => other,
        };
        return Err(BuildError::KeyMismatch {
            algorithm: alg,
            key,
        });
    }
    let rsa_signature_len = match &key {
        Ok(KeyKind::Rsa | KeyKind::RsaPssOnly) => {
            crypto::rsa_modulus_bits(&spki).map(|bits| bits.div_ceil(8))
        }
        _ => None,
    };

    let message_digest = match req.content {
        Content::Attached(c) | Content::Detached(c) => digest_algorithm.digest(c),
        Content::Digest(d) => {
            let expected = digest_algorithm.output_len();
            if d.len() != expected {
                return Err(BuildError::DigestLength {
                    algorithm: digest_algorithm,
                    expected,
                    actual: d.len(),
                });
            }
            d.to_vec()
        }
    };
    let econtent_type = req.content_type.unwrap_or(cms_oid::DATA);
    let econtent = match req.content {
        Content::Attached(c) => {
            Some(Any::encode_from(&OctetString::new(c).map_err(enc)?).map_err(enc)?)
        }
        Content::Detached(_) | Content::Digest(_) => None,
    };

    // The signed attributes.
    let signing_time = req.signing_time.map(encode_time).transpose()?;
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: DigestAlgorithm::Sha256.oid(),
                parameters: None,
            },
            cert_hash: OctetString::new(crypto::sha256(req.signer_certificate).to_vec())
                .map_err(enc)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    signer.tbs_certificate.issuer.clone(),
                )],
                serial_number: signer.tbs_certificate.serial_number.clone(),
                issuer_uid: None,
            }),
        }],
        policies: None,
    };
    let mut attrs = vec![
        attribute(cms_oid::CONTENT_TYPE, Any::encode_from(&econtent_type))?,
        attribute(
            cms_oid::MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(message_digest.clone()).map_err(enc)?),
        )?,
    ];
    if let Some(signing_time) = &signing_time {
        attrs.push(attribute(
            cms_oid::SIGNING_TIME,
            Any::encode_from(signing_time),
        )?);
    }
    attrs.push(attribute(
        cms_oid::SIGNING_CERTIFICATE_V2,
        Any::encode_from(&ess),
    )?);
    if let Some(t) = req.commitment_type {
        attrs.push(attribute(
            crate::cms::commitment::ID_AA_ETS_COMMITMENT_TYPE,
            crate::cms::commitment::encode(t),
        )?);
    }
    // DER SET OF: elements sorted by their encodings (X.690 §11.6).
    let mut encoded = attrs
        .iter()
        .map(|a| a.to_der().map_err(enc))
        .collect::<Result<Vec<_>, _>>()?;
    encoded.sort();
    let body: Vec<u8> = encoded.concat();
    let mut to_be_signed = Vec::with_capacity(body.len() + 6);
    to_be_signed.push(0x31);
    der::Length::try_from(body.len())
        .and_then(|l| l.encode_to_vec(&mut to_be_signed).map(|_| ()))
        .map_err(enc)?;
    to_be_signed.extend_from_slice(&body);
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(attrs).map_err(enc)?;
    // What der will write into the SignerInfo must be exactly what is signed.
    if signed_attrs.to_der().map_err(enc)? != to_be_signed {
        return Err(BuildError::Encoding(
            "the signed attributes do not encode in DER order".into(),
        ));
    }

    // The certificates: the signer's, then the chain, without duplicates.
    let mut seen: Vec<&[u8]> = vec![req.signer_certificate];
    let mut certs = vec![CertificateChoices::Certificate(signer.clone())];
    for (index, der) in req.chain.iter().enumerate() {
        let c =
            parse_der_cert(der).map_err(|reason| BuildError::ChainCertificate { index, reason })?;
        if !seen.contains(&der.as_slice()) {
            seen.push(der);
            certs.push(CertificateChoices::Certificate(c));
        }
    }
    let certificates = CertificateSet::try_from(certs).map_err(enc)?;

    let digest_id = AlgorithmIdentifierOwned {
        oid: digest_algorithm.oid(),
        parameters: None,
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_id,
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signature_algorithm_id(alg)?,
        signature: OctetString::new(Vec::new()).map_err(enc)?,
        unsigned_attrs: None,
    };
    // RFC 5652 §5.1: version 3 when eContentType is not id-data.
    let version = if econtent_type == cms_oid::DATA {
        CmsVersion::V1
    } else {
        CmsVersion::V3
    };
    Ok(PreparedSignature {
        version,
        digest_algorithm,
        signing_algorithm: alg,
        encap: EncapsulatedContentInfo {
            econtent_type,
            econtent,
        },
        certificates,
        signer_info,
        to_be_signed,
        message_digest,
        spki,
        rsa_signature_len,
    })
}

impl PreparedSignature {
    /// DER of the signed attributes as a `SET OF` (tag `0x31`): what the
    /// signature covers.
    pub fn to_be_signed(&self) -> &[u8] {
        &self.to_be_signed
    }

    /// The hash of [`Self::to_be_signed`] with the digest algorithm: what the
    /// HSM signs (prehashed: `CKM_ECDSA`, PSS with the hash given, ...).
    pub fn digest_to_sign(&self) -> Vec<u8> {
        self.digest_algorithm.digest(&self.to_be_signed)
    }

    /// The DER `DigestInfo` of [`Self::digest_to_sign`] (hash OID with NULL
    /// parameters, RFC 8017 §9.2): the input of a raw PKCS#1 v1.5 signing
    /// mechanism (`CKM_RSA_PKCS`), which does not add it itself.
    pub fn pkcs1_digest_info(&self) -> Result<Vec<u8>, BuildError> {
        DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid: self.digest_algorithm.oid(),
                parameters: Some(Any::null()),
            },
            digest: OctetString::new(self.digest_to_sign()).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }

    /// The digest algorithm (content and signed attributes).
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }

    /// The signature algorithm.
    pub fn signing_algorithm(&self) -> SigningAlgorithm {
        self.signing_algorithm
    }

    /// The message-digest attribute: the digest of the content.
    pub fn message_digest(&self) -> &[u8] {
        &self.message_digest
    }

    /// Verifies `signature` over the signed attributes with the signer
    /// certificate's key: an optional guard against an HSM slot holding
    /// another key than the certificate's. [`Self::finish`] does not call it.
    pub fn check_signature(&self, signature: &[u8]) -> Result<(), BuildError> {
        crypto::verify_signature(
            &self.spki,
            &self.signer_info.signature_algorithm,
            Some(self.digest_algorithm),
            &self.to_be_signed,
            signature,
            AlgorithmPolicy::default(),
        )
        .map(|_| ())
        .map_err(|e| BuildError::SignatureInvalid(e.to_string()))
    }

    /// The DER `ContentInfo` with the signature value. The value is checked
    /// for shape (not empty, RSA as long as the modulus, ECDSA a DER
    /// `ECDSA-Sig-Value`), not verified: see [`Self::check_signature`].
    pub fn finish(self, signature: &[u8]) -> Result<Vec<u8>, BuildError> {
        if signature.is_empty() {
            return Err(BuildError::EmptySignature);
        }
        match self.signing_algorithm {
            SigningAlgorithm::RsaPkcs1(_) | SigningAlgorithm::RsaPss(_) => {
                if let Some(len) = self.rsa_signature_len
                    && signature.len() != len
                {
                    return Err(BuildError::MalformedSignature(format!(
                        "an RSA signature with this key has {len} bytes, {} given",
                        signature.len()
                    )));
                }
            }
            SigningAlgorithm::Ecdsa(_) => {
                EcdsaSig::from_der(signature).map_err(|e| {
                    BuildError::MalformedSignature(format!(
                        "an ECDSA signature must be a DER ECDSA-Sig-Value \
                         (convert PKCS#11 r||s with ecdsa_raw_to_der): {e}"
                    ))
                })?;
            }
        }
        let mut signer_info = self.signer_info;
        signer_info.signature = OctetString::new(signature).map_err(enc)?;
        let signed_data = SignedData {
            version: self.version,
            digest_algorithms: SetOfVec::try_from(vec![signer_info.digest_alg.clone()])
                .map_err(enc)?,
            encap_content_info: self.encap,
            certificates: Some(self.certificates),
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer_info]).map_err(enc)?,
        };
        ContentInfo {
            content_type: cms_oid::SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }
}

/// Converts a raw ECDSA signature `r || s` (PKCS#11 `CKM_ECDSA`, both halves
/// as long as the curve order) into a DER `ECDSA-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, BuildError> {
    if raw.is_empty() {
        return Err(BuildError::EmptySignature);
    }
    if !raw.len().is_multiple_of(2) {
        return Err(BuildError::MalformedSignature(format!(
            "a raw ECDSA signature r||s has an even length, not {}",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let strip = |x: &'_ [u8]| -> Vec<u8> {
        let start = x.iter().position(|b| *b != 0).unwrap_or(x.len());
        x.get(start..).unwrap_or_default().to_vec()
    };
    let (r, s) = (strip(r), strip(s));
    if r.is_empty() || s.is_empty() {
        return Err(BuildError::MalformedSignature(
            "ECDSA r and s cannot be zero".into(),
        ));
    }
    EcdsaSig {
        r: UintRef::new(&r).map_err(enc)?,
        s: UintRef::new(&s).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

/// At most this many decoded certificates are remembered (a signer has a handful of keys,
/// each with its certificate and chain); the memo is emptied when full.
const CERT_MEMO_MAX: usize = 64;

/// Decodes a certificate and checks that it re-encodes to the same bytes
/// (the ESS hash is of the given bytes; the CMS embeds the re-encoding).
///
/// Why a memo: a signer sends the same few certificates (its key's and the chain) with
/// every signature, and decoding plus re-encoding them was about a quarter of the
/// instructions of a P-256 signature (docs/BENCHMARKS.md, "kyso bench sign"). It is keyed by
/// the exact bytes, so a certificate is only ever reused for the very bytes it was decoded
/// from; a poisoned lock only means decoding again.
fn parse_der_cert(der: &[u8]) -> Result<Certificate, String> {
    static MEMO: OnceLock<Mutex<HashMap<Vec<u8>, Certificate>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(cert) = memo.lock().ok().and_then(|m| m.get(der).cloned()) {
        return Ok(cert);
    }
    let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
    let again = cert.to_der().map_err(|e| e.to_string())?;
    if again != der {
        return Err("it is BER, or not canonically encoded".into());
    }
    if let Ok(mut m) = memo.lock() {
        if m.len() >= CERT_MEMO_MAX {
            m.clear();
        }
        m.insert(der.to_vec(), cert.clone());
    }
    Ok(cert)
}

fn key_kind(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, String> {
    match spki.algorithm.oid {
        alg_oid::RSA_ENCRYPTION => Ok(KeyKind::Rsa),
        alg_oid::RSASSA_PSS => Ok(KeyKind::RsaPssOnly),
        alg_oid::EC_PUBLIC_KEY => Ok(KeyKind::Ec),
        other => Err(crypto::algorithm_name(&other)),
    }
}

fn attribute(oid: ObjectIdentifier, value: der::Result<Any>) -> Result<Attribute, BuildError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value.map_err(enc)?]).map_err(enc)?,
    })
}

/// signingTime: UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5652
/// §11.3), in UTC, whole seconds.
fn encode_time(t: OffsetDateTime) -> Result<Time, BuildError> {
    let u = t.to_offset(UtcOffset::UTC);
    let bad = |e: &dyn std::fmt::Display| BuildError::SigningTime(format!("{t}: {e}"));
    let year = u16::try_from(u.year()).map_err(|e| bad(&e))?;
    let dt = der::DateTime::new(
        year,
        u8::from(u.month()),
        u.day(),
        u.hour(),
        u.minute(),
        u.second(),
    )
    .map_err(|e| bad(&e))?;
    if (1950..=2049).contains(&year) {
        Ok(Time::UtcTime(
            UtcTime::from_date_time(dt).map_err(|e| bad(&e))?,
        ))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

fn signature_algorithm_id(alg: SigningAlgorithm) -> Result<AlgorithmIdentifierOwned, BuildError> {
    let hash_with_null = |d: DigestAlgorithm| AlgorithmIdentifierOwned {
        oid: d.oid(),
        parameters: Some(Any::null()),
    };
    Ok(match alg {
        SigningAlgorithm::RsaPkcs1(_) => AlgorithmIdentifierOwned {
            oid: alg_oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        SigningAlgorithm::RsaPss(d) => {
            let mgf = AlgorithmIdentifierOwned {
                oid: alg_oid::MGF1,
                parameters: Some(Any::encode_from(&hash_with_null(d)).map_err(enc)?),
            };
            let salt =
                u32::try_from(d.output_len()).map_err(|e| BuildError::Encoding(e.to_string()))?;
            let params = PssParams {
                hash: Some(hash_with_null(d)),
                mask_gen: Some(mgf),
                salt_len: Some(salt),
            };
            AlgorithmIdentifierOwned {
                oid: alg_oid::RSASSA_PSS,
                parameters: Some(Any::encode_from(&params).map_err(enc)?),
            }
        }
        SigningAlgorithm::Ecdsa(d) => AlgorithmIdentifierOwned {
            oid: match d {
                DigestAlgorithm::Sha256 => alg_oid::ECDSA_WITH_SHA256,
                DigestAlgorithm::Sha384 => alg_oid::ECDSA_WITH_SHA384,
                DigestAlgorithm::Sha512 => alg_oid::ECDSA_WITH_SHA512,
                DigestAlgorithm::Sha1 => return Err(BuildError::WeakDigest(d)),
            },
            parameters: None,
        },
    })
}

//! Digests and signature verification with aws-lc-rs.
//!
//! Verification takes the key and the algorithm identifier as they stand in
//! the certificate or SignerInfo, and maps them onto aws-lc-rs algorithms.
//! Anything not mapped is `Unsupported`, never silently accepted.

use aws_lc_rs::{digest, signature};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc5912::ID_SHA_1};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A readable name for an OID (algorithms, attributes, extensions).
pub fn algorithm_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(str::to_owned)
        .unwrap_or_else(|| oid.to_string())
}

/// The digest algorithms kyso knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-1: only for legacy CA certificates and OCSP CertIDs.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// From a digest algorithm OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            ID_SHA_1 => Some(Self::Sha1),
            rfc5912::ID_SHA_256 => Some(Self::Sha256),
            rfc5912::ID_SHA_384 => Some(Self::Sha384),
            rfc5912::ID_SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// "SHA-256", ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.aws().output_len()
    }

    fn aws(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.aws(), data).as_ref().to_vec()
    }

    /// An incremental digester, for content that arrives in pieces.
    pub fn digester(self) -> Digester {
        Digester(digest::Context::new(self.aws()))
    }
}

/// Incremental digest.
#[derive(Clone)]
pub struct Digester(digest::Context);

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digester")
    }
}

impl Digester {
    /// Adds data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

/// Which algorithms a verification accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Accept SHA-1 (set only for CA certificates under configured legacy roots).
    pub allow_sha1: bool,
    /// Smallest RSA modulus accepted, bits.
    pub min_rsa_bits: usize,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        Self {
            allow_sha1: false,
            min_rsa_bits: 2048,
        }
    }
}

/// The algorithm a signature was verified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureAlgorithm {
    /// RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA.
    pub scheme: Scheme,
    /// The digest.
    pub digest: DigestAlgorithm,
}

/// Signature schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1,
    /// RSASSA-PSS (MGF1 with the same digest, salt length = digest length).
    RsaPss,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
}

impl SignatureAlgorithm {
    /// Whether SHA-1 was involved.
    pub fn uses_sha1(self) -> bool {
        self.digest == DigestAlgorithm::Sha1
    }

    /// "RSA PKCS#1 v1.5 SHA-256", ...
    pub fn name(self) -> String {
        let s = match self.scheme {
            Scheme::RsaPkcs1 => "RSA PKCS#1 v1.5",
            Scheme::RsaPss => "RSASSA-PSS",
            Scheme::EcdsaP256 => "ECDSA P-256",
            Scheme::EcdsaP384 => "ECDSA P-384",
        };
        format!("{s} {}", self.digest.name())
    }
}

/// Why a signature did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// The signature does not match the key and message.
    #[error("the signature value does not verify with the key")]
    Invalid,
    /// An algorithm, curve or parameter set kyso does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An algorithm or key too weak for the policy.
    #[error("not accepted: {0}")]
    Weak(String),
}

const RSA_ENCRYPTION: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
const ID_RSASSA_PSS: ObjectIdentifier = rfc5912::ID_RSASSA_PSS;
const ID_MGF1: ObjectIdentifier = rfc5912::ID_MGF_1;
const EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
const SECP256R1: ObjectIdentifier = rfc5912::SECP_256_R_1;
const SECP384R1: ObjectIdentifier = rfc5912::SECP_384_R_1;

/// Verifies `signature` over `message` with the key in `spki`.
///
/// `sig_alg` is the algorithm identifier of the certificate or SignerInfo;
/// where it names only the key type (rsaEncryption, id-ecPublicKey, as CMS
/// signers often do), `digest` supplies the hash.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
    message: &[u8],
    signature: &[u8],
    policy: AlgorithmPolicy,
) -> Result<SignatureAlgorithm, SigError> {
    let alg = resolve(spki, sig_alg, digest)?;
    if alg.uses_sha1() && !policy.allow_sha1 {
        return Err(SigError::Weak(format!(
            "{} (SHA-1 is accepted only on CA certificates under a legacy root)",
            alg.name()
        )));
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Unsupported("public key BIT STRING with unused bits".into()))?;
    let verify_alg: &dyn signature::VerificationAlgorithm = match (alg.scheme, alg.digest) {
        (Scheme::RsaPkcs1 | Scheme::RsaPss, _) => {
            let bits = rsa_modulus_bits(key).ok_or_else(|| {
                SigError::Unsupported("RSA public key that does not parse".into())
            })?;
            if bits < policy.min_rsa_bits {
                return Err(SigError::Weak(format!(
                    "RSA key of {bits} bits (at least {} required)",
                    policy.min_rsa_bits
                )));
            }
            match (alg.scheme, alg.digest) {
                (Scheme::RsaPkcs1, DigestAlgorithm::Sha1) => {
                    &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
                }
                (Scheme::RsaPkcs1, DigestAlgorithm::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
                (Scheme::RsaPkcs1, DigestAlgorithm::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
                (Scheme::RsaPkcs1, DigestAlgorithm::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
                (_, DigestAlgorithm::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
                (_, DigestAlgorithm::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
                (_, DigestAlgorithm::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
                (_, DigestAlgorithm::Sha1) => {
                    return Err(SigError::Unsupported("RSASSA-PSS with SHA-1".into()));
                }
            }
        }
        (Scheme::EcdsaP256, DigestAlgorithm::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (Scheme::EcdsaP256, DigestAlgorithm::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (Scheme::EcdsaP256, DigestAlgorithm::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
        (Scheme::EcdsaP256, DigestAlgorithm::Sha1) => &signature::ECDSA_P256_SHA1_ASN1,
        (Scheme::EcdsaP384, DigestAlgorithm::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (Scheme::EcdsaP384, DigestAlgorithm::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (Scheme::EcdsaP384, DigestAlgorithm::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
        (Scheme::EcdsaP384, DigestAlgorithm::Sha1) => {
            return Err(SigError::Unsupported("ECDSA P-384 with SHA-1".into()));
        }
    };
    signature::UnparsedPublicKey::new(verify_alg, key)
        .verify(message, signature)
        .map_err(|_| SigError::Invalid)?;
    Ok(alg)
}

/// Maps (key, algorithm identifier, digest hint) onto a scheme and digest.
fn resolve(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
) -> Result<SignatureAlgorithm, SigError> {
    let key_oid = spki.algorithm.oid;
    let need_digest = || {
        digest.ok_or_else(|| {
            SigError::Unsupported(format!(
                "{} names no digest and none was given",
                algorithm_name(&sig_alg.oid)
            ))
        })
    };
    let (scheme_family, digest) = match sig_alg.oid {
        RSA_ENCRYPTION => ("rsa", need_digest()?),
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => ("rsa", DigestAlgorithm::Sha1),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => ("rsa", DigestAlgorithm::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => ("rsa", DigestAlgorithm::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => ("rsa", DigestAlgorithm::Sha512),
        ID_RSASSA_PSS => ("pss", pss_digest(sig_alg)?),
        EC_PUBLIC_KEY => ("ec", need_digest()?),
        rfc5912::ECDSA_WITH_SHA_256 => ("ec", DigestAlgorithm::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => ("ec", DigestAlgorithm::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => ("ec", DigestAlgorithm::Sha512),
        other => {
            return Err(SigError::Unsupported(format!(
                "signature algorithm {}",
                algorithm_name(&other)
            )));
        }
    };
    let scheme = match (scheme_family, key_oid) {
        ("rsa", RSA_ENCRYPTION) => Scheme::RsaPkcs1,
        ("pss", RSA_ENCRYPTION | ID_RSASSA_PSS) => Scheme::RsaPss,
        ("ec", EC_PUBLIC_KEY) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(SECP256R1) => Scheme::EcdsaP256,
                Some(SECP384R1) => Scheme::EcdsaP384,
                Some(c) => {
                    return Err(SigError::Unsupported(format!("EC curve {}", algorithm_name(&c))));
                }
                None => return Err(SigError::Unsupported("EC key without a named curve".into())),
            }
        }
        (_, k) => {
            return Err(SigError::Unsupported(format!(
                "{} with a {} key",
                algorithm_name(&sig_alg.oid),
                algorithm_name(&k)
            )));
        }
    };
    Ok(SignatureAlgorithm { scheme, digest })
}

/// RSASSA-PSS-params: the hash, MGF1 with the same hash, salt length equal
/// to the hash length, trailer 1. aws-lc-rs verifies exactly that profile,
/// which is also what RFC 8017 recommends and what openssl writes with
/// `rsa_pss_saltlen:digest`.
fn pss_digest(alg: &AlgorithmIdentifierOwned) -> Result<DigestAlgorithm, SigError> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| SigError::Unsupported("RSASSA-PSS without parameters".into()))?;
    let der = params
        .to_der()
        .map_err(|e| SigError::Unsupported(format!("RSASSA-PSS parameters: {e}")))?;
    let p = RsaPssParams::from_der(&der)
        .map_err(|e| SigError::Unsupported(format!("RSASSA-PSS parameters: {e}")))?;
    let hash_oid = p.hash.as_ref().map(|h| h.oid).unwrap_or(ID_SHA_1);
    let hash = DigestAlgorithm::from_oid(&hash_oid).ok_or_else(|| {
        SigError::Unsupported(format!("RSASSA-PSS hash {}", algorithm_name(&hash_oid)))
    })?;
    let mgf_hash = match &p.mask_gen {
        None => ID_SHA_1,
        Some(m) if m.oid == ID_MGF1 => m
            .parameters
            .as_ref()
            .and_then(|a| a.decode_as::<AlgorithmIdentifierOwned>().ok())
            .map(|a| a.oid)
            .ok_or_else(|| SigError::Unsupported("MGF1 without a hash".into()))?,
        Some(m) => {
            return Err(SigError::Unsupported(format!(
                "mask generation {}",
                algorithm_name(&m.oid)
            )));
        }
    };
    if mgf_hash != hash_oid {
        return Err(SigError::Unsupported(format!(
            "RSASSA-PSS with MGF1 hash {} differing from the hash {}",
            algorithm_name(&mgf_hash),
            hash.name()
        )));
    }
    let salt = p.salt_len.unwrap_or(20);
    if usize::from(salt) != hash.output_len() {
        return Err(SigError::Unsupported(format!(
            "RSASSA-PSS salt length {salt} (only the digest length, {}, is supported)",
            hash.output_len()
        )));
    }
    if p.trailer.unwrap_or(1) != 1 {
        return Err(SigError::Unsupported("RSASSA-PSS trailer field other than 1".into()));
    }
    Ok(hash)
}

/// RSASSA-PSS-params (RFC 4055), with every field's explicit tag.
#[derive(Clone, Debug, der::Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u16>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u8>,
}

/// RSAPublicKey (PKCS#1).
#[derive(Clone, Debug, der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

/// Bits of an RSA modulus given the RSAPublicKey DER.
pub fn rsa_modulus_bits(rsa_public_key_der: &[u8]) -> Option<usize> {
    let k = RsaPublicKey::from_der(rsa_public_key_der).ok()?;
    let m = k.modulus.as_bytes();
    let first = *m.first()?;
    Some((m.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_their_lengths() {
        for (d, n) in [
            (DigestAlgorithm::Sha1, 20),
            (DigestAlgorithm::Sha256, 32),
            (DigestAlgorithm::Sha384, 48),
            (DigestAlgorithm::Sha512, 64),
        ] {
            assert_eq!(d.digest(b"abc").len(), n);
            assert_eq!(DigestAlgorithm::from_oid(&d.oid()), Some(d));
            let mut g = d.digester();
            g.update(b"a");
            g.update(b"bc");
            assert_eq!(g.finish(), d.digest(b"abc"));
        }
    }

    #[test]
    fn rsa_bits_of_garbage_is_none() {
        assert_eq!(rsa_modulus_bits(&[0x30, 0x03, 0x02, 0x01]), None);
        assert_eq!(rsa_modulus_bits(&[]), None);
    }
}

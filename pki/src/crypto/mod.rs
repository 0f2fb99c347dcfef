//! Digests and signature verification, on aws-lc-rs.
//!
//! [`verify_signature`] maps an X.509/CMS algorithm identifier and a public
//! key onto an aws-lc-rs verification algorithm, applying an
//! [`AlgorithmPolicy`] first, and says what was used.

use aws_lc_rs::{digest, signature};
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Encode, Sequence, Tagged};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

mod ecdsa;
pub use ecdsa::{ec_curve_of, ecdsa_der_to_raw, ecdsa_raw_to_der, pss_algorithm_identifier};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A readable name for an algorithm OID.
pub fn algorithm_name(oid: &ObjectIdentifier) -> String {
    // The database lookup is a linear scan; the names on the hot path first.
    use const_oid::db::rfc5912 as r;
    let common = match *oid {
        r::SHA_256_WITH_RSA_ENCRYPTION => Some("sha256WithRSAEncryption"),
        r::SHA_384_WITH_RSA_ENCRYPTION => Some("sha384WithRSAEncryption"),
        r::SHA_512_WITH_RSA_ENCRYPTION => Some("sha512WithRSAEncryption"),
        r::SHA_1_WITH_RSA_ENCRYPTION => Some("sha1WithRSAEncryption"),
        r::RSA_ENCRYPTION => Some("rsaEncryption"),
        r::ECDSA_WITH_SHA_256 => Some("ecdsa-with-SHA256"),
        r::ECDSA_WITH_SHA_384 => Some("ecdsa-with-SHA384"),
        r::ID_RSASSA_PSS => Some("id-RSASSA-PSS"),
        _ => None,
    };
    if let Some(n) = common {
        return n.to_owned();
    }
    const_oid::db::DB
        .by_oid(oid)
        .map(str::to_owned)
        .unwrap_or_else(|| oid.to_string())
}

/// Object identifiers used here (RFC 3279, 4055, 5758, 8017).
pub mod oid {
    use const_oid::ObjectIdentifier as Oid;

    /// id-sha1.
    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    /// id-sha256.
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha384.
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// id-sha512.
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    /// The OIW sha1WithRSASignature still found in old PKCS#7 signers.
    pub const OIW_SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.3.14.3.2.29");
    /// id-RSASSA-PSS.
    pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
    /// id-mgf1.
    pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    /// ecdsa-with-SHA1.
    pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384.
    pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512.
    pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
    /// secp256r1 (P-256).
    pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 (P-384).
    pub const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
}

/// A digest algorithm kyso can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DigestAlgorithm {
    /// SHA-1: only for binding certificates (ESS v1) and legacy CA signatures.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm for a digest OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oid::SHA1 => Some(Self::Sha1),
            oid::SHA256 => Some(Self::Sha256),
            oid::SHA384 => Some(Self::Sha384),
            oid::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The digest OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
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

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        self.aws().output_len()
    }

    /// One-shot digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.aws(), data).as_ref().to_vec()
    }

    /// An incremental digester.
    pub fn digester(self) -> Digester {
        Digester::new(self)
    }

    fn aws(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

impl std::fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Incremental digest (for streamed detached content).
#[derive(Clone)]
pub struct Digester {
    algorithm: DigestAlgorithm,
    ctx: digest::Context,
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Digester {
    /// A fresh digester.
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        Self {
            algorithm,
            ctx: digest::Context::new(algorithm.aws()),
        }
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Vec<u8> {
        self.ctx.finish().as_ref().to_vec()
    }
}

/// What signature algorithms and keys are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Accept SHA-1 signatures: only for CA certificates of configured legacy
    /// roots (the government G1 hierarchy is sha1WithRSA).
    pub allow_sha1: bool,
    /// Smallest RSA modulus accepted, in bits.
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

/// The signature scheme family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1v15,
    /// RSASSA-PSS (MGF1 with the same hash, any salt length).
    RsaPss,
    /// ECDSA with a DER-encoded signature.
    Ecdsa,
}

/// Elliptic curves supported for ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

impl Curve {
    /// "P-256" or "P-384".
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn bits(self) -> usize {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
        }
    }

    /// Bytes of one coordinate or scalar: 32 for P-256, 48 for P-384.
    pub fn field_bytes(self) -> usize {
        self.bits() / 8
    }
}

/// What a verified signature used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignatureAlgorithm {
    /// The scheme.
    pub scheme: SignatureScheme,
    /// The hash the signature covers.
    pub digest: DigestAlgorithm,
    /// RSA modulus size or curve size.
    pub key_bits: usize,
    /// The curve, for ECDSA.
    pub curve: Option<Curve>,
}

impl SignatureAlgorithm {
    /// Whether the signature covers a SHA-1 digest.
    pub fn uses_sha1(&self) -> bool {
        self.digest == DigestAlgorithm::Sha1
    }

    /// "RSA PKCS#1 v1.5 SHA-256", "RSASSA-PSS SHA-256", "ECDSA P-256 SHA-256".
    pub fn name(&self) -> String {
        match (self.scheme, self.curve) {
            (SignatureScheme::RsaPkcs1v15, _) => format!("RSA PKCS#1 v1.5 {}", self.digest),
            (SignatureScheme::RsaPss, _) => format!("RSASSA-PSS {}", self.digest),
            (SignatureScheme::Ecdsa, Some(c)) => format!("ECDSA {} {}", c.name(), self.digest),
            (SignatureScheme::Ecdsa, None) => format!("ECDSA {}", self.digest),
        }
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Why a signature was not accepted: a verdict detail, not a crate error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// The signature does not verify with this key.
    #[error("the signature does not verify")]
    Invalid,
    /// Unknown algorithm, curve, parameters or malformed key.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Known but below the policy (SHA-1, short RSA key).
    #[error("too weak: {0}")]
    Weak(String),
}

/// RSASSA-PSS-params (RFC 4055 §3.1); absent fields take the RFC defaults.
#[derive(Clone, Debug, Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

/// RSAPublicKey (RFC 8017 A.1.1).
#[derive(Clone, Debug, Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Size in bits of an RSA key's modulus; `None` if not an RSA key or malformed.
pub fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    let alg = spki.algorithm.oid;
    if alg != oid::RSA_ENCRYPTION && alg != oid::RSASSA_PSS {
        return None;
    }
    rsa_bits_of(spki.subject_public_key.as_bytes()?)
}

fn rsa_bits_of(key: &[u8]) -> Option<usize> {
    let k = RsaPublicKey::from_der(key).ok()?;
    let m = k.modulus.as_bytes();
    let (&first, _) = m.split_first()?;
    Some((m.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

/// Key size in bits: RSA modulus or EC curve size; `None` if unknown.
pub fn public_key_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    rsa_modulus_bits(spki).or_else(|| ec_curve(spki).ok().map(Curve::bits))
}

/// The hash a signature algorithm covers (`digest` for the bare key OIDs
/// rsaEncryption and id-ecPublicKey used as a CMS signature algorithm).
pub fn signature_digest(
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
) -> Option<DigestAlgorithm> {
    resolve_scheme(sig_alg, digest).ok().map(|(_, d)| d)
}

/// Verifies `signature` over `message` with the key of `spki`.
///
/// `sig_alg` is the signature AlgorithmIdentifier (certificate or SignerInfo);
/// `digest` is the CMS SignerInfo digest algorithm, used when `sig_alg` is
/// the bare key algorithm (rsaEncryption, id-ecPublicKey).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
    message: &[u8],
    signature: &[u8],
    policy: AlgorithmPolicy,
) -> Result<SignatureAlgorithm, SigError> {
    let r = resolve(spki, sig_alg, digest, policy)?;
    if let Some(salt) = r.pss_salt {
        let d = digest::digest(r.alg.digest.aws(), message);
        verify_pss_salt(r.key, r.alg.digest, salt, d.as_ref(), signature)?;
        return Ok(r.alg);
    }
    signature::UnparsedPublicKey::new(r.verifier, r.key)
        .verify(message, signature)
        .map_err(|_| SigError::Invalid)?;
    Ok(r.alg)
}

/// Like [`verify_signature`], over a digest already computed by the caller
/// (a detached signature without signed attributes, digest-only request).
///
/// `digest_alg` must be the hash of the signature algorithm.
pub fn verify_signature_prehashed(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest_alg: DigestAlgorithm,
    digest_value: &[u8],
    signature: &[u8],
    policy: AlgorithmPolicy,
) -> Result<SignatureAlgorithm, SigError> {
    let r = resolve(spki, sig_alg, Some(digest_alg), policy)?;
    if r.alg.digest != digest_alg {
        return Err(SigError::Unsupported(format!(
            "the signature covers a {} digest, the digest given is {}",
            r.alg.digest, digest_alg
        )));
    }
    if let Some(salt) = r.pss_salt {
        if digest_value.len() != digest_alg.output_len() {
            return Err(SigError::Unsupported(format!(
                "a {} digest has {} bytes, not {}",
                digest_alg,
                digest_alg.output_len(),
                digest_value.len()
            )));
        }
        verify_pss_salt(r.key, digest_alg, salt, digest_value, signature)?;
        return Ok(r.alg);
    }
    let d = digest::Digest::import_less_safe(digest_value, digest_alg.aws()).map_err(|_| {
        SigError::Unsupported(format!(
            "a {} digest has {} bytes, not {}",
            digest_alg,
            digest_alg.output_len(),
            digest_value.len()
        ))
    })?;
    signature::UnparsedPublicKey::new(r.verifier, r.key)
        .verify_digest(&d, signature)
        .map_err(|_| SigError::Invalid)?;
    Ok(r.alg)
}

struct Resolved<'a> {
    alg: SignatureAlgorithm,
    verifier: &'static dyn signature::VerificationAlgorithm,
    key: &'a [u8],
    /// RSASSA-PSS whose salt is not as long as the hash: verified by [`verify_pss_salt`].
    pss_salt: Option<usize>,
}

/// The hash algorithm of an AlgorithmIdentifier with NULL or absent parameters.
fn hash_of(ai: &AlgorithmIdentifierOwned, what: &str) -> Result<DigestAlgorithm, SigError> {
    params_null_or_absent(ai, what)?;
    DigestAlgorithm::from_oid(&ai.oid)
        .ok_or_else(|| SigError::Unsupported(format!("{what} hash {}", algorithm_name(&ai.oid))))
}

fn params_null_or_absent(ai: &AlgorithmIdentifierOwned, what: &str) -> Result<(), SigError> {
    match &ai.parameters {
        None => Ok(()),
        Some(p) if p.tag() == der::Tag::Null && p.value().is_empty() => Ok(()),
        Some(_) => Err(SigError::Unsupported(format!(
            "unexpected parameters for {what} {}",
            algorithm_name(&ai.oid)
        ))),
    }
}

fn resolve_scheme(
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
) -> Result<(SignatureScheme, DigestAlgorithm), SigError> {
    use DigestAlgorithm as D;
    use SignatureScheme as S;
    let need_digest = || {
        digest.ok_or_else(|| {
            SigError::Unsupported(format!(
                "{} as a signature algorithm without a digest algorithm",
                algorithm_name(&sig_alg.oid)
            ))
        })
    };
    let fixed = |scheme, d| -> Result<(S, D), SigError> {
        params_null_or_absent(sig_alg, "signature algorithm")?;
        Ok((scheme, d))
    };
    match sig_alg.oid {
        oid::SHA1_WITH_RSA | oid::OIW_SHA1_WITH_RSA => fixed(S::RsaPkcs1v15, D::Sha1),
        oid::SHA256_WITH_RSA => fixed(S::RsaPkcs1v15, D::Sha256),
        oid::SHA384_WITH_RSA => fixed(S::RsaPkcs1v15, D::Sha384),
        oid::SHA512_WITH_RSA => fixed(S::RsaPkcs1v15, D::Sha512),
        oid::RSA_ENCRYPTION => {
            params_null_or_absent(sig_alg, "signature algorithm")?;
            Ok((S::RsaPkcs1v15, need_digest()?))
        }
        oid::ECDSA_WITH_SHA1 => fixed(S::Ecdsa, D::Sha1),
        oid::ECDSA_WITH_SHA256 => fixed(S::Ecdsa, D::Sha256),
        oid::ECDSA_WITH_SHA384 => fixed(S::Ecdsa, D::Sha384),
        oid::ECDSA_WITH_SHA512 => fixed(S::Ecdsa, D::Sha512),
        // Some CMS signers name the key algorithm; the curve comes from the key.
        oid::EC_PUBLIC_KEY => Ok((S::Ecdsa, need_digest()?)),
        oid::RSASSA_PSS => Ok((S::RsaPss, pss_params(sig_alg)?.0)),
        other => Err(SigError::Unsupported(format!(
            "signature algorithm {}",
            algorithm_name(&other)
        ))),
    }
}

/// Checks RSASSA-PSS parameters (MGF1 with the same hash, trailer 1) and returns the
/// hash and the salt length.
fn pss_params(sig_alg: &AlgorithmIdentifierOwned) -> Result<(DigestAlgorithm, usize), SigError> {
    let params = sig_alg.parameters.as_ref().ok_or_else(|| {
        SigError::Unsupported("RSASSA-PSS without parameters (SHA-1 defaults)".into())
    })?;
    let der = params
        .to_der()
        .map_err(|e| SigError::Unsupported(format!("RSASSA-PSS parameters: {e}")))?;
    let p = PssParams::from_der(&der)
        .map_err(|e| SigError::Unsupported(format!("malformed RSASSA-PSS parameters: {e}")))?;
    let hash = match &p.hash {
        Some(h) => hash_of(h, "RSASSA-PSS")?,
        None => DigestAlgorithm::Sha1,
    };
    if hash == DigestAlgorithm::Sha1 {
        return Err(SigError::Unsupported("RSASSA-PSS with SHA-1".into()));
    }
    let mgf_hash = match &p.mask_gen {
        None => DigestAlgorithm::Sha1,
        Some(m) if m.oid == oid::MGF1 => {
            let inner = m
                .parameters
                .as_ref()
                .ok_or_else(|| SigError::Unsupported("MGF1 without a hash".into()))?;
            let inner = inner
                .to_der()
                .ok()
                .and_then(|d| AlgorithmIdentifierOwned::from_der(&d).ok())
                .ok_or_else(|| SigError::Unsupported("malformed MGF1 parameters".into()))?;
            hash_of(&inner, "MGF1")?
        }
        Some(m) => {
            return Err(SigError::Unsupported(format!(
                "RSASSA-PSS mask generation {}",
                algorithm_name(&m.oid)
            )));
        }
    };
    if mgf_hash != hash {
        return Err(SigError::Unsupported(format!(
            "RSASSA-PSS with MGF1-{mgf_hash} and {hash}: only MGF1 with the same hash is supported"
        )));
    }
    let salt = p.salt_len.unwrap_or(20) as usize;
    if p.trailer.is_some_and(|t| t != 1) {
        return Err(SigError::Unsupported(
            "RSASSA-PSS trailer field other than 1".into(),
        ));
    }
    Ok((hash, salt))
}

/// RSASSA-PSS over `digest` with a salt length other than the hash's, which aws-lc-rs
/// does not verify: the RustCrypto implementation, with the same key size checks done by
/// [`resolve`] before.
fn verify_pss_salt(
    key: &[u8],
    hash: DigestAlgorithm,
    salt: usize,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let key = rsa::RsaPublicKey::from_pkcs1_der(key)
        .map_err(|_| SigError::Unsupported("malformed RSA public key".into()))?;
    let scheme = match hash {
        DigestAlgorithm::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
        DigestAlgorithm::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
        DigestAlgorithm::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
        DigestAlgorithm::Sha1 => {
            return Err(SigError::Unsupported("RSASSA-PSS with SHA-1".into()));
        }
    };
    key.verify(scheme, digest, signature)
        .map_err(|_| SigError::Invalid)
}

fn ec_curve(spki: &SubjectPublicKeyInfoOwned) -> Result<Curve, SigError> {
    if spki.algorithm.oid != oid::EC_PUBLIC_KEY {
        return Err(SigError::Unsupported(format!(
            "ECDSA signature with a {} key",
            algorithm_name(&spki.algorithm.oid)
        )));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| SigError::Unsupported("EC key without a named curve".into()))?;
    match curve {
        oid::P256 => Ok(Curve::P256),
        oid::P384 => Ok(Curve::P384),
        other => Err(SigError::Unsupported(format!(
            "curve {}",
            algorithm_name(&other)
        ))),
    }
}

fn resolve<'a>(
    spki: &'a SubjectPublicKeyInfoOwned,
    sig_alg: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
    policy: AlgorithmPolicy,
) -> Result<Resolved<'a>, SigError> {
    use DigestAlgorithm as D;
    use SignatureScheme as S;
    let (scheme, hash) = resolve_scheme(sig_alg, digest)?;
    if hash == D::Sha1 && !policy.allow_sha1 {
        return Err(SigError::Weak(format!(
            "{} signature with SHA-1",
            algorithm_name(&sig_alg.oid)
        )));
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Unsupported("public key BIT STRING with unused bits".into()))?;
    let key_alg = spki.algorithm.oid;
    let (verifier, key_bits, curve): (&'static dyn signature::VerificationAlgorithm, _, _) =
        match scheme {
            S::RsaPkcs1v15 | S::RsaPss => {
                // An id-RSASSA-PSS key must not sign PKCS#1 v1.5 (RFC 4055 §1.2).
                let key_ok = key_alg == oid::RSA_ENCRYPTION
                    || (scheme == S::RsaPss && key_alg == oid::RSASSA_PSS);
                if !key_ok {
                    return Err(SigError::Unsupported(format!(
                        "{} signature with a {} key",
                        algorithm_name(&sig_alg.oid),
                        algorithm_name(&key_alg)
                    )));
                }
                let bits = rsa_bits_of(key)
                    .ok_or_else(|| SigError::Unsupported("malformed RSA public key".into()))?;
                if bits < policy.min_rsa_bits {
                    return Err(SigError::Weak(format!(
                        "RSA key of {bits} bits, at least {} required",
                        policy.min_rsa_bits
                    )));
                }
                if bits > 8192 {
                    return Err(SigError::Unsupported(format!(
                        "RSA key of {bits} bits (at most 8192)"
                    )));
                }
                (rsa_verifier(scheme, hash, bits)?, bits, None)
            }
            S::Ecdsa => {
                let curve = ec_curve(spki)?;
                let v: &'static dyn signature::VerificationAlgorithm = match (curve, hash) {
                    (Curve::P256, D::Sha1) => &signature::ECDSA_P256_SHA1_ASN1,
                    (Curve::P256, D::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
                    (Curve::P256, D::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
                    (Curve::P256, D::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
                    (Curve::P384, D::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
                    (Curve::P384, D::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
                    (Curve::P384, D::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
                    (Curve::P384, D::Sha1) => {
                        return Err(SigError::Unsupported("ECDSA P-384 with SHA-1".into()));
                    }
                };
                (v, curve.bits(), Some(curve))
            }
        };
    let pss_salt = match scheme {
        S::RsaPss => Some(pss_params(sig_alg)?.1).filter(|s| *s != hash.output_len()),
        _ => None,
    };
    Ok(Resolved {
        alg: SignatureAlgorithm {
            scheme,
            digest: hash,
            key_bits,
            curve,
        },
        verifier,
        key,
        pss_salt,
    })
}

fn rsa_verifier(
    scheme: SignatureScheme,
    hash: DigestAlgorithm,
    bits: usize,
) -> Result<&'static dyn signature::VerificationAlgorithm, SigError> {
    use DigestAlgorithm as D;
    use SignatureScheme as S;
    let large = bits >= 2048;
    let v: &'static dyn signature::VerificationAlgorithm = match (scheme, hash, large) {
        (S::RsaPkcs1v15, D::Sha1, true) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (S::RsaPkcs1v15, D::Sha256, true) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (S::RsaPkcs1v15, D::Sha384, true) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (S::RsaPkcs1v15, D::Sha512, true) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (S::RsaPss, D::Sha256, true) => &signature::RSA_PSS_2048_8192_SHA256,
        (S::RsaPss, D::Sha384, true) => &signature::RSA_PSS_2048_8192_SHA384,
        (S::RsaPss, D::Sha512, true) => &signature::RSA_PSS_2048_8192_SHA512,
        // Keys under 2048 bits only get here when the policy allows them.
        (S::RsaPkcs1v15, D::Sha1, false) if bits >= 1024 => {
            &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (S::RsaPkcs1v15, D::Sha256, false) if bits >= 1024 => {
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        (S::RsaPkcs1v15, D::Sha512, false) if bits >= 1024 => {
            &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        _ => {
            return Err(SigError::Unsupported(format!(
                "{} with {hash} and a {bits}-bit RSA key",
                match scheme {
                    S::RsaPss => "RSASSA-PSS",
                    _ => "RSA PKCS#1 v1.5",
                }
            )));
        }
    };
    Ok(v)
}

#[cfg(test)]
mod tests;

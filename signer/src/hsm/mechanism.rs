//! Pure helpers around PKCS#11 signing: DigestInfo prefixes, PSS parameters, ECDSA signature
//! conversion (PKCS#11 `r || s` to the DER `Ecdsa-Sig-Value` of X9.62/RFC 3279).

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::types::Ulong;
use kyso_pki::crypto::DigestAlgorithm;

use super::HsmError;

/// How the HSM signs a digest the caller has already computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignMechanism {
    /// RSASSA-PKCS1-v1_5: `CKM_RSA_PKCS` over `DigestInfo(digest)`.
    RsaPkcs1(DigestAlgorithm),
    /// RSASSA-PSS: `CKM_RSA_PKCS_PSS` with MGF1 of the same hash and a salt as long as the hash.
    RsaPss(DigestAlgorithm),
    /// ECDSA: `CKM_ECDSA` over the digest (SHA-1/256/384/512 lengths accepted); the output is
    /// the DER `Ecdsa-Sig-Value`.
    Ecdsa,
}

impl SignMechanism {
    /// The digest algorithm the input must have been computed with (`None` for ECDSA, which
    /// signs a digest of any supported length).
    pub fn digest(self) -> Option<DigestAlgorithm> {
        match self {
            Self::RsaPkcs1(d) | Self::RsaPss(d) => Some(d),
            Self::Ecdsa => None,
        }
    }

    /// Checks the length of a prehashed `digest` for this mechanism.
    pub fn check_digest(self, digest: &[u8]) -> Result<(), HsmError> {
        match self.digest() {
            Some(d) => check_digest(d, digest),
            None if matches!(digest.len(), 20 | 32 | 48 | 64) => Ok(()),
            None => Err(HsmError::BadDigest {
                expected: if digest.len() < 32 { 32 } else { 64 },
                got: digest.len(),
            }),
        }
    }

    /// Whether the mechanism needs an RSA key (otherwise an EC key).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RsaPkcs1(_) | Self::RsaPss(_))
    }

    /// A short stable name for logs and metrics: `rsa-pkcs1-sha256`, `rsa-pss-sha384`,
    /// `ecdsa`.
    pub fn name(self) -> &'static str {
        use DigestAlgorithm::*;
        match self {
            Self::RsaPkcs1(Sha1) => "rsa-pkcs1-sha1",
            Self::RsaPkcs1(Sha256) => "rsa-pkcs1-sha256",
            Self::RsaPkcs1(Sha384) => "rsa-pkcs1-sha384",
            Self::RsaPkcs1(Sha512) => "rsa-pkcs1-sha512",
            Self::RsaPss(Sha1) => "rsa-pss-sha1",
            Self::RsaPss(Sha256) => "rsa-pss-sha256",
            Self::RsaPss(Sha384) => "rsa-pss-sha384",
            Self::RsaPss(Sha512) => "rsa-pss-sha512",
            Self::Ecdsa => "ecdsa",
        }
    }

    /// Parses [`SignMechanism::name`] (also `ecdsa-sha256` and the like for `ecdsa`).
    pub fn from_name(name: &str) -> Option<Self> {
        use DigestAlgorithm::*;
        let (scheme, hash) = match name {
            "ecdsa" => return Some(Self::Ecdsa),
            n => n.rsplit_once('-')?,
        };
        let d = match hash {
            "sha1" => Sha1,
            "sha256" => Sha256,
            "sha384" => Sha384,
            "sha512" => Sha512,
            _ => return None,
        };
        match scheme {
            "rsa-pkcs1" => Some(Self::RsaPkcs1(d)),
            "rsa-pss" => Some(Self::RsaPss(d)),
            "ecdsa" => Some(Self::Ecdsa),
            _ => None,
        }
    }
}

impl std::fmt::Display for SignMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The DER prefix of `DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING }` that
/// precedes the digest in an RSASSA-PKCS1-v1_5 signature (RFC 8017 §9.2, note 1).
pub fn digest_info_prefix(d: DigestAlgorithm) -> &'static [u8] {
    match d {
        DigestAlgorithm::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        DigestAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        DigestAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        DigestAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// `DigestInfo(digest)` as DER.
pub fn digest_info(d: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
    let prefix = digest_info_prefix(d);
    let mut out = Vec::with_capacity(prefix.len() + digest.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(digest);
    out
}

/// Checks that `digest` has the length of `d`'s output.
pub fn check_digest(d: DigestAlgorithm, digest: &[u8]) -> Result<(), HsmError> {
    if digest.len() == d.output_len() {
        Ok(())
    } else {
        Err(HsmError::BadDigest {
            expected: d.output_len(),
            got: digest.len(),
        })
    }
}

fn hash_mechanism(d: DigestAlgorithm) -> (MechanismType, PkcsMgfType) {
    match d {
        DigestAlgorithm::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        DigestAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        DigestAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        DigestAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    }
}

/// The PKCS#11 mechanism and the bytes to hand to `C_Sign` for a prehashed `digest`.
pub(crate) fn pkcs11_input(
    mechanism: SignMechanism,
    digest: &[u8],
) -> (Mechanism<'static>, Vec<u8>) {
    match mechanism {
        SignMechanism::RsaPkcs1(d) => (Mechanism::RsaPkcs, digest_info(d, digest)),
        SignMechanism::RsaPss(d) => {
            let (hash_alg, mgf) = hash_mechanism(d);
            let params = PkcsPssParams {
                hash_alg,
                mgf,
                s_len: Ulong::from(d.output_len() as u64),
            };
            (Mechanism::RsaPkcsPss(params), digest.to_vec())
        }
        SignMechanism::Ecdsa => (Mechanism::Ecdsa, digest.to_vec()),
    }
}

/// PKCS#11 returns ECDSA as `r || s`; X.509 and CMS want DER. One implementation, in kyso-pki,
/// shared with the XML signature (which wants `r || s` back).
pub use kyso_pki::crypto::ecdsa_raw_to_der;

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use der::Decode;
    use der::asn1::UintRef;

    #[derive(der::Sequence)]
    struct EcdsaSig<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }

    #[test]
    fn digest_info_prefixes_are_der_digest_infos() {
        for d in [
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            let di = digest_info(d, &d.digest(b"kyso"));
            let parsed = spki::AlgorithmIdentifierOwned::from_der(&di[2..2 + di[3] as usize + 2])
                .expect("algorithm identifier");
            assert_eq!(parsed.oid, d.oid(), "{d}");
            assert_eq!(di[1] as usize, di.len() - 2, "{d}: outer length");
            assert_eq!(di[di.len() - d.output_len() - 1] as usize, d.output_len());
        }
    }

    #[test]
    fn ecdsa_conversion() {
        // High bits set: a leading zero is added.
        let mut raw = vec![0x80; 32];
        raw.extend_from_slice(&[0x7f; 32]);
        let der = ecdsa_raw_to_der(&raw).expect("der");
        let sig = EcdsaSig::from_der(&der).expect("parses");
        assert_eq!(sig.r.as_bytes(), &[0x80; 32][..]);
        assert_eq!(sig.s.as_bytes(), &[0x7f; 32][..]);
        assert_eq!(der[3], 33, "r has a leading zero");
        // Leading zeros are stripped.
        let mut raw = vec![0u8; 3];
        raw.extend_from_slice(&[0x11; 45]);
        raw.extend_from_slice(&[0u8; 47]);
        raw.push(0x05);
        let der = ecdsa_raw_to_der(&raw).expect("der");
        let sig = EcdsaSig::from_der(&der).expect("parses");
        assert_eq!(sig.r.as_bytes(), &[0x11; 45][..]);
        assert_eq!(sig.s.as_bytes(), &[0x05][..]);
        // P-521-sized values need a long-form length.
        let der = ecdsa_raw_to_der(&[0xff; 132]).expect("der");
        assert_eq!(der[1], 0x81);
        EcdsaSig::from_der(&der).expect("parses");
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_none());
        assert!(ecdsa_raw_to_der(&[]).is_none());
    }

    #[test]
    fn zero_halves_encode_as_zero() {
        let der = ecdsa_raw_to_der(&[0u8; 64]).expect("der");
        assert_eq!(der, vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in [
            SignMechanism::RsaPkcs1(DigestAlgorithm::Sha256),
            SignMechanism::RsaPss(DigestAlgorithm::Sha384),
            SignMechanism::Ecdsa,
        ] {
            assert_eq!(SignMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(
            SignMechanism::from_name("ecdsa-sha384"),
            Some(SignMechanism::Ecdsa)
        );
        assert_eq!(SignMechanism::from_name("rsa-sha256"), None);
    }

    #[test]
    fn digest_length_is_checked() {
        assert!(check_digest(DigestAlgorithm::Sha256, &[0; 32]).is_ok());
        assert!(matches!(
            check_digest(DigestAlgorithm::Sha256, &[0; 48]),
            Err(HsmError::BadDigest {
                expected: 32,
                got: 48
            })
        ));
        assert!(SignMechanism::Ecdsa.check_digest(&[0; 48]).is_ok());
        assert!(SignMechanism::Ecdsa.check_digest(&[0; 31]).is_err());
    }
}

//! XML-DSig algorithm URIs and what kyso-pki calls them (rule 7 of the wrapping rules:
//! SHA-256/384/512, RSA PKCS#1 v1.5, RSA-PSS with a salt as long as the hash, ECDSA P-256
//! and P-384; SHA-1 only under the legacy policy).

use der::Any;
use kyso_pki::crypto::{DigestAlgorithm, SigError, oid, pss_algorithm_identifier};
use spki::AlgorithmIdentifierOwned;

/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// The digest named by a `DigestMethod` URI.
pub fn digest(uri: &str) -> Option<DigestAlgorithm> {
    Some(match uri {
        "http://www.w3.org/2000/09/xmldsig#sha1" => DigestAlgorithm::Sha1,
        "http://www.w3.org/2001/04/xmlenc#sha256" => DigestAlgorithm::Sha256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => DigestAlgorithm::Sha384,
        "http://www.w3.org/2001/04/xmlenc#sha512" => DigestAlgorithm::Sha512,
        _ => return None,
    })
}

/// The `DigestMethod` URI of a digest.
pub fn digest_uri(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
        DigestAlgorithm::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
        DigestAlgorithm::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
        DigestAlgorithm::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
    }
}

/// A signature method kyso verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(DigestAlgorithm),
    /// RSASSA-PSS, MGF1 with the same hash, salt = hash length (RFC 9231 §2.3.10).
    RsaPss(DigestAlgorithm),
    /// ECDSA, SignatureValue `r || s`.
    Ecdsa(DigestAlgorithm),
}

const MORE: &str = "http://www.w3.org/2001/04/xmldsig-more#";
const MORE07: &str = "http://www.w3.org/2007/05/xmldsig-more#";

impl SignatureMethod {
    /// The method named by a `SignatureMethod` URI.
    pub fn from_uri(uri: &str) -> Option<Self> {
        use DigestAlgorithm::*;
        if uri == "http://www.w3.org/2000/09/xmldsig#rsa-sha1" {
            return Some(Self::RsaPkcs1(Sha1));
        }
        if let Some(rest) = uri.strip_prefix(MORE) {
            return Some(match rest {
                "rsa-sha256" => Self::RsaPkcs1(Sha256),
                "rsa-sha384" => Self::RsaPkcs1(Sha384),
                "rsa-sha512" => Self::RsaPkcs1(Sha512),
                "ecdsa-sha1" => Self::Ecdsa(Sha1),
                "ecdsa-sha256" => Self::Ecdsa(Sha256),
                "ecdsa-sha384" => Self::Ecdsa(Sha384),
                "ecdsa-sha512" => Self::Ecdsa(Sha512),
                _ => return None,
            });
        }
        if let Some(rest) = uri.strip_prefix(MORE07) {
            return Some(match rest {
                "sha256-rsa-MGF1" => Self::RsaPss(Sha256),
                "sha384-rsa-MGF1" => Self::RsaPss(Sha384),
                "sha512-rsa-MGF1" => Self::RsaPss(Sha512),
                _ => return None,
            });
        }
        None
    }

    /// The URI of this method.
    pub fn uri(self) -> String {
        use DigestAlgorithm::*;
        let d = |d: DigestAlgorithm| match d {
            Sha1 => "sha1",
            Sha256 => "sha256",
            Sha384 => "sha384",
            Sha512 => "sha512",
        };
        match self {
            Self::RsaPkcs1(Sha1) => "http://www.w3.org/2000/09/xmldsig#rsa-sha1".into(),
            Self::RsaPkcs1(h) => format!("{MORE}rsa-{}", d(h)),
            Self::Ecdsa(h) => format!("{MORE}ecdsa-{}", d(h)),
            Self::RsaPss(h) => format!("{MORE07}{}-rsa-MGF1", d(h)),
        }
    }

    /// The hash the signature covers.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            Self::RsaPkcs1(d) | Self::RsaPss(d) | Self::Ecdsa(d) => d,
        }
    }

    /// The X.509 AlgorithmIdentifier kyso-pki verifies with.
    pub fn algorithm_identifier(self) -> Result<AlgorithmIdentifierOwned, SigError> {
        use DigestAlgorithm::*;
        let (oid, params) = match self {
            Self::RsaPss(d) => return pss_algorithm_identifier(d),
            Self::RsaPkcs1(Sha1) => (oid::SHA1_WITH_RSA, Some(Any::null())),
            Self::RsaPkcs1(Sha256) => (oid::SHA256_WITH_RSA, Some(Any::null())),
            Self::RsaPkcs1(Sha384) => (oid::SHA384_WITH_RSA, Some(Any::null())),
            Self::RsaPkcs1(Sha512) => (oid::SHA512_WITH_RSA, Some(Any::null())),
            Self::Ecdsa(Sha1) => (oid::ECDSA_WITH_SHA1, None),
            Self::Ecdsa(Sha256) => (oid::ECDSA_WITH_SHA256, None),
            Self::Ecdsa(Sha384) => (oid::ECDSA_WITH_SHA384, None),
            Self::Ecdsa(Sha512) => (oid::ECDSA_WITH_SHA512, None),
        };
        Ok(AlgorithmIdentifierOwned {
            oid,
            parameters: params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for d in [
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(digest(digest_uri(d)), Some(d));
            for m in [
                SignatureMethod::RsaPkcs1(d),
                SignatureMethod::Ecdsa(d),
                SignatureMethod::RsaPss(d),
            ] {
                if m == SignatureMethod::RsaPss(DigestAlgorithm::Sha1) {
                    continue;
                }
                assert_eq!(SignatureMethod::from_uri(&m.uri()), Some(m));
            }
        }
        assert_eq!(
            SignatureMethod::from_uri("http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
            None
        );
    }
}

//! PKCS#10 certification requests signed by an HSM key (sha256WithRSAEncryption or
//! ecdsa-with-SHA256).
//!
//! The subject is an RFC 4514 string, most specific first as openssl prints it
//! (`CN=Nguyễn Văn A,title=Chủ tịch,O=Ủy ban nhân dân tỉnh X,C=VN`), or an
//! [`x509_cert::name::Name`]. Values are UTF8String, except countryName and serialNumber
//! (PrintableString) and domainComponent (IA5String). Attribute names are the usual short and
//! long names (`CN`, `O`, `OU`, `C`, `L`, `ST`, `title`, `UID`, `serialNumber`,
//! `emailAddress`, ...) or dotted OIDs (`2.5.4.12=...`).

use std::str::FromStr;

use der::asn1::{AnyRef, BitString};
use der::{Decode, Encode, EncodePem};
use kyso_pki::crypto::{DigestAlgorithm, oid};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::hsm::{Hsm, HsmError, KeyKind, SignMechanism};

/// Parses an RFC 4514 subject (`CN=...,O=...,C=VN`).
pub fn parse_subject(s: &str) -> Result<Name, HsmError> {
    if s.trim().is_empty() {
        return Err(HsmError::Config("empty subject".to_owned()));
    }
    Name::from_str(s).map_err(|e| HsmError::Config(format!("subject {s:?}: {e}")))
}

/// The to-be-signed part of a request and what to sign it with.
#[derive(Clone, Debug)]
pub struct PreparedCsr {
    info: CertReqInfo,
    algorithm: AlgorithmIdentifierOwned,
    /// The mechanism the HSM must use.
    pub mechanism: SignMechanism,
    /// SHA-256 of the DER CertificationRequestInfo: what the HSM signs.
    pub digest: Vec<u8>,
}

impl PreparedCsr {
    /// Builds the CertificationRequestInfo for `subject` and the key `spki_der`.
    pub fn new(subject: Name, spki_der: &[u8]) -> Result<PreparedCsr, HsmError> {
        let public_key = SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| HsmError::Config(format!("public key: {e}")))?;
        let kind = KeyKind::of(&public_key).map_err(HsmError::Config)?;
        let (mechanism, algorithm) = match kind {
            KeyKind::Rsa { .. } => (
                SignMechanism::RsaPkcs1(DigestAlgorithm::Sha256),
                AlgorithmIdentifierOwned {
                    oid: oid::SHA256_WITH_RSA,
                    parameters: Some(AnyRef::NULL.into()),
                },
            ),
            KeyKind::Ec { .. } => (
                SignMechanism::Ecdsa,
                AlgorithmIdentifierOwned {
                    oid: oid::ECDSA_WITH_SHA256,
                    parameters: None,
                },
            ),
        };
        let info = CertReqInfo {
            version: Version::V1,
            subject,
            public_key,
            attributes: Default::default(),
        };
        let tbs = info
            .to_der()
            .map_err(|e| HsmError::Internal(format!("encoding the request: {e}")))?;
        Ok(PreparedCsr {
            info,
            algorithm,
            mechanism,
            digest: DigestAlgorithm::Sha256.digest(&tbs),
        })
    }

    /// The request with the HSM's `signature` (DER `Ecdsa-Sig-Value` for ECDSA).
    pub fn finish(self, signature: &[u8]) -> Result<CertReq, HsmError> {
        Ok(CertReq {
            info: self.info,
            algorithm: self.algorithm,
            signature: BitString::from_bytes(signature)
                .map_err(|e| HsmError::Internal(e.to_string()))?,
        })
    }
}

/// A request for `subject` signed by `key` of a running [`Hsm`].
pub async fn certification_request(
    hsm: &Hsm,
    key: &str,
    subject: Name,
) -> Result<CertReq, HsmError> {
    let spki = hsm.spki(key).ok_or_else(|| HsmError::UnknownKey {
        key: key.to_owned(),
    })?;
    let prepared = PreparedCsr::new(subject, spki)?;
    let sig = hsm.sign(key, prepared.mechanism, &prepared.digest).await?;
    prepared.finish(&sig)
}

/// DER encoding.
pub fn to_der(req: &CertReq) -> Result<Vec<u8>, HsmError> {
    req.to_der().map_err(|e| HsmError::Internal(e.to_string()))
}

/// PEM (`CERTIFICATE REQUEST`).
pub fn to_pem(req: &CertReq) -> Result<String, HsmError> {
    req.to_pem(der::pem::LineEnding::LF)
        .map_err(|e| HsmError::Internal(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use const_oid::db::rfc4519;
    use der::asn1::{PrintableStringRef, Utf8StringRef};

    #[test]
    fn vietnamese_subject_with_title() {
        let name = parse_subject(
            "CN=Nguyễn Văn Ánh,title=Chủ tịch,UID=CMND:012345678,O=Ủy ban nhân dân tỉnh Hà Giang,L=Hà Giang,C=VN",
        )
        .expect("parses");
        let rdns = &name.0;
        assert_eq!(rdns.len(), 6);
        let first = rdns[0].0.iter().next().expect("C");
        assert_eq!(first.oid, rfc4519::C, "country first in DER order");
        assert_eq!(
            PrintableStringRef::try_from(&first.value)
                .expect("printable")
                .as_str(),
            "VN"
        );
        let last = rdns[5].0.iter().next().expect("CN");
        assert_eq!(last.oid, rfc4519::CN);
        assert_eq!(
            Utf8StringRef::try_from(&last.value).expect("utf8").as_str(),
            "Nguyễn Văn Ánh"
        );
        let title = rdns[4].0.iter().next().expect("title");
        assert_eq!(title.oid.to_string(), "2.5.4.12");
        assert_eq!(
            Utf8StringRef::try_from(&title.value)
                .expect("utf8")
                .as_str(),
            "Chủ tịch"
        );
        assert_eq!(
            rdns[3].0.iter().next().expect("uid").oid.to_string(),
            "0.9.2342.19200300.100.1.1"
        );
    }

    #[test]
    fn escaped_commas_and_oids() {
        let name = parse_subject(r"CN=Công ty A\, B,2.5.4.12=Giám đốc").expect("parses");
        assert_eq!(name.0.len(), 2);
        let cn = name.0[1].0.iter().next().expect("cn");
        assert_eq!(
            Utf8StringRef::try_from(&cn.value).expect("utf8").as_str(),
            "Công ty A, B"
        );
        assert!(parse_subject("").is_err());
        assert!(parse_subject("NOPE=x").is_err());
    }

    #[test]
    fn prepared_request_digest_covers_the_info() {
        // A P-256 public key (the generator point; any valid point will do).
        let spki = hex_literal_spki();
        let name = parse_subject("CN=Test,C=VN").expect("subject");
        let p = PreparedCsr::new(name, &spki).expect("prepared");
        assert_eq!(p.mechanism, SignMechanism::Ecdsa);
        let tbs = p.info.to_der().expect("der");
        assert_eq!(p.digest, DigestAlgorithm::Sha256.digest(&tbs));
        let req = p
            .finish(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
            .expect("req");
        let pem = to_pem(&req).expect("pem");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    }

    fn hex_literal_spki() -> Vec<u8> {
        let gx = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
        let gy = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let point = hex::decode(format!("04{gx}{gy}")).expect("hex");
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oid::EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&oid::P256)),
            },
            subject_public_key: BitString::from_bytes(&point).expect("bits"),
        }
        .to_der()
        .expect("der")
    }
}

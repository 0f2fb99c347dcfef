//! `TimeStampReq` (RFC 3161 §2.4.1).

use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, Uint};
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;

use crate::crypto::DigestAlgorithm;
use crate::error::{Error, Result};

/// ```text
/// TimeStampReq ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    messageImprint               MessageImprint,
///    reqPolicy                    TSAPolicyId              OPTIONAL,
///    nonce                        INTEGER                  OPTIONAL,
///    certReq                      BOOLEAN                  DEFAULT FALSE,
///    extensions               [0] IMPLICIT Extensions      OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampReq {
    /// Always 1.
    pub version: u8,
    /// The hash of the datum to be time-stamped.
    pub message_imprint: MessageImprint,
    /// "the TSA policy under which the TimeStampToken SHOULD be provided".
    #[asn1(optional = "true")]
    pub req_policy: Option<ObjectIdentifier>,
    /// "allows the client to verify the timeliness of the response when no
    /// local clock is available".
    #[asn1(optional = "true")]
    pub nonce: Option<Uint>,
    /// "If the certReq field is present and set to true, the TSA's public key
    /// certificate ... MUST be provided by the TSA in the certificates field".
    #[asn1(default = "Default::default")]
    pub cert_req: bool,
    /// Not used by kyso.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// ```text
/// MessageImprint ::= SEQUENCE  {
///      hashAlgorithm                AlgorithmIdentifier,
///      hashedMessage                OCTET STRING  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct MessageImprint {
    /// The hash algorithm.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// "The length of the hash MUST match the hash algorithm identified".
    pub hashed_message: OctetString,
}

impl TimeStampReq {
    /// A v1 request for `digest` (SHA-256/384/512 of the datum), with the
    /// caller's random `nonce` (its bytes as an unsigned integer), certReq
    /// true, and the policy when one is asked for.
    pub fn new(
        algorithm: DigestAlgorithm,
        digest: &[u8],
        nonce: &[u8],
        policy: Option<ObjectIdentifier>,
    ) -> Result<Self> {
        if algorithm == DigestAlgorithm::Sha1 {
            return Err(Error::InvalidRequest(
                "a timestamp request with SHA-1 is not made".into(),
            ));
        }
        if digest.len() != algorithm.output_len() {
            return Err(Error::InvalidRequest(format!(
                "a {algorithm} digest has {} bytes, {} given",
                algorithm.output_len(),
                digest.len()
            )));
        }
        if nonce.is_empty() || nonce.len() > 32 || nonce.iter().all(|b| *b == 0) {
            return Err(Error::InvalidRequest(
                "the nonce must be 1 to 32 random bytes, not all zero".into(),
            ));
        }
        Ok(Self {
            version: 1,
            message_imprint: MessageImprint::new(algorithm, digest)?,
            req_policy: policy,
            nonce: Some(Uint::new(nonce).map_err(|e| Error::InvalidRequest(e.to_string()))?),
            cert_req: true,
            extensions: None,
        })
    }

    /// The DER to POST as `application/timestamp-query`.
    pub fn to_der_bytes(&self) -> Result<Vec<u8>> {
        self.to_der()
            .map_err(|e| Error::InvalidRequest(format!("cannot encode TimeStampReq: {e}")))
    }
}

impl MessageImprint {
    /// The imprint of `digest` under `algorithm` (parameters absent, as
    /// RFC 5754 §2 says for SHA-2).
    pub fn new(algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Self> {
        Ok(Self {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: algorithm.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(digest)
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        })
    }
}

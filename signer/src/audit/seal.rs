//! Seals: what the HSM signs, and the trait the signer implements with it.

use const_oid::ObjectIdentifier;
use futures::future::BoxFuture;
use kyso_pki::crypto::oid;

/// A signature over a seal message, made with the audit seal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSignature {
    /// The signature algorithm: sha256/384/512WithRSAEncryption or
    /// ecdsa-with-SHA256/384/512 (RSASSA-PSS is not accepted: its
    /// parameters would have to be recorded).
    pub algorithm: ObjectIdentifier,
    /// The HSM key name.
    pub key_name: String,
    /// SHA-256 of the key's certificate (DER), hex; empty if it has none.
    pub certificate_fingerprint: String,
    /// The signature (ECDSA: DER `Ecdsa-Sig-Value`).
    pub signature: Vec<u8>,
}

/// Why no seal signature was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

impl SealError {
    /// An error with this message.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

/// Signs seal messages with an HSM key; the signer implements it.
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// Signs `message` (see [`seal_message`]) with the seal key.
    fn seal<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>>;
}

/// The bytes a seal signs: `kyso-audit-seal-v1:<through>:<head hex>`.
pub fn seal_message(through: u64, head: &[u8; 32]) -> Vec<u8> {
    format!("kyso-audit-seal-v1:{through}:{}", hex::encode(head)).into_bytes()
}

/// Whether the verifier can check this algorithm without parameters.
pub(crate) fn algorithm_supported(alg: &ObjectIdentifier) -> bool {
    [
        oid::SHA256_WITH_RSA,
        oid::SHA384_WITH_RSA,
        oid::SHA512_WITH_RSA,
        oid::ECDSA_WITH_SHA256,
        oid::ECDSA_WITH_SHA384,
        oid::ECDSA_WITH_SHA512,
    ]
    .contains(alg)
}

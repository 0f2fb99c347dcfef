//! The registry's certificate book as a [`CertificateSource`] (issue 15, item 8): a
//! signature that does not carry its signer's certificate is verified with the copy the
//! registry holds, found by the SignerIdentifier (issuer and serial, or subject key
//! identifier) through `FindCertificates`. What the book returns is only a candidate: it
//! must match the identifier, and the signature value decides; the report says the
//! certificate came from the registry.
//!
//! A lookup the registry does not answer is not "no certificate": the caller asks
//! [`RegistryBook::answered`] after verifying and fails closed (UNAVAILABLE, retried), rather
//! than refusing a document for want of an answer.

use std::sync::Mutex;

use futures::future::BoxFuture;
use kyso_pki::cert::Cert;
use kyso_pki::cms::matches_sid;
use kyso_pki::name::rfc4514;
use kyso_proto::registry::v1 as reg;
use kyso_validation::certsource::{
    CertificateOrigin, CertificateSource, MAX_SUPPLIED_CERTIFICATES, SignerIdentifier,
};

use crate::authority::Registry;
use crate::error::{Error, Result};

/// The registry's book, asked once per signer that a verification looks up.
#[derive(Debug)]
pub struct RegistryBook {
    registry: Registry,
    /// The first lookup the registry did not answer.
    failure: Mutex<Option<String>>,
}

impl RegistryBook {
    /// The book behind `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            failure: Mutex::new(None),
        }
    }

    /// Err (registry unavailable) when a lookup was not answered: the verdict reached
    /// without it is not one to act on.
    pub fn answered(&self) -> Result<()> {
        let failure = match self.failure.lock() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match failure {
            Some(reason) => Err(Error::RegistryUnavailable { reason }),
            None => Ok(()),
        }
    }

    fn fail(&self, reason: String) {
        let mut f = match self.failure.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        f.get_or_insert(reason);
    }
}

/// The question for a SignerIdentifier, in the forms the registry stores: the issuer in
/// kyso's one rendering of names, the serial and the key identifier in hex.
fn question(sid: &SignerIdentifier) -> reg::FindCertificatesRequest {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => reg::FindCertificatesRequest {
            issuer: rfc4514(&ias.issuer),
            serial: hex::encode_upper(ias.serial_number.as_bytes()),
            subject_key_identifier: String::new(),
        },
        SignerIdentifier::SubjectKeyIdentifier(ski) => reg::FindCertificatesRequest {
            subject_key_identifier: hex::encode(ski.0.as_bytes()),
            ..Default::default()
        },
    }
}

impl CertificateSource for RegistryBook {
    fn signer_candidates<'a>(&'a self, sid: &'a SignerIdentifier) -> BoxFuture<'a, Vec<Cert>> {
        Box::pin(async move {
            match self.registry.find_certificates(question(sid)).await {
                Ok(ders) => ders
                    .iter()
                    .take(MAX_SUPPLIED_CERTIFICATES)
                    .filter_map(|d| Cert::from_der(d).ok())
                    .filter(|c| matches_sid(c, sid))
                    .collect(),
                Err(e) => {
                    self.fail(e.to_string());
                    Vec::new()
                }
            }
        })
    }

    fn origin(&self) -> CertificateOrigin {
        CertificateOrigin::Registry
    }
}

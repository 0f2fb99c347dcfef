//! Where a signer's certificate may come from when the signature does not carry it
//! (issue 15 item 8): certificates the caller supplies (`kyso verify --certificates`,
//! the verifier RPC's `certificates` field) and, behind the same [`CertificateSource`]
//! hook, a service's own book of certificates.
//!
//! A certificate found here is only a candidate: it must match the SignerIdentifier
//! (issuerAndSerialNumber or subjectKeyIdentifier), the signature value decides among
//! candidates, and the one that verifies is then judged like an embedded one (path,
//! validity, revocation at the reference time). A candidate whose key does not verify
//! is reported and not used.

use futures::future::BoxFuture;
use kyso_pki::cert::Cert;
use kyso_pki::cms::matches_sid;
use kyso_pki::name::rfc4514;
use serde::Serialize;

pub use cms::signed_data::SignerIdentifier;

/// Certificates one request may supply.
pub const MAX_SUPPLIED_CERTIFICATES: usize = 32;
/// Bytes of one supplied certificate (DER).
pub const MAX_SUPPLIED_CERTIFICATE_BYTES: usize = 64 << 10;

/// Where the signer's certificate was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateOrigin {
    /// In the signature's own `certificates`.
    Embedded,
    /// Among the certificates the caller supplied with the request.
    Supplied,
    /// In the registry's certificate book (a service's own [`CertificateSource`]).
    Registry,
}

/// A place to look up the signer's certificate by its SignerIdentifier.
pub trait CertificateSource: Send + Sync {
    /// Certificates that match `sid`; candidates only, the signature decides.
    fn signer_candidates<'a>(&'a self, sid: &'a SignerIdentifier) -> BoxFuture<'a, Vec<Cert>>;
    /// Certificates path building may use as intermediates (the caller's own chain).
    fn path_certificates(&self) -> &[Cert] {
        &[]
    }
    /// What a certificate found here is reported as.
    fn origin(&self) -> CertificateOrigin;
}

/// The certificates a caller supplied with its request (in-process: the CLI's files).
#[derive(Clone, Debug, Default)]
pub struct SuppliedCertificates {
    certs: Vec<Cert>,
}

impl SuppliedCertificates {
    /// Already parsed certificates.
    pub fn new(certs: Vec<Cert>) -> Self {
        Self { certs }
    }

    /// DER certificates from a request, bounded in count and size; the error names the
    /// first offending entry (`certificates[3]: ...`).
    pub fn from_der<B: AsRef<[u8]>>(ders: &[B]) -> Result<Self, String> {
        if ders.len() > MAX_SUPPLIED_CERTIFICATES {
            return Err(format!(
                "{} certificates given, at most {MAX_SUPPLIED_CERTIFICATES}",
                ders.len()
            ));
        }
        let mut certs = Vec::with_capacity(ders.len());
        for (i, der) in ders.iter().enumerate() {
            let der = der.as_ref();
            if der.len() > MAX_SUPPLIED_CERTIFICATE_BYTES {
                return Err(format!(
                    "certificates[{i}]: {} bytes, at most {MAX_SUPPLIED_CERTIFICATE_BYTES}",
                    der.len()
                ));
            }
            let cert = Cert::from_der(der)
                .map_err(|e| format!("certificates[{i}]: not a DER X.509 certificate: {e}"))?;
            if !certs.contains(&cert) {
                certs.push(cert);
            }
        }
        Ok(Self { certs })
    }

    /// The certificates.
    pub fn certs(&self) -> &[Cert] {
        &self.certs
    }

    /// Whether none was supplied.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl CertificateSource for SuppliedCertificates {
    fn signer_candidates<'a>(&'a self, sid: &'a SignerIdentifier) -> BoxFuture<'a, Vec<Cert>> {
        let found = self
            .certs
            .iter()
            .filter(|c| matches_sid(c, sid))
            .cloned()
            .collect();
        Box::pin(std::future::ready(found))
    }

    fn path_certificates(&self) -> &[Cert] {
        &self.certs
    }

    fn origin(&self) -> CertificateOrigin {
        CertificateOrigin::Supplied
    }
}

/// How a certificate is named to a clerk: subject, issuer, serial.
pub(crate) fn describe(cert: &Cert) -> String {
    format!(
        "\"{}\" (issuer \"{}\", serial {})",
        rfc4514(cert.subject()),
        rfc4514(cert.issuer()),
        cert.serial_hex()
    )
}

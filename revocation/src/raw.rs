//! Revocation data as bytes, for embedding (PAdES B-LT: the DSS of ETSI EN 319
//! 142-1 §5.4.2; CAdES B-LT's revocation values): the OCSP response or CRL that
//! answers for a certificate, fetched now through the same [`crate::Fetcher`]
//! (outbound policy, breaker, body bound) and verified exactly as the checker
//! verifies what it caches, but returned as the DER the source sent.
//!
//! The checker's caches keep only what a verdict needs (an index of a CRL, the
//! status of an OCSP answer), not the signed bytes, so embedding asks again.

use kyso_pki::cert::Cert;
use kyso_pki::time::OffsetDateTime;

use crate::fetch::FetchSource;
use crate::{
    DistributionPoint, RevocationChecker, RevocationPolicy, crl, crl_points, ocsp, ocsp_urls,
};

/// What was fetched for one certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRevocation {
    /// DER `OCSPResponse`s that verified (good or revoked, not unknown).
    pub ocsps: Vec<Vec<u8>>,
    /// DER CRLs that verified.
    pub crls: Vec<Vec<u8>>,
    /// Why a source named by the certificate gave nothing usable.
    pub errors: Vec<String>,
}

impl RawRevocation {
    /// No OCSP response and no CRL.
    pub fn is_empty(&self) -> bool {
        self.ocsps.is_empty() && self.crls.is_empty()
    }
}

impl RevocationChecker {
    /// Fetches, verifies and returns the raw revocation data of `cert` (issued by
    /// `issuer`) in the configured order, stopping at the first source that answers
    /// (an OCSP response, or one CRL). Policy `Off` fetches nothing.
    pub async fn fetch_raw(
        &self,
        cert: &Cert,
        issuer: &Cert,
        now: OffsetDateTime,
        policy: RevocationPolicy,
    ) -> RawRevocation {
        let mut out = RawRevocation::default();
        if policy == RevocationPolicy::Off {
            return out;
        }
        let inner = &*self.0;
        let cap = inner.fetcher.policy().max_urls_per_certificate;
        for source in inner.cfg.order.sources() {
            match source {
                crate::RevocationSource::Ocsp => {
                    let urls = match ocsp_urls(cert) {
                        Ok(u) => u,
                        Err(e) => {
                            out.errors.push(e);
                            continue;
                        }
                    };
                    if urls.is_empty() {
                        continue;
                    }
                    let req = match ocsp::build_request(cert, issuer, inner.cfg.ocsp_nonce) {
                        Ok(r) => r,
                        Err(e) => {
                            out.errors.push(e);
                            continue;
                        }
                    };
                    for url in urls.iter().take(cap) {
                        let body = match inner
                            .fetcher
                            .post(
                                url,
                                ocsp::REQUEST_CONTENT_TYPE,
                                req.der.clone(),
                                FetchSource::Ocsp,
                            )
                            .await
                        {
                            Ok(b) => b,
                            Err(e) => {
                                out.errors.push(format!("OCSP {url}: {e}"));
                                continue;
                            }
                        };
                        match ocsp::verify_response(&body, &req, cert, issuer, now, &inner.sig) {
                            Ok(a) if !matches!(a.status, ocsp::OcspStatus::Unknown) => {
                                out.ocsps.push(body.to_vec());
                                return out;
                            }
                            Ok(_) => out.errors.push(format!(
                                "OCSP {url}: the responder does not know the certificate"
                            )),
                            Err(e) => out.errors.push(format!("OCSP {url}: {e}")),
                        }
                    }
                }
                crate::RevocationSource::Crl => {
                    let points = match crl_points(cert) {
                        Ok(p) => p,
                        Err(e) => {
                            out.errors.push(e);
                            continue;
                        }
                    };
                    let urls = points.iter().flat_map(|p| match p {
                        DistributionPoint::Urls(u) => u.clone(),
                        DistributionPoint::Unsupported(_) => Vec::new(),
                    });
                    for url in urls.take(cap) {
                        let body = match inner.fetcher.get(&url, FetchSource::Crl).await {
                            Ok(b) => b,
                            Err(e) => {
                                out.errors.push(format!("CRL {url}: {e}"));
                                continue;
                            }
                        };
                        let der = match pem_to_der(&body) {
                            Ok(d) => d,
                            Err(e) => {
                                out.errors.push(format!("CRL {url}: {e}"));
                                continue;
                            }
                        };
                        let issuer = issuer.clone();
                        let sig = inner.sig;
                        let checked = der.clone();
                        // Verifying a national CRL is long: off the runtime thread.
                        let verified = tokio::task::spawn_blocking(move || {
                            crl::parse_and_verify(&checked, &issuer, now, &sig)
                        })
                        .await
                        .map_err(|e| format!("CRL processing failed: {e}"))
                        .and_then(|r| r);
                        match verified.and_then(|index| index.lookup(cert, &url)) {
                            Ok(_) => {
                                out.crls.push(der);
                                return out;
                            }
                            Err(e) => out.errors.push(format!("CRL {url}: {e}")),
                        }
                    }
                }
                crate::RevocationSource::None => {}
            }
        }
        out
    }
}

/// A CRL as DER: PEM armour removed when the distribution point serves PEM.
fn pem_to_der(body: &[u8]) -> Result<Vec<u8>, String> {
    let trimmed = body.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(body.to_vec());
    }
    let (label, der) =
        der::pem::decode_vec(trimmed).map_err(|e| format!("malformed PEM CRL: {e}"))?;
    if label != "X509 CRL" {
        return Err(format!("PEM block {label:?} is not an X509 CRL"));
    }
    Ok(der)
}

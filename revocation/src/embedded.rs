//! Revocation evidence embedded with a signature (ETSI EN 319 102-1 §5.6.2.3, past
//! signature validation): the OCSP responses and CRLs of a PDF's DSS or of a CAdES
//! signer's revocation-values. Each is verified exactly as a fetched one (signature by
//! the certificate's issuer or its delegated responder, thisUpdate/nextUpdate order,
//! the certificate's serial, CRL scope); one that does not verify, or speaks about
//! another certificate, is no evidence and is named in the warnings instead.
//!
//! Embedded evidence settles a certificate's status when it speaks about the reference
//! time (the proof of existence): a "good" issued at or after the POE says the
//! certificate was not revoked before it, and so does one whose validity window
//! (thisUpdate to nextUpdate) spans the POE; a "revoked" settles it whatever its date
//! (the revocation time is compared with the POE by the caller).

use kyso_pki::cert::Cert;
use kyso_pki::time::{OffsetDateTime, rfc3339};

use crate::evidence::{CertStatus, EvidenceOrigin, RevocationSource};
use crate::ocsp::OcspStatus;
use crate::{
    DistributionPoint, Evidence, RevocationChecker, RevocationOutcome, Status, crl, crl_points,
    ocsp, revoked,
};

/// One embedded OCSP response or CRL, as DER, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedItem {
    /// DER: an `OCSPResponse` or `BasicOCSPResponse`, or a `CertificateList`.
    pub der: Vec<u8>,
    /// The DSS or the CMS.
    pub origin: EvidenceOrigin,
}

/// The revocation data embedded with one signature.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedRevocation {
    /// OCSP responses.
    pub ocsps: Vec<EmbeddedItem>,
    /// CRLs.
    pub crls: Vec<EmbeddedItem>,
}

impl EmbeddedRevocation {
    /// Nothing embedded.
    pub fn is_empty(&self) -> bool {
        self.ocsps.is_empty() && self.crls.is_empty()
    }
}

impl RevocationChecker {
    /// The status of `cert` (issued by `issuer`) from the `embedded` data alone:
    /// `Some` when a verified item about `cert` settles it at `reference_time` (see the
    /// module), with the evidence used. Items that do not verify or concern another
    /// certificate are ignored, each with a line in `ignored` (a DSS holds the data of
    /// every signature of the document, so "another certificate" is common: only items
    /// issued by `issuer` that fail are worth a line).
    pub async fn check_embedded(
        &self,
        cert: &Cert,
        issuer: &Cert,
        embedded: &EmbeddedRevocation,
        reference_time: OffsetDateTime,
        now: OffsetDateTime,
        ignored: &mut Vec<String>,
    ) -> Option<RevocationOutcome> {
        if embedded.is_empty() {
            return None;
        }
        let base = Evidence::new(cert);
        let sig = &self.0.sig;
        let skew = sig.clock_skew;
        let who = cert.entry_names().subject.clone();
        let mut too_old = false;
        let mut notes = Vec::new();
        for item in &embedded.ocsps {
            let answer = match ocsp::verify_embedded(&item.der, cert, issuer, now, sig) {
                Ok(a) => a,
                Err(e) => {
                    notes.push(format!(
                        "an embedded OCSP response ({}) is no evidence for {who}: {e}",
                        origin_name(item.origin)
                    ));
                    continue;
                }
            };
            let mut ev = base.blank(RevocationSource::Ocsp, None, CertStatus::Unknown);
            ev.origin = item.origin;
            ev.this_update = Some(answer.this_update);
            ev.next_update = answer.next_update;
            ev.produced_at = Some(answer.produced_at);
            let status = match answer.status {
                OcspStatus::Revoked { time, reason } => {
                    revoked(&mut ev, time, reason, reference_time)
                }
                OcspStatus::Good
                    if speaks_for(answer.this_update, answer.next_update, reference_time, skew) =>
                {
                    ev.status = CertStatus::Good;
                    Status::Good
                }
                OcspStatus::Good => {
                    ev.status = CertStatus::Good;
                    ev.detail = Some(format!(
                        "embedded, but issued at {} and valid until before the reference time {}: it says nothing about it",
                        rfc3339(answer.this_update),
                        rfc3339(reference_time)
                    ));
                    too_old = true;
                    continue;
                }
                OcspStatus::Unknown => continue,
            };
            return Some(RevocationOutcome {
                status,
                evidence: vec![ev],
            });
        }
        let dp_urls: Vec<String> = crl_points(cert)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|p| match p {
                DistributionPoint::Urls(u) => u,
                DistributionPoint::Unsupported(_) => Vec::new(),
            })
            .collect();
        for item in &embedded.crls {
            let index = match parse_off_runtime(&item.der, issuer, now, sig).await {
                Ok(i) => i,
                // CRLs of other issuers are expected in a DSS: not worth a line.
                Err(e) if e.starts_with("CRL is issued by") => continue,
                Err(e) => {
                    notes.push(format!(
                        "an embedded CRL ({}) is no evidence for {who}: {e}",
                        origin_name(item.origin)
                    ));
                    continue;
                }
            };
            // The CRL must speak for one of the certificate's distribution points (or
            // for all of the issuer's certificates, when it names none).
            let lookup = if dp_urls.is_empty() {
                index.lookup(cert, "")
            } else {
                dp_urls
                    .iter()
                    .map(|u| index.lookup(cert, u))
                    .find(Result::is_ok)
                    .unwrap_or_else(|| index.lookup(cert, &dp_urls[0]))
            };
            let mut ev = base.blank(RevocationSource::Crl, None, CertStatus::Unknown);
            ev.origin = item.origin;
            ev.this_update = Some(index.this_update);
            ev.next_update = index.next_update;
            let status = match lookup {
                Err(e) => {
                    notes.push(format!(
                        "an embedded CRL ({}) is no evidence for {who}: {e}",
                        origin_name(item.origin)
                    ));
                    continue;
                }
                Ok(Some(entry)) => {
                    revoked(&mut ev, entry.revocation_date, entry.reason, reference_time)
                }
                Ok(None)
                    if speaks_for(index.this_update, index.next_update, reference_time, skew) =>
                {
                    ev.status = CertStatus::Good;
                    Status::Good
                }
                Ok(None) => {
                    ev.status = CertStatus::Good;
                    ev.detail = Some(format!(
                        "embedded, but issued at {} and valid until before the reference time {}: it says nothing about it",
                        rfc3339(index.this_update),
                        rfc3339(reference_time)
                    ));
                    too_old = true;
                    continue;
                }
            };
            return Some(RevocationOutcome {
                status,
                evidence: vec![ev],
            });
        }
        // Only when nothing settled it: a DSS holds the data of every certificate of
        // every signature, so items about others are the rule, not a fault.
        ignored.append(&mut notes);
        if too_old {
            ignored.push(format!(
                "embedded revocation data for {who} predates the reference time; it was not used"
            ));
        }
        None
    }
}

/// A CRL parsed and verified on the blocking pool, as a fetched one is: an embedded
/// national CRL is as large as a fetched one, and decoding and hashing it would stall
/// the other requests served by this runtime thread.
async fn parse_off_runtime(
    der: &[u8],
    issuer: &Cert,
    now: OffsetDateTime,
    sig: &crate::signed::SigCheck,
) -> Result<crl::CrlIndex, String> {
    let (der, issuer, sig) = (der.to_vec(), issuer.clone(), *sig);
    tokio::task::spawn_blocking(move || crl::parse_and_verify(&der, &issuer, now, &sig))
        .await
        .map_err(|e| format!("CRL processing failed: {e}"))?
}

/// Whether a "good" issued at `this_update` says something about `reference`: issued
/// at or after it (within the clock skew), or valid across it (its nextUpdate, the
/// issuer's promise that the status holds until then, is not before it).
fn speaks_for(
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    reference: OffsetDateTime,
    skew: time::Duration,
) -> bool {
    this_update + skew >= reference || next_update.is_some_and(|n| n >= reference)
}

fn origin_name(o: EvidenceOrigin) -> &'static str {
    match o {
        EvidenceOrigin::Fetched => "fetched",
        EvidenceOrigin::EmbeddedDss => "DSS",
        EvidenceOrigin::EmbeddedCms => "CMS revocation values",
    }
}

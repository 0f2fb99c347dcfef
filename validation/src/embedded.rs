//! Validation data embedded with a signature (ETSI EN 319 102-1 §5.6.2, past signature
//! validation; issue 16 item 4): the certificates and the OCSP responses and CRLs of a
//! PDF's DSS and of a CAdES signer's certificate-values / revocation-values. The
//! certificates join the path builder's pool (never as anchors: a path must still end
//! at a configured anchor); the revocation data is checked exactly as fetched data
//! (`RevocationChecker::check_embedded`) before any fetch is tried.

use kyso_pki::cert::Cert;
use kyso_pki::cms;
use kyso_revocation::{EmbeddedItem, EmbeddedRevocation, EvidenceOrigin};

use crate::report::{CertStatus, RevocationEvidence, SignatureReport};
use crate::timestamps::{SignatureLevel, TimestampReport};

/// At most this many certificates, OCSP responses and CRLs (each) are taken from one
/// place: each item may cost a signature check per certificate of a path.
const MAX_ITEMS: usize = 256;

/// What one signature brings with it.
#[derive(Clone, Debug, Default)]
pub(crate) struct EmbeddedData {
    /// Certificates for the pool.
    pub certs: Vec<Cert>,
    /// OCSP responses and CRLs.
    pub revocation: EmbeddedRevocation,
    /// Items that could not be read.
    pub warnings: Vec<String>,
}

impl EmbeddedData {
    /// Nothing embedded.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.revocation.is_empty()
    }

    /// A PDF's DSS.
    pub fn from_dss(dss: &kyso_pdf::DssContents) -> Self {
        let mut out = Self::default();
        out.add(
            &dss.certs,
            &dss.ocsps,
            &dss.crls,
            EvidenceOrigin::EmbeddedDss,
            "the DSS",
        );
        out
    }

    /// The certificate-values, revocation-values and `SignedData.crls` of signer
    /// `index` of `msg`.
    pub fn from_cms(msg: &cms::SignedDataMessage, index: usize) -> Self {
        let mut out = Self::default();
        if let Some(e) = cms::embedded(msg, index) {
            out.warnings.extend(e.warnings.iter().cloned());
            out.add(
                &e.certificates,
                &e.ocsp,
                &e.crls,
                EvidenceOrigin::EmbeddedCms,
                "the CMS",
            );
        }
        out
    }

    /// `self` and `other` together.
    pub fn with(mut self, other: &Self) -> Self {
        self.certs.extend(other.certs.iter().cloned());
        self.revocation
            .ocsps
            .extend(other.revocation.ocsps.iter().cloned());
        self.revocation
            .crls
            .extend(other.revocation.crls.iter().cloned());
        self.warnings.extend(other.warnings.iter().cloned());
        self
    }

    fn add(
        &mut self,
        certs: &[Vec<u8>],
        ocsps: &[Vec<u8>],
        crls: &[Vec<u8>],
        origin: EvidenceOrigin,
        place: &str,
    ) {
        let (certs, ocsps, crls) = (
            capped(certs, place, "certificates", &mut self.warnings),
            capped(ocsps, place, "OCSP responses", &mut self.warnings),
            capped(crls, place, "CRLs", &mut self.warnings),
        );
        for der in certs {
            match Cert::from_der(der) {
                Ok(c) if !self.certs.contains(&c) => self.certs.push(c),
                Ok(_) => {}
                Err(e) => self
                    .warnings
                    .push(format!("a certificate in {place} was ignored: {e}")),
            }
        }
        let item = |der: &Vec<u8>| EmbeddedItem {
            der: der.clone(),
            origin,
        };
        self.revocation.ocsps.extend(ocsps.iter().map(item));
        self.revocation.crls.extend(crls.iter().map(item));
    }

    /// Whether the embedded data settled the revocation of a whole path: every piece
    /// of evidence that gave a status came from it (B-LT reached, not merely claimed).
    pub fn sufficient(&self, evidence: &[RevocationEvidence]) -> bool {
        let decisive: Vec<&RevocationEvidence> = evidence
            .iter()
            .filter(|e| matches!(e.status, CertStatus::Good | CertStatus::Revoked))
            .collect();
        !self.revocation.is_empty()
            && !decisive.is_empty()
            && decisive.iter().all(|e| e.origin != EvidenceOrigin::Fetched)
            && !evidence.iter().any(|e| e.status == CertStatus::Unknown)
    }
}

/// The first [`MAX_ITEMS`] of `items`, with a warning when there were more.
fn capped<'a>(
    items: &'a [Vec<u8>],
    place: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> &'a [Vec<u8>] {
    if items.len() > MAX_ITEMS {
        warnings.push(format!(
            "{place} holds {} {what}; only the first {MAX_ITEMS} were used",
            items.len()
        ));
    }
    &items[..items.len().min(MAX_ITEMS)]
}

/// The level the signature reaches: B-LT (and B-LTA) only when the embedded data
/// actually settled the revocation of the signer's path; data that is present but
/// does not is said in a warning, and the level stays B-T.
pub(crate) fn level_reached(
    timestamps: &[TimestampReport],
    embedded: &EmbeddedData,
    report: &mut SignatureReport,
) -> SignatureLevel {
    let sufficient = embedded.sufficient(&report.revocation);
    let level = SignatureLevel::of(timestamps, sufficient);
    if !sufficient
        && !embedded.is_empty()
        && SignatureLevel::of(timestamps, true) >= SignatureLevel::BLt
    {
        report.warnings.push(
            "validation data incomplete: the embedded data does not settle the revocation of the signer's path; the level is B-T".into(),
        );
    }
    level
}

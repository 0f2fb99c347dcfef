//! Certificates and certification path building over a set of them
//! (kyso-pki `cert` and `path`): the signature's own certificates are
//! attacker-chosen, and N2's path-building budget must hold whatever they are.
//!
//! Input: DER certificates one after the other (or a PEM bundle). Every
//! certificate is parsed and read as the reports read it; then the last one
//! is the trust anchor, the first the leaf and the rest the pool, and a path
//! is built with the default [`PathBudget`]. Downloads go to an
//! [`IssuerSource`] that has nothing, so the AIA branch runs with no network.

use std::sync::Arc;

use const_oid::db::rfc5280::ID_AD_OCSP;
use der::{Reader, SliceReader};
use futures::future::BoxFuture;
use kyso_pki::cert::{Cert, SignerIdentity};
use kyso_pki::path::{
    CertSource, PathBudget, PathBuilder, PathEntry, TrustStore, aia_urls, ca_issuers_urls,
};
use kyso_pki::time::OffsetDateTime;

/// Most certificates taken from one input: enough for the 17-certificate
/// loop of issue 14 and a little more; the budget, not this, bounds the work.
const MAX_CERTS: usize = 24;

/// AIA downloads that never succeed (this crate does no I/O).
#[derive(Debug)]
struct NoIssuers;

impl kyso_pki::path::IssuerSource for NoIssuers {
    fn fetch_issuers<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async { Err("no network while fuzzing".to_owned()) })
    }
}

/// Parses every certificate and builds a path over them; must not panic and
/// must stay within the path builder's budget.
pub fn certs(data: &[u8]) {
    let _ = Cert::parse_many(data);
    let certs: Vec<Cert> = split_der(data)
        .into_iter()
        .filter_map(|der| Cert::from_der(der).ok())
        .collect();
    for c in &certs {
        read_like_reports(c);
    }
    let (Some(leaf), Some(anchor)) = (certs.first(), certs.last()) else {
        return;
    };
    // The anchor also allows SHA-1 below it, so the legacy branch is reached.
    let trust = TrustStore::new(vec![anchor.clone()], Vec::new(), &[*anchor.fingerprint()]);
    let builder = PathBuilder::new(Arc::new(trust), Some(Arc::new(NoIssuers)))
        .with_budget(PathBudget::default());
    let pool = certs.get(1..certs.len().saturating_sub(1)).unwrap_or(&[]);
    if let Ok(path) = futures::executor::block_on(builder.build(leaf, pool)) {
        let _ = path.check_validity(OffsetDateTime::UNIX_EPOCH);
        for pc in &path.certs {
            let _ = PathEntry::new(&pc.cert, pc.source.clone());
        }
    }
    let _ = PathEntry::new(leaf, CertSource::Signature);
}

/// Everything the verification report and the signer read from a certificate.
fn read_like_reports(c: &Cert) {
    let _ = SignerIdentity::from_cert(c);
    let _ = (c.identity(), c.entry_names(), c.kind(), c.serial_hex());
    let _ = (c.basic_constraints(), c.key_usage(), c.extended_key_usage());
    let _ = ca_issuers_urls(c);
    let _ = aia_urls(c, ID_AD_OCSP);
}

/// Splits concatenated DER elements (stops at the first that does not
/// parse, or after [`MAX_CERTS`]).
fn split_der(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let Ok(mut reader) = SliceReader::new(data) else {
        return out;
    };
    while out.len() < MAX_CERTS && !reader.is_finished() {
        match reader.tlv_bytes() {
            Ok(tlv) => out.push(tlv),
            Err(_) => break,
        }
    }
    out
}

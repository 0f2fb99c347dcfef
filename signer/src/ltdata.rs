//! The validation data of the signer's own certificates (N1, R1: B-LT): the path of a
//! signing certificate to its trust anchor and the OCSP response or CRL for every
//! certificate on it but the anchor, as the DER the sources sent, for CAdES
//! certificate-values / revocation-values and a PAdES DSS.
//!
//! Fetched through the signer's verifier (its `[trust]` anchors, outbound policy, breaker and
//! body bounds; `kyso_revocation::raw::RevocationChecker::fetch_raw` verifies every answer
//! before returning it) and kept per certificate for as long as it stays current: until the
//! earliest CRL nextUpdate, and never longer than the own-certificate check's TTL (an OCSP
//! answer is as fresh as the signer's own check of its certificate). A busy signer fetches
//! once per certificate and period, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kyso_pki::cert::Cert;
use kyso_pki::path::PathBuilder;
use kyso_validation::report::RevocationPolicy;
use kyso_validation::verify::Verifier;
use time::OffsetDateTime;

/// The validation data of one signing certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathData {
    /// The path, leaf first, anchor last (DER).
    pub certificates: Vec<Vec<u8>>,
    /// DER `OCSPResponse`s.
    pub ocsps: Vec<Vec<u8>>,
    /// DER CRLs.
    pub crls: Vec<Vec<u8>>,
}

impl PathData {
    /// Adds what `other` has and this lacks (each item once).
    pub fn merge(&mut self, other: &PathData) {
        for (list, items) in [
            (&mut self.certificates, &other.certificates),
            (&mut self.ocsps, &other.ocsps),
            (&mut self.crls, &other.crls),
        ] {
            for i in items {
                push_unique(list, i);
            }
        }
    }

    /// As kyso-pki's CAdES attribute input.
    pub fn cades(&self) -> kyso_pki::cms_build::ValidationData {
        kyso_pki::cms_build::ValidationData {
            certificates: self.certificates.clone(),
            crls: self.crls.clone(),
            ocsp: self.ocsps.clone(),
        }
    }
}

/// The source of the signer's validation data, with its cache.
#[derive(Clone, Debug)]
pub struct ValidationSource {
    verifier: Verifier,
    ttl: Duration,
    cache: Arc<Mutex<Cached>>,
}

/// By certificate fingerprint: the data and until when it is used.
type Cached = HashMap<[u8; 32], (Arc<PathData>, OffsetDateTime)>;

/// Most certificates kept (the signer has few keys; a bound all the same).
const MAX_CACHED: usize = 1_024;

impl ValidationSource {
    /// A source over `verifier`, keeping data at most `ttl`.
    pub fn new(verifier: Verifier, ttl: Duration) -> Self {
        Self {
            verifier,
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The validation data of `cert` (with `pool` for its path) at `now`: from the cache
    /// while current, else fetched. `Err` says why there is none: no path, the policy
    /// fetches nothing, or a certificate on the path that names revocation sources got no
    /// answer from any of them.
    pub async fn get(
        &self,
        cert: &Cert,
        pool: &[Cert],
        now: OffsetDateTime,
    ) -> Result<Arc<PathData>, String> {
        self.get_with(None, cert, pool, now).await
    }

    /// [`Self::get`] with the path built by `paths` instead of the `[trust]` anchors (a TSA
    /// certificate, whose roots are `[tsa] tsa_roots`); the revocation data is fetched alike.
    pub async fn get_with(
        &self,
        paths: Option<&PathBuilder>,
        cert: &Cert,
        pool: &[Cert],
        now: OffsetDateTime,
    ) -> Result<Arc<PathData>, String> {
        if let Some(d) = self.cached(cert, now) {
            return Ok(d);
        }
        let policy = self.verifier.default_policy();
        if policy == RevocationPolicy::Off {
            return Err("the [trust] revocation policy is off: no revocation data to embed".into());
        }
        let path = paths
            .unwrap_or(self.verifier.paths())
            .build(cert, pool)
            .await
            .map_err(|e| {
                format!(
                    "no path to a trust anchor for {}: {e:?}",
                    cert.entry_names().subject
                )
            })?;
        let mut data = PathData::default();
        for pc in &path.certs {
            push_unique(&mut data.certificates, pc.cert.der());
        }
        for (i, pair) in path.certs.windows(2).enumerate() {
            let (c, issuer) = (&pair[0].cert, &pair[1].cert);
            let raw = self
                .verifier
                .revocation()
                .fetch_raw(c, issuer, now, policy)
                .await;
            if raw.is_empty() {
                // A certificate that names no source has nothing to embed; one whose sources
                // all failed leaves the data incomplete: not B-LT.
                if !raw.errors.is_empty() {
                    return Err(format!(
                        "no revocation data for {}: {}",
                        c.entry_names().subject,
                        raw.errors.join("; ")
                    ));
                }
                if i == 0 && paths.is_none() {
                    return Err("the signing certificate names no OCSP responder and no CRL".into());
                }
                continue;
            }
            for o in raw.ocsps {
                push_unique(&mut data.ocsps, &o);
            }
            for crl in raw.crls {
                push_unique(&mut data.crls, &crl);
            }
        }
        let ttl = time::Duration::try_from(self.ttl).unwrap_or(time::Duration::minutes(5));
        let until = data
            .crls
            .iter()
            .filter_map(|c| crl_next_update(c))
            .fold(now + ttl, |a, n| a.min(n));
        let data = Arc::new(data);
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= MAX_CACHED {
                m.retain(|_, (_, u)| *u > now);
                if m.len() >= MAX_CACHED {
                    m.clear();
                }
            }
            m.insert(*cert.fingerprint(), (data.clone(), until));
        }
        Ok(data)
    }

    fn cached(&self, cert: &Cert, now: OffsetDateTime) -> Option<Arc<PathData>> {
        let m = self.cache.lock().ok()?;
        m.get(cert.fingerprint())
            .filter(|(_, until)| now < *until)
            .map(|(d, _)| d.clone())
    }

    /// The validation data of the TSAs of `tokens` (signature timestamp tokens, DER
    /// `ContentInfo`): each TSA certificate's path built by `tsa_paths` (`[tsa] tsa_roots`)
    /// and the OCSP/CRL DER for it, so that a CAdES B-LT signature timestamp can be
    /// validated offline years later (R1). A token that cannot be read is skipped (it was
    /// verified when it was embedded); a TSA path without revocation data is an error.
    pub async fn tsa_data(
        &self,
        tsa_paths: &PathBuilder,
        tokens: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<PathData, String> {
        let mut all = PathData::default();
        for token in tokens {
            let Ok(msg) = kyso_pki::cms::parse(token) else {
                continue;
            };
            let pool = msg.certificates();
            let Some(leaf) = msg
                .signer(0)
                .and_then(|s| pool.iter().find(|c| kyso_pki::cms::matches_sid(c, &s.sid)))
            else {
                continue;
            };
            let d = self
                .get_with(Some(tsa_paths), leaf, pool, now)
                .await
                .map_err(|e| format!("the timestamp authority's validation data: {e}"))?;
            all.merge(&d);
        }
        Ok(all)
    }

    /// Forgets everything kept (after a revocation change).
    pub fn invalidate(&self) {
        if let Ok(mut m) = self.cache.lock() {
            m.clear();
        }
    }
}

/// The signature timestamp tokens (DER `ContentInfo`) of a CMS's first signer, the input of
/// [`ValidationSource::tsa_data`].
pub(crate) fn signature_tokens(msg: &kyso_pki::cms::SignedDataMessage) -> Vec<Vec<u8>> {
    kyso_pki::cms::embedded(msg, 0)
        .map(|e| e.timestamp_tokens)
        .unwrap_or_default()
}

/// A CRL's nextUpdate (`None`: unreadable or absent; the TTL bounds the entry then).
fn crl_next_update(der: &[u8]) -> Option<OffsetDateTime> {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::from_der(der).ok()?;
    let t = crl.tbs_cert_list.next_update?;
    OffsetDateTime::from_unix_timestamp(i64::try_from(t.to_unix_duration().as_secs()).ok()?).ok()
}

fn push_unique(list: &mut Vec<Vec<u8>>, item: &[u8]) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_vec());
    }
}

//! Certification path building and the RFC 5280 checks that matter here
//! (V2, N2 art. 32: every certificate of the path passes the same checks).
//!
//! Paths are built from the leaf upwards: issuers are looked up by name among
//! the signature's certificates, the configured intermediates, the anchors,
//! and finally through AIA caIssuers downloads. A link counts only once the
//! parent's key verifies the child's signature, so a rogue CA that copies the
//! real CA's name never chains. Verified links are cached by fingerprint
//! pair: on the hot path a known chain costs no RSA operation at all.
//!
//! Downloads are not done here (this crate does no I/O): AIA caIssuers come in
//! through an [`IssuerSource`], which the revocation crate's HTTP fetcher implements.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280 as oids;
use der::{Decode, Encode};
use std::sync::atomic::{AtomicU64, Ordering};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, KeyUsages};

use futures::future::BoxFuture;
use serde::Serialize;

use crate::cert::Cert;
use crate::crypto::{self, AlgorithmPolicy, DigestAlgorithm};
use crate::name::rfc4514;
use crate::time::OffsetDateTime;

/// Longest path accepted (leaf + intermediates + anchor); government paths have 3.
pub const MAX_PATH_LEN: usize = 8;

/// Most issuer candidates tried per certificate, against hostile bundles.
const MAX_CANDIDATES: usize = 16;

/// The work one path build may do before it gives up (N2: a path that cannot be
/// found within it is reported as not found). A good government path (2–3
/// levels) tries a handful of candidates; the defaults leave a wide margin and
/// stop a hostile bundle (many certificates with one name, loops) promptly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathBudget {
    /// Issuer candidates considered over the whole build.
    pub max_candidates: usize,
    /// Signatures verified over the whole build (cached links cost none).
    pub max_signature_checks: usize,
}

impl Default for PathBudget {
    fn default() -> Self {
        Self {
            max_candidates: 256,
            max_signature_checks: 64,
        }
    }
}

/// The state of one path build: the budget spent, the links that failed,
/// and the (subject, key) identities on the current path.
#[derive(Debug, Default)]
struct BuildState {
    candidates: usize,
    signature_checks: usize,
    exhausted: bool,
    /// (child, parent) fingerprint pairs that did not lead to an anchor, with
    /// the path length they failed at (a link that does not verify: 0). A pair
    /// is not tried again at that length or deeper (less room left).
    failed: HashMap<([u8; 32], [u8; 32]), usize>,
    /// (subject, key) identities of the certificates on the path.
    on_path: HashSet<[u8; 32]>,
    last_failure: Option<PathFailure>,
}

/// Returns `Pending` once (waking itself at once), so that a long computation inside a
/// future gives its thread back to the executor and can be dropped at that point.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl BuildState {
    /// Adds `why` to the reasons a path was not found (bounded: a hostile certificate
    /// cannot grow the report without limit).
    fn note_failure(&mut self, why: String) {
        match &mut self.last_failure {
            Some(PathFailure::NoChain(text)) if text.len() < 4096 => {
                text.push_str("; ");
                text.push_str(&why);
            }
            Some(_) => {}
            None => self.last_failure = Some(PathFailure::NoChain(why)),
        }
    }
}

/// A certificate's identity as an issuer: its subject and public key. Two
/// certificates with the same name and key verify the same signatures, so
/// one identity is never used twice on one path (RFC 4158 loop detection;
/// a path that repeats it has a shorter path inside it).
fn issuer_identity(c: &Cert) -> [u8; 32] {
    identities(c)[0]
}

/// Candidates of one level that are the same issuer certified the same way:
/// same subject and key, and the same issuer name and authority key id.
/// Only the first is tried. A re-issued CA certificate with the same key
/// under another issuer (a cross-certificate) stays a distinct candidate.
fn candidate_identity(c: &Cert) -> [u8; 32] {
    identities(c)[1]
}

/// Both identities, computed once per certificate (re-encoding the names costs more than
/// the rest of a warm path build).
fn identities(c: &Cert) -> [[u8; 32]; 2] {
    c.path_identities(|c| {
        let tbs = &c.x509().tbs_certificate;
        let mut buf = tbs.subject.to_der().unwrap_or_default();
        buf.extend(tbs.subject_public_key_info.to_der().unwrap_or_default());
        let issuer = crypto::sha256(&buf);
        let mut buf = issuer.to_vec();
        buf.extend(tbs.issuer.to_der().unwrap_or_default());
        buf.extend(authority_key_id(c).unwrap_or_default());
        [issuer, crypto::sha256(&buf)]
    })
}

/// The configured trust: anchors, known intermediates and legacy roots.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    anchors: Vec<Cert>,
    intermediates: Vec<Cert>,
    /// SHA-256 fingerprints of anchors under which CA certificates may be
    /// signed with SHA-1 (the government G1 root and its sub-CAs are).
    legacy_sha1: HashSet<[u8; 32]>,
    /// SHA-256 fingerprints of pinned anchors: a certificate with one of them is an
    /// anchor wherever it was found (the signature, the intermediates, AIA), so that
    /// the government roots can be trusted without shipping their files.
    pinned: HashSet<[u8; 32]>,
}

impl TrustStore {
    /// A store of anchors and intermediates. Anchors listed in `legacy_sha1`
    /// (by fingerprint) allow SHA-1 signatures on the CA certificates below them.
    pub fn new(anchors: Vec<Cert>, intermediates: Vec<Cert>, legacy_sha1: &[[u8; 32]]) -> Self {
        Self {
            anchors,
            intermediates,
            legacy_sha1: legacy_sha1.iter().copied().collect(),
            pinned: HashSet::new(),
        }
    }

    /// The store with these pinned anchor fingerprints added: any certificate whose
    /// SHA-256 is one of them is an anchor wherever it is found.
    pub fn with_pinned(mut self, pinned: &[[u8; 32]]) -> Self {
        self.pinned.extend(pinned.iter().copied());
        self
    }

    /// Whether no anchor can ever be found (neither configured nor pinned).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty() && self.pinned.is_empty()
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[Cert] {
        &self.anchors
    }

    /// The configured intermediates.
    pub fn intermediates(&self) -> &[Cert] {
        &self.intermediates
    }

    fn is_anchor(&self, c: &Cert) -> bool {
        self.pinned.contains(c.fingerprint()) || self.anchors.iter().any(|a| a == c)
    }
}

/// Where missing issuer certificates are downloaded from: the AIA caIssuers URL of a
/// certificate (RFC 5280 4.2.2.1). Implemented by the revocation crate's HTTP fetcher
/// (URL rewriting, deadlines, circuit breaking); the path builder caches the answers.
pub trait IssuerSource: Send + Sync + std::fmt::Debug {
    /// The body served at `url` (one DER certificate or a PEM bundle), or why there is none.
    fn fetch_issuers<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>>;

    /// How many caIssuers URLs of one certificate are tried (the rest are not fetched).
    fn max_urls_per_certificate(&self) -> usize {
        4
    }
}

/// Where a certificate of the path came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "url")]
pub enum CertSource {
    /// The CMS `certificates` field (or the request's chain).
    Signature,
    /// The configured intermediates.
    Configured,
    /// Downloaded through the AIA caIssuers URL.
    Aia(String),
    /// A configured trust anchor.
    Anchor,
}

/// One certificate of the validated path, as the reports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathEntry {
    /// RFC 4514 subject.
    pub subject: String,
    /// RFC 4514 issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial_number: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256, hex.
    pub fingerprint_sha256: String,
    /// The algorithm the issuer signed this certificate with.
    pub signature_algorithm: String,
    /// Whether this is the trust anchor that ends the path.
    pub trust_anchor: bool,
    /// Where it came from.
    pub source: CertSource,
}

impl PathEntry {
    /// The report entry for a certificate of a path.
    pub fn new(c: &Cert, source: CertSource) -> Self {
        let names = c.entry_names();
        Self {
            subject: names.subject.clone(),
            issuer: names.issuer.clone(),
            serial_number: names.serial_hex.clone(),
            not_before: c.not_before(),
            not_after: c.not_after(),
            fingerprint_sha256: names.fingerprint_hex.clone(),
            signature_algorithm: names.signature_algorithm.clone(),
            trust_anchor: source == CertSource::Anchor,
            source,
        }
    }
}

/// One certificate of a built path with its provenance.
#[derive(Clone, Debug)]
pub struct PathCert {
    /// The certificate.
    pub cert: Cert,
    /// Where it came from.
    pub source: CertSource,
}

/// Why no acceptable path could be built or validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathFailure {
    /// No chain of verified signatures reaches an anchor.
    NoChain(String),
    /// A constraint of RFC 5280 is violated (basic constraints, key usage, path length).
    Constraints(String),
    /// Another structural problem (unknown critical extension, bad extension encoding).
    General(String),
    /// An algorithm not allowed where it was used (SHA-1 outside legacy roots, small keys).
    Crypto(String),
}

/// A path that reaches an anchor, leaf first, anchor last.
#[derive(Clone, Debug)]
pub struct ValidPath {
    /// Leaf first, anchor last.
    pub certs: Vec<PathCert>,
}

/// A certificate that is not valid at the reference time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidityFailure {
    /// Reference time after notAfter.
    Expired {
        /// Index in the path (0 = leaf).
        index: usize,
        /// notAfter.
        not_after: OffsetDateTime,
    },
    /// Reference time before notBefore.
    NotYetValid {
        /// Index in the path (0 = leaf).
        index: usize,
        /// notBefore.
        not_before: OffsetDateTime,
    },
}

impl ValidPath {
    /// The leaf.
    pub fn leaf(&self) -> Option<&Cert> {
        self.certs.first().map(|p| &p.cert)
    }

    /// Checks every certificate's validity period at `at` (N2 a). The anchor
    /// is included: a root past its notAfter vouches for nothing.
    pub fn check_validity(&self, at: OffsetDateTime) -> Result<(), ValidityFailure> {
        for (index, pc) in self.certs.iter().enumerate() {
            let (nb, na) = (pc.cert.not_before(), pc.cert.not_after());
            if at < nb {
                return Err(ValidityFailure::NotYetValid {
                    index,
                    not_before: nb,
                });
            }
            if at > na {
                return Err(ValidityFailure::Expired {
                    index,
                    not_after: na,
                });
            }
        }
        Ok(())
    }
}

/// Builds and checks paths; holds the link and AIA caches. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PathBuilder {
    trust: Arc<TrustStore>,
    issuers: Option<Arc<dyn IssuerSource>>,
    /// (child fingerprint, parent fingerprint) → the link verified, with
    /// whether it needed SHA-1.
    links: moka::sync::Cache<([u8; 32], [u8; 32]), LinkResult>,
    /// AIA URL → the certificates it served.
    aia: moka::future::Cache<String, Arc<Vec<Cert>>>,
    budget: PathBudget,
    /// Signatures verified by this builder (all builds), for tests and metrics.
    signature_checks: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkResult {
    Ok { sha1: bool },
    Bad,
}

impl PathBuilder {
    /// A builder over `trust`; `issuers` enables AIA caIssuers downloads.
    pub fn new(trust: Arc<TrustStore>, issuers: Option<Arc<dyn IssuerSource>>) -> Self {
        Self {
            trust,
            issuers,
            links: moka::sync::Cache::new(100_000),
            aia: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
            budget: PathBudget::default(),
            signature_checks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same builder with another per-build budget.
    pub fn with_budget(mut self, budget: PathBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The per-build budget.
    pub fn budget(&self) -> PathBudget {
        self.budget
    }

    /// How many certificate signatures this builder has verified so far
    /// (links found in the cache are not counted).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Builds a path from `leaf` to an anchor, using `pool` (the signature's
    /// certificates) first, then configured intermediates, then AIA.
    /// The path is checked for RFC 5280 constraints but not for validity at a
    /// time nor revocation: those are judged by the caller at its reference time.
    pub async fn build(&self, leaf: &Cert, pool: &[Cert]) -> Result<ValidPath, PathFailure> {
        if self.trust.is_anchor(leaf) {
            return Err(PathFailure::Constraints(
                "the signing certificate is itself a trust anchor".into(),
            ));
        }
        let mut path = vec![PathCert {
            cert: leaf.clone(),
            source: CertSource::Signature,
        }];
        let mut st = BuildState::default();
        st.on_path.insert(issuer_identity(leaf));
        // Depth-first search with backtracking, bounded by MAX_PATH_LEN,
        // MAX_CANDIDATES per level and the budget for the whole build, so
        // loops and hostile bundles terminate promptly.
        let found = self.extend(&mut path, pool, &mut st).await;
        if !found {
            if st.exhausted {
                return Err(PathFailure::NoChain(format!(
                    "no path from {} to a trust anchor: the path-building budget was exhausted \
                     ({} candidates, {} signature checks; limits {} and {}) (N2)",
                    rfc4514(leaf.subject()),
                    st.candidates,
                    st.signature_checks,
                    self.budget.max_candidates,
                    self.budget.max_signature_checks
                )));
            }
            return Err(st.last_failure.unwrap_or_else(|| {
                PathFailure::NoChain(format!(
                    "no path from {} to a trust anchor",
                    rfc4514(leaf.subject())
                ))
            }));
        }
        let vp = ValidPath { certs: path };
        self.check_constraints(&vp)?;
        Ok(vp)
    }

    fn extend<'a>(
        &'a self,
        path: &'a mut Vec<PathCert>,
        pool: &'a [Cert],
        st: &'a mut BuildState,
    ) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(child) = path.last().map(|p| p.cert.clone()) else {
                return false;
            };
            if path.len() >= MAX_PATH_LEN {
                st.last_failure = Some(PathFailure::NoChain(format!(
                    "path longer than {MAX_PATH_LEN} certificates"
                )));
                return false;
            }
            let mut candidates = self.local_candidates(&child, pool);
            if candidates.is_empty() {
                candidates = self.aia_candidates(&child, st).await;
            }
            // One candidate per (subject, key, issuer, authority key id): the
            // others verify the same signatures and chain the same way.
            let mut identities = HashSet::new();
            for (cand, source) in candidates.into_iter().take(MAX_CANDIDATES) {
                if st.exhausted {
                    return false;
                }
                let identity = issuer_identity(&cand);
                if !identities.insert(candidate_identity(&cand)) || st.on_path.contains(&identity) {
                    continue; // a duplicate, or a loop: A issued B issued A
                }
                let pair = (*child.fingerprint(), *cand.fingerprint());
                if st.failed.get(&pair).is_some_and(|at| path.len() >= *at) {
                    continue;
                }
                st.candidates += 1;
                if st.candidates > self.budget.max_candidates {
                    st.exhausted = true;
                    return false;
                }
                let checks_before = st.signature_checks;
                let link = self.link_budgeted(&child, &cand, st);
                if st.signature_checks > checks_before {
                    // A signature check is the expensive step: let the executor run
                    // others and let a caller's deadline cancel the build here.
                    YieldNow(false).await;
                }
                match link {
                    None => return false,
                    Some(LinkResult::Bad) => {
                        st.failed.insert(pair, 0);
                        st.last_failure = Some(PathFailure::NoChain(format!(
                            "the certificate named {} does not verify the signature on {}",
                            rfc4514(cand.subject()),
                            rfc4514(child.subject())
                        )));
                        continue;
                    }
                    Some(LinkResult::Ok { .. }) => {}
                }
                let is_anchor = source == CertSource::Anchor;
                st.on_path.insert(identity);
                path.push(PathCert { cert: cand, source });
                if is_anchor || self.extend(path, pool, st).await {
                    return true;
                }
                path.pop();
                st.on_path.remove(&identity);
                if !st.exhausted {
                    st.failed.insert(pair, path.len());
                }
            }
            false
        })
    }

    /// [`Self::link`] within the build's budget: `None` when the budget is spent.
    /// A link already in the cache costs nothing (the hot path of a good signature).
    fn link_budgeted(
        &self,
        child: &Cert,
        parent: &Cert,
        st: &mut BuildState,
    ) -> Option<LinkResult> {
        let key = (*child.fingerprint(), *parent.fingerprint());
        if let Some(r) = self.links.get(&key) {
            return Some(r);
        }
        if st.signature_checks >= self.budget.max_signature_checks {
            st.exhausted = true;
            return None;
        }
        st.signature_checks += 1;
        Some(self.link(child, parent))
    }

    /// Issuer candidates by name, anchors first (the shortest path wins), then
    /// candidates whose key identifier matches the child's AKI.
    fn local_candidates(&self, child: &Cert, pool: &[Cert]) -> Vec<(Cert, CertSource)> {
        let aki = authority_key_id(child);
        let mut out: Vec<(Cert, CertSource)> = Vec::new();
        let push = |out: &mut Vec<(Cert, CertSource)>, c: &Cert, s: CertSource| {
            if c.subject() == child.issuer() && !out.iter().any(|(o, _)| o == c) && c != child {
                out.push((c.clone(), s));
            }
        };
        for a in &self.trust.anchors {
            push(&mut out, a, CertSource::Anchor);
        }
        // A pinned anchor may come with the signature or the intermediates.
        let or_anchor = |c: &Cert, s: CertSource| {
            if self.trust.is_anchor(c) {
                CertSource::Anchor
            } else {
                s
            }
        };
        for c in pool {
            push(&mut out, c, or_anchor(c, CertSource::Signature));
        }
        for c in &self.trust.intermediates {
            push(&mut out, c, or_anchor(c, CertSource::Configured));
        }
        if let Some(aki) = aki {
            // Stable sort: among same-source candidates, a matching SKI first.
            out.sort_by_key(|(c, s)| {
                (
                    *s != CertSource::Anchor,
                    subject_key_id(c).as_deref() != Some(aki.as_slice()),
                )
            });
        }
        out
    }

    async fn aia_candidates(&self, child: &Cert, st: &mut BuildState) -> Vec<(Cert, CertSource)> {
        let Some(issuers) = &self.issuers else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let urls = ca_issuers_urls(child);
        let cap = issuers.max_urls_per_certificate();
        if urls.len() > cap {
            st.note_failure(format!(
                "{} names {} caIssuers URLs; only the first {cap} were tried (fetch policy)",
                rfc4514(child.subject()),
                urls.len()
            ));
        }
        for url in urls.into_iter().take(cap) {
            let source = Arc::clone(issuers);
            let u = url.clone();
            let certs = self
                .aia
                .try_get_with(url.clone(), async move {
                    let body = source.fetch_issuers(&u).await?;
                    Cert::parse_many(&body)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .await;
            match certs {
                Ok(certs) => {
                    for c in certs.iter() {
                        if c.subject() == child.issuer() {
                            let src = if self.trust.is_anchor(c) {
                                CertSource::Anchor
                            } else {
                                CertSource::Aia(url.clone())
                            };
                            out.push((c.clone(), src));
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(url = %url, error = %e, "AIA caIssuers download failed");
                    // The report says why the issuer is missing (a policy refusal among them).
                    st.note_failure(format!(
                        "the issuer of {} was not found; AIA caIssuers {url}: {e}",
                        rfc4514(child.subject())
                    ));
                }
            }
        }
        out
    }

    fn link(&self, child: &Cert, parent: &Cert) -> LinkResult {
        let key = (*child.fingerprint(), *parent.fingerprint());
        if let Some(r) = self.links.get(&key) {
            return r;
        }
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let x = child.x509();
        let result = crypto::verify_signature(
            &parent.x509().tbs_certificate.subject_public_key_info,
            &x.signature_algorithm,
            None::<DigestAlgorithm>,
            child.tbs_der(),
            x.signature.raw_bytes(),
            // SHA-1 is judged after the anchor is known (legacy roots only),
            // so here it is accepted and remembered.
            AlgorithmPolicy {
                allow_sha1: true,
                ..AlgorithmPolicy::default()
            },
        );
        let r = match result {
            Ok(alg) => LinkResult::Ok {
                sha1: alg.uses_sha1(),
            },
            Err(_) => LinkResult::Bad,
        };
        self.links.insert(key, r);
        r
    }

    /// RFC 5280 §6.1 checks on a built path, leaf first.
    fn check_constraints(&self, vp: &ValidPath) -> Result<(), PathFailure> {
        let n = vp.certs.len();
        let anchor = vp.certs.last().map(|p| &p.cert);
        let legacy = anchor.is_some_and(|a| self.trust.legacy_sha1.contains(a.fingerprint()));
        // Non-self-issued intermediates below each CA, for pathLenConstraint.
        let mut intermediates_below = 0usize;
        for (i, pc) in vp.certs.iter().enumerate() {
            let c = &pc.cert;
            let is_anchor = i + 1 == n;
            check_critical_extensions(c)?;
            if i > 0 {
                let bc = c
                    .basic_constraints()
                    .map_err(|e| PathFailure::General(e.to_string()))?;
                // A v1 anchor has no extensions; RFC 5280 lets the anchor be
                // trusted as configured.
                let ca = bc.as_ref().is_some_and(|b| b.ca) || (is_anchor && bc.is_none());
                if !ca {
                    return Err(PathFailure::Constraints(format!(
                        "{} issues certificates but is not a CA (basicConstraints)",
                        rfc4514(c.subject())
                    )));
                }
                if let Some(len) = bc.and_then(|b| b.path_len_constraint)
                    && intermediates_below > usize::from(len)
                {
                    return Err(PathFailure::Constraints(format!(
                        "{} allows {len} intermediate CA(s) below it, the path has {intermediates_below}",
                        rfc4514(c.subject())
                    )));
                }
                if !c.key_usage_allows(KeyUsages::KeyCertSign) {
                    return Err(PathFailure::Constraints(format!(
                        "{} lacks keyCertSign in keyUsage",
                        rfc4514(c.subject())
                    )));
                }
                if !c.is_self_issued() {
                    intermediates_below += 1;
                }
            }
            if !is_anchor {
                // The link to the parent: SHA-1 only on CA certificates under
                // a configured legacy root.
                let parent = &vp.certs[i + 1].cert;
                if let LinkResult::Ok { sha1: true } = self.link(c, parent) {
                    // A CA certificate judged on its own (CheckCertificate on a sub-CA)
                    // is first in the path but still a CA certificate.
                    let allowed = legacy && (i > 0 || c.is_ca());
                    if !allowed {
                        return Err(PathFailure::Crypto(format!(
                            "{} is signed with SHA-1, accepted only on CA certificates under a legacy root",
                            rfc4514(c.subject())
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The extensions kyso understands; any other critical extension fails the path.
const KNOWN_EXTENSIONS: &[ObjectIdentifier] = &[
    oids::ID_CE_BASIC_CONSTRAINTS,
    oids::ID_CE_KEY_USAGE,
    oids::ID_CE_EXT_KEY_USAGE,
    oids::ID_CE_SUBJECT_ALT_NAME,
    oids::ID_CE_ISSUER_ALT_NAME,
    oids::ID_CE_SUBJECT_KEY_IDENTIFIER,
    oids::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    oids::ID_CE_CRL_DISTRIBUTION_POINTS,
    oids::ID_CE_FRESHEST_CRL,
    oids::ID_PE_AUTHORITY_INFO_ACCESS,
    // Policies are not processed (kyso applies its own authority policy, A3),
    // and any policy is acceptable, which RFC 5280 allows for an
    // initial-policy-set of anyPolicy.
    oids::ID_CE_CERTIFICATE_POLICIES,
    // id-pkix-ocsp-nocheck.
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5"),
];

fn check_critical_extensions(c: &Cert) -> Result<(), PathFailure> {
    for ext in c.x509().tbs_certificate.extensions.iter().flatten() {
        if ext.critical && !KNOWN_EXTENSIONS.contains(&ext.extn_id) {
            return Err(PathFailure::General(format!(
                "{} carries the critical extension {} which kyso does not process",
                rfc4514(c.subject()),
                crypto::algorithm_name(&ext.extn_id)
            )));
        }
    }
    Ok(())
}

fn authority_key_id(c: &Cert) -> Option<Vec<u8>> {
    let (_, raw) = c.extension(oids::ID_CE_AUTHORITY_KEY_IDENTIFIER)?;
    let aki = AuthorityKeyIdentifier::from_der(raw).ok()?;
    aki.key_identifier.map(|k| k.as_bytes().to_vec())
}

fn subject_key_id(c: &Cert) -> Option<Vec<u8>> {
    let (_, raw) = c.extension(oids::ID_CE_SUBJECT_KEY_IDENTIFIER)?;
    let ski = x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(raw).ok()?;
    Some(ski.0.as_bytes().to_vec())
}

/// The AIA caIssuers HTTP URLs of a certificate.
pub fn ca_issuers_urls(c: &Cert) -> Vec<String> {
    aia_urls(c, const_oid::db::rfc5280::ID_AD_CA_ISSUERS)
}

/// The AIA URLs of a certificate for one access method.
pub fn aia_urls(c: &Cert, method: ObjectIdentifier) -> Vec<String> {
    let Some((_, raw)) = c.extension(oids::ID_PE_AUTHORITY_INFO_ACCESS) else {
        return Vec::new();
    };
    let Ok(aia) = AuthorityInfoAccessSyntax::from_der(raw) else {
        return Vec::new();
    };
    aia.0
        .iter()
        .filter(|ad| ad.access_method == method)
        .filter_map(|ad| match &ad.access_location {
            GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_owned()),
            _ => None,
        })
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)]
#[path = "path_tests.rs"]
mod tests;

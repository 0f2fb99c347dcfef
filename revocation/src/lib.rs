//! `kyso-revocation`: revocation status through OCSP and CRLs, behind bounded
//! coalescing caches, and the HTTP fetching it needs (OCSP, CRL, AIA caIssuers).
//!
//! This is the I/O side of the PKI core: one HTTP client with URL rewriting,
//! deadlines and circuit breakers, the caches and their metrics. It does not
//! build paths nor judge a signature (`kyso-pki` and `kyso-validation` do), and
//! it parses no CMS: it answers "what do the sources say about this certificate".
//!
//! [`RevocationChecker::check`] answers "what do the certificate's OCSP
//! responder and CRLs say" with every piece of evidence it looked at. It
//! does not decide the verdict: a revocation after the reference time is
//! still reported as [`Status::Revoked`], and the caller weighs the time
//! (Decree 68/2024 art. 31, rule N2: status "active" at the time of signing).
//!
//! - [`fetch`]: the HTTP client (URL rewriting, deadlines, circuit breaking),
//!   shared with AIA downloads (it is the path builder's
//!   [`IssuerSource`](kyso_pki::path::IssuerSource)).
//! - [`evidence`]: what was found, as the reports show it.
//! - [`metrics`]: cache and fetch counters.
//! - [`tsa`]: the RFC 3161 timestamp authority client (N1), tokens verified by `kyso_pki::tsp`.
//! - `ocsp`, `crl`: request building, parsing and verification.
//! - `cache`: the caches, one fetch in flight per key.
//!
//! Suspension (N7): a certificateHold entry or OCSP answer is reported as
//! `Revoked` with reason `certificateHold` from the hold time. When a hold is
//! lifted the CA drops the serial from its next complete CRL, so a document
//! signed during the hold but verified after the lift passes: complete CRLs
//! and OCSP keep no history. Delta CRLs (where removeFromCRL appears) are not
//! supported.

pub mod embedded;
pub mod error;
pub mod evidence;
pub mod fetch;
pub mod metrics;
pub mod policy;
pub mod raw;
pub mod tsa;

mod cache;
mod crl;
mod ocsp;
mod signed;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use const_oid::db::rfc5280::{
    ID_AD_OCSP, ID_CE_CRL_DISTRIBUTION_POINTS, ID_PE_AUTHORITY_INFO_ACCESS,
};
use der::Decode;
use moka::future::Cache;
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlReason};

use kyso_pki::cert::Cert;
use kyso_pki::time::{OffsetDateTime, rfc3339};

pub use embedded::{EmbeddedItem, EmbeddedRevocation};
pub use error::{Error, Result};
pub use evidence::{
    CertStatus, EvidenceOrigin, RevocationEvidence, RevocationPolicy, RevocationSource,
};
pub use fetch::{BreakerConfig, FetchConfig, FetchError, FetchSource, Fetcher, UrlRewrite};
pub use metrics::PkiMetrics;
pub use policy::{FetchPolicy, HostPattern, PolicyRefusal};

use self::cache::{Answer, Served, SlotCache, SlotExpiry, Timing};
use self::crl::CrlIndex;
use self::ocsp::{OcspAnswer, OcspStatus};
use self::signed::{SigCheck, normalise_serial};

/// Which source is asked first, and whether the other is asked at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationOrder {
    /// OCSP, then the CRLs when OCSP fails or answers unknown.
    #[default]
    OcspThenCrl,
    /// The CRLs, then OCSP when no CRL can be used.
    CrlThenOcsp,
    /// OCSP only.
    OcspOnly,
    /// CRLs only.
    CrlOnly,
}

impl RevocationOrder {
    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OcspThenCrl => "ocsp-then-crl",
            Self::CrlThenOcsp => "crl-then-ocsp",
            Self::OcspOnly => "ocsp-only",
            Self::CrlOnly => "crl-only",
        }
    }

    fn sources(self) -> &'static [RevocationSource] {
        use RevocationSource::{Crl, Ocsp};
        match self {
            Self::OcspThenCrl => &[Ocsp, Crl],
            Self::CrlThenOcsp => &[Crl, Ocsp],
            Self::OcspOnly => &[Ocsp],
            Self::CrlOnly => &[Crl],
        }
    }
}

impl std::str::FromStr for RevocationOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ocsp-then-crl" => Ok(Self::OcspThenCrl),
            "crl-then-ocsp" => Ok(Self::CrlThenOcsp),
            "ocsp-only" => Ok(Self::OcspOnly),
            "crl-only" => Ok(Self::CrlOnly),
            other => Err(format!(
                "unknown revocation order {other:?} (ocsp-then-crl, crl-then-ocsp, ocsp-only, crl-only)"
            )),
        }
    }
}

/// Settings of the revocation checker.
///
/// An answer is fresh until its nextUpdate, but is fetched again after
/// `max_ttl` at the latest and not before `min_ttl`; an OCSP answer without
/// nextUpdate ("newer information is always available") counts as valid for
/// `min_ttl`. Past its validity an answer is served, marked stale, only when
/// a refresh fails and only for `stale_grace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationConfig {
    /// Which source first (default OCSP, then CRL).
    pub order: RevocationOrder,
    /// Longest time an answer is used before asking again (default 1 h).
    pub max_ttl: Duration,
    /// Shortest time between two fetches of the same answer, and the
    /// validity of answers without nextUpdate (default 30 s).
    pub min_ttl: Duration,
    /// How long past its nextUpdate an answer may be served when no newer
    /// one can be had (default 0: never serve stale).
    pub stale_grace: Duration,
    /// How long a failed fetch is remembered before the next attempt
    /// (default 10 s; the failure is shared by every request in that time).
    pub negative_ttl: Duration,
    /// Bound of the OCSP cache, in answers (default 100 000).
    pub max_entries_ocsp: u64,
    /// Bound of the CRL cache, in approximate bytes of indexes (default 256 MiB).
    pub max_crl_bytes: u64,
    /// Send a nonce in OCSP requests and require it echoed (default false:
    /// nonces stop responders and proxies from serving pre-signed answers).
    pub ocsp_nonce: bool,
    /// Tolerated clock difference with responders for thisUpdate (default 5 min).
    pub clock_skew: Duration,
    /// Accept SHA-1 signatures on OCSP responses and CRLs (default true: the
    /// G1 national root hierarchy signs with SHA-1).
    pub allow_sha1: bool,
    /// HTTP settings (timeout, size limit, URL rewrites, circuit breaker)
    /// for the [`Fetcher`] built by [`RevocationChecker::from_config`]. A
    /// checker made with [`RevocationChecker::new`] uses the fetcher given.
    pub fetch: FetchConfig,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            order: RevocationOrder::default(),
            max_ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(30),
            stale_grace: Duration::ZERO,
            negative_ttl: Duration::from_secs(10),
            max_entries_ocsp: 100_000,
            max_crl_bytes: 256 * 1024 * 1024,
            ocsp_nonce: false,
            clock_skew: Duration::from_secs(300),
            allow_sha1: true,
            fetch: FetchConfig::default(),
        }
    }
}

/// The status found for one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// A source says the certificate is not revoked.
    Good,
    /// Revoked or on hold since `time`, which may be after the reference
    /// time: the caller compares.
    Revoked {
        /// When the revocation (or hold) took effect.
        time: OffsetDateTime,
        /// RFC 5280 reason name ("keyCompromise", "certificateHold", ...).
        reason: Option<String>,
    },
    /// No source gave a usable answer.
    Unknown,
    /// Not checked: the policy is off.
    NotChecked,
}

/// The status and the evidence behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationOutcome {
    /// The status.
    pub status: Status,
    /// Every source tried, in order, failures included.
    pub evidence: Vec<RevocationEvidence>,
}

/// Approximate sizes of the caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// OCSP answers held.
    pub ocsp_entries: u64,
    /// CRLs held.
    pub crl_entries: u64,
    /// Approximate bytes of the CRL indexes held.
    pub crl_bytes: u64,
}

/// OCSP cache key: SHA-1 of the issuer's key, and the normalised serial.
type OcspKey = ([u8; 20], Box<[u8]>);
/// CRL cache key: the URL after rewriting, and SHA-1 of the issuer's key.
/// The key hash keeps a CRL verified under one CA key from answering for
/// another CA that (by mistake or malice) names the same URL.
type CrlKey = (String, [u8; 20]);

/// A verified OCSP answer and where it came from.
#[derive(Debug)]
struct OcspData {
    answer: OcspAnswer,
    url: String,
}

impl Answer for OcspData {
    fn next_update(&self) -> Option<OffsetDateTime> {
        self.answer.next_update
    }
    fn weight(&self) -> usize {
        size_of::<Self>() + self.url.len()
    }
}

impl Answer for CrlIndex {
    fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
    }
    fn weight(&self) -> usize {
        self.approx_bytes
    }
}

/// OCSP and CRL checks with their caches. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RevocationChecker(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    cfg: RevocationConfig,
    fetcher: Fetcher,
    metrics: PkiMetrics,
    sig: SigCheck,
    ocsp: SlotCache<OcspKey, OcspData>,
    crl: SlotCache<CrlKey, CrlIndex>,
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl RevocationChecker {
    /// A checker with empty caches, fetching through `fetcher`.
    pub fn new(cfg: RevocationConfig, fetcher: Fetcher, metrics: PkiMetrics) -> Self {
        let timing = Timing {
            max_ttl: to_time(cfg.max_ttl),
            // min_ttl above max_ttl would make max_ttl meaningless.
            min_ttl: to_time(cfg.min_ttl.min(cfg.max_ttl)),
            stale_grace: to_time(cfg.stale_grace),
            negative_ttl: to_time(cfg.negative_ttl),
        };
        let ocsp = Cache::builder()
            .name("kyso-ocsp")
            .max_capacity(cfg.max_entries_ocsp)
            .expire_after(SlotExpiry)
            .build();
        let crl = Cache::builder()
            .name("kyso-crl")
            .max_capacity(cfg.max_crl_bytes)
            .weigher(|_: &CrlKey, v: &Arc<cache::Slot<CrlIndex>>| v.weight())
            .expire_after(SlotExpiry)
            .build();
        let sig = SigCheck {
            clock_skew: to_time(cfg.clock_skew),
            allow_sha1: cfg.allow_sha1,
        };
        Self(Arc::new(Inner {
            ocsp: SlotCache::new("ocsp", ocsp, timing, metrics.clone()),
            crl: SlotCache::new("crl", crl, timing, metrics.clone()),
            cfg,
            fetcher,
            metrics,
            sig,
        }))
    }

    /// A checker with its own [`Fetcher`] built from `cfg.fetch`.
    pub fn from_config(cfg: RevocationConfig, metrics: PkiMetrics) -> Result<Self, Error> {
        let fetcher = Fetcher::new(cfg.fetch.clone(), metrics.clone())?;
        Ok(Self::new(cfg, fetcher, metrics))
    }

    /// The fetcher (shared with AIA downloads).
    pub fn fetcher(&self) -> &Fetcher {
        &self.0.fetcher
    }

    /// The configuration in force.
    pub fn config(&self) -> &RevocationConfig {
        &self.0.cfg
    }

    /// Sizes of the caches; also sets the `kyso_revocation_cache_entries`
    /// gauges (call it from the /metrics handler). moka counts lazily, so
    /// its pending bookkeeping is run first.
    pub async fn cache_stats(&self) -> CacheStats {
        self.0.ocsp.run_pending_tasks().await;
        self.0.crl.run_pending_tasks().await;
        let stats = CacheStats {
            ocsp_entries: self.0.ocsp.entry_count(),
            crl_entries: self.0.crl.entry_count(),
            crl_bytes: self.0.crl.weighted_size(),
        };
        for (cache, n) in [
            (self.0.ocsp.label(), stats.ocsp_entries),
            (self.0.crl.label(), stats.crl_entries),
        ] {
            self.0
                .metrics
                .cache_entries
                .with_label_values(&[cache])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        stats
    }

    /// Forgets every cached answer (after a CA incident, for instance).
    pub fn invalidate_all(&self) {
        self.0.ocsp.invalidate_all();
        self.0.crl.invalidate_all();
    }

    /// The revocation status of `cert`, issued by `issuer`, with the evidence.
    ///
    /// Answers are judged fresh or stale against `now`; `reference_time`
    /// (the signing time being judged) only shapes the evidence details: the
    /// caller compares a revocation time with it. Policy `Off` returns
    /// [`Status::NotChecked`] without touching the network.
    pub async fn check(
        &self,
        cert: &Cert,
        issuer: &Cert,
        reference_time: OffsetDateTime,
        now: OffsetDateTime,
        policy: RevocationPolicy,
    ) -> RevocationOutcome {
        let base = Evidence::new(cert);
        if policy == RevocationPolicy::Off {
            return RevocationOutcome {
                status: Status::NotChecked,
                evidence: vec![base.none(
                    CertStatus::NotChecked,
                    "revocation checking is off (policy)",
                )],
            };
        }
        let mut evidence = Vec::new();
        let mut ocsp_urls = match ocsp_urls(cert) {
            Ok(u) => u,
            Err(e) => {
                evidence.push(base.failure(RevocationSource::Ocsp, None, e));
                Vec::new()
            }
        };
        let mut crl_points = match crl_points(cert) {
            Ok(p) => p,
            Err(e) => {
                evidence.push(base.failure(RevocationSource::Crl, None, e));
                Vec::new()
            }
        };
        // A certificate cannot make one check fetch without bound: past the policy's
        // number of URLs of a kind, the rest are left untried, and the evidence says so.
        let cap = self.0.fetcher.policy().max_urls_per_certificate;
        if ocsp_urls.len() > cap {
            evidence.push(base.failure(
                RevocationSource::Ocsp,
                None,
                format!(
                    "not fetched: the certificate names {} OCSP URLs; the fetch policy tries the first {cap}",
                    ocsp_urls.len()
                ),
            ));
            ocsp_urls.truncate(cap);
        }
        let crl_urls: usize = crl_points.iter().map(DistributionPoint::url_count).sum();
        if crl_urls > cap {
            evidence.push(base.failure(
                RevocationSource::Crl,
                None,
                format!(
                    "not fetched: the certificate names {crl_urls} CRL URLs; the fetch policy tries the first {cap}"
                ),
            ));
            let mut left = cap;
            crl_points.retain_mut(|p| p.keep_urls(&mut left));
        }
        if ocsp_urls.is_empty() && crl_points.is_empty() && evidence.is_empty() {
            evidence.push(base.none(
                CertStatus::Unknown,
                "the certificate names no OCSP responder (AIA) and no CRL distribution point",
            ));
            return RevocationOutcome {
                status: Status::Unknown,
                evidence,
            };
        }
        for source in self.0.cfg.order.sources() {
            let status = match source {
                RevocationSource::Ocsp if !ocsp_urls.is_empty() => {
                    self.check_ocsp(
                        &base,
                        cert,
                        issuer,
                        &ocsp_urls,
                        reference_time,
                        now,
                        &mut evidence,
                    )
                    .await
                }
                RevocationSource::Crl if !crl_points.is_empty() => {
                    self.check_crl(
                        &base,
                        cert,
                        issuer,
                        &crl_points,
                        reference_time,
                        now,
                        &mut evidence,
                    )
                    .await
                }
                _ => None,
            };
            if let Some(status) = status {
                return RevocationOutcome { status, evidence };
            }
        }
        if evidence.is_empty() {
            // Order ocsp-only with only a CRL distribution point, or the reverse.
            evidence.push(base.none(
                CertStatus::Unknown,
                &format!(
                    "no source the configured order ({}) allows is named by the certificate",
                    self.0.cfg.order.as_str()
                ),
            ));
        }
        RevocationOutcome {
            status: Status::Unknown,
            evidence,
        }
    }

    /// OCSP: `Some` when the responder gave a definitive answer.
    #[allow(clippy::too_many_arguments)]
    async fn check_ocsp(
        &self,
        base: &Evidence,
        cert: &Cert,
        issuer: &Cert,
        urls: &[String],
        reference_time: OffsetDateTime,
        now: OffsetDateTime,
        evidence: &mut Vec<RevocationEvidence>,
    ) -> Option<Status> {
        let inner = &*self.0;
        let key: OcspKey = (ocsp::key_hash(issuer), normalise_serial(cert.serial()));
        let served = inner
            .ocsp
            .get(key, now, || self.fetch_ocsp(cert, issuer, urls, now))
            .await;
        let first_url = urls.first().map(|u| inner.fetcher.rewrite(u));
        let served = match served {
            Ok(s) => s,
            Err(e) => {
                evidence.push(base.failure(RevocationSource::Ocsp, first_url, e));
                return None;
            }
        };
        let a = &served.value.answer;
        let mut ev = base.served(
            RevocationSource::Ocsp,
            &served,
            Some(served.value.url.clone()),
        );
        ev.this_update = Some(a.this_update);
        ev.next_update = a.next_update;
        ev.produced_at = Some(a.produced_at);
        let status = match a.status {
            OcspStatus::Good => {
                ev.status = CertStatus::Good;
                Some(Status::Good)
            }
            OcspStatus::Revoked { time, reason } => {
                Some(revoked(&mut ev, time, reason, reference_time))
            }
            OcspStatus::Unknown => {
                ev.status = CertStatus::Unknown;
                push_detail(&mut ev, "the responder does not know the certificate");
                None
            }
        };
        evidence.push(ev);
        status
    }

    async fn fetch_ocsp(
        &self,
        cert: &Cert,
        issuer: &Cert,
        urls: &[String],
        now: OffsetDateTime,
    ) -> Result<OcspData, String> {
        let inner = &*self.0;
        let req = ocsp::build_request(cert, issuer, inner.cfg.ocsp_nonce)?;
        let mut errors = Vec::new();
        for url in urls {
            let target = inner.fetcher.rewrite(url);
            let result = match inner
                .fetcher
                .post(
                    url,
                    ocsp::REQUEST_CONTENT_TYPE,
                    req.der.clone(),
                    FetchSource::Ocsp,
                )
                .await
            {
                Ok(body) => ocsp::verify_response(&body, &req, cert, issuer, now, &inner.sig),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(answer) => {
                    return Ok(OcspData {
                        answer,
                        url: target,
                    });
                }
                Err(e) => {
                    tracing::info!(url = %target, error = %e, "OCSP answer unusable");
                    errors.push(if urls.len() > 1 {
                        format!("{target}: {e}")
                    } else {
                        e
                    });
                }
            }
        }
        Err(errors.join("; "))
    }

    /// CRLs: `Some` when a distribution point gave a usable CRL.
    #[allow(clippy::too_many_arguments)]
    async fn check_crl(
        &self,
        base: &Evidence,
        cert: &Cert,
        issuer: &Cert,
        points: &[DistributionPoint],
        reference_time: OffsetDateTime,
        now: OffsetDateTime,
        evidence: &mut Vec<RevocationEvidence>,
    ) -> Option<Status> {
        let inner = &*self.0;
        for point in points {
            let urls = match point {
                DistributionPoint::Unsupported(why) => {
                    evidence.push(base.failure(RevocationSource::Crl, None, why.clone()));
                    continue;
                }
                DistributionPoint::Urls(urls) => urls,
            };
            for url in urls {
                let target = inner.fetcher.rewrite(url);
                if !(target.starts_with("http://") || target.starts_with("https://")) {
                    evidence.push(base.failure(
                        RevocationSource::Crl,
                        Some(target),
                        "only http and https distribution points are supported".into(),
                    ));
                    continue;
                }
                let key: CrlKey = (target.clone(), ocsp::key_hash(issuer));
                let served = inner
                    .crl
                    .get(key, now, || self.fetch_crl(url, issuer, now))
                    .await;
                let served = match served {
                    Ok(s) => s,
                    Err(e) => {
                        evidence.push(base.failure(RevocationSource::Crl, Some(target), e));
                        continue;
                    }
                };
                let index = &served.value;
                let mut ev = base.served(RevocationSource::Crl, &served, Some(target.clone()));
                ev.this_update = Some(index.this_update);
                ev.next_update = index.next_update;
                match index.lookup(cert, url) {
                    Err(e) => {
                        push_detail(&mut ev, &e);
                        evidence.push(ev);
                    }
                    Ok(None) => {
                        ev.status = CertStatus::Good;
                        if now > cert.not_after() {
                            push_detail(
                                &mut ev,
                                &format!(
                                    "not listed, but the certificate expired at {} and CAs may drop expired certificates from CRLs",
                                    rfc3339(cert.not_after())
                                ),
                            );
                        }
                        evidence.push(ev);
                        return Some(Status::Good);
                    }
                    Ok(Some(entry)) => {
                        let status =
                            revoked(&mut ev, entry.revocation_date, entry.reason, reference_time);
                        evidence.push(ev);
                        return Some(status);
                    }
                }
            }
        }
        None
    }

    async fn fetch_crl(
        &self,
        url: &str,
        issuer: &Cert,
        now: OffsetDateTime,
    ) -> Result<CrlIndex, String> {
        let inner = &*self.0;
        let body = inner
            .fetcher
            .get(url, FetchSource::Crl)
            .await
            .map_err(|e| e.to_string())?;
        let issuer = issuer.clone();
        let sig = inner.sig;
        // Decoding and hashing a national CRL takes long enough to stall the
        // other requests served by this runtime thread.
        let index =
            tokio::task::spawn_blocking(move || crl::parse_and_verify(&body, &issuer, now, &sig))
                .await
                .map_err(|e| format!("CRL processing failed: {e}"))??;
        tracing::debug!(
            url,
            entries = index.len(),
            crl_number = index.crl_number.as_deref().unwrap_or("-"),
            "CRL indexed"
        );
        Ok(index)
    }
}

/// Fills the revoked status of `ev` and returns it.
pub(crate) fn revoked(
    ev: &mut RevocationEvidence,
    time: OffsetDateTime,
    reason: Option<CrlReason>,
    reference_time: OffsetDateTime,
) -> Status {
    let reason = reason.map(|r| reason_name(r).to_owned());
    ev.status = CertStatus::Revoked;
    ev.revocation_time = Some(time);
    ev.revocation_reason = reason.clone();
    if time > reference_time {
        push_detail(
            ev,
            &format!(
                "revoked at {}, after the reference time {}",
                rfc3339(time),
                rfc3339(reference_time)
            ),
        );
    }
    Status::Revoked { time, reason }
}

/// RFC 5280 name of a reason code.
pub fn reason_name(r: CrlReason) -> &'static str {
    match r {
        CrlReason::Unspecified => "unspecified",
        CrlReason::KeyCompromise => "keyCompromise",
        CrlReason::CaCompromise => "cACompromise",
        CrlReason::AffiliationChanged => "affiliationChanged",
        CrlReason::Superseded => "superseded",
        CrlReason::CessationOfOperation => "cessationOfOperation",
        CrlReason::CertificateHold => "certificateHold",
        CrlReason::RemoveFromCRL => "removeFromCRL",
        CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        CrlReason::AaCompromise => "aACompromise",
    }
}

fn push_detail(ev: &mut RevocationEvidence, text: &str) {
    ev.detail = Some(match ev.detail.take() {
        Some(d) => format!("{d}; {text}"),
        None => text.to_owned(),
    });
}

/// Evidence about one certificate, filled per source.
pub(crate) struct Evidence {
    subject: String,
    serial: String,
}

impl Evidence {
    pub(crate) fn new(cert: &Cert) -> Self {
        Self {
            subject: cert.entry_names().subject.clone(),
            serial: cert.entry_names().serial_hex.clone(),
        }
    }

    pub(crate) fn blank(
        &self,
        source: RevocationSource,
        url: Option<String>,
        status: CertStatus,
    ) -> RevocationEvidence {
        RevocationEvidence {
            certificate_subject: self.subject.clone(),
            certificate_serial: self.serial.clone(),
            source,
            url,
            status,
            this_update: None,
            next_update: None,
            produced_at: None,
            revocation_time: None,
            revocation_reason: None,
            from_cache: false,
            stale: false,
            detail: None,
            origin: EvidenceOrigin::Fetched,
        }
    }

    fn none(&self, status: CertStatus, detail: &str) -> RevocationEvidence {
        let mut ev = self.blank(RevocationSource::None, None, status);
        ev.detail = Some(detail.to_owned());
        ev
    }

    fn failure(
        &self,
        source: RevocationSource,
        url: Option<String>,
        detail: String,
    ) -> RevocationEvidence {
        let mut ev = self.blank(source, url, CertStatus::Unknown);
        ev.detail = Some(detail);
        ev
    }

    fn served<T>(
        &self,
        source: RevocationSource,
        s: &Served<T>,
        url: Option<String>,
    ) -> RevocationEvidence {
        let mut ev = self.blank(source, url, CertStatus::Unknown);
        ev.from_cache = s.from_cache;
        ev.stale = s.stale;
        ev.detail = s.note.clone();
        ev
    }
}

/// The OCSP responder URLs of the AIA extension.
pub(crate) fn ocsp_urls(cert: &Cert) -> Result<Vec<String>, String> {
    let Some((_, raw)) = cert.extension(ID_PE_AUTHORITY_INFO_ACCESS) else {
        return Ok(Vec::new());
    };
    let aia = AuthorityInfoAccessSyntax::from_der(raw)
        .map_err(|e| format!("malformed authorityInfoAccess extension: {e}"))?;
    Ok(aia
        .0
        .iter()
        .filter(|ad| ad.access_method == ID_AD_OCSP)
        .filter_map(|ad| match &ad.access_location {
            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            _ => None,
        })
        .collect())
}

/// One CRL distribution point of a certificate.
#[derive(Debug)]
pub(crate) enum DistributionPoint {
    /// Its fullName URIs, alternatives for the same CRL.
    Urls(Vec<String>),
    /// A form this checker cannot use, and why.
    Unsupported(String),
}

impl DistributionPoint {
    /// Its URLs (none for an unsupported form).
    pub(crate) fn into_urls(self) -> Vec<String> {
        match self {
            Self::Urls(u) => u,
            Self::Unsupported(_) => Vec::new(),
        }
    }

    fn url_count(&self) -> usize {
        match self {
            Self::Urls(u) => u.len(),
            Self::Unsupported(_) => 0,
        }
    }

    /// Keeps at most `left` URLs (and counts them off); false when none are left.
    fn keep_urls(&mut self, left: &mut usize) -> bool {
        match self {
            Self::Urls(u) => {
                u.truncate(*left);
                *left -= u.len();
                !u.is_empty()
            }
            Self::Unsupported(_) => true,
        }
    }
}

pub(crate) fn crl_points(cert: &Cert) -> Result<Vec<DistributionPoint>, String> {
    let Some((_, raw)) = cert.extension(ID_CE_CRL_DISTRIBUTION_POINTS) else {
        return Ok(Vec::new());
    };
    let cdp = CrlDistributionPoints::from_der(raw)
        .map_err(|e| format!("malformed cRLDistributionPoints extension: {e}"))?;
    Ok(cdp
        .0
        .iter()
        .map(|dp| {
            if dp.crl_issuer.is_some() {
                return DistributionPoint::Unsupported(
                    "distribution point with a cRLIssuer (indirect CRL) is not supported".into(),
                );
            }
            if dp.reasons.is_some() {
                return DistributionPoint::Unsupported(
                    "distribution point limited to some reasons is not supported".into(),
                );
            }
            match &dp.distribution_point {
                Some(DistributionPointName::FullName(names)) => {
                    let urls: Vec<String> = names
                        .iter()
                        .filter_map(|n| match n {
                            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                            _ => None,
                        })
                        .collect();
                    if urls.is_empty() {
                        DistributionPoint::Unsupported("distribution point has no URI".into())
                    } else {
                        DistributionPoint::Urls(urls)
                    }
                }
                Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
                    DistributionPoint::Unsupported(
                        "distribution point named relative to the issuer is not supported".into(),
                    )
                }
                None => DistributionPoint::Unsupported(
                    "distribution point without a name is not supported".into(),
                ),
            }
        })
        .collect())
}

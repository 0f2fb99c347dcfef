//! HTTP fetching of OCSP responses, CRLs and AIA certificates.
//!
//! One [`Fetcher`] per process wraps one `reqwest::Client` (one connection
//! pool) and adds what the PKI endpoints of a government network need: URL
//! rewriting (certificates point at hosts that only resolve inside some
//! networks), a hard per-request deadline, a bounded body, and a per-host
//! circuit breaker so that a dead responder costs nothing once it is known
//! to be dead; and the outbound policy (`policy.rs`): only allowed hosts, no
//! private addresses, redirects kept inside the allow-list, a bounded number of
//! fetches per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kyso_pki::path::IssuerSource;
use tokio::time::Instant;

use crate::error::Error;
use crate::metrics::PkiMetrics;
use crate::policy::{self, FetchPolicy, Outbound, PolicyRefusal};

/// What a fetch is for; the `source` label of the fetch metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FetchSource {
    /// An OCSP request.
    Ocsp,
    /// A CRL download.
    Crl,
    /// An AIA caIssuers certificate download.
    Aia,
    /// An RFC 3161 timestamp request (`tsa.rs`).
    Tsa,
}

impl FetchSource {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ocsp => "ocsp",
            Self::Crl => "crl",
            Self::Aia => "aia",
            Self::Tsa => "tsa",
        }
    }
}

/// A URL prefix replaced by another before any request is made (configuration
/// files write them as `{ from = "...", to = "..." }`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlRewrite {
    /// Prefix matched against the URL found in the certificate, byte for byte.
    pub from: String,
    /// What replaces the prefix.
    pub to: String,
}

/// Circuit breaker settings, per host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures (transport errors, timeouts, HTTP 5xx) that open
    /// the circuit; 0 disables the breaker.
    pub failure_threshold: u32,
    /// How long an open circuit answers without touching the network before
    /// one probe request is let through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Settings of a [`Fetcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Deadline of one request, connection and whole body included (default 5 s).
    pub timeout: Duration,
    /// Largest body accepted (default 16 MiB, enough for national CRLs).
    pub max_body_bytes: usize,
    /// Prefix rewrites; the first matching `from` wins.
    pub url_rewrites: Vec<UrlRewrite>,
    /// Per-host circuit breaker.
    pub breaker: BreakerConfig,
    /// Redirects followed (to http or https only; default 3).
    pub max_redirects: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Where fetches may go (default: nowhere but the rewrite targets).
    pub policy: FetchPolicy,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_body_bytes: 16 * 1024 * 1024,
            url_rewrites: Vec::new(),
            breaker: BreakerConfig::default(),
            max_redirects: 3,
            user_agent: concat!("kyso/", env!("CARGO_PKG_VERSION")).to_owned(),
            policy: FetchPolicy::default(),
        }
    }
}

/// Why a fetch failed. The `Display` text goes into revocation evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL (after rewriting) does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL after rewriting.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Not http or https (ldap:// distribution points, for instance).
    #[error("unsupported URL scheme {0:?} (only http and https)")]
    UnsupportedScheme(String),
    /// The host failed repeatedly; no request was made.
    #[error("circuit open for {0} after repeated failures")]
    CircuitOpen(String),
    /// No complete answer within the deadline.
    #[error("timeout after {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// An HTTP status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is larger than allowed.
    #[error("response body exceeds {0} bytes")]
    TooLarge(usize),
    /// Connection, TLS, protocol or redirect failure.
    #[error("{0}")]
    Transport(String),
    /// The outbound policy refused the URL, its address or a redirect; nothing was sent.
    #[error("{0}")]
    Policy(PolicyRefusal),
}

impl FetchError {
    /// The `outcome` label of the fetch metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::CircuitOpen(_) => "circuit_open",
            Self::Policy(_) => "policy",
            _ => "error",
        }
    }

    /// Whether this failure says something about the health of the host
    /// (and so counts towards opening its circuit).
    fn host_failed(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Status(code) => *code >= 500,
            _ => false,
        }
    }

    /// The crate error for a failed fetch of `url`.
    pub fn to_error(&self, url: &str) -> Error {
        Error::Fetch {
            url: url.to_owned(),
            reason: self.to_string(),
        }
    }
}

/// "5s", "300ms": the way evidence details state a timeout.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The HTTP client of the PKI core: OCSP, CRL and AIA downloads.
///
/// Cheap to clone: clones share the connection pool and the breakers.
#[derive(Clone)]
pub struct Fetcher(Arc<Inner>);

struct Inner {
    client: reqwest::Client,
    cfg: FetchConfig,
    outbound: Outbound,
    metrics: PkiMetrics,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher").field("cfg", &self.0.cfg).finish()
    }
}

#[derive(Clone, Copy, Debug)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everybody else is refused until it answers.
    HalfOpen,
}

/// Whether a request runs as the half-open probe. A probe dropped before it
/// finished (its caller went away) must not leave the host half-open forever.
struct Permit<'a> {
    fetcher: &'a Inner,
    host: String,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    fn finish(mut self, host_failed: bool) {
        self.done = true;
        self.fetcher.record(&self.host, host_failed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            // Cancelled probe: allow the next caller to probe at once.
            let mut map = self.fetcher.lock();
            map.insert(
                self.host.clone(),
                Breaker::Open {
                    until: Instant::now(),
                },
            );
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Breaker>> {
        // The map holds plain data; a panic elsewhere cannot leave it inconsistent.
        self.breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn acquire(&self, host: &str) -> Result<Permit<'_>, FetchError> {
        let threshold = self.cfg.breaker.failure_threshold;
        let mut probe = false;
        if threshold > 0 {
            let mut map = self.lock();
            // A host without an entry is closed: entries are made by failures only.
            let Some(state) = map.get_mut(host) else {
                return Ok(Permit {
                    fetcher: self,
                    host: host.to_owned(),
                    probe: false,
                    done: false,
                });
            };
            match *state {
                Breaker::Closed { .. } => {}
                Breaker::Open { until } if Instant::now() >= until => {
                    *state = Breaker::HalfOpen;
                    probe = true;
                }
                Breaker::Open { .. } | Breaker::HalfOpen => {
                    return Err(FetchError::CircuitOpen(host.to_owned()));
                }
            }
        }
        Ok(Permit {
            fetcher: self,
            host: host.to_owned(),
            probe,
            done: false,
        })
    }

    fn record(&self, host: &str, host_failed: bool) {
        let threshold = self.cfg.breaker.failure_threshold;
        if threshold == 0 {
            return;
        }
        let mut map = self.lock();
        if !map.contains_key(host) {
            if !host_failed {
                return;
            }
            if map.len() >= self.outbound.policy.max_tracked_hosts {
                // Bounded whatever hosts documents name: forget closed hosts first; when
                // every tracked host is open, this one goes untracked.
                map.retain(|_, b| !matches!(b, Breaker::Closed { .. }));
                if map.len() >= self.outbound.policy.max_tracked_hosts {
                    return;
                }
            }
        }
        let state = map
            .entry(host.to_owned())
            .or_insert(Breaker::Closed { failures: 0 });
        *state = match (*state, host_failed) {
            (_, false) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, true) if failures + 1 < threshold => Breaker::Closed {
                failures: failures + 1,
            },
            // Threshold reached, or the half-open probe failed.
            (Breaker::Closed { .. } | Breaker::HalfOpen, true) => Breaker::Open {
                until: Instant::now() + self.cfg.breaker.cool_down,
            },
            // Concurrent requests that started before the circuit opened.
            (open @ Breaker::Open { .. }, true) => open,
        };
        if matches!(state, Breaker::Closed { failures: 0 }) {
            map.remove(host);
        }
    }
}

impl Fetcher {
    /// A fetcher with its own connection pool. Fails only when the TLS
    /// stack cannot be initialised.
    pub fn new(cfg: FetchConfig, metrics: PkiMetrics) -> Result<Self, Error> {
        let outbound = Outbound::new(&cfg.policy, &cfg.url_rewrites);
        let judge = outbound.clone();
        let max_redirects = cfg.max_redirects;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if !matches!(attempt.url().scheme(), "http" | "https") {
                let msg = format!(
                    "redirect to unsupported scheme {:?}",
                    attempt.url().scheme()
                );
                attempt.error(msg)
            } else if let Err(refusal) = judge.check_url(attempt.url(), false) {
                // No rewrite applies to a redirect target.
                attempt.error(refusal)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .connect_timeout(cfg.timeout)
            .user_agent(cfg.user_agent.clone())
            // A proxy would resolve names where the policy cannot see the addresses.
            .no_proxy()
            .dns_resolver(outbound.resolver())
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self(Arc::new(Inner {
            client,
            cfg,
            outbound,
            metrics,
            breakers: Mutex::new(HashMap::new()),
        })))
    }

    /// Hosts whose failures the breakers currently remember.
    pub fn tracked_hosts(&self) -> usize {
        self.0.lock().len()
    }

    /// The outbound policy in force.
    pub fn policy(&self) -> &FetchPolicy {
        &self.0.outbound.policy
    }

    /// The configuration in force.
    pub fn config(&self) -> &FetchConfig {
        &self.0.cfg
    }

    /// The URL that is actually requested for `url`: the first rewrite whose
    /// `from` is a prefix of it applies; otherwise `url` unchanged.
    pub fn rewrite(&self, url: &str) -> String {
        self.rewritten(url).0
    }

    /// [`Self::rewrite`], and whether a rewrite applied.
    fn rewritten(&self, url: &str) -> (String, bool) {
        for r in &self.0.cfg.url_rewrites {
            if let Some(rest) = url.strip_prefix(r.from.as_str()) {
                return (format!("{}{rest}", r.to), true);
            }
        }
        (url.to_owned(), false)
    }

    /// GET `url` (rewritten first) and return its body.
    pub async fn get(&self, url: &str, source: FetchSource) -> Result<Bytes, FetchError> {
        self.request(url, None, source).await.map(|(b, _)| b)
    }

    /// As [`Fetcher::post`], with the answer's `Content-Type` (when it has one).
    pub async fn post_typed(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<Bytes>,
        source: FetchSource,
    ) -> Result<(Bytes, Option<String>), FetchError> {
        self.request(url, Some((content_type, body.into())), source)
            .await
    }

    /// POST `body` with `content_type` to `url` (rewritten first) and return the answer's body.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<Bytes>,
        source: FetchSource,
    ) -> Result<Bytes, FetchError> {
        self.request(url, Some((content_type, body.into())), source)
            .await
            .map(|(b, _)| b)
    }

    async fn request(
        &self,
        url: &str,
        body: Option<(&str, Bytes)>,
        source: FetchSource,
    ) -> Result<(Bytes, Option<String>), FetchError> {
        let inner = &*self.0;
        let label = source.as_str();
        let result = self.request_inner(url, body, source).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        inner
            .metrics
            .fetches
            .with_label_values(&[label, outcome])
            .inc();
        if let Err(e) = &result {
            tracing::debug!(url, source = label, error = %e, "fetch failed");
        }
        result
    }

    async fn request_inner(
        &self,
        url: &str,
        body: Option<(&str, Bytes)>,
        source: FetchSource,
    ) -> Result<(Bytes, Option<String>), FetchError> {
        let inner = &*self.0;
        let (target, rewritten) = self.rewritten(url);
        let parsed = reqwest::Url::parse(&target).map_err(|e| FetchError::InvalidUrl {
            url: target.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::UnsupportedScheme(parsed.scheme().to_owned()));
        }
        let host = match (parsed.host_str(), parsed.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(FetchError::InvalidUrl {
                    url: target,
                    reason: "no host".into(),
                });
            }
        };
        inner
            .outbound
            .check_url(&parsed, rewritten)
            .map_err(FetchError::Policy)?;
        policy::take_fetch().map_err(FetchError::Policy)?;
        let permit = inner.acquire(&host)?;
        let started = Instant::now();
        let timeout = inner.cfg.timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(parsed, body)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(timeout)),
        };
        inner
            .metrics
            .fetch_duration
            .with_label_values(&[source.as_str()])
            .observe(started.elapsed().as_secs_f64());
        permit.finish(result.as_ref().err().is_some_and(FetchError::host_failed));
        result
    }

    async fn exchange(
        &self,
        url: reqwest::Url,
        body: Option<(&str, Bytes)>,
    ) -> Result<(Bytes, Option<String>), FetchError> {
        let inner = &*self.0;
        let req = match body {
            None => inner.client.get(url),
            Some((ct, b)) => inner
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, ct)
                .body(b),
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout(inner.cfg.timeout)
            } else if let Some(refusal) = policy_refusal(&e) {
                FetchError::Policy(refusal)
            } else {
                FetchError::Transport(error_chain(&e))
            }
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = inner.cfg.max_body_bytes;
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(FetchError::TooLarge(limit));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if buf.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((buf.freeze(), content_type))
    }
}

/// The policy refusal behind a failed request (a refused redirect, a name that resolved
/// only to refused addresses), found in the error's chain of causes.
fn policy_refusal(e: &(dyn std::error::Error + 'static)) -> Option<PolicyRefusal> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<PolicyRefusal>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

/// reqwest's top-level message ("error sending request") hides the cause
/// ("Connection refused"); the evidence needs the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// The path builder downloads missing issuers (AIA caIssuers) through the same
/// client as OCSP and CRLs: same rewrites, deadline, size bound and breakers.
impl IssuerSource for Fetcher {
    fn fetch_issuers<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.get(url, FetchSource::Aia)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }

    fn max_urls_per_certificate(&self) -> usize {
        self.0.outbound.policy.max_urls_per_certificate
    }
}

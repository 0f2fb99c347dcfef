//! Configuration: a TOML file, overridden by flags and environment variables.
//! Every problem is collected and reported at once, before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kyso_pki::cert::Cert;
use kyso_pki::path::TrustStore;
use kyso_pki::report::RevocationPolicy;
use serde::Deserialize;

pub use kyso_server::TlsSection;

use crate::error::{Error, Result};

/// The verifier's configuration, as written in its TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address (its own port, so it can stay off the client network).
    pub metrics_listen: Option<SocketAddr>,
    /// PEM files of trust anchors (the government roots).
    pub trust_anchors: Vec<PathBuf>,
    /// If not empty, every anchor loaded must have one of these SHA-256
    /// fingerprints (hex, colons allowed): a deployment pins its roots.
    pub anchor_fingerprints: Vec<String>,
    /// PEM files of intermediates to use when a signature carries only its leaf.
    pub intermediates: Vec<PathBuf>,
    /// SHA-256 fingerprints of anchors under which SHA-1 CA certificates are
    /// accepted (the government G1 root).
    pub legacy_sha1_roots: Vec<String>,
    /// Download missing intermediates through AIA caIssuers.
    pub fetch_aia: bool,
    /// Revocation checking.
    pub revocation: RevocationSection,
    /// Request bounds.
    pub limits: Limits,
    /// TLS; absent means plaintext (only for loopback and tests).
    pub tls: Option<TlsSection>,
}

/// `[revocation]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationSection {
    /// `require` (default), `soft-fail` or `off`.
    pub policy: RevocationPolicy,
    /// `ocsp-then-crl` (default), `crl-then-ocsp`, `ocsp-only`, `crl-only`.
    pub order: String,
    /// Per-URL timeout, milliseconds.
    pub timeout_ms: u64,
    /// Cap on how long an answer is cached, whatever its nextUpdate, seconds.
    pub max_ttl_secs: u64,
    /// How long past nextUpdate an answer may be served when its source is down, seconds.
    pub stale_grace_secs: u64,
    /// Most OCSP answers kept.
    pub max_ocsp_entries: u64,
    /// Most bytes of parsed CRLs kept.
    pub max_crl_bytes: u64,
    /// Send a nonce in OCSP requests (defeats caching at the responder).
    pub ocsp_nonce: bool,
    /// Rewrite AIA/CDP URLs by prefix: real certificates point at internal hosts.
    pub url_rewrites: Vec<UrlRewrite>,
}

/// One URL prefix rewrite.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlRewrite {
    /// Prefix as written in certificates.
    pub from: String,
    /// What to put instead.
    pub to: String,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once across all connections; more are shed with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Server-side deadline per request, milliseconds (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// Documents verified at once inside one VerifyStream.
    pub stream_parallelism: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50061)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9461))),
            trust_anchors: Vec::new(),
            anchor_fingerprints: Vec::new(),
            intermediates: Vec::new(),
            legacy_sha1_roots: Vec::new(),
            fetch_aia: true,
            revocation: RevocationSection::default(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl Default for RevocationSection {
    fn default() -> Self {
        Self {
            policy: RevocationPolicy::Require,
            order: "ocsp-then-crl".into(),
            timeout_ms: 5_000,
            max_ttl_secs: 3_600,
            stale_grace_secs: 0,
            max_ocsp_entries: 100_000,
            max_crl_bytes: 256 << 20,
            ocsp_nonce: false,
            url_rewrites: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_concurrent_requests: 512,
            request_timeout_ms: 30_000,
            stream_parallelism: 16,
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        kyso_server::config::read_toml(path).map_err(|p| Error::Config(vec![p]))
    }

    /// Checks everything that can be checked without binding, and loads the
    /// trust material. All problems are reported together.
    pub fn load(&self) -> Result<Loaded> {
        let mut problems = Vec::new();
        let anchors = load_pems(&self.trust_anchors, "trust_anchors", &mut problems);
        let intermediates = load_pems(&self.intermediates, "intermediates", &mut problems);
        if self.trust_anchors.is_empty() {
            problems.push("trust_anchors: at least one anchor file is needed".into());
        }
        let pins = parse_fingerprints(
            &self.anchor_fingerprints,
            "anchor_fingerprints",
            &mut problems,
        );
        if !pins.is_empty() {
            for a in &anchors {
                if !pins.contains(a.fingerprint()) {
                    problems.push(format!(
                        "trust_anchors: {} (SHA-256 {}) is not among anchor_fingerprints",
                        kyso_pki::cert::name_to_string(a.subject()),
                        a.fingerprint_hex()
                    ));
                }
            }
        }
        let legacy =
            parse_fingerprints(&self.legacy_sha1_roots, "legacy_sha1_roots", &mut problems);
        let order = match self.revocation.order.as_str() {
            "ocsp-then-crl" => kyso_pki::revocation::RevocationOrder::OcspThenCrl,
            "crl-then-ocsp" => kyso_pki::revocation::RevocationOrder::CrlThenOcsp,
            "ocsp-only" => kyso_pki::revocation::RevocationOrder::OcspOnly,
            "crl-only" => kyso_pki::revocation::RevocationOrder::CrlOnly,
            other => {
                problems.push(format!(
                    "revocation.order: {other:?} is not one of ocsp-then-crl, crl-then-ocsp, ocsp-only, crl-only"
                ));
                kyso_pki::revocation::RevocationOrder::OcspThenCrl
            }
        };
        if self.revocation.timeout_ms == 0 {
            problems.push("revocation.timeout_ms: must be above 0".into());
        }
        for (i, r) in self.revocation.url_rewrites.iter().enumerate() {
            for (what, u) in [("from", &r.from), ("to", &r.to)] {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    problems.push(format!(
                        "revocation.url_rewrites[{i}].{what}: {u:?} is not an http(s) URL prefix"
                    ));
                }
            }
        }
        if self.limits.max_message_bytes < 1024 {
            problems.push("limits.max_message_bytes: must be at least 1024".into());
        }
        if self.limits.max_concurrent_requests == 0 {
            problems.push("limits.max_concurrent_requests: must be above 0".into());
        }
        if self.limits.stream_parallelism == 0 {
            problems.push("limits.stream_parallelism: must be above 0".into());
        }
        if self.limits.request_timeout_ms == 0 {
            problems.push("limits.request_timeout_ms: must be above 0".into());
        }
        let tls = match &self.tls {
            None => None,
            Some(t) => t.load(&mut problems),
        };
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let revocation = kyso_pki::revocation::RevocationConfig {
            order,
            max_ttl: Duration::from_secs(self.revocation.max_ttl_secs),
            stale_grace: Duration::from_secs(self.revocation.stale_grace_secs),
            max_entries_ocsp: self.revocation.max_ocsp_entries,
            max_crl_bytes: self.revocation.max_crl_bytes,
            ocsp_nonce: self.revocation.ocsp_nonce,
            fetch: kyso_pki::revocation::fetch::FetchConfig {
                timeout: Duration::from_millis(self.revocation.timeout_ms),
                url_rewrites: self
                    .revocation
                    .url_rewrites
                    .iter()
                    .map(|r| kyso_pki::revocation::fetch::UrlRewrite {
                        from: r.from.clone(),
                        to: r.to.clone(),
                    })
                    .collect(),
                ..kyso_pki::revocation::fetch::FetchConfig::default()
            },
            ..kyso_pki::revocation::RevocationConfig::default()
        };
        Ok(Loaded {
            pki: kyso_pki::verify::VerifierConfig {
                trust: TrustStore::new(anchors, intermediates, &legacy),
                revocation,
                default_policy: self.revocation.policy,
                fetch_aia: self.fetch_aia,
            },
            tls,
        })
    }
}

/// A configuration with its files read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// What the PKI core needs.
    pub pki: kyso_pki::verify::VerifierConfig,
    /// TLS material, when configured.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
}

fn load_pems(paths: &[PathBuf], what: &str, problems: &mut Vec<String>) -> Vec<Cert> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::read(p) {
            Ok(bytes) => match Cert::parse_many(&bytes) {
                Ok(certs) => out.extend(certs),
                Err(e) => problems.push(format!("{what}: {}: {e}", p.display())),
            },
            Err(e) => problems.push(format!("{what}: {}: {e}", p.display())),
        }
    }
    out
}

fn parse_fingerprints(list: &[String], what: &str, problems: &mut Vec<String>) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for f in list {
        let clean: String = f
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        match hex::decode(&clean)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
        {
            Some(fp) => out.push(fp),
            None => problems.push(format!("{what}: {f:?} is not a SHA-256 fingerprint in hex")),
        }
    }
    out
}

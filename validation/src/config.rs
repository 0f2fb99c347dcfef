//! The trust configuration: anchors and their pins, intermediates, legacy SHA-1
//! roots, AIA and revocation. The verifier's file carries these keys at its top
//! level; the signer's file carries the same keys under `[trust]`, for the check
//! of its own certificates (N1). Unknown keys are refused in both.

use std::path::PathBuf;
use std::time::Duration;

use kyso_pki::cert::Cert;
use kyso_pki::name::rfc4514;
use kyso_pki::path::{PathBudget, TrustStore};
use kyso_revocation::policy::hosts_named_by;
use kyso_revocation::{
    FetchConfig, FetchPolicy, HostPattern, RevocationConfig, RevocationOrder, RevocationPolicy,
};
use serde::Deserialize;

pub use kyso_revocation::UrlRewrite;

use crate::pinned::{GOVERNMENT_ROOTS, describe};
use crate::verify::VerifierConfig;

/// Trust anchors, intermediates and revocation checking, as written in TOML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// PEM files of trust anchors (the government roots).
    pub trust_anchors: Vec<PathBuf>,
    /// If not empty, every anchor loaded must have one of these SHA-256
    /// fingerprints (hex, colons allowed): a deployment pins its roots.
    pub anchor_fingerprints: Vec<String>,
    /// SHA-256 fingerprints (hex, colons allowed) of pinned anchors: a certificate with
    /// one of them is a trust anchor wherever it is found (the signature, the
    /// intermediates, AIA), without a file (`kyso verify`'s default: the government roots).
    pub pinned_anchors: Vec<String>,
    /// PEM files of intermediates to use when a signature carries only its leaf.
    pub intermediates: Vec<PathBuf>,
    /// SHA-256 fingerprints of anchors under which SHA-1 CA certificates are
    /// accepted (the government G1 root).
    pub legacy_sha1_roots: Vec<String>,
    /// Download missing intermediates through AIA caIssuers.
    pub fetch_aia: bool,
    /// Revocation checking.
    pub revocation: RevocationSection,
    /// Path building.
    pub path: PathSection,
}

/// `[path]`: the work one path build may do (N2) before the signature is
/// answered INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathSection {
    /// Issuer candidates considered per path build.
    pub max_candidates: usize,
    /// Certificate signatures verified per path build (cached links are free).
    pub max_signature_checks: usize,
}

impl Default for PathSection {
    fn default() -> Self {
        let b = PathBudget::default();
        Self {
            max_candidates: b.max_candidates,
            max_signature_checks: b.max_signature_checks,
        }
    }
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
    /// Hosts OCSP, CRL and AIA fetches may go to (`host`, `host:port`, `*.suffix`);
    /// unset: the hosts the configured anchors and intermediates name themselves. The
    /// targets of `url_rewrites` are always allowed.
    pub allowed_hosts: Option<Vec<String>>,
    /// Networks (CIDR) that may be connected to although loopback, private or link-local.
    pub allowed_networks: Vec<String>,
    /// URLs of each kind tried per certificate.
    pub max_urls_per_certificate: usize,
    /// Network fetches one verification may make.
    pub max_fetches_per_request: usize,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            trust_anchors: Vec::new(),
            anchor_fingerprints: Vec::new(),
            pinned_anchors: Vec::new(),
            intermediates: Vec::new(),
            legacy_sha1_roots: Vec::new(),
            fetch_aia: true,
            revocation: RevocationSection::default(),
            path: PathSection::default(),
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
            allowed_hosts: None,
            allowed_networks: Vec::new(),
            max_urls_per_certificate: FetchPolicy::default().max_urls_per_certificate,
            max_fetches_per_request: FetchPolicy::default().max_fetches_per_request,
        }
    }
}

impl TrustConfig {
    /// Reads the anchors and intermediates and checks every setting; every problem is
    /// listed (`trust_anchors: ...`, `revocation.order: ...`), none stops the others.
    pub fn load(&self) -> Result<VerifierConfig, Vec<String>> {
        let mut problems = Vec::new();
        let anchors = load_pems(&self.trust_anchors, "trust_anchors", &mut problems);
        let intermediates = load_pems(&self.intermediates, "intermediates", &mut problems);
        if self.trust_anchors.is_empty() && self.pinned_anchors.is_empty() {
            problems.push(
                "trust_anchors: at least one anchor file (or pinned_anchors) is needed".into(),
            );
        }
        let pinned = parse_fingerprints(&self.pinned_anchors, "pinned_anchors", &mut problems);
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
                        rfc4514(a.subject()),
                        a.fingerprint_hex()
                    ));
                }
            }
        }
        let legacy =
            parse_fingerprints(&self.legacy_sha1_roots, "legacy_sha1_roots", &mut problems);
        let order = match self.revocation.order.parse::<RevocationOrder>() {
            Ok(o) => o,
            Err(_) => {
                problems.push(format!(
                    "revocation.order: {:?} is not one of ocsp-then-crl, crl-then-ocsp, ocsp-only, crl-only",
                    self.revocation.order
                ));
                RevocationOrder::OcspThenCrl
            }
        };
        if self.path.max_candidates == 0 {
            problems.push("path.max_candidates: must be above 0".into());
        }
        if self.path.max_signature_checks == 0 {
            problems.push("path.max_signature_checks: must be above 0".into());
        }
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
        let policy = self
            .revocation
            .fetch_policy(&anchors, &intermediates, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let revocation = RevocationConfig {
            order,
            max_ttl: Duration::from_secs(self.revocation.max_ttl_secs),
            stale_grace: Duration::from_secs(self.revocation.stale_grace_secs),
            max_entries_ocsp: self.revocation.max_ocsp_entries,
            max_crl_bytes: self.revocation.max_crl_bytes,
            ocsp_nonce: self.revocation.ocsp_nonce,
            fetch: FetchConfig {
                timeout: Duration::from_millis(self.revocation.timeout_ms),
                url_rewrites: self.revocation.url_rewrites.clone(),
                policy,
                ..FetchConfig::default()
            },
            ..RevocationConfig::default()
        };
        Ok(VerifierConfig {
            anchor_note: (!pinned.is_empty()).then(|| pinned_note(&pinned)),
            trust: TrustStore::new(anchors, intermediates, &legacy).with_pinned(&pinned),
            revocation,
            default_policy: self.revocation.policy,
            fetch_aia: self.fetch_aia,
            path_budget: PathBudget {
                max_candidates: self.path.max_candidates,
                max_signature_checks: self.path.max_signature_checks,
            },
        })
    }
}

/// What a report adds when no path reaches an anchor and anchors are pinned: which.
fn pinned_note(pinned: &[[u8; 32]]) -> String {
    let names: Vec<String> = pinned
        .iter()
        .map(|fp| {
            GOVERNMENT_ROOTS
                .iter()
                .find(|r| parse_one(r.sha256).as_ref() == Some(fp))
                .map(|r| describe(std::slice::from_ref(r)))
                .unwrap_or_else(|| format!("SHA-256 {}", hex::encode_upper(fp)))
        })
        .collect();
    format!(
        "; the trust anchors are pinned by fingerprint: {}; none was found among the signature's certificates, the given certificates, AIA downloads or the anchor files",
        names.join(", ")
    )
}

impl TrustConfig {
    /// `kyso verify`'s default trust: the government roots pinned by fingerprint
    /// ([`GOVERNMENT_ROOTS`]), SHA-1 CA certificates accepted only below the G1 root
    /// (V2), and `anchor_files` (an anchors directory) each required to be one of them.
    pub fn pin_government_roots(&mut self, anchor_files: Vec<PathBuf>) {
        for r in GOVERNMENT_ROOTS {
            self.pinned_anchors.push(r.sha256.to_owned());
            self.anchor_fingerprints.push(r.sha256.to_owned());
            if r.legacy_sha1 {
                self.legacy_sha1_roots.push(r.sha256.to_owned());
            }
        }
        self.trust_anchors.extend(anchor_files);
    }
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

fn parse_one(f: &str) -> Option<[u8; 32]> {
    let clean: String = f
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    hex::decode(&clean)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
}

fn parse_fingerprints(list: &[String], what: &str, problems: &mut Vec<String>) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for f in list {
        match parse_one(f) {
            Some(fp) => out.push(fp),
            None => problems.push(format!("{what}: {f:?} is not a SHA-256 fingerprint in hex")),
        }
    }
    out
}

impl RevocationSection {
    /// The outbound fetch policy; unusable entries are added to `problems`.
    fn fetch_policy(
        &self,
        anchors: &[Cert],
        intermediates: &[Cert],
        problems: &mut Vec<String>,
    ) -> FetchPolicy {
        let allowed_hosts = match &self.allowed_hosts {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    h.parse::<HostPattern>()
                        .map_err(|e| problems.push(format!("revocation.allowed_hosts[{i}]: {e}")))
                        .ok()
                })
                .collect(),
            // By default, where the CAs themselves point (their OCSP responder, CRLs and
            // issuers): those hosts are the PKI's own.
            None => {
                let mut hosts: Vec<HostPattern> = Vec::new();
                for c in anchors.iter().chain(intermediates) {
                    for h in hosts_named_by(c) {
                        if !hosts.contains(&h) {
                            hosts.push(h);
                        }
                    }
                }
                hosts
            }
        };
        let allowed_networks = self
            .allowed_networks
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.trim()
                    .parse()
                    .map_err(|e| {
                        problems.push(format!(
                            "revocation.allowed_networks[{i}]: {n:?} is not a network (10.20.0.0/16): {e}"
                        ))
                    })
                    .ok()
            })
            .collect();
        if self.max_urls_per_certificate == 0 {
            problems.push("revocation.max_urls_per_certificate: must be above 0".into());
        }
        if self.max_fetches_per_request == 0 {
            problems.push("revocation.max_fetches_per_request: must be above 0".into());
        }
        FetchPolicy {
            allowed_hosts,
            allowed_networks,
            max_urls_per_certificate: self.max_urls_per_certificate,
            max_fetches_per_request: self.max_fetches_per_request,
            ..FetchPolicy::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_are_refused_in_a_trust_section() {
        for key in [
            "listen = \"127.0.0.1:1\"",
            "[limits]",
            "[tls]",
            "metrics_listen = \"127.0.0.1:2\"",
        ] {
            let text = format!("trust_anchors = [\"/r.pem\"]\n{key}\n");
            let e = toml::from_str::<TrustConfig>(&text).expect_err(key);
            assert!(e.to_string().contains("unknown field"), "{key}: {e}");
        }
    }

    #[test]
    fn every_problem_is_listed() {
        let cfg: TrustConfig = toml::from_str(
            "anchor_fingerprints = [\"zz\"]\n[revocation]\norder = \"sometimes\"\ntimeout_ms = 0\n",
        )
        .unwrap();
        let problems = cfg.load().expect_err("nothing can load");
        for needle in [
            "trust_anchors:",
            "anchor_fingerprints:",
            "revocation.order:",
            "revocation.timeout_ms:",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(needle)),
                "{needle} missing from {problems:?}"
            );
        }
    }
}

//! `[tsa]` and `[levels]`: the timestamp authority the signer asks for B-T and above (N1),
//! and which level each profile signs at when a request does not say.
//!
//! ```toml
//! [tsa]
//! url = "http://tsa.ca.example/tsa"   # configuration only: nothing a caller sends is posted to
//! policy = "1.2.3.4"                  # optional: the TSA's default otherwise
//! hash = "sha256"                     # the imprint's hash (sha256, sha384, sha512)
//! timeout_ms = 1000                   # one attempt
//! retries = 1                         # further attempts, within the budget
//! budget_ms = 1500                    # past it the signature goes out at B-B (D7 upgrade later)
//! tsa_roots = "tsa-roots.pem"         # optional: else the [trust] anchors
//! pdf_reserve_bytes = 12000           # /Contents room kept for the token in a PDF
//!
//! [levels]
//! default = "b-b"
//! [levels.profiles]
//! ISSUE = "b-t"                       # proto Profile names, with or without PROFILE_
//! ```
//!
//! B-LT (CMS and PDF) and B-LTA (PDF) also embed the signer's validation data
//! (`crate::ltdata`), within the same budget.
//!
//! Fail closed: a level that needs a timestamp (B-T, B-LT, B-LTA) named here without a
//! `[tsa]` stops the start, with every other configuration problem.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1::{Profile, SignatureLevel};
use serde::Deserialize;

use crate::timestamp::{level_name, parse_level};

/// `[tsa]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaSection {
    /// The TSA's URL (http or https).
    pub url: String,
    /// The policy OID to ask for; absent: the TSA's default.
    #[serde(default)]
    pub policy: Option<String>,
    /// The imprint's hash.
    #[serde(default = "default_hash")]
    pub hash: String,
    /// Deadline of one attempt, milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts after the first (all within `budget_ms` for a request).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The time a signing request may wait for the timestamp, milliseconds.
    #[serde(default = "default_budget_ms")]
    pub budget_ms: u64,
    /// PEM bundle of the roots a TSA certificate must chain to; absent: `[trust]`'s
    /// `trust_anchors`.
    #[serde(default)]
    pub tsa_roots: Option<PathBuf>,
    /// Bytes kept in a PDF signature's /Contents for the token (PAdES B-T).
    #[serde(default = "default_pdf_reserve")]
    pub pdf_reserve_bytes: usize,
}

fn default_hash() -> String {
    "sha256".into()
}
fn default_timeout_ms() -> u64 {
    1_000
}
fn default_retries() -> u32 {
    1
}
fn default_budget_ms() -> u64 {
    1_500
}
fn default_pdf_reserve() -> usize {
    12_000
}

/// `[levels]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelsSection {
    /// The level of a request that names none and whose profile is not listed; absent: B-B.
    pub default: Option<String>,
    /// Levels by profile (`ISSUE`, `PROFILE_ISSUE`, ...).
    pub profiles: BTreeMap<String, String>,
}

/// `[tsa]` checked and read.
#[derive(Clone, Debug)]
pub struct LoadedTsa {
    /// For the client.
    pub client: kyso_revocation::tsa::TsaConfig,
    /// The imprint's hash.
    pub digest: DigestAlgorithm,
    /// The request budget.
    pub budget: Duration,
    /// Roots for the TSA's certificate.
    pub anchors: Vec<Cert>,
    /// PDF /Contents reserve for the token.
    pub pdf_reserve: usize,
}

/// The levels by profile, checked.
#[derive(Clone, Debug)]
pub struct Levels {
    default: SignatureLevel,
    by_profile: HashMap<i32, SignatureLevel>,
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            default: SignatureLevel::BB,
            by_profile: HashMap::new(),
        }
    }
}

impl Levels {
    /// The level for a request of `profile` that asked for `requested` (UNSPECIFIED: the
    /// profile's, else the default).
    pub fn resolve(&self, requested: i32, profile: i32) -> SignatureLevel {
        match SignatureLevel::try_from(requested) {
            Ok(SignatureLevel::Unspecified) | Err(_) => self
                .by_profile
                .get(&profile)
                .copied()
                .unwrap_or(self.default),
            Ok(l) => l,
        }
    }
}

/// Reads `[tsa]` and `[levels]`; problems go to `problems` (all at once, as the rest).
pub fn load(
    tsa: Option<&TsaSection>,
    levels: &LevelsSection,
    trust_anchors: &[PathBuf],
    problems: &mut Vec<String>,
) -> (Option<LoadedTsa>, Levels) {
    let mut out = Levels::default();
    let mut needs_tsa = Vec::new();
    let mut level = |what: String, s: &str, problems: &mut Vec<String>| match parse_level(s) {
        Some(l) => {
            if l != SignatureLevel::BB {
                needs_tsa.push(format!("{what} = {:?}", level_name(l)));
            }
            Some(l)
        }
        None => {
            problems.push(format!(
                "{what}: {s:?} is not a level (b-b, b-t, b-lt, b-lta)"
            ));
            None
        }
    };
    if let Some(d) = &levels.default
        && let Some(l) = level("levels.default".into(), d, problems)
    {
        out.default = l;
    }
    for (name, l) in &levels.profiles {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("PROFILE_") {
            upper
        } else {
            format!("PROFILE_{upper}")
        };
        let Some(p) = Profile::from_str_name(&full).filter(|p| *p != Profile::Unspecified) else {
            problems.push(format!(
                "levels.profiles.{name}: not a profile (APPROVAL, ISSUE, SCANNED_ISSUE, COPY, \
                 APPENDIX, RECEIVED, COMMENT)"
            ));
            continue;
        };
        if let Some(l) = level(format!("levels.profiles.{name}"), l, problems) {
            out.by_profile.insert(p as i32, l);
        }
    }
    let Some(t) = tsa else {
        if !needs_tsa.is_empty() {
            problems.push(format!(
                "tsa: N1: {} need(s) a timestamp authority; configure [tsa] (url, ...) or \
                 lower the level to b-b",
                needs_tsa.join(", ")
            ));
        }
        return (None, out);
    };
    let before = problems.len();
    if !(t.url.starts_with("http://") || t.url.starts_with("https://")) {
        problems.push(format!("tsa.url: {:?} is not an http(s) URL", t.url));
    }
    let policy = match &t.policy {
        None => None,
        Some(p) => match ObjectIdentifier::new(p.trim()) {
            Ok(o) => Some(o),
            Err(e) => {
                problems.push(format!("tsa.policy: {p:?} is not an OID: {e}"));
                None
            }
        },
    };
    let digest = match t.hash.trim().to_ascii_lowercase().as_str() {
        "sha256" => DigestAlgorithm::Sha256,
        "sha384" => DigestAlgorithm::Sha384,
        "sha512" => DigestAlgorithm::Sha512,
        other => {
            problems.push(format!(
                "tsa.hash: {other:?} is not sha256, sha384 or sha512"
            ));
            DigestAlgorithm::Sha256
        }
    };
    if t.timeout_ms == 0 {
        problems.push("tsa.timeout_ms: must be above 0".into());
    }
    if t.budget_ms == 0 || t.budget_ms > 60_000 {
        problems.push("tsa.budget_ms: from 1 to 60000".into());
    }
    if t.retries > 5 {
        problems.push("tsa.retries: at most 5".into());
    }
    if !(2_000..=64_000).contains(&t.pdf_reserve_bytes) {
        problems.push("tsa.pdf_reserve_bytes: from 2000 to 64000".into());
    }
    let files: Vec<(String, PathBuf)> = match &t.tsa_roots {
        Some(p) => vec![("tsa.tsa_roots".into(), p.clone())],
        None => trust_anchors
            .iter()
            .map(|p| ("trust.trust_anchors (for the TSA)".to_owned(), p.clone()))
            .collect(),
    };
    let mut anchors = Vec::new();
    for (what, path) in files {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| Cert::parse_many(&b).map_err(|e| e.to_string()))
        {
            Ok(c) => anchors.extend(c),
            Err(e) => problems.push(format!("{what}: {}: {e}", path.display())),
        }
    }
    if anchors.is_empty() && problems.len() == before {
        problems.push("tsa.tsa_roots: no root to check the TSA's certificate against".into());
    }
    if problems.len() != before {
        return (None, out);
    }
    let loaded = LoadedTsa {
        client: kyso_revocation::tsa::TsaConfig {
            url: t.url.clone(),
            policy,
            deadline: Duration::from_millis(t.timeout_ms),
            attempts: t.retries.saturating_add(1),
            backoff: Duration::from_millis(100),
        },
        digest,
        budget: Duration::from_millis(t.budget_ms),
        anchors,
        pdf_reserve: t.pdf_reserve_bytes,
    };
    (Some(loaded), out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, non_snake_case)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamped_level_without_tsa_is_a_config_problem_N1() {
        let levels = LevelsSection {
            default: Some("b-t".into()),
            profiles: [("issue".to_owned(), "B_LT".to_owned())].into(),
        };
        let mut problems = Vec::new();
        let (tsa, _) = load(None, &levels, &[], &mut problems);
        assert!(tsa.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("N1"), "{problems:?}");
        assert!(problems[0].contains("levels.default"), "{problems:?}");
        assert!(
            problems[0].contains("levels.profiles.issue"),
            "{problems:?}"
        );
    }

    #[test]
    fn levels_resolve_request_then_profile_then_default() {
        let levels = LevelsSection {
            default: None,
            profiles: [("PROFILE_ISSUE".to_owned(), "b-t".to_owned())].into(),
        };
        let mut problems = Vec::new();
        let tsa = TsaSection {
            url: "http://tsa.example/".into(),
            policy: Some("not an oid".into()),
            hash: "md5".into(),
            timeout_ms: 0,
            retries: 1,
            budget_ms: 1500,
            tsa_roots: Some("/nonexistent/roots.pem".into()),
            pdf_reserve_bytes: 12_000,
        };
        let (loaded, l) = load(Some(&tsa), &levels, &[], &mut problems);
        assert!(loaded.is_none());
        // Every problem at once.
        assert_eq!(problems.len(), 4, "{problems:?}");
        let issue = Profile::Issue as i32;
        let approval = Profile::Approval as i32;
        assert_eq!(l.resolve(0, issue), SignatureLevel::BT);
        assert_eq!(l.resolve(0, approval), SignatureLevel::BB);
        assert_eq!(
            l.resolve(SignatureLevel::BB as i32, issue),
            SignatureLevel::BB
        );
        let mut p = Vec::new();
        let bad = LevelsSection {
            default: Some("b-x".into()),
            profiles: [("NOPE".to_owned(), "b-t".to_owned())].into(),
        };
        load(None, &bad, &[], &mut p);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}

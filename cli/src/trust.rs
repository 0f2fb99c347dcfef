//! The trust of an in-process verification, one set of flags for every command that
//! verifies without a server (`kyso verify`, `kyso ltv extend`, `kyso bench instructions`):
//! a verifier configuration, anchors (else the government roots, pinned by fingerprint),
//! intermediates, URL rewrites, the hosts fetches may reach.

use std::path::PathBuf;

use clap::Args;
use kyso_validation::config::UrlRewrite;
use kyso_validation::verify::Verifier;

use crate::CliError;

/// Trust for in-process verification.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust anchors (PEM; repeatable). In-process only. Without any (here or in
    /// `--config`), the government roots are trusted, pinned by their published SHA-256
    /// fingerprints (G1 RootCA, its SHA-1 sub-CAs under the legacy rule, and G2): a
    /// certificate with a pinned fingerprint is an anchor wherever it is found (in the
    /// signature, `--certificates`, AIA, or the anchors directory).
    #[arg(long)]
    pub(crate) trust_anchors: Vec<PathBuf>,
    /// The anchors directory for the pinned government roots: every `.pem`, `.crt` or
    /// `.cer` file in it must hold only certificates with a pinned fingerprint, or
    /// verification stops (fail closed). Default: `$XDG_DATA_HOME/kyso/anchors`
    /// (`~/.local/share/kyso/anchors`), when it exists. Fill it from the CA's download.
    #[arg(long, value_name = "DIR")]
    pub(crate) anchors_dir: Option<PathBuf>,
    /// Intermediates (PEM; repeatable). In-process only; they are also offered as
    /// the signer's certificate, as `--certificates` are.
    #[arg(long)]
    pub(crate) intermediates: Vec<PathBuf>,
    /// A verifier TOML configuration for in-process verification
    /// (anchors, rewrites, caches); flags add to it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Rewrite an AIA/CDP URL prefix, FROM=TO (repeatable). In-process only.
    #[arg(long = "url-rewrite", value_name = "FROM=TO")]
    pub(crate) url_rewrites: Vec<String>,
    /// A host OCSP, CRL and AIA fetches may reach (`host`, `host:port`, `*.suffix`;
    /// repeatable); without it, the hosts the trust anchors and intermediates name.
    /// In-process only.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub(crate) allow_hosts: Vec<String>,
}

impl TrustArgs {
    /// Whether any of these flags was given (they do not apply to a server's verification).
    pub(crate) fn any_given(&self) -> bool {
        !self.trust_anchors.is_empty()
            || !self.intermediates.is_empty()
            || self.config.is_some()
            || self.anchors_dir.is_some()
            || !self.url_rewrites.is_empty()
            || !self.allow_hosts.is_empty()
    }

    /// The in-process [`Verifier`] of these flags.
    pub(crate) fn verifier(&self) -> Result<Verifier, CliError> {
        let mut config = match &self.config {
            Some(p) => kyso_verifier::Config::from_file(p)?,
            None => kyso_verifier::Config::default(),
        };
        config
            .trust
            .trust_anchors
            .extend(self.trust_anchors.iter().cloned());
        if config.trust.trust_anchors.is_empty() && config.trust.pinned_anchors.is_empty() {
            // A clerk's `kyso verify FILE`: the government roots, by fingerprint.
            let files = anchor_files(self.anchors_dir.as_deref())?;
            config.trust.pin_government_roots(files);
        } else if self.anchors_dir.is_some() {
            return Err(CliError::Usage(
                "--anchors-dir holds the pinned government roots; it does not apply with --trust-anchors or configured anchors".into(),
            ));
        }
        config
            .trust
            .intermediates
            .extend(self.intermediates.iter().cloned());
        for r in &self.url_rewrites {
            let (from, to) = r
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("--url-rewrite {r:?}: expected FROM=TO")))?;
            config.trust.revocation.url_rewrites.push(UrlRewrite {
                from: from.into(),
                to: to.into(),
            });
        }
        if !self.allow_hosts.is_empty() {
            config
                .trust
                .revocation
                .allowed_hosts
                .get_or_insert_with(Vec::new)
                .extend(self.allow_hosts.iter().cloned());
        }
        let loaded = config.load()?;
        let metrics = kyso_revocation::PkiMetrics::unregistered()
            .map_err(|e| CliError::Usage(format!("metrics: {e}")))?;
        Ok(Verifier::from_config(loaded.pki, metrics)?)
    }
}

/// The certificate files of the anchors directory: `dir` if given (it must exist), else
/// `$XDG_DATA_HOME/kyso/anchors` or `~/.local/share/kyso/anchors` if it exists.
fn anchor_files(dir: Option<&std::path::Path>) -> Result<Vec<PathBuf>, CliError> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let base = std::env::var_os("XDG_DATA_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                });
            match base.map(|b| b.join("kyso/anchors")) {
                Some(d) if d.is_dir() => d,
                _ => return Ok(Vec::new()),
            }
        }
    };
    let entries = std::fs::read_dir(&dir).map_err(|source| CliError::File {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.map_err(|source| CliError::File {
            path: dir.display().to_string(),
            source,
        })?;
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or_default();
        if matches!(ext, "pem" | "crt" | "cer") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

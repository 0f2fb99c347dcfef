//! The trust flags of `kyso ltv extend`: those of `kyso verify`'s in-process mode
//! (anchors or the pinned government roots, intermediates, a verifier
//! configuration, URL rewrites, the hosts fetches may reach), giving the same
//! in-process [`Verifier`].

use std::path::PathBuf;

use clap::Args;
use kyso_validation::config::UrlRewrite;
use kyso_validation::verify::Verifier;

use crate::CliError;
use crate::verify::anchor_files;

/// Trust for in-process verification.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust anchors (PEM; repeatable): the signers' roots and the TSAs' roots.
    /// Without any (here or in `--config`), the government roots, pinned by fingerprint.
    #[arg(long)]
    trust_anchors: Vec<PathBuf>,
    /// The anchors directory for the pinned government roots (as `kyso verify`).
    #[arg(long, value_name = "DIR")]
    anchors_dir: Option<PathBuf>,
    /// Intermediates (PEM; repeatable).
    #[arg(long)]
    intermediates: Vec<PathBuf>,
    /// A verifier TOML configuration (anchors, rewrites, caches); flags add to it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Rewrite an AIA/CDP URL prefix, FROM=TO (repeatable).
    #[arg(long = "url-rewrite", value_name = "FROM=TO")]
    url_rewrites: Vec<String>,
    /// A host OCSP, CRL and AIA fetches may reach (repeatable); without it, the hosts
    /// the trust anchors and intermediates name.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
}

/// The in-process verifier of these flags.
pub(crate) fn local_verifier_from(args: &TrustArgs) -> Result<Verifier, CliError> {
    let mut config = match &args.config {
        Some(p) => kyso_verifier::Config::from_file(p)?,
        None => kyso_verifier::Config::default(),
    };
    config
        .trust
        .trust_anchors
        .extend(args.trust_anchors.iter().cloned());
    if config.trust.trust_anchors.is_empty() && config.trust.pinned_anchors.is_empty() {
        let files = anchor_files(args.anchors_dir.as_deref())?;
        config.trust.pin_government_roots(files);
    } else if args.anchors_dir.is_some() {
        return Err(CliError::Usage(
            "--anchors-dir holds the pinned government roots; it does not apply with --trust-anchors or configured anchors".into(),
        ));
    }
    config
        .trust
        .intermediates
        .extend(args.intermediates.iter().cloned());
    for r in &args.url_rewrites {
        let (from, to) = r
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--url-rewrite {r:?}: expected FROM=TO")))?;
        config.trust.revocation.url_rewrites.push(UrlRewrite {
            from: from.into(),
            to: to.into(),
        });
    }
    if !args.allow_hosts.is_empty() {
        config
            .trust
            .revocation
            .allowed_hosts
            .get_or_insert_with(Vec::new)
            .extend(args.allow_hosts.iter().cloned());
    }
    let loaded = config.load()?;
    let metrics = kyso_revocation::PkiMetrics::unregistered()
        .map_err(|e| CliError::Usage(format!("metrics: {e}")))?;
    Ok(Verifier::from_config(loaded.pki, metrics)?)
}

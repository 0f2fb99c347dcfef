//! The verifier binary: configuration, logging, signals; the service lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kyso_validation::report::RevocationPolicy;
use kyso_verifier::Config;

/// kyso verifier: verifies CMS/CAdES signatures over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: kyso_server::bin::Common,
    /// PEM file(s) of trust anchors (repeatable; replaces the file's list).
    #[arg(long, env = "KYSO_VERIFIER_TRUST_ANCHORS", value_delimiter = ',')]
    trust_anchors: Vec<PathBuf>,
    /// PEM file(s) of intermediates (repeatable; replaces the file's list).
    #[arg(long, env = "KYSO_VERIFIER_INTERMEDIATES", value_delimiter = ',')]
    intermediates: Vec<PathBuf>,
    /// Revocation policy: require, soft-fail or off.
    #[arg(long, env = "KYSO_VERIFIER_REVOCATION_POLICY")]
    revocation_policy: Option<RevocationPolicy>,
}

fn main() -> ExitCode {
    let args: Args = kyso_server::bin::parse("KYSO_VERIFIER");
    kyso_server::bin::main(args.common, kyso_verifier::serve, |config: &mut Config| {
        if !args.trust_anchors.is_empty() {
            config.trust.trust_anchors = args.trust_anchors;
        }
        if !args.intermediates.is_empty() {
            config.trust.intermediates = args.intermediates;
        }
        if let Some(p) = args.revocation_policy {
            config.trust.revocation.policy = p;
        }
    })
}

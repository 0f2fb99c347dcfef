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
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "KYSO_VERIFIER_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, env = "KYSO_VERIFIER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Prometheus metrics listen address.
    #[arg(long, env = "KYSO_VERIFIER_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// PEM file(s) of trust anchors (repeatable; replaces the file's list).
    #[arg(long, env = "KYSO_VERIFIER_TRUST_ANCHORS", value_delimiter = ',')]
    trust_anchors: Vec<PathBuf>,
    /// PEM file(s) of intermediates (repeatable; replaces the file's list).
    #[arg(long, env = "KYSO_VERIFIER_INTERMEDIATES", value_delimiter = ',')]
    intermediates: Vec<PathBuf>,
    /// Revocation policy: require, soft-fail or off.
    #[arg(long, env = "KYSO_VERIFIER_REVOCATION_POLICY")]
    revocation_policy: Option<RevocationPolicy>,
    /// Log as JSON lines.
    #[arg(long, env = "KYSO_LOG_JSON")]
    log_json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    kyso_server::bin::init_logging(args.log_json);
    let mut config = match &args.config {
        Some(p) => match Config::from_file(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kyso-verifier: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(m) = args.metrics_listen {
        config.metrics_listen = Some(m);
    }
    if !args.trust_anchors.is_empty() {
        config.trust.trust_anchors = args.trust_anchors;
    }
    if !args.intermediates.is_empty() {
        config.trust.intermediates = args.intermediates;
    }
    if let Some(p) = args.revocation_policy {
        config.trust.revocation.policy = p;
    }
    // Exit before binding when the configuration is wrong, listing every problem.
    if let Err(e) = config.load() {
        eprintln!("kyso-verifier: {e}");
        return ExitCode::from(2);
    }
    let listen = config.listen;
    kyso_server::bin::run_service("kyso-verifier", listen, |listener| {
        kyso_verifier::run(config, listener, kyso_server::bin::shutdown_signal())
    })
}

//! The signer binary: configuration, logging, signals; the service lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kyso_signer::Config;

/// kyso signer: signs with HSM-held keys what the registry allows, and records it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "KYSO_SIGNER_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, env = "KYSO_SIGNER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Prometheus metrics listen address.
    #[arg(long, env = "KYSO_SIGNER_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Registry URL.
    #[arg(long, env = "KYSO_SIGNER_REGISTRY")]
    registry: Option<String>,
    /// Audit log file.
    #[arg(long, env = "KYSO_SIGNER_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
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
                eprintln!("kyso-signer: {e}");
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
    if let Some(r) = args.registry {
        config.registry.url = r;
    }
    if let Some(a) = args.audit_log {
        config.audit.path = a;
    }
    // Exit before binding when the configuration is wrong, listing every problem.
    if let Err(e) = config.load() {
        eprintln!("kyso-signer: {e}");
        return ExitCode::from(2);
    }
    let listen = config.listen;
    kyso_server::bin::run_service("kyso-signer", listen, |listener| {
        kyso_signer::run(config, listener, kyso_server::bin::shutdown_signal())
    })
}

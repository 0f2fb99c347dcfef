//! The registry binary: configuration, logging, signals; the service lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kyso_registry::Config;

/// kyso registry: subscribers, certificates, titles and the authority policy over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "KYSO_REGISTRY_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, env = "KYSO_REGISTRY_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Prometheus metrics listen address.
    #[arg(long, env = "KYSO_REGISTRY_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Database: `sqlite:PATH` (default `sqlite:kyso-registry.db`) or `postgres://...`.
    #[arg(long, env = "KYSO_REGISTRY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The deployment's government mail domain (I1), e.g. khanhhoa.gov.vn.
    #[arg(long, env = "KYSO_REGISTRY_MAIL_DOMAIN")]
    mail_domain: Option<String>,
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
                eprintln!("kyso-registry: {e}");
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
    if let Some(u) = args.database_url {
        config.database_url = u;
    }
    if let Some(d) = args.mail_domain {
        config.mail_domain = d;
    }
    // Exit before binding when the configuration is wrong, listing every problem.
    if let Err(e) = config.load() {
        eprintln!("kyso-registry: {e}");
        return ExitCode::from(2);
    }
    let listen = config.listen;
    kyso_server::bin::run_service("kyso-registry", listen, |listener| {
        kyso_registry::run(config, listener, kyso_server::bin::shutdown_signal())
    })
}

//! The registry binary: configuration, logging, signals; the service lives in the library.

use std::process::ExitCode;

use clap::Parser;
use kyso_registry::Config;

/// kyso registry: subscribers, certificates, titles and the authority policy over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: kyso_server::bin::Common,
    /// Database: `sqlite:PATH` (default `sqlite:kyso-registry.db`) or `postgres://...`.
    #[arg(long, env = "KYSO_REGISTRY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The deployment's government mail domain (I1), e.g. khanhhoa.gov.vn.
    #[arg(long, env = "KYSO_REGISTRY_MAIL_DOMAIN")]
    mail_domain: Option<String>,
    /// SHA-256 fingerprints of bootstrap administrators' client certificates
    /// (provincial-admin by configuration), comma-separated; added to access.bootstrap_admins.
    #[arg(long, env = "KYSO_REGISTRY_BOOTSTRAP_ADMINS", value_delimiter = ',')]
    bootstrap_admins: Vec<String>,
    /// Serve plaintext without client certificates, every caller a provincial administrator:
    /// development on a loopback address only (access.development_plaintext).
    #[arg(long, env = "KYSO_REGISTRY_DEVELOPMENT_PLAINTEXT")]
    development_plaintext: bool,
}

fn main() -> ExitCode {
    let args: Args = kyso_server::bin::parse("KYSO_REGISTRY");
    kyso_server::bin::main(args.common, kyso_registry::serve, |config: &mut Config| {
        if let Some(u) = args.database_url {
            config.database_url = u;
        }
        if let Some(d) = args.mail_domain {
            config.mail_domain = d;
        }
        config.access.bootstrap_admins.extend(args.bootstrap_admins);
        if args.development_plaintext {
            config.access.development_plaintext = true;
        }
    })
}

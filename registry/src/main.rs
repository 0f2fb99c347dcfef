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
    })
}

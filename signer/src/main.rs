//! The signer binary: configuration, logging, signals; the service lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kyso_signer::Config;

/// kyso signer: signs with HSM-held keys what the registry allows, and records it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: kyso_server::bin::Common,
    /// Registry URL.
    #[arg(long, env = "KYSO_SIGNER_REGISTRY")]
    registry: Option<String>,
    /// Audit log file.
    #[arg(long, env = "KYSO_SIGNER_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = kyso_server::bin::parse("KYSO_SIGNER");
    kyso_server::bin::main(args.common, kyso_signer::serve, |config: &mut Config| {
        if let Some(r) = args.registry {
            config.registry.url = r;
        }
        if let Some(a) = args.audit_log {
            config.audit.path = a;
        }
    })
}

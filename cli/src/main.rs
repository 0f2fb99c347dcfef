//! `kyso`: the command line of kyso.
//!
//! Exit codes: 0 when every signature is TOTAL_PASSED (or a command
//! succeeded), 1 when a verdict is not, 2 on a usage or input error.

mod audit_cmd;
mod bench;
mod bench_authorize;
mod bench_instructions;
mod client;
mod dev;
mod doc;
mod doc_exchange;
mod ltv;
mod registry;
mod sign;
mod signer_cmd;
mod trust;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kyso: sign and verify documents with Vietnam's government certificates.
#[derive(Debug, Parser)]
#[command(name = "kyso", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify CMS/CAdES signatures, in-process or through a verifier server.
    Verify(verify::VerifyArgs),
    /// Benchmarks that print JSON with the ratio to the physical limit.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The registry's management and lookup calls, JSON in and out.
    Registry(registry::RegistryArgs),
    /// Sign a document through the signer service (CAdES, A1-A7 checked by the registry).
    Sign(Box<sign::SignArgs>),
    /// HSM administration: generate keys inside a token, make CSRs, list keys.
    #[command(subcommand)]
    Signer(signer_cmd::SignerCommand),
    /// Check the signer's tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// The document flow: issue (W1), receive (W3), attachments (D5), originals (D7).
    #[command(subcommand)]
    Doc(doc::DocCommand),
    /// Archive care: validation data and fresh document time-stamps for signed PDFs.
    #[command(subcommand)]
    Ltv(ltv::LtvCommand),
    /// The local cluster on embedded defaults (SQLite, SoftHSM2 behind p11-kit, a dev PKI).
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KYSO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kyso: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(async move {
        match cli.command {
            Command::Verify(args) => verify::run(args).await,
            Command::Bench(b) => bench::run(b).await,
            Command::Registry(r) => registry::run(r).await,
            Command::Sign(a) => sign::run(*a).await,
            Command::Signer(c) => signer_cmd::run(c).await,
            Command::Audit(c) => audit_cmd::run(c).await,
            Command::Doc(c) => doc::run(c).await,
            Command::Ltv(c) => ltv::run(c).await,
            Command::Dev(c) => dev::run(c),
        }
    });
    match code {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kyso: {e}");
            ExitCode::from(2)
        }
    }
}

/// The CLI's errors: all are usage or input errors (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A flag's value is wrong.
    #[error("{0}")]
    Usage(String),
    /// The verifier configuration is unusable.
    #[error(transparent)]
    Verifier(#[from] kyso_verifier::Error),
    /// The PKI core refused the input.
    #[error(transparent)]
    Pki(#[from] kyso_pki::Error),
    /// The revocation fetcher could not be set up.
    #[error(transparent)]
    Revocation(#[from] kyso_revocation::Error),
    /// The server could not be reached.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server answered with an error.
    #[error("server: {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
}

pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::File {
        path: path.display().to_string(),
        source,
    })
}

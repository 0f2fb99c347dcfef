//! `kyso audit verify LOG`: checks the signer's hash-chained, sealed audit
//! log (see `kyso_signer::audit` for the format), streaming it line by line.
//!
//! Exit codes: 0 when the log is intact (warnings such as records after the
//! last seal aside), 1 when it is broken (the first broken line is named),
//! 2 on a usage or I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kyso_signer::audit::{SealKey, VerifyReport, verify_log};

use crate::{CliError, read_file};

/// `kyso audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit log: hash chain, sequence, seals; exit 1 when broken.
    Verify(AuditVerifyArgs),
}

/// `kyso audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The audit log file (JSON lines).
    log: PathBuf,
    /// The seal key's public key (PEM `PUBLIC KEY` or DER
    /// SubjectPublicKeyInfo); repeatable. Without a key or certificate the
    /// seal signatures are not checked (a warning).
    #[arg(long = "public-key", value_name = "PEM")]
    public_keys: Vec<PathBuf>,
    /// The seal key's certificate (PEM or DER); repeatable.
    #[arg(long = "certificate", value_name = "PEM")]
    certificates: Vec<PathBuf>,
    /// Print the report as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `kyso audit …`.
pub async fn run(command: AuditCommand) -> Result<ExitCode, CliError> {
    match command {
        AuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: AuditVerifyArgs) -> Result<ExitCode, CliError> {
    let mut keys = Vec::new();
    for p in &args.public_keys {
        let k = SealKey::from_public_key(&read_file(p)?)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?;
        keys.push(k);
    }
    for p in &args.certificates {
        let k = SealKey::from_certificate(&read_file(p)?)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?;
        keys.push(k);
    }
    let report = verify_log(&args.log, &keys).map_err(|source| CliError::File {
        path: args.log.display().to_string(),
        source,
    })?;
    if args.json {
        let mut v =
            serde_json::to_value(&report).map_err(|e| CliError::Usage(format!("report: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("log".into(), args.log.display().to_string().into());
            o.insert("intact".into(), report.intact().into());
        }
        println!("{v:#}");
    } else {
        print!("{}", summary(&args.log.display().to_string(), &report));
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(log: &str, r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let state = if r.intact() { "INTACT" } else { "BROKEN" };
    let _ = writeln!(s, "{log}: {state}");
    let _ = writeln!(
        s,
        "  records: {} ({} entries, {} seals, {} seal signatures verified){}",
        r.records,
        r.entries,
        r.seals,
        r.seals_verified,
        if r.intact() {
            ""
        } else {
            " before the problem"
        }
    );
    let _ = writeln!(s, "  head: seq {} hash {}", r.head_seq, r.head_hash);
    match r.last_seal_seq {
        Some(seq) => {
            let _ = writeln!(s, "  last seal: seq {seq}");
        }
        None => {
            let _ = writeln!(s, "  last seal: none");
        }
    }
    if let Some(p) = &r.problem {
        let seq = p.seq.map(|q| format!(" (seq {q})")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  first problem: line {}{seq}: {}: {}",
            p.line, p.kind, p.detail
        );
    }
    for w in &r.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}

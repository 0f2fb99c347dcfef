//! `kyso audit verify LOG`: checks the signer's hash-chained, sealed audit
//! log (see `kyso_signer::audit` for the format), streaming it line by line.
//!
//! With `--registry` and `--log-id` it also checks the log against its anchors in the
//! registry (the heads the signer recorded at every seal): every anchored sequence must be
//! in the file with the anchored hash, so a log cut back, deleted or replaced by an older
//! copy is reported (the first anchor it does not hold is named).
//!
//! Exit codes: 0 when the log is intact (warnings such as records after the
//! last seal aside), 1 when it is broken (the first broken line is named) or
//! behind an anchor, 2 on a usage or I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kyso_proto::registry::v1 as reg;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_signer::audit::{
    Anchor, AnchorMismatch, SealKey, VerifyReport, check_anchors, verify_log,
};

use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// Anchors read per `ListAuditAnchors` page.
const PAGE: u32 = 1000;

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
    /// The registry holding the log's anchors (http(s)://host:port); with `--log-id`.
    #[arg(long, value_name = "URL", requires = "log_id")]
    registry: Option<String>,
    /// The log's id in the registry (the signer's `audit.log_id`, by default its instance
    /// name).
    #[arg(long, value_name = "ID", requires = "registry")]
    log_id: Option<String>,
    /// CA bundle of the registry's server certificate (PEM).
    #[arg(long, value_name = "PEM")]
    registry_ca: Option<PathBuf>,
    /// Client certificate for the registry (signer or auditor role), PEM.
    #[arg(long, value_name = "PEM", requires = "registry_key")]
    registry_cert: Option<PathBuf>,
    /// Client key for the registry, PEM.
    #[arg(long, value_name = "PEM", requires = "registry_cert")]
    registry_key: Option<PathBuf>,
}

/// What the anchors said.
#[derive(Debug, serde::Serialize)]
struct AnchorReport {
    log_id: String,
    anchors: usize,
    latest_sequence: Option<u64>,
    mismatch: Option<AnchorMismatch>,
}

/// Runs `kyso audit …`.
pub async fn run(command: AuditCommand) -> Result<ExitCode, CliError> {
    match command {
        AuditCommand::Verify(args) => {
            let anchors = match (&args.registry, &args.log_id) {
                (Some(url), Some(id)) => Some(anchor_report(&args, url, id).await?),
                _ => None,
            };
            verify(args, anchors)
        }
    }
}

/// Every anchor of the log, from the registry, checked against the file.
async fn anchor_report(
    args: &AuditVerifyArgs,
    url: &str,
    log_id: &str,
) -> Result<AnchorReport, CliError> {
    let server = ServerArgs {
        server: Some(url.to_owned()),
        tls_ca: args.registry_ca.clone(),
        tls_cert: args.registry_cert.clone(),
        tls_key: args.registry_key.clone(),
    };
    let mut client = RegistryClient::new(server.connect(url).await?);
    let mut anchors = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .list_audit_anchors(reg::ListAuditAnchorsRequest {
                log_id: log_id.to_owned(),
                after_sequence: after,
                limit: PAGE,
            })
            .await?
            .into_inner()
            .anchors;
        let Some(last) = page.last() else { break };
        if last.sequence <= after {
            return Err(CliError::Usage(
                "the registry answered anchors out of order".into(),
            ));
        }
        after = last.sequence;
        let full = page.len() == PAGE as usize;
        anchors.extend(page.into_iter().map(|a| Anchor {
            sequence: a.sequence,
            head_hash: a.head_hash,
        }));
        if !full {
            break;
        }
    }
    let mismatch = check_anchors(&args.log, &anchors).map_err(|source| CliError::File {
        path: args.log.display().to_string(),
        source,
    })?;
    Ok(AnchorReport {
        log_id: log_id.to_owned(),
        anchors: anchors.len(),
        latest_sequence: anchors.last().map(|a| a.sequence),
        mismatch,
    })
}

fn verify(args: AuditVerifyArgs, anchors: Option<AnchorReport>) -> Result<ExitCode, CliError> {
    // A deleted log is the anchors' finding, not a usage error.
    if let Some(a) = anchors.as_ref().filter(|a| a.mismatch.is_some())
        && !args.log.exists()
    {
        if args.json {
            let v = serde_json::json!({
                "log": args.log.display().to_string(),
                "intact": false,
                "anchors": a,
            });
            println!("{v:#}");
        } else {
            print!("{}", anchor_summary(&args.log.display().to_string(), a));
        }
        return Ok(ExitCode::from(1));
    }
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
    let intact = report.intact() && anchors.as_ref().is_none_or(|a| a.mismatch.is_none());
    if args.json {
        let mut v =
            serde_json::to_value(&report).map_err(|e| CliError::Usage(format!("report: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("log".into(), args.log.display().to_string().into());
            o.insert("intact".into(), intact.into());
            if let Some(a) = &anchors {
                o.insert(
                    "anchors".into(),
                    serde_json::to_value(a).map_err(|e| CliError::Usage(format!("report: {e}")))?,
                );
            }
        }
        println!("{v:#}");
    } else {
        print!(
            "{}",
            summary(&args.log.display().to_string(), &report, intact)
        );
        if let Some(a) = &anchors {
            print!("{}", anchor_summary("", a));
        }
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn anchor_summary(log: &str, a: &AnchorReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if !log.is_empty() {
        let _ = writeln!(s, "{log}: BROKEN");
    }
    let _ = writeln!(
        s,
        "  anchors: {} in the registry for log {:?}{}",
        a.anchors,
        a.log_id,
        a.latest_sequence
            .map(|q| format!(", the latest at seq {q}"))
            .unwrap_or_default()
    );
    match &a.mismatch {
        None => {
            let _ = writeln!(s, "  anchors: every anchored head is in the file");
        }
        Some(m) => {
            let _ = writeln!(
                s,
                "  first anchor not held: seq {} hash {}: {}: {}",
                m.anchor.sequence, m.anchor.head_hash, m.kind, m.detail
            );
        }
    }
    s
}

fn summary(log: &str, r: &VerifyReport, intact: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let state = if intact { "INTACT" } else { "BROKEN" };
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

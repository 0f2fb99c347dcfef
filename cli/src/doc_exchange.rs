//! `kyso doc receive-envelope`, `status`, `take-back`: the exchange axis (N6, W4) from the
//! command line. The status messages the service signs are written as files for the
//! exchange to carry (`NN-<counterparty>.xml`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as rpb;
use serde_json::{Value, json};

use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// The receiving organisation's seal and custodian (A5), as the status messages need them.
#[derive(Debug, Args)]
pub struct Seal {
    /// The organisation (registry id).
    #[arg(long)]
    pub organisation: String,
    /// The organisation's key: it seals the status messages (and the received stamp).
    #[arg(long)]
    pub seal_key: String,
    /// Its custodian (registry id).
    #[arg(long)]
    pub custodian: String,
    /// Makes the request safe to retry (see `kyso doc issue`).
    #[arg(long, default_value = "")]
    pub idempotency_key: String,
}

/// `kyso doc receive-envelope`.
#[derive(Debug, Args)]
pub struct ReceiveEnvelopeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The edXML envelope as the exchange delivered it.
    pub input: PathBuf,
    /// Where the stamped document and the status messages for the sender go.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// The receiving organisation, the document type the clerk files it under (A3), the
    /// seal for the stamp and the status messages.
    #[command(flatten)]
    pub org: crate::doc::OrgSeal,
}

/// `kyso doc status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The status message as received.
    pub input: PathBuf,
    /// Where the answer to a take-back request (15 or 16) goes.
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub seal: Seal,
}

/// `kyso doc take-back`.
#[derive(Debug, Args)]
pub struct TakeBackArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// SHA-256 of the issued original (outgoing register), hex.
    pub sha256: String,
    /// Why (the 13 carries it).
    #[arg(long)]
    pub reason: String,
    /// Where the take-back requests go, one per recipient.
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub seal: Seal,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::File {
        path: path.display().to_string(),
        source,
    })
}

fn out_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes each status message as `NN-<counterparty>.xml` under `dir`; their JSON.
fn statuses(dir: &Path, list: &[dpb::SignedStatus]) -> Result<Vec<Value>, CliError> {
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let path = dir.join(format!("{}-{}.xml", s.code, s.counterparty_code));
        write(&path, &s.xml)?;
        out.push(json!({"code": s.code, "to": s.counterparty_code,
                        "out": path.display().to_string(), "sha256": s.sha256}));
    }
    Ok(out)
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn authority(outcome: i32) -> &'static str {
    match rpb::AuthorityOutcome::try_from(outcome) {
        Ok(rpb::AuthorityOutcome::Allowed) => "allowed",
        Ok(rpb::AuthorityOutcome::Outside) => "outside: not checked",
        Ok(rpb::AuthorityOutcome::Refused) => "refused",
        _ => "unspecified",
    }
}

pub async fn receive_envelope(a: ReceiveEnvelopeArgs) -> Result<ExitCode, CliError> {
    let req = dpb::ReceiveEnvelopeRequest {
        envelope: read_file(&a.input)?,
        organisation_id: a.org.organisation,
        seal_key: a.org.seal_key,
        custodian_person_id: a.org.custodian,
        document_type: a.org.document_type,
        received_at: None,
        idempotency_key: a.org.idempotency_key,
    };
    let mut c = super::doc::client(&a.server).await?;
    let r = match c.receive_envelope(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Ok(crate::registry::report_status(&s)),
    };
    out_dir(&a.out_dir)?;
    let mut out = String::new();
    if r.accepted {
        let path = a.out_dir.join(format!("{}.pdf", r.sha256));
        write(&path, &r.pdf)?;
        out = path.display().to_string();
    }
    print(&json!({
        "accepted": r.accepted,
        "out": out,
        "from": r.sender_code,
        "from_name": r.sender_name,
        "number_and_symbol": r.number_and_symbol,
        "incoming_number": r.incoming_number,
        "register_year": r.register_year,
        "statuses": statuses(&a.out_dir, &r.statuses)?,
        "problems": r.problems.iter().map(|p| json!({
            "field": p.field_name, "rule": p.rule, "message": p.message})).collect::<Vec<_>>(),
        "signatures": r.signatures.iter().map(|s| json!({
            "field": s.field_name,
            "authority": authority(s.outcome),
            "rule": s.rule,
            "message": s.message,
            "subject": s.subject,
        })).collect::<Vec<_>>(),
        "reference_time": r.reference_time.map(|t| t.seconds),
    }));
    // A refusal is a verdict (02 went back), not an error: exit 1 like a failed verification.
    Ok(if r.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn status(a: StatusArgs) -> Result<ExitCode, CliError> {
    let req = dpb::ReceiveStatusRequest {
        status: read_file(&a.input)?,
        organisation_id: a.seal.organisation,
        seal_key: a.seal.seal_key,
        custodian_person_id: a.seal.custodian,
        received_at: None,
        idempotency_key: a.seal.idempotency_key,
    };
    let mut c = super::doc::client(&a.server).await?;
    let r = match c.receive_status(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Ok(crate::registry::report_status(&s)),
    };
    out_dir(&a.out_dir)?;
    let answer = match &r.answer {
        Some(s) => statuses(&a.out_dir, std::slice::from_ref(s))?,
        None => Vec::new(),
    };
    print(&json!({
        "code": r.code,
        "from": r.from_code,
        "register_entry_id": r.register_entry_id,
        "answer": answer,
    }));
    Ok(ExitCode::SUCCESS)
}

pub async fn take_back(a: TakeBackArgs) -> Result<ExitCode, CliError> {
    let req = dpb::TakeBackRequest {
        organisation_id: a.seal.organisation,
        sha256: a.sha256,
        reason: a.reason,
        seal_key: a.seal.seal_key,
        custodian_person_id: a.seal.custodian,
        idempotency_key: a.seal.idempotency_key,
    };
    let mut c = super::doc::client(&a.server).await?;
    let r = match c.take_back(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Ok(crate::registry::report_status(&s)),
    };
    out_dir(&a.out_dir)?;
    print(&json!({
        "register_entry_id": r.register_entry_id,
        "statuses": statuses(&a.out_dir, &r.statuses)?,
    }));
    Ok(ExitCode::SUCCESS)
}

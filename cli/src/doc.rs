//! `kyso doc`: the document flow of the signer's `Documents` service — issue an outgoing
//! document (W1), send it as a sealed edXML envelope (N6), receive an incoming one (W3), sign
//! attachments (D5), fetch an original (D7). Each prints a JSON summary on stdout; signed files are written where `--out`
//! says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::registry::v1 as rpb;
use kyso_proto::signer::v1 as pb;
use serde_json::{Value, json};

use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// The document flow.
#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// W1: the competent person's approval, then the seal, then the outgoing register.
    Issue(Box<IssueArgs>),
    /// W1 -> send (N6): an issued document in an edXML envelope sealed by the organisation.
    Send(SendArgs),
    /// W3: verify every signature and signer; accepted: incoming number and received stamp.
    Receive(ReceiveArgs),
    /// D5: sign each separate attachment as an appendix of the main document.
    Attach(AttachArgs),
    /// D7: a stored original by its SHA-256.
    Get(GetArgs),
    /// N6, W3: an edXML envelope from the exchange: verified, registered and stamped, or
    /// refused; the signed status messages for the sender (01, then 03 or 02) written out.
    ReceiveEnvelope(crate::doc_exchange::ReceiveEnvelopeArgs),
    /// N6, W4: a signed status message from the other side, entered in the document's
    /// history; a take-back request (13) is answered (15 or 16), written out.
    Status(crate::doc_exchange::StatusArgs),
    /// W4: ask every recipient of a sent document to take it back (13, written out).
    TakeBack(crate::doc_exchange::TakeBackArgs),
}

/// `kyso doc issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The PDF to issue (numbered and dated, W1).
    pub input: PathBuf,
    /// Where to write the signed original.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub org: OrgSeal,
    /// Number and symbol, e.g. "123/QĐ-UBND".
    #[arg(long)]
    pub number: String,
    /// Issue date YYYY-MM-DD (W2: the seal is dated this day).
    #[arg(long)]
    pub issue_date: String,
    /// The competent person's key; absent: the PDF already carries the approval.
    #[arg(long)]
    pub approval_key: Option<String>,
    /// The competent person (registry id).
    #[arg(long)]
    pub approver: Option<String>,
    /// The competent person's current one-time code (A1: a personal key signs only with
    /// the holder's consent): the SHA-256 of the PDF as sent is authorised with it first.
    #[arg(long)]
    pub approval_otp: Option<String>,
    /// An empty signature field of the template to sign into (P1).
    #[arg(long)]
    pub approval_field: Option<String>,
    /// A text marker in the page to centre the approval on (P1).
    #[arg(long)]
    pub approval_marker: Option<String>,
    /// Where the approval goes: PAGE,X0,Y0,X1,Y1 in points (P1: between the title line and
    /// the name).
    #[arg(long)]
    pub approval_rect: Option<String>,
    /// PNG of the handwritten signature (P1).
    #[arg(long)]
    pub approval_image: Option<PathBuf>,
    /// PNG of the seal (P2).
    #[arg(long)]
    pub seal_image: Option<PathBuf>,
    /// Recipients, for the register.
    #[arg(long, default_value = "")]
    pub recipients: String,
}

/// `kyso doc send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// SHA-256 of the issued original (as `kyso doc issue` printed it), in the organisation's
    /// outgoing register (W1).
    pub sha256: String,
    /// Where to write the sealed envelope.
    #[arg(long)]
    pub out: PathBuf,
    /// The sending organisation (registry id).
    #[arg(long)]
    pub organisation: String,
    /// The organisation's key.
    #[arg(long)]
    pub seal_key: String,
    /// Its custodian (registry id).
    #[arg(long)]
    pub custodian: String,
    /// A recipient's organisation code (Decision 20/2020, e.g. 000.00.00.G22); repeat for
    /// each recipient.
    #[arg(long = "to", required = true)]
    pub recipients: Vec<String>,
    /// The envelope's Subject (trích yếu).
    #[arg(long)]
    pub subject: String,
    /// Where the document was issued (PromulgationInfo/Place).
    #[arg(long, default_value = "")]
    pub place: String,
    /// Makes the request safe to retry: the same key returns the first envelope.
    #[arg(long, default_value = "")]
    pub idempotency_key: String,
}

/// `kyso doc receive`.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The PDF as received.
    pub input: PathBuf,
    /// Where to write the stamped document (accepted only).
    #[arg(long)]
    pub out: PathBuf,
    /// The receiving organisation; the document type is the one the sender declares (the
    /// signers' authority is checked for it).
    #[command(flatten)]
    pub org: OrgSeal,
    /// The sender, for the register and the refusal.
    #[arg(long, default_value = "")]
    pub sender: String,
    /// The sender's organisation code (Decision 20/2020, e.g. 000.00.00.G22), shown with
    /// signers from outside the registry; a code the registry manages makes an unknown
    /// signer certificate a refusal (A4).
    #[arg(long, default_value = "")]
    pub sender_code: String,
}

/// `kyso doc attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The attachments (PDF); each is written to `--out-dir` under its own name.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub org: OrgSeal,
    /// The main document's number and symbol (P4).
    #[arg(long)]
    pub number: String,
}

/// The organisation, the document type, and the organisation key with its custodian (A5).
#[derive(Debug, Args)]
pub struct OrgSeal {
    /// The organisation (registry id).
    #[arg(long)]
    pub organisation: String,
    /// Document type code.
    #[arg(long)]
    pub document_type: String,
    /// The organisation's key.
    #[arg(long)]
    pub seal_key: String,
    /// Its custodian (registry id).
    #[arg(long)]
    pub custodian: String,
    /// Makes the request safe to retry: running the same command again with the same key
    /// returns the first result instead of signing, numbering or storing a second time.
    #[arg(long, default_value = "")]
    pub idempotency_key: String,
}

/// `kyso doc get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// SHA-256 of the original, hex.
    pub sha256: String,
    #[arg(long)]
    pub out: PathBuf,
    /// N3: also write the verification evidence kept when the document was received, each
    /// report as kept (`<sha256>.evidence.pb`, a `kyso.documents.v1.VerificationEvidence`:
    /// its SHA-256 is the audit record's digest) into this directory; a summary is printed.
    #[arg(long)]
    pub evidence_dir: Option<PathBuf>,
}

/// `PAGE,X0,Y0,X1,Y1`.
fn parse_rect(s: &str) -> Result<pb::PdfRect, CliError> {
    let bad = || CliError::Usage(format!("--approval-rect {s:?}: want PAGE,X0,Y0,X1,Y1"));
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [page, x0, y0, x1, y1] = parts.as_slice() else {
        return Err(bad());
    };
    let n = |v: &str| v.parse::<f64>().map_err(|_| bad());
    Ok(pb::PdfRect {
        page: page.parse().map_err(|_| bad())?,
        x0: n(x0)?,
        y0: n(y0)?,
        x1: n(x1)?,
        y1: n(y1)?,
    })
}

/// N3: each kept report written as kept, and what a reader needs to find it in the audit log.
fn write_evidence(dir: &Path, kept: &[dpb::KeptEvidence]) -> Result<Vec<Value>, CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        path: dir.display().to_string(),
        source,
    })?;
    kept.iter()
        .map(|k| {
            let file = dir.join(format!("{}.evidence.pb", k.sha256));
            write(&file, &k.evidence)?;
            let report =
                <dpb::VerificationEvidence as prost::Message>::decode(k.evidence.as_slice())
                    .map_err(|e| CliError::Usage(format!("evidence {}: {e}", k.sha256)))?;
            Ok(json!({
                "sha256": k.sha256,
                "file": file.display().to_string(),
                "audit_sequence": k.audit.as_ref().map(|a| a.sequence),
                "audit_record_hash": k.audit.as_ref().map(|a| a.record_hash.clone()),
                "accepted": report.accepted,
                "report": match report.report {
                    Some(dpb::verification_evidence::Report::Pdf(_)) => "pdf",
                    Some(dpb::verification_evidence::Report::Edxml(_)) => "edxml",
                    None => "none",
                },
                "received_sha256": report.received_sha256,
                "reference_time": report.reference_time.map(|t| t.seconds),
                "verified_at": report.verified_at.map(|t| t.seconds),
                "caller": report.caller,
                "problems": report.problems.iter().map(|p| json!({
                    "field": p.field_name, "rule": p.rule, "message": p.message
                })).collect::<Vec<_>>(),
            }))
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::File {
        path: path.display().to_string(),
        source,
    })
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) async fn client(
    server: &ServerArgs,
) -> Result<DocumentsClient<tonic::transport::Channel>, CliError> {
    let url = server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server is required".into()))?;
    Ok(DocumentsClient::new(server.connect(&url).await?)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

fn document_info(document_type: &str, number: &str, issue_date: &str) -> pb::DocumentInfo {
    pb::DocumentInfo {
        document_type: document_type.to_owned(),
        number_and_symbol: number.to_owned(),
        issue_date: issue_date.to_owned(),
        classification: pb::Classification::None as i32,
    }
}

/// Runs one `kyso doc` command.
pub async fn run(cmd: DocCommand) -> Result<ExitCode, CliError> {
    match cmd {
        DocCommand::Issue(a) => issue(*a).await,
        DocCommand::Send(a) => send(a).await,
        DocCommand::Receive(a) => receive(a).await,
        DocCommand::Attach(a) => attach(a).await,
        DocCommand::ReceiveEnvelope(a) => crate::doc_exchange::receive_envelope(a).await,
        DocCommand::Status(a) => crate::doc_exchange::status(a).await,
        DocCommand::TakeBack(a) => crate::doc_exchange::take_back(a).await,
        DocCommand::Get(a) => {
            let mut c = client(&a.server).await?;
            let r = c
                .get_document(dpb::GetDocumentRequest { sha256: a.sha256 })
                .await;
            match r {
                Ok(r) => {
                    let r = r.into_inner();
                    write(&a.out, &r.pdf)?;
                    if let Some(dir) = &a.evidence_dir {
                        print(&json!({ "evidence": write_evidence(dir, &r.evidence)? }));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(s) => Ok(crate::registry::report_status(&s)),
            }
        }
    }
}

async fn issue(a: IssueArgs) -> Result<ExitCode, CliError> {
    let pdf = read_file(&a.input)?;
    let rect = a.approval_rect.as_deref().map(parse_rect).transpose()?;
    let placement = match (&a.approval_field, &a.approval_marker) {
        _ if rect.is_some() => Some(pb::PdfPlacement {
            r#where: rect.map(pb::pdf_placement::Where::Rect),
        }),
        (Some(f), _) => Some(pb::PdfPlacement {
            r#where: Some(pb::pdf_placement::Where::Field(f.clone())),
        }),
        (None, Some(m)) => Some(pb::PdfPlacement {
            r#where: Some(pb::pdf_placement::Where::Marker(pb::PdfMarker {
                text: m.clone(),
                page: 0,
            })),
        }),
        (None, None) => None,
    };
    let image = |p: &Option<PathBuf>| p.as_deref().map(read_file).transpose();
    let approval_activation_token = match (&a.approval_otp, &a.approval_key) {
        (Some(otp), Some(key)) => {
            let url = a
                .server
                .server
                .clone()
                .ok_or_else(|| CliError::Usage("--server is required".into()))?;
            let mut signer = kyso_proto::signer::v1::signer_client::SignerClient::new(
                a.server.connect(&url).await?,
            );
            crate::sign::authorize(&mut signer, key, Some(otp), "sha256", &pdf).await?
        }
        (Some(_), None) => {
            return Err(CliError::Usage(
                "--approval-otp goes with --approval-key".into(),
            ));
        }
        _ => String::new(),
    };
    let req = dpb::IssueOutgoingRequest {
        pdf,
        document: Some(document_info(
            &a.org.document_type,
            &a.number,
            &a.issue_date,
        )),
        organisation_id: a.org.organisation,
        approval_key: a.approval_key.unwrap_or_default(),
        approver_person_id: a.approver.unwrap_or_default(),
        approval_mode: pb::SigningMode::Own as i32,
        approval_placement: placement,
        approval_image: image(&a.approval_image)?.unwrap_or_default(),
        seal_key: a.org.seal_key,
        custodian_person_id: a.org.custodian,
        seal_image: image(&a.seal_image)?.unwrap_or_default(),
        recipients: a.recipients,
        sent_at: None,
        idempotency_key: a.org.idempotency_key,
        approval_activation_token,
    };
    let mut c = client(&a.server).await?;
    match c.issue_outgoing(req).await {
        Ok(r) => {
            let r = r.into_inner();
            write(&a.out, &r.pdf)?;
            print(&json!({
                "out": a.out.display().to_string(),
                "sha256": r.sha256,
                "register_number": r.register_number,
                "register_year": r.register_year,
                "signatures": r.audit.len(),
            }));
            Ok(ExitCode::SUCCESS)
        }
        Err(s) => Ok(crate::registry::report_status(&s)),
    }
}

async fn receive(a: ReceiveArgs) -> Result<ExitCode, CliError> {
    let req = dpb::ReceiveIncomingRequest {
        pdf: read_file(&a.input)?,
        organisation_id: a.org.organisation,
        seal_key: a.org.seal_key,
        custodian_person_id: a.org.custodian,
        sender: a.sender,
        document_type: a.org.document_type,
        received_at: None,
        idempotency_key: a.org.idempotency_key,
        sender_code: a.sender_code,
    };
    let mut c = client(&a.server).await?;
    match c.receive_incoming(req).await {
        Ok(r) => {
            let r = r.into_inner();
            let problems: Vec<Value> = r
                .problems
                .iter()
                .map(|p| json!({"field": p.field_name, "rule": p.rule, "message": p.message}))
                .collect();
            if r.accepted {
                write(&a.out, &r.pdf)?;
            }
            print(&json!({
                "accepted": r.accepted,
                "out": if r.accepted { a.out.display().to_string() } else { String::new() },
                "sha256": r.sha256,
                "received_sha256": r.received_sha256,
                "incoming_number": r.incoming_number,
                "register_year": r.register_year,
                "problems": problems,
                "signatures": r.signatures.iter().map(|s| json!({
                    "field": s.field_name,
                    "authority": match rpb::AuthorityOutcome::try_from(s.outcome) {
                        Ok(rpb::AuthorityOutcome::Allowed) => "allowed",
                        Ok(rpb::AuthorityOutcome::Outside) => "outside: not checked",
                        Ok(rpb::AuthorityOutcome::Refused) => "refused",
                        _ => "unspecified",
                    },
                    "rule": s.rule,
                    "message": s.message,
                    "subject": s.subject,
                    "sender_code": s.sender_code,
                })).collect::<Vec<_>>(),
                "reference_time": r.reference_time.map(|t| t.seconds),
                "evidence": r.evidence.as_ref().map(|e| json!({
                    "sha256": e.sha256,
                    "audit_sequence": e.audit.as_ref().map(|a| a.sequence),
                })),
            }));
            // A refusal is a verdict, not an error: exit 1 like a failed verification.
            Ok(if r.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(s) => Ok(crate::registry::report_status(&s)),
    }
}

async fn send(a: SendArgs) -> Result<ExitCode, CliError> {
    let req = dpb::SendOutgoingRequest {
        organisation_id: a.organisation,
        sha256: a.sha256,
        recipients: a.recipients,
        seal_key: a.seal_key,
        custodian_person_id: a.custodian,
        subject: a.subject,
        sent_at: None,
        idempotency_key: a.idempotency_key,
        place: a.place,
    };
    let mut c = client(&a.server).await?;
    match c.send_outgoing(req).await {
        Ok(r) => {
            let r = r.into_inner();
            write(&a.out, &r.envelope)?;
            print(&json!({
                "out": a.out.display().to_string(),
                "envelope_sha256": r.envelope_sha256,
                "register_entry_id": r.register_entry_id,
                "register_number": r.register_number,
                "register_year": r.register_year,
                "audit_sequence": r.audit.map(|x| x.sequence),
            }));
            Ok(ExitCode::SUCCESS)
        }
        Err(s) => Ok(crate::registry::report_status(&s)),
    }
}

async fn attach(a: AttachArgs) -> Result<ExitCode, CliError> {
    let mut attachments = Vec::new();
    for p in &a.inputs {
        attachments.push(dpb::Attachment {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pdf: read_file(p)?,
        });
    }
    let req = dpb::SignAttachmentsRequest {
        attachments,
        document: Some(document_info(&a.org.document_type, &a.number, "")),
        organisation_id: a.org.organisation,
        seal_key: a.org.seal_key,
        custodian_person_id: a.org.custodian,
        idempotency_key: a.org.idempotency_key,
    };
    let mut c = client(&a.server).await?;
    match c.sign_attachments(req).await {
        Ok(r) => {
            std::fs::create_dir_all(&a.out_dir).map_err(|source| CliError::File {
                path: a.out_dir.display().to_string(),
                source,
            })?;
            let mut out = Vec::new();
            for s in r.into_inner().attachments {
                let name = Path::new(&s.name)
                    .file_name()
                    .map(|n| n.to_owned())
                    .unwrap_or_else(|| format!("{}.pdf", s.sha256).into());
                let path = a.out_dir.join(name);
                write(&path, &s.pdf)?;
                out.push(json!({"out": path.display().to_string(), "sha256": s.sha256}));
            }
            print(&json!({ "attachments": out }));
            Ok(ExitCode::SUCCESS)
        }
        Err(s) => Ok(crate::registry::report_status(&s)),
    }
}

//! `kyso verify`: one report per signature, in-process or through a server.
//!
//! A file starting with `%PDF-` is verified as a PDF (every signature, the
//! revision it covers and what changed after it, V5); a DER/BER SEQUENCE or a PEM
//! armour as a CMS; an XML document whose root is `edXML` as an edXML envelope or status
//! message (its XML signature, then each attached PDF or CMS, N6); anything else is refused
//! naming the file ([`sniff`]).
//!
//! Trust: the given anchors, or by default the government roots pinned by fingerprint
//! (`kyso_validation::pinned`). Certificates the caller supplies (`--certificates`)
//! may be the signer's when the signature does not carry it (issue 15 items 8, 9).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use kyso_pki::cert::Cert;
use kyso_pki::cms::Detached;
use kyso_pki::time::{OffsetDateTime, parse_rfc3339};
use kyso_proto::verifier::v1 as pb;
use kyso_validation::certsource::{MAX_SUPPLIED_CERTIFICATES, SuppliedCertificates};
use kyso_validation::convert;
use kyso_validation::edxml::{EdxmlReport, EdxmlVerifyOptions};
use kyso_validation::pdf::{PdfReport, PdfVerifyOptions};
use kyso_validation::report::{DocumentReport, Indication, RevocationPolicy};
use kyso_validation::verify::Verifier;
use serde_json::json;

use crate::client::ServerArgs;
use crate::trust::TrustArgs;
use crate::{CliError, read_file};

/// Documents verified at once.
const PARALLELISM: usize = 8;

/// `kyso verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The signed content, for detached signatures.
    #[arg(long)]
    content: Option<PathBuf>,
    /// Certificates (PEM bundle or DER; repeatable) among which the signer's certificate
    /// is looked up (issuer and serial, or subject key identifier) when the signature
    /// does not carry it; also intermediates for its path. Only candidates: the signature
    /// value decides, and trust still comes from the anchors. In-process and with
    /// `--server` (sent with the request).
    #[arg(long)]
    certificates: Vec<PathBuf>,
    /// Trust for in-process verification.
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// A trusted reference time (RFC 3339), instead of the proof of existence a timestamp gives.
    #[arg(long)]
    at: Option<String>,
    /// Revocation policy.
    #[arg(long)]
    revocation: Option<RevocationPolicy>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The signature files (CMS, DER/BER/PEM) or signed PDFs.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

/// The report of one file.
enum FileReport {
    Cms(DocumentReport),
    Pdf(PdfReport),
    Edxml(Box<EdxmlReport>),
}

impl FileReport {
    fn indication(&self) -> Indication {
        match self {
            Self::Cms(r) => r.indication,
            Self::Pdf(r) => r.indication,
            Self::Edxml(r) => r.indication,
        }
    }
}

enum Backend {
    Local(Verifier),
    Remote(pb::verifier_client::VerifierClient<tonic::transport::Channel>),
}

/// Runs `kyso verify`.
pub async fn run(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let (at, content) = time_and_content(&args)?;
    let backend = match &args.server.server {
        Some(url) => {
            if args.trust.any_given() {
                return Err(CliError::Usage(
                    "--trust-anchors, --anchors-dir, --intermediates, --config, --url-rewrite and --allow-host apply to in-process verification; the server has its own".into(),
                ));
            }
            let channel = args.server.connect(url).await?;
            Backend::Remote(
                pb::verifier_client::VerifierClient::new(channel)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            )
        }
        None => Backend::Local(local_verifier(&args)?),
    };

    let progress =
        (!args.json && std::io::stderr().is_terminal() && args.files.len() > 1).then(|| {
            let pb = indicatif::ProgressBar::new(args.files.len() as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        });
    let supplied = supplied_certificates(&args, matches!(backend, Backend::Local(_)))?;
    let supplied = &supplied;
    let backend = &backend;
    let content = content.as_deref();
    let policy = args.revocation;
    let results: Vec<(PathBuf, Result<FileReport, CliError>)> =
        futures::stream::iter(args.files.iter().cloned())
            .map(|path| {
                let progress = progress.clone();
                async move {
                    let r = verify_file(backend, &path, content, supplied, at, policy).await;
                    if let Some(p) = &progress {
                        p.inc(1);
                    }
                    (path, r)
                }
            })
            .buffered(PARALLELISM)
            .collect()
            .await;
    if let Some(p) = progress {
        p.finish_and_clear();
    }

    let mut all_passed = true;
    let mut input_error = false;
    let mut documents = Vec::new();
    let mut signatures = Vec::new();
    for (path, r) in &results {
        let file = path.display().to_string();
        match r {
            Ok(FileReport::Pdf(report)) => {
                all_passed &= report.indication == Indication::TotalPassed;
                for s in &report.signatures {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("file".into(), json!(file));
                    }
                    signatures.push(v);
                }
                documents.push(json!({
                    "file": file,
                    "format": "pdf",
                    "indication": report.indication,
                    "revisions": report.revisions,
                    "signatures": report.signatures,
                }));
                if !args.json {
                    print_pdf(&file, report);
                }
            }
            Ok(FileReport::Cms(report)) => {
                all_passed &= report.indication == Indication::TotalPassed;
                for s in &report.signatures {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("file".into(), json!(file));
                    }
                    signatures.push(v);
                }
                documents.push(json!({
                    "file": file,
                    "format": "cms",
                    "indication": report.indication,
                    "signatures": report.signatures,
                }));
                if !args.json {
                    print_text(&file, report);
                }
            }
            Ok(FileReport::Edxml(report)) => {
                all_passed &= report.indication == Indication::TotalPassed;
                signatures.extend(edxml_signatures(&file, report));
                let mut doc = serde_json::to_value(report).unwrap_or_default();
                if let Some(o) = doc.as_object_mut() {
                    o.insert("file".into(), json!(file));
                    o.insert("format".into(), json!("edxml"));
                }
                documents.push(doc);
                if !args.json {
                    print_edxml(&file, report);
                }
            }
            Err(e) => {
                input_error = true;
                all_passed = false;
                documents.push(json!({ "file": file, "error": e.to_string() }));
                if !args.json {
                    println!("{file}: ERROR {e}");
                }
            }
        }
    }
    if args.json {
        let overall = if all_passed {
            "TOTAL_PASSED"
        } else if input_error {
            "ERROR"
        } else {
            worst(&results)
        };
        let out = json!({
            "indication": overall,
            "signatures": signatures,
            "documents": documents,
        });
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_default()
        );
    }
    Ok(if input_error {
        ExitCode::from(2)
    } else if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--at` and `--content`, read.
fn time_and_content(
    args: &VerifyArgs,
) -> Result<(Option<OffsetDateTime>, Option<Vec<u8>>), CliError> {
    let at = match &args.at {
        Some(s) => Some(parse_rfc3339(s).map_err(|e| CliError::Usage(format!("--at {s:?}: {e}")))?),
        None => None,
    };
    let content = match &args.content {
        Some(p) => Some(read_file(p)?),
        None => None,
    };
    Ok((at, content))
}

/// In-process only, for `kyso bench instructions`: verifies every file once to warm the
/// caches, then `count` more times in turn; the worst indication of the last round.
pub(crate) async fn repeat_local(
    args: &VerifyArgs,
    count: usize,
) -> Result<&'static str, CliError> {
    if args.server.server.is_some() {
        return Err(CliError::Usage(
            "kyso bench instructions verifies in-process: no --server".into(),
        ));
    }
    let (at, content) = time_and_content(args)?;
    let backend = Backend::Local(local_verifier(args)?);
    let supplied = supplied_certificates(args, true)?;
    let mut last = Vec::new();
    for _ in 0..=count {
        last.clear();
        for path in &args.files {
            let r = verify_file(
                &backend,
                path,
                content.as_deref(),
                &supplied,
                at,
                args.revocation,
            )
            .await;
            last.push((path.clone(), r));
        }
    }
    if let Some((path, Err(e))) = last.iter().find(|(_, r)| r.is_err()) {
        return Err(CliError::Usage(format!("{}: {e}", path.display())));
    }
    Ok(worst(&last))
}

fn worst(results: &[(PathBuf, Result<FileReport, CliError>)]) -> &'static str {
    let w = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(FileReport::indication)
        .max_by_key(|i| i.severity());
    match w {
        Some(Indication::TotalFailed) | None => "TOTAL_FAILED",
        Some(Indication::Indeterminate) => "INDETERMINATE",
        Some(Indication::TotalPassed) => "TOTAL_PASSED",
    }
}

fn local_verifier(args: &VerifyArgs) -> Result<Verifier, CliError> {
    args.trust.verifier()
}

/// What a file holds, judged from its first bytes.
enum Format {
    Pdf,
    Cms,
    Edxml,
}

/// The format of `bytes`, or the error naming `path` and saying what it is not. The one
/// place a new format (edXML envelopes) is recognised.
fn sniff(path: &std::path::Path, bytes: &[u8]) -> Result<Format, CliError> {
    if bytes.starts_with(b"%PDF-") {
        return Ok(Format::Pdf);
    }
    if kyso_edxml::looks_like_edxml(bytes) {
        return Ok(Format::Edxml);
    }
    // DER/BER: a SEQUENCE; PEM: an armour line (PKCS7, CMS).
    let text = bytes.trim_ascii_start();
    if bytes.first() == Some(&0x30) || text.starts_with(b"-----BEGIN") {
        return Ok(Format::Cms);
    }
    Err(CliError::Usage(format!(
        "{}: not a signature kyso reads: not CMS (DER, BER or PEM), PDF or edXML (an XML document whose root is edXML)",
        path.display()
    )))
}

/// The certificates the caller supplies (`--certificates`, and in-process the
/// `--intermediates` too): candidates for a signer certificate the signature lacks.
fn supplied_certificates(args: &VerifyArgs, local: bool) -> Result<SuppliedCertificates, CliError> {
    let mut certs: Vec<Cert> = Vec::new();
    let files = args
        .certificates
        .iter()
        .chain(args.trust.intermediates.iter().filter(|_| local));
    for p in files {
        let bytes = read_file(p)?;
        let parsed = Cert::parse_many(&bytes)
            .map_err(|e| CliError::Usage(format!("--certificates {}: {e}", p.display())))?;
        for c in parsed {
            if !certs.contains(&c) {
                certs.push(c);
            }
        }
    }
    if certs.len() > MAX_SUPPLIED_CERTIFICATES {
        return Err(CliError::Usage(format!(
            "--certificates: {} certificates, at most {MAX_SUPPLIED_CERTIFICATES}",
            certs.len()
        )));
    }
    Ok(SuppliedCertificates::new(certs))
}

async fn verify_file(
    backend: &Backend,
    path: &std::path::Path,
    content: Option<&[u8]>,
    supplied: &SuppliedCertificates,
    at: Option<OffsetDateTime>,
    policy: Option<RevocationPolicy>,
) -> Result<FileReport, CliError> {
    let signature = read_file(path)?;
    let format = sniff(path, &signature)?;
    if let Format::Edxml = format {
        if content.is_some() {
            return Err(CliError::Usage(format!(
                "{}: --content applies to detached CMS signatures; an edXML envelope carries what it signs",
                path.display()
            )));
        }
        return verify_edxml(backend, path, signature, at, policy)
            .await
            .map(|r| FileReport::Edxml(Box::new(r)));
    }
    if let Format::Pdf = format {
        if content.is_some() {
            return Err(CliError::Usage(format!(
                "{}: --content applies to detached CMS signatures; a PDF carries what it signs",
                path.display()
            )));
        }
        return verify_pdf(backend, signature, supplied, at, policy)
            .await
            .map(FileReport::Pdf);
    }
    verify_cms(backend, signature, content, supplied, at, policy)
        .await
        .map(FileReport::Cms)
}

async fn verify_pdf(
    backend: &Backend,
    pdf: Vec<u8>,
    supplied: &SuppliedCertificates,
    at: Option<OffsetDateTime>,
    policy: Option<RevocationPolicy>,
) -> Result<PdfReport, CliError> {
    match backend {
        Backend::Local(v) => {
            let options = PdfVerifyOptions {
                at,
                policy,
                ..PdfVerifyOptions::default()
            };
            v.verify_pdf_with(&pdf, &options, supplied, OffsetDateTime::now_utc())
                .await
                .map_err(|e| CliError::Verifier(e.into()))
        }
        Backend::Remote(client) => {
            let req = pb::VerifyPdfRequest {
                pdf: pdf.into(),
                at: at.map(convert::ts),
                revocation_policy: policy.map(convert::policy_to_pb).unwrap_or(0),
                certificates: ders(supplied),
            };
            let resp = client.clone().verify_pdf(req).await?.into_inner();
            Ok(convert::pdf_from_pb(&resp))
        }
    }
}

async fn verify_cms(
    backend: &Backend,
    signature: Vec<u8>,
    content: Option<&[u8]>,
    supplied: &SuppliedCertificates,
    at: Option<OffsetDateTime>,
    policy: Option<RevocationPolicy>,
) -> Result<DocumentReport, CliError> {
    match backend {
        Backend::Local(v) => {
            let detached = match content {
                Some(c) => Detached::Content(c),
                None => Detached::None,
            };
            Ok(v.verify_cms_with(
                kyso_validation::verify::CmsRequest {
                    signature: &signature,
                    detached,
                    at,
                    policy,
                },
                supplied,
                OffsetDateTime::now_utc(),
            )
            .await?)
        }
        Backend::Remote(client) => {
            let req = pb::VerifyCmsRequest {
                signature,
                detached: content.map(|c| pb::verify_cms_request::Detached::Content(c.to_vec())),
                at: at.map(convert::ts),
                revocation_policy: policy.map(convert::policy_to_pb).unwrap_or(0),
                request_id: String::new(),
                certificates: ders(supplied),
                verdict_only: false,
            };
            let resp = client.clone().verify_cms(req).await?.into_inner();
            Ok(convert::document_from_pb(&resp))
        }
    }
}

async fn verify_edxml(
    backend: &Backend,
    path: &std::path::Path,
    xml: Vec<u8>,
    at: Option<OffsetDateTime>,
    policy: Option<RevocationPolicy>,
) -> Result<EdxmlReport, CliError> {
    match backend {
        Backend::Local(v) => {
            let options = EdxmlVerifyOptions {
                at,
                policy,
                ..EdxmlVerifyOptions::default()
            };
            v.verify_edxml(&xml, &options, OffsetDateTime::now_utc())
                .await
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
        }
        Backend::Remote(client) => {
            let req = pb::VerifyEdxmlRequest {
                edxml: xml,
                at: at.map(convert::ts),
                revocation_policy: policy.map(convert::policy_to_pb).unwrap_or(0),
            };
            let resp = client.clone().verify_edxml(req).await?.into_inner();
            Ok(convert::edxml_from_pb(&resp))
        }
    }
}

/// The envelope's signature and its attachments' signatures, each an entry of the
/// `signatures` array like a CMS one (indication and sub-indication at the top level),
/// with the file and the part of the envelope it belongs to.
fn edxml_signatures(file: &str, report: &EdxmlReport) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut push = |part: String, v: serde_json::Value| {
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.insert("file".into(), json!(file));
            o.insert("part".into(), json!(part));
        }
        out.push(v);
    };
    if let Some(s) = &report.signature {
        push(
            "envelope".into(),
            serde_json::to_value(s).unwrap_or_default(),
        );
    }
    for a in &report.attachments {
        let part = format!("attachment {}", a.name);
        if let Some(p) = &a.pdf {
            for s in &p.signatures {
                push(part.clone(), serde_json::to_value(s).unwrap_or_default());
            }
        }
        if let Some(c) = &a.cms {
            for s in &c.signatures {
                push(part.clone(), serde_json::to_value(s).unwrap_or_default());
            }
        }
    }
    out
}

fn print_edxml(file: &str, report: &EdxmlReport) {
    let s = &report.summary;
    println!(
        "{file}: {} (edXML {}, from {}{}, {})",
        name_of(report.indication),
        s.kind,
        s.from,
        s.from_name
            .as_deref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default(),
        s.document_id
    );
    if let Some(subject) = &s.subject {
        println!("  subject: {subject}");
    }
    if let Some(status) = &s.status {
        println!("  status: {status}");
    }
    match &report.signature {
        Some(sig) => {
            let sub = sig
                .sub_indication
                .map(|x| format!("/{}", name_of(x)))
                .unwrap_or_default();
            println!("  envelope signature: {}{sub}", name_of(sig.indication));
            print_signer(sig);
        }
        None => println!("  envelope signature: none that can be verified"),
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    for a in &report.attachments {
        println!(
            "  attachment {:?} ({}, {}, {} bytes, SHA-256 {})",
            a.name, a.content_type, a.sniffed, a.size, a.sha256
        );
        if let Some(p) = &a.pdf {
            print_pdf(&format!("    {}", a.name), p);
        }
        if let Some(c) = &a.cms {
            print_text(&format!("    {}", a.name), c);
        }
        if let Some(e) = &a.error {
            println!("    error: {e}");
        }
    }
}

fn ders(supplied: &SuppliedCertificates) -> Vec<Vec<u8>> {
    supplied.certs().iter().map(|c| c.der().to_vec()).collect()
}

fn name_of<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn print_pdf(file: &str, report: &PdfReport) {
    println!(
        "{file}: {} (PDF, {} revisions, {} signatures)",
        name_of(report.indication),
        report.revisions.len(),
        report.signatures.len()
    );
    for (i, p) in report.signatures.iter().enumerate() {
        let s = &p.report;
        let sub = s
            .sub_indication
            .map(|x| format!("/{}", name_of(x)))
            .unwrap_or_default();
        println!(
            "  signature {i} {:?} ({}): {}{sub}",
            p.field_name,
            p.sub_filter,
            name_of(s.indication)
        );
        let whole = if p.covers_whole_document {
            "the whole document"
        } else {
            "not the whole document"
        };
        println!("    covers: revision {} ({whole})", p.revision);
        if let Some(e) = &p.byte_range_error {
            println!("    byte range: {e}");
        }
        print_signer(s);
        for m in &p.modifications {
            let object = m
                .object
                .map(|(n, g)| format!(" object {n} {g}"))
                .unwrap_or_default();
            println!(
                "    after it, revision {}: {}{object}: {} [{}]",
                m.revision,
                name_of(m.kind),
                m.description,
                if m.allowed { "allowed" } else { "NOT ALLOWED" }
            );
        }
    }
}

fn print_signer(s: &kyso_validation::report::SignatureReport) {
    if let Some(id) = &s.signer {
        println!(
            "    signer: {}{}{}",
            id.common_name.as_deref().unwrap_or(&id.subject),
            id.title
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default(),
            id.organisation
                .as_deref()
                .map(|o| format!(", {o}"))
                .unwrap_or_default(),
        );
    }
    if let Some(c) = &s.commitment_type {
        println!("    commitment: {c}");
    }
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    println!(
        "    reference time: {} ({})",
        kyso_pki::time::rfc3339(s.reference_time.time),
        name(serde_json::to_value(s.reference_time.source).unwrap_or_default())
    );
    println!(
        "    level: {}",
        name(serde_json::to_value(s.level).unwrap_or_default())
    );
    if let Some(p) = &s.poe {
        println!(
            "    proof of existence: {} ({})",
            kyso_pki::time::rfc3339(p.time),
            name(serde_json::to_value(p.source).unwrap_or_default())
        );
    }
    if let Some(c) = s.claimed_signing_time {
        println!(
            "    claimed signing time: {} (not proof)",
            kyso_pki::time::rfc3339(c)
        );
    }
    for t in &s.timestamps {
        println!(
            "    {} timestamp{}: {} {}",
            match t.kind {
                kyso_validation::report::TimestampKind::Signature => "signature",
                kyso_validation::report::TimestampKind::Document => "document",
            },
            t.gen_time
                .map(|g| format!(" at {}", kyso_pki::time::rfc3339(g)))
                .unwrap_or_default(),
            name(serde_json::to_value(t.indication).unwrap_or_default()),
            t.message
        );
    }
    for e in &s.revocation {
        if let Some(url) = &e.url {
            println!(
                "    revocation: {} {} from {url}{}",
                name(serde_json::to_value(e.source).unwrap_or_default()),
                name(serde_json::to_value(e.status).unwrap_or_default()),
                if e.from_cache { " (cached)" } else { "" }
            );
        }
    }
    println!("    {}", s.message);
    for w in &s.warnings {
        println!("    warning: {w}");
    }
}

fn print_text(file: &str, report: &DocumentReport) {
    println!(
        "{file}: {}",
        serde_json::to_value(report.indication)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("")
    );
    for s in &report.signatures {
        let sub = s
            .sub_indication
            .and_then(|x| serde_json::to_value(x).ok())
            .and_then(|v| v.as_str().map(|s| format!("/{s}")))
            .unwrap_or_default();
        let ind = serde_json::to_value(s.indication).unwrap_or_default();
        println!(
            "  signature {}: {}{sub}",
            s.index,
            ind.as_str().unwrap_or("")
        );
        print_signer(s);
    }
}

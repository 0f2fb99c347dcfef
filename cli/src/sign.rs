//! `kyso sign`: a CAdES signature from the signer service, or, for a PDF
//! (the input starts with `%PDF-`), a PAdES signature with the profile's
//! legal appearance (P1-P4, D3, D6) written as the signed PDF.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;

use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// The signature level (N1): B-B, plus a signature timestamp (B-T), plus validation data
/// (B-LT), plus a document timestamp (B-LTA, a PDF only); absent: the signer's level for the
/// profile.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    /// No timestamp.
    #[value(name = "b-b")]
    BB,
    /// With the signature timestamp of the signer's TSA.
    #[value(name = "b-t")]
    BT,
    /// B-T with the certificates and revocation data embedded (a PDF: in a DSS).
    #[value(name = "b-lt")]
    BLt,
    /// A PDF: B-LT and a document timestamp over it.
    #[value(name = "b-lta")]
    BLta,
}

impl LevelArg {
    pub(crate) fn proto(level: Option<Self>) -> i32 {
        (match level {
            None => pb::SignatureLevel::Unspecified,
            Some(Self::BB) => pb::SignatureLevel::BB,
            Some(Self::BT) => pb::SignatureLevel::BT,
            Some(Self::BLt) => pb::SignatureLevel::BLt,
            Some(Self::BLta) => pb::SignatureLevel::BLta,
        }) as i32
    }
}

/// The legal form of the signature (DOMAIN.md P1-P4, D3, D6).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    Approval,
    Issue,
    ScannedIssue,
    Copy,
    Appendix,
    Received,
    Comment,
}

/// Signing on one's own or on behalf of someone (A2).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Own,
    Kt,
    Tl,
    Tuq,
}

/// The document's classification; anything but `none` is refused (A7).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClassificationArg {
    None,
    Secret,
    TopSecret,
    HighestSecret,
}

/// Sign a document with a key held by the signer service.
#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Key name (see `kyso sign --list-keys`).
    #[arg(long, required_unless_present = "list_keys")]
    pub key: Option<String>,
    /// List the keys this caller may use, as JSON, and exit.
    #[arg(long)]
    pub list_keys: bool,
    /// Legal form of the signature.
    #[arg(long, value_enum, default_value = "approval")]
    pub profile: ProfileArg,
    /// Signing mode.
    #[arg(long, value_enum, default_value = "own")]
    pub mode: ModeArg,
    /// Document type code, as the registry knows it.
    #[arg(long, required_unless_present = "list_keys")]
    pub doc_type: Option<String>,
    /// Number and symbol of the document.
    #[arg(long, default_value = "")]
    pub number: String,
    /// Issue date, YYYY-MM-DD (ISSUE and SCANNED_ISSUE: must be today, W2).
    #[arg(long, default_value = "")]
    pub issue_date: String,
    /// Classification.
    #[arg(long, value_enum, default_value = "none")]
    pub classification: ClassificationArg,
    /// Registry ID of the person ordering the signature.
    #[arg(long, required_unless_present = "list_keys")]
    pub acting_person: Option<String>,
    /// Registry ID of the organisation the document belongs to.
    #[arg(long, required_unless_present = "list_keys")]
    pub organisation: Option<String>,
    /// Leave the document out of the signature (send only its digest).
    #[arg(long)]
    pub detached: bool,
    /// Add the new signature to this CMS (same document): the organisation's seal beside the
    /// competent person's signature (D2). Only the digest is sent; the result keeps this CMS's
    /// content, attached or not.
    #[arg(long)]
    pub add_to: Option<PathBuf>,
    /// For --profile issue (A6): the CMS with the competent person's signature of the document
    /// (defaults to --add-to).
    #[arg(long)]
    pub approval: Option<PathBuf>,
    /// For --profile scanned-issue (D2, D3): registry ID of the competent person who signed
    /// the paper original by hand; the registry checks that person's authority in the
    /// organisation and refuses the scanned form when the person holds a valid personal
    /// certificate and the document type does not allow it.
    #[arg(long, default_value = "")]
    pub competent_person: String,
    /// Digest algorithm.
    #[arg(long, default_value = "sha256")]
    pub digest: String,
    /// Where to write the DER CMS (or the signed PDF).
    #[arg(long, required_unless_present = "list_keys")]
    pub out: Option<PathBuf>,
    /// PDF: the page of --rect (from 1).
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// PDF: where the appearance goes, "x0,y0,x1,y1" in points on --page.
    #[arg(long, conflicts_with_all = ["field", "marker"])]
    pub rect: Option<String>,
    /// PDF: APPROVAL fills this empty signature field; ISSUE seals over this signed field.
    #[arg(long, conflicts_with = "marker")]
    pub field: Option<String>,
    /// PDF: centre the appearance on this text in the page content (e.g. "{{chu_ky}}").
    #[arg(long)]
    pub marker: Option<String>,
    /// PDF: the PNG of the person's signature (APPROVAL) or of the seal (ISSUE).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// PDF, ISSUE: the seal's real diameter in millimetres (default 36).
    #[arg(long)]
    pub seal_mm: Option<f64>,
    /// PDF, COPY: the form of copy (P3), e.g. "SAO Y".
    #[arg(long, default_value = "")]
    pub copy_form: String,
    /// PDF, RECEIVED: the incoming number (D6).
    #[arg(long, default_value = "")]
    pub incoming_number: String,
    /// PDF: the organisation's name shown by COPY, SCANNED_ISSUE and RECEIVED.
    #[arg(long, default_value = "")]
    pub organisation_name: String,
    /// PDF: /Reason.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// PDF: /Location.
    #[arg(long, default_value = "")]
    pub location: String,
    /// A personal key (A1): the holder's current one-time code. The digest of what is signed
    /// (the PDF as sent, or the document) is authorised with it first (AuthorizeSignature),
    /// then signed with the activation token.
    #[arg(long)]
    pub otp: Option<String>,
    /// The signature level (N1); the signer returns a lower one, with a warning, when its
    /// timestamp authority does not answer in time.
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// The document (for an attached signature over a CMS, give the CMS's content).
    #[arg(required_unless_present = "list_keys")]
    pub input: Option<PathBuf>,
}

fn hash(alg: &str, data: &[u8]) -> Result<Vec<u8>, CliError> {
    let a = match alg {
        "sha256" => &aws_lc_rs::digest::SHA256,
        "sha384" => &aws_lc_rs::digest::SHA384,
        "sha512" => &aws_lc_rs::digest::SHA512,
        other => {
            return Err(CliError::Usage(format!(
                "--digest {other}: use sha256, sha384 or sha512"
            )));
        }
    };
    Ok(aws_lc_rs::digest::digest(a, data).as_ref().to_vec())
}

/// Runs `kyso sign`.
pub async fn run(args: SignArgs) -> Result<ExitCode, CliError> {
    let url = args
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server (or KYSO_SERVER) names the signer".into()))?;
    let mut client = SignerClient::new(args.server.connect(&url).await?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    if args.list_keys {
        let keys = client
            .list_keys(pb::ListKeysRequest {})
            .await?
            .into_inner()
            .keys;
        let out: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "name": k.name,
                    "subject": k.subject,
                    "fingerprint": k.fingerprint,
                    "algorithm": k.algorithm,
                    "servable": k.servable,
                    "not_after": k.not_after.as_ref().map(|t| t.seconds),
                    "slots": k.slots.iter().map(|s| serde_json::json!({"slot": s.slot, "up": s.up, "last_error": s.last_error})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let need = |v: Option<String>, flag: &str| {
        v.ok_or_else(|| CliError::Usage(format!("{flag} is required")))
    };
    let key = need(args.key, "--key")?;
    let input = args
        .input
        .ok_or_else(|| CliError::Usage("INPUT is required".into()))?;
    let out = args
        .out
        .ok_or_else(|| CliError::Usage("--out is required".into()))?;
    let content = read_file(&input)?;
    let profile = match args.profile {
        ProfileArg::Approval => pb::Profile::Approval,
        ProfileArg::Issue => pb::Profile::Issue,
        ProfileArg::ScannedIssue => pb::Profile::ScannedIssue,
        ProfileArg::Copy => pb::Profile::Copy,
        ProfileArg::Appendix => pb::Profile::Appendix,
        ProfileArg::Received => pb::Profile::Received,
        ProfileArg::Comment => pb::Profile::Comment,
    };
    let mode = match args.mode {
        ModeArg::Own => pb::SigningMode::Own,
        ModeArg::Kt => pb::SigningMode::Kt,
        ModeArg::Tl => pb::SigningMode::Tl,
        ModeArg::Tuq => pb::SigningMode::Tuq,
    };
    let classification = match args.classification {
        ClassificationArg::None => pb::Classification::None,
        ClassificationArg::Secret => pb::Classification::Secret,
        ClassificationArg::TopSecret => pb::Classification::TopSecret,
        ClassificationArg::HighestSecret => pb::Classification::HighestSecret,
    };
    let context = pb::SigningContext {
        document: Some(pb::DocumentInfo {
            document_type: need(args.doc_type, "--doc-type")?,
            number_and_symbol: args.number,
            issue_date: args.issue_date,
            classification: classification as i32,
        }),
        profile: profile as i32,
        mode: mode as i32,
        acting_person_id: need(args.acting_person, "--acting-person")?,
        organisation_id: need(args.organisation, "--organisation")?,
    };
    if content.starts_with(b"%PDF-") {
        let placement = pdf_placement(
            args.page,
            args.rect.as_deref(),
            args.field.as_deref(),
            args.marker.as_deref(),
        )?;
        let image = match &args.image {
            Some(p) => read_file(p)?,
            None => Vec::new(),
        };
        // A1: the holder authorises the SHA-256 of the PDF as sent.
        let activation_token =
            authorize(&mut client, &key, args.otp.as_deref(), "sha256", &content).await?;
        let resp = client
            .sign_pdf(pb::SignPdfRequest {
                key,
                context: Some(context),
                pdf: content,
                placement,
                image,
                seal_diameter_mm: args.seal_mm.unwrap_or(0.0),
                copy_form: args.copy_form,
                incoming_number: args.incoming_number,
                organisation_name: args.organisation_name,
                reason: args.reason,
                location: args.location,
                signing_time: None,
                field_name: String::new(),
                competent_person_id: args.competent_person.clone(),
                activation_token,
                level: LevelArg::proto(args.level),
            })
            .await?
            .into_inner();
        levels_reached(resp.level, &resp.warnings);
        std::fs::write(&out, &resp.pdf).map_err(|source| CliError::File {
            path: out.display().to_string(),
            source,
        })?;
        report(
            resp.signatory.unwrap_or_default(),
            resp.audit.unwrap_or_default(),
            &format!(
                "{} (field {}, sha256 {})",
                out.display(),
                resp.field_name,
                hex::encode(&resp.sha256)
            ),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let approval = match &args.approval {
        Some(p) => Some(read_file(p)?),
        None => None,
    };
    let existing = match &args.add_to {
        Some(p) => Some(read_file(p)?),
        None => None,
    };
    // A1: the holder authorises the document's digest (what the signature's message-digest
    // covers).
    let activation_token = authorize(
        &mut client,
        &key,
        args.otp.as_deref(),
        &args.digest,
        &content,
    )
    .await?;
    // Detached (or added to an existing CMS): only the digest crosses the network.
    let payload = if args.detached || existing.is_some() {
        pb::sign_cms_request::Payload::Digest(hash(&args.digest, &content)?)
    } else {
        pb::sign_cms_request::Payload::Content(content)
    };
    let resp = client
        .sign_cms(pb::SignCmsRequest {
            key,
            context: Some(context),
            payload: Some(payload),
            detached: args.detached || existing.is_some(),
            digest_algorithm: args.digest,
            signing_time: None,
            // A6: the seal goes on a document the competent person signed; the signer checks it.
            approval: if matches!(args.profile, ProfileArg::Issue) {
                match (&approval, &existing) {
                    (Some(a), _) => a.clone(),
                    (None, Some(e)) => e.clone(),
                    (None, None) => Vec::new(),
                }
            } else {
                Vec::new()
            },
            competent_person_id: args.competent_person,
            activation_token,
            level: LevelArg::proto(args.level),
        })
        .await?
        .into_inner();
    levels_reached(resp.level, &resp.warnings);
    let cms = match existing {
        Some(e) => kyso_pki::cms_build::add_signers(&e, &resp.cms)
            .map_err(|e| CliError::Usage(format!("--add-to: {e}")))?,
        None => resp.cms,
    };
    std::fs::write(&out, &cms).map_err(|source| CliError::File {
        path: out.display().to_string(),
        source,
    })?;
    report(
        resp.signatory.unwrap_or_default(),
        resp.audit.unwrap_or_default(),
        &out.display().to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

/// With `--otp`: AuthorizeSignature for the digest of `data`, answering the activation
/// token; without: no token (organisation keys, or a caller that signs on behalf).
pub(crate) async fn authorize(
    client: &mut SignerClient<tonic::transport::Channel>,
    key: &str,
    otp: Option<&str>,
    digest_algorithm: &str,
    data: &[u8],
) -> Result<String, CliError> {
    let Some(otp) = otp else {
        return Ok(String::new());
    };
    let digest = hash(digest_algorithm, data)?;
    Ok(client
        .authorize_signature(pb::AuthorizeSignatureRequest {
            key: key.to_owned(),
            digest_algorithm: digest_algorithm.to_owned(),
            digests: vec![digest],
            otp: otp.to_owned(),
        })
        .await?
        .into_inner()
        .activation_token)
}

/// The level the signature reached, and why it is lower than asked, on stderr.
fn levels_reached(level: i32, warnings: &[String]) {
    let name = pb::SignatureLevel::try_from(level)
        .map(|l| {
            l.as_str_name()
                .trim_start_matches("SIGNATURE_LEVEL_")
                .to_owned()
        })
        .unwrap_or_else(|_| level.to_string());
    eprintln!("level {name}");
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn report(who: pb::Signatory, audit: pb::AuditReceipt, out: &str) {
    eprintln!(
        "signed by {}{}{} -> {out} (audit record {} {})",
        who.holder_name,
        if who.title.is_empty() {
            String::new()
        } else {
            format!(", {}", who.title)
        },
        if who.on_behalf_of.is_empty() {
            String::new()
        } else {
            format!(", on behalf of {}", who.on_behalf_of)
        },
        audit.sequence,
        audit.record_hash
    );
}

/// `--rect`, `--field` or `--marker`; none: the profile's own rule.
fn pdf_placement(
    page: u32,
    rect: Option<&str>,
    field: Option<&str>,
    marker: Option<&str>,
) -> Result<Option<pb::PdfPlacement>, CliError> {
    use pb::pdf_placement::Where;
    let place = |w| Ok(Some(pb::PdfPlacement { r#where: Some(w) }));
    if let Some(r) = rect {
        let v: Vec<f64> = r
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Usage(format!("--rect {r:?}: {e}")))?;
        let [x0, y0, x1, y1] = v.as_slice() else {
            return Err(CliError::Usage(format!(
                "--rect {r:?}: give x0,y0,x1,y1 in points"
            )));
        };
        return place(Where::Rect(pb::PdfRect {
            page,
            x0: *x0,
            y0: *y0,
            x1: *x1,
            y1: *y1,
        }));
    }
    if let Some(f) = field {
        return place(Where::Field(f.to_owned()));
    }
    if let Some(m) = marker {
        return place(Where::Marker(pb::PdfMarker {
            text: m.to_owned(),
            page: 0,
        }));
    }
    Ok(None)
}

//! `kyso sign`: a CAdES signature from the signer service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;

use crate::client::ServerArgs;
use crate::{CliError, read_file};

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
    /// Digest algorithm.
    #[arg(long, default_value = "sha256")]
    pub digest: String,
    /// Where to write the DER CMS.
    #[arg(long, required_unless_present = "list_keys")]
    pub out: Option<PathBuf>,
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
    let approval = match &args.approval {
        Some(p) => Some(read_file(p)?),
        None => None,
    };
    let existing = match &args.add_to {
        Some(p) => Some(read_file(p)?),
        None => None,
    };
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
        })
        .await?
        .into_inner();
    let cms = match existing {
        Some(e) => kyso_pki::cms_build::add_signers(&e, &resp.cms)
            .map_err(|e| CliError::Usage(format!("--add-to: {e}")))?,
        None => resp.cms,
    };
    std::fs::write(&out, &cms).map_err(|source| CliError::File {
        path: out.display().to_string(),
        source,
    })?;
    let who = resp.signatory.unwrap_or_default();
    let audit = resp.audit.unwrap_or_default();
    eprintln!(
        "signed by {}{}{} -> {} (audit record {} {})",
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
        out.display(),
        audit.sequence,
        audit.record_hash
    );
    Ok(ExitCode::SUCCESS)
}

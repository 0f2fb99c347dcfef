//! `kyso ltv extend`: archive care of signed PDFs (issue 16 item 5; R1, D7). For
//! each PDF it verifies the signatures in-process (the trust flags of `kyso
//! verify`), adds what a validator will need once the certificates have expired
//! and the CAs stopped answering — the paths and the current OCSP responses or
//! CRLs of every signature and document time-stamp, in a DSS with VRI entries
//! (PAdES B-LT) — and then a fresh document time-stamp from `--tsa` over the whole
//! file (PAdES B-LTA), which proves that all of it existed before the earlier
//! TSA's certificate expires or its algorithms weaken.
//!
//! Output: the file is rewritten in place, through a temporary file and a rename,
//! after its original bytes are kept beside it as `NAME.pdf.bak-<first 12 hex of
//! their SHA-256>` (never overwritten). The update is incremental: the original
//! is the prefix of the result (D7).
//!
//! Renewal rule: a document whose last document time-stamp's TSA certificate
//! expires more than `--renew-before` days from now and whose token uses a strong
//! digest (not SHA-1) and key (RSA ≥ 2048 bits or EC) is left as it is, unless
//! `--force`.
//!
//! Resumable: `--state` (default `.kyso-ltv-state.json` in the first folder
//! given, else in the current directory) records the SHA-256 of every file this
//! command extended; a rerun skips them (an up-to-date file is looked at again:
//! the renewal window moves). A file that fails (unreadable, a failed signature,
//! the TSA down, a token that does not verify) is reported and left unchanged;
//! the others go on.
//!
//! `--store` (`store.rs`): the same job over the signer's document store; the signer does
//! the work (`ListStored`, `ExtendStored`: its `[tsa]`, its store, its audit log), the
//! caller must be its archive operator (R1).

mod collect;
mod state;
mod store;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kyso_pades::PadesLimits;
use kyso_pades::ltv::{DocTimestampRequest, add_dss, prepare_document_timestamp, read_dss};
use kyso_pki::crypto::{DigestAlgorithm, rsa_modulus_bits, sha256};
use kyso_pki::time::{OffsetDateTime, rfc3339};
use kyso_revocation::tsa::{TsaClient, TsaConfig};
use kyso_revocation::{FetchConfig, FetchPolicy, Fetcher, HostPattern, PkiMetrics};
use kyso_validation::pdf::PdfVerifyOptions;
use kyso_validation::report::{Indication, RevocationPolicy};
use kyso_validation::verify::Verifier;
use serde::Serialize;

use crate::CliError;
use crate::trust::TrustArgs;

/// `kyso ltv`.
#[derive(Debug, Subcommand)]
pub enum LtvCommand {
    /// Add validation data (DSS) and a fresh document time-stamp to signed PDFs.
    Extend(Box<ExtendArgs>),
}

/// `kyso ltv extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The TSA's URL (RFC 3161 over HTTP); not with `--store` (the signer's `[tsa]`).
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    tsa: Option<String>,
    /// Extend when the last document time-stamp's TSA certificate expires within
    /// this many days (or its algorithm is weak).
    #[arg(long, visible_alias = "horizon-days", default_value_t = 365)]
    renew_before: u32,
    /// Extend the originals in the signer's document store (`--server`, as the
    /// archive operator's client certificate) instead of files.
    #[arg(long, conflicts_with = "paths")]
    store: bool,
    /// With `--store`: extend at most this many documents in this run (the rest
    /// wait for the next run, which resumes from the state file).
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    server: crate::client::ServerArgs,
    /// Extend even when the last document time-stamp is still good.
    #[arg(long)]
    force: bool,
    /// The resume state file.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write a JSON report here (`-`: standard output).
    #[arg(long, value_name = "REPORT")]
    json: Option<PathBuf>,
    /// Revocation policy for the verification and the data fetched.
    #[arg(long)]
    revocation: Option<RevocationPolicy>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Folders (searched recursively for `*.pdf`) and PDF files.
    #[arg(required_unless_present = "store", value_name = "FOLDER|FILE")]
    paths: Vec<PathBuf>,
}

/// Runs `kyso ltv ...`.
pub async fn run(cmd: LtvCommand) -> Result<ExitCode, CliError> {
    match cmd {
        LtvCommand::Extend(a) if a.store => store::extend(*a).await,
        LtvCommand::Extend(a) => extend(*a).await,
    }
}

/// The report of one file.
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    /// `extended`, `up-to-date`, `skipped-finished`, `failed`.
    status: &'static str,
    /// The level before and after (structural: what the file carries).
    level_before: Option<&'static str>,
    level_after: Option<&'static str>,
    sha256_before: Option<String>,
    sha256_after: Option<String>,
    /// Where the original bytes were kept.
    backup: Option<String>,
    added: Added,
    /// The new document time-stamp's time.
    #[serde(with = "time::serde::rfc3339::option")]
    timestamp_time: Option<OffsetDateTime>,
    /// Signatures whose data could not all be collected, and other notes.
    warnings: Vec<String>,
    errors: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Added {
    certs: usize,
    ocsps: usize,
    crls: usize,
    vri: usize,
    document_timestamp: Option<String>,
}

impl FileReport {
    fn new(file: &Path) -> Self {
        Self {
            file: file.display().to_string(),
            status: "failed",
            level_before: None,
            level_after: None,
            sha256_before: None,
            sha256_after: None,
            backup: None,
            added: Added::default(),
            timestamp_time: None,
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }
}

async fn extend(args: ExtendArgs) -> Result<ExitCode, CliError> {
    let files = pdf_files(&args.paths)?;
    let state_path = match &args.state {
        Some(p) => p.clone(),
        None => args
            .paths
            .iter()
            .find(|p| p.is_dir())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".kyso-ltv-state.json"),
    };
    let mut state = state::StateFile::load(&state_path)?;
    let verifier = args.trust.verifier()?;
    let tsa = tsa_client(args.tsa.as_deref().unwrap_or_default())?;
    let policy = args.revocation;

    let progress = progress_bar(files.len());
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        if let Some(p) = &progress {
            p.set_message(file.display().to_string());
        }
        let mut r = FileReport::new(file);
        match extend_one(&verifier, &tsa, &args, policy, file, &mut state, &mut r).await {
            Ok(()) => {}
            Err(e) => {
                r.status = "failed";
                r.errors.push(e);
            }
        }
        if progress.is_none() && args.json.as_deref() != Some(Path::new("-")) {
            eprintln!("{}: {}", r.file, r.status);
        }
        reports.push(r);
        if let Some(p) = &progress {
            p.inc(1);
        }
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let count = |s: &str| reports.iter().filter(|r| r.status == s).count();
    let failed = count("failed");
    let summary = serde_json::json!({
        "files": reports,
        "summary": {
            "total": reports.len(),
            "extended": count("extended"),
            "up_to_date": count("up-to-date"),
            "skipped_finished": count("skipped-finished"),
            "failed": failed,
        },
        "state": state_path.display().to_string(),
    });
    write_report(args.json.as_deref(), &summary)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A progress bar on a terminal's standard error (none otherwise: a line per item).
fn progress_bar(len: usize) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(len as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    })
}

/// Writes the JSON report where `--json` says (`-`: standard output).
fn write_report(json: Option<&Path>, report: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| CliError::Usage(format!("report: {e}")))?;
    match json {
        Some(p) if p.as_os_str() == "-" => println!("{text}"),
        Some(p) => write_atomically(p, text.as_bytes())?,
        None => {}
    }
    Ok(())
}

/// One file; `Err` is a failure whose message goes to the report (the file is left
/// unchanged).
async fn extend_one(
    verifier: &Verifier,
    tsa: &TsaClient,
    args: &ExtendArgs,
    policy: Option<RevocationPolicy>,
    file: &Path,
    state: &mut state::StateFile,
    r: &mut FileReport,
) -> Result<(), String> {
    let pdf = std::fs::read(file).map_err(|e| format!("read: {e}"))?;
    let hash = hex::encode(sha256(&pdf));
    r.sha256_before = Some(hash.clone());
    if state.is_finished(&hash) {
        r.status = "skipped-finished";
        r.sha256_after = Some(hash);
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let options = PdfVerifyOptions {
        policy,
        ..PdfVerifyOptions::default()
    };
    let report = verifier
        .verify_pdf(&pdf, &options, now)
        .await
        .map_err(|e| format!("not a readable PDF: {e}"))?;
    if report.signatures.is_empty() {
        return Err("the PDF has no signature".into());
    }
    for s in &report.signatures {
        if s.report.indication == Indication::TotalFailed {
            return Err(format!(
                "signature {} failed ({}): a failed signature is not extended",
                s.field_name, s.report.message
            ));
        }
        if s.report.indication != Indication::TotalPassed {
            r.warnings.push(format!(
                "signature {}: {:?} {}",
                s.field_name, s.report.indication, s.report.message
            ));
        }
    }
    let policy = policy.unwrap_or(verifier.default_policy());
    let (collected, last) = collect::collect(verifier, &pdf, now, policy).await?;
    r.level_before = Some(level(&pdf, &collected));
    if !args.force
        && let Some(last) = &last
        && still_good(last, now, args.renew_before)
    {
        // Not recorded in the state: the renewal window moves, the next run looks again.
        r.status = "up-to-date";
        r.level_after = r.level_before;
        r.sha256_after = Some(hash);
        return Ok(());
    }
    for c in &collected {
        r.warnings.extend(c.problems.iter().cloned());
    }
    let data: Vec<_> = collected.iter().map(|c| c.data.clone()).collect();
    let limits = PadesLimits::default();
    let with_dss = add_dss(&pdf, &data, Some(now), &limits).map_err(|e| format!("DSS: {e}"))?;
    r.added.certs = with_dss.added.certs;
    r.added.ocsps = with_dss.added.ocsps;
    r.added.crls = with_dss.added.crls;
    r.added.vri = with_dss.added.vri;

    let prepared = prepare_document_timestamp(&with_dss.pdf, &DocTimestampRequest::default())
        .map_err(|e| format!("document time-stamp: {e}"))?;
    let token = tsa
        .timestamp(prepared.digest_algorithm(), prepared.digest(), &[])
        .await
        .map_err(|e| format!("TSA: {e}"))?;
    let field = prepared.field_name().to_owned();
    // Verified again against the document's digest before it is written (the
    // client checked it against its request's nonce and imprint).
    let (out, verified) = prepared
        .finish(&token.token, &[])
        .map_err(|e| format!("document time-stamp: {e}"))?;
    r.added.document_timestamp = Some(field);
    r.timestamp_time = Some(verified.gen_time());

    let backup = backup_path(file, &hash);
    if !backup.exists() {
        write_atomically(&backup, &pdf).map_err(|e| format!("backup: {e}"))?;
    }
    write_atomically(file, &out).map_err(|e| format!("write: {e}"))?;
    r.backup = Some(backup.display().to_string());
    let after = hex::encode(sha256(&out));
    r.sha256_after = Some(after.clone());
    r.level_after = Some("B-LTA");
    r.status = "extended";
    record(state, after, file, "extended", now)?;
    Ok(())
}

fn record(
    state: &mut state::StateFile,
    hash: String,
    file: &Path,
    outcome: &str,
    now: OffsetDateTime,
) -> Result<(), String> {
    state
        .finish(
            hash,
            state::Finished {
                file: file.display().to_string(),
                at: rfc3339(now),
                outcome: outcome.into(),
            },
        )
        .map_err(|e| format!("state file: {e}"))
}

/// What the file carries, structurally: B-LTA (a document time-stamp), B-LT (a DSS),
/// B-T (every signature time-stamped), else B-B. The verifier's report judges it.
fn level(pdf: &[u8], collected: &[collect::Collected]) -> &'static str {
    let has_dss = matches!(read_dss(pdf, &PadesLimits::default()), Ok(Some(_)));
    let doc_ts = collected.iter().any(|c| c.document_timestamp);
    let sigs: Vec<_> = collected.iter().filter(|c| !c.document_timestamp).collect();
    let all_t = !sigs.is_empty() && sigs.iter().all(|c| c.signature_timestamp);
    match (has_dss, doc_ts, all_t) {
        (true, true, _) => "B-LTA",
        (true, false, _) => "B-LT",
        (false, true, _) | (false, false, true) => "B-T",
        _ => "B-B",
    }
}

/// The last document time-stamp holds long enough with strong algorithms.
fn still_good(last: &collect::LastTimestamp, now: OffsetDateTime, days: u32) -> bool {
    let far = last.tsa_cert.not_after() - now > time::Duration::days(i64::from(days));
    let digest_ok = !matches!(last.digest_algorithm, Some(DigestAlgorithm::Sha1) | None);
    let spki = &last.tsa_cert.x509().tbs_certificate.subject_public_key_info;
    let key_ok = rsa_modulus_bits(spki).is_none_or(|bits| bits >= 2048);
    far && digest_ok && key_ok
}

fn backup_path(file: &Path, hash: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak-{}", &hash[..12]));
    file.with_file_name(name)
}

/// The TSA client: the fetch policy allows the `--tsa` host alone.
fn tsa_client(url: &str) -> Result<TsaClient, CliError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| CliError::Usage(format!("--tsa {url:?}: an http(s) URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| CliError::Usage(format!("--tsa {url:?}: bad port")))?;
            (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
        }
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err(CliError::Usage(format!("--tsa {url:?}: no host")));
    }
    let metrics =
        PkiMetrics::unregistered().map_err(|e| CliError::Usage(format!("metrics: {e}")))?;
    let fetcher = Fetcher::new(
        FetchConfig {
            policy: FetchPolicy {
                allowed_hosts: vec![HostPattern::exact(host, port)],
                ..FetchPolicy::default()
            },
            ..FetchConfig::default()
        },
        metrics,
    )?;
    Ok(TsaClient::new(TsaConfig::new(url), fetcher))
}

/// The PDFs named: files as given, folders searched recursively (sorted; hidden
/// entries skipped).
fn pdf_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, 0)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), CliError> {
    if depth > 32 {
        return Err(CliError::Usage(format!(
            "{}: folders nest too deep",
            dir.display()
        )));
    }
    let err = |source| CliError::File {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let ft = std::fs::symlink_metadata(&p).map_err(err)?.file_type();
        if ft.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if ft.is_file() && name.to_ascii_lowercase().ends_with(".pdf") {
            out.push(p);
        }
    }
    Ok(())
}

/// Writes through a temporary file in the same folder and a rename, so a reader
/// (or a crash) never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let err = |source| CliError::File {
        path: path.display().to_string(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".kyso-tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

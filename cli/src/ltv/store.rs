//! `kyso ltv extend --store`: archive care of the signer's document store (R1, D7). The
//! signer lists its originals (`ListStored`, page by page) and extends each one itself
//! (`ExtendStored`: the DSS, a fresh document timestamp from its `[tsa]`, the new version
//! stored, the audit record written before it answers); this command sequences the calls,
//! shows the progress and writes the report. The client certificate must be the signer's
//! archive operator (`[[callers]] archive = true`), or the listing is refused (R1).
//!
//! Resumable: the state file (`--state`, default `.kyso-ltv-store-state.json` in the
//! current directory) records every document id (the SHA-256 it was first stored under)
//! this command extended; a rerun, after an interruption or `--limit`, skips them and goes
//! on with the rest. An up-to-date document is not recorded: the renewal window moves.

use std::path::PathBuf;
use std::process::ExitCode;

use kyso_pki::time::{OffsetDateTime, rfc3339};
use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use serde::Serialize;

use super::{ExtendArgs, progress_bar, state, write_report};
use crate::CliError;

/// The report of one stored document (the folder report's fields where they apply).
#[derive(Debug, Serialize)]
struct DocumentReport {
    /// The document id (SHA-256 first stored under; GetDocument takes it).
    document: String,
    /// `pdf` or `cms`.
    kind: String,
    /// `extended`, `up-to-date`, `skipped` (with `reason`), `skipped-finished`, `failed`.
    status: String,
    reason: Option<String>,
    level_before: Option<String>,
    level_after: Option<String>,
    sha256_before: Option<String>,
    sha256_after: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    timestamp_time: Option<OffsetDateTime>,
    audit_sequence: Option<u64>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn time_of(t: Option<prost_types::Timestamp>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t?.seconds).ok()
}

/// Every document the signer lists, page by page.
async fn list_all(
    client: &mut DocumentsClient<tonic::transport::Channel>,
) -> Result<Vec<dpb::StoredDocument>, CliError> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_stored(dpb::ListStoredRequest {
                page_token: page_token.clone(),
                page_size: 500,
            })
            .await?
            .into_inner();
        all.extend(page.documents);
        if page.next_page_token.is_empty() || page.next_page_token == page_token {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// Runs `kyso ltv extend --store`.
pub(super) async fn extend(args: ExtendArgs) -> Result<ExitCode, CliError> {
    let url = args
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--store needs --server".into()))?;
    let mut client = DocumentsClient::new(args.server.connect(&url).await?)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| PathBuf::from(".kyso-ltv-store-state.json"));
    let mut state = state::StateFile::load(&state_path)?;
    // R1: a caller that is not the archive operator is refused here, before anything.
    let documents = list_all(&mut client).await?;

    let progress = progress_bar(documents.len());
    let quiet = progress.is_some() || args.json.as_deref() == Some(std::path::Path::new("-"));
    let mut reports = Vec::with_capacity(documents.len());
    let mut worked = 0usize;
    for d in &documents {
        if let Some(p) = &progress {
            p.set_message(d.sha256.clone());
        }
        let mut r = DocumentReport {
            document: d.sha256.clone(),
            kind: d.kind.clone(),
            status: "failed".into(),
            reason: None,
            level_before: some(d.level.clone()),
            level_after: None,
            sha256_before: some(d.current_sha256.clone()),
            sha256_after: None,
            timestamp_time: None,
            audit_sequence: None,
            warnings: Vec::new(),
            errors: Vec::new(),
        };
        if state.is_finished(&d.sha256) {
            r.status = "skipped-finished".into();
        } else if args.limit.is_some_and(|l| worked >= l) {
            r.status = "not-reached".into();
            r.reason = Some("--limit reached: the next run goes on".into());
        } else {
            worked += 1;
            let req = dpb::ExtendStoredRequest {
                sha256: d.sha256.clone(),
                horizon_days: args.renew_before,
                force: args.force,
            };
            match client.extend_stored(req).await {
                Ok(resp) => {
                    let x = resp.into_inner();
                    r.status = x.status.clone();
                    r.reason = some(x.reason);
                    r.kind = x.kind;
                    r.level_before = some(x.level_before);
                    r.level_after = some(x.level_after);
                    r.sha256_before = some(x.sha256_before);
                    r.sha256_after = some(x.sha256_after.clone());
                    r.timestamp_time = time_of(x.timestamp_time);
                    r.warnings = x.warnings;
                    if x.status == "extended" {
                        r.audit_sequence = Some(x.audit_sequence);
                        let done = state::Finished {
                            file: format!("store:{}", d.sha256),
                            at: rfc3339(OffsetDateTime::now_utc()),
                            outcome: format!("extended to {}", x.sha256_after),
                        };
                        if let Err(e) = state.finish(d.sha256.clone(), done) {
                            r.errors.push(format!("state file: {e}"));
                        }
                    }
                }
                // A refusal of the archive role itself stops the run; anything else is this
                // document's failure, reported, and the others go on.
                Err(s) if s.code() == tonic::Code::PermissionDenied => return Err(s.into()),
                Err(s) => r.errors.push(format!("{}: {}", s.code(), s.message())),
            }
        }
        if !quiet {
            eprintln!("{}: {}", r.document, r.status);
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
        "documents": reports,
        "summary": {
            "total": reports.len(),
            "extended": count("extended"),
            "up_to_date": count("up-to-date"),
            "skipped": count("skipped"),
            "skipped_finished": count("skipped-finished"),
            "not_reached": count("not-reached"),
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

//! The audit log's anchors in the registry: what makes a rolled-back log visible.
//!
//! The hash chain and the seals show a log edited in its middle, but not one cut back to an
//! earlier seal, deleted, or replaced by an older copy: each of those is a valid log on its
//! own. So the signer records its log's head in the registry at every seal, after the seal
//! is durable (`RecordAuditAnchor`: sequence and hash of the seal record, with the seal's
//! signature), and at start-up it compares the file with the last anchor:
//!
//! * no anchor, no file: a first start, the log is created;
//! * an anchor and no file, a file that ends before the anchored sequence, or a record at
//!   that sequence with another hash: the signer refuses to start (docs/OPERATIONS.md says
//!   how to recover);
//! * the registry does not answer within `audit.anchor_startup_wait_secs`: the signer
//!   refuses to start (it cannot tell a rolled-back log from a good one).
//!
//! Anchoring failures after the start are retried in the background; once
//! `audit.max_unanchored_seals` seals are not anchored the signer refuses new signatures and
//! reports not serving (`AuditLog::ready_to_sign`) until an anchor gets through.
//!
//! The log is named by `audit.log_id` (default: the instance name); the registry binds a
//! log id to the certificate subject that anchored it first, and records which certificate
//! wrote each anchor.

use std::path::Path;
use std::time::{Duration, Instant};

use kyso_proto::registry::v1 as reg;
use tokio::sync::watch;
use tonic::Code;

use crate::audit::{Anchor, AuditLog, SealedHead, check_anchors};
use crate::authority::Registry;
use crate::error::{Error, Result};

/// Retry pause while the registry does not answer.
const RETRY: Duration = Duration::from_secs(1);
/// Longest pause between anchoring attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether a registry answer is worth asking again (it did not judge the request).
fn transient(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::ResourceExhausted
    )
}

/// The start-up check: the last anchor of `log_id` must be in the file at `path`. Refuses
/// (an error naming what is wrong and how to recover) when it is not, and when the registry
/// does not answer within `wait`.
pub async fn check_at_start(
    registry: &Registry,
    log_id: &str,
    path: &Path,
    wait: Duration,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    let latest = loop {
        match registry.latest_audit_anchor(log_id).await {
            Ok(a) => break a,
            Err(s) if transient(&s) && Instant::now() + RETRY < deadline => {
                tracing::warn!(code = ?s.code(), error = %s.message(),
                    "the registry does not answer the audit anchor check yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
            Err(s) => {
                return Err(Error::AuditStart(format!(
                    "refusing to start: the last anchor of audit log {log_id:?} cannot be read \
                     from the registry ({:?}: {}), so a rolled-back or replaced log could not \
                     be told from a good one; make the registry reachable (and the signer's \
                     certificate hold the signer role) and start again",
                    s.code(),
                    s.message()
                )));
            }
        }
    };
    let Some(a) = latest else {
        tracing::info!(
            log_id,
            "audit log not anchored yet (a first start, or an upgrade)"
        );
        return Ok(());
    };
    let anchor = Anchor {
        sequence: a.sequence,
        head_hash: a.head_hash.clone(),
    };
    let p = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || check_anchors(&p, &[anchor]))
        .await
        .map_err(|e| Error::AuditStart(format!("anchor check: {e}")))?
        .map_err(|e| Error::AuditStart(format!("{}: {e}", path.display())))?;
    match checked {
        None => {
            tracing::info!(
                log_id,
                sequence = a.sequence,
                "audit log holds its last anchor"
            );
            Ok(())
        }
        Some(m) => Err(Error::AuditStart(format!(
            "refusing to start: audit log {} ({log_id:?}) is behind its last anchor in the \
             registry ({}: {}); anchored {} by {}; restore the log from a copy that holds \
             sequence {}, or follow \"Audit log behind its anchor\" in docs/OPERATIONS.md",
            path.display(),
            m.kind,
            m.detail,
            a.sealed_at
                .map(|t| t.seconds.to_string())
                .unwrap_or_default(),
            a.writer_subject,
            a.sequence
        ))),
    }
}

/// The request that anchors one seal.
fn request(log_id: &str, head: &SealedHead) -> reg::RecordAuditAnchorRequest {
    reg::RecordAuditAnchorRequest {
        change: Some(reg::Change {
            actor: String::new(),
            reason: format!("audit seal at sequence {}", head.anchor.sequence),
        }),
        anchor: Some(reg::AuditAnchor {
            log_id: log_id.to_owned(),
            sequence: head.anchor.sequence,
            head_hash: head.anchor.head_hash.clone(),
            seal_algorithm: head.seal.algorithm.to_string(),
            seal_key_sha256: head.seal.certificate_fingerprint.clone(),
            seal_signature: head.seal.signature.clone(),
            sealed_at: Some(prost_types::Timestamp {
                seconds: head.time.unix_timestamp(),
                nanos: 0,
            }),
            ..reg::AuditAnchor::default()
        }),
    }
}

/// Anchors every seal the log makes (the latest one when several wait), until `stop`.
pub fn spawn(
    audit: AuditLog,
    registry: Registry,
    log_id: String,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut seals = audit.subscribe_seals();
    tokio::spawn(async move {
        let mut anchored = 0u64;
        let mut backoff = RETRY;
        loop {
            let head = seals.borrow_and_update().clone();
            if let Some(head) = head.filter(|h| h.seals_made > anchored) {
                match registry.record_audit_anchor(request(&log_id, &head)).await {
                    Ok(_) => {
                        anchored = head.seals_made;
                        audit.mark_anchored(anchored);
                        backoff = RETRY;
                        tracing::debug!(sequence = head.anchor.sequence, "audit seal anchored");
                        continue;
                    }
                    Err(s) => {
                        tracing::warn!(
                            code = ?s.code(),
                            error = %s.message(),
                            sequence = head.anchor.sequence,
                            unanchored = audit.unanchored_seals(),
                            "anchoring the audit log's head in the registry failed; retrying"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => break,
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            tokio::select! {
                r = seals.changed() => if r.is_err() { break },
                _ = stop.changed() => break,
            }
        }
    })
}

/// Anchors the last seal once more, for the clean shutdown (the final seal is made after
/// the background task may have stopped).
pub async fn anchor_last(audit: &AuditLog, registry: &Registry, log_id: &str) {
    let head = audit.subscribe_seals().borrow().clone();
    let Some(head) = head.filter(|h| audit.unanchored_seals() > 0 && h.seals_made > 0) else {
        return;
    };
    match registry.record_audit_anchor(request(log_id, &head)).await {
        Ok(_) => audit.mark_anchored(head.seals_made),
        Err(s) => tracing::warn!(code = ?s.code(), error = %s.message(),
            "the final audit seal could not be anchored; the next start finds the log ahead of its anchor, which is allowed"),
    }
}

//! Audit anchors: the head of each signer's audit log, recorded at every seal. A signer that
//! finds its log behind its last anchor (truncated, deleted, an older copy restored) refuses
//! to start; `kyso audit verify` checks every anchor against the file.
//!
//! Who wrote an anchor is the caller's client certificate (the change's actor), never a
//! request field. A log id is bound to the subject of the certificate that anchored it first,
//! so one signer cannot move another's head (a renewed certificate with the same subject
//! carries on). A log's sequence only grows: an anchor at or below the last one is refused,
//! except the very same anchor sent again (a retry after a lost answer), which is answered
//! as a duplicate and changes nothing. The rows are append-only in the database as well
//! (triggers, migration 0008).

use serde_json::json;

use super::Book;
use super::model::{AuditAnchor, Change, NewAuditAnchor};
use crate::error::{Error, Result};

/// Longest log id accepted.
const MAX_LOG_ID: usize = 200;
/// Largest seal signature accepted, bytes (RSA 16384 is 2048 bytes).
const MAX_SIGNATURE: usize = 4096;

const COLUMNS: &str = "log_id, sequence, head_hash, seal_algorithm, seal_key_sha256, \
     seal_signature, sealed_at, writer_fingerprint, writer_subject, recorded_at";

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a log id as given (trimmed, bounded, printable).
pub(crate) fn log_id(field: &'static str, id: &str) -> Result<String> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Error::field(field, "required"));
    }
    if id.len() > MAX_LOG_ID || id.chars().any(char::is_control) {
        return Err(Error::field(
            field,
            format!("at most {MAX_LOG_ID} bytes, no control characters"),
        ));
    }
    Ok(id.to_owned())
}

fn check(a: &NewAuditAnchor) -> Result<()> {
    if a.sequence <= 0 {
        return Err(Error::field("anchor.sequence", "must be above 0"));
    }
    if !is_lower_hex(&a.head_hash, 64) {
        return Err(Error::field(
            "anchor.head_hash",
            "must be 64 lowercase hex digits",
        ));
    }
    if !(a.seal_key_sha256.is_empty() || is_lower_hex(&a.seal_key_sha256, 64)) {
        return Err(Error::field(
            "anchor.seal_key_sha256",
            "must be empty or 64 lowercase hex digits",
        ));
    }
    if a.seal_algorithm.is_empty()
        || a.seal_algorithm.len() > 100
        || !a
            .seal_algorithm
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(Error::field(
            "anchor.seal_algorithm",
            "must be a dotted OID",
        ));
    }
    if a.seal_signature.is_empty() || a.seal_signature.len() > MAX_SIGNATURE {
        return Err(Error::field(
            "anchor.seal_signature",
            format!("1 to {MAX_SIGNATURE} bytes"),
        ));
    }
    Ok(())
}

impl Book {
    /// Records an anchor written by the change's caller; `Ok(true)` when the very same
    /// anchor was recorded before (nothing changes).
    pub async fn record_audit_anchor(
        &self,
        change: &Change,
        anchor: &NewAuditAnchor,
        now: i64,
    ) -> Result<bool> {
        check(anchor)?;
        let by = change.by.as_ref().ok_or_else(|| {
            Error::Config(vec![
                "an audit anchor reached the book without its caller".into(),
            ])
        })?;
        let mut tx = self.db.begin_write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT owner_subject FROM audit_logs WHERE log_id = $1")
                .bind(&anchor.log_id)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some(o) if o != by.name => {
                return Err(Error::PermissionDenied {
                    caller: by.describe(),
                    call: format!("{} (log {:?})", by.call, anchor.log_id),
                    missing: format!(
                        "the audit log {:?} is bound to the certificate subject {o:?}, which \
                         anchored it first",
                        anchor.log_id
                    ),
                });
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO audit_logs (log_id, owner_subject, created_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(&anchor.log_id)
                .bind(&by.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT sequence, head_hash FROM audit_anchors WHERE log_id = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(&anchor.log_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((seq, hash)) = last {
            if seq == anchor.sequence && hash == anchor.head_hash {
                // Dropping the transaction rolls back: nothing was written.
                return Ok(true);
            }
            if anchor.sequence <= seq {
                return Err(Error::Conflict {
                    field: "anchor.sequence",
                    reason: format!(
                        "the audit log {:?} is anchored at sequence {seq} (hash {hash}); an \
                         anchor must move its head forward, {} does not",
                        anchor.log_id, anchor.sequence
                    ),
                });
            }
        }
        let signature = hex::encode(&anchor.seal_signature);
        sqlx::query(&format!(
            "INSERT INTO audit_anchors ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&anchor.log_id)
        .bind(anchor.sequence)
        .bind(&anchor.head_hash)
        .bind(&anchor.seal_algorithm)
        .bind(&anchor.seal_key_sha256)
        .bind(&signature)
        .bind(anchor.sealed_at)
        .bind(&by.fingerprint)
        .bind(&by.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let data = json!({
            "log_id": anchor.log_id,
            "sequence": anchor.sequence,
            "head_hash": anchor.head_hash,
            "seal_algorithm": anchor.seal_algorithm,
            "seal_key_sha256": anchor.seal_key_sha256,
            "sealed_at": anchor.sealed_at,
        });
        let entity = format!("{}#{}", anchor.log_id, anchor.sequence);
        self.commit(tx, change, now, "anchor.recorded", &entity, data)
            .await?;
        Ok(false)
    }

    /// The latest anchor of a log, if it was ever anchored.
    pub async fn latest_audit_anchor(&self, log_id: &str) -> Result<Option<AuditAnchor>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_anchors WHERE log_id = $1 \
             ORDER BY sequence DESC LIMIT 1"
        ))
        .bind(log_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Anchors of a log after `after`, oldest first; at most `limit` (100 for 0, at most
    /// 1000).
    pub async fn audit_anchors(
        &self,
        log_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditAnchor>> {
        let limit = i64::from(if limit == 0 { 100 } else { limit.min(1000) });
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_anchors WHERE log_id = $1 AND sequence > $2 \
             ORDER BY sequence LIMIT $3"
        ))
        .bind(log_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }
}

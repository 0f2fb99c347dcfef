//! Archive care over the document store (R1, D7, N3): `ListStored` and `ExtendStored`, what
//! `kyso ltv extend --store` drives. The signer does the work because it holds the store,
//! the `[tsa]` and the audit log.
//!
//! Who may call: only an archive operator, a caller whose client certificate is configured
//! with `archive = true` (`[[callers]]`, as `exchange` for W5); anyone else, the anonymous
//! caller of a dev cluster included, is refused PERMISSION_DENIED `R1` (fail closed). The
//! operator sees every organisation's originals: archive care is the custodian's job, and
//! it changes no signed byte (incremental updates, D7).
//!
//! A PDF with a failed signature (a received document that was refused and kept, D7) is
//! reported skipped, as `kyso ltv extend` over a folder does.
//!
//! An extension is recorded in the audit log (decision `extended`, the SHA-256 before and
//! after) after the new version is stored and before the reply. Extensions run one at a time
//! (a second call waits), so two operators' runs cannot fork a document's versions; a
//! document whose background upgrade is still journaled is skipped until it lands (the
//! upgrade supersedes the same version).

use kyso_proto::documents::v1 as dpb;
use time::OffsetDateTime;

use super::DocumentsService;
use crate::archive::{self, Plan};
use crate::audit::{AuditEntry, Decision, LevelNote};
use crate::config::Caller;
use crate::error::{Error, Refusal, Result};

/// Most documents a `ListStored` page holds.
const MAX_PAGE: usize = 1_000;
/// A page's size when the request names none.
const DEFAULT_PAGE: usize = 100;

/// R1: only the archive operator.
fn archive_operator(caller: &Caller) -> Result<()> {
    if caller.archive {
        return Ok(());
    }
    Err(Error::Refused(vec![Refusal {
        rule: "R1".into(),
        reason: format!(
            "caller {:?} is not the archive operator ([[callers]] archive = true): only it lists \
             and extends the stored originals",
            caller.name
        ),
    }]))
}

fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    }
}

impl DocumentsService {
    fn upgrade_pending(&self, sha256: &str) -> bool {
        self.signer.upgrades().is_some_and(|u| {
            ["cms", "pdf"]
                .iter()
                .any(|k| u.pending(k).iter().any(|p| p.sha256 == sha256))
        })
    }

    /// Why a stored PDF is not extended: a signature whose verification failed (or the file
    /// no longer reads as a PDF); `None` when none failed.
    async fn failed_signature(&self, pdf: &[u8], now: OffsetDateTime) -> Option<String> {
        use kyso_validation::report::Indication;
        let options = kyso_validation::pdf::PdfVerifyOptions::default();
        let report = match self.signer.verifier().verify_pdf(pdf, &options, now).await {
            Ok(r) => r,
            Err(e) => return Some(format!("not a readable PDF: {e}")),
        };
        report
            .signatures
            .iter()
            .find(|s| s.report.indication == Indication::TotalFailed)
            .map(|s| {
                format!(
                    "signature {} failed ({}): a failed signature is not extended",
                    s.field_name, s.report.message
                )
            })
    }

    /// `ListStored`.
    pub(super) async fn list_stored(
        &self,
        caller: &Caller,
        req: dpb::ListStoredRequest,
    ) -> Result<dpb::ListStoredResponse> {
        archive_operator(caller)?;
        let after = req.page_token.trim().to_ascii_lowercase();
        if !after.is_empty() && (after.len() != 64 || !after.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::InvalidField {
                field: "page_token",
                reason: "not a page token of ListStored".into(),
            });
        }
        let size = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let (ids, more) = self
            .store
            .originals(&after, size)
            .map_err(|e| self.store_error(e))?;
        let mut documents = Vec::with_capacity(ids.len());
        for id in &ids {
            let current = self
                .store
                .current_sha256(id)
                .map_err(|e| self.store_error(e))?;
            let bytes = self.store.get(&current).map_err(|e| self.store_error(e))?;
            // A file that is no signed original of a known form is listed with no level (the
            // extension reports why).
            let seen = archive::inspect(&bytes).ok();
            documents.push(dpb::StoredDocument {
                sha256: id.clone(),
                current_sha256: current,
                kind: seen
                    .as_ref()
                    .map(|i| i.kind.name().to_owned())
                    .unwrap_or_default(),
                level: seen
                    .as_ref()
                    .map(|i| i.level.to_owned())
                    .unwrap_or_default(),
                last_timestamp_expires: seen
                    .as_ref()
                    .and_then(|i| i.last.as_ref())
                    .map(|l| timestamp(l.tsa_cert.not_after())),
                upgrade_pending: self.upgrade_pending(id),
            });
        }
        let next_page_token = if more {
            ids.last().cloned().unwrap_or_default()
        } else {
            String::new()
        };
        Ok(dpb::ListStoredResponse {
            documents,
            next_page_token,
        })
    }

    /// `ExtendStored`.
    pub(super) async fn extend_stored(
        &self,
        caller: &Caller,
        req: dpb::ExtendStoredRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::ExtendStoredResponse> {
        archive_operator(caller)?;
        super::require("sha256", &req.sha256)?;
        let id = req.sha256.trim().to_ascii_lowercase();
        // One extension at a time: the version read is the version superseded.
        let _one = self.archive_lock.lock().await;
        let organisations = self
            .store
            .organisations(&id)
            .map_err(|e| self.store_error(e))?;
        if organisations.is_empty() {
            return Err(Error::InvalidField {
                field: "sha256",
                reason: "not a stored original of the document flow (ListStored names them)".into(),
            });
        }
        let before_sha = self
            .store
            .current_sha256(&id)
            .map_err(|e| self.store_error(e))?;
        let before = self
            .store
            .get(&before_sha)
            .map_err(|e| self.store_error(e))?;
        let mut out = dpb::ExtendStoredResponse {
            sha256_before: before_sha.clone(),
            sha256_after: before_sha.clone(),
            ..Default::default()
        };
        let skip = |mut out: dpb::ExtendStoredResponse, why: String| {
            out.status = "skipped".into();
            out.reason = why;
            out.level_after = out.level_before.clone();
            Ok(out)
        };
        let seen = match archive::inspect(&before) {
            Ok(s) => s,
            Err(e) => {
                return skip(
                    out,
                    format!("not a signed original this signer extends: {e}"),
                );
            }
        };
        out.kind = seen.kind.name().into();
        out.level_before = seen.level.into();
        if self.upgrade_pending(&id) {
            return skip(
                out,
                "its background upgrade is still pending (extended after it lands)".into(),
            );
        }
        match archive::plan(&seen, now, req.horizon_days, req.force) {
            Plan::UpToDate => {
                out.status = "up-to-date".into();
                out.level_after = out.level_before.clone();
                return Ok(out);
            }
            Plan::Skip(why) => return skip(out, why),
            Plan::Extend => {}
        }
        // As over a folder: a PDF with a failed signature is not extended (a fresh timestamp
        // would dress it up); one that is only indeterminate now (expired, sources gone) is,
        // that is what archive care is for.
        if seen.kind == archive::Kind::Pdf
            && let Some(why) = self.failed_signature(&before, now).await
        {
            return skip(out, why);
        }
        let (Some(stamper), Some(source)) = (self.signer.stamper(), self.signer.validation())
        else {
            return Err(Error::LevelUnavailable {
                level: "B_LTA",
                reason: "this signer has no [tsa]: nothing to extend with".into(),
            });
        };
        let x = archive::extend(&before, seen.kind, stamper, source, now)
            .await
            .map_err(|reason| Error::LevelUnavailable {
                level: if seen.kind == archive::Kind::Pdf {
                    "B_LTA"
                } else {
                    "B_LT"
                },
                reason,
            })?;
        let after_sha = self
            .store
            .supersede(&before_sha, &x.bytes)
            .map_err(|e| self.store_error(e))?;
        // D7, R1: recorded before the reply; the digest names the new version.
        let receipt = self
            .signer
            .audit()
            .append(AuditEntry {
                time: now,
                caller: caller.name.clone(),
                key: String::new(),
                certificate_fingerprint: String::new(),
                digest_algorithm: "sha256".into(),
                digest: kyso_pki::crypto::sha256(&x.bytes).to_vec(),
                acting_person_id: String::new(),
                organisation_id: organisations.first().cloned().unwrap_or_default(),
                document_type: String::new(),
                number_and_symbol: String::new(),
                profile: String::new(),
                mode: String::new(),
                decision: Decision::Extended {
                    before_sha256: before_sha.clone(),
                    after_sha256: after_sha.clone(),
                },
                factor: String::new(),
                level: Some(LevelNote {
                    requested: x.level.into(),
                    reached: x.level.into(),
                }),
            })
            .await
            .map_err(|e| Error::Audit(e.to_string()))?;
        tracing::info!(id = %id, before = %before_sha, after = %after_sha, "stored original extended to {} (R1, D7)", x.level);
        out.status = "extended".into();
        out.sha256_after = after_sha;
        out.level_after = x.level.into();
        out.timestamp_time = x.timestamp_time.map(timestamp);
        out.warnings = x.warnings;
        out.audit_sequence = receipt.seq;
        Ok(out)
    }
}

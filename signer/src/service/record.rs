//! Steps 5-6 of a signing request: the HSM signature (timed), and the audit record, durable
//! before the reply, so that no signature leaves the signer unrecorded; a refusal or failure
//! after parsing is recorded too, and the caller gets the original error whatever happens to
//! the record.

use std::time::Instant;

use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, Decision as AuditDecision, LevelNote};
use crate::config::{Caller, KeySpec};
use crate::error::{Error, Result};

use super::SignerService;
use super::request::Job;

impl SignerService {
    async fn hsm_sign(
        &self,
        key: &KeySpec,
        alg: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        // No signature while the audit log's head is not anchored (fail closed, `anchor`).
        self.inner
            .audit
            .ready_to_sign()
            .map_err(|e| Error::Audit(e.to_string()))?;
        let started = Instant::now();
        let r = self
            .inner
            .hsm
            .sign(&key.name, key.scheme.mechanism(alg), digest)
            .await;
        self.inner
            .metrics
            .hsm_seconds
            .with_label_values(&[key.name.as_str(), if r.is_ok() { "ok" } else { "error" }])
            .observe(started.elapsed().as_secs_f64());
        Ok(r?)
    }

    pub(super) async fn record(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        decision: AuditDecision,
        now: OffsetDateTime,
    ) -> Result<pb::AuditReceipt> {
        let label = job
            .digest_algorithm
            .name()
            .to_ascii_lowercase()
            .replace('-', "");
        self.record_as(caller, job, decision, now, &label).await
    }

    /// [`Self::record`] with the digest's label given.
    pub(super) async fn record_as(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        decision: AuditDecision,
        now: OffsetDateTime,
        digest_label: &str,
    ) -> Result<pb::AuditReceipt> {
        self.record_level(caller, job, decision, now, digest_label, None)
            .await
    }

    /// [`Self::record_as`] with the signature level asked for and reached (N1).
    pub(super) async fn record_level(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        decision: AuditDecision,
        now: OffsetDateTime,
        digest_label: &str,
        level: Option<LevelNote>,
    ) -> Result<pb::AuditReceipt> {
        let doc = job.ctx.document.clone().unwrap_or_default();
        let entry = AuditEntry {
            time: now,
            key: job.key.name.clone(),
            certificate_fingerprint: job.key.certificate.fingerprint_hex(),
            caller: caller.name.clone(),
            acting_person_id: job.ctx.acting_person_id.clone(),
            organisation_id: job.ctx.organisation_id.clone(),
            document_type: doc.document_type,
            number_and_symbol: doc.number_and_symbol,
            profile: pb::Profile::try_from(job.ctx.profile)
                .map(|p| p.as_str_name().to_owned())
                .unwrap_or_default(),
            mode: pb::SigningMode::try_from(job.ctx.mode)
                .map(|p| p.as_str_name().to_owned())
                .unwrap_or_default(),
            digest_algorithm: digest_label.to_owned(),
            digest: job.document_digest.clone(),
            decision,
            factor: job.factor.as_str().to_owned(),
            level,
        };
        let started = Instant::now();
        let r = self.inner.audit.append(entry).await;
        self.inner
            .metrics
            .audit_seconds
            .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
            .observe(started.elapsed().as_secs_f64());
        let receipt = r.map_err(|e| Error::Audit(e.to_string()))?;
        Ok(pb::AuditReceipt {
            sequence: receipt.seq,
            record_hash: hex::encode(receipt.hash),
        })
    }

    /// Records a refusal or failure after parsing; the original error is
    /// what the caller gets, whatever happens to the record.
    pub(super) async fn record_failure(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        err: Error,
        now: OffsetDateTime,
    ) -> Error {
        let rules = err.rule_ids();
        for r in &rules {
            self.inner
                .metrics
                .refusals
                .with_label_values(&[r.as_str()])
                .inc();
        }
        let decision = if rules.is_empty() {
            AuditDecision::Failed {
                reason: err.to_string(),
            }
        } else {
            AuditDecision::Refused {
                rules,
                reason: err.to_string(),
            }
        };
        if let Err(e) = self.record(caller, job, decision, now).await {
            tracing::error!(error = %e, "a refusal could not be recorded in the audit log");
        }
        err
    }

    /// A signature the HSM made but whose document could not be built: recorded as made and
    /// not returned (the key was used), then the error goes to the caller.
    pub(super) async fn record_not_returned(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        err: Error,
        now: OffsetDateTime,
    ) -> Error {
        let decision = AuditDecision::NotReturned {
            reason: err.to_string(),
        };
        if let Err(e) = self.record(caller, job, decision, now).await {
            tracing::error!(error = %e, "a signature made and not returned could not be recorded");
        }
        err
    }

    /// Step 5, a failure recorded. Not while the audit log or the document store cannot
    /// write (readiness): a signature whose record may not fit is not made at all, and the
    /// refusal cannot be recorded either (the volume is full), so it only goes to the caller.
    pub(super) async fn sign_recorded(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        digest: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        if !self.inner.audit.writable() || !self.inner.storage.ready() {
            let why =
                self.inner.storage.failure().unwrap_or_else(|| {
                    "the audit log refuses records after a write failure".into()
                });
            return Err(Error::Audit(format!("not ready: {why}")));
        }
        match self.hsm_sign(job.key, job.digest_algorithm, digest).await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.record_failure(caller, job, e, now).await),
        }
    }
}

//! The steps of the document flow, each journaled (`crate::journal`) so that a retry with the
//! same idempotency key resumes after the last step done instead of doing it again.
//!
//! The guarantee (docs/FLOWS.md, "Retries"): a step whose result is in the journal is never
//! done again, so a retry returns the first signature, the first register number and the
//! first stored original. One window cannot be closed: the HSM signs, the signer records
//! the signature in the audit log and is killed before the journal keeps the signed PDF.
//! That signature is lost with the process; the retry signs again (the only way to a
//! document) and first appends a `not_returned` record naming the lost signature's record,
//! so the audit log says which signature was made and never given to anyone.
//!
//! A register entry made just before a crash is found again by the document's SHA-256
//! (`ListRegister`): the entries the register already held for it are journaled before the
//! entry is asked, and the one that appeared since is this request's.

use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use prost::Message;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, AuditRecord, Decision};
use crate::config::Caller;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::journal::{JournalError, Run, Step};
use crate::store::StoreError;

use super::DocumentsService;

/// SHA-256 (hex) of a request as protobuf, its idempotency key taken out first (the key
/// names the request; the hash says whether a retry is the same request).
pub(super) fn request_sha256<M: Message>(m: &M) -> String {
    hex::encode(kyso_pki::crypto::sha256(&m.encode_to_vec()))
}

/// The answer of a journaled operation, kept in the journal without its PDFs (they are
/// originals in the store).
pub(super) trait Answer: Message + Default {
    /// The operation's name in the journal.
    const OPERATION: &'static str;
    /// Puts the originals back into an answer read from the journal.
    fn restore(&mut self, documents: &DocumentsService) -> Result<()>;
}

/// A request begun: answered before (the same answer again) or to be done.
pub(super) enum Begun<A> {
    /// The answer given before.
    Answered(A),
    /// The journal of this attempt.
    Run(Box<Run>),
}

impl DocumentsService {
    /// The journal of a request (see `crate::journal`): the answer given before when the
    /// request was answered (its originals read back from the store), or the run to do it.
    pub(super) fn begin<A: Answer>(
        &self,
        caller: &Caller,
        organisation_id: &str,
        key: &str,
        request_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<Begun<A>> {
        let run = self
            .journals
            .begin(
                A::OPERATION,
                &caller.name,
                organisation_id,
                key,
                request_sha256,
                now.unix_timestamp(),
            )
            .map_err(|e| self.journal_error(e))?;
        let Some(answer) = run.response() else {
            return Ok(Begun::Run(Box::new(run)));
        };
        let mut a = A::decode(answer.as_slice()).map_err(|e| Error::Storage {
            reason: format!("the journaled answer does not decode: {e}"),
        })?;
        a.restore(self)?;
        Ok(Begun::Answered(a))
    }

    /// The error of a journal failure; a failed write makes the signer not ready.
    pub(super) fn journal_error(&self, e: JournalError) -> Error {
        match e {
            JournalError::Mismatch { .. } => Error::Idempotency(e.to_string()),
            JournalError::InFlight(_) => Error::InFlight(e.to_string()),
            JournalError::BadKey(reason) => Error::InvalidField {
                field: "idempotency_key",
                reason,
            },
            JournalError::Io { .. } | JournalError::Blob(StoreError::Io { .. }) => {
                self.storage.failed("document store", &e);
                Error::Storage {
                    reason: e.to_string(),
                }
            }
            other => Error::Storage {
                reason: other.to_string(),
            },
        }
    }

    /// Keeps an original of `organisation_id` in the store (D7, R1) as step `step`.
    pub(super) fn stored_step(
        &self,
        run: &mut Run,
        step: &str,
        point: &str,
        bytes: &[u8],
        organisation_id: &str,
    ) -> Result<String> {
        if let Some(s) = run.done(step) {
            return Ok(s.output_sha256.clone());
        }
        let sha256 = self
            .store
            .put_for(bytes, organisation_id)
            .map_err(|e| self.store_error(e))?;
        run.save(
            step,
            Step {
                done: true,
                output_sha256: sha256.clone(),
                ..Step::default()
            },
        )
        .map_err(|e| self.journal_error(e))?;
        failpoint::hit(point);
        Ok(sha256)
    }

    pub(super) fn store_error(&self, e: StoreError) -> Error {
        if matches!(e, StoreError::Io { .. }) {
            self.storage.failed("document store", &e);
        }
        Error::Storage {
            reason: e.to_string(),
        }
    }

    /// A signature (through the signer's own `SignPdf` path) as step `step`: the journaled
    /// output when done; otherwise the intent is journaled, a signature a killed attempt made
    /// and never kept is recorded as not returned, and the document is signed.
    pub(super) async fn signed_step(
        &self,
        run: &mut Run,
        step: &str,
        point: &str,
        caller: &Caller,
        req: pb::SignPdfRequest,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, pb::AuditReceipt)> {
        if let Some(s) = run.done(step) {
            let pdf = run
                .blob(&s.output_sha256)
                .map_err(|e| self.journal_error(e))?;
            let receipt = pb::AuditReceipt {
                sequence: s.audit_seq,
                record_hash: s.audit_hash.clone(),
            };
            return Ok((pdf, receipt));
        }
        let input_sha256 = hex::encode(kyso_pki::crypto::sha256(&req.pdf));
        if let Some(begun) = run.step(step).cloned() {
            self.record_lost_signatures(run, caller, &begun, now)
                .await?;
        }
        let intent = Step {
            key: req.key.clone(),
            input_sha256,
            audit_from: self.signer.audit().head_seq(),
            ..Step::default()
        };
        run.save(step, intent.clone())
            .map_err(|e| self.journal_error(e))?;
        let signed = self.sign(caller, req, now).await?;
        failpoint::hit(&format!("{point}-signed"));
        let receipt = signed.audit.unwrap_or_default();
        let output_sha256 = run
            .put_blob(&signed.pdf)
            .map_err(|e| self.journal_error(e))?;
        run.save(
            step,
            Step {
                done: true,
                output_sha256,
                audit_seq: receipt.sequence,
                audit_hash: receipt.record_hash.clone(),
                ..intent
            },
        )
        .map_err(|e| self.journal_error(e))?;
        failpoint::hit(&format!("{point}-journaled"));
        Ok((signed.pdf, receipt))
    }

    /// A killed attempt began step `begun` and may have signed: every `signed` record of
    /// that key, caller and input after the step began, not yet marked, gets a
    /// `not_returned` record saying the signature was never given out.
    pub(super) async fn record_lost_signatures(
        &self,
        run: &Run,
        caller: &Caller,
        begun: &Step,
        now: OffsetDateTime,
    ) -> Result<()> {
        let path = self.signer.audit().path().to_path_buf();
        let from = begun.audit_from;
        let key = begun.key.clone();
        let input = begun.input_sha256.clone();
        let name = caller.name.clone();
        let lost =
            tokio::task::spawn_blocking(move || lost_signatures(&path, &name, &key, &input, from))
                .await
                .map_err(|e| Error::Audit(format!("reading the audit log: {e}")))?
                .map_err(|e| Error::Audit(format!("reading the audit log: {e}")))?;
        for (seq, e) in lost {
            let entry = AuditEntry {
                time: now,
                caller: e.caller,
                key: e.key,
                certificate_fingerprint: e.cert_sha256,
                digest_algorithm: e.digest_alg,
                digest: hex::decode(&e.digest).unwrap_or_default(),
                acting_person_id: e.acting_person_id,
                organisation_id: e.organisation_id,
                document_type: e.document_type,
                number_and_symbol: e.number_and_symbol,
                profile: e.profile,
                mode: e.mode,
                factor: e.factor.unwrap_or_default(),
                level: None,
                decision: Decision::NotReturned {
                    reason: format!(
                        "{} {seq}: the signer stopped before the document flow kept this \
                         signature (idempotency key {:?}); it was never returned, and the \
                         retry signs again",
                        LOST_MARK,
                        run.entry().idempotency_key
                    ),
                },
            };
            self.signer
                .audit()
                .append(entry)
                .await
                .map_err(|e| Error::Audit(e.to_string()))?;
        }
        Ok(())
    }

    /// A register entry (W1, W3) as step `step`: the journaled one when done, the one a
    /// killed attempt made when the register holds it, otherwise a new one.
    pub(super) async fn registered_step(
        &self,
        run: &mut Run,
        step: &str,
        point: &str,
        req: reg::RegisterDocumentRequest,
    ) -> Result<reg::RegisterEntry> {
        if let Some(s) = run.done(step) {
            return Ok(reg::RegisterEntry {
                id: s.entry_id.clone(),
                number: s.number,
                year: s.year,
                ..Default::default()
            });
        }
        let direction = reg::Direction::try_from(req.direction).unwrap_or_default();
        let now_there = if run.durable() {
            self.signer
                .registry()
                .register_entries(&req.organisation_id, direction, &req.sha256)
                .await?
        } else {
            Vec::new()
        };
        let entry = match run.step(step) {
            Some(begun) => {
                let mine: Vec<&reg::RegisterEntry> = now_there
                    .iter()
                    .filter(|e| !begun.entries_before.contains(&e.id))
                    .collect();
                match mine.as_slice() {
                    [] => None,
                    [one] => Some((*one).clone()),
                    more => {
                        return Err(Error::Idempotency(format!(
                            "the register of {} gained {} entries for document {} since this \
                             request began (another request registered the same file at the \
                             same time): which one is this request's needs a person's look",
                            req.organisation_id,
                            more.len(),
                            req.sha256
                        )));
                    }
                }
            }
            None => None,
        };
        let entry = match entry {
            Some(e) => e,
            None => {
                run.save(
                    step,
                    Step {
                        entries_before: now_there.iter().map(|e| e.id.clone()).collect(),
                        ..Step::default()
                    },
                )
                .map_err(|e| self.journal_error(e))?;
                let e = self.signer.registry().register_document(req).await?;
                failpoint::hit(point);
                e
            }
        };
        run.save(
            step,
            Step {
                done: true,
                entry_id: entry.id.clone(),
                number: entry.number,
                year: entry.year,
                ..Step::default()
            },
        )
        .map_err(|e| self.journal_error(e))?;
        Ok(entry)
    }

    /// The verdict on a received document as step "verify": on a retry the journaled one
    /// (revocation answers and the registry may have moved on, so a retry cannot reach
    /// another decision), otherwise `judge`'s, journaled before anything is decided on it.
    pub(super) async fn verdict_step<M, Fut>(&self, run: &mut Run, judge: Fut) -> Result<M>
    where
        M: Message + Default,
        Fut: Future<Output = Result<M>>,
    {
        if let Some(s) = run.done("verify") {
            return hex::decode(&s.data)
                .ok()
                .and_then(|b| M::decode(b.as_slice()).ok())
                .ok_or_else(|| Error::Storage {
                    reason: "the journaled verdict does not decode".into(),
                });
        }
        let verdict = judge.await?;
        run.save(
            "verify",
            Step {
                done: true,
                data: hex::encode(verdict.encode_to_vec()),
                ..Step::default()
            },
        )
        .map_err(|e| self.journal_error(e))?;
        failpoint::hit("verified");
        Ok(verdict)
    }

    /// Records the answer (its PDFs left out: they are originals in the store).
    pub(super) fn finish<M: Message>(&self, run: &mut Run, answer: &M) -> Result<()> {
        run.finish(&answer.encode_to_vec())
            .map_err(|e| self.journal_error(e))?;
        failpoint::hit("replying");
        Ok(())
    }

    /// An original of the store, for an answer given again.
    pub(super) fn original(&self, sha256: &str) -> Result<Vec<u8>> {
        self.store.get(sha256).map_err(|e| self.store_error(e))
    }
}

/// The words that open the reason of a `not_returned` record of a lost signature, followed
/// by the lost record's sequence number.
const LOST_MARK: &str = "signature of record";

/// The `signed` records of `key` by `caller` over `input_sha256` (the first half of a PDF's
/// `sha256-in-out` digest) after record `from`, without a `not_returned` record naming them.
fn lost_signatures(
    path: &std::path::Path,
    caller: &str,
    key: &str,
    input_sha256: &str,
    from: u64,
) -> std::io::Result<Vec<(u64, crate::audit::EntryRecord)>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path)?;
    let mut found = Vec::new();
    let mut marked = std::collections::HashSet::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let Ok(rec) = AuditRecord::parse(line.as_bytes()) else {
            continue;
        };
        let Some(e) = rec.entry else {
            continue;
        };
        if e.caller != caller || e.key != key {
            continue;
        }
        if e.decision == "not_returned" {
            if let Some(rest) = e.reason.strip_prefix(LOST_MARK)
                && let Some(seq) = rest
                    .trim_start()
                    .split(':')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
            {
                marked.insert(seq);
            }
            continue;
        }
        if e.decision == "signed" && rec.seq > from && e.digest.starts_with(input_sha256) {
            found.push((rec.seq, e));
        }
    }
    found.retain(|(seq, _)| !marked.contains(seq));
    Ok(found)
}

//! N3, D7: what was checked when a document was received, kept with it.
//!
//! Decree 68/2024 art. 12 (N3) asks the software to keep what it checked. The verdict a
//! clerk saw (the verifier's report, the authority outcomes, the problems, the reference
//! time) is written as a `VerificationEvidence` into the document store beside the
//! originals it is about, and its SHA-256 is chained into the audit log (an `evidence`
//! record) before the answer leaves: years later GetDocument returns the report as kept,
//! and the audit log shows it was not written after the fact. Journaled like every step,
//! so a retry answers with the same evidence instead of keeping a second one.

use kyso_proto::documents::v1 as dpb;
use kyso_proto::signer::v1 as pb;
use prost::Message;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, Decision};
use crate::config::Caller;
use crate::error::{Error, Result};
use crate::journal::{Run, Step};
use crate::store::EvidenceRef;

use super::DocumentsService;
use super::receipt::stamp;

/// The journal step that keeps the evidence.
const STEP: &str = "evidence";

impl DocumentsService {
    /// Keeps `evidence` (N3) about the documents named in it (the original as received and,
    /// when accepted, the stamped one), records it in the audit log, and returns it as kept.
    pub(super) async fn evidence_step(
        &self,
        run: &mut Run,
        caller: &Caller,
        mut evidence: dpb::VerificationEvidence,
        now: OffsetDateTime,
    ) -> Result<dpb::KeptEvidence> {
        if let Some(s) = run.done(STEP) {
            return hex::decode(&s.data)
                .ok()
                .and_then(|b| dpb::KeptEvidence::decode(b.as_slice()).ok())
                .ok_or_else(|| Error::Storage {
                    reason: "the journaled evidence does not decode".into(),
                });
        }
        evidence.caller = caller.name.clone();
        evidence.verified_at = Some(stamp(now));
        let bytes = evidence.encode_to_vec();
        let sha256 = self
            .store
            .put_evidence(&bytes)
            .map_err(|e| self.store_error(e))?;
        let mut about: Vec<&str> = Vec::new();
        for doc in [
            evidence.received_sha256.as_str(),
            evidence.document_sha256.as_str(),
            evidence.sha256.as_str(),
        ] {
            if !doc.is_empty() && !about.contains(&doc) {
                about.push(doc);
            }
        }
        let entry = AuditEntry {
            time: now,
            caller: caller.name.clone(),
            key: String::new(),
            certificate_fingerprint: String::new(),
            digest_algorithm: "sha256".into(),
            digest: hex::decode(&sha256).unwrap_or_default(),
            acting_person_id: String::new(),
            organisation_id: evidence.organisation_id.clone(),
            document_type: String::new(),
            number_and_symbol: String::new(),
            profile: String::new(),
            mode: String::new(),
            decision: Decision::Evidence {
                reason: format!(
                    "N3: the verification of the received {} kept ({}); about {}",
                    match &evidence.report {
                        Some(dpb::verification_evidence::Report::Edxml(_)) => "envelope",
                        _ => "document",
                    },
                    if evidence.accepted {
                        "accepted"
                    } else {
                        "refused"
                    },
                    about.join(", ")
                ),
            },
            factor: String::new(),
            level: None,
        };
        let receipt = self
            .signer
            .audit()
            .append(entry)
            .await
            .map_err(|e| Error::Audit(e.to_string()))?;
        let receipt = pb::AuditReceipt {
            sequence: receipt.seq,
            record_hash: receipt.hash_hex(),
        };
        let kept = EvidenceRef {
            sha256: sha256.clone(),
            sequence: receipt.sequence,
            record_hash: receipt.record_hash.clone(),
        };
        for doc in &about {
            self.store
                .link_evidence(doc, &kept)
                .map_err(|e| self.store_error(e))?;
        }
        let answer = dpb::KeptEvidence {
            evidence: bytes,
            sha256,
            audit: Some(receipt),
        };
        run.save(
            STEP,
            Step {
                done: true,
                output_sha256: answer.sha256.clone(),
                data: hex::encode(answer.encode_to_vec()),
                ..Step::default()
            },
        )
        .map_err(|e| self.journal_error(e))?;
        Ok(answer)
    }

    /// The evidence kept about a stored document (GetDocument), each report as kept.
    pub(super) fn kept_evidence(&self, sha256: &str) -> Result<Vec<dpb::KeptEvidence>> {
        Ok(self
            .store
            .evidence_of(sha256)
            .map_err(|e| self.store_error(e))?
            .into_iter()
            .map(|(k, evidence)| dpb::KeptEvidence {
                evidence,
                sha256: k.sha256,
                audit: Some(pb::AuditReceipt {
                    sequence: k.sequence,
                    record_hash: k.record_hash,
                }),
            })
            .collect())
    }
}

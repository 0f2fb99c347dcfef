//! `ReceiveEnvelope` (N6, W3, V5, W5, N5 art. 21.2): an edXML envelope from the exchange,
//! verified and judged at the trusted receipt time, registered, stamped, answered.
//!
//! The order a clerk follows: the envelope arrives (01 goes back at once), its signature and
//! the document inside are checked, then it is numbered and stamped (03) or refused with
//! every reason (02). The envelope as received is kept whatever the verdict (D7).

use kyso_edxml::envelope::Message;
use kyso_edxml::envelope::model::Envelope;
use kyso_edxml::status::StatusCode;
use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_validation::edxml::EdxmlReport;
use kyso_validation::report::Indication;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Result};

use super::super::incoming::{Stamp, reasons};
use super::super::receipt::{receipt_time, stamp, unstamp};
use super::super::retry::{Answer, Begun, request_sha256};
use super::super::{DocumentsService, problem, require};
use super::{Party, Seal, read_message, response_for, status_message};

/// The field name of the envelope's own signature in problems and outcomes.
pub(super) const ENVELOPE_FIELD: &str = "edXML";

/// The verdict on an envelope: the report, the problems, the signatures' outcomes.
struct Verdict {
    verification: Option<kyso_proto::verifier::v1::VerifyEdxmlResponse>,
    problems: Vec<dpb::Problem>,
    signatures: Vec<reg::SignatureAuthority>,
}

impl DocumentsService {
    pub(crate) async fn receive_envelope(
        &self,
        caller: &Caller,
        mut r: dpb::ReceiveEnvelopeRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::ReceiveEnvelopeResponse> {
        require("organisation_id", &r.organisation_id)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        super::acting_for(caller, &r.organisation_id)?;
        require("document_type", &r.document_type)?;
        if r.envelope.is_empty() {
            return Err(Error::InvalidField {
                field: "envelope",
                reason: "send the edXML envelope as received".into(),
            });
        }
        // W5 before anything is kept.
        let receipt = receipt_time(caller, r.received_at.as_ref(), now, self.receipt_bound)?;
        let us = self.party(&r.organisation_id).await?;
        // One bounded read of the envelope (the verifier reads it again with its
        // signature): what cannot be read is bad input, nothing is kept or answered (there is
        // no sender to answer). A status message is not a document.
        let envelope = match read_message(&r.envelope, "envelope")? {
            Message::Envelope(e) => e,
            Message::Status(_) => {
                return Err(Error::InvalidField {
                    field: "envelope",
                    reason: "a status message, not a document: ReceiveStatus takes it (N6)".into(),
                });
            }
        };
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        let seal = Seal {
            organisation_id: &r.organisation_id,
            key: &r.seal_key,
            custodian_person_id: &r.custodian_person_id,
            document_type: &r.document_type,
        };
        let header = &envelope.header;
        let sender = header.from.organ_id;
        let about = response_for(header);
        let number_and_symbol = about.code.clone();
        // D7: the envelope as received, whatever the verdict.
        let envelope_sha256 = self.stored_step(
            &mut run,
            "received",
            "received-stored",
            &r.envelope,
            &r.organisation_id,
        )?;
        // N6: 01, the system has it.
        let arrived = status_message(&us, about.clone(), StatusCode::Arrived, None, receipt.at);
        let mut statuses = vec![
            self.status_step(&mut run, "status-01", caller, &seal, sender, &arrived, now)
                .await?,
        ];
        // The verdict is journaled with its reference time: a retry does not judge again
        // and registers at the first time (ReceiveIncoming's reasons).
        let v: dpb::ReceiveEnvelopeResponse = self
            .verdict_step(&mut run, async {
                let v = self
                    .judge_envelope(&r, &envelope, &us, receipt.at, now)
                    .await?;
                Ok(dpb::ReceiveEnvelopeResponse {
                    verification: v.verification,
                    problems: v.problems,
                    signatures: v.signatures,
                    reference_time: Some(stamp(receipt.at)),
                    ..Default::default()
                })
            })
            .await?;
        let at = unstamp(v.reference_time, receipt.at);
        let (verification, mut problems, signatures) = (v.verification, v.problems, v.signatures);
        let document = main_document(&envelope);
        // D7: the document inside as received (the register's file).
        let received_sha256 = match document {
            Some(pdf) => self.stored_step(
                &mut run,
                "received-document",
                "received-document-stored",
                pdf,
                &r.organisation_id,
            )?,
            None => envelope_sha256.clone(),
        };
        let sender_label = match &header.from.organ_name {
            Some(name) => format!("{name} ({sender})"),
            None => sender.to_string(),
        };
        let refusal = (!problems.is_empty()).then(|| reasons(&problems));
        let entry = self
            .registered_step(
                &mut run,
                "register",
                "numbered",
                reg::RegisterDocumentRequest {
                    organisation_id: r.organisation_id.clone(),
                    direction: reg::Direction::Incoming as i32,
                    document_type: r.document_type.clone(),
                    number_and_symbol: number_and_symbol.clone(),
                    sha256: received_sha256.clone(),
                    counterparty: sender_label,
                    refused: refusal.is_some(),
                    reason: refusal.clone().unwrap_or_default(),
                    at: Some(stamp(at)),
                    change: Some(reg::Change {
                        actor: caller.name.clone(),
                        reason: if refusal.is_some() {
                            "W3, N6: incoming envelope refused".into()
                        } else {
                            "W3, N6: incoming envelope registered".into()
                        },
                    }),
                    signatures: signatures.clone(),
                },
            )
            .await?;
        // W4: the envelope and the 01 in the document's history.
        self.history_step(
            &mut run,
            "history-envelope",
            caller,
            &entry.id,
            &r.organisation_id,
            sender,
            reg::StatusDirection::Received,
            "",
            "",
            &envelope_sha256,
            "",
            at,
        )
        .await?;
        self.history_step(
            &mut run,
            "history-01",
            caller,
            &entry.id,
            &r.organisation_id,
            sender,
            reg::StatusDirection::Sent,
            StatusCode::Arrived.as_str(),
            "",
            &statuses[0].sha256,
            "",
            at,
        )
        .await?;
        let mut answer = dpb::ReceiveEnvelopeResponse {
            sender_code: sender.to_string(),
            sender_name: header.from.organ_name.clone().unwrap_or_default(),
            number_and_symbol,
            verification,
            signatures,
            envelope_sha256,
            register_entry_id: entry.id.clone(),
            register_year: entry.year,
            reference_time: Some(stamp(at)),
            claimed_received_at: receipt.claimed.map(stamp),
            ..Default::default()
        };
        let mut stamped = Vec::new();
        let (code, description) = match (refusal, document) {
            (None, Some(pdf)) => {
                // W3, D6: numbered, then stamped.
                let (pdf, _) = self
                    .stamp_step(
                        &mut run,
                        caller,
                        Stamp {
                            seal_key: &r.seal_key,
                            custodian_person_id: &r.custodian_person_id,
                            organisation_id: &r.organisation_id,
                            document_type: &r.document_type,
                            number: entry.number,
                        },
                        pdf.to_vec(),
                        now,
                    )
                    .await?;
                let sha256 =
                    self.stored_step(&mut run, "store", "stored", &pdf, &r.organisation_id)?;
                answer.incoming_number = entry.number;
                answer.sha256 = sha256;
                stamped = pdf;
                (
                    StatusCode::Accepted,
                    format!("Số đến {}/{}", entry.number, entry.year),
                )
            }
            (reasons, _) => {
                // W3, N5: refused, every reason back to the sender.
                let reasons = reasons_or_default(reasons);
                problems.sort_by(|a, b| a.field_name.cmp(&b.field_name));
                answer.problems = problems;
                (StatusCode::Refused, reasons)
            }
        };
        answer.accepted = code == StatusCode::Accepted;
        let last = status_message(&us, about, code, Some(description.clone()), at);
        let signed = self
            .status_step(&mut run, "status-final", caller, &seal, sender, &last, now)
            .await?;
        self.history_step(
            &mut run,
            "history-final",
            caller,
            &entry.id,
            &r.organisation_id,
            sender,
            reg::StatusDirection::Sent,
            code.as_str(),
            &description,
            &signed.sha256,
            &answer.sha256,
            at,
        )
        .await?;
        statuses.push(signed);
        answer.statuses = statuses;
        // N3: what was checked, kept with the envelope and the document before the answer.
        answer.evidence = Some(
            self.evidence_step(
                &mut run,
                caller,
                dpb::VerificationEvidence {
                    received_sha256: answer.envelope_sha256.clone(),
                    document_sha256: received_sha256.clone(),
                    sha256: answer.sha256.clone(),
                    organisation_id: r.organisation_id.clone(),
                    reference_time: Some(stamp(at)),
                    accepted: answer.accepted,
                    problems: answer.problems.clone(),
                    signatures: answer.signatures.clone(),
                    report: answer
                        .verification
                        .clone()
                        .map(dpb::verification_evidence::Report::Edxml),
                    ..Default::default()
                },
                now,
            )
            .await?,
        );
        let mut journaled = answer.clone();
        for s in &mut journaled.statuses {
            s.xml.clear();
        }
        self.finish(&mut run, &journaled)?;
        answer.pdf = stamped;
        Ok(answer)
    }

    /// N6, V5, W3, N5: the envelope's signature, its addressee and the document inside.
    async fn judge_envelope(
        &self,
        r: &dpb::ReceiveEnvelopeRequest,
        envelope: &Envelope,
        us: &Party,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Verdict> {
        let sender = envelope.header.from.organ_id.to_string();
        let mut problems = Vec::new();
        let mut signatures = Vec::new();
        // N5 art. 21.2: a misaddressed document goes back.
        if !envelope.header.to.iter().any(|o| o.organ_id == us.code) {
            problems.push(problem(
                "",
                "N5",
                format!(
                    "the envelope is addressed to {}, not to this organisation ({})",
                    envelope
                        .header
                        .to
                        .iter()
                        .map(|o| o.organ_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    us.code
                ),
            ));
        }
        let report = match self.verify_edxml(&r.envelope, at, now).await {
            Ok(report) => report,
            Err(e) => {
                problems.push(problem(
                    ENVELOPE_FIELD,
                    "N6",
                    format!("the envelope cannot be verified: {e}"),
                ));
                return Ok(Verdict {
                    verification: None,
                    problems,
                    signatures,
                });
            }
        };
        // N6: the sending organisation's signature over the envelope.
        match &report.signature {
            None => problems.push(problem(
                ENVELOPE_FIELD,
                "N6",
                format!(
                    "the envelope carries no verifiable XML signature: {}",
                    report.warnings.join("; ")
                ),
            )),
            Some(sig) if sig.indication != Indication::TotalPassed => {
                let message = format!(
                    "{:?}{}: {}",
                    sig.indication,
                    sig.sub_indication
                        .map(|s| format!("/{s:?}"))
                        .unwrap_or_default(),
                    sig.message
                );
                signatures.push(super::super::incoming::refused_outcome(
                    ENVELOPE_FIELD,
                    sig.path.first(),
                    "V1",
                    &message,
                ));
                problems.push(problem(ENVELOPE_FIELD, "V1", message));
            }
            Some(sig) => match sig.path.first() {
                Some(leaf) => {
                    let at = sig.reference_time.time.min(at);
                    let judged = self
                        .signer_authority(ENVELOPE_FIELD, leaf, &r.document_type, &sender, at)
                        .await?;
                    if judged.outcome.outcome == reg::AuthorityOutcome::Refused as i32 {
                        problems.push(problem(
                            ENVELOPE_FIELD,
                            &judged.outcome.rule,
                            judged.outcome.message.clone(),
                        ));
                    }
                    signatures.push(judged.outcome);
                }
                None => problems.push(problem(
                    ENVELOPE_FIELD,
                    "V1",
                    "no signer certificate".into(),
                )),
            },
        }
        self.judge_attachments(r, &report, &sender, at, &mut problems, &mut signatures)
            .await?;
        Ok(Verdict {
            verification: Some(kyso_validation::convert::edxml_to_pb(&report)),
            problems,
            signatures,
        })
    }

    /// W3 for the document inside (the first PDF, judged as ReceiveIncoming judges one) and
    /// V1 for every other attachment that carries signatures.
    async fn judge_attachments(
        &self,
        r: &dpb::ReceiveEnvelopeRequest,
        report: &EdxmlReport,
        sender: &str,
        at: OffsetDateTime,
        problems: &mut Vec<dpb::Problem>,
        signatures: &mut Vec<reg::SignatureAuthority>,
    ) -> Result<()> {
        let mut main = true;
        for a in &report.attachments {
            if let Some(e) = &a.error {
                problems.push(problem(&a.name, "V1", format!("cannot be read: {e}")));
                continue;
            }
            match (&a.pdf, &a.cms) {
                (Some(pdf), _) if main => {
                    main = false;
                    let (p, s) = self.judge(pdf, &r.document_type, sender, at).await?;
                    problems.extend(p);
                    signatures.extend(s);
                }
                (Some(pdf), _)
                    if !pdf.signatures.is_empty() && pdf.indication != Indication::TotalPassed =>
                {
                    problems.push(problem(
                        &a.name,
                        "V1",
                        format!("attachment signatures: {:?}", pdf.indication),
                    ));
                }
                (_, Some(cms)) if cms.indication != Indication::TotalPassed => {
                    problems.push(problem(
                        &a.name,
                        "V1",
                        format!("attachment signatures: {:?}", cms.indication),
                    ));
                }
                _ => {}
            }
        }
        if main {
            problems.push(problem(
                "",
                "N6",
                "the envelope carries no PDF document".into(),
            ));
        }
        Ok(())
    }
}

/// The first PDF attachment: the document (the others are its appendices).
fn main_document(envelope: &Envelope) -> Option<&[u8]> {
    envelope
        .attachments
        .iter()
        .find(|a| a.sniff() == kyso_edxml::attachment::Sniffed::Pdf)
        .map(|a| a.data.as_slice())
}

fn reasons_or_default(reasons: Option<String>) -> String {
    reasons.unwrap_or_else(|| "N6: the envelope carries no PDF document".into())
}

impl Answer for dpb::ReceiveEnvelopeResponse {
    const OPERATION: &'static str = "ReceiveEnvelope";
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        if self.accepted {
            self.pdf = documents.original(&self.sha256)?;
        }
        for s in &mut self.statuses {
            s.xml = documents.original(&s.sha256)?;
        }
        Ok(())
    }
}

//! W3 and D6: an incoming document verified, judged, kept, numbered and stamped; each step
//! journaled for a retry (see `retry`), the verdict included.

use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_validation::pdf::{PdfLimits, PdfReport, PdfVerifyOptions};
use kyso_validation::report::Indication;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Result};
use crate::journal::Run;

use super::receipt::{receipt_time, stamp, unstamp};
use super::retry::{Answer, Begun, request_sha256};
use super::{DocumentsService, OWN, problem, require, sign_pdf};

impl DocumentsService {
    pub(super) async fn receive_incoming(
        &self,
        caller: &Caller,
        mut r: dpb::ReceiveIncomingRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::ReceiveIncomingResponse> {
        require("organisation_id", &r.organisation_id)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        require("document_type", &r.document_type)?;
        if r.pdf.is_empty() {
            return Err(Error::InvalidField {
                field: "pdf",
                reason: "send the received PDF".into(),
            });
        }
        if !r.sender_code.trim().is_empty() {
            kyso_pki::orgcode::OrgCode::parse(&r.sender_code).map_err(|e| Error::InvalidField {
                field: "sender_code",
                reason: e.to_string(),
            })?;
        }
        // W5: the reference time is the service's clock, or the exchange system's own
        // within the bound; checked before anything is stored.
        let receipt = receipt_time(caller, r.received_at.as_ref(), now, self.receipt_bound)?;
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        // D7: the file as received is kept whatever the verdict: it is what the sender sent.
        let received_sha256 = self.stored_step(
            &mut run,
            "received",
            "received-stored",
            &r.pdf,
            &r.organisation_id,
        )?;
        // The verdict is journaled: a retry does not verify again (revocation answers and
        // the registry may have moved on) and so cannot reach another decision.
        // The reference time is journaled with it: a retry registers at the first one.
        let v: dpb::ReceiveIncomingResponse = self
            .verdict_step(&mut run, async {
                let (verification, problems, signatures) = self.verify(&r, receipt.at, now).await?;
                Ok(dpb::ReceiveIncomingResponse {
                    verification,
                    problems,
                    signatures,
                    reference_time: Some(stamp(receipt.at)),
                    ..Default::default()
                })
            })
            .await?;
        let received_at = unstamp(v.reference_time, receipt.at);
        let (verification, mut problems, signatures) = (v.verification, v.problems, v.signatures);
        let claimed_received_at = receipt.claimed.map(stamp);
        if !problems.is_empty() {
            let reason = reasons(&problems);
            self.register_incoming(
                caller,
                &mut run,
                &r,
                &received_sha256,
                Some(reason),
                (received_at, &signatures),
            )
            .await?;
            problems.sort_by(|a, b| a.field_name.cmp(&b.field_name));
            let mut answer = dpb::ReceiveIncomingResponse {
                accepted: false,
                received_sha256,
                problems,
                verification,
                signatures,
                reference_time: Some(stamp(received_at)),
                claimed_received_at,
                ..Default::default()
            };
            answer.evidence = Some(
                self.keep_evidence(&mut run, caller, &answer, &r, now)
                    .await?,
            );
            self.finish(&mut run, &answer)?;
            return Ok(answer);
        }
        // W3: the clerk gives the incoming number, then applies the received stamp (D6).
        // Journaled, the number taken is the one a retry stamps: never a second one.
        let entry = self
            .register_incoming(
                caller,
                &mut run,
                &r,
                &received_sha256,
                None,
                (received_at, &signatures),
            )
            .await?;
        let (stamped, stamp_receipt) = self
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
                std::mem::take(&mut r.pdf),
                now,
            )
            .await?;
        let sha256 = self.stored_step(&mut run, "store", "stored", &stamped, &r.organisation_id)?;
        let mut answer = dpb::ReceiveIncomingResponse {
            accepted: true,
            pdf: Vec::new(),
            sha256,
            received_sha256,
            incoming_number: entry.number,
            register_year: entry.year,
            problems: Vec::new(),
            verification,
            audit: Some(stamp_receipt),
            signatures,
            reference_time: Some(stamp(received_at)),
            claimed_received_at,
            evidence: None,
        };
        answer.evidence = Some(
            self.keep_evidence(&mut run, caller, &answer, &r, now)
                .await?,
        );
        self.finish(&mut run, &answer)?;
        answer.pdf = stamped;
        Ok(answer)
    }

    /// N3: the answer's verification kept with the files it is about, before the answer.
    async fn keep_evidence(
        &self,
        run: &mut Run,
        caller: &Caller,
        answer: &dpb::ReceiveIncomingResponse,
        r: &dpb::ReceiveIncomingRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::KeptEvidence> {
        let evidence = dpb::VerificationEvidence {
            received_sha256: answer.received_sha256.clone(),
            sha256: answer.sha256.clone(),
            organisation_id: r.organisation_id.clone(),
            reference_time: answer.reference_time,
            accepted: answer.accepted,
            problems: answer.problems.clone(),
            signatures: answer.signatures.clone(),
            report: answer
                .verification
                .clone()
                .map(dpb::verification_evidence::Report::Pdf),
            ..Default::default()
        };
        self.evidence_step(run, caller, evidence, now).await
    }

    /// Verifies the received file (W3, W5) and judges it: the verdict and the problems.
    async fn verify(
        &self,
        r: &dpb::ReceiveIncomingRequest,
        received_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(
        Option<kyso_proto::verifier::v1::VerifyPdfResponse>,
        Vec<dpb::Problem>,
        Vec<reg::SignatureAuthority>,
    )> {
        let options = PdfVerifyOptions {
            // W5: the trusted receipt time (receipt.rs) is the reference time.
            at: Some(received_at),
            policy: None,
            limits: PdfLimits::default(),
        };
        // Issue 15, item 8: a signer certificate the CMS does not carry comes from the
        // registry's book (certbook.rs); a lookup not answered is no verdict (UNAVAILABLE).
        let book = crate::certbook::RegistryBook::new(self.signer.registry().clone());
        let verified = self
            .signer
            .verifier()
            .verify_pdf_with(&r.pdf, &options, &book, now)
            .await;
        book.answered()?;
        let (report, problems, signatures) = match verified {
            Ok(report) => {
                let (problems, signatures) = self
                    .judge(&report, &r.document_type, r.sender_code.trim(), received_at)
                    .await?;
                (Some(report), problems, signatures)
            }
            Err(e) => (
                None,
                vec![problem(
                    "",
                    "V1",
                    format!("the file cannot be verified: {e}"),
                )],
                Vec::new(),
            ),
        };
        let verification = report.as_ref().map(kyso_validation::convert::pdf_to_pb);
        Ok((verification, problems, signatures))
    }

    /// W3: the incoming register entry, numbered, or refused with the reasons for the sender.
    async fn register_incoming(
        &self,
        caller: &Caller,
        run: &mut Run,
        r: &dpb::ReceiveIncomingRequest,
        received_sha256: &str,
        refusal: Option<String>,
        (at, signatures): (OffsetDateTime, &[reg::SignatureAuthority]),
    ) -> Result<reg::RegisterEntry> {
        let why = if refusal.is_some() {
            "W3: incoming document refused"
        } else {
            "W3: incoming document registered"
        };
        self.registered_step(
            run,
            "register",
            "numbered",
            reg::RegisterDocumentRequest {
                organisation_id: r.organisation_id.clone(),
                direction: reg::Direction::Incoming as i32,
                document_type: r.document_type.clone(),
                number_and_symbol: String::new(),
                sha256: received_sha256.to_owned(),
                counterparty: r.sender.clone(),
                refused: refusal.is_some(),
                reason: refusal.unwrap_or_default(),
                // W5: the trusted receipt time, never the caller's unchecked word.
                at: Some(stamp(at)),
                change: Some(reg::Change {
                    actor: caller.name.clone(),
                    reason: why.into(),
                }),
                signatures: signatures.to_vec(),
            },
        )
        .await
    }

    /// W3: what is wrong with a verified document, one problem per failed check, and the
    /// authority outcome of every signature. Every signature must pass (integrity, path,
    /// revocation, nothing changed after it, V1-V5); every signer the registry knows must
    /// have had authority at the time it signed (A3 for a person, a registered active
    /// certificate for an organisation, A4); a signer outside the registry is not checked
    /// (outside.rs). The organisation's signature must be there (D2, D3), after the
    /// personal one when there is one: judged when every signer is known here, since only
    /// the registry says which certificate is an organisation's.
    pub(super) async fn judge(
        &self,
        report: &PdfReport,
        document_type: &str,
        sender_code: &str,
        received_at: OffsetDateTime,
    ) -> Result<(Vec<dpb::Problem>, Vec<reg::SignatureAuthority>)> {
        let mut problems = Vec::new();
        let mut outcomes = Vec::new();
        if report.signatures.is_empty() {
            problems.push(problem(
                "",
                "W3",
                "the document carries no signature".into(),
            ));
            return Ok((problems, outcomes));
        }
        let mut organisation_signed = false;
        let mut personal_after_organisation = false;
        let mut outside = false;
        for sig in &report.signatures {
            let field = sig.field_name.as_str();
            let verdict = &sig.report;
            let leaf = verdict.path.first();
            if verdict.indication != Indication::TotalPassed {
                let message = format!(
                    "{:?}{}: {}",
                    verdict.indication,
                    verdict
                        .sub_indication
                        .map(|s| format!("/{s:?}"))
                        .unwrap_or_default(),
                    verdict.message
                );
                outcomes.push(refused_outcome(field, leaf, "V1", &message));
                problems.push(problem(field, "V1", message));
                continue;
            }
            let Some(leaf) = leaf else {
                let message = "no signer certificate".to_owned();
                outcomes.push(refused_outcome(field, None, "V1", &message));
                problems.push(problem(field, "V1", message));
                continue;
            };
            // The time the verdict was reached for: the trusted receipt time (W5).
            let at = verdict.reference_time.time.min(received_at);
            let judged = self
                .signer_authority(field, leaf, document_type, sender_code, at)
                .await?;
            match reg::AuthorityOutcome::try_from(judged.outcome.outcome) {
                Ok(reg::AuthorityOutcome::Allowed) => {
                    if judged.personal {
                        personal_after_organisation |= organisation_signed;
                    } else {
                        organisation_signed = true;
                    }
                }
                Ok(reg::AuthorityOutcome::Outside) => outside = true,
                _ => problems.push(problem(
                    field,
                    &judged.outcome.rule,
                    judged.outcome.message.clone(),
                )),
            }
            outcomes.push(judged.outcome);
        }
        if problems.is_empty() && !outside {
            if !organisation_signed {
                problems.push(problem(
                    "",
                    "D2",
                    "no valid signature of the sending organisation (the seal)".into(),
                ));
            } else if personal_after_organisation {
                problems.push(problem(
                    "",
                    "D2",
                    "the personal signature comes after the organisation's".into(),
                ));
            }
        }
        Ok((problems, outcomes))
    }
}

/// Who stamps an accepted incoming document, with which number (W3, D6).
pub(super) struct Stamp<'a> {
    pub seal_key: &'a str,
    pub custodian_person_id: &'a str,
    pub organisation_id: &'a str,
    pub document_type: &'a str,
    pub number: i64,
}

impl DocumentsService {
    /// W3, D6: the RECEIVED stamp with the incoming number, by the organisation's seal
    /// (journaled step "stamp"; SignPdf's path with the origin `ReceiveIncoming`).
    pub(super) async fn stamp_step(
        &self,
        run: &mut Run,
        caller: &Caller,
        s: Stamp<'_>,
        pdf: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, pb::AuditReceipt)> {
        self.signed_step(
            run,
            "stamp",
            "stamp",
            caller,
            pb::SignPdfRequest {
                incoming_number: s.number.to_string(),
                ..sign_pdf(
                    s.seal_key,
                    pb::DocumentInfo {
                        document_type: s.document_type.to_owned(),
                        classification: pb::Classification::None as i32,
                        ..Default::default()
                    },
                    pb::Profile::Received,
                    OWN,
                    s.custodian_person_id,
                    s.organisation_id,
                    pdf,
                )
            },
            now,
        )
        .await
    }
}

/// Every problem on one line each, with its rule: the refusal's reason for the sender and
/// the register (W3, N5 art. 21.2).
pub(super) fn reasons(problems: &[dpb::Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.field_name.is_empty() {
                format!("{}: {}", p.rule, p.message)
            } else {
                format!("{} {}: {}", p.field_name, p.rule, p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A signature refused before its authority was asked (V1).
pub(super) fn refused_outcome(
    field: &str,
    leaf: Option<&kyso_validation::report::PathEntry>,
    rule: &str,
    message: &str,
) -> reg::SignatureAuthority {
    reg::SignatureAuthority {
        field_name: field.to_owned(),
        outcome: reg::AuthorityOutcome::Refused as i32,
        rule: rule.to_owned(),
        message: message.to_owned(),
        subject: leaf.map(|l| l.subject.clone()).unwrap_or_default(),
        fingerprint: leaf
            .map(|l| l.fingerprint_sha256.clone())
            .unwrap_or_default(),
        ..Default::default()
    }
}

impl Answer for dpb::ReceiveIncomingResponse {
    const OPERATION: &'static str = "ReceiveIncoming";
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        if self.accepted {
            self.pdf = documents.original(&self.sha256)?;
        }
        Ok(())
    }
}

//! W3 and D6: an incoming document verified, judged, kept, numbered and stamped; each step
//! journaled for a retry (see `retry`), the verdict included.

use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_validation::pdf::{PdfLimits, PdfReport, PdfVerifyOptions};
use kyso_validation::report::Indication;
use prost::Message;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Result};
use crate::journal::{Run, Step};

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
        let received_at = match r.received_at {
            Some(t) => {
                OffsetDateTime::from_unix_timestamp(t.seconds).map_err(|_| Error::InvalidField {
                    field: "received_at",
                    reason: "impossible date".into(),
                })?
            }
            None => now,
        };
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
        let (verification, mut problems) = match run.done("verify") {
            Some(s) => {
                let v = hex::decode(&s.data)
                    .ok()
                    .and_then(|b| dpb::ReceiveIncomingResponse::decode(b.as_slice()).ok())
                    .ok_or_else(|| Error::Storage {
                        reason: "the journaled verdict does not decode".into(),
                    })?;
                (v.verification, v.problems)
            }
            None => {
                let (verification, problems) = self.verify(&r, received_at, now).await?;
                let v = dpb::ReceiveIncomingResponse {
                    verification: verification.clone(),
                    problems: problems.clone(),
                    ..Default::default()
                };
                run.save(
                    "verify",
                    Step {
                        done: true,
                        data: hex::encode(v.encode_to_vec()),
                        ..Step::default()
                    },
                )
                .map_err(|e| self.journal_error(e))?;
                crate::failpoint::hit("verified");
                (verification, problems)
            }
        };
        if !problems.is_empty() {
            let reason = problems
                .iter()
                .map(|p| {
                    if p.field_name.is_empty() {
                        format!("{}: {}", p.rule, p.message)
                    } else {
                        format!("{} {}: {}", p.field_name, p.rule, p.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            self.register_incoming(caller, &mut run, &r, &received_sha256, Some(reason))
                .await?;
            problems.sort_by(|a, b| a.field_name.cmp(&b.field_name));
            let answer = dpb::ReceiveIncomingResponse {
                accepted: false,
                received_sha256,
                problems,
                verification,
                ..Default::default()
            };
            self.finish(&mut run, &answer)?;
            return Ok(answer);
        }
        // W3: the clerk gives the incoming number, then applies the received stamp (D6).
        // Journaled, the number taken is the one a retry stamps: never a second one.
        let entry = self
            .register_incoming(caller, &mut run, &r, &received_sha256, None)
            .await?;
        let (stamped, receipt) = self
            .signed_step(
                &mut run,
                "stamp",
                "stamp",
                caller,
                pb::SignPdfRequest {
                    incoming_number: entry.number.to_string(),
                    ..sign_pdf(
                        &r.seal_key,
                        pb::DocumentInfo {
                            document_type: r.document_type.clone(),
                            classification: pb::Classification::None as i32,
                            ..Default::default()
                        },
                        pb::Profile::Received,
                        OWN,
                        &r.custodian_person_id,
                        &r.organisation_id,
                        std::mem::take(&mut r.pdf),
                    )
                },
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
            audit: Some(receipt),
        };
        self.finish(&mut run, &answer)?;
        answer.pdf = stamped;
        Ok(answer)
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
    )> {
        let options = PdfVerifyOptions {
            // W5: the exchange system's time of receipt is the trusted reference time.
            at: Some(received_at),
            policy: None,
            limits: PdfLimits::default(),
        };
        let (report, problems) = match self
            .signer
            .verifier()
            .verify_pdf(&r.pdf, &options, now)
            .await
        {
            Ok(report) => {
                let problems = self.judge(&report, &r.document_type, received_at).await?;
                (Some(report), problems)
            }
            Err(e) => (
                None,
                vec![problem(
                    "",
                    "V1",
                    format!("the file cannot be verified: {e}"),
                )],
            ),
        };
        let verification = report.as_ref().map(kyso_validation::convert::pdf_to_pb);
        Ok((verification, problems))
    }

    /// W3: the incoming register entry, numbered, or refused with the reasons for the sender.
    async fn register_incoming(
        &self,
        caller: &Caller,
        run: &mut Run,
        r: &dpb::ReceiveIncomingRequest,
        received_sha256: &str,
        refusal: Option<String>,
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
                at: r.received_at,
                change: Some(reg::Change {
                    actor: caller.name.clone(),
                    reason: why.into(),
                }),
            },
        )
        .await
    }

    /// W3: what is wrong with a verified document, one problem per failed check. Every
    /// signature must pass (integrity, path, revocation, nothing changed after it, V1-V5);
    /// the organisation's signature must be there (D2, D3), after the personal one when
    /// there is one; every signer must be known to the registry with authority at the time
    /// it signed (A3 for a person, a registered active certificate for an organisation).
    pub(super) async fn judge(
        &self,
        report: &PdfReport,
        document_type: &str,
        received_at: OffsetDateTime,
    ) -> Result<Vec<dpb::Problem>> {
        let mut problems = Vec::new();
        if report.signatures.is_empty() {
            problems.push(problem(
                "",
                "W3",
                "the document carries no signature".into(),
            ));
            return Ok(problems);
        }
        let mut organisation_signed = false;
        let mut personal_after_organisation = false;
        for sig in &report.signatures {
            let field = sig.field_name.as_str();
            let verdict = &sig.report;
            if verdict.indication != Indication::TotalPassed {
                problems.push(problem(
                    field,
                    "V1",
                    format!(
                        "{:?}{}: {}",
                        verdict.indication,
                        verdict
                            .sub_indication
                            .map(|s| format!("/{s:?}"))
                            .unwrap_or_default(),
                        verdict.message
                    ),
                ));
                continue;
            }
            let Some(leaf) = verdict.path.first() else {
                problems.push(problem(field, "V1", "no signer certificate".into()));
                continue;
            };
            // The time the verdict was reached for: the receipt time given as trusted (W5).
            let at = verdict.reference_time.time.min(received_at);
            let authority = self
                .signer
                .registry()
                .check_authority(&leaf.fingerprint_sha256, document_type, at)
                .await?;
            if !authority.authorised {
                problems.push(problem(
                    field,
                    if authority.personal { "A3" } else { "A4" },
                    format!(
                        "{}: {}",
                        if authority.holder_name.is_empty() {
                            leaf.subject.as_str()
                        } else {
                            authority.holder_name.as_str()
                        },
                        authority.reasons.join("; ")
                    ),
                ));
                continue;
            }
            if authority.personal {
                personal_after_organisation |= organisation_signed;
            } else {
                organisation_signed = true;
            }
        }
        if problems.is_empty() {
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
        Ok(problems)
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

//! The document flow (`kyso.documents.v1`): outgoing (W1), incoming (W3) and attachments
//! (D5) on top of the signer's own `SignPdf` path, the PDF verifier and the registry.
//!
//! Every signature goes through the same checks as a direct `SignPdf` call (caller,
//! A1-A7, W2, N1, HSM, audit record): this service only sequences them, keeps the
//! originals (D7) and fills the registers (W1, W3, R2). It runs in the signer process
//! because that is where the keys, the registry client and the verifier already are.

use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_validation::pdf::{PdfLimits, PdfReport, PdfVerifyOptions};
use kyso_validation::report::Indication;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::service::SignerService;
use crate::store::DocumentStore;

/// The `Documents` gRPC service.
#[derive(Debug, Clone)]
pub struct DocumentsService {
    signer: SignerService,
    store: DocumentStore,
}

impl DocumentsService {
    /// The flow over `signer`, keeping originals in `store`.
    pub fn new(signer: SignerService, store: DocumentStore) -> Self {
        Self { signer, store }
    }

    fn put(&self, pdf: &[u8]) -> Result<String> {
        self.store.put(pdf).map_err(|e| Error::Storage {
            reason: e.to_string(),
        })
    }

    async fn sign(
        &self,
        caller: &crate::config::Caller,
        req: pb::SignPdfRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignPdfResponse> {
        self.signer.sign_pdf_as(caller, req, now).await
    }

    async fn issue_outgoing(
        &self,
        caller: &crate::config::Caller,
        r: dpb::IssueOutgoingRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::IssueOutgoingResponse> {
        let document = r.document.clone().ok_or(Error::InvalidField {
            field: "document",
            reason: "required: type, number and symbol, issue date".into(),
        })?;
        require("organisation_id", &r.organisation_id)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        require("document.number_and_symbol", &document.number_and_symbol)?;
        let mut pdf = r.pdf;
        let mut audit = Vec::new();
        // W1: the competent person signs first (P1), unless the PDF already carries it.
        if !r.approval_key.is_empty() {
            require("approver_person_id", &r.approver_person_id)?;
            let signed = self
                .sign(
                    caller,
                    pb::SignPdfRequest {
                        placement: r.approval_placement.clone(),
                        image: r.approval_image.clone(),
                        // A1: the approver's consent, bound to the SHA-256 of the PDF as
                        // submitted (what the approval step signs).
                        activation_token: r.approval_activation_token.clone(),
                        ..sign_pdf(
                            &r.approval_key,
                            document.clone(),
                            pb::Profile::Approval,
                            r.approval_mode,
                            &r.approver_person_id,
                            &r.organisation_id,
                            pdf,
                        )
                    },
                    now,
                )
                .await?;
            audit.extend(signed.audit);
            pdf = signed.pdf;
        }
        // Then the custodian seals (P2, A5), which the signer allows only over a valid
        // approval by a person with authority (A6) and on the issue date (W2).
        let sealed = self
            .sign(
                caller,
                pb::SignPdfRequest {
                    image: r.seal_image.clone(),
                    ..sign_pdf(
                        &r.seal_key,
                        document.clone(),
                        pb::Profile::Issue,
                        OWN,
                        &r.custodian_person_id,
                        &r.organisation_id,
                        pdf,
                    )
                },
                now,
            )
            .await?;
        audit.extend(sealed.audit);
        let sha256 = self.put(&sealed.pdf)?;
        let entry = self
            .signer
            .registry()
            .register_document(reg::RegisterDocumentRequest {
                organisation_id: r.organisation_id.clone(),
                direction: reg::Direction::Outgoing as i32,
                document_type: document.document_type.clone(),
                number_and_symbol: document.number_and_symbol.clone(),
                sha256: sha256.clone(),
                counterparty: r.recipients.clone(),
                refused: false,
                reason: String::new(),
                at: r.sent_at,
                change: Some(reg::Change {
                    actor: caller.name.clone(),
                    reason: "W1: outgoing document issued".into(),
                }),
            })
            .await?;
        Ok(dpb::IssueOutgoingResponse {
            pdf: sealed.pdf,
            sha256,
            register_number: entry.number,
            register_year: entry.year,
            audit,
        })
    }

    async fn receive_incoming(
        &self,
        caller: &crate::config::Caller,
        r: dpb::ReceiveIncomingRequest,
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
        // D7: the file as received is kept whatever the verdict: it is what the sender sent.
        let received_sha256 = self.put(&r.pdf)?;
        let options = PdfVerifyOptions {
            // W5: the exchange system's time of receipt is the trusted reference time.
            at: Some(received_at),
            policy: None,
            limits: PdfLimits::default(),
        };
        let (report, mut problems) = match self
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
            self.register_incoming(caller, &r, &received_sha256, Some(reason))
                .await?;
            problems.sort_by(|a, b| a.field_name.cmp(&b.field_name));
            return Ok(dpb::ReceiveIncomingResponse {
                accepted: false,
                received_sha256,
                problems,
                verification,
                ..Default::default()
            });
        }
        // W3: the clerk gives the incoming number, then applies the received stamp (D6).
        let entry = self
            .register_incoming(caller, &r, &received_sha256, None)
            .await?;
        let stamped = self
            .sign(
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
                        r.pdf,
                    )
                },
                now,
            )
            .await?;
        let sha256 = self.put(&stamped.pdf)?;
        Ok(dpb::ReceiveIncomingResponse {
            accepted: true,
            pdf: stamped.pdf,
            sha256,
            received_sha256,
            incoming_number: entry.number,
            register_year: entry.year,
            problems: Vec::new(),
            verification,
            audit: stamped.audit,
        })
    }

    /// W3: the incoming register entry, numbered, or refused with the reasons for the sender.
    async fn register_incoming(
        &self,
        caller: &crate::config::Caller,
        r: &dpb::ReceiveIncomingRequest,
        received_sha256: &str,
        refusal: Option<String>,
    ) -> Result<reg::RegisterEntry> {
        let why = if refusal.is_some() {
            "W3: incoming document refused"
        } else {
            "W3: incoming document registered"
        };
        self.signer
            .registry()
            .register_document(reg::RegisterDocumentRequest {
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
            })
            .await
    }

    /// W3: what is wrong with a verified document, one problem per failed check. Every
    /// signature must pass (integrity, path, revocation, nothing changed after it, V1-V5);
    /// the organisation's signature must be there (D2, D3), after the personal one when
    /// there is one; every signer must be known to the registry with authority at the time
    /// it signed (A3 for a person, a registered active certificate for an organisation).
    async fn judge(
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

    async fn sign_attachments(
        &self,
        caller: &crate::config::Caller,
        r: dpb::SignAttachmentsRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::SignAttachmentsResponse> {
        let document = r.document.clone().ok_or(Error::InvalidField {
            field: "document",
            reason: "required: the main document's type and number and symbol (P4)".into(),
        })?;
        require("document.number_and_symbol", &document.number_and_symbol)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        if r.attachments.is_empty() {
            return Err(Error::InvalidField {
                field: "attachments",
                reason: "send at least one attachment".into(),
            });
        }
        let mut out = Vec::with_capacity(r.attachments.len());
        for a in r.attachments {
            let signed = self
                .sign(
                    caller,
                    sign_pdf(
                        &r.seal_key,
                        document.clone(),
                        pb::Profile::Appendix,
                        OWN,
                        &r.custodian_person_id,
                        &r.organisation_id,
                        a.pdf,
                    ),
                    now,
                )
                .await?;
            let sha256 = self.put(&signed.pdf)?;
            out.push(dpb::SignedAttachment {
                name: a.name,
                pdf: signed.pdf,
                sha256,
                audit: signed.audit,
            });
        }
        Ok(dpb::SignAttachmentsResponse { attachments: out })
    }
}

fn require(field: &'static str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::InvalidField {
            field,
            reason: "required".into(),
        });
    }
    Ok(())
}

fn problem(field: &str, rule: &str, message: String) -> dpb::Problem {
    dpb::Problem {
        field_name: field.to_owned(),
        rule: rule.to_owned(),
        message,
    }
}

/// Identifies the caller, takes "now" once, and maps the outcome to a status in one place.
async fn answer<Req, Resp, F, Fut>(
    svc: &DocumentsService,
    req: Request<Req>,
    step: F,
) -> std::result::Result<Response<Resp>, Status>
where
    F: FnOnce(crate::config::Caller, Req, OffsetDateTime) -> Fut,
    Fut: Future<Output = Result<Resp>>,
{
    let caller = svc.signer.identify(&req)?;
    let now = svc.signer.now();
    step(caller, req.into_inner(), now)
        .await
        .map(Response::new)
        .map_err(Status::from)
}

#[tonic::async_trait]
impl dpb::documents_server::Documents for DocumentsService {
    async fn issue_outgoing(
        &self,
        req: Request<dpb::IssueOutgoingRequest>,
    ) -> std::result::Result<Response<dpb::IssueOutgoingResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::issue_outgoing(self, &c, r, now).await
        })
        .await
    }

    async fn receive_incoming(
        &self,
        req: Request<dpb::ReceiveIncomingRequest>,
    ) -> std::result::Result<Response<dpb::ReceiveIncomingResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::receive_incoming(self, &c, r, now).await
        })
        .await
    }

    async fn sign_attachments(
        &self,
        req: Request<dpb::SignAttachmentsRequest>,
    ) -> std::result::Result<Response<dpb::SignAttachmentsResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::sign_attachments(self, &c, r, now).await
        })
        .await
    }

    async fn get_document(
        &self,
        req: Request<dpb::GetDocumentRequest>,
    ) -> std::result::Result<Response<dpb::GetDocumentResponse>, Status> {
        self.signer.identify(&req)?;
        let pdf = self.store.get(&req.get_ref().sha256).map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => Status::not_found(e.to_string()),
            crate::store::StoreError::BadHash(_) => Status::invalid_argument(e.to_string()),
            _ => Status::from(Error::Storage {
                reason: e.to_string(),
            }),
        })?;
        Ok(Response::new(dpb::GetDocumentResponse { pdf }))
    }
}

/// The signing mode "own" (no KT./TL./TUQ.): the seal's, and an approval's when none is given.
const OWN: i32 = pb::SigningMode::Own as i32;

/// One step of a flow as a `SignPdf` request: which key, over which document, in which legal
/// form, by whom, for which organisation. Every step goes through the same `SignPdf` path.
fn sign_pdf(
    key: &str,
    document: pb::DocumentInfo,
    profile: pb::Profile,
    mode: i32,
    acting_person_id: &str,
    organisation_id: &str,
    pdf: Vec<u8>,
) -> pb::SignPdfRequest {
    pb::SignPdfRequest {
        key: key.to_owned(),
        context: Some(pb::SigningContext {
            document: Some(document),
            profile: profile as i32,
            mode: if mode == 0 { OWN } else { mode },
            acting_person_id: acting_person_id.to_owned(),
            organisation_id: organisation_id.to_owned(),
        }),
        pdf,
        ..Default::default()
    }
}

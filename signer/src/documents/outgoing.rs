//! W1 (an outgoing document: approval, seal, store, register) and D5 (attachments signed as
//! appendices), each step journaled for a retry (see `retry`).

use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Result};

use super::retry::{Answer, Begun, request_sha256};
use super::{DocumentsService, OWN, require, sign_pdf};

impl DocumentsService {
    pub(super) async fn issue_outgoing(
        &self,
        caller: &Caller,
        mut r: dpb::IssueOutgoingRequest,
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
        if !r.approval_key.is_empty() {
            require("approver_person_id", &r.approver_person_id)?;
        }
        let key = std::mem::take(&mut r.idempotency_key);
        // The approver's activation token is single-use: a retry that must sign again brings
        // a new one, and is still the same request.
        let token = std::mem::take(&mut r.approval_activation_token);
        let hash = request_sha256(&r);
        r.approval_activation_token = token;
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        let mut pdf = r.pdf;
        let mut audit = Vec::new();
        // W1: the competent person signs first (P1), unless the PDF already carries it.
        if !r.approval_key.is_empty() {
            let (signed, receipt) = self
                .signed_step(
                    &mut run,
                    "approval",
                    "approval",
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
            audit.push(receipt);
            pdf = signed;
        }
        // Then the custodian seals (P2, A5), which the signer allows only over a valid
        // approval by a person with authority (A6) and on the issue date (W2).
        let (sealed, receipt) = self
            .signed_step(
                &mut run,
                "seal",
                "seal",
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
        audit.push(receipt);
        let sha256 = self.stored_step(&mut run, "store", "stored", &sealed, &r.organisation_id)?;
        let entry = self
            .registered_step(
                &mut run,
                "register",
                "registered",
                reg::RegisterDocumentRequest {
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
                    signatures: Vec::new(),
                },
            )
            .await?;
        let mut answer = dpb::IssueOutgoingResponse {
            pdf: Vec::new(),
            sha256,
            register_number: entry.number,
            register_year: entry.year,
            audit,
        };
        self.finish(&mut run, &answer)?;
        answer.pdf = sealed;
        Ok(answer)
    }

    pub(super) async fn sign_attachments(
        &self,
        caller: &Caller,
        mut r: dpb::SignAttachmentsRequest,
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
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        let mut out = Vec::with_capacity(r.attachments.len());
        let mut pdfs = Vec::with_capacity(r.attachments.len());
        for (i, a) in r.attachments.into_iter().enumerate() {
            let (signed, receipt) = self
                .signed_step(
                    &mut run,
                    &format!("appendix-{i}"),
                    "appendix",
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
            let sha256 = self.stored_step(
                &mut run,
                &format!("store-{i}"),
                "stored",
                &signed,
                &r.organisation_id,
            )?;
            out.push(dpb::SignedAttachment {
                name: a.name,
                pdf: Vec::new(),
                sha256,
                audit: Some(receipt),
            });
            pdfs.push(signed);
        }
        let mut answer = dpb::SignAttachmentsResponse { attachments: out };
        self.finish(&mut run, &answer)?;
        for (s, pdf) in answer.attachments.iter_mut().zip(pdfs) {
            s.pdf = pdf;
        }
        Ok(answer)
    }
}

impl Answer for dpb::IssueOutgoingResponse {
    const OPERATION: &'static str = "IssueOutgoing";
    /// Answered before: the same answer, the original read back from the store.
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        self.pdf = documents.original(&self.sha256)?;
        Ok(())
    }
}

impl Answer for dpb::SignAttachmentsResponse {
    const OPERATION: &'static str = "SignAttachments";
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        for s in &mut self.attachments {
            s.pdf = documents.original(&s.sha256)?;
        }
        Ok(())
    }
}

//! The document flow (`kyso.documents.v1`): outgoing (W1), incoming (W3), attachments (D5)
//! and the exchange axis (`exchange`: edXML envelopes received and answered, status
//! messages, take-back; N6, W4) on top of the signer's own `SignPdf` and XML seal paths,
//! the verifier and the registry.
//!
//! Every signature goes through the same checks as a direct `SignPdf` call (caller,
//! A1-A7, W2, N1, HSM, audit record): this service only sequences them, keeps the
//! originals (D7) and fills the registers (W1, W3, R2). It runs in the signer process
//! because that is where the keys, the registry client and the verifier already are.

//!
//! With an idempotency key each request is journaled step by step (`retry`, `crate::journal`)
//! and a retry resumes it; without one it runs as a whole and is not safe to retry.

mod archive;
mod evidence;
mod exchange;
mod incoming;
mod outgoing;
mod outside;
mod receipt;
mod retry;

use kyso_proto::documents::v1 as dpb;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::error::{Error, Refusal, Result};
use crate::journal::Journals;
use crate::readiness::Storage;
use crate::service::SignerService;
use crate::store::DocumentStore;

/// The `Documents` gRPC service.
#[derive(Debug, Clone)]
pub struct DocumentsService {
    signer: SignerService,
    store: DocumentStore,
    journals: Journals,
    storage: Storage,
    /// W5: how far an exchange caller's receipt time may be from the clock.
    receipt_bound: time::Duration,
    /// Archive care (`ExtendStored`): one extension at a time.
    archive_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl DocumentsService {
    /// The flow over `signer`, keeping originals in `store`, the requests' journals in
    /// `journals`, and reporting write failures to `storage` (readiness); an exchange
    /// caller's receipt time is trusted within `receipt_bound` of the clock (W5).
    pub fn new(
        signer: SignerService,
        store: DocumentStore,
        journals: Journals,
        storage: Storage,
        receipt_bound: time::Duration,
    ) -> Self {
        Self {
            signer,
            store,
            journals,
            storage,
            receipt_bound,
            archive_lock: Default::default(),
        }
    }

    async fn sign(
        &self,
        caller: &crate::config::Caller,
        req: pb::SignPdfRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignPdfResponse> {
        self.signer.sign_pdf_as(caller, req, now).await
    }
}

pub(super) fn require(field: &'static str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::InvalidField {
            field,
            reason: "required".into(),
        });
    }
    Ok(())
}

pub(super) fn problem(field: &str, rule: &str, message: String) -> dpb::Problem {
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

    async fn receive_envelope(
        &self,
        req: Request<dpb::ReceiveEnvelopeRequest>,
    ) -> std::result::Result<Response<dpb::ReceiveEnvelopeResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::receive_envelope(self, &c, r, now).await
        })
        .await
    }

    async fn receive_status(
        &self,
        req: Request<dpb::ReceiveStatusRequest>,
    ) -> std::result::Result<Response<dpb::ReceiveStatusResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::receive_status(self, &c, r, now).await
        })
        .await
    }

    async fn take_back(
        &self,
        req: Request<dpb::TakeBackRequest>,
    ) -> std::result::Result<Response<dpb::TakeBackResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::take_back(self, &c, r, now).await
        })
        .await
    }

    async fn send_outgoing(
        &self,
        req: Request<dpb::SendOutgoingRequest>,
    ) -> std::result::Result<Response<dpb::SendOutgoingResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::send_outgoing(self, &c, r, now).await
        })
        .await
    }

    async fn list_stored(
        &self,
        req: Request<dpb::ListStoredRequest>,
    ) -> std::result::Result<Response<dpb::ListStoredResponse>, Status> {
        answer(self, req, |c, r, _now| async move {
            DocumentsService::list_stored(self, &c, r).await
        })
        .await
    }

    async fn extend_stored(
        &self,
        req: Request<dpb::ExtendStoredRequest>,
    ) -> std::result::Result<Response<dpb::ExtendStoredResponse>, Status> {
        answer(self, req, |c, r, now| async move {
            DocumentsService::extend_stored(self, &c, r, now).await
        })
        .await
    }

    async fn get_document(
        &self,
        req: Request<dpb::GetDocumentRequest>,
    ) -> std::result::Result<Response<dpb::GetDocumentResponse>, Status> {
        let caller = self.signer.identify(&req)?;
        let status = |e: crate::store::StoreError| match e {
            crate::store::StoreError::NotFound(_) => Status::not_found(e.to_string()),
            crate::store::StoreError::BadHash(_) => Status::invalid_argument(e.to_string()),
            _ => Status::from(Error::Storage {
                reason: e.to_string(),
            }),
        };
        let sha256 = &req.get_ref().sha256;
        // R1: an original goes only to a caller acting for an organisation it belongs to
        // (a caller with no organisations listed acts for any). The check comes before the
        // read: an unknown hash has no organisations and is refused the same way, so a
        // caller learns nothing of other organisations' files. An original stored before
        // organisations were recorded has none: refused too (fail closed).
        if !caller.organisations.is_empty() {
            let owners = self.store.organisations(sha256).map_err(status)?;
            if !owners.iter().any(|o| caller.organisations.contains(o)) {
                return Err(Status::from(Error::Refused(vec![Refusal {
                    rule: "R1".into(),
                    reason: format!(
                        "caller {:?} does not act for an organisation this original belongs to",
                        caller.name
                    ),
                }])));
            }
        }
        // D7: the original as it is now (raised to its requested level once the background
        // upgrade added the signature timestamp), found by the hash first handed out.
        let pdf = self.store.current(sha256).map_err(status)?;
        // N3: what was checked when it was received, as kept (the same R1 check covers it).
        let evidence = self.kept_evidence(sha256)?;
        Ok(Response::new(dpb::GetDocumentResponse { pdf, evidence }))
    }
}

/// The signing mode "own" (no KT./TL./TUQ.): the seal's, and an approval's when none is given.
pub(super) const OWN: i32 = pb::SigningMode::Own as i32;

/// One step of a flow as a `SignPdf` request: which key, over which document, in which legal
/// form, by whom, for which organisation. Every step goes through the same `SignPdf` path.
pub(super) fn sign_pdf(
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

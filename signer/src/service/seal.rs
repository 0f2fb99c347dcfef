//! The seal's side doors that need the registry's book (issue 13): the forms of the
//! organisation's seal without a personal signature in the same request are made only over
//! what the rules allow, and the registry decides from its own facts (`CheckSeal`), never
//! from the caller's word:
//! - SCANNED_ISSUE (D3): the named competent person had authority for the document type in
//!   the sealing organisation (A3, A6); where that person holds a valid personal
//!   certificate, the electronic form with both signatures is required unless the document
//!   type allows the scanned form (D2);
//! - COPY (A6 "copies it made itself", P3): what is sealed is the stored original of a
//!   document in the organisation's outgoing or incoming register (by its SHA-256);
//! - APPENDIX (D5, P4): the document's number and symbol is in the organisation's outgoing
//!   register (SignPdf, SignCms and the documents flow's SignAttachments alike);
//! - EXCHANGE (W1 -> send, N6): the issued original an edXML envelope carries is in the
//!   organisation's outgoing register (by its SHA-256).

use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;

use crate::error::{Error, Result};

use super::SignerService;
use super::request::Job;

impl SignerService {
    /// The registry's `CheckSeal` for SCANNED_ISSUE, COPY, APPENDIX and EXCHANGE; nothing for
    /// the other profiles (ISSUE is checked by its approval, RECEIVED and STATUS by their
    /// origin).
    pub(super) async fn check_seal(&self, job: &Job<'_>) -> Result<()> {
        match seal_request(job)? {
            Some(req) => self.inner.registry.check_seal(req).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The `CheckSeal` question a request asks, or None for a profile without one; a request
/// that does not name what its form needs is bad input (checked with the context, before
/// anything is asked or recorded).
pub(super) fn seal_request(job: &Job<'_>) -> Result<Option<reg::CheckSealRequest>> {
    let profile = pb::Profile::try_from(job.ctx.profile).unwrap_or(pb::Profile::Unspecified);
    let doc = job.ctx.document.as_ref();
    let mut req = reg::CheckSealRequest {
        organisation_id: job.ctx.organisation_id.clone(),
        profile: job.ctx.profile,
        document_type: doc.map(|d| d.document_type.clone()).unwrap_or_default(),
        at: Some(prost_types::Timestamp {
            seconds: job.signing_time.unix_timestamp(),
            nanos: 0,
        }),
        ..Default::default()
    };
    match profile {
        pb::Profile::ScannedIssue => {
            if job.seal.competent_person_id.trim().is_empty() {
                return Err(Error::InvalidField {
                    field: "competent_person_id",
                    reason: "SCANNED_ISSUE: name the competent person who signed the paper original (D2, D3)".into(),
                });
            }
            req.competent_person_id = job.seal.competent_person_id.trim().to_owned();
        }
        pb::Profile::Exchange => {
            let Some(sha256) = &job.seal.content_sha256 else {
                return Err(Error::InvalidField {
                    field: "content_sha256",
                    reason: "EXCHANGE: the SHA-256 of the issued original the envelope carries is required (W1)".into(),
                });
            };
            req.sha256 = hex::encode(sha256);
        }
        pb::Profile::Copy => {
            let Some(sha256) = &job.seal.content_sha256 else {
                return Err(Error::InvalidField {
                    field: "payload",
                    reason: "COPY: send the content, or its SHA-256 digest, so the registry can find the document copied in the organisation's registers (P3)".into(),
                });
            };
            req.sha256 = hex::encode(sha256);
        }
        pb::Profile::Appendix => {
            let number = doc.map(|d| d.number_and_symbol.trim()).unwrap_or_default();
            if number.is_empty() {
                return Err(Error::InvalidField {
                    field: "context.document.number_and_symbol",
                    reason: "APPENDIX: the main document's number and symbol is required (D5, P4)"
                        .into(),
                });
            }
            req.number_and_symbol = number.to_owned();
        }
        _ => return Ok(None),
    }
    Ok(Some(req))
}

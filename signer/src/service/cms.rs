//! The SignCms and SignDigest flows: a CAdES signature built around the content or its digest,
//! or a bare signature over a digest the caller computed.

use kyso_pki::cms_build::{self, CadesRequest, Content};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::audit::Decision as AuditDecision;
use crate::config::{Caller, Scheme};
use crate::consent::Factor;
use crate::error::{Error, Result};

use super::SignerService;
use super::approval::Approval;
use super::authorise::signatory;
use super::request::{Job, Origin, SealSubject, check_digest_len, legal_form};

impl SignerService {
    pub(super) async fn sign_cms_inner(
        &self,
        caller: &Caller,
        r: pb::SignCmsRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignCmsResponse> {
        let key = self.key(&r.key)?;
        let digest_algorithm = Self::digest_algorithm(&r.digest_algorithm)?;
        let signing_time = self.signing_time(r.signing_time, now)?;
        let profile = r.context.as_ref().map_or(0, |c| c.profile);
        let requested = self.requested_level(r.level, profile, false)?;
        let content = match &r.payload {
            Some(pb::sign_cms_request::Payload::Content(c)) => {
                if c.len() > self.inner.max_content_bytes {
                    return Err(Error::InvalidField {
                        field: "content",
                        reason: format!(
                            "{} bytes is over the limit of {} bytes; send its digest instead",
                            c.len(),
                            self.inner.max_content_bytes
                        ),
                    });
                }
                if r.detached {
                    Content::Detached(c)
                } else {
                    Content::Attached(c)
                }
            }
            Some(pb::sign_cms_request::Payload::Digest(d)) => {
                check_digest_len(digest_algorithm, d)?;
                Content::Digest(d)
            }
            None => {
                return Err(Error::InvalidField {
                    field: "payload",
                    reason: "send the content or its digest".into(),
                });
            }
        };
        let plain = match &content {
            Content::Attached(c) | Content::Detached(c) => Some(*c),
            _ => None,
        };
        // The builder hashes the content once; the audit record and the A6
        // check use that message digest rather than hashing it again.
        let chain: Vec<Vec<u8>> = key.chain.iter().map(|c| c.der().to_vec()).collect();
        let prepared = cms_build::prepare(CadesRequest {
            digest_algorithm,
            content,
            signer_certificate: key.certificate.der(),
            chain: &chain,
            signing_time: Some(signing_time),
            signature_algorithm: signing_algorithm(key.scheme, digest_algorithm),
            content_type: None,
            commitment_type: commitment(r.context.as_ref()),
        })?;
        let document_digest = prepared.message_digest().to_vec();
        let seal = SealSubject {
            competent_person_id: r.competent_person_id.clone(),
            content_sha256: content_sha256(
                r.context.as_ref(),
                digest_algorithm,
                &document_digest,
                plain,
            ),
        };
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm,
            document_digest,
            signing_time,
            raw: false,
            seal,
            activation_token: r.activation_token.clone(),
            factor: Factor::None,
        };
        let job = self
            .with_context(caller, job, r.context, Origin::Caller, now)
            .await?;
        let approval = Approval::Cms {
            approval: &r.approval,
            content: plain,
        };
        let decision = self.authorise(caller, &job, approval, now).await?;
        let signature = self
            .sign_recorded(caller, &job, &prepared.digest_to_sign(), now)
            .await?;
        let cms = match prepared.finish(&signature) {
            Ok(c) => c,
            Err(e) => {
                return Err(self.record_not_returned(caller, &job, e.into(), now).await);
            }
        };
        // N1: the signature timestamp, within the budget; below it the CMS goes out at B-B
        // and is journaled for the background upgrade (D7) before the reply.
        let mut raised = self
            .raise_cms(cms, requested, &key.certificate, &key.chain, now)
            .await;
        self.journal_below_level(&mut raised, None, caller, &job, requested, now);
        // The reply waits for the record: no signature leaves unrecorded.
        let audit = self
            .record_signed_level(caller, &job, now, None, requested, raised.level)
            .await?;
        Ok(pb::SignCmsResponse {
            cms: raised.cms,
            audit: Some(audit),
            signatory: Some(signatory(decision)),
            level: raised.level as i32,
            warnings: raised.warnings,
        })
    }

    pub(super) async fn sign_digest_inner(
        &self,
        caller: &Caller,
        r: pb::SignDigestRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignDigestResponse> {
        let key = self.key(&r.key)?;
        let digest_algorithm = Self::digest_algorithm(&r.digest_algorithm)?;
        check_digest_len(digest_algorithm, &r.digest)?;
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm,
            document_digest: r.digest.clone(),
            signing_time: now,
            raw: true,
            // A raw signature is never a seal (side_doors refuses an organisation's key).
            seal: SealSubject::default(),
            activation_token: r.activation_token.clone(),
            factor: Factor::None,
        };
        let job = self
            .with_context(caller, job, r.context, Origin::Caller, now)
            .await?;
        let approval = Approval::Cms {
            approval: &r.approval,
            content: None,
        };
        let decision = self.authorise(caller, &job, approval, now).await?;
        let signature = self.sign_recorded(caller, &job, &r.digest, now).await?;
        let audit = self
            .record(caller, &job, AuditDecision::Signed, now)
            .await?;
        Ok(pb::SignDigestResponse {
            signature,
            signature_algorithm: key.scheme.name(digest_algorithm),
            certificate: key.certificate.der().to_vec(),
            audit: Some(audit),
            signatory: Some(signatory(decision)),
        })
    }
}

/// The commitment-type indication of the request's legal form (PAdES and CAdES alike,
/// `kyso_pades::Profile::commitment`); `None` without a stated form (refused later).
fn commitment(
    ctx: Option<&pb::SigningContext>,
) -> Option<kyso_pki::cms::commitment::CommitmentType> {
    legal_form(ctx?.profile).map(kyso_pades::Profile::commitment)
}

pub(super) fn signing_algorithm(scheme: Scheme, d: DigestAlgorithm) -> cms_build::SigningAlgorithm {
    match scheme {
        Scheme::RsaPkcs1 => cms_build::SigningAlgorithm::RsaPkcs1(d),
        Scheme::RsaPss => cms_build::SigningAlgorithm::RsaPss(d),
        Scheme::Ecdsa => cms_build::SigningAlgorithm::Ecdsa(d),
    }
}

/// COPY (A6, P3): the SHA-256 of the content sealed, by which the registry finds the copied
/// document in the organisation's registers: the message digest when it is SHA-256, else
/// the content hashed again (only for a COPY); None when only another digest was sent.
fn content_sha256(
    ctx: Option<&pb::SigningContext>,
    algorithm: DigestAlgorithm,
    message_digest: &[u8],
    plain: Option<&[u8]>,
) -> Option<Vec<u8>> {
    if algorithm == DigestAlgorithm::Sha256 {
        return Some(message_digest.to_vec());
    }
    let copy = ctx.is_some_and(|c| c.profile == pb::Profile::Copy as i32);
    plain
        .filter(|_| copy)
        .map(|c| kyso_pki::crypto::sha256(c).to_vec())
}

//! A6: the organisation seals (ISSUE) only a document that already carries the competent
//! person's valid signature, a person whose title had authority for the document type
//! (registry `CheckAuthority`). The approval is a CMS for SignCms/SignDigest, or a signature
//! already in the PDF for SignPdf.

use kyso_pki::cms::Detached;
use kyso_validation::report::Indication;
use kyso_validation::verify::CmsRequest;
use time::OffsetDateTime;

use crate::error::{Error, Refusal, Result};

use super::SignerService;
use super::request::Job;

/// What an ISSUE's A6 check looks at.
pub(super) enum Approval<'a> {
    /// SignCms, SignDigest: the CMS with the competent person's signature.
    Cms {
        approval: &'a [u8],
        content: Option<&'a [u8]>,
    },
    /// SignPdf: the PDF to seal, which must already carry that signature.
    Pdf(&'a [u8]),
}

impl SignerService {
    /// A6: the organisation seals (ISSUE) only a document that already
    /// carries the competent person's signature. `approval` is that CMS; it
    /// must be over this document, verify (TOTAL_PASSED at `now`), and at
    /// least one of its signers must hold a personal certificate whose
    /// title had authority for the document type (registry CheckAuthority).
    pub(super) async fn check_approval(
        &self,
        job: &Job<'_>,
        approval: &[u8],
        content: Option<&[u8]>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let refuse = |reason: String| {
            Error::Refused(vec![Refusal {
                rule: "A6".into(),
                reason,
            }])
        };
        if approval.is_empty() {
            return Err(refuse(
                "the organisation seals only documents that already carry the competent person's signature: send that signature (CMS) in `approval`".into(),
            ));
        }
        let parsed = kyso_pki::cms::parse(approval)
            .map_err(|e| refuse(format!("the approval is not a readable CMS: {e}")))?;
        let detached = match parsed.content() {
            Some(c) => {
                if job.digest_algorithm.digest(c) != job.document_digest {
                    return Err(refuse(
                        "the approval signs another document than the one to seal".into(),
                    ));
                }
                Detached::None
            }
            None => match content {
                Some(c) => Detached::Content(c),
                None => Detached::Digest {
                    algorithm: job.digest_algorithm,
                    value: &job.document_digest,
                },
            },
        };
        let report = self
            .inner
            .own
            .verifier()
            .verify_cms(
                CmsRequest {
                    signature: approval,
                    detached,
                    at: None,
                    policy: None,
                },
                now,
            )
            .await
            .map_err(|e| refuse(format!("the approval cannot be verified: {e}")))?;
        self.any_with_authority(job, report.signatures.iter().map(|s| (s, None)), now)
            .await
    }

    /// A6 over a PDF: it must already carry a valid signature (TOTAL_PASSED,
    /// nothing changed after it but what signing allows) of a person whose
    /// title had authority for the document type.
    pub(super) async fn check_pdf_approval(
        &self,
        job: &Job<'_>,
        pdf: &[u8],
        now: OffsetDateTime,
    ) -> Result<()> {
        let options = kyso_validation::pdf::PdfVerifyOptions {
            limits: kyso_validation::pdf::PdfLimits {
                max_bytes: self.inner.max_pdf_bytes,
                ..kyso_validation::pdf::PdfLimits::default()
            },
            ..kyso_validation::pdf::PdfVerifyOptions::default()
        };
        let report = self
            .inner
            .own
            .verifier()
            .verify_pdf(pdf, &options, now)
            .await
            .map_err(|e| a6(format!("the PDF's signatures cannot be read: {e}")))?;
        self.any_with_authority(
            job,
            report.signatures.iter().map(|s| {
                let altered = s.modifications.iter().any(|m| !m.allowed);
                (
                    &s.report,
                    altered.then_some("the document was altered after it"),
                )
            }),
            now,
        )
        .await
    }

    /// A6: at least one of `signatures` is valid (and not vetoed) and made
    /// with a personal certificate whose title had authority for the
    /// document type (registry CheckAuthority).
    async fn any_with_authority<'r>(
        &self,
        job: &Job<'_>,
        signatures: impl Iterator<
            Item = (
                &'r kyso_validation::report::SignatureReport,
                Option<&'static str>,
            ),
        >,
        now: OffsetDateTime,
    ) -> Result<()> {
        let doc_type = job
            .ctx
            .document
            .as_ref()
            .map(|d| d.document_type.as_str())
            .unwrap_or_default();
        let mut why = Vec::new();
        for (sig, veto) in signatures {
            if let Some(veto) = veto {
                why.push(format!("signature {}: {veto}", sig.index));
                continue;
            }
            if sig.indication != Indication::TotalPassed {
                why.push(format!(
                    "signature {}: {:?} {}",
                    sig.index, sig.indication, sig.message
                ));
                continue;
            }
            let Some(leaf) = sig.path.first() else {
                continue;
            };
            let a = self
                .inner
                .registry
                .check_authority(&leaf.fingerprint_sha256, doc_type, now)
                .await?;
            // The approver's authority must be in the organisation whose seal is asked
            // for: another body's director does not approve this body's documents (A6, A3).
            let here = a.organisation_id == job.ctx.organisation_id;
            if a.authorised && a.personal && here {
                return Ok(());
            }
            why.push(format!(
                "signature {} ({}): {}",
                sig.index,
                if a.holder_name.is_empty() {
                    leaf.subject.as_str()
                } else {
                    a.holder_name.as_str()
                },
                if !a.personal && a.authorised {
                    "not a personal certificate".to_owned()
                } else if a.authorised && !here {
                    format!(
                        "A3: the authority is in another organisation ({}), not in the sealing one",
                        a.organisation_name
                    )
                } else {
                    a.reasons.join("; ")
                }
            ));
        }
        if why.is_empty() {
            why.push("no signature".into());
        }
        Err(a6(format!(
            "no valid signature of a person with authority for {doc_type}: {}",
            why.join(" | ")
        )))
    }
}

pub(super) fn a6(reason: String) -> Error {
    Error::Refused(vec![Refusal {
        rule: "A6".into(),
        reason,
    }])
}

//! The SignPdf flow: the registry's decision (with the approval the PDF carries), then the
//! incremental update drawn with its stamp (images are decoded only for an authorised
//! request), the PAdES signature, the audit record binding the input and the output files.

use kyso_pades as pades;
use kyso_pki::cms_build;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::consent::Factor;
use crate::error::{Error, Result};

use super::SignerService;
use super::approval::{Approval, a6};
use super::authorise::signatory;
use super::cms::signing_algorithm;
use super::request::{Job, Origin, SealSubject, legal_form};

impl SignerService {
    pub(super) async fn sign_pdf_inner(
        &self,
        caller: &Caller,
        r: pb::SignPdfRequest,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<pb::SignPdfResponse> {
        let key = self.key(&r.key)?;
        if r.pdf.is_empty() {
            return Err(Error::InvalidField {
                field: "pdf",
                reason: "send the PDF to sign".into(),
            });
        }
        if r.pdf.len() > self.inner.max_pdf_bytes {
            return Err(Error::InvalidField {
                field: "pdf",
                reason: format!(
                    "{} bytes is over the limit of {} bytes",
                    r.pdf.len(),
                    self.inner.max_pdf_bytes
                ),
            });
        }
        let signing_time = self.signing_time(r.signing_time, now)?;
        let profile = r.context.as_ref().map_or(0, |c| c.profile);
        let requested = self.requested_level(r.level, profile, true)?;
        let token_reserve = self.token_reserve(requested);
        // PAdES here is SHA-256 (what VGCA-signed PDFs use); the audit
        // digest is the input's until the output exists.
        let digest_algorithm = DigestAlgorithm::Sha256;
        let input_sha256 = kyso_pki::crypto::sha256(&r.pdf).to_vec();
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm,
            document_digest: input_sha256.clone(),
            signing_time,
            raw: false,
            seal: SealSubject {
                competent_person_id: r.competent_person_id.clone(),
                content_sha256: Some(input_sha256.clone()),
            },
            activation_token: r.activation_token.clone(),
            factor: Factor::None,
        };
        let job = self
            .with_context(caller, job, r.context.clone(), origin, now)
            .await?;

        let decision = self
            .authorise(caller, &job, Approval::Pdf(&r.pdf), now)
            .await?;

        // The update is drawn (and the stamp's image decoded) only for an authorised
        // request: decoding an image costs memory, which an unauthorised caller must
        // not be able to spend (issue 14). The approval check above has read the PDF.
        let prepared = {
            let chain: Vec<Vec<u8>> = key.chain.iter().map(|c| c.der().to_vec()).collect();
            let certificate = key.certificate.der().to_vec();
            let ctx = job.ctx.clone();
            let max_pdf_bytes = self.inner.max_pdf_bytes;
            let r = r.clone();
            tokio::task::spawn_blocking(move || {
                prepare_pdf(
                    &r,
                    &ctx,
                    &certificate,
                    &chain,
                    signing_time,
                    max_pdf_bytes,
                    token_reserve,
                )
            })
            .await
            .map_err(|e| Error::InvalidField {
                field: "pdf",
                reason: format!("preparing the PDF failed: {e}"),
            })?
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e @ Error::Refused(_)) => {
                return Err(self.record_failure(caller, &job, e, now).await);
            }
            Err(e) => return Err(e),
        };

        let chain: Vec<Vec<u8>> = key.chain.iter().map(|c| c.der().to_vec()).collect();
        let cms = cms_build::prepare(prepared.cades_request(
            key.certificate.der(),
            &chain,
            signing_algorithm(key.scheme, digest_algorithm),
        ))?;
        let signature = self
            .sign_recorded(caller, &job, &cms.digest_to_sign(), now)
            .await?;
        // From here the HSM has signed: a document that cannot be built is recorded as a
        // signature made and not returned.
        let field_name = prepared.field_name().to_owned();
        let plain = match cms.finish(&signature) {
            Ok(c) => c,
            Err(e) => return Err(self.record_not_returned(caller, &job, e.into(), now).await),
        };
        // PAdES B-T (N1): the signature timestamp inside the signature's CMS, within the
        // budget; /Contents was sized for it (`tsa.pdf_reserve_bytes`). A token that does not
        // fit leaves the signature at B-B with a warning naming the setting.
        let started = std::time::Instant::now();
        let mut raised = self
            .raise_cms(
                plain.clone(),
                requested.min(pb::SignatureLevel::BT),
                &key.certificate,
                &key.chain,
                now,
            )
            .await;
        if raised.cms.len() > prepared.capacity() {
            raised.warnings.push(format!(
                "returned at B_B: the timestamped CMS of {} bytes does not fit the signature's \
                 /Contents of {} bytes (raise tsa.pdf_reserve_bytes)",
                raised.cms.len(),
                prepared.capacity()
            ));
            raised.level = pb::SignatureLevel::BB;
            raised.cms = plain;
        }
        let built = prepared.finish(&raised.cms);
        let pdf = match built {
            Ok(pdf) => pdf,
            Err(e) => {
                let e = Error::InvalidField {
                    field: "pdf",
                    reason: e.to_string(),
                };
                return Err(self.record_not_returned(caller, &job, e, now).await);
            }
        };
        // PAdES B-LT / B-LTA (N1, R1): the DSS and the document timestamp as incremental
        // updates after the signature, in what is left of the budget.
        let left = self
            .inner
            .stamper
            .as_ref()
            .map_or(std::time::Duration::ZERO, |s| {
                s.budget().saturating_sub(started.elapsed())
            });
        let pdf = self
            .raise_pdf(pdf, &mut raised, requested, key, left, now)
            .await;
        let output_sha256 = kyso_pki::crypto::sha256(&pdf).to_vec();
        // The record binds both files: the input's SHA-256 then the
        // output's (the signed original, D7), as `sha256-in-out`.
        let mut both = input_sha256;
        both.extend_from_slice(&output_sha256);
        let job = Job {
            document_digest: both,
            ..job
        };
        // A PDF below its level is journaled: the background upgrade adds the DSS and the
        // document timestamp (D7).
        self.journal_below_level(&mut raised, Some(&pdf), caller, &job, requested, now);
        let audit = self
            .record_signed_level(
                caller,
                &job,
                now,
                Some("sha256-in-out"),
                requested,
                raised.level,
            )
            .await?;
        Ok(pb::SignPdfResponse {
            pdf,
            audit: Some(audit),
            signatory: Some(signatory(decision)),
            sha256: output_sha256,
            field_name,
            level: raised.level as i32,
            warnings: raised.warnings,
        })
    }
}

fn prepare_pdf(
    r: &pb::SignPdfRequest,
    ctx: &pb::SigningContext,
    certificate: &[u8],
    chain: &[Vec<u8>],
    signing_time: OffsetDateTime,
    max_pdf_bytes: usize,
    token_reserve: usize,
) -> Result<pades::PreparedPdf> {
    let profile = legal_form(ctx.profile).ok_or_else(|| Error::InvalidField {
        field: "context.profile",
        reason: "required".into(),
    })?;
    let mut req = pades::PadesRequest::new(profile, certificate, chain, signing_time);
    req.limits.max_bytes = max_pdf_bytes;
    if token_reserve > 0 {
        // B-T: room for the signature timestamp token beside the CMS itself.
        req.placeholder_size = Some(pades::placeholder_size(certificate, chain) + token_reserve);
    }
    req.placement = match r.placement.as_ref().and_then(|p| p.r#where.as_ref()) {
        None => pades::Placement::Auto,
        Some(pb::pdf_placement::Where::Rect(x)) => pades::Placement::Rect {
            page: x.page,
            rect: [x.x0, x.y0, x.x1, x.y1],
        },
        Some(pb::pdf_placement::Where::Field(f)) => pades::Placement::Field(f.clone()),
        Some(pb::pdf_placement::Where::Marker(m)) => pades::Placement::Marker {
            text: m.text.clone(),
            page: (m.page != 0).then_some(m.page),
        },
    };
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
    req.field_name = non_empty(&r.field_name);
    req.image = (!r.image.is_empty()).then_some(r.image.as_slice());
    req.seal_diameter_mm = (r.seal_diameter_mm > 0.0).then_some(r.seal_diameter_mm);
    let doc = ctx.document.clone().unwrap_or_default();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    req.text = pades::StampText {
        copy_form: non_empty(&r.copy_form),
        organisation: non_empty(&r.organisation_name),
        number_and_symbol: non_empty(&doc.number_and_symbol),
        issue_date: time::Date::parse(&doc.issue_date, &fmt).ok(),
        incoming_number: non_empty(&r.incoming_number),
    };
    req.reason = non_empty(&r.reason).or_else(|| default_reason(profile, &doc));
    req.location = non_empty(&r.location);
    pades::prepare(&r.pdf, &req).map_err(|e| match e {
        pades::PadesError::NoApproval(reason) => a6(format!(
            "the organisation seals only a PDF that already carries the competent person's signature: {reason}"
        )),
        other => Error::InvalidField {
            field: "pdf",
            reason: other.to_string(),
        },
    })
}

/// `/Reason` when the caller gives none: what the signature means, with the
/// document's number and issue date for an ISSUE (W2).
fn default_reason(profile: pades::Profile, doc: &pb::DocumentInfo) -> Option<String> {
    let number = doc.number_and_symbol.trim();
    Some(match profile {
        pades::Profile::Approval => "Phê duyệt".to_owned(),
        pades::Profile::Issue if !number.is_empty() => {
            format!("Ban hành văn bản số {number} ngày {}", doc.issue_date)
        }
        pades::Profile::Issue | pades::Profile::ScannedIssue => "Ban hành".to_owned(),
        pades::Profile::Copy => "Sao văn bản".to_owned(),
        pades::Profile::Appendix => format!("Phụ lục văn bản {number}"),
        pades::Profile::Received => "Văn bản đến".to_owned(),
        _ => return None,
    })
}

//! Steps 2-4 of a signing request, shared by every flow: the signer's own rules applied to the
//! parsed context, the registry's `Authorize` (fail closed), the key's own certificate (N1),
//! and for ISSUE the A6 approval check (`super::approval`); every refusal recorded.

use std::time::Instant;

use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::authority::Decision;
use crate::config::Caller;
use crate::error::{Error, Refusal, Result};

use super::SignerService;
use super::approval::Approval;
use super::request::{Job, Origin};

impl SignerService {
    /// Step 2 for a parsed request: the signer's own rules; their refusals
    /// are recorded like the registry's (the request's context is what was
    /// refused).
    pub(super) async fn with_context<'k>(
        &self,
        caller: &Caller,
        job: Job<'k>,
        ctx: Option<pb::SigningContext>,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<Job<'k>> {
        let parsed = self
            .parse_context(caller, ctx, job.signing_time)
            .and_then(|ctx| side_doors(&job, &ctx, origin).map(|()| ctx))
            .and_then(|ctx| self.consent(caller, &job, &ctx, now).map(|f| (ctx, f)));
        match parsed {
            Ok((ctx, factor)) => {
                let job = Job { ctx, factor, ..job };
                // What the seal's form needs named (SCANNED_ISSUE, COPY, APPENDIX): bad
                // input, refused before anything is asked (never a rule's refusal). A
                // personal key is refused these forms by the registry (A4) first; its
                // `check_seal` still runs after, failing closed.
                if job.key.certificate.kind() == kyso_pki::cert::CertKind::Organisation {
                    super::seal::seal_request(&job)?;
                }
                Ok(job)
            }
            Err(e @ Error::Refused(_)) => Err(self.record_failure(caller, &job, e, now).await),
            Err(e) => Err(e),
        }
    }

    /// Steps 3-4.
    async fn decide(&self, job: &Job<'_>, now: OffsetDateTime) -> Result<Decision> {
        let started = Instant::now();
        let decision = self
            .inner
            .registry
            .authorize(
                &job.key.certificate.fingerprint_hex(),
                &job.ctx,
                job.signing_time,
            )
            .await;
        self.inner
            .metrics
            .registry_seconds
            .with_label_values(&[match &decision {
                Ok(_) => "allowed",
                Err(Error::Refused(_)) => "refused",
                Err(_) => "error",
            }])
            .observe(started.elapsed().as_secs_f64());
        let decision = decision?;
        self.inner
            .own
            .check(&job.key.name, &job.key.certificate, &job.key.chain, now)
            .await?;
        Ok(decision)
    }

    /// Steps 3-4, the seal's side doors (SCANNED_ISSUE, COPY, APPENDIX) and, for ISSUE, A6;
    /// every refusal or failure recorded.
    pub(super) async fn authorise(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        approval: Approval<'_>,
        now: OffsetDateTime,
    ) -> Result<Decision> {
        let decision = match self.decide(job, now).await {
            Ok(d) => d,
            Err(e) => return Err(self.record_failure(caller, job, e, now).await),
        };
        // The side doors the registry's book decides: SCANNED_ISSUE (D2, D3, A3, A6), COPY
        // (A6, P3), APPENDIX (D5, P4); every refusal recorded (super::seal).
        if let Err(e) = self.check_seal(job).await {
            return Err(self.record_failure(caller, job, e, now).await);
        }
        if job.ctx.profile == pb::Profile::Issue as i32 {
            let checked = match approval {
                Approval::Cms { approval, content } => {
                    self.check_approval(job, approval, content, now).await
                }
                Approval::Pdf(pdf) => self.check_pdf_approval(job, pdf, now).await,
            };
            if let Err(e) = checked {
                return Err(self.record_failure(caller, job, e, now).await);
            }
        }
        Ok(decision)
    }
}

pub(super) fn signatory(d: Decision) -> pb::Signatory {
    pb::Signatory {
        holder_name: d.holder_name,
        title: d.title,
        on_behalf_of: d.on_behalf_of,
    }
}

/// The seal's side doors, closed before the registry is asked (refusals are recorded like
/// the registry's):
/// - the received stamp (RECEIVED) is applied only by `ReceiveIncoming`, after the incoming
///   document's signatures were verified (W3, D6): a caller cannot stamp anything it likes;
/// - a raw signature over a digest (`SignDigest`) is never made with an organisation's key:
///   the seal is made only as a CMS or PDF whose legal form was checked (A6);
/// - the seal over an edXML envelope or status message (EXCHANGE, STATUS) is made only by the
///   exchange flow, over the message it built itself from the outgoing register (N6, W1):
///   never by SignPdf, SignCms or SignDigest, which would seal whatever a caller sends.
fn side_doors(job: &Job<'_>, ctx: &pb::SigningContext, origin: Origin) -> Result<()> {
    let refuse = |rule: &str, reason: &str| {
        Err(Error::Refused(vec![Refusal {
            rule: rule.into(),
            reason: reason.into(),
        }]))
    };
    if ctx.profile == pb::Profile::Received as i32 && origin != Origin::ReceiveIncoming {
        return refuse(
            "W3",
            "the received stamp (RECEIVED) is applied only by ReceiveIncoming, after the incoming document's signatures were verified (W3, D6)",
        );
    }
    let xml =
        ctx.profile == pb::Profile::Exchange as i32 || ctx.profile == pb::Profile::Status as i32;
    if xml && origin != Origin::Exchange {
        return refuse(
            "N6",
            "the seal over an edXML envelope or status message (EXCHANGE, STATUS) is made only by the exchange flow, over the message it built (N6, W1)",
        );
    }
    if job.raw && job.key.certificate.kind() == kyso_pki::cert::CertKind::Organisation {
        return refuse(
            "A6",
            "no raw signature over a digest with an organisation's key: the seal is made only by SignCms or SignPdf, whose legal form and approval are checked (A6)",
        );
    }
    Ok(())
}

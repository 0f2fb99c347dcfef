//! The `kyso.signer.v1.Signer` service: validate, decide, sign, record.
//!
//! Every signing request runs the same steps, in this order, so that the
//! cheapest refusal comes first and nothing leaves the signer unrecorded:
//! 1. parse the request (unknown key, missing context, bad digest: INVALID_ARGUMENT);
//! 2. the signer's own rules: classification (A7), issue date (W2), caller policy;
//! 3. the registry's `Authorize` (A1-A7, V1...; fail closed when it cannot answer);
//! 4. the key's own certificate at signing time (N1);
//! 5. the HSM signature;
//! 6. the audit record, durable before the reply. A refusal after step 1
//!    is recorded too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kyso_pades as pades;
use kyso_pki::cms::Detached;
use kyso_pki::cms_build::{self, CadesRequest, Content};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use kyso_validation::report::Indication;
use kyso_validation::verify::CmsRequest;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::audit::{AuditEntry, AuditLog, Decision as AuditDecision};
use crate::authority::{Decision, OwnCheck, Registry};
use crate::config::{Caller, KeySpec, Scheme};
use crate::error::{Error, Refusal, Result};
use crate::hsm::Hsm;
use crate::metrics::Metrics;

/// The clock: "now" is a parameter of everything time-dependent.
pub use kyso_server::Clock;

/// Vietnam's offset: issue dates (W2) are local dates.
const VN_OFFSET: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

/// Service state: all of it shared and immutable but for the HSM's slot
/// health, the caches and the audit log's head.
#[derive(Clone)]
pub struct SignerService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: HashMap<String, KeySpec>,
    callers: HashMap<[u8; 32], Caller>,
    allow_anonymous: bool,
    hsm: Arc<Hsm>,
    registry: Registry,
    own: OwnCheck,
    audit: AuditLog,
    metrics: Metrics,
    clock: Clock,
    max_content_bytes: usize,
    max_pdf_bytes: usize,
    max_skew: time::Duration,
}

impl std::fmt::Debug for SignerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerService")
            .field("keys", &self.inner.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a new service needs.
#[allow(missing_debug_implementations)]
pub struct Parts {
    /// Keys with certificates.
    pub keys: Vec<KeySpec>,
    /// Callers by client-certificate fingerprint.
    pub callers: Vec<([u8; 32], Caller)>,
    /// Accept callers without a certificate.
    pub allow_anonymous: bool,
    /// The HSM.
    pub hsm: Arc<Hsm>,
    /// The registry client.
    pub registry: Registry,
    /// N1.
    pub own: OwnCheck,
    /// The audit log.
    pub audit: AuditLog,
    /// Metrics.
    pub metrics: Metrics,
    /// The clock.
    pub clock: Clock,
    /// Largest document.
    pub max_content_bytes: usize,
    /// Largest PDF (SignPdf).
    pub max_pdf_bytes: usize,
    /// Allowed skew of a requested signing time.
    pub max_skew: time::Duration,
}

/// The signer's view of one request, after parsing.
struct Job<'a> {
    key: &'a KeySpec,
    ctx: pb::SigningContext,
    digest_algorithm: DigestAlgorithm,
    /// The document digest (for the audit record).
    document_digest: Vec<u8>,
    signing_time: OffsetDateTime,
}

impl SignerService {
    /// Builds the service.
    pub fn new(p: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: p.keys.into_iter().map(|k| (k.name.clone(), k)).collect(),
                callers: p.callers.into_iter().collect(),
                allow_anonymous: p.allow_anonymous,
                hsm: p.hsm,
                registry: p.registry,
                own: p.own,
                audit: p.audit,
                metrics: p.metrics,
                clock: p.clock,
                max_content_bytes: p.max_content_bytes,
                max_pdf_bytes: p.max_pdf_bytes,
                max_skew: p.max_skew,
            }),
        }
    }

    /// Identifies the caller by its client certificate.
    fn caller<T>(&self, req: &Request<T>) -> Result<Caller> {
        let first = req
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| kyso_pki::crypto::sha256(c.as_ref())));
        match first {
            Some(fp) => match self.inner.callers.get(&fp) {
                Some(c) => Ok(c.clone()),
                None => Err(Error::Refused(vec![Refusal {
                    rule: "caller".into(),
                    reason: format!(
                        "client certificate {} is not a configured caller",
                        hex::encode(fp)
                    ),
                }])),
            },
            None if self.inner.allow_anonymous => Ok(Caller {
                name: "anonymous".into(),
                organisations: Vec::new(),
            }),
            None => Err(Error::Refused(vec![Refusal {
                rule: "caller".into(),
                reason: "no client certificate: callers are identified by mTLS".into(),
            }])),
        }
    }

    fn key(&self, name: &str) -> Result<&KeySpec> {
        if name.is_empty() {
            return Err(Error::InvalidField {
                field: "key",
                reason: "name the key to sign with".into(),
            });
        }
        self.inner.keys.get(name).ok_or_else(|| Error::UnknownKey {
            key: name.to_owned(),
        })
    }

    /// Steps 1-2: the request's shape and the signer's own rules.
    fn parse_context(
        &self,
        caller: &Caller,
        ctx: Option<pb::SigningContext>,
        signing_time: OffsetDateTime,
    ) -> Result<pb::SigningContext> {
        let ctx = ctx.ok_or(Error::InvalidField {
            field: "context",
            reason: "the signing context (document, profile, mode, acting person, organisation) is required".into(),
        })?;
        let doc = ctx.document.as_ref().ok_or(Error::InvalidField {
            field: "context.document",
            reason: "the document (type, number, issue date, classification) is required".into(),
        })?;
        if doc.document_type.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.document.document_type",
                reason: "required".into(),
            });
        }
        let profile = pb::Profile::try_from(ctx.profile).unwrap_or(pb::Profile::Unspecified);
        if profile == pb::Profile::Unspecified {
            return Err(Error::InvalidField {
                field: "context.profile",
                reason: "state the legal form: APPROVAL, ISSUE, SCANNED_ISSUE, COPY, APPENDIX, RECEIVED or COMMENT".into(),
            });
        }
        let mode = pb::SigningMode::try_from(ctx.mode).unwrap_or(pb::SigningMode::Unspecified);
        if mode == pb::SigningMode::Unspecified {
            return Err(Error::InvalidField {
                field: "context.mode",
                reason: "state the signing mode: OWN, KT, TL or TUQ".into(),
            });
        }
        if ctx.acting_person_id.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.acting_person_id",
                reason: "name the person who orders the signature".into(),
            });
        }
        if ctx.organisation_id.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.organisation_id",
                reason: "name the organisation the document belongs to".into(),
            });
        }
        let mut refusals = Vec::new();
        match pb::Classification::try_from(doc.classification) {
            Ok(pb::Classification::None) => {}
            Ok(pb::Classification::Unspecified) | Err(_) => {
                return Err(Error::InvalidField {
                    field: "context.document.classification",
                    reason: "state the classification (NONE for an unclassified document)".into(),
                });
            }
            Ok(c) => refusals.push(Refusal {
                rule: "A7".into(),
                reason: format!(
                    "classified documents ({}) are never signed with these certificates",
                    c.as_str_name()
                ),
            }),
        }
        // W2: the organisation's signature on an outgoing document is made on
        // its issue date; the issue date is a local (UTC+7) date.
        if matches!(profile, pb::Profile::Issue | pb::Profile::ScannedIssue) {
            let today = signing_time.to_offset(VN_OFFSET).date();
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(&doc.issue_date, &fmt) {
                Ok(d) if d == today => {}
                Ok(d) => refusals.push(Refusal {
                    rule: "W2".into(),
                    reason: format!(
                        "the signing date {today} must be the document's issue date {d}"
                    ),
                }),
                Err(_) => {
                    return Err(Error::InvalidField {
                        field: "context.document.issue_date",
                        reason: format!(
                            "{:?} is not a YYYY-MM-DD date (required for ISSUE and SCANNED_ISSUE, W2)",
                            doc.issue_date
                        ),
                    });
                }
            }
        }
        if !caller.organisations.is_empty() && !caller.organisations.contains(&ctx.organisation_id)
        {
            refusals.push(Refusal {
                rule: "caller".into(),
                reason: format!(
                    "caller {:?} does not act for organisation {:?}",
                    caller.name, ctx.organisation_id
                ),
            });
        }
        if refusals.is_empty() {
            Ok(ctx)
        } else {
            Err(Error::Refused(refusals))
        }
    }

    fn digest_algorithm(name: &str) -> Result<DigestAlgorithm> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "" | "sha256" => Ok(DigestAlgorithm::Sha256),
            "sha384" => Ok(DigestAlgorithm::Sha384),
            "sha512" => Ok(DigestAlgorithm::Sha512),
            other => Err(Error::InvalidField {
                field: "digest_algorithm",
                reason: format!("{other:?} is not one of sha256, sha384, sha512"),
            }),
        }
    }

    fn signing_time(
        &self,
        requested: Option<prost_types::Timestamp>,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime> {
        let Some(ts) = requested else { return Ok(now) };
        let t =
            OffsetDateTime::from_unix_timestamp(ts.seconds).map_err(|_| Error::InvalidField {
                field: "signing_time",
                reason: "out of range".into(),
            })?;
        if (t - now).abs() > self.inner.max_skew {
            return Err(Error::InvalidField {
                field: "signing_time",
                reason: format!(
                    "{t} is more than {} s from the signer's clock ({now})",
                    self.inner.max_skew.whole_seconds()
                ),
            });
        }
        Ok(t)
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

    /// A6: the organisation seals (ISSUE) only a document that already
    /// carries the competent person's signature. `approval` is that CMS; it
    /// must be over this document, verify (TOTAL_PASSED at `now`), and at
    /// least one of its signers must hold a personal certificate whose
    /// title had authority for the document type (registry CheckAuthority).
    async fn check_approval(
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
    async fn check_pdf_approval(
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
            if a.authorised && a.personal {
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

    async fn hsm_sign(
        &self,
        key: &KeySpec,
        alg: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        let started = Instant::now();
        let r = self
            .inner
            .hsm
            .sign(&key.name, key.scheme.mechanism(alg), digest)
            .await;
        self.inner
            .metrics
            .hsm_seconds
            .with_label_values(&[key.name.as_str(), if r.is_ok() { "ok" } else { "error" }])
            .observe(started.elapsed().as_secs_f64());
        Ok(r?)
    }

    async fn record(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        decision: AuditDecision,
        now: OffsetDateTime,
    ) -> Result<pb::AuditReceipt> {
        let label = job
            .digest_algorithm
            .name()
            .to_ascii_lowercase()
            .replace('-', "");
        self.record_as(caller, job, decision, now, &label).await
    }

    /// [`Self::record`] with the digest's label given.
    async fn record_as(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        decision: AuditDecision,
        now: OffsetDateTime,
        digest_label: &str,
    ) -> Result<pb::AuditReceipt> {
        let doc = job.ctx.document.clone().unwrap_or_default();
        let entry = AuditEntry {
            time: now,
            key: job.key.name.clone(),
            certificate_fingerprint: job.key.certificate.fingerprint_hex(),
            caller: caller.name.clone(),
            acting_person_id: job.ctx.acting_person_id.clone(),
            organisation_id: job.ctx.organisation_id.clone(),
            document_type: doc.document_type,
            number_and_symbol: doc.number_and_symbol,
            profile: pb::Profile::try_from(job.ctx.profile)
                .map(|p| p.as_str_name().to_owned())
                .unwrap_or_default(),
            mode: pb::SigningMode::try_from(job.ctx.mode)
                .map(|p| p.as_str_name().to_owned())
                .unwrap_or_default(),
            digest_algorithm: digest_label.to_owned(),
            digest: job.document_digest.clone(),
            decision,
        };
        let started = Instant::now();
        let r = self.inner.audit.append(entry).await;
        self.inner
            .metrics
            .audit_seconds
            .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
            .observe(started.elapsed().as_secs_f64());
        let receipt = r.map_err(|e| Error::Audit(e.to_string()))?;
        Ok(pb::AuditReceipt {
            sequence: receipt.seq,
            record_hash: hex::encode(receipt.hash),
        })
    }

    /// Records a refusal or failure after parsing; the original error is
    /// what the caller gets, whatever happens to the record.
    async fn record_failure(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        err: Error,
        now: OffsetDateTime,
    ) -> Error {
        let rules = err.rule_ids();
        for r in &rules {
            self.inner
                .metrics
                .refusals
                .with_label_values(&[r.as_str()])
                .inc();
        }
        let decision = if rules.is_empty() {
            AuditDecision::Failed {
                reason: err.to_string(),
            }
        } else {
            AuditDecision::Refused {
                rules,
                reason: err.to_string(),
            }
        };
        if let Err(e) = self.record(caller, job, decision, now).await {
            tracing::error!(error = %e, "a refusal could not be recorded in the audit log");
        }
        err
    }

    fn count(&self, key: &str, ctx: Option<&pb::SigningContext>, outcome: &str) {
        let profile = ctx
            .and_then(|c| pb::Profile::try_from(c.profile).ok())
            .unwrap_or(pb::Profile::Unspecified)
            .as_str_name();
        self.inner
            .metrics
            .signatures
            .with_label_values(&[key, profile, outcome])
            .inc();
    }

    /// Step 2 for a parsed request: the signer's own rules; their refusals
    /// are recorded like the registry's (the request's context is what was
    /// refused).
    async fn with_context<'k>(
        &self,
        caller: &Caller,
        job: Job<'k>,
        ctx: Option<pb::SigningContext>,
        now: OffsetDateTime,
    ) -> Result<Job<'k>> {
        match self.parse_context(caller, ctx, job.signing_time) {
            Ok(ctx) => Ok(Job { ctx, ..job }),
            Err(e @ Error::Refused(_)) => Err(self.record_failure(caller, &job, e, now).await),
            Err(e) => Err(e),
        }
    }

    /// Steps 3-4 and, for ISSUE, A6; every refusal or failure recorded.
    async fn authorise(
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

    /// Step 5, a failure recorded.
    async fn sign_recorded(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        digest: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        match self.hsm_sign(job.key, job.digest_algorithm, digest).await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.record_failure(caller, job, e, now).await),
        }
    }

    async fn sign_cms_inner(
        &self,
        caller: &Caller,
        r: pb::SignCmsRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignCmsResponse> {
        let key = self.key(&r.key)?;
        let digest_algorithm = Self::digest_algorithm(&r.digest_algorithm)?;
        let signing_time = self.signing_time(r.signing_time, now)?;
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
        })?;
        let document_digest = prepared.message_digest().to_vec();
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm,
            document_digest,
            signing_time,
        };
        let job = self.with_context(caller, job, r.context, now).await?;
        let approval = Approval::Cms {
            approval: &r.approval,
            content: plain,
        };
        let decision = self.authorise(caller, &job, approval, now).await?;
        let signature = self
            .sign_recorded(caller, &job, &prepared.digest_to_sign(), now)
            .await?;
        let cms = prepared.finish(&signature)?;
        // The reply waits for the record: no signature leaves unrecorded.
        let audit = self
            .record(caller, &job, AuditDecision::Signed, now)
            .await?;
        Ok(pb::SignCmsResponse {
            cms,
            audit: Some(audit),
            signatory: Some(signatory(decision)),
        })
    }

    async fn sign_pdf_inner(
        &self,
        caller: &Caller,
        r: pb::SignPdfRequest,
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
        };
        let job = self
            .with_context(caller, job, r.context.clone(), now)
            .await?;

        // The PDF is read and the update drawn before the registry is asked:
        // a broken or encrypted file is the caller's error, refused cheaply.
        let prepared = {
            let chain: Vec<Vec<u8>> = key.chain.iter().map(|c| c.der().to_vec()).collect();
            let certificate = key.certificate.der().to_vec();
            let ctx = job.ctx.clone();
            let max_pdf_bytes = self.inner.max_pdf_bytes;
            let r = r.clone();
            tokio::task::spawn_blocking(move || {
                prepare_pdf(&r, &ctx, &certificate, &chain, signing_time, max_pdf_bytes)
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

        let decision = self
            .authorise(caller, &job, Approval::Pdf(&r.pdf), now)
            .await?;
        let chain: Vec<Vec<u8>> = key.chain.iter().map(|c| c.der().to_vec()).collect();
        let cms = cms_build::prepare(prepared.cades_request(
            key.certificate.der(),
            &chain,
            signing_algorithm(key.scheme, digest_algorithm),
        ))?;
        let signature = self
            .sign_recorded(caller, &job, &cms.digest_to_sign(), now)
            .await?;
        let cms = cms.finish(&signature)?;
        let field_name = prepared.field_name().to_owned();
        let pdf = prepared.finish(&cms).map_err(|e| Error::InvalidField {
            field: "pdf",
            reason: e.to_string(),
        })?;
        let output_sha256 = kyso_pki::crypto::sha256(&pdf).to_vec();
        // The record binds both files: the input's SHA-256 then the
        // output's (the signed original, D7), as `sha256-in-out`.
        let mut both = input_sha256;
        both.extend_from_slice(&output_sha256);
        let job = Job {
            document_digest: both,
            ..job
        };
        let audit = self
            .record_as(caller, &job, AuditDecision::Signed, now, "sha256-in-out")
            .await?;
        Ok(pb::SignPdfResponse {
            pdf,
            audit: Some(audit),
            signatory: Some(signatory(decision)),
            sha256: output_sha256,
            field_name,
        })
    }

    async fn sign_digest_inner(
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
        };
        let job = self.with_context(caller, job, r.context, now).await?;
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

    /// Per-key info for `ListKeys`.
    fn key_infos(&self) -> Vec<pb::KeyInfo> {
        let health = self.inner.hsm.health();
        let mut keys: Vec<&KeySpec> = self.inner.keys.values().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys.into_iter()
            .map(|k| {
                let slots: Vec<pb::SlotHealth> = health
                    .iter()
                    .filter(|h| h.key == k.name)
                    .flat_map(|h| h.slots.iter())
                    .map(|s| pb::SlotHealth {
                        slot: s.slot.clone(),
                        up: s.up,
                        last_error: s.last_error.clone().unwrap_or_default(),
                    })
                    .collect();
                pb::KeyInfo {
                    name: k.name.clone(),
                    certificate: k.certificate.der().to_vec(),
                    chain: k.chain.iter().map(|c| c.der().to_vec()).collect(),
                    fingerprint: k.certificate.fingerprint_hex(),
                    subject: kyso_pki::name::rfc4514(k.certificate.subject()),
                    not_after: Some(prost_types::Timestamp {
                        seconds: k.certificate.not_after().unix_timestamp(),
                        nanos: 0,
                    }),
                    servable: self.inner.hsm.key_servable(&k.name),
                    slots,
                    algorithm: k.scheme.name(DigestAlgorithm::Sha256),
                }
            })
            .collect()
    }

    /// Publishes slot health as metrics; returns whether every key can be served.
    pub fn refresh_health(&self) -> bool {
        let mut all = true;
        for h in self.inner.hsm.health() {
            for s in &h.slots {
                self.inner
                    .metrics
                    .slot_up
                    .with_label_values(&[h.key.as_str(), s.slot.as_str()])
                    .set(i64::from(s.up));
            }
            all &= self.inner.hsm.key_servable(&h.key);
        }
        all
    }

    /// Counts and times a signing request, and turns its outcome into the answer.
    fn answer<T>(
        &self,
        method: &str,
        key: &str,
        ctx: Option<&pb::SigningContext>,
        started: Instant,
        out: Result<T>,
    ) -> Result<Response<T>, Status> {
        self.count(
            key,
            ctx,
            out.as_ref().map_or_else(Error::outcome, |_| "signed"),
        );
        self.observe(method, started);
        out.map(Response::new).map_err(Status::from)
    }

    fn observe(&self, method: &str, started: Instant) {
        self.inner
            .metrics
            .request_seconds
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The PAdES request of a SignPdf, and the prepared update.
// The document flow (`documents.rs`) signs through exactly the path of a direct call:
// the same caller identity, checks, metrics and audit record.
impl SignerService {
    pub(crate) fn identify<T>(&self, req: &Request<T>) -> Result<Caller> {
        self.caller(req)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        (self.inner.clock)()
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn verifier(&self) -> &kyso_validation::verify::Verifier {
        self.inner.own.verifier()
    }

    pub(crate) async fn sign_pdf_as(
        &self,
        caller: &Caller,
        r: pb::SignPdfRequest,
        now: OffsetDateTime,
    ) -> Result<pb::SignPdfResponse> {
        let started = Instant::now();
        let (key, ctx) = (r.key.clone(), r.context.clone());
        let out = self.sign_pdf_inner(caller, r, now).await;
        self.count(
            &key,
            ctx.as_ref(),
            out.as_ref().map_or_else(Error::outcome, |_| "signed"),
        );
        self.observe("SignPdf", started);
        out
    }
}

fn prepare_pdf(
    r: &pb::SignPdfRequest,
    ctx: &pb::SigningContext,
    certificate: &[u8],
    chain: &[Vec<u8>],
    signing_time: OffsetDateTime,
    max_pdf_bytes: usize,
) -> Result<pades::PreparedPdf> {
    let profile = match pb::Profile::try_from(ctx.profile).unwrap_or(pb::Profile::Unspecified) {
        pb::Profile::Approval => pades::Profile::Approval,
        pb::Profile::Issue => pades::Profile::Issue,
        pb::Profile::ScannedIssue => pades::Profile::ScannedIssue,
        pb::Profile::Copy => pades::Profile::Copy,
        pb::Profile::Appendix => pades::Profile::Appendix,
        pb::Profile::Received => pades::Profile::Received,
        pb::Profile::Comment => pades::Profile::Comment,
        pb::Profile::Unspecified => {
            return Err(Error::InvalidField {
                field: "context.profile",
                reason: "required".into(),
            });
        }
    };
    let mut req = pades::PadesRequest::new(profile, certificate, chain, signing_time);
    req.limits.max_bytes = max_pdf_bytes;
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

/// What an ISSUE's A6 check looks at.
enum Approval<'a> {
    /// SignCms, SignDigest: the CMS with the competent person's signature.
    Cms {
        approval: &'a [u8],
        content: Option<&'a [u8]>,
    },
    /// SignPdf: the PDF to seal, which must already carry that signature.
    Pdf(&'a [u8]),
}

fn a6(reason: String) -> Error {
    Error::Refused(vec![Refusal {
        rule: "A6".into(),
        reason,
    }])
}

/// A digest sent by the caller must have its algorithm's length.
fn check_digest_len(alg: DigestAlgorithm, digest: &[u8]) -> Result<()> {
    if digest.len() == alg.output_len() {
        return Ok(());
    }
    Err(Error::InvalidField {
        field: "digest",
        reason: format!(
            "{} bytes, but a {} digest has {}",
            digest.len(),
            alg.name(),
            alg.output_len()
        ),
    })
}

fn signing_algorithm(scheme: Scheme, d: DigestAlgorithm) -> cms_build::SigningAlgorithm {
    match scheme {
        Scheme::RsaPkcs1 => cms_build::SigningAlgorithm::RsaPkcs1(d),
        Scheme::RsaPss => cms_build::SigningAlgorithm::RsaPss(d),
        Scheme::Ecdsa => cms_build::SigningAlgorithm::Ecdsa(d),
    }
}

fn signatory(d: Decision) -> pb::Signatory {
    pb::Signatory {
        holder_name: d.holder_name,
        title: d.title,
        on_behalf_of: d.on_behalf_of,
    }
}

#[tonic::async_trait]
impl pb::signer_server::Signer for SignerService {
    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let started = Instant::now();
        self.caller(&req)?;
        let keys = self.key_infos();
        self.observe("ListKeys", started);
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }

    async fn sign_digest(
        &self,
        req: Request<pb::SignDigestRequest>,
    ) -> Result<Response<pb::SignDigestResponse>, Status> {
        let started = Instant::now();
        let caller = self.caller(&req)?;
        let now = (self.inner.clock)();
        let r = req.into_inner();
        let (key, ctx) = (r.key.clone(), r.context.clone());
        let out = self.sign_digest_inner(&caller, r, now).await;
        self.answer("SignDigest", &key, ctx.as_ref(), started, out)
    }

    async fn sign_cms(
        &self,
        req: Request<pb::SignCmsRequest>,
    ) -> Result<Response<pb::SignCmsResponse>, Status> {
        let started = Instant::now();
        let caller = self.caller(&req)?;
        let now = (self.inner.clock)();
        let r = req.into_inner();
        let (key, ctx) = (r.key.clone(), r.context.clone());
        let out = self.sign_cms_inner(&caller, r, now).await;
        self.answer("SignCms", &key, ctx.as_ref(), started, out)
    }

    async fn sign_pdf(
        &self,
        req: Request<pb::SignPdfRequest>,
    ) -> Result<Response<pb::SignPdfResponse>, Status> {
        let started = Instant::now();
        let caller = self.caller(&req)?;
        let now = (self.inner.clock)();
        let r = req.into_inner();
        let (key, ctx) = (r.key.clone(), r.context.clone());
        let out = self.sign_pdf_inner(&caller, r, now).await;
        self.answer("SignPdf", &key, ctx.as_ref(), started, out)
    }
}

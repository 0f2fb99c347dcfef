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
//!
//! The steps live in modules of their own, shared by the flows: `request` (1-2: the caller,
//! the key, the context and the signer's own rules), `authorise` (2-4, and A6 through
//! `approval`), `record` (5-6: the HSM signature and the audit record); the flows are
//! `cms` (SignCms, SignDigest), `pdf` (SignPdf) and `xml` (the seal over an edXML envelope
//! or status message, for the document flow only). This module holds the service's state,
//! the thin gRPC handlers (ListKeys, SignDigest, SignCms, SignPdf: identify the caller, run the
//! flow, count and time it) and what the document flow (`documents.rs`) calls.

mod approval;
mod authorise;
mod cms;
mod consent;
mod level;
mod pdf;
mod record;
mod request;
mod seal;
mod xml;

pub(crate) use request::Origin;
pub(crate) use xml::{XmlSealRequest, XmlSealed};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::audit::AuditLog;
use crate::authority::{OwnCheck, Registry};
use crate::config::{Caller, KeySpec};
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::metrics::Metrics;

/// The clock: "now" is a parameter of everything time-dependent.
pub use kyso_server::Clock;

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
    anonymous_sign_on_behalf: Vec<String>,
    hsm: Arc<Hsm>,
    registry: Registry,
    own: OwnCheck,
    audit: AuditLog,
    storage: crate::readiness::Storage,
    metrics: Metrics,
    clock: Clock,
    max_content_bytes: usize,
    max_pdf_bytes: usize,
    max_skew: time::Duration,
    consent: crate::consent::ConsentConfig,
    /// A1: the activation tokens this replica issued.
    grants: crate::consent::Grants,
    /// One authorisation at a time per personal key in this replica (the attempt counter is
    /// read and written on the token).
    credentials: HashMap<String, tokio::sync::Mutex<()>>,
    /// The TSA for B-T and above (N1); `None` without `[tsa]`.
    stamper: Option<crate::timestamp::Stamper>,
    /// The level of a request that names none.
    levels: crate::levels::Levels,
    /// Where signatures returned below their level wait for the background upgrade (D7).
    upgrades: Option<crate::upgrade::Upgrades>,
    /// The validation data of the signer's certificates (B-LT); `None`: B-LT refused.
    validation: Option<crate::ltdata::ValidationSource>,
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
    /// Organisations for which an anonymous caller signs on behalf (dev clusters).
    pub anonymous_sign_on_behalf: Vec<String>,
    /// The HSM.
    pub hsm: Arc<Hsm>,
    /// The registry client.
    pub registry: Registry,
    /// N1.
    pub own: OwnCheck,
    /// The audit log.
    pub audit: AuditLog,
    /// Whether the audit log's and the store's volumes can write (no signature otherwise).
    pub storage: crate::readiness::Storage,
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
    /// Holder consent (A1, I5).
    pub consent: crate::consent::ConsentConfig,
    /// The TSA for B-T and above (N1).
    pub stamper: Option<crate::timestamp::Stamper>,
    /// The levels by profile.
    pub levels: crate::levels::Levels,
    /// The upgrade journal (D7).
    pub upgrades: Option<crate::upgrade::Upgrades>,
    /// The validation data of the signer's certificates (B-LT, N1/R1).
    pub validation: Option<crate::ltdata::ValidationSource>,
}

impl SignerService {
    /// Builds the service.
    pub fn new(p: Parts) -> Self {
        let credentials = p
            .keys
            .iter()
            .map(|k| (k.name.clone(), tokio::sync::Mutex::new(())))
            .collect();
        Self {
            inner: Arc::new(Inner {
                credentials,
                grants: crate::consent::Grants::default(),
                consent: p.consent,
                keys: p.keys.into_iter().map(|k| (k.name.clone(), k)).collect(),
                callers: p.callers.into_iter().collect(),
                allow_anonymous: p.allow_anonymous,
                anonymous_sign_on_behalf: p.anonymous_sign_on_behalf,
                hsm: p.hsm,
                registry: p.registry,
                own: p.own,
                audit: p.audit,
                storage: p.storage,
                metrics: p.metrics,
                clock: p.clock,
                max_content_bytes: p.max_content_bytes,
                max_pdf_bytes: p.max_pdf_bytes,
                max_skew: p.max_skew,
                stamper: p.stamper,
                levels: p.levels,
                upgrades: p.upgrades,
                validation: p.validation,
            }),
        }
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
        // Signatures are refused while too many seals are not anchored: not serving.
        all && self.inner.audit.ready_to_sign().is_ok()
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

    pub(crate) fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The TSA (`[tsa]`), if configured.
    pub(crate) fn stamper(&self) -> Option<&crate::timestamp::Stamper> {
        self.inner.stamper.as_ref()
    }

    /// The source of validation data (B-LT).
    pub(crate) fn validation(&self) -> Option<&crate::ltdata::ValidationSource> {
        self.inner.validation.as_ref()
    }

    /// The journal of background upgrades.
    pub(crate) fn upgrades(&self) -> Option<&crate::upgrade::Upgrades> {
        self.inner.upgrades.as_ref()
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
        let out = self
            .sign_pdf_inner(caller, r, Origin::ReceiveIncoming, now)
            .await;
        self.count(
            &key,
            ctx.as_ref(),
            out.as_ref().map_or_else(Error::outcome, |_| "signed"),
        );
        self.observe("SignPdf", started);
        out
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
        let out = self.sign_pdf_inner(&caller, r, Origin::Caller, now).await;
        self.answer("SignPdf", &key, ctx.as_ref(), started, out)
    }

    async fn authorize_signature(
        &self,
        req: Request<pb::AuthorizeSignatureRequest>,
    ) -> Result<Response<pb::AuthorizeSignatureResponse>, Status> {
        let started = Instant::now();
        let caller = self.caller(&req)?;
        let now = (self.inner.clock)();
        let out = self
            .authorize_signature_inner(&caller, req.into_inner(), now)
            .await;
        self.observe("AuthorizeSignature", started);
        out.map(Response::new).map_err(Status::from)
    }
}

//! The `kyso.verifier.v1.Verifier` gRPC service.

use std::pin::Pin;
use std::time::Instant;

use futures::{Stream, StreamExt};
use kyso_pki::cert::Cert;
use kyso_pki::cms::Detached;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::verifier::v1 as pb;
use kyso_validation::certsource::SuppliedCertificates;
use kyso_validation::convert;
use kyso_validation::edxml::EdxmlVerifyOptions;
use kyso_validation::pdf::{PdfLimits, PdfVerifyOptions};
use kyso_validation::verify::{CmsRequest, Verifier};
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::metrics::Metrics;

/// The request's `certificates`, bounded in count and size (a bad one is an
/// INVALID_ARGUMENT naming it; nothing is verified).
fn supplied_certificates(ders: &[Vec<u8>]) -> Result<SuppliedCertificates, Error> {
    SuppliedCertificates::from_der(ders).map_err(|e| Error::field("certificates", e))
}

/// Where "now" comes from; tests substitute a fixed clock.
pub use kyso_server::Clock;

/// `VerifyBatch` messages of one stream being answered at once.
const BATCHES_IN_FLIGHT: usize = 2;

/// Requests up to this size are verified on the serving threads; larger ones on the pool.
const INLINE_BYTES: usize = kyso_server::SMALL_MESSAGE;

/// The service state: the verifier (with its caches), metrics and bounds.
/// Cloned per connection; everything inside is shared.
#[derive(Clone)]
pub struct VerifierService {
    verifier: Verifier,
    metrics: Metrics,
    stream: StreamLimits,
    clock: Clock,
    /// Where the verification work runs (not on the threads serving the connections).
    pool: kyso_server::CpuPool,
}

/// How the items of a `VerifyStream` are admitted: the stream is one call, but its
/// items are work like any request's.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// Items verified at once in one stream.
    pub parallelism: usize,
    /// The deadline of each item (the call's own deadline ends when its headers are sent).
    pub item_timeout: std::time::Duration,
    /// The service's budgets: each item takes a request permit and its bytes.
    pub admission: kyso_server::Admission,
    /// Documents in one `VerifyBatch` message; a larger batch is refused whole.
    pub max_batch_items: usize,
}

impl std::fmt::Debug for VerifierService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierService")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl VerifierService {
    /// A service over `verifier`.
    pub fn new(
        verifier: Verifier,
        metrics: Metrics,
        stream: StreamLimits,
        clock: Clock,
        pool: kyso_server::CpuPool,
    ) -> Self {
        Self {
            verifier,
            metrics,
            stream,
            clock,
            pool,
        }
    }

    /// Runs `work` over a clone of the service for a request of `size` bytes: a large one
    /// on the work pool, a small one (at most [`INLINE_BYTES`]) where it is. Dropping the
    /// returned future (the deadline passed, the client left) stops the work either way.
    ///
    /// Why not everything on the pool: the hand-over to another thread and back costs two
    /// wake-ups, about 5 % of the CPU of a small CMS verification, while the work of a small
    /// request is bounded anyway (the path-building budget, the SET and depth limits): it
    /// cannot hold a serving thread for long. Large documents (hashing megabytes, parsing
    /// a PDF) are what would.
    async fn pooled<T, Fut>(&self, size: usize, work: impl FnOnce(Self) -> Fut) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        if size <= INLINE_BYTES {
            return work(self.clone()).await;
        }
        self.pool.run(work(self.clone())).await?
    }

    /// Verifies one request; the report or a request error.
    async fn verify_one(&self, req: pb::VerifyCmsRequest) -> Result<pb::VerifyCmsResponse, Error> {
        if req.signature.is_empty() {
            return Err(Error::field(
                "signature",
                "empty: a CMS SignedData is required",
            ));
        }
        let digest_alg;
        let detached = match &req.detached {
            None => Detached::None,
            Some(pb::verify_cms_request::Detached::Content(c)) => Detached::Content(c),
            Some(pb::verify_cms_request::Detached::ContentDigest(d)) => {
                digest_alg = match pb::DigestAlgorithm::try_from(d.algorithm) {
                    Ok(pb::DigestAlgorithm::Sha256) => DigestAlgorithm::Sha256,
                    Ok(pb::DigestAlgorithm::Sha384) => DigestAlgorithm::Sha384,
                    Ok(pb::DigestAlgorithm::Sha512) => DigestAlgorithm::Sha512,
                    _ => {
                        return Err(Error::field(
                            "content_digest.algorithm",
                            "must be SHA256, SHA384 or SHA512",
                        ));
                    }
                };
                if d.value.len() != digest_alg.output_len() {
                    return Err(Error::field(
                        "content_digest.value",
                        format!(
                            "{} bytes given, {} has {}",
                            d.value.len(),
                            digest_alg.name(),
                            digest_alg.output_len()
                        ),
                    ));
                }
                Detached::Digest {
                    algorithm: digest_alg,
                    value: &d.value,
                }
            }
        };
        let at = match &req.at {
            None => None,
            Some(t) => Some(
                convert::from_ts(t)
                    .ok_or_else(|| Error::field("at", "not a representable time"))?,
            ),
        };
        let policy = convert::policy_from_pb(req.revocation_policy);
        let supplied = supplied_certificates(&req.certificates)?;
        let verdict_only = req.verdict_only;
        let report = self
            .verifier
            .verify_cms_with(
                CmsRequest {
                    signature: &req.signature,
                    detached,
                    at,
                    policy,
                },
                &supplied,
                (self.clock)(),
            )
            .await?;
        self.metrics.record(&report);
        // The verdict is the same either way; only the rendering of the evidence differs.
        Ok(if verdict_only {
            convert::document_verdict_to_pb(&report)
        } else {
            convert::document_to_pb(&report)
        })
    }

    /// Verifies one PDF; the report or a request error.
    async fn verify_pdf_one(
        &self,
        req: pb::VerifyPdfRequest,
    ) -> Result<pb::VerifyPdfResponse, Error> {
        if req.pdf.is_empty() {
            return Err(Error::field("pdf", "empty: a PDF file is required"));
        }
        let at = match &req.at {
            None => None,
            Some(t) => Some(
                convert::from_ts(t)
                    .ok_or_else(|| Error::field("at", "not a representable time"))?,
            ),
        };
        let options = PdfVerifyOptions {
            at,
            policy: convert::policy_from_pb(req.revocation_policy),
            limits: PdfLimits::default(),
        };
        let supplied = supplied_certificates(&req.certificates)?;
        let report = self
            .verifier
            .verify_pdf_with(&req.pdf, &options, &supplied, (self.clock)())
            .await?;
        self.metrics.record(&report.document());
        Ok(convert::pdf_to_pb(&report))
    }

    async fn verify_edxml_one(
        &self,
        req: pb::VerifyEdxmlRequest,
    ) -> Result<pb::VerifyEdxmlResponse, Error> {
        if req.edxml.is_empty() {
            return Err(Error::field(
                "edxml",
                "empty: an edXML document is required",
            ));
        }
        let at = match &req.at {
            None => None,
            Some(t) => Some(
                convert::from_ts(t)
                    .ok_or_else(|| Error::field("at", "not a representable time"))?,
            ),
        };
        let options = EdxmlVerifyOptions {
            at,
            policy: convert::policy_from_pb(req.revocation_policy),
            ..EdxmlVerifyOptions::default()
        };
        let report = self
            .verifier
            .verify_edxml(&req.edxml, &options, (self.clock)())
            .await?;
        if let Some(s) = &report.signature {
            self.metrics
                .record(&kyso_validation::report::DocumentReport::new(vec![
                    s.clone(),
                ]));
        }
        Ok(convert::edxml_to_pb(&report))
    }

    /// One item of a stream: admitted, verified within its deadline.
    async fn verify_item(
        &self,
        req: pb::VerifyCmsRequest,
    ) -> Result<pb::VerifyCmsResponse, (&'static str, Status)> {
        let limits = &self.stream;
        let size = prost::Message::encoded_len(&req);
        let _permit = limits
            .admission
            .item(size, limits.item_timeout)
            .await
            .map_err(|s| ("shed", s))?;
        let _g = InFlight::new(&self.metrics);
        let work = self.pooled(size, |this| async move { this.verify_one(req).await });
        match tokio::time::timeout(limits.item_timeout, work).await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err((e.outcome(), Status::from(e))),
            Err(_) => Err((
                "deadline",
                Status::deadline_exceeded(format!(
                    "this item was not verified within {} ms",
                    limits.item_timeout.as_millis()
                )),
            )),
        }
    }

    /// One document of a `VerifyStream` or `VerifyBatch`: verified as [`Self::verify_item`],
    /// answered with its `request_id` (a request error is an answer too, the stream goes on).
    async fn answer(&self, req: pb::VerifyCmsRequest, method: &str) -> pb::VerifyStreamResponse {
        let request_id = req.request_id.clone();
        let started = Instant::now();
        let (outcome, result) = match self.verify_item(req).await {
            Ok(report) => ("ok", pb::verify_stream_response::Result::Report(report)),
            Err((outcome, status)) => (
                outcome,
                pb::verify_stream_response::Result::Error(pb_error(&status)),
            ),
        };
        self.observe(method, started, outcome);
        pb::VerifyStreamResponse {
            request_id,
            result: Some(result),
        }
    }

    /// One `VerifyBatch` message: its documents answered in order, at most `parallelism`
    /// of this stream's verified at once (`slots`), or the whole batch refused when it holds
    /// more than `max_batch_items` (nothing of it verified).
    async fn answer_batch(
        &self,
        batch: pb::VerifyCmsBatch,
        slots: std::sync::Arc<tokio::sync::Semaphore>,
    ) -> pb::VerifyCmsBatchResponse {
        let max = self.stream.max_batch_items;
        if batch.items.len() > max {
            self.observe("VerifyBatch", Instant::now(), "too_large");
            return pb::VerifyCmsBatchResponse {
                items: Vec::new(),
                error: Some(pb_error(&Status::resource_exhausted(format!(
                    "a batch of {} documents is over limits.max_batch_items ({max}): send at most {max} per message",
                    batch.items.len()
                )))),
            };
        }
        let answers = batch.items.into_iter().map(|req| {
            let slots = slots.clone();
            async move {
                // The semaphore is never closed; without a slot the item is still bounded
                // by the service's admission.
                let _slot = slots.acquire_owned().await.ok();
                self.answer(req, "VerifyBatch").await
            }
        });
        pb::VerifyCmsBatchResponse {
            items: futures::future::join_all(answers).await,
            error: None,
        }
    }

    fn observe(&self, method: &str, started: Instant, outcome: &str) {
        self.metrics
            .requests
            .with_label_values(&[method, outcome])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A request-level failure as a stream answer carries it.
fn pb_error(status: &Status) -> pb::Error {
    pb::Error {
        code: status.code() as i32,
        message: status.message().to_owned(),
    }
}

/// Decrements the in-flight gauge however the request ends (even if cancelled).
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn new(metrics: &Metrics) -> Self {
        let g = &metrics.in_flight;
        g.inc();
        // A high-water mark: a lost race between two updates only under-reads by one.
        let now = g.get();
        if now > metrics.in_flight_peak.get() {
            metrics.in_flight_peak.set(now);
        }
        Self(g.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

type VerifyBatchOut =
    Pin<Box<dyn Stream<Item = Result<pb::VerifyCmsBatchResponse, Status>> + Send>>;

type VerifyStreamOut = Pin<Box<dyn Stream<Item = Result<pb::VerifyStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::verifier_server::Verifier for VerifierService {
    async fn verify_cms(
        &self,
        request: Request<pb::VerifyCmsRequest>,
    ) -> Result<Response<pb::VerifyCmsResponse>, Status> {
        let _g = InFlight::new(&self.metrics);
        let started = Instant::now();
        let req = request.into_inner();
        let size = prost::Message::encoded_len(&req);
        let result = self
            .pooled(size, |this| async move { this.verify_one(req).await })
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.observe("VerifyCms", started, outcome);
        result.map(Response::new).map_err(Status::from)
    }

    async fn verify_pdf(
        &self,
        request: Request<pb::VerifyPdfRequest>,
    ) -> Result<Response<pb::VerifyPdfResponse>, Status> {
        let _g = InFlight::new(&self.metrics);
        let started = Instant::now();
        let req = request.into_inner();
        let size = prost::Message::encoded_len(&req);
        let result = self
            .pooled(size, |this| async move { this.verify_pdf_one(req).await })
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.observe("VerifyPdf", started, outcome);
        result.map(Response::new).map_err(Status::from)
    }

    async fn verify_edxml(
        &self,
        request: Request<pb::VerifyEdxmlRequest>,
    ) -> Result<Response<pb::VerifyEdxmlResponse>, Status> {
        let _g = InFlight::new(&self.metrics);
        let started = Instant::now();
        let req = request.into_inner();
        let size = prost::Message::encoded_len(&req);
        let result = self
            .pooled(size, |this| async move { this.verify_edxml_one(req).await })
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.observe("VerifyEdxml", started, outcome);
        result.map(Response::new).map_err(Status::from)
    }

    type VerifyStreamStream = VerifyStreamOut;

    async fn verify_stream(
        &self,
        request: Request<Streaming<pb::VerifyCmsRequest>>,
    ) -> Result<Response<Self::VerifyStreamStream>, Status> {
        let incoming = request.into_inner();
        let this = self.clone();
        // `buffered` keeps answers in request order while up to `parallelism` documents
        // are verified at once; the bound is what keeps one greedy stream from taking
        // every core. Each item is admitted like a request (a permit of the concurrency
        // limit, its bytes) and has its own deadline.
        let out = incoming
            .map(move |item| {
                let this = this.clone();
                async move { Ok(this.answer(item?, "VerifyStream").await) }
            })
            .buffered(self.stream.parallelism);
        Ok(Response::new(Box::pin(out)))
    }

    type VerifyBatchStream = VerifyBatchOut;

    /// Who may call: as `VerifyStream` (any client the mTLS layer admits).
    async fn verify_batch(
        &self,
        request: Request<Streaming<pb::VerifyCmsBatch>>,
    ) -> Result<Response<Self::VerifyBatchStream>, Status> {
        let incoming = request.into_inner();
        let this = self.clone();
        // One stream verifies at most `parallelism` documents at once, over all of its
        // batches in flight (the slots); batches are answered in order. Each document
        // is admitted, bounded and timed as a VerifyStream item. Two batches in flight
        // are enough to keep the stream busy (the next one is read while one is verified)
        // and hold at most two decoded messages per stream.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(self.stream.parallelism));
        let out = incoming
            .map(move |batch| {
                let this = this.clone();
                let slots = slots.clone();
                async move { Ok(this.answer_batch(batch?, slots).await) }
            })
            .buffered(BATCHES_IN_FLIGHT);
        Ok(Response::new(Box::pin(out)))
    }

    async fn check_certificate(
        &self,
        request: Request<pb::CheckCertificateRequest>,
    ) -> Result<Response<pb::CheckCertificateResponse>, Status> {
        let _g = InFlight::new(&self.metrics);
        let started = Instant::now();
        let req = request.into_inner();
        let size = prost::Message::encoded_len(&req);
        let result = self
            .pooled(
                size,
                |this| async move { this.check_certificate_one(req).await },
            )
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.observe("CheckCertificate", started, outcome);
        result.map(Response::new).map_err(Status::from)
    }
}

impl VerifierService {
    /// Checks one certificate with its chain; the report or a request error.
    async fn check_certificate_one(
        &self,
        req: pb::CheckCertificateRequest,
    ) -> Result<pb::CheckCertificateResponse, Error> {
        if req.chain.is_empty() {
            return Err(Error::field("chain", "empty: give the certificate first"));
        }
        let mut chain = Vec::with_capacity(req.chain.len());
        for (i, der) in req.chain.iter().enumerate() {
            let c = Cert::from_der(der)
                .map_err(|e| Error::field("chain", format!("certificate {i}: {e}")))?;
            chain.push(c);
        }
        let at = match &req.at {
            None => None,
            Some(t) => Some(
                convert::from_ts(t)
                    .ok_or_else(|| Error::field("at", "not a representable time"))?,
            ),
        };
        let report = self
            .verifier
            .check_certificate(
                &chain,
                at,
                convert::policy_from_pb(req.revocation_policy),
                (self.clock)(),
            )
            .await?;
        Ok(convert::certificate_to_pb(&report))
    }
}

//! kyso signer: organisation (and, where a deployment chooses, personal)
//! keys in network HSM slots, signing only what the registry allows
//! (DOMAIN.md A1-A7) after checking its own certificate (N1), and recording
//! every signature and refusal in a hash-chained, HSM-sealed audit log.
//!
//! State: the HSM slot pools (sessions, logins, key handles, slot health),
//! the cache of own-certificate checks, and the audit log's head. All of it
//! is rebuilt at start-up from the configuration, the tokens and the log
//! file; the log is the only state that must survive a restart.
//!
//! Shutdown: when the `shutdown` future resolves the server stops accepting,
//! lets in-flight requests finish (each one's audit record included), seals
//! the log, and `run` returns.

pub mod audit;
pub mod authority;
pub mod config;
pub mod csr;
pub mod documents;
pub mod error;
pub mod hsm;
pub mod metrics;
pub mod service;
pub mod store;
pub mod usage;

/// Room in a SignPdf message beyond the PDF: images, context, and in the
/// reply the appearances and the CMS.
const PDF_MESSAGE_OVERHEAD: usize = 4 << 20;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kyso_proto::signer::v1::signer_server::SignerServer;
use kyso_revocation::Fetcher;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use service::{Clock, SignerService};

use crate::audit::{AuditConfig, AuditLog, SealError, SealSignature, Sealer};
use crate::hsm::Hsm;

/// Listeners for [`serve`]; tests bind both to `127.0.0.1:0`.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// Prometheus `/metrics`, if exposed.
    pub metrics: Option<TcpListener>,
}

/// Runs the signer on `listener` (gRPC), binding the metrics port from the
/// configuration, until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let metrics = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| Error::Io {
            context: format!("binding metrics on {addr}"),
            source,
        })?),
        None => None,
    };
    serve(
        config,
        Listeners {
            grpc: listener,
            metrics,
        },
        system_clock(),
        shutdown,
    )
    .await
}

/// The clock of production: the system time.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}

/// Seals the audit log with an HSM key.
#[derive(Debug)]
struct HsmSealer {
    hsm: Arc<Hsm>,
    key: config::KeySpec,
}

impl Sealer for HsmSealer {
    fn seal<'a>(
        &'a self,
        message: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<SealSignature, SealError>> {
        Box::pin(async move {
            let d = kyso_pki::crypto::DigestAlgorithm::Sha256;
            let digest = d.digest(message);
            let signature = self
                .hsm
                .sign(&self.key.name, self.key.scheme.mechanism(d), &digest)
                .await
                .map_err(SealError::new)?;
            let algorithm = match self.key.scheme {
                config::Scheme::Ecdsa => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                _ => const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            };
            Ok(SealSignature {
                algorithm,
                key_name: self.key.name.clone(),
                certificate_fingerprint: self.key.certificate.fingerprint_hex(),
                signature,
            })
        })
    }
}

/// Runs the signer on given listeners with a given clock.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let loaded = config.load()?;
    let metrics = metrics::Metrics::new()?;
    let pki_metrics = kyso_revocation::PkiMetrics::register(&metrics.registry)?;

    // Loading modules and logging in blocks; a key that does not match its
    // certificate stops the start here, loudly.
    let hsm_config = loaded.hsm;
    let hsm = tokio::task::spawn_blocking(move || Hsm::open(hsm_config))
        .await
        .map_err(|e| Error::Config(vec![format!("hsm: start-up task failed: {e}")]))??;
    let hsm = Arc::new(hsm);
    {
        let m = metrics.clone();
        hsm.set_observer(Arc::new(move |e: &hsm::SignEvent<'_>| {
            m.pool_wait_seconds
                .with_label_values(&[e.slot])
                .observe(e.pool_wait.as_secs_f64());
            m.hsm_call_seconds
                .with_label_values(&[e.slot, e.outcome.as_str()])
                .observe(e.latency.as_secs_f64());
        }));
    }

    let sealer: Option<Arc<dyn Sealer>> = match &config.audit.seal_key {
        Some(name) => loaded.keys.iter().find(|k| &k.name == name).map(|k| {
            Arc::new(HsmSealer {
                hsm: hsm.clone(),
                key: k.clone(),
            }) as Arc<dyn Sealer>
        }),
        None => None,
    };
    let audit = AuditLog::open(
        &config.audit.path,
        AuditConfig {
            seal_every_records: sealer.as_ref().map(|_| config.audit.seal_every_records),
            ..AuditConfig::default()
        },
        sealer.clone(),
    )
    .await
    .map_err(|e| Error::Audit(e.to_string()))?;
    let periodic_seal = sealer.as_ref().map(|_| {
        let c = clock.clone();
        audit.spawn_periodic_seal(
            Duration::from_secs(config.audit.seal_every_secs.max(1)),
            move || c(),
        )
    });

    let fetcher = Fetcher::new(loaded.pki.revocation.fetch.clone(), pki_metrics.clone())?;
    let verifier = kyso_validation::verify::Verifier::new(loaded.pki, fetcher, pki_metrics);
    let own = authority::OwnCheck::new(verifier, Duration::from_secs(config.own_check_ttl_secs));
    let registry = authority::Registry::connect_lazy(
        &config.registry.url,
        loaded.registry_tls,
        Duration::from_millis(config.registry.timeout_ms),
    )?;
    let usage_registry = registry.clone();
    let service = SignerService::new(service::Parts {
        keys: loaded.keys,
        callers: loaded.callers,
        allow_anonymous: config.allow_anonymous,
        hsm: hsm.clone(),
        registry,
        own,
        audit: audit.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        max_content_bytes: config.max_content_bytes,
        max_pdf_bytes: config.max_pdf_bytes,
        max_skew: time::Duration::seconds(
            i64::try_from(config.max_clock_skew_secs).unwrap_or(i64::MAX),
        ),
    });

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let ready: kyso_server::metrics::Ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Health follows the slots: NOT_SERVING while some key has no slot that
    // can sign with it, so the pod leaves the load balancer until recovery.
    let health_task = {
        let service = service.clone();
        let reporter = health_reporter.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let ok = service.refresh_health();
                ready.store(ok, std::sync::atomic::Ordering::Relaxed);
                if last != Some(ok) {
                    if ok {
                        reporter.set_serving::<SignerServer<SignerService>>().await;
                    } else {
                        tracing::warn!("a key has no slot that can sign: NOT_SERVING");
                        reporter
                            .set_not_serving::<SignerServer<SignerService>>()
                            .await;
                    }
                    last = Some(ok);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kyso_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(vec![format!("reflection: {e}")]))?;

    // A SignPdf request carries the whole PDF, and its reply the PDF plus
    // the signature: the message limit must fit the largest PDF accepted.
    let limit = config
        .limits
        .max_message_bytes
        .max(config.max_pdf_bytes.saturating_add(PDF_MESSAGE_OVERHEAD));
    // The document flow signs through the same service (same checks, same audit log).
    let store = store::DocumentStore::open(&config.documents_dir)
        .map_err(|e| Error::Config(vec![format!("documents_dir: {e}")]))?;
    let documents = kyso_proto::documents::v1::documents_server::DocumentsServer::new(
        documents::DocumentsService::new(service.clone(), store),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let documents = kyso_server::Limited::new(documents, config.limits.max_concurrent_requests);
    let signer_svc = SignerServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    // Order, outside in: tonic's deadline (timeout, which honours a shorter
    // client grpc-timeout) -> load shedding -> global concurrency limit ->
    // the service. The HSM's per-slot session pools bound the signing itself;
    // the global limit keeps the queue in front of them short, and what does
    // not fit is shed with RESOURCE_EXHAUSTED instead of waiting unbounded.
    let limited = kyso_server::Limited::new(signer_svc, config.limits.max_concurrent_requests);
    let mut builder = tonic::transport::Server::builder().timeout(config.request_timeout());
    if let Some(tls) = loaded.tls {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(limited)
        .add_service(documents);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // R2: signatures counted from the audit log and sent to the registry in batches; see
    // `usage` for why this is exactly once.
    let usage_task = (config.audit.report_usage_every_secs > 0).then(|| {
        let cursor = config.audit.usage_cursor.clone().unwrap_or_else(|| {
            let mut p = config.audit.path.clone().into_os_string();
            p.push(".usage");
            p.into()
        });
        let instance = config
            .audit
            .instance
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "signer".to_owned());
        let reporter =
            usage::UsageReporter::new(config.audit.path.clone(), cursor, instance, usage_registry);
        tokio::spawn(reporter.run(
            Duration::from_secs(config.audit.report_usage_every_secs),
            stop_tx.subscribe(),
        ))
    });
    let metrics_task = listeners.metrics.map(|l| {
        tracing::info!(addr = ?l.local_addr().ok(), "metrics serving");
        let mut rx = stop_rx.clone();
        tokio::spawn(kyso_server::metrics::serve_with_readiness(
            metrics.registry.clone(),
            None,
            Some(ready.clone()),
            l,
            async move {
                let _ = rx.changed().await;
            },
        ))
    });
    let grpc_addr = listeners.grpc.local_addr().ok();
    let incoming = kyso_server::net::incoming(listeners.grpc);
    tracing::info!(addr = ?grpc_addr, "signer serving");
    let result = router
        .serve_with_incoming_shutdown(incoming, shutdown.map(|_| ()))
        .await;
    health_task.abort();
    health_reporter
        .set_not_serving::<SignerServer<SignerService>>()
        .await;
    if let Some(t) = periodic_seal {
        t.abort();
    }
    // Every in-flight request has its record; seal the head for the auditor.
    if let Err(e) = audit.close(clock()).await {
        tracing::error!(error = %e, "closing the audit log");
    }
    let _ = stop_tx.send(true);
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    // The last round reports what the log gained since the previous one; a registry that
    // does not answer in time leaves it pending for the next start.
    if let Some(t) = usage_task
        && tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .is_err()
    {
        tracing::warn!("usage report (R2) left pending at shutdown");
    }
    tracing::info!("signer stopped");
    result.map_err(Error::from)
}

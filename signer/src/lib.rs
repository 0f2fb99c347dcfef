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

pub mod anchor;
pub mod archive;
pub mod audit;
pub mod authority;
pub mod certbook;
pub mod config;
pub mod consent;
pub mod csr;
pub mod documents;
pub mod error;
pub mod failpoint;
pub mod hsm;
pub mod journal;
pub mod levels;
pub mod ltdata;
pub mod metrics;
pub mod pades_lt;
pub mod readiness;
pub mod service;
pub mod store;
pub mod timestamp;
pub mod upgrade;
pub mod usage;

/// Room in a SignPdf message beyond the PDF: images, context, and in the
/// reply the appearances and the CMS.
const PDF_MESSAGE_OVERHEAD: usize = 4 << 20;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kyso_proto::signer::v1::signer_server::SignerServer;
use kyso_revocation::Fetcher;

pub use config::Config;
pub use error::{Error, Result};
pub use kyso_server::{Listeners, system_clock};
pub use service::{Clock, SignerService};

use crate::audit::{AuditConfig, AuditLog, SealError, SealSignature, Sealer};
use crate::hsm::Hsm;

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
    let registry = authority::Registry::connect_lazy(
        &config.registry.url,
        loaded.registry_tls.clone(),
        Duration::from_millis(config.registry.timeout_ms),
    )?;
    // A log behind its last anchor (cut back, deleted, an older copy) stops the start here,
    // before the HSM is opened or the log touched (a missing file would be created).
    let log_id = config.audit_log_id();
    if loaded.seal.is_some() {
        anchor::check_at_start(
            &registry,
            &log_id,
            &config.audit.path,
            Duration::from_secs(config.audit.anchor_startup_wait_secs),
        )
        .await?;
    }
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

    // The audit-seal key is in the HSM but not among the keys callers name (config.rs
    // refuses any overlap), so no request can make a seal.
    let sealer: Option<Arc<dyn Sealer>> = loaded.seal.clone().map(|key| {
        Arc::new(HsmSealer {
            hsm: hsm.clone(),
            key,
        }) as Arc<dyn Sealer>
    });
    let audit = AuditLog::open(
        &config.audit.path,
        AuditConfig {
            seal_every_records: sealer.as_ref().map(|_| config.audit.seal_every_records),
            max_unanchored_seals: sealer.as_ref().map(|_| config.audit.max_unanchored_seals),
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

    // N1: the TSA has a fetcher of its own (its own keep-alive pool and breaker, shared by
    // every request in flight); the configured URL is the operator's, so it is fetched like a
    // URL rewrite target (the outbound policy lets the operator name any host).
    let stamper = match &loaded.tsa {
        Some(t) => {
            let mut fetch = loaded.pki.revocation.fetch.clone();
            fetch.url_rewrites.insert(
                0,
                kyso_revocation::UrlRewrite {
                    from: t.client.url.clone(),
                    to: t.client.url.clone(),
                },
            );
            let tsa_fetcher = Fetcher::new(fetch, pki_metrics.clone())?;
            Some(timestamp::Stamper::new(
                kyso_revocation::tsa::TsaClient::new(t.client.clone(), tsa_fetcher),
                t.anchors.clone(),
                t.budget,
                t.digest,
                t.pdf_reserve,
            ))
        }
        None => None,
    };
    let store = store::DocumentStore::open(&config.documents_dir)
        .map_err(|e| Error::Config(vec![format!("documents_dir: {e}")]))?;
    let upgrades = upgrade::Upgrades::open(store.clone())
        .map_err(|e| Error::Config(vec![format!("documents_dir: upgrades: {e}")]))?;
    let fetcher = Fetcher::new(loaded.pki.revocation.fetch.clone(), pki_metrics.clone())?;
    let verifier = kyso_validation::verify::Verifier::new(loaded.pki, fetcher, pki_metrics);
    // B-LT (N1, R1): the path and revocation DER of the signer's own certificates, fetched
    // under the same [trust] and kept as long as the own-certificate check keeps a pass.
    let validation = ltdata::ValidationSource::new(
        verifier.clone(),
        Duration::from_secs(config.own_check_ttl_secs),
    );
    let own = authority::OwnCheck::new(verifier, Duration::from_secs(config.own_check_ttl_secs));
    let usage_registry = registry.clone();
    // Readiness follows the volumes of the audit log and the store as well as the slots,
    // and no signature is made while they cannot write.
    let audit_dir = match config.audit.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let storage = readiness::Storage::new([audit_dir, config.documents_dir.clone()]);
    let anchor_registry = registry.clone();
    let service = SignerService::new(service::Parts {
        keys: loaded.keys,
        callers: loaded.callers,
        allow_anonymous: config.allow_anonymous,
        anonymous_sign_on_behalf: config.anonymous_sign_on_behalf.clone(),
        hsm: hsm.clone(),
        registry,
        own,
        audit: audit.clone(),
        storage: storage.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        max_content_bytes: config.max_content_bytes,
        max_pdf_bytes: config.max_pdf_bytes,
        consent: config.consent.clone(),
        max_skew: time::Duration::seconds(
            i64::try_from(config.max_clock_skew_secs).unwrap_or(i64::MAX),
        ),
        stamper: stamper.clone(),
        levels: loaded.levels.clone(),
        upgrades: Some(upgrades.clone()),
        validation: Some(validation.clone()),
    });

    // A SignPdf request carries the whole PDF, and its reply the PDF plus
    // the signature: the message limit must fit the largest PDF accepted.
    let limits = &config.limits;
    let limit = limits
        .max_message_bytes
        .max(config.max_pdf_bytes.saturating_add(PDF_MESSAGE_OVERHEAD));
    // The document flow signs through the same service (same checks, same audit log).
    let journals = journal::Journals::open(&config.documents_dir)
        .map_err(|e| Error::Config(vec![format!("documents_dir: {e}")]))?;
    let probe_task = storage.spawn(audit.clone());
    failpoint::announce();
    let documents = kyso_proto::documents::v1::documents_server::DocumentsServer::new(
        documents::DocumentsService::new(
            service.clone(),
            store,
            journals,
            storage.clone(),
            time::Duration::seconds(
                i64::try_from(config.receipt_time_bound_secs).unwrap_or(i64::MAX),
            ),
        ),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let signer_svc = SignerServer::new(service.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    // Order, outside in: tonic's deadline (timeout, which honours a shorter
    // client grpc-timeout) -> load shedding -> global concurrency limit ->
    // the service. The HSM's per-slot session pools bound the signing itself;
    // the global limit keeps the queue in front of them short, and what does
    // not fit is shed with RESOURCE_EXHAUSTED instead of waiting unbounded.
    let mut host = kyso_server::Host::new(
        "signer",
        limits.max_concurrent_requests,
        limits.request_timeout(),
        loaded.tls,
        metrics.registry.clone(),
    )?
    .limited(signer_svc)
    .limited(documents);
    // Health follows the slots: NOT_SERVING while some key has no slot that
    // can sign with it, so the pod leaves the load balancer until recovery; and the
    // volumes: NOT_SERVING while the audit log or the document store cannot write.
    let health_audit = audit.clone();
    let health_task = host.own_health().map(|health| {
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let slots = service.refresh_health();
                let writable = storage.ready() && health_audit.writable();
                let ok = slots && writable;
                if last != Some(ok) {
                    if !slots {
                        tracing::warn!(
                            "a key has no slot that can sign, or too many audit seals are not anchored: NOT_SERVING"
                        );
                    }
                    if !writable {
                        tracing::warn!(
                            failure = storage
                                .failure()
                                .unwrap_or_else(|| "audit log write failed".into()),
                            "the audit log or the document store cannot write: NOT_SERVING"
                        );
                    }
                    health.set(ok).await;
                    last = Some(ok);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });

    let (stop_tx, _) = tokio::sync::watch::channel(false);
    let anchor_task = sealer.as_ref().map(|_| {
        anchor::spawn(
            audit.clone(),
            anchor_registry.clone(),
            log_id.clone(),
            stop_tx.subscribe(),
        )
    });
    // R2: signatures counted from the audit log and sent to the registry in batches; see
    // `usage` for why this is exactly once.
    let usage_task = (config.audit.report_usage_every_secs > 0).then(|| {
        let cursor = config.audit.usage_cursor.clone().unwrap_or_else(|| {
            let mut p = config.audit.path.clone().into_os_string();
            p.push(".usage");
            p.into()
        });
        let instance = config.audit_instance();
        let reporter =
            usage::UsageReporter::new(config.audit.path.clone(), cursor, instance, usage_registry);
        tokio::spawn(reporter.run(
            Duration::from_secs(config.audit.report_usage_every_secs),
            stop_tx.subscribe(),
        ))
    });
    // D7: signatures returned below their level are raised as soon as the TSA answers.
    let upgrade_task = stamper.map(|s| {
        upgrades.spawn(
            s,
            Some(validation),
            audit.clone(),
            clock.clone(),
            stop_tx.subscribe(),
        )
    });
    let result = host.serve(listeners, shutdown).await;
    // An upgrade cut short stays journaled and is done again at the next start.
    if let Some(t) = upgrade_task {
        t.abort();
    }
    if let Some(t) = health_task {
        t.abort();
    }
    probe_task.abort();
    if let Some(t) = periodic_seal {
        t.abort();
    }
    // Every in-flight request has its record; seal the head for the auditor.
    if let Err(e) = audit.close(clock()).await {
        tracing::error!(error = %e, "closing the audit log");
    }
    let _ = stop_tx.send(true);
    if let Some(t) = anchor_task {
        let _ = t.await;
        anchor::anchor_last(&audit, &anchor_registry, &log_id).await;
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

impl kyso_server::bin::Service for Config {
    const NAME: &'static str = "kyso-signer";
    type Error = Error;

    fn addresses(&mut self) -> (&mut SocketAddr, &mut Option<SocketAddr>) {
        (&mut self.listen, &mut self.metrics_listen)
    }

    fn check(&self) -> Result<()> {
        let loaded = self.load()?;
        // The binary checks the log against its last anchor here too, so that a rolled-back
        // log stops it before anything binds (`serve` checks again for in-process starts).
        if loaded.seal.is_some() && tokio::runtime::Handle::try_current().is_err() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Config(vec![format!("runtime: {e}")]))?;
            rt.block_on(async {
                let registry = authority::Registry::connect_lazy(
                    &self.registry.url,
                    loaded.registry_tls.clone(),
                    Duration::from_millis(self.registry.timeout_ms),
                )?;
                anchor::check_at_start(
                    &registry,
                    &self.audit_log_id(),
                    &self.audit.path,
                    Duration::from_secs(self.audit.anchor_startup_wait_secs),
                )
                .await
            })?;
        }
        Ok(())
    }
}

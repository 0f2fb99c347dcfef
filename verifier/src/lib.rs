//! kyso verifier: a stateless gRPC service that verifies CMS/CAdES
//! signatures (DOMAIN.md V1-V5, N2, N3, W3) for every receiving clerk and the
//! document exchange.
//!
//! State: none that matters. Each replica holds caches (verified certificate
//! links, AIA downloads, OCSP answers and parsed CRLs) that any replica can
//! rebuild; losing a pod loses nothing.
//!
//! Shutdown: when the `shutdown` future resolves the server stops accepting,
//! lets in-flight requests finish, and `run` returns.

pub mod config;
pub mod error;
pub mod metrics;
pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kyso_proto::verifier::v1::verifier_server::VerifierServer;
use kyso_revocation::Fetcher;

pub use config::Config;
pub use error::{Error, Result};
pub use kyso_server::{Listeners, system_clock};
pub use service::{Clock, VerifierService};

/// Runs the verifier on given listeners with a given clock until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let loaded = config.load()?;
    let metrics = metrics::Metrics::new()?;
    let fetcher = Fetcher::new(loaded.pki.revocation.fetch.clone(), metrics.pki.clone())?;
    let verifier = kyso_validation::verify::Verifier::new(loaded.pki, fetcher, metrics.pki.clone());
    let revocation = verifier.revocation().clone();
    metrics.set_cache_bounds(revocation.config());
    let limits = &config.limits;
    let admission = kyso_server::Admission::new(
        limits.max_concurrent_requests,
        Some(limits.max_bytes_in_flight),
    );
    let service = VerifierService::new(
        verifier,
        metrics.clone(),
        service::StreamLimits {
            parallelism: limits.stream_parallelism,
            item_timeout: Duration::from_millis(limits.request_timeout_ms),
            admission: admission.clone(),
            max_batch_items: limits.max_batch_items,
        },
        clock,
        kyso_server::CpuPool::new("verifier", limits.cpu_threads)?,
    );
    let verifier_svc = VerifierServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    // moka counts entries lazily: settle the counts before each scrape so the cache-size
    // gauges say what the caches hold now.
    let gauges = metrics.clone();
    let refresh: kyso_server::metrics::Refresh = Arc::new(move || {
        let r = revocation.clone();
        let gauges = gauges.clone();
        Box::pin(async move {
            let stats = r.cache_stats().await;
            gauges.set_cache_sizes(&stats);
        })
    });
    kyso_server::Host::new(
        "verifier",
        limits.max_concurrent_requests,
        Duration::from_millis(limits.request_timeout_ms),
        loaded.tls,
        metrics.registry.clone(),
    )?
    .refresh(refresh)
    .limited_with(verifier_svc, admission)
    .serve(listeners, shutdown)
    .await?;
    Ok(())
}

impl kyso_server::bin::Service for Config {
    const NAME: &'static str = "kyso-verifier";
    type Error = Error;

    fn addresses(&mut self) -> (&mut SocketAddr, &mut Option<SocketAddr>) {
        (&mut self.listen, &mut self.metrics_listen)
    }

    fn check(&self) -> Result<()> {
        self.load().map(|_| ())
    }
}

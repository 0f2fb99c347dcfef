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
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kyso_proto::verifier::v1::verifier_server::VerifierServer;
use kyso_revocation::Fetcher;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use service::{Clock, VerifierService};

/// Listeners for [`serve`]; tests bind both to `127.0.0.1:0`.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// Prometheus `/metrics`, if exposed.
    pub metrics: Option<TcpListener>,
}

/// Runs the verifier on `listener` (gRPC), binding the metrics port from the
/// configuration, until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let loaded = config.load()?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| Error::Io {
            context: format!("binding metrics on {addr}"),
            source,
        })?),
        None => None,
    };
    serve_loaded(
        config,
        loaded,
        Listeners {
            grpc: listener,
            metrics,
        },
        system_clock(),
        shutdown,
    )
    .await
}

/// Runs the verifier on given listeners with a given clock.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let loaded = config.load()?;
    serve_loaded(config, loaded, listeners, clock, shutdown).await
}

/// The clock of production: the system time.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}

async fn serve_loaded(
    config: Config,
    loaded: config::Loaded,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let metrics = metrics::Metrics::new()?;
    let fetcher = Fetcher::new(loaded.pki.revocation.fetch.clone(), metrics.pki.clone())?;
    let verifier = kyso_validation::verify::Verifier::new(loaded.pki, fetcher, metrics.pki.clone());
    let revocation = verifier.revocation().clone();
    let service = VerifierService::new(
        verifier,
        metrics.clone(),
        config.limits.stream_parallelism,
        clock,
    );

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<VerifierServer<VerifierService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kyso_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(vec![format!("reflection: {e}")]))?;

    let limit = config.limits.max_message_bytes;
    let verifier_svc = VerifierServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);

    // Only the verifier sits behind the limits (see `stack`); the request
    // deadline is tonic's `timeout`, which also honours a shorter
    // `grpc-timeout` sent by the client.
    let limited = kyso_server::Limited::new(verifier_svc, config.limits.max_concurrent_requests);

    let mut builder = tonic::transport::Server::builder()
        .timeout(Duration::from_millis(config.limits.request_timeout_ms));
    if let Some(tls) = loaded.tls {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(limited);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_task = listeners.metrics.map(|l| {
        let mut rx = stop_rx.clone();
        // moka counts entries lazily: settle the counts before each scrape so
        // the cache-size gauges say what the caches hold now.
        let revocation = revocation.clone();
        let refresh: kyso_server::metrics::Refresh = Arc::new(move || {
            let r = revocation.clone();
            Box::pin(async move {
                r.cache_stats().await;
            })
        });
        tokio::spawn(kyso_server::metrics::serve(
            metrics.registry.clone(),
            Some(refresh),
            l,
            async move {
                let _ = rx.changed().await;
            },
        ))
    });
    let grpc_addr = listeners.grpc.local_addr().ok();
    let incoming = kyso_server::net::incoming(listeners.grpc);
    tracing::info!(addr = ?grpc_addr, "verifier serving");
    let result = router
        .serve_with_incoming_shutdown(incoming, shutdown.map(|_| ()))
        .await;
    health_reporter
        .set_not_serving::<VerifierServer<VerifierService>>()
        .await;
    let _ = stop_tx.send(true);
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    tracing::info!("verifier stopped");
    result.map_err(Error::from)
}

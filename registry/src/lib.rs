//! kyso registry: the subscriber manager's book (organisations, people,
//! titles, certificates, custodians, delegations, document types) and the
//! authority policy the signer and the verifier consult (DOMAIN.md A1-A7,
//! I1-I3, N4, N7, V3, V4).
//!
//! State: the database (SQLite file by default, PostgreSQL by URL). Every
//! change is one transaction together with its event-log entry, so the log
//! and the state never disagree.
//!
//! Shutdown: when the `shutdown` future resolves the server stops accepting,
//! lets in-flight requests finish, and `run` returns.

pub mod authority;
pub mod book;
pub mod cert;
pub mod config;
pub mod convert;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod service;
pub mod storage;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kyso_proto::registry::v1::registry_server::RegistryServer;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use service::{Clock, RegistryService};
/// The sqlx of [`storage::Db::pool`], for operators' tools and tests that query the pool.
pub use sqlx;

/// Listeners for [`serve`]; tests bind both to `127.0.0.1:0`.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// Prometheus `/metrics`, if exposed.
    pub metrics: Option<TcpListener>,
}

/// Runs the registry on `listener` (gRPC), binding the metrics port from the
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

/// Runs the registry on given listeners with a given clock.
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
    let db = storage::Db::connect(
        &config.database_url,
        config.database.max_connections,
        Duration::from_millis(config.database.acquire_timeout_ms),
        Duration::from_millis(config.database.busy_timeout_ms),
        metrics.db_duration.clone(),
    )
    .await?;
    tracing::info!(backend = ?db.backend(), "registry database ready");
    let store = store::Store::new(db, loaded.mail_domain);
    let book = store.book();
    book.backfill_search_keys().await?;
    // Authorize and CheckAuthority answer from memory, kept in step with every commit.
    let store = store.with_index().await?;
    let service = RegistryService::new(store, metrics.clone(), clock.clone());
    // The renewal-window gauge is counted from the book when scraped, so it is never stale.
    let refresh: kyso_server::metrics::Refresh = {
        let metrics = metrics.clone();
        Arc::new(move || {
            let book = book.clone();
            let metrics = metrics.clone();
            let at = clock().unix_timestamp();
            Box::pin(async move {
                for days in metrics::EXPIRY_WINDOWS {
                    let window = days.to_string();
                    for kind in ["personal", "organisation"] {
                        metrics.expiring.with_label_values(&[kind, &window]).set(0);
                    }
                    match book.count_expiring(days, at).await {
                        Ok(counts) => {
                            for (kind, n) in counts {
                                metrics.expiring.with_label_values(&[&kind, &window]).set(n);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "counting expiring certificates"),
                    }
                }
            })
        })
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<RegistryServer<RegistryService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kyso_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(vec![format!("reflection: {e}")]))?;

    let limit = config.limits.max_message_bytes;
    let registry_svc = RegistryServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    // Only the registry sits behind the limits (see `stack`), so probes answer under load.
    let limited = kyso_server::Limited::new(registry_svc, config.limits.max_concurrent_requests);

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
        tokio::spawn(kyso_server::metrics::serve(
            metrics.registry.clone(),
            Some(refresh.clone()),
            l,
            async move {
                let _ = rx.changed().await;
            },
        ))
    });
    let grpc_addr = listeners.grpc.local_addr().ok();
    tracing::info!(addr = ?grpc_addr, "registry serving");
    let result = router
        .serve_with_incoming_shutdown(
            kyso_server::net::incoming(listeners.grpc),
            shutdown.map(|_| ()),
        )
        .await;
    health_reporter
        .set_not_serving::<RegistryServer<RegistryService>>()
        .await;
    let _ = stop_tx.send(true);
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    tracing::info!("registry stopped");
    result.map_err(Error::from)
}

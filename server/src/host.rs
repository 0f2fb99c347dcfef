//! The service host: what serving a kyso service takes besides the service itself.
//!
//! A service builds its gRPC servers and hands them to a [`Host`], which puts them behind
//! the load limits ([`Limited`]), adds health and reflection outside the limits (a probe
//! answers under load), applies the request deadline and TLS, sets TCP_NODELAY on every
//! accepted connection, serves `/metrics`, `/healthz` and `/readyz` on the metrics port,
//! and stops gracefully: when the shutdown future resolves it stops accepting, lets
//! in-flight requests finish, reports NOT_SERVING and closes the metrics port.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::Registry;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::metrics::{Ready, Refresh};
use crate::tls::Tls;
use crate::{Admission, Limited, net};

/// What the host can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reflection service could not read the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC transport failed (TLS set-up, serving).
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The sockets a service serves on; tests bind both to `127.0.0.1:0`.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: tokio::net::TcpListener,
    /// Prometheus `/metrics`, `/healthz` and `/readyz`, if exposed.
    pub metrics: Option<tokio::net::TcpListener>,
}

impl Listeners {
    /// Binds `listen` and, when given, `metrics_listen`; the error names what failed.
    pub async fn bind(
        listen: SocketAddr,
        metrics_listen: Option<SocketAddr>,
    ) -> Result<Self, String> {
        let grpc = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let metrics = match metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("binding metrics on {addr}: {e}"))?,
            ),
            None => None,
        };
        Ok(Self { grpc, metrics })
    }
}

/// The gRPC health of a service and the `/readyz` of its metrics port, set together
/// (kubelet's gRPC probes speak plaintext only, so with TLS on `/readyz` is how
/// Kubernetes sees the same readiness).
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    service: &'static str,
    ready: Ready,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// SERVING (and `/readyz` 200) or NOT_SERVING (and 503).
    pub async fn set(&self, serving: bool) {
        self.ready.store(serving, Ordering::Relaxed);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status(self.service, status).await;
    }
}

/// A service's gRPC servers with everything around them; see the module documentation.
pub struct Host {
    name: &'static str,
    max_concurrent_requests: usize,
    request_timeout: Duration,
    tls: Option<Tls>,
    routes: RoutesBuilder,
    health: Option<Health>,
    reporter: HealthReporter,
    own_health: bool,
    metrics: Registry,
    refresh: Option<Refresh>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host for the service `name` (`verifier`, ...: it names the log lines), with its
    /// limits (the concurrency limit and the request deadline; the message size limit is
    /// set on each generated server), its loaded TLS (`None`: plaintext) and the registry
    /// `/metrics` renders.
    /// Health and reflection (of kyso's and the health service's descriptor sets) are
    /// served outside the limits.
    pub fn new(
        name: &'static str,
        max_concurrent_requests: usize,
        request_timeout: Duration,
        tls: Option<Tls>,
        metrics: Registry,
    ) -> Result<Self, Error> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kyso_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let mut routes = Routes::builder();
        routes.add_service(health_service).add_service(reflection);
        Ok(Self {
            name,
            max_concurrent_requests,
            request_timeout,
            tls,
            routes,
            health: None,
            reporter,
            own_health: false,
            metrics,
            refresh: None,
        })
    }

    /// Work to do before each scrape of `/metrics` (settling lazily counted gauges).
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Serves `server` behind the load limits: at most `max_concurrent_requests` of its
    /// requests at once across all connections (each limited server has its own count),
    /// the rest shed. The first server added is the one whose health the host reports.
    pub fn limited<S>(self, server: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let admission = Admission::new(self.max_concurrent_requests, None);
        self.limited_with(server, admission)
    }

    /// [`Self::limited`] with the given budgets, which the service also holds (to count
    /// the items of its streams against them).
    pub fn limited_with<S>(mut self, server: S, admission: Admission) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        if self.health.is_none() {
            self.health = Some(Health {
                reporter: self.reporter.clone(),
                service: S::NAME,
                ready: Arc::new(AtomicBool::new(false)),
            });
        }
        self.routes.add_service(Limited::new(server, admission));
        self
    }

    /// The health of the first limited server, for a service that reports it itself (the
    /// signer follows its HSM slots). Without this call the host reports SERVING from the
    /// start of serving to its end.
    pub fn own_health(&mut self) -> Option<Health> {
        self.own_health = true;
        self.health.clone()
    }

    /// Serves on `listeners` until `shutdown` resolves and in-flight requests have finished.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        // TLS is the host's own (tls.rs): handshakes with the configuration in force, which
        // follows its files, so tonic sees TLS streams and no TLS configuration of its own.
        let router = tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .add_routes(self.routes.routes());
        if let Some(h) = self.health.as_ref().filter(|_| !self.own_health) {
            h.set(true).await;
        }

        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let ready = self.health.as_ref().map(|h| h.ready.clone());
        let metrics_task = listeners.metrics.map(|l| {
            tracing::info!(addr = ?l.local_addr().ok(), "metrics serving");
            tokio::spawn(crate::metrics::serve(
                self.metrics,
                self.refresh,
                ready,
                l,
                async move {
                    let _ = stop_rx.changed().await;
                },
            ))
        });
        let grpc_addr = listeners.grpc.local_addr().ok();
        tracing::info!(addr = ?grpc_addr, "{} serving", self.name);
        let result = match self.tls {
            None => {
                router
                    .serve_with_incoming_shutdown(net::incoming(listeners.grpc), shutdown)
                    .await
            }
            Some(tls) => {
                let watcher = tls.watch(self.name);
                let (conns, acceptor) = crate::tls::incoming(listeners.grpc, tls);
                let r = router.serve_with_incoming_shutdown(conns, shutdown).await;
                acceptor.abort();
                watcher.abort();
                r
            }
        };
        if let Some(h) = &self.health {
            h.set(false).await;
        }
        let _ = stop_tx.send(true);
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        tracing::info!("{} stopped serving", self.name);
        result.map_err(Error::from)
    }
}

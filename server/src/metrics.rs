//! The Prometheus endpoint every service exposes on its own port.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, Registry};
use tokio::net::TcpListener;

/// Work to do before each scrape (settling lazily counted gauges).
pub type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The text exposition of every metric of `registry`.
pub fn render(registry: &Registry) -> Vec<u8> {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf);
    buf
}

/// Whether the service is ready to take requests, as its gRPC health says; `/readyz`
/// answers from it. Kubelet's gRPC probes speak plaintext only, so with TLS on this HTTP
/// endpoint on the metrics port is how Kubernetes sees the same readiness.
pub type Ready = Arc<std::sync::atomic::AtomicBool>;

/// Serves `GET /metrics`, `/healthz` (alive) and `/readyz` (503 while `ready` is false;
/// always 200 without it) until `shutdown` resolves.
pub async fn serve(
    registry: Registry,
    refresh: Option<Refresh>,
    ready: Option<Ready>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let refresh = refresh.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let registry = registry.clone();
                let refresh = refresh.clone();
                let is_ready = ready
                    .as_ref()
                    .is_none_or(|r| r.load(std::sync::atomic::Ordering::Relaxed));
                async move {
                    if let Some(r) = &refresh
                        && req.uri().path() == "/metrics"
                    {
                        r().await;
                    }
                    Ok::<_, Infallible>(answer(&registry, &req, is_ready))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn answer<B>(registry: &Registry, req: &Request<B>, ready: bool) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            Bytes::from(render(registry)),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        "/readyz" if ready => (StatusCode::OK, "text/plain", Bytes::from_static(b"ready\n")),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"not ready\n"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

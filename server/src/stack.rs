//! A gRPC service behind its load limits.
//!
//! Only the service's own gRPC server sits behind the limits; health and
//! reflection stay outside, so that a probe still answers SERVING when the
//! pod is busy (a liveness probe shed under load would get a healthy pod
//! restarted exactly when it is needed).
//!
//! Order, outermost first:
//! 1. load shedding: when the limit below is full, answer RESOURCE_EXHAUSTED
//!    at once instead of queueing without bound;
//! 2. a global concurrency limit shared by all connections (tonic's own limit
//!    is per connection, which a client with many connections evades);
//! 3. the generated gRPC server.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

/// `S` with load shedding and a global concurrency limit.
#[derive(Clone)]
pub struct Limited<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
    /// Set when the inner stack reported an error from `poll_ready`, so that
    /// `call` answers with a status instead of calling an unready service.
    broken: bool,
}

impl<S> std::fmt::Debug for Limited<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited").finish_non_exhaustive()
    }
}

impl<S> Limited<S> {
    /// Wraps `server` with at most `max_concurrent` requests in flight.
    pub fn new(server: S, max_concurrent: usize) -> Self {
        let inner = tower::ServiceBuilder::new()
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                max_concurrent,
            ))
            .service(server);
        Self {
            inner,
            broken: false,
        }
    }
}

impl<S> Service<http::Request<Body>> for Limited<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match Service::<http::Request<Body>>::poll_ready(&mut self.inner, cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(_)) => {
                self.broken = true;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let name = S::NAME;
        if self.broken {
            return Box::pin(async move {
                Ok(tonic::Status::unavailable(format!("{name} is not ready")).into_http())
            });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(resp) => Ok(resp),
                Err(e) if e.is::<tower::load_shed::error::Overloaded>() => {
                    Ok(tonic::Status::resource_exhausted(format!(
                        "{name} is at its concurrency limit; retry with backoff"
                    ))
                    .into_http())
                }
                Err(e) => {
                    tracing::error!(error = %e, service = name, "service stack failed");
                    Ok(
                        tonic::Status::internal(format!("internal error in {name}; see its log"))
                            .into_http(),
                    )
                }
            }
        })
    }
}

impl<S: NamedService> NamedService for Limited<S> {
    const NAME: &'static str = S::NAME;
}

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
//! 3. the bytes-in-flight budget (`admission.rs`): the request body counted as its
//!    messages arrive, the permits held until the response body is done;
//! 4. the generated gRPC server.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

use crate::admission::{Admission, Held};

/// `S` with load shedding and a global concurrency limit.
#[derive(Clone)]
pub struct Limited<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
    admission: Admission,
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
    /// Wraps `server` with the budgets of `admission`.
    pub fn new(server: S, admission: Admission) -> Self {
        let inner = tower::ServiceBuilder::new()
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                admission.requests(),
            ))
            .service(server);
        Self {
            inner,
            admission,
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
        let held = Held::default();
        let admission = self.admission.clone();
        let counted = held.clone();
        let req = req.map(move |b| Body::new(admission.count(b, counted)));
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                // The permits of the request's messages go back when the answer is out.
                Ok(resp) => Ok(resp.map(|b| {
                    Body::new(HoldUntilDone {
                        inner: b,
                        _held: held,
                    })
                })),
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

/// A response body that keeps the call's bytes permits until it is dropped (sent).
struct HoldUntilDone {
    inner: Body,
    _held: Held,
}

impl http_body::Body for HoldUntilDone {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

//! A bounded pool of threads for the CPU-heavy part of requests.
//!
//! Verifying a signature is mostly computation (hashing megabytes, RSA and ECDSA, building
//! paths) with a few network waits (OCSP, CRL, AIA). Run on the runtime that serves the
//! connections, a burst of heavy requests would hold every worker thread: HTTP/2 pings,
//! new connections, health probes and cheap requests would wait behind them. So the
//! request's work runs on this pool (its own runtime, one thread per core by default) and
//! the serving runtime only waits for the answer.
//!
//! The request's deadline still applies: when the caller's future is dropped (tonic's
//! deadline passed, or the client went away) the task on the pool is aborted, and it stops
//! at its next await point (path building yields after every signature check).

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// The pool; cheap to clone.
#[derive(Clone, Debug)]
pub struct CpuPool {
    handle: Handle,
    _runtime: Arc<Owned>,
}

/// Owns the runtime; shuts it down without blocking when the last clone goes (a runtime
/// dropped inside another runtime's task would otherwise panic).
#[derive(Debug)]
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Why pooled work gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The task panicked or the pool is shutting down.
    #[error("the work pool failed: {0}")]
    Failed(String),
}

impl CpuPool {
    /// A pool of `threads` threads (0: one per core) named `{name}-cpu`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(format!("{name}-cpu"))
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            _runtime: Arc::new(Owned(Some(runtime))),
        })
    }

    /// Runs `work` on the pool and waits for it; dropping the returned future aborts it.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, PoolError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = AbortOnDrop(self.handle.spawn(work));
        task.wait().await
    }
}

/// A pool task that is aborted if its waiter goes away first.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, PoolError> {
        (&mut self.0)
            .await
            .map_err(|e| PoolError::Failed(e.to_string()))
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_pool_and_a_dropped_waiter_aborts_it() {
        let pool = CpuPool::new("test", 1).unwrap();
        let name = pool
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("test-cpu"));

        let finished = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&finished);
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            pool.run(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                f.store(true, Ordering::SeqCst);
            }),
        )
        .await;
        assert!(waited.is_err(), "the deadline passed first");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!finished.load(Ordering::SeqCst), "the aborted work went on");
        drop(pool); // inside a runtime: must not panic
    }
}

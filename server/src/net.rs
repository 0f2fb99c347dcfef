//! Accepted connections.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{Stream, StreamExt, wrappers::TcpListenerStream};

/// The accepted connections of `listener`, each with TCP_NODELAY set.
///
/// tonic sets TCP_NODELAY only on listeners it binds itself; on
/// connections handed to `serve_with_incoming` small answers otherwise
/// wait for the peer's delayed ACK (~40 ms on Linux), the whole p99 budget.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|conn| {
        if let Ok(s) = &conn
            && let Err(e) = s.set_nodelay(true)
        {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        conn
    })
}

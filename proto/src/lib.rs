//! The gRPC contracts of kyso, generated from `proto/kyso/**.proto`.

#![allow(missing_debug_implementations, unused_qualifications, clippy::all)]

/// Encoded `FileDescriptorSet` of every kyso proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kyso_descriptor.bin"));

pub mod verifier {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.verifier.v1.rs"));
    }
}

pub mod signer {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.signer.v1.rs"));
    }
}

pub mod registry {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.registry.v1.rs"));
    }
}

/// Transport helpers shared by the services.
pub mod net {
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
}

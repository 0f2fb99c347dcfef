//! Service plumbing shared by the kyso services, so that each service crate
//! holds only what is its own: the load-limit stack around a gRPC service
//! ([`Limited`]), the Prometheus endpoint ([`metrics`]), TLS loading
//! ([`TlsSection`]), accepted sockets ([`net`]), and the binaries' logging and signals ([`bin`]).

pub mod bin;
pub mod metrics;
pub mod net;
mod stack;
mod tls;

pub use stack::Limited;
pub use tls::TlsSection;

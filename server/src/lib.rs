//! Service plumbing shared by the kyso services, so that each service crate holds only
//! what is its own: the [`Host`] that serves it (health, reflection, the load-limit stack
//! [`Limited`], TLS, the metrics port, graceful shutdown) on its [`Listeners`], the
//! configuration keys every service has ([`config`]), the [`Clock`], the shapes of
//! error statuses ([`status`]), the Prometheus endpoint ([`metrics`]), accepted sockets
//! ([`net`]), the [`CpuPool`] for requests' heavy work, and the binaries' `main` ([`bin`]).

mod admission;
pub mod bin;
mod clock;
pub mod config;
mod cpu;
mod host;
pub mod metrics;
pub mod net;
mod stack;
pub mod status;
pub mod tls;

pub use admission::{Admission, ItemPermit, SMALL_MESSAGE};
pub use clock::{Clock, system_clock};
pub use cpu::{CpuPool, PoolError};
pub use host::{Error, Health, Host, Listeners};
pub use stack::Limited;
pub use tls::{Tls, TlsSection};

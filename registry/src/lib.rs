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

pub mod access;
pub mod authority;
pub mod book;
pub mod cert;
pub mod config;
pub mod convert;
pub mod error;
pub mod jurisdiction;
pub mod metrics;
pub mod policy;
pub mod seal;
pub mod service;
pub mod storage;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kyso_proto::registry::v1::registry_server::RegistryServer;

pub use config::Config;
pub use error::{Error, Result};
pub use kyso_server::{Listeners, system_clock};
pub use service::{Clock, RegistryService};
/// The sqlx of [`storage::Db::pool`], for operators' tools and tests that query the pool.
pub use sqlx;

/// Runs the registry on given listeners with a given clock until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let loaded = config.load()?;
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
    // Authorize, CheckAuthority and the role map answer from memory, kept in step with every
    // commit, and only while caught up with the database within the staleness bound.
    let store = store
        .with_index_bounded(loaded.access.staleness_bound)
        .await?;
    if loaded.access.development_plaintext {
        let addr = listeners.grpc.local_addr().ok();
        if !addr.is_some_and(|a| a.ip().is_loopback()) {
            return Err(Error::Config(vec![format!(
                "access.development_plaintext: only on a loopback address, not {addr:?}"
            )]));
        }
        tracing::warn!(
            ?addr,
            "DEVELOPMENT MODE: plaintext gRPC without client certificates; EVERY CALLER IS A \
             PROVINCIAL ADMINISTRATOR. Never run this way outside a developer's machine."
        );
    } else {
        tracing::info!(
            bootstrap_admins = loaded.access.bootstrap_admins.len(),
            staleness_bound_ms = loaded.access.staleness_bound.as_millis() as u64,
            "mTLS required: callers are their client certificates, allowed by their roles"
        );
    }
    let gate = access::Gate {
        bootstrap_admins: loaded.access.bootstrap_admins.clone(),
        development_plaintext: loaded.access.development_plaintext,
        fingerprints: Default::default(),
    };
    let service = RegistryService::new(store, metrics.clone(), clock.clone(), gate);
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

    let limits = &config.limits;
    let registry_svc = RegistryServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    kyso_server::Host::new(
        "registry",
        limits.max_concurrent_requests,
        limits.request_timeout(),
        loaded.tls,
        metrics.registry.clone(),
    )?
    .refresh(refresh)
    .limited(registry_svc)
    .serve(listeners, shutdown)
    .await?;
    Ok(())
}

impl kyso_server::bin::Service for Config {
    const NAME: &'static str = "kyso-registry";
    type Error = Error;

    fn addresses(&mut self) -> (&mut SocketAddr, &mut Option<SocketAddr>) {
        (&mut self.listen, &mut self.metrics_listen)
    }

    fn check(&self) -> Result<()> {
        self.load().map(|_| ())
    }
}

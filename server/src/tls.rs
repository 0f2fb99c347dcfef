//! `[tls]`: the server certificate, its key and the client CA, read from their files and read
//! again whenever they change, so a certificate rotated on disk (cert-manager renews the
//! 90-day certificates in place) is served without a restart, by every service alike.
//!
//! The host accepts TCP itself and runs the TLS handshake with the current
//! `rustls::ServerConfig` ([`incoming`]); tonic gets the TLS streams through
//! `serve_with_incoming`, and its `Connected` impl for them keeps `Request::peer_certs()`
//! working (the registry's callers are their client certificates). A connection keeps the
//! configuration of its handshake; new connections get the new one.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `[tls]`: absent means plaintext (loopback and tests only).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA bundle for client certificates; when set, clients must present one (mTLS).
    pub client_ca: Option<PathBuf>,
    /// How often the three files are read again for a change, milliseconds (default 5 000).
    #[serde(default = "default_watch_ms")]
    pub watch_ms: u64,
}

fn default_watch_ms() -> u64 {
    5_000
}

impl TlsSection {
    /// `[tls]` with the default watch interval.
    pub fn new(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> Self {
        Self {
            cert,
            key,
            client_ca,
            watch_ms: default_watch_ms(),
        }
    }

    /// Reads and checks the files; every problem is added to `problems`.
    pub fn load(&self, problems: &mut Vec<String>) -> Option<Tls> {
        if self.watch_ms == 0 {
            problems.push("tls.watch_ms: must be above 0".into());
        }
        match Material::read(self).and_then(|m| Ok((m.hash, m.config()?))) {
            Ok((hash, config)) => Some(Tls {
                section: self.clone(),
                current: Arc::new(RwLock::new(Current {
                    config: Arc::new(config),
                    hash,
                })),
            }),
            Err(mut p) => {
                problems.append(&mut p);
                None
            }
        }
    }
}

/// TLS that follows its files: the configuration in force, swapped when they change.
#[derive(Clone)]
pub struct Tls {
    section: TlsSection,
    current: Arc<RwLock<Current>>,
}

struct Current {
    config: Arc<ServerConfig>,
    /// Of the files' bytes, to notice a change.
    hash: u64,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Whether clients must present a certificate (mTLS).
    pub fn requires_client_certificates(&self) -> bool {
        self.section.client_ca.is_some()
    }

    fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        }
    }

    /// Reads the files again; when they changed and make a valid configuration, it is used
    /// for the next handshakes. `Ok(true)` when it changed; an error leaves the old one in
    /// force (a rotation caught half-written is picked up at the next look).
    pub fn reload(&self) -> Result<bool, Vec<String>> {
        let m = Material::read(&self.section)?;
        let unchanged = match self.current.read() {
            Ok(c) => c.hash == m.hash,
            Err(_) => false,
        };
        if unchanged {
            return Ok(false);
        }
        let config = Arc::new(m.config()?);
        let mut c = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *c = Current {
            config,
            hash: m.hash,
        };
        Ok(true)
    }

    /// Looks at the files every `tls.watch_ms` until the task is aborted.
    pub fn watch(&self, service: &'static str) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(tls.section.watch_ms.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let t = tls.clone();
                match tokio::task::spawn_blocking(move || t.reload()).await {
                    Ok(Ok(true)) => tracing::info!(
                        service,
                        cert = %tls.section.cert.display(),
                        "TLS certificate, key or client CA changed on disk: reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(problems)) => tracing::warn!(
                        service,
                        problems = %problems.join("; "),
                        "TLS files changed but do not load; the previous ones stay in force"
                    ),
                    Err(e) => tracing::warn!(service, error = %e, "TLS reload task failed"),
                }
            }
        })
    }
}

/// The TLS connections of `listener`, each handshaken with the configuration in force when
/// it arrived; handshakes run concurrently, so a slow client holds up no one. Abort the
/// returned task when serving ends (it owns the listener).
pub fn incoming(
    listener: TcpListener,
    tls: Tls,
) -> (
    ReceiverStream<std::io::Result<TlsStream<TcpStream>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    let task = tokio::spawn(async move {
        let mut conns = crate::net::incoming(listener);
        while let Some(conn) = conns.next().await {
            let tcp = match conn {
                Ok(tcp) => tcp,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            let acceptor = TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                let peer = tcp.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(?peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (ReceiverStream::new(rx), task)
}

/// The bytes of the three files.
struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    hash: u64,
}

impl Material {
    fn read(s: &TlsSection) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut read = |p: &Path, what: &str| match std::fs::read(p) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(format!("tls.{what}: {}: {e}", p.display()));
                None
            }
        };
        let cert = read(&s.cert, "cert");
        let key = read(&s.key, "key");
        let client_ca = s.client_ca.as_ref().map(|p| read(p, "client_ca"));
        let (Some(cert), Some(key), Some(client_ca)) =
            (cert, key, client_ca.map_or(Some(None), |c| c.map(Some)))
        else {
            return Err(problems);
        };
        let mut h = std::hash::DefaultHasher::new();
        (&cert, &key, &client_ca).hash(&mut h);
        Ok(Self {
            cert,
            key,
            client_ca,
            hash: h.finish(),
        })
    }

    /// The rustls configuration: HTTP/2 by ALPN (gRPC), client certificates required and
    /// verified against the client CA when one is given.
    fn config(&self) -> Result<ServerConfig, Vec<String>> {
        let bad = |what: &str, e: &dyn std::fmt::Display| vec![format!("tls.{what}: {e}")];
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| bad("cert", &e))?;
        if chain.is_empty() {
            return Err(bad("cert", &"no PEM certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| bad("key", &e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("cert", &e))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem) {
                    let c = c.map_err(|e| bad("client_ca", &e))?;
                    roots.add(c).map_err(|e| bad("client_ca", &e))?;
                }
                if roots.is_empty() {
                    return Err(bad("client_ca", &"no PEM certificate in the file"));
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| bad("client_ca", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            bad(
                "cert",
                &format!("{e} (does the key match the certificate?)"),
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

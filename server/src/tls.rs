//! The `[tls]` section of a service's configuration.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
}

impl TlsSection {
    /// Reads the files; every unreadable one is added to `problems`.
    pub fn load(&self, problems: &mut Vec<String>) -> Option<tonic::transport::ServerTlsConfig> {
        let read = |p: &Path, what: &str, problems: &mut Vec<String>| match std::fs::read(p) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(format!("tls.{what}: {}: {e}", p.display()));
                None
            }
        };
        let cert = read(&self.cert, "cert", problems);
        let key = read(&self.key, "key", problems);
        let ca = self
            .client_ca
            .as_ref()
            .map(|p| read(p, "client_ca", problems));
        let (cert, key) = (cert?, key?);
        let mut cfg = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key));
        if let Some(ca) = ca {
            cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(ca?));
        }
        Some(cfg)
    }
}

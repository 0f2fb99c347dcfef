//! Connecting to a kyso server, with TLS and client certificates (mTLS).

use std::path::PathBuf;

use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{CliError, read_file};

/// Flags shared by every command that talks to a server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Server URL (http://host:port, or https:// for TLS).
    #[arg(long, env = "KYSO_SERVER")]
    pub server: Option<String>,
    /// CA bundle that signed the server's certificate (PEM).
    #[arg(long, env = "KYSO_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate for mTLS (PEM).
    #[arg(long, env = "KYSO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key for mTLS (PEM).
    #[arg(long, env = "KYSO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServerArgs {
    /// A channel to `url` with the TLS settings given.
    pub async fn connect(&self, url: &str) -> Result<Channel, CliError> {
        let mut ep = Endpoint::from_shared(url.to_owned())
            .map_err(|e| CliError::Usage(format!("--server {url}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5));
        if url.starts_with("https://") || self.tls_ca.is_some() {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &self.tls_ca {
                tls = tls.ca_certificate(Certificate::from_pem(read_file(ca)?));
            }
            if let (Some(c), Some(k)) = (&self.tls_cert, &self.tls_key) {
                tls = tls.identity(Identity::from_pem(read_file(c)?, read_file(k)?));
            }
            ep = ep.tls_config(tls)?;
        }
        Ok(ep.connect().await?)
    }
}

//! Configuration: a TOML file, overridden by flags and environment variables.
//! Every problem is collected and reported at once, before anything binds.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use kyso_server::TlsSection;

use crate::error::{Error, Result};
use crate::storage::Backend;

/// The registry's configuration, as written in its TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address (its own port, so it can stay off the client network).
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite:PATH` (the embedded default) or `postgres://...`.
    pub database_url: String,
    /// The deployment's government mail domain (I1), e.g. `khanhhoa.gov.vn`;
    /// subdomains (`sotttt.khanhhoa.gov.vn`) belong to it.
    pub mail_domain: String,
    /// Database pool.
    pub database: DatabaseSection,
    /// Request bounds.
    pub limits: Limits,
    /// TLS; absent means plaintext (only for loopback and tests).
    pub tls: Option<TlsSection>,
}

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a request waits for a connection, milliseconds.
    pub acquire_timeout_ms: u64,
    /// SQLite: how long a writer waits for the file lock, milliseconds.
    pub busy_timeout_ms: u64,
}

/// `[limits]`.
pub type Limits = kyso_server::config::Limits<RegistryDefaults>;

/// The registry's defaults of `[limits]`.
#[derive(Clone, Copy, Debug)]
pub struct RegistryDefaults;

impl kyso_server::config::Defaults for RegistryDefaults {
    const MAX_MESSAGE_BYTES: usize = 4 << 20;
    const MAX_CONCURRENT_REQUESTS: usize = 512;
    const REQUEST_TIMEOUT_MS: u64 = 10_000;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50062)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9462))),
            database_url: "sqlite:kyso-registry.db".into(),
            mail_domain: String::new(),
            database: DatabaseSection::default(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout_ms: 5_000,
            busy_timeout_ms: 5_000,
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        kyso_server::config::read_toml(path).map_err(|p| Error::Config(vec![p]))
    }

    /// Checks everything that can be checked without connecting, and reads
    /// the TLS material. All problems are reported together.
    pub fn load(&self) -> Result<Loaded> {
        let mut problems = Vec::new();
        let backend = match Backend::from_url(&self.database_url) {
            Some(b) => Some(b),
            None => {
                problems.push(format!(
                    "database_url: {:?} must start with sqlite: or postgres:",
                    self.database_url
                ));
                None
            }
        };
        let domain = self
            .mail_domain
            .trim()
            .trim_start_matches('@')
            .to_ascii_lowercase();
        if domain.is_empty() || !domain.contains('.') || domain.contains(['@', ' ', '/']) {
            problems.push(format!(
                "mail_domain: {:?} is not a mail domain such as khanhhoa.gov.vn (I1)",
                self.mail_domain
            ));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be above 0".into());
        }
        if self.database.acquire_timeout_ms == 0 {
            problems.push("database.acquire_timeout_ms: must be above 0".into());
        }
        self.limits.check(&mut problems);
        let tls = match &self.tls {
            None => None,
            Some(t) => t.load(&mut problems),
        };
        match backend {
            Some(backend) if problems.is_empty() => Ok(Loaded {
                backend,
                mail_domain: domain,
                tls,
            }),
            _ => Err(Error::Config(problems)),
        }
    }
}

/// A configuration with its files read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Which database the URL selects.
    pub backend: Backend,
    /// The mail domain, lower case, without `@`.
    pub mail_domain: String,
    /// TLS material, when configured.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = Config {
            database_url: "mysql://x".into(),
            mail_domain: String::new(),
            limits: Limits {
                max_concurrent_requests: 0,
                ..Limits::default()
            },
            ..Config::default()
        };
        let Err(Error::Config(problems)) = c.load() else {
            panic!("the configuration must be refused");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        for want in [
            "database_url",
            "mail_domain",
            "limits.max_concurrent_requests",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_sqlite_or_postgres_url_and_a_domain_load() {
        for url in ["sqlite:/tmp/r.db", "postgres://kyso@localhost/registry"] {
            let c = Config {
                database_url: url.into(),
                mail_domain: "@KhanhHoa.gov.vn".into(),
                ..Config::default()
            };
            let loaded = c.load().map_err(|e| e.to_string());
            assert_eq!(
                loaded.map(|l| l.mail_domain),
                Ok("khanhhoa.gov.vn".to_owned())
            );
        }
    }
}

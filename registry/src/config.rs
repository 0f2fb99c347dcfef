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
    /// TLS with client certificates (mTLS): required, unless `access.development_plaintext`.
    pub tls: Option<TlsSection>,
    /// Who may call: bootstrap administrators, the staleness bound, development plaintext.
    pub access: AccessSection,
}

/// `[access]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// SHA-256 fingerprints (hex; colons and case ignored) of client certificates that are
    /// provincial administrators by configuration: the first administrator, who grants the
    /// others their roles. Keep it short; prefer roles granted in the registry (audited).
    pub bootstrap_admins: Vec<String>,
    /// Serve plaintext, without client certificates, every caller being a provincial
    /// administrator: only on a loopback address, for development and tests. Logged loudly.
    pub development_plaintext: bool,
    /// How long a replica may go without catching up with the database and still answer
    /// `Authorize`, `CheckAuthority` and role lookups, milliseconds; past it, UNAVAILABLE.
    pub staleness_bound_ms: u64,
}

impl Default for AccessSection {
    fn default() -> Self {
        Self {
            bootstrap_admins: Vec::new(),
            development_plaintext: false,
            staleness_bound_ms: 1_000,
        }
    }
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
            access: AccessSection::default(),
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
        let access = self.access.load(self, &mut problems);
        match backend {
            Some(backend) if problems.is_empty() => Ok(Loaded {
                backend,
                mail_domain: domain,
                tls,
                access,
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
    pub tls: Option<kyso_server::Tls>,
    /// Access control, checked.
    pub access: Access,
}

/// `[access]`, checked.
#[derive(Clone, Debug)]
pub struct Access {
    /// Bootstrap administrators' fingerprints, lowercase hex.
    pub bootstrap_admins: std::collections::HashSet<String>,
    /// Plaintext development mode.
    pub development_plaintext: bool,
    /// The staleness bound.
    pub staleness_bound: std::time::Duration,
}

impl AccessSection {
    fn load(&self, config: &Config, problems: &mut Vec<String>) -> Access {
        let mut bootstrap_admins = std::collections::HashSet::new();
        for (i, fp) in self.bootstrap_admins.iter().enumerate() {
            match crate::cert::normalise_fingerprint(fp, "access.bootstrap_admins") {
                Ok(fp) => {
                    bootstrap_admins.insert(fp);
                }
                Err(_) => problems.push(format!(
                    "access.bootstrap_admins[{i}]: {fp:?} is not a SHA-256 fingerprint \
                     (64 hex digits)"
                )),
            }
        }
        if self.staleness_bound_ms == 0 {
            problems.push("access.staleness_bound_ms: must be above 0".into());
        }
        match (&config.tls, self.development_plaintext) {
            (None, false) => problems.push(
                "tls: required: the registry authenticates every caller by its client \
                 certificate (set tls.cert, tls.key and tls.client_ca; plaintext only with \
                 access.development_plaintext on a loopback address)"
                    .into(),
            ),
            (Some(_), true) => problems
                .push("access.development_plaintext: set together with [tls]; choose one".into()),
            (Some(t), false) if t.client_ca.is_none() => problems.push(
                "tls.client_ca: required: the registry authenticates every caller by its \
                 client certificate (its own issuer, not the document systems')"
                    .into(),
            ),
            _ => {}
        }
        if self.development_plaintext && !config.listen.ip().is_loopback() {
            problems.push(format!(
                "access.development_plaintext: only on a loopback address, not {}",
                config.listen
            ));
        }
        Access {
            bootstrap_admins,
            development_plaintext: self.development_plaintext,
            staleness_bound: std::time::Duration::from_millis(self.staleness_bound_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_only_on_loopback_with_the_development_flag() {
        let base = Config {
            mail_domain: "khanhhoa.gov.vn".into(),
            ..Config::default()
        };
        let problems = |c: &Config| match c.load() {
            Err(Error::Config(p)) => p,
            _ => Vec::new(),
        };
        assert!(
            problems(&base)
                .iter()
                .any(|p| p.starts_with("tls: required"))
        );
        let exposed = Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 50062)),
            access: AccessSection {
                development_plaintext: true,
                ..AccessSection::default()
            },
            ..base.clone()
        };
        assert!(
            problems(&exposed)
                .iter()
                .any(|p| p.contains("only on a loopback address"))
        );
        let loopback = Config {
            access: AccessSection {
                development_plaintext: true,
                bootstrap_admins: vec!["AB:CD".into()],
                ..AccessSection::default()
            },
            ..base
        };
        let p = problems(&loopback);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("access.bootstrap_admins[0]"), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = Config {
            access: AccessSection {
                development_plaintext: true,
                ..AccessSection::default()
            },
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
                access: AccessSection {
                    development_plaintext: true,
                    ..AccessSection::default()
                },
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

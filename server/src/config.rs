//! The configuration keys every service has: `listen`, `metrics_listen`, `[limits]` and
//! `[tls]`. [`ServerConfig`] is flattened into each service's `Config`, so the keys stay
//! where they were in the TOML file; its defaults (ports, limits) are the service's own,
//! given by a [`Defaults`] type.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::TlsSection;

/// A service's defaults for the shared keys, and the `[limits]` keys it adds.
pub trait Defaults: Clone + Debug + Send + Sync + 'static {
    /// gRPC address.
    const LISTEN: SocketAddr;
    /// Prometheus `/metrics` address.
    const METRICS_LISTEN: SocketAddr;
    /// `limits.max_message_bytes`.
    const MAX_MESSAGE_BYTES: usize;
    /// `limits.max_concurrent_requests`.
    const MAX_CONCURRENT_REQUESTS: usize;
    /// `limits.request_timeout_ms`.
    const REQUEST_TIMEOUT_MS: u64;
    /// The service's own `[limits]` keys ([`NoMoreLimits`] when it has none).
    type MoreLimits: MoreLimits;
}

/// `[limits]` keys a service adds to the shared ones (flattened into [`Limits`]).
pub trait MoreLimits: Clone + Debug + Default + DeserializeOwned + Send + Sync + 'static {
    /// Adds a line to `problems` for every unusable value.
    fn check(&self, problems: &mut Vec<String>);
}

/// A `[limits]` with only the shared keys.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NoMoreLimits {}

impl MoreLimits for NoMoreLimits {
    fn check(&self, _problems: &mut Vec<String>) {}
}

/// The shared keys, flattened into a service's `Config`.
///
/// Not `deny_unknown_fields`: serde hands a flattened struct only its own keys; the
/// service's `Config` refuses the unknown ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, bound = "")]
pub struct ServerConfig<D: Defaults> {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address (its own port, so it can stay off the client network).
    pub metrics_listen: Option<SocketAddr>,
    /// Request bounds.
    pub limits: Limits<D>,
    /// TLS; absent means plaintext (only for loopback and tests).
    pub tls: Option<TlsSection>,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default, bound = "")]
pub struct Limits<D: Defaults> {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once across all connections; more are shed with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Server-side deadline per request, milliseconds (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// The service's own keys.
    #[serde(flatten)]
    pub more: D::MoreLimits,
}

impl<D: Defaults> Default for ServerConfig<D> {
    fn default() -> Self {
        Self {
            listen: D::LISTEN,
            metrics_listen: Some(D::METRICS_LISTEN),
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl<D: Defaults> Default for Limits<D> {
    fn default() -> Self {
        Self {
            max_message_bytes: D::MAX_MESSAGE_BYTES,
            max_concurrent_requests: D::MAX_CONCURRENT_REQUESTS,
            request_timeout_ms: D::REQUEST_TIMEOUT_MS,
            more: D::MoreLimits::default(),
        }
    }
}

impl<D: Defaults> ServerConfig<D> {
    /// Checks the limits and reads the TLS files; every problem is added to `problems`.
    pub fn load(&self, problems: &mut Vec<String>) -> Option<tonic::transport::ServerTlsConfig> {
        self.limits.check(problems);
        self.tls.as_ref().and_then(|t| t.load(problems))
    }
}

impl<D: Defaults> Limits<D> {
    /// Adds a line to `problems` for every unusable value.
    pub fn check(&self, problems: &mut Vec<String>) {
        if self.max_message_bytes < 1024 {
            problems.push("limits.max_message_bytes: must be at least 1024".into());
        }
        if self.max_concurrent_requests == 0 {
            problems.push("limits.max_concurrent_requests: must be above 0".into());
        }
        if self.request_timeout_ms == 0 {
            problems.push("limits.request_timeout_ms: must be above 0".into());
        }
        self.more.check(problems);
    }

    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Reads a TOML file into a configuration; the error is the one problem, path first.
pub fn read_toml<C: DeserializeOwned>(path: &Path) -> Result<C, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Test;

    impl Defaults for Test {
        const LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            50060,
        ));
        const METRICS_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            9460,
        ));
        const MAX_MESSAGE_BYTES: usize = 4096;
        const MAX_CONCURRENT_REQUESTS: usize = 7;
        const REQUEST_TIMEOUT_MS: u64 = 1_000;
        type MoreLimits = Extra;
    }

    #[derive(Clone, Debug, Deserialize)]
    #[serde(default)]
    struct Extra {
        parallelism: usize,
    }

    impl Default for Extra {
        fn default() -> Self {
            Self { parallelism: 3 }
        }
    }

    impl MoreLimits for Extra {
        fn check(&self, problems: &mut Vec<String>) {
            if self.parallelism == 0 {
                problems.push("limits.parallelism: must be above 0".into());
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Service {
        name: String,
        #[serde(flatten)]
        server: ServerConfig<Test>,
    }

    impl Default for Service {
        fn default() -> Self {
            Self {
                name: "default".into(),
                server: ServerConfig::default(),
            }
        }
    }

    #[test]
    fn flattened_keys_stay_at_the_top_and_missing_ones_take_the_service_defaults() {
        let s: Service = toml::from_str(
            "name = \"x\"\nlisten = \"127.0.0.1:1\"\n[limits]\nmax_concurrent_requests = 2\n",
        )
        .unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.server.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(s.server.metrics_listen, Some(Test::METRICS_LISTEN));
        assert_eq!(s.server.limits.max_concurrent_requests, 2);
        assert_eq!(s.server.limits.max_message_bytes, 4096);
        assert_eq!(s.server.limits.request_timeout_ms, 1_000);
        assert_eq!(s.server.limits.more.parallelism, 3);
        assert!(s.server.tls.is_none());
        let d: Service = toml::from_str("").unwrap();
        assert_eq!(
            (d.name.as_str(), d.server.listen),
            ("default", Test::LISTEN)
        );
    }

    #[test]
    fn unknown_keys_are_refused_at_the_top_and_in_limits() {
        for text in [
            "lisen = \"127.0.0.1:1\"\n",
            "[limits]\nmax_concurent_requests = 2\n",
            "[tls]\ncert = \"c\"\nkey = \"k\"\nclientca = \"x\"\n",
        ] {
            let e = toml::from_str::<Service>(text).unwrap_err().to_string();
            assert!(e.contains("unknown field"), "{text}: {e}");
        }
    }

    #[test]
    fn every_limit_problem_is_listed() {
        let s: Service = toml::from_str(
            "[limits]\nmax_message_bytes = 10\nmax_concurrent_requests = 0\nrequest_timeout_ms = 0\nparallelism = 0\n[tls]\ncert = \"/nonexistent/c\"\nkey = \"/nonexistent/k\"\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        assert!(s.server.load(&mut problems).is_none());
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "limits.max_message_bytes",
                "limits.max_concurrent_requests",
                "limits.request_timeout_ms",
                "limits.parallelism",
                "tls.cert",
                "tls.key"
            ]
        );
    }
}

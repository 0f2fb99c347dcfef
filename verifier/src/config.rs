//! Configuration: a TOML file, overridden by flags and environment variables.
//! Every problem is collected and reported at once, before anything binds.
//!
//! The trust keys (`trust_anchors`, `intermediates`, `[revocation]`, ...) are
//! [`TrustConfig`]'s, shared with the signer's `[trust]` section; they sit at the
//! top level of the verifier's file, beside the service's own keys.

use std::net::SocketAddr;
use std::path::Path;

use kyso_validation::verify::VerifierConfig;
use serde::Deserialize;

pub use kyso_server::TlsSection;
pub use kyso_validation::config::{RevocationSection, TrustConfig, UrlRewrite};

use crate::error::{Error, Result};

/// The verifier's configuration, as written in its TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address (its own port, so it can stay off the client network).
    pub metrics_listen: Option<SocketAddr>,
    /// Anchors, intermediates, AIA and revocation (top-level keys of the file).
    /// serde refuses a key that neither this nor the service's own fields take.
    #[serde(flatten)]
    pub trust: TrustConfig,
    /// Request bounds.
    pub limits: Limits,
    /// TLS; absent means plaintext (only for loopback and tests).
    pub tls: Option<TlsSection>,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once across all connections; more are shed with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Server-side deadline per request, milliseconds (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// Documents verified at once inside one VerifyStream (each also takes a request
    /// permit and its own deadline of `request_timeout_ms`).
    pub stream_parallelism: usize,
    /// Documents in one VerifyBatch message; a larger batch is refused whole with
    /// RESOURCE_EXHAUSTED (the stream goes on). Each document is still admitted alone.
    pub max_batch_items: usize,
    /// Bytes of request messages held at once across all requests (messages over 64 KiB
    /// count); past it large requests are answered RESOURCE_EXHAUSTED. Keep it well under
    /// the pod's memory: a message is held about twice while it is decoded.
    pub max_bytes_in_flight: usize,
    /// Threads that run verification work, apart from those serving connections
    /// (0: one per core).
    pub cpu_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50061)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9461))),
            trust: TrustConfig::default(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_concurrent_requests: 512,
            request_timeout_ms: 30_000,
            stream_parallelism: 16,
            max_batch_items: 256,
            max_bytes_in_flight: 256 << 20,
            cpu_threads: 0,
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        kyso_server::config::read_toml(path).map_err(|p| Error::Config(vec![p]))
    }

    /// Checks everything that can be checked without binding, and loads the
    /// trust material. All problems are reported together.
    pub fn load(&self) -> Result<Loaded> {
        let (pki, mut problems) = match self.trust.load() {
            Ok(pki) => (Some(pki), Vec::new()),
            Err(problems) => (None, problems),
        };
        if self.limits.max_message_bytes < 1024 {
            problems.push("limits.max_message_bytes: must be at least 1024".into());
        }
        if self.limits.max_concurrent_requests == 0 {
            problems.push("limits.max_concurrent_requests: must be above 0".into());
        }
        if self.limits.stream_parallelism == 0 {
            problems.push("limits.stream_parallelism: must be above 0".into());
        }
        if self.limits.max_batch_items == 0 {
            problems.push("limits.max_batch_items: must be above 0".into());
        }
        if self.limits.max_bytes_in_flight < self.limits.max_message_bytes {
            problems.push(format!(
                "limits.max_bytes_in_flight: {} is less than limits.max_message_bytes ({}): the largest request could never be admitted",
                self.limits.max_bytes_in_flight, self.limits.max_message_bytes
            ));
        }
        if self.limits.request_timeout_ms == 0 {
            problems.push("limits.request_timeout_ms: must be above 0".into());
        }
        let tls = match &self.tls {
            None => None,
            Some(t) => t.load(&mut problems),
        };
        match pki {
            Some(pki) if problems.is_empty() => Ok(Loaded { pki, tls }),
            _ => Err(Error::Config(problems)),
        }
    }
}

/// A configuration with its files read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// What the verification engine needs.
    pub pki: VerifierConfig,
    /// TLS material, when configured.
    pub tls: Option<kyso_server::Tls>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn trust_keys_sit_at_the_top_level_and_unknown_keys_are_refused() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:7\"\ntrust_anchors = [\"/r.pem\"]\nfetch_aia = false\n\
             [revocation]\npolicy = \"soft-fail\"\nurl_rewrites = [{ from = \"http://a/\", to = \"http://b/\" }]\n\
             [limits]\nstream_parallelism = 3\n",
        )
        .unwrap();
        assert_eq!(c.trust.trust_anchors.len(), 1);
        assert!(!c.trust.fetch_aia);
        assert_eq!(c.trust.revocation.url_rewrites.len(), 1);
        assert_eq!(c.limits.stream_parallelism, 3);
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 7)));
        for bad in [
            "trust_anchor = []",
            "[trust]\ntrust_anchors = []",
            "[revocation]\nretries = 2",
        ] {
            let e = toml::from_str::<Config>(bad).expect_err(bad);
            assert!(e.to_string().contains("unknown field"), "{bad}: {e}");
        }
    }
}

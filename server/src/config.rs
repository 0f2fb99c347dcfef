//! The configuration keys every service has: `listen` and `metrics_listen` (plain
//! addresses), `[limits]` ([`Limits`]) and `[tls]` ([`TlsSection`](crate::TlsSection)).
//!
//! Each service's `Config` names these fields itself rather than flattening one shared
//! struct: serde's `flatten` buffers the keys, and TOML errors would lose their line and
//! column and the list of expected keys.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A service's defaults for `[limits]`.
pub trait Defaults: Clone + Debug + Send + Sync + 'static {
    /// `limits.max_message_bytes`.
    const MAX_MESSAGE_BYTES: usize;
    /// `limits.max_concurrent_requests`.
    const MAX_CONCURRENT_REQUESTS: usize;
    /// `limits.request_timeout_ms`.
    const REQUEST_TIMEOUT_MS: u64;
}

/// `[limits]`, with the defaults of `D` for the keys a file leaves out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default, bound = "")]
pub struct Limits<D: Defaults> {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once across all connections; more are shed with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Server-side deadline per request, milliseconds (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// Whose defaults these are.
    #[serde(skip)]
    pub defaults: PhantomData<D>,
}

impl<D: Defaults> Default for Limits<D> {
    fn default() -> Self {
        Self {
            max_message_bytes: D::MAX_MESSAGE_BYTES,
            max_concurrent_requests: D::MAX_CONCURRENT_REQUESTS,
            request_timeout_ms: D::REQUEST_TIMEOUT_MS,
            defaults: PhantomData,
        }
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
    }

    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// How every service reports an unusable configuration: all its problems, one a line.
pub fn describe(problems: &[String]) -> String {
    format!("invalid configuration:\n  - {}", problems.join("\n  - "))
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
        const MAX_MESSAGE_BYTES: usize = 4096;
        const MAX_CONCURRENT_REQUESTS: usize = 7;
        const REQUEST_TIMEOUT_MS: u64 = 1_000;
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Service {
        limits: Limits<Test>,
    }

    #[test]
    fn keys_left_out_take_the_service_defaults() {
        let s: Service = toml::from_str("[limits]\nmax_concurrent_requests = 2\n").unwrap();
        assert_eq!(s.limits.max_concurrent_requests, 2);
        assert_eq!(s.limits.max_message_bytes, 4096);
        assert_eq!(s.limits.request_timeout(), Duration::from_secs(1));
        let d: Service = toml::from_str("").unwrap();
        assert_eq!(d.limits.max_concurrent_requests, 7);
    }

    #[test]
    fn an_unknown_key_is_refused_where_it_stands() {
        let e = toml::from_str::<Service>("[limits]\nmax_concurent_requests = 2\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn every_limit_problem_is_listed() {
        let s: Service = toml::from_str(
            "[limits]\nmax_message_bytes = 10\nmax_concurrent_requests = 0\nrequest_timeout_ms = 0\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        s.limits.check(&mut problems);
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
            ]
        );
    }
}

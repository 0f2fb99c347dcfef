//! Prometheus metrics of revocation checking and fetching, registered into the caller's registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counters of caches and fetches. Cheap to clone (the collectors are shared).
#[derive(Clone, Debug)]
pub struct PkiMetrics {
    /// `kyso_revocation_cache_requests_total{cache, result=hit|miss|stale}`.
    pub cache_requests: IntCounterVec,
    /// `kyso_revocation_cache_entries{cache}`.
    pub cache_entries: IntGaugeVec,
    /// `kyso_fetch_total{source=ocsp|crl|aia, outcome=ok|error|timeout|circuit_open}`.
    pub fetches: IntCounterVec,
    /// `kyso_fetch_duration_seconds{source}`.
    pub fetch_duration: HistogramVec,
}

impl PkiMetrics {
    /// Creates the collectors and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.cache_requests.clone()))?;
        registry.register(Box::new(m.cache_entries.clone()))?;
        registry.register(Box::new(m.fetches.clone()))?;
        registry.register(Box::new(m.fetch_duration.clone()))?;
        Ok(m)
    }

    /// Collectors registered nowhere (for in-process use by the CLI and tests).
    pub fn unregistered() -> prometheus::Result<Self> {
        Ok(Self {
            cache_requests: IntCounterVec::new(
                Opts::new(
                    "kyso_revocation_cache_requests_total",
                    "Revocation and AIA cache look-ups by cache and result",
                ),
                &["cache", "result"],
            )?,
            cache_entries: IntGaugeVec::new(
                Opts::new("kyso_revocation_cache_entries", "Entries held per cache"),
                &["cache"],
            )?,
            fetches: IntCounterVec::new(
                Opts::new(
                    "kyso_fetch_total",
                    "Network fetches of revocation data and certificates by source and outcome",
                ),
                &["source", "outcome"],
            )?,
            fetch_duration: HistogramVec::new(
                HistogramOpts::new("kyso_fetch_duration_seconds", "Fetch latency by source")
                    .buckets(vec![
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ]),
                &["source"],
            )?,
        })
    }
}

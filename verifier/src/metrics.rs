//! The verifier's Prometheus metrics and the `/metrics` HTTP endpoint.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use kyso_revocation::PkiMetrics;
use kyso_validation::report::{DocumentReport, SubIndication};

/// Every collector of the verifier (its own and the PKI core's).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `kyso_verifier_requests_total{method, outcome}`.
    pub requests: IntCounterVec,
    /// `kyso_verifier_request_duration_seconds{method}`.
    pub duration: HistogramVec,
    /// `kyso_verifier_signatures_total{indication, sub_indication}`.
    pub signatures: IntCounterVec,
    /// `kyso_verifier_in_flight_requests`.
    pub in_flight: IntGauge,
    /// `kyso_verifier_in_flight_peak`: the most requests (and stream items) served at once
    /// since start; what the concurrency limit is checked against.
    pub in_flight_peak: IntGauge,
    /// `kyso_verifier_cache_bound{cache, unit}`: each revocation cache's configured bound
    /// (OCSP answers in entries, parsed CRLs in bytes), so a soak can check the sizes against
    /// it from the metrics alone.
    pub cache_bound: IntGaugeVec,
    /// `kyso_verifier_cache_size{cache, unit}`: what each cache holds, in the bound's unit
    /// (and in entries), refreshed before every scrape.
    pub cache_size: IntGaugeVec,
    /// Cache and fetch counters of the PKI core.
    pub pki: PkiMetrics,
}

impl Metrics {
    /// A fresh registry with every collector registered.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "kyso_verifier_requests_total",
                "Verifier requests by method and outcome",
            ),
            &["method", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "kyso_verifier_request_duration_seconds",
                "Verifier request latency by method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method"],
        )?;
        let signatures = IntCounterVec::new(
            Opts::new(
                "kyso_verifier_signatures_total",
                "Signatures judged, by indication and sub-indication",
            ),
            &["indication", "sub_indication"],
        )?;
        let in_flight = IntGauge::new(
            "kyso_verifier_in_flight_requests",
            "Requests being served now (the autoscaler's signal)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(signatures.clone()))?;
        let in_flight_peak = IntGauge::new(
            "kyso_verifier_in_flight_peak",
            "The most requests and stream items served at once since start",
        )?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(in_flight_peak.clone()))?;
        let cache_bound = IntGaugeVec::new(
            Opts::new(
                "kyso_verifier_cache_bound",
                "Configured bound of each revocation cache, in its unit",
            ),
            &["cache", "unit"],
        )?;
        let cache_size = IntGaugeVec::new(
            Opts::new(
                "kyso_verifier_cache_size",
                "What each revocation cache holds, in entries and in its bound's unit",
            ),
            &["cache", "unit"],
        )?;
        registry.register(Box::new(cache_bound.clone()))?;
        registry.register(Box::new(cache_size.clone()))?;
        let pki = PkiMetrics::register(&registry)?;
        Ok(Self {
            registry,
            requests,
            duration,
            signatures,
            in_flight,
            in_flight_peak,
            cache_bound,
            cache_size,
            pki,
        })
    }

    /// Sets the cache bounds from the revocation configuration in force.
    pub fn set_cache_bounds(&self, cfg: &kyso_revocation::RevocationConfig) {
        let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.cache_bound
            .with_label_values(&["ocsp", "entries"])
            .set(g(cfg.max_entries_ocsp));
        self.cache_bound
            .with_label_values(&["crl", "bytes"])
            .set(g(cfg.max_crl_bytes));
    }

    /// Sets the cache sizes from a fresh count.
    pub fn set_cache_sizes(&self, stats: &kyso_revocation::CacheStats) {
        let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (cache, unit, n) in [
            ("ocsp", "entries", stats.ocsp_entries),
            ("crl", "entries", stats.crl_entries),
            ("crl", "bytes", stats.crl_bytes),
        ] {
            self.cache_size.with_label_values(&[cache, unit]).set(g(n));
        }
    }

    /// Counts the verdicts of a document.
    pub fn record(&self, report: &DocumentReport) {
        for s in &report.signatures {
            self.signatures
                .with_label_values(&[indication_label(s.indication), sub_label(s.sub_indication)])
                .inc();
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        kyso_server::metrics::render(&self.registry)
    }
}

fn indication_label(i: kyso_validation::report::Indication) -> &'static str {
    use kyso_validation::report::Indication::*;
    match i {
        TotalPassed => "TOTAL_PASSED",
        TotalFailed => "TOTAL_FAILED",
        Indeterminate => "INDETERMINATE",
    }
}

fn sub_label(s: Option<SubIndication>) -> &'static str {
    s.map(kyso_validation::convert::sub_indication_name)
        .unwrap_or("")
}

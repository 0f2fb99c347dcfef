//! The registry's Prometheus metrics and the `/metrics` HTTP endpoint.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Every collector of the registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `kyso_registry_requests_total{method, outcome}`.
    pub requests: IntCounterVec,
    /// `kyso_registry_request_duration_seconds{method}`.
    pub duration: HistogramVec,
    /// `kyso_registry_decisions_total{method, decision, rule}`: one count per
    /// failed rule of a refusal (rule="" for an allow), so a dashboard shows
    /// which rules refuse most.
    pub decisions: IntCounterVec,
    /// `kyso_registry_db_duration_seconds{operation}`.
    pub db_duration: HistogramVec,
    /// `kyso_registry_certificates_expiring{kind, within_days}`: unrevoked certificates whose
    /// validity ends within 7/30/60/90 days (I3: renewal only with at least 60 days left),
    /// counted at each scrape.
    pub expiring: IntGaugeVec,
}

/// The windows of the expiring-certificates gauge, in days.
pub const EXPIRY_WINDOWS: [u32; 4] = [7, 30, 60, 90];

impl Metrics {
    /// A fresh registry with every collector registered.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "kyso_registry_requests_total",
                "Registry requests by method and outcome",
            ),
            &["method", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "kyso_registry_request_duration_seconds",
                "Registry request latency by method",
            )
            .buckets(vec![
                0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "kyso_registry_decisions_total",
                "Authorize and CheckAuthority decisions, by failed rule",
            ),
            &["method", "decision", "rule"],
        )?;
        let db_duration = HistogramVec::new(
            HistogramOpts::new(
                "kyso_registry_db_duration_seconds",
                "Database time per registry operation (queries and transactions)",
            )
            .buckets(vec![
                0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["operation"],
        )?;
        let expiring = IntGaugeVec::new(
            Opts::new(
                "kyso_registry_certificates_expiring",
                "Unrevoked certificates whose validity ends within the window (I3)",
            ),
            &["kind", "within_days"],
        )?;
        registry.register(Box::new(expiring.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(db_duration.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            decisions,
            db_duration,
            expiring,
        })
    }

    /// Counts one decision: an allow, or a refusal with each failed rule.
    pub fn record_decision(&self, method: &str, rules: &[&str]) {
        if rules.is_empty() {
            self.decisions
                .with_label_values(&[method, "allow", ""])
                .inc();
        }
        for r in rules {
            self.decisions.with_label_values(&[method, "deny", r]).inc();
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        kyso_server::metrics::render(&self.registry)
    }
}

//! Prometheus metrics of the signer.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::error::Result;

/// Handles to every metric; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Signatures by key, profile and outcome (`signed`, `refused`, ...).
    pub signatures: IntCounterVec,
    /// Refusals by rule ID.
    pub refusals: IntCounterVec,
    /// Request latency by method.
    pub request_seconds: HistogramVec,
    /// HSM signing latency by key (pool wait included).
    pub hsm_seconds: HistogramVec,
    /// `Authorize` latency by outcome.
    pub registry_seconds: HistogramVec,
    /// Time a signing request spent on the signature timestamp (N1), by outcome (`ok`,
    /// `below_level`: returned under its level).
    pub tsa_seconds: HistogramVec,
    /// Audit append latency (durable).
    pub audit_seconds: HistogramVec,
    /// 1 when a slot can serve a key, 0 when it is down.
    pub slot_up: IntGaugeVec,
    /// Time waiting for a free session, by slot.
    pub pool_wait_seconds: HistogramVec,
    /// `C_Sign` latency by slot and outcome (`ok`, `failover`, `error`).
    pub hsm_call_seconds: HistogramVec,
}

fn buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    ]
}

impl Metrics {
    /// Registers everything in a fresh registry.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let signatures = IntCounterVec::new(
            Opts::new(
                "kyso_signer_signatures_total",
                "Signing requests by key, profile and outcome",
            ),
            &["key", "profile", "outcome"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new("kyso_signer_refusals_total", "Refusals by rule ID"),
            &["rule"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("kyso_signer_request_seconds", "Request latency").buckets(buckets()),
            &["method"],
        )?;
        let hsm_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kyso_signer_hsm_sign_seconds",
                "HSM signature latency, session pool wait included",
            )
            .buckets(buckets()),
            &["key", "outcome"],
        )?;
        let tsa_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kyso_signer_timestamp_seconds",
                "Time a signing request spent on the signature timestamp, within its budget",
            )
            .buckets(buckets()),
            &["outcome"],
        )?;
        let registry_seconds = HistogramVec::new(
            HistogramOpts::new("kyso_signer_registry_seconds", "Authorize latency")
                .buckets(buckets()),
            &["outcome"],
        )?;
        let audit_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kyso_signer_audit_append_seconds",
                "Audit append latency until durable",
            )
            .buckets(buckets()),
            &["outcome"],
        )?;
        let slot_up = IntGaugeVec::new(
            Opts::new(
                "kyso_signer_slot_up",
                "1 when the slot can sign with the key",
            ),
            &["key", "slot"],
        )?;
        let pool_wait_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kyso_signer_hsm_pool_wait_seconds",
                "Time waiting for a free HSM session",
            )
            .buckets(buckets()),
            &["slot"],
        )?;
        let hsm_call_seconds = HistogramVec::new(
            HistogramOpts::new("kyso_signer_hsm_call_seconds", "HSM call latency per slot")
                .buckets(buckets()),
            &["slot", "outcome"],
        )?;
        registry.register(Box::new(pool_wait_seconds.clone()))?;
        registry.register(Box::new(hsm_call_seconds.clone()))?;
        registry.register(Box::new(signatures.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(hsm_seconds.clone()))?;
        registry.register(Box::new(registry_seconds.clone()))?;
        registry.register(Box::new(audit_seconds.clone()))?;
        registry.register(Box::new(slot_up.clone()))?;
        registry.register(Box::new(tsa_seconds.clone()))?;
        Ok(Self {
            registry,
            signatures,
            refusals,
            request_seconds,
            hsm_seconds,
            registry_seconds,
            tsa_seconds,
            audit_seconds,
            slot_up,
            pool_wait_seconds,
            hsm_call_seconds,
        })
    }
}

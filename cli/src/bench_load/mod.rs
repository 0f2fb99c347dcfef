//! `kyso bench load`: the verifier under a realistic mix as the document exchange sends it
//! (CMS and PDFs of 1–3 signatures, many signers under several CAs, a share of tampered and
//! revoked-signer documents), at a fixed arrival rate for a fixed time. Every answer is
//! checked against the verdict the corpus manifest expects: a wrong verdict is an error.
//!
//! - one rate (`--rate`): throughput, latency percentiles and errors per second, the
//!   verifier's CPU and RSS, as JSON and as a timeline chart;
//! - a sweep (`--rates R1,R2,...`): one phase per rate, the latency-versus-load curve (the
//!   knee) as a chart;
//! - `--soak`: one long phase at `--rate` (or at `--soak-fraction` of the sweep's peak): RSS
//!   growth after the warm-up, the verifier's cache sizes against their bounds, errors, and
//!   a pass/fail verdict on the three.
//!
//! The corpus is made by the generator of the tests crate (`kyso_tests::load_corpus`; standalone,
//! with its PKI and a verifier configuration: `scripts/gen-load-corpus.sh`); the CLI reads only
//! its `manifest.json` and files.

mod corpus;
mod drive;
mod procstat;
mod report;
mod svg;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use serde_json::json;

use crate::CliError;
use crate::client::ServerArgs;

/// `kyso bench load`.
#[derive(Debug, Args)]
pub struct LoadBench {
    #[command(flatten)]
    server: ServerArgs,
    /// The corpus directory (its `manifest.json` lists the documents and their verdicts).
    #[arg(long)]
    corpus: PathBuf,
    /// Arrival rate, requests per second (one phase; the soak's rate without `--rates`).
    #[arg(long)]
    rate: Option<f64>,
    /// Arrival rates for the latency-versus-load sweep, one phase each.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Seconds per phase (the soak's length with `--soak`).
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// Seconds at the start of each phase left out of its summary (caches filling).
    #[arg(long, default_value_t = 0)]
    warmup_secs: u64,
    /// Seconds to wait for the last answers after a phase.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Connections to the verifier (requests are spread over them in turn).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests outstanding at most; past it a due request is not sent and counts as an error.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// The verifier's process id: CPU and RSS from /proc (else from `--metrics-url`).
    #[arg(long)]
    verifier_pid: Option<u32>,
    /// The verifier's Prometheus endpoint (http://HOST:PORT/metrics): process figures when no
    /// pid is given, cache sizes and bounds always.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Write the charts (SVG) into this directory.
    #[arg(long)]
    svg_dir: Option<PathBuf>,
    /// File name prefix of the charts.
    #[arg(long, default_value = "load")]
    svg_prefix: String,
    /// Soak: one long phase; reports RSS growth after the warm-up, cache sizes against their
    /// bounds and a pass/fail field.
    #[arg(long)]
    soak: bool,
    /// With `--soak` and `--rates`: soak at this fraction of the sweep's peak throughput.
    #[arg(long, default_value_t = 0.7)]
    soak_fraction: f64,
    /// Soak criterion: RSS growth after the warm-up, as a fraction.
    #[arg(long, default_value_t = 0.05)]
    soak_max_rss_growth: f64,
    /// Seconds per sweep phase when a soak follows the sweep (default: --duration-secs).
    #[arg(long)]
    sweep_secs: Option<u64>,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn progress(msg: &str) {
    eprintln!("kyso bench load: {msg}");
}

/// Runs `kyso bench load` and prints its JSON.
pub async fn run(b: LoadBench) -> Result<ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| usage("--server is required"))?;
    if b.connections == 0 {
        return Err(usage("--connections must be above 0"));
    }
    let bad = |r: &f64| !(r.is_finite() && *r > 0.0);
    if b.rate.as_ref().is_some_and(bad) || b.rates.iter().any(bad) {
        return Err(usage("rates must be positive"));
    }
    if b.rate.is_none() && b.rates.is_empty() {
        return Err(usage("give --rate or --rates"));
    }
    let docs = Arc::new(corpus::load(&b.corpus)?);
    let order = Arc::new(drive::order(docs.len(), 0x6b79_736f));
    let mut clients = Vec::with_capacity(b.connections);
    for _ in 0..b.connections {
        let channel = b.server.connect(&url).await?;
        clients.push(
            VerifierClient::new(channel)
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(64 << 20),
        );
    }
    let observe = drive::Observe {
        verifier_pid: b.verifier_pid,
        metrics_url: b.metrics_url.clone(),
    };
    let drain = Duration::from_secs(b.drain_secs);
    let warmup = b.warmup_secs as f64;
    let mut offset = 0usize;

    // The sweep (or the one rate when there is no sweep and no soak).
    let sweep_rates: Vec<f64> = if !b.rates.is_empty() {
        b.rates.clone()
    } else if b.soak {
        Vec::new()
    } else {
        b.rate.into_iter().collect()
    };
    let sweep_secs = b.sweep_secs.unwrap_or(b.duration_secs);
    let mut phases = Vec::new();
    for &rate in &sweep_rates {
        progress(&format!("{rate} requests/s for {sweep_secs} s"));
        let run = drive::run(
            &clients,
            &docs,
            &order,
            offset,
            rate,
            Duration::from_secs(sweep_secs),
            drain,
            b.max_in_flight,
            &observe,
        )
        .await;
        offset += run.outcomes.len();
        phases.push(report::Phase::of(&run, warmup));
    }
    let peak = phases.iter().map(|p| p.throughput).fold(0.0f64, f64::max);

    let soak = if b.soak {
        let rate = if b.rates.is_empty() {
            b.rate
                .ok_or_else(|| usage("--soak needs --rate or --rates"))?
        } else {
            (peak * b.soak_fraction).max(0.1)
        };
        progress(&format!(
            "soak at {rate:.1} requests/s for {} s",
            b.duration_secs
        ));
        let run = drive::run(
            &clients,
            &docs,
            &order,
            offset,
            rate,
            Duration::from_secs(b.duration_secs),
            drain,
            b.max_in_flight,
            &observe,
        )
        .await;
        Some(report::Phase::of(&run, warmup))
    } else {
        None
    };

    let mut charts = Vec::new();
    if let Some(dir) = &b.svg_dir {
        std::fs::create_dir_all(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
        charts = report::write_charts(dir, &b.svg_prefix, &phases, soak.as_ref())?;
    }

    let soak_json = soak
        .as_ref()
        .map(|s| s.soak_verdict(b.soak_max_rss_growth, b.metrics_url.is_some()));
    let soak_pass = soak_json
        .as_ref()
        .map(|v| v["pass"] == true)
        .unwrap_or(true);
    let wrong = phases
        .iter()
        .chain(soak.as_ref())
        .map(|p| p.errors)
        .sum::<u64>();
    let classes = docs.iter().fold(
        std::collections::BTreeMap::<String, u64>::new(),
        |mut m, d| {
            *m.entry(d.class.clone()).or_default() += 1;
            m
        },
    );
    let bytes: Vec<usize> = docs.iter().map(|d| d.bytes).collect();
    let (signers, cas) = corpus::distinct_signers_and_cas(&docs);
    let out = json!({
        "bench": "load",
        "server": url,
        "mode": "open-loop (latency from the due time)",
        "corpus": {
            "dir": b.corpus.display().to_string(),
            "documents": docs.len(),
            "by_class": classes,
            "cms": docs.iter().filter(|d| matches!(d.request, corpus::Request::Cms(_))).count(),
            "pdf": docs.iter().filter(|d| matches!(d.request, corpus::Request::Pdf(_))).count(),
            "min_bytes": bytes.iter().min(),
            "max_bytes": bytes.iter().max(),
            "total_bytes": bytes.iter().sum::<usize>(),
            "distinct_signers": signers,
            "distinct_cas": cas,
        },
        "connections": b.connections,
        "warmup_s": b.warmup_secs,
        "verifier_pid": b.verifier_pid,
        "metrics_url": b.metrics_url,
        "phases": phases.iter().map(report::Phase::json).collect::<Vec<_>>(),
        "peak_throughput": peak,
        "knee": report::knee(&phases),
        "soak": soak.as_ref().map(report::Phase::json),
        "soak_verdict": soak_json,
        "errors_total": wrong,
        "charts": charts,
        "cores": crate::bench::cores(),
        "load_average": crate::bench::load_average(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| usage(format!("JSON: {e}")))?
    );
    progress("done");
    Ok(if soak_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

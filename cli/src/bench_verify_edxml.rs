//! `kyso bench verify-edxml`: `VerifyEdxml` of one signed envelope through a running verifier,
//! against the in-process floor (the XML work alone: the parse, the reader, canonicalisation,
//! the digest over the whole envelope and the envelope's signature value) and `xmlsec1
//! --verify` of the same file in the same run (the XML signature alone, one process per
//! verification, as many at once as there are cores).
//!
//! The service does more than either: the attached PDF's signatures, paths and revocation.
//! CPU time per operation is given for the floor and for xmlsec1 (this process and its
//! children), and for the verifier when `--server-pid` names it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use kyso_proto::verifier::v1 as pb;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use serde_json::json;
use tonic::transport::Channel;

use super::{CpuMeter, cores, cpu_seconds, load_average, pct_ms};
use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// `kyso bench verify-edxml`.
#[derive(Debug, Args)]
pub struct VerifyEdxmlBench {
    #[command(flatten)]
    server: ServerArgs,
    /// The signed edXML envelope to send (every request sends the whole file).
    #[arg(long)]
    envelope: PathBuf,
    /// Concurrent closed-loop callers, each on its own connection.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Seconds spent measuring the floor, and the xmlsec1 baseline.
    #[arg(long, default_value_t = 3)]
    floor_secs: u64,
    /// The verifier's process id, to report its CPU time per verification.
    #[arg(long)]
    server_pid: Option<u32>,
    /// xmlsec1 baseline: the trusted root (PEM); without it there is no baseline.
    #[arg(long)]
    xmlsec1_trusted: Option<PathBuf>,
    /// xmlsec1 baseline: untrusted intermediates (PEM); repeatable.
    #[arg(long)]
    xmlsec1_untrusted: Vec<PathBuf>,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn progress(msg: &str) {
    eprintln!("kyso bench verify-edxml: {msg}");
}

#[derive(Default)]
struct Load {
    ok: u64,
    not_passed: u64,
    errors: u64,
    examples: BTreeMap<String, String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

fn passed(r: &pb::VerifyEdxmlResponse) -> Result<(), String> {
    if r.indication == pb::Indication::TotalPassed as i32 {
        return Ok(());
    }
    let why = r
        .signature
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_else(|| r.warnings.join("; "));
    Err(format!("indication {}: {why}", r.indication))
}

async fn drive(
    clients: &[VerifierClient<Channel>],
    request: &pb::VerifyEdxmlRequest,
    duration: Duration,
) -> Result<Load, CliError> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let mut client = client.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = Load::default();
            while Instant::now() < deadline {
                let req = request.clone();
                let sent = Instant::now();
                match client.verify_edxml(req).await {
                    Ok(resp) => {
                        l.latencies.push(sent.elapsed());
                        match passed(&resp.into_inner()) {
                            Ok(()) => l.ok += 1,
                            Err(why) => {
                                l.not_passed += 1;
                                l.examples.entry("not_passed".into()).or_insert(why);
                            }
                        }
                    }
                    Err(status) => {
                        l.errors += 1;
                        l.examples
                            .entry(format!("{:?}", status.code()))
                            .or_insert_with(|| status.message().to_owned());
                    }
                }
            }
            l
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        let l = t
            .await
            .map_err(|e| usage(format!("load task failed: {e}")))?;
        total.ok += l.ok;
        total.not_passed += l.not_passed;
        total.errors += l.errors;
        for (k, v) in l.examples {
            total.examples.entry(k).or_insert(v);
        }
        total.latencies.extend(l.latencies);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// The floor: `kyso_edxml::open` of the envelope on one thread per core for `secs`.
fn floor(xml: &[u8], secs: u64) -> Result<(f64, f64, usize), CliError> {
    let policy = kyso_edxml::dsig::DsigPolicy::default();
    let limits = kyso_edxml::EdxmlLimits::default();
    let opened =
        kyso_edxml::open(xml, &limits, &policy).map_err(|e| usage(format!("the envelope: {e}")))?;
    match &opened.signature {
        kyso_edxml::SignatureState::Checked(c) if c.check.passed() => {}
        _ => {
            return Err(usage(
                "the envelope's XML signature does not verify in-process",
            ));
        }
    }
    let threads = cores();
    let cpu_before = cpu_seconds("self").map_or(0.0, |c| c.0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let done: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        if kyso_edxml::open(xml, &limits, &policy).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let cpu = cpu_seconds("self").map_or(0.0, |c| c.0) - cpu_before;
    let per_sec = done as f64 / elapsed;
    let cpu_ms = if done > 0 {
        cpu * 1e3 / done as f64
    } else {
        0.0
    };
    Ok((per_sec, cpu_ms, threads))
}

/// xmlsec1 --verify of the file, one process per verification, `cores()` at once.
fn xmlsec1(
    b: &VerifyEdxmlBench,
    trusted: &PathBuf,
    secs: u64,
) -> Result<serde_json::Value, CliError> {
    let command = || {
        let mut c = Command::new("xmlsec1");
        c.args(["--verify", "--trusted-pem"]).arg(trusted);
        for u in &b.xmlsec1_untrusted {
            c.arg("--untrusted-pem").arg(u);
        }
        c.args([
            "--enabled-reference-uris",
            "empty",
            "--enabled-key-data",
            "x509",
        ])
        .arg(&b.envelope)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let first = command()
        .status()
        .map_err(|e| usage(format!("xmlsec1: {e}")))?;
    if !first.success() {
        return Err(usage("xmlsec1 --verify does not accept the envelope"));
    }
    let cpu_before = cpu_seconds("self").map_or(0.0, |c| c.1);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut running = Vec::new();
    let mut ok = 0u64;
    let mut failed = 0u64;
    loop {
        while running.len() < cores() && Instant::now() < deadline {
            running.push(
                command()
                    .spawn()
                    .map_err(|e| usage(format!("xmlsec1: {e}")))?,
            );
        }
        if running.is_empty() {
            break;
        }
        let child = running.remove(0);
        let mut child = child;
        match child.wait() {
            Ok(s) if s.success() => ok += 1,
            _ => failed += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let cpu = cpu_seconds("self").map_or(0.0, |c| c.1) - cpu_before;
    Ok(json!({
        "what": "xmlsec1 --verify: the envelope's XML signature and its certificate path, \
            no revocation, no attachment; one process per verification, one per core at once",
        "processes": cores(),
        "verifications": ok,
        "failed": failed,
        "verifications_per_sec": ok as f64 / elapsed,
        "cpu_ms_per_verification": if ok > 0 { cpu * 1e3 / ok as f64 } else { 0.0 },
    }))
}

/// Runs `kyso bench verify-edxml` and prints its JSON.
pub async fn run(b: VerifyEdxmlBench) -> Result<ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| usage("--server is required"))?;
    if b.streams == 0 {
        return Err(usage("--streams must be above 0"));
    }
    let xml = read_file(&b.envelope)?;
    let mut clients = Vec::with_capacity(b.streams);
    for _ in 0..b.streams {
        let channel = b.server.connect(&url).await?;
        clients.push(
            VerifierClient::new(channel)
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(64 << 20),
        );
    }
    let request = pb::VerifyEdxmlRequest {
        edxml: xml.clone(),
        at: None,
        revocation_policy: 0,
    };
    let mut probe_client = clients
        .first()
        .cloned()
        .ok_or_else(|| usage("no connection"))?;
    let probe = probe_client
        .verify_edxml(request.clone())
        .await?
        .into_inner();
    if let Err(why) = passed(&probe) {
        return Err(usage(format!(
            "the envelope does not verify as TOTAL_PASSED through the service ({why})"
        )));
    }
    let attachment_signatures: usize = probe
        .attachments
        .iter()
        .map(|a| {
            a.pdf.as_ref().map_or(0, |p| p.signatures.len())
                + a.cms.as_ref().map_or(0, |c| c.signatures.len())
        })
        .sum();

    progress(&format!("warm-up {} s", b.warmup_secs));
    drive(&clients, &request, Duration::from_secs(b.warmup_secs)).await?;
    progress(&format!(
        "grpc phase {} s, {} streams",
        b.duration_secs, b.streams
    ));
    let cpu = CpuMeter::start(b.server_pid);
    let mut run = drive(&clients, &request, Duration::from_secs(b.duration_secs)).await?;
    let server_cpu = cpu.per_op_ms(run.ok).server;
    drop(clients);
    run.latencies.sort_unstable();

    progress(&format!("floor {} s", b.floor_secs));
    let xml_for_floor = xml.clone();
    let secs = b.floor_secs;
    let (floor_rate, floor_cpu_ms, threads) =
        tokio::task::spawn_blocking(move || floor(&xml_for_floor, secs))
            .await
            .map_err(|e| usage(format!("floor: {e}")))??;
    let baseline = match &b.xmlsec1_trusted {
        Some(trusted) => {
            progress("xmlsec1 baseline");
            Some(xmlsec1(&b, trusted, b.floor_secs)?)
        }
        None => None,
    };

    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let rate = run.ok as f64 / secs;
    let xmlsec_rate = baseline
        .as_ref()
        .and_then(|v| v["verifications_per_sec"].as_f64());
    let out = json!({
        "bench": "verify-edxml",
        "server": url,
        "envelope": b.envelope.display().to_string(),
        "envelope_bytes": xml.len(),
        "attachments": probe.attachments.len(),
        "attachment_signatures": attachment_signatures,
        "streams": b.streams,
        "mode": "closed-loop",
        "duration_s": secs,
        "verifications": run.ok,
        "errors": run.errors,
        "not_passed": run.not_passed,
        "error_examples": run.examples,
        "verifications_per_sec": rate,
        "latency_ms": {
            "p50": pct_ms(&run.latencies, 0.50),
            "p90": pct_ms(&run.latencies, 0.90),
            "p99": pct_ms(&run.latencies, 0.99),
            "max": pct_ms(&run.latencies, 1.0),
        },
        "server_cpu_ms_per_verification": server_cpu,
        "physical_limit": {
            "what": "kyso_edxml::open in-process: the parse, the reader (attachments decoded), \
                canonicalisation and SHA-256 of the envelope minus its signature, SignedInfo, \
                the envelope's signature value; no path, no revocation, no attachment's own \
                signatures; one thread per core",
            "threads": threads,
            "verifications_per_sec": floor_rate,
            "cpu_ms_per_verification": floor_cpu_ms,
        },
        "ratio_to_physical_limit": if floor_rate > 0.0 { rate / floor_rate } else { 0.0 },
        "xmlsec1": baseline,
        "speedup_vs_xmlsec1": xmlsec_rate.filter(|r| *r > 0.0).map(|r| rate / r),
        "cores": cores(),
        "load_average": load_average(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| usage(format!("JSON: {e}")))?
    );
    progress("done");
    Ok(ExitCode::SUCCESS)
}

//! `kyso bench`: throughput and latency against a running service, with the
//! physical limit measured in the same run on the same machine, so that the
//! ratio means something on a noisy host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use clap::{Args, Subcommand};
use kyso_proto::verifier::v1 as pb;
use serde_json::json;

use crate::client::ServerArgs;
use crate::{CliError, read_file};

// Declared here rather than in main.rs so that wiring the bench touches one file.
#[path = "bench_load/mod.rs"]
mod bench_load;
#[path = "bench_sign.rs"]
mod bench_sign;
#[path = "bench_verify_edxml.rs"]
mod bench_verify_edxml;
#[path = "bench_verify_pdf.rs"]
mod bench_verify_pdf;

/// The cores this process may use (every bench reports it beside its figures).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The one-minute load average, where the system tells it (the machines are shared).
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Linux reports utime/stime in USER_HZ, which is 100 on every architecture it supports.
const USER_HZ: f64 = 100.0;

/// CPU seconds of a process from `/proc/PID/stat` (`self` for this one): (own user +
/// system, waited-for children's user + system), from clock ticks of 1/[`USER_HZ`] s.
pub(crate) fn cpu_seconds(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    let [utime, stime, cutime, cstime] = f.as_slice() else {
        return None;
    };
    Some(((utime + stime) / USER_HZ, (cutime + cstime) / USER_HZ))
}

/// CPU time over a measured phase, per operation: this process (the load generator) and,
/// when its PID is given, the server's process, both from `/proc/PID/stat`. Read it right
/// after the phase, before any in-process limit is measured.
pub(crate) struct CpuMeter {
    server_pid: Option<u32>,
    server: Option<f64>,
    own: Option<f64>,
}

/// Milliseconds of CPU per operation over a phase; `None` where `/proc` did not tell (or no
/// operation succeeded).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct CpuPerOp {
    pub(crate) server: Option<f64>,
    pub(crate) load_generator: Option<f64>,
}

impl CpuMeter {
    pub(crate) fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            server: Self::server_now(server_pid),
            own: cpu_seconds("self").map(|c| c.0),
        }
    }

    fn server_now(pid: Option<u32>) -> Option<f64> {
        pid.and_then(|p| cpu_seconds(&p.to_string())).map(|c| c.0)
    }

    /// The CPU spent since [`CpuMeter::start`], per operation of `ops`.
    pub(crate) fn per_op_ms(&self, ops: u64) -> CpuPerOp {
        let per_op = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) if ops > 0 => Some((a - b) * 1e3 / ops as f64),
            _ => None,
        };
        CpuPerOp {
            server: per_op(self.server, Self::server_now(self.server_pid)),
            load_generator: per_op(self.own, cpu_seconds("self").map(|c| c.0)),
        }
    }
}

/// Latency percentile in milliseconds (`p` in 0..=1) of sorted latencies.
pub(crate) fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(i)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// `kyso bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Detached CMS verification through a running verifier.
    Verify(VerifyBench),
    /// Registry `Authorize` calls against a running registry, on a seeded synthetic province.
    Authorize(crate::bench_authorize::AuthorizeBench),
    /// Detached SignCms through a running signer against the raw HSM rate (same module and
    /// sessions, in-process). Needs the signer's PKCS#11 environment (P11_KIT_SERVER_ADDRESS).
    Sign(bench_sign::SignBench),
    /// VerifyPdf of one signed PDF through a running verifier, against the in-process floor
    /// (hashing the byte ranges, checking the signature values) and, optionally, pyHanko's
    /// validation of the same file with the same CRLs.
    VerifyPdf(bench_verify_pdf::VerifyPdfBench),
    /// VerifyEdxml of one signed envelope through a running verifier, against the in-process
    /// floor (the XML work alone) and, optionally, xmlsec1 verifying the same file.
    VerifyEdxml(bench_verify_edxml::VerifyEdxmlBench),
    /// The verifier under a mixed corpus (CMS, PDFs of 1-3 signatures, tampered and revoked
    /// documents) at fixed arrival rates: timeline, latency-versus-load curve, soak.
    Load(bench_load::LoadBench),
    /// Instructions per warm in-process verification and per raw signature check, counted
    /// by callgrind (repeatable on a busy machine).
    Instructions(crate::bench_instructions::InstructionsBench),
}

/// `kyso bench verify`.
#[derive(Debug, Args)]
pub struct VerifyBench {
    #[command(flatten)]
    server: ServerArgs,
    /// The detached CMS signature to send.
    #[arg(long)]
    signature: PathBuf,
    /// The signed content.
    #[arg(long)]
    content: PathBuf,
    /// Concurrent VerifyStream streams.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up seconds (fills the revocation caches), not measured.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Open loop at this many requests per second (all streams together);
    /// without it every stream sends its next request as soon as it has an answer.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds spent measuring the raw RSA-2048 verification limit.
    #[arg(long, default_value_t = 3)]
    raw_secs: u64,
    /// Send exactly this many requests (all streams together) instead of running for
    /// `--duration-secs`: a fixed amount of work, for counting the server's instructions
    /// under `valgrind --tool=callgrind` (`scripts/callgrind-verify.sh`).
    #[arg(long)]
    requests: Option<u64>,
    /// Documents per stream message: above 1, `VerifyBatch` with this many documents in
    /// each message instead of `VerifyStream` (latencies are per document: its batch's).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Ask for the verdict only (`verdict_only`: no path, evidence or signer in the report).
    #[arg(long)]
    verdict_only: bool,
    /// The verifier's process id, to report its CPU time per verification.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// Runs a benchmark and prints its JSON.
pub async fn run(cmd: BenchCommand) -> Result<ExitCode, CliError> {
    match cmd {
        BenchCommand::Verify(b) => verify(b).await,
        BenchCommand::Authorize(b) => crate::bench_authorize::run(b).await,
        BenchCommand::Sign(b) => bench_sign::run(b).await,
        BenchCommand::VerifyPdf(b) => bench_verify_pdf::run(b).await,
        BenchCommand::VerifyEdxml(b) => bench_verify_edxml::run(b).await,
        BenchCommand::Instructions(b) => crate::bench_instructions::run(b).await,
        BenchCommand::Load(b) => bench_load::run(b).await,
    }
}

async fn verify(b: VerifyBench) -> Result<ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server is required".into()))?;
    if b.streams == 0 {
        return Err(CliError::Usage("--streams must be above 0".into()));
    }
    if b.batch == 0 {
        return Err(CliError::Usage("--batch must be above 0".into()));
    }
    let signature = read_file(&b.signature)?;
    let content = read_file(&b.content)?;
    let channel = b.server.connect(&url).await?;
    let client = pb::verifier_client::VerifierClient::new(channel);
    let request = pb::VerifyCmsRequest {
        signature,
        detached: Some(pb::verify_cms_request::Detached::Content(content.clone())),
        at: None,
        revocation_policy: 0,
        request_id: String::new(),
        certificates: Vec::new(),
        verdict_only: b.verdict_only,
    };

    // The document must verify before it is worth timing.
    let first = client
        .clone()
        .verify_cms(request.clone())
        .await?
        .into_inner();
    if first.indication != pb::Indication::TotalPassed as i32 {
        return Err(CliError::Usage(format!(
            "the benchmark document does not verify as TOTAL_PASSED: {:?}",
            first.signatures.first().map(|s| s.message.clone())
        )));
    }

    let shape = Shape {
        streams: b.streams,
        batch: b.batch,
    };
    let warm = load(
        &client,
        &request,
        shape,
        Amount::Time(Duration::from_secs(b.warmup_secs)),
        b.rate,
    )
    .await?;
    drop(warm);
    let amount = match b.requests {
        Some(n) => Amount::Count(n),
        None => Amount::Time(Duration::from_secs(b.duration_secs)),
    };
    let cpu = CpuMeter::start(b.server_pid);
    let run = load(&client, &request, shape, amount, b.rate).await?;
    let cpu_ms_per_verification = cpu.per_op_ms(run.ok);
    let raw = raw_rsa2048_verify_per_sec(Duration::from_secs(b.raw_secs))?;

    let mut lat = run.latencies.clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    };
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let throughput = run.ok as f64 / secs;
    let out = json!({
        "bench": "verify",
        "server": url,
        "document_bytes": content.len(),
        "streams": b.streams,
        "batch": b.batch,
        "verdict_only": b.verdict_only,
        "mode": if b.rate.is_some() { "open-loop" } else { "closed-loop" },
        "target_rate": b.rate,
        "duration_s": secs,
        "verifications": run.ok,
        "errors": run.errors,
        "not_passed": run.not_passed,
        "verifications_per_sec": throughput,
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
        "raw_rsa2048_verify_per_sec": raw,
        "ratio_to_raw": if raw > 0.0 { throughput / raw } else { 0.0 },
        "cpu_ms_per_verification": cpu_ms_per_verification,
        "cores": cores(),
        "load_average": load_average(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

struct LoadResult {
    ok: u64,
    errors: u64,
    not_passed: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// How the load is sent: streams, and documents per stream message.
#[derive(Clone, Copy, Debug)]
struct Shape {
    streams: usize,
    /// 1: `VerifyStream`; more: `VerifyBatch` with this many documents per message.
    batch: usize,
}

impl LoadResult {
    fn count(&mut self, resp: &pb::VerifyStreamResponse) {
        match &resp.result {
            Some(pb::verify_stream_response::Result::Report(rep))
                if rep.indication == pb::Indication::TotalPassed as i32 =>
            {
                self.ok += 1
            }
            Some(pb::verify_stream_response::Result::Report(_)) => self.not_passed += 1,
            _ => self.errors += 1,
        }
    }
}

/// How much load to send.
#[derive(Clone, Copy, Debug)]
enum Amount {
    /// For this long.
    Time(Duration),
    /// Exactly this many requests, all streams together.
    Count(u64),
}

async fn load(
    client: &pb::verifier_client::VerifierClient<tonic::transport::Channel>,
    request: &pb::VerifyCmsRequest,
    shape: Shape,
    amount: Amount,
    rate: Option<f64>,
) -> Result<LoadResult, CliError> {
    let streams = shape.streams;
    let batch = shape.batch;
    let start = Instant::now();
    let (deadline, left) = match amount {
        Amount::Time(d) => (Some(start + d), None),
        Amount::Count(n) => (
            None,
            Some(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(n))),
        ),
    };
    let interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64((streams * batch) as f64 / r));
    let mut tasks = Vec::with_capacity(streams);
    for s in 0..streams {
        let mut client = client.clone();
        let request = request.clone();
        let left = left.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = LoadResult {
                ok: 0,
                errors: 0,
                not_passed: 0,
                latencies: Vec::new(),
                elapsed: Duration::ZERO,
            };
            // Spread open-loop senders over the interval so they do not fire together.
            let mut next = Instant::now()
                + interval
                    .map(|i| i.mul_f64(s as f64 / streams as f64))
                    .unwrap_or_default();
            // The documents of the next message: `batch` of them, fewer at the end of a
            // fixed count, none when the run is over.
            let more = || match (&deadline, &left) {
                (Some(d), _) => {
                    if Instant::now() < *d {
                        batch
                    } else {
                        0
                    }
                }
                (None, Some(n)) => {
                    let mut took = 0;
                    let _ = n.fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |v| {
                            took = v.min(batch as u64) as usize;
                            v.checked_sub(took as u64)
                        },
                    );
                    took
                }
                (None, None) => 0,
            };
            if batch == 1 {
                let (tx, rx) = tokio::sync::mpsc::channel::<pb::VerifyCmsRequest>(1);
                let mut responses = client
                    .verify_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                while more() > 0 {
                    if let Some(i) = interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += i;
                    }
                    let sent = Instant::now();
                    if tx.send(request.clone()).await.is_err() {
                        r.errors += 1;
                        break;
                    }
                    match responses.message().await? {
                        Some(resp) => {
                            r.latencies.push(sent.elapsed());
                            r.count(&resp);
                        }
                        None => {
                            r.errors += 1;
                            break;
                        }
                    }
                }
            } else {
                let (tx, rx) = tokio::sync::mpsc::channel::<pb::VerifyCmsBatch>(1);
                let mut responses = client
                    .verify_batch(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                loop {
                    let n = more();
                    if n == 0 {
                        break;
                    }
                    if let Some(i) = interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += i;
                    }
                    let sent = Instant::now();
                    let message = pb::VerifyCmsBatch {
                        items: vec![request.clone(); n],
                    };
                    if tx.send(message).await.is_err() {
                        r.errors += n as u64;
                        break;
                    }
                    match responses.message().await? {
                        Some(resp) => {
                            let took = sent.elapsed();
                            if resp.error.is_some() {
                                r.errors += n as u64;
                            }
                            for item in &resp.items {
                                r.latencies.push(took);
                                r.count(item);
                            }
                        }
                        None => {
                            r.errors += n as u64;
                            break;
                        }
                    }
                }
            }
            Ok::<_, tonic::Status>(r)
        }));
    }
    let mut total = LoadResult {
        ok: 0,
        errors: 0,
        not_passed: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => {
                total.ok += r.ok;
                total.errors += r.errors;
                total.not_passed += r.not_passed;
                total.latencies.extend(r.latencies);
            }
            Ok(Err(status)) => return Err(CliError::Status(status)),
            Err(e) => return Err(CliError::Usage(format!("load task failed: {e}"))),
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// The physical limit: RSA-2048 PKCS#1 v1.5 SHA-256 verifications per second
/// with aws-lc-rs on every core, in this process. A warm verifier does one
/// such check per document once certificate links are cached.
fn raw_rsa2048_verify_per_sec(duration: Duration) -> Result<f64, CliError> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|e| CliError::Usage(format!("key generation: {e}")))?;
    let msg = [0x5au8; 64];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
        .map_err(|e| CliError::Usage(format!("signing: {e}")))?;
    let public = key.public_key().as_ref().to_vec();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let public = public.clone();
            let sig = sig.clone();
            std::thread::spawn(move || {
                let pk = signature::UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    public,
                );
                let mut n = 0u64;
                let until = Instant::now() + duration;
                while Instant::now() < until {
                    for _ in 0..64 {
                        if pk.verify(&msg, &sig).is_ok() {
                            n += 1;
                        }
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| CliError::Usage("raw benchmark thread panicked".into()))?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

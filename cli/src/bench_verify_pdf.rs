//! `kyso bench verify-pdf`: `VerifyPdf` of one signed PDF through a running verifier, against
//! two references measured in the same run on the same machine:
//!
//! - the physical limit: the work no verifier of this file can skip, in this process on every
//!   core — SHA-256 over each signature's `/ByteRange` and the verification of each signer's
//!   signature value, with the file's own keys and signatures;
//! - pyHanko (optional, `--baseline-*`): `tests/peers/pyhanko_tool.py validate --repeat N` on the
//!   same file with the same trust roots and the same CRL files, offline, first as one process,
//!   then as one process per core at once (pyHanko validates on one core; running it on every
//!   core is what a pyHanko service on this machine would do).
//!
//! Revocation, so the comparison is honest: the verifier runs as in production, with its
//! revocation caches. The first request fetches the CRLs (the same files pyHanko reads, served
//! on loopback by whoever started the verifier); every later request is answered from the
//! cache until the CRL's nextUpdate. pyHanko's tool builds a fresh validation context per
//! validation (no cache carried over), so it parses the CRL files every time. The JSON says
//! which revocation sources the verifier used and how many answers came from its cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use der::Encode;
use kyso_pdf::{self as pdf, PdfLimits};
use kyso_pki::cert::Cert;
use kyso_pki::cms::{self, Detached};
use kyso_pki::crypto::{self, AlgorithmPolicy, DigestAlgorithm};
use kyso_proto::verifier::v1 as pb;
use pb::verifier_client::VerifierClient;
use serde_json::{Value, json};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tonic::transport::Channel;

use super::{CpuMeter, cores, load_average, pct_ms};
use crate::client::ServerArgs;
use crate::{CliError, read_file};

/// The target: the service at least this many times pyHanko's rate.
const TARGET_SPEEDUP: f64 = 100.0;

/// `kyso bench verify-pdf`.
#[derive(Debug, Args)]
pub struct VerifyPdfBench {
    #[command(flatten)]
    server: ServerArgs,
    /// The signed PDF to send (every request sends the whole file).
    #[arg(long)]
    pdf: PathBuf,
    /// Concurrent closed-loop callers, each on its own connection.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Send exactly this many measured requests (all streams together) instead of running
    /// for --duration-secs: a fixed amount of work for instruction counts of the verifier
    /// (scripts/callgrind-verify-pdf.sh).
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up seconds, not measured (the revocation caches are filled by the probe already).
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Seconds spent measuring the physical limit in this process.
    #[arg(long, default_value_t = 3)]
    floor_secs: u64,
    /// pyHanko baseline: the python of a venv with pyHanko (tests/peers/peers.sh makes one).
    #[arg(long, requires_all = ["baseline_tool", "roots"])]
    baseline_python: Option<PathBuf>,
    /// pyHanko baseline: tests/peers/pyhanko_tool.py.
    #[arg(long, requires = "baseline_python")]
    baseline_tool: Option<PathBuf>,
    /// pyHanko baseline: trust root (PEM or DER); repeatable. The verifier's own trust
    /// anchors are its configuration's.
    #[arg(long = "root")]
    roots: Vec<PathBuf>,
    /// pyHanko baseline: other CA certificates (PEM bundle); repeatable.
    #[arg(long)]
    intermediates: Vec<PathBuf>,
    /// pyHanko baseline: CRL file (PEM bundle or DER); repeatable. Give the CRLs the verifier
    /// fetches, so both sides judge revocation on the same data.
    #[arg(long = "crl")]
    crls: Vec<PathBuf>,
    /// pyHanko baseline: timed validations per process (after one untimed).
    #[arg(long, default_value_t = 5)]
    baseline_runs: u32,
    /// pyHanko baseline: processes run at once for the all-core rate; default: the cores.
    #[arg(long)]
    baseline_processes: Option<usize>,
    /// pyHanko baseline: its revocation mode (hard-fail, soft-fail, require).
    #[arg(long, default_value = "hard-fail")]
    baseline_revocation_mode: String,
    /// The verifier's process id, to report its CPU time per verification.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Progress on stderr (stdout is the JSON).
fn progress(msg: &str) {
    eprintln!("kyso bench verify-pdf: {msg}");
}

/// Runs `kyso bench verify-pdf` and prints its JSON.
pub async fn run(b: VerifyPdfBench) -> Result<ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| usage("--server is required"))?;
    if b.streams == 0 {
        return Err(usage("--streams must be above 0"));
    }
    let pdf = read_file(&b.pdf)?;
    let floor_work = FloorWork::prepare(&pdf)?;
    let expected = floor_work.signatures.len();
    let signed_bytes = floor_work.signed_bytes();
    let algorithms = floor_work.algorithms();

    // One connection per caller: a 1 MiB request per call would otherwise queue behind the
    // others in one HTTP/2 connection's flow-control window, which measures the window.
    let mut clients = Vec::with_capacity(b.streams);
    for _ in 0..b.streams {
        let channel = b.server.connect(&url).await?;
        clients.push(
            VerifierClient::new(channel)
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(64 << 20),
        );
    }
    let request = pb::VerifyPdfRequest {
        pdf: pdf.clone().into(),
        at: None,
        revocation_policy: 0,
        certificates: Vec::new(),
    };

    // The probe: the document must pass before it is worth timing, and this first request is
    // the one that fetches the revocation data into the verifier's caches.
    let mut probe_client = clients
        .first()
        .cloned()
        .ok_or_else(|| usage("no connection"))?;
    let probe = probe_client.verify_pdf(request.clone()).await?.into_inner();
    if let Err(why) = check_response(&probe, expected) {
        return Err(usage(format!(
            "the benchmark PDF does not verify as TOTAL_PASSED through the service ({why})"
        )));
    }
    let mut probe_rev = Revocation::default();
    probe_rev.add(&probe);

    progress(&format!("warm-up {} s", b.warmup_secs));
    let warm = drive(
        &clients,
        &request,
        expected,
        Amount::For(Duration::from_secs(b.warmup_secs)),
    )
    .await?;
    let amount = match b.requests {
        Some(n) => {
            progress(&format!("grpc phase: {n} requests, {} streams", b.streams));
            Amount::Exactly(n)
        }
        None => {
            progress(&format!(
                "grpc phase {} s, {} streams",
                b.duration_secs, b.streams
            ));
            Amount::For(Duration::from_secs(b.duration_secs))
        }
    };
    let cpu = CpuMeter::start(b.server_pid);
    let mut run = drive(&clients, &request, expected, amount).await?;
    let cpu_ms_per_document = cpu.per_op_ms(run.ok);
    drop(clients);
    run.latencies.sort_unstable();

    // After the gRPC phase, so the two never compete for the cores.
    progress(&format!("physical limit {} s", b.floor_secs));
    let floor = floor_work.measure(Duration::from_secs(b.floor_secs))?;

    let baseline = match (&b.baseline_python, &b.baseline_tool) {
        (Some(python), Some(tool)) => {
            progress("pyHanko baseline");
            Some(pyhanko(&b, python, tool, expected)?)
        }
        _ => None,
    };

    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let rate = run.ok as f64 / secs;
    let floor_rate = floor.docs_per_sec;
    let py_one = baseline.as_ref().map(|p| p.one_rate);
    let py_all = baseline.as_ref().map(|p| p.all_rate);
    let speedup = py_all.filter(|r| *r > 0.0).map(|r| rate / r);
    let speedup_one = py_one.filter(|r| *r > 0.0).map(|r| rate / r);

    let out = json!({
        "bench": "verify-pdf",
        "server": url,
        "pdf": b.pdf.display().to_string(),
        "document_bytes": pdf.len(),
        "signatures_per_document": expected,
        "signed_bytes_per_document": signed_bytes,
        "streams": b.streams,
        "connections": b.streams,
        "mode": "closed-loop",
        "duration_s": secs,
        "verifications": run.ok,
        "errors": run.errors,
        "error_examples": run.examples,
        "not_passed": run.not_passed,
        "warmup_verifications": warm.ok,
        "verifications_per_sec": rate,
        "signatures_per_sec": rate * expected as f64,
        "latency_ms": {
            "p50": pct_ms(&run.latencies, 0.50),
            "p90": pct_ms(&run.latencies, 0.90),
            "p99": pct_ms(&run.latencies, 0.99),
            "max": pct_ms(&run.latencies, 1.0),
        },
        "kyso_revocation": {
            "configuration": "the verifier's own (production): revocation checked on every \
                request, answers cached until nextUpdate; the probe request fills the caches",
            "probe": probe_rev.json(),
            "measured": run.revocation.json(),
        },
        "physical_limit": {
            "what": "SHA-256 over every signature's /ByteRange (each byte once: the ranges \
                share their prefix) + each signer's signature verification (aws-lc-rs), \
                in-process, one thread per core",
            "threads": floor.threads,
            "verifications_per_sec": floor_rate,
            "hashed_bytes_per_document": floor.hashed_bytes,
            "cpu_ms_per_document": {
                "sha256": floor.sha256_ms,
                "sha256_each_signature_separately": floor.sha256_separate_ms,
                "signatures": floor.signature_ms,
            },
            "signature_algorithms": algorithms,
        },
        "ratio_to_physical_limit": if floor_rate > 0.0 { rate / floor_rate } else { 0.0 },
        "cpu_ms_per_document": cpu_ms_per_document,
        "pyhanko": baseline.as_ref().map(|p| p.json.clone()),
        "speedup_vs_pyhanko": speedup,
        "speedup_vs_one_pyhanko_process": speedup_one,
        "target_speedup": TARGET_SPEEDUP,
        "target_met": speedup.map(|s| s >= TARGET_SPEEDUP),
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

/// `Ok` when the document and every one of its `expected` signatures passed.
fn check_response(r: &pb::VerifyPdfResponse, expected: usize) -> Result<(), String> {
    if r.signatures.len() != expected {
        return Err(format!(
            "{} signatures reported, {expected} in the file",
            r.signatures.len()
        ));
    }
    for s in &r.signatures {
        let Some(rep) = &s.report else {
            return Err(format!("{}: no report", s.field_name));
        };
        if rep.indication != pb::Indication::TotalPassed as i32 {
            return Err(format!("{}: {}", s.field_name, rep.message));
        }
    }
    if r.indication != pb::Indication::TotalPassed as i32 {
        return Err(format!("document indication {}", r.indication));
    }
    Ok(())
}

/// Where the verifier's revocation answers came from.
#[derive(Debug, Default)]
struct Revocation {
    by_source: BTreeMap<String, u64>,
    from_cache: u64,
    stale: u64,
    total: u64,
}

impl Revocation {
    fn add(&mut self, r: &pb::VerifyPdfResponse) {
        for ev in r
            .signatures
            .iter()
            .filter_map(|s| s.report.as_ref())
            .flat_map(|rep| rep.revocation.iter())
        {
            let source = pb::RevocationSource::try_from(ev.source)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("REVOCATION_SOURCE_")
                        .to_owned()
                })
                .unwrap_or_else(|_| format!("unknown {}", ev.source));
            *self.by_source.entry(source).or_default() += 1;
            self.from_cache += u64::from(ev.from_cache);
            self.stale += u64::from(ev.stale);
            self.total += 1;
        }
    }

    fn merge(&mut self, other: Revocation) {
        for (k, v) in other.by_source {
            *self.by_source.entry(k).or_default() += v;
        }
        self.from_cache += other.from_cache;
        self.stale += other.stale;
        self.total += other.total;
    }

    fn json(&self) -> Value {
        json!({
            "answers": self.total,
            "by_source": self.by_source,
            "from_cache": self.from_cache,
            "from_cache_share": if self.total > 0 {
                self.from_cache as f64 / self.total as f64
            } else {
                0.0
            },
            "stale": self.stale,
        })
    }
}

/// One phase of closed-loop load.
#[derive(Debug, Default)]
struct Load {
    ok: u64,
    not_passed: u64,
    errors: u64,
    /// The first message of each error kind.
    examples: BTreeMap<String, String>,
    latencies: Vec<Duration>,
    revocation: Revocation,
    elapsed: Duration,
}

/// How much a phase sends.
enum Amount {
    /// As many requests as fit in this time.
    For(Duration),
    /// Exactly this many, all callers together.
    Exactly(u64),
}

/// One closed-loop caller per client for `amount`.
async fn drive(
    clients: &[VerifierClient<Channel>],
    request: &pb::VerifyPdfRequest,
    expected: usize,
    amount: Amount,
) -> Result<Load, CliError> {
    let start = Instant::now();
    let (deadline, left) = match amount {
        Amount::For(d) => (Some(start + d), None),
        Amount::Exactly(n) => (None, Some(Arc::new(AtomicU64::new(n)))),
    };
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let mut client = client.clone();
        let request = request.clone();
        let left = left.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = Load::default();
            let more = || match (&left, deadline) {
                (Some(left), _) => left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok(),
                (None, Some(deadline)) => Instant::now() < deadline,
                (None, None) => false,
            };
            while more() {
                // The copy of the file is the load generator's cost, made before the clock
                // starts (tonic takes the message by value).
                let req = request.clone();
                let sent = Instant::now();
                match client.verify_pdf(req).await {
                    Ok(resp) => {
                        l.latencies.push(sent.elapsed());
                        let resp = resp.into_inner();
                        l.revocation.add(&resp);
                        match check_response(&resp, expected) {
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
        total.revocation.merge(l.revocation);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

// ------------------------------------------------------------------ the physical limit

/// What one signature of the file costs at the least: its byte ranges hashed and its signature
/// value verified, with the file's own key and bytes.
struct FloorSignature {
    spans: [(usize, usize); 2],
    digest: DigestAlgorithm,
    spki: SubjectPublicKeyInfoOwned,
    signature_algorithm: AlgorithmIdentifierOwned,
    /// The DER of the signed attributes (what the signature covers); `None`: the signature is
    /// over the content digest itself.
    signed_attrs: Option<Vec<u8>>,
    signature: Vec<u8>,
    algorithm_name: String,
}

impl FloorSignature {
    fn hash(&self, pdf: &[u8]) -> Vec<u8> {
        let mut d = self.digest.digester();
        for (s, e) in self.spans {
            d.update(pdf.get(s..e).unwrap_or_default());
        }
        d.finish()
    }

    fn verify(&self, digest: &[u8]) -> Result<(), crypto::SigError> {
        let policy = AlgorithmPolicy::default();
        match &self.signed_attrs {
            Some(attrs) => crypto::verify_signature(
                &self.spki,
                &self.signature_algorithm,
                Some(self.digest),
                attrs,
                &self.signature,
                policy,
            ),
            None => crypto::verify_signature_prehashed(
                &self.spki,
                &self.signature_algorithm,
                self.digest,
                digest,
                &self.signature,
                policy,
            ),
        }
        .map(|_| ())
    }
}

/// The file and what each of its signatures costs at the least.
struct FloorWork {
    pdf: Vec<u8>,
    signatures: Vec<FloorSignature>,
}

struct Floor {
    threads: usize,
    docs_per_sec: f64,
    sha256_ms: f64,
    sha256_separate_ms: f64,
    hashed_bytes: usize,
    signature_ms: f64,
}

impl FloorWork {
    /// Reads the file's signatures with the project's parser (outside the measurement) and
    /// checks that each one verifies, so the floor times work that succeeds.
    fn prepare(pdf: &[u8]) -> Result<FloorWork, CliError> {
        let parsed = pdf::parse_signatures(pdf, &PdfLimits::default())
            .map_err(|e| usage(format!("--pdf: {e}")))?;
        let mut signatures = Vec::new();
        for sig in &parsed.signatures {
            let field = &sig.field_name;
            let range = sig
                .coverage
                .as_ref()
                .map_err(|e| usage(format!("{field}: byte range refused: {e}")))?;
            let msg =
                cms::parse(&sig.contents).map_err(|e| usage(format!("{field}: /Contents: {e}")))?;
            let si = msg
                .signer(0)
                .ok_or_else(|| usage(format!("{field}: the CMS has no signer")))?;
            let digest = DigestAlgorithm::from_oid(&si.digest_alg.oid)
                .ok_or_else(|| usage(format!("{field}: unsupported digest algorithm")))?;
            let value = sig
                .digest(pdf, digest)
                .ok_or_else(|| usage(format!("{field}: byte range outside the file")))?;
            let check = cms::check_signer(
                &msg,
                0,
                &Detached::Digest {
                    algorithm: digest,
                    value: &value,
                },
                &[],
            );
            if let Some(f) = &check.failure {
                return Err(usage(format!(
                    "{field}: the signature does not verify: {f}"
                )));
            }
            let cert: Cert = check
                .signer_cert
                .ok_or_else(|| usage(format!("{field}: no signer certificate in the CMS")))?;
            let signed_attrs = si
                .signed_attrs
                .as_ref()
                .map(|a| a.to_der())
                .transpose()
                .map_err(|e| usage(format!("{field}: signed attributes: {e}")))?;
            let fs = FloorSignature {
                spans: range.spans(),
                digest,
                spki: cert.x509().tbs_certificate.subject_public_key_info.clone(),
                signature_algorithm: si.signature_algorithm.clone(),
                signed_attrs,
                signature: si.signature.as_bytes().to_vec(),
                algorithm_name: check.signature_algorithm.clone().unwrap_or_default(),
            };
            // The re-encoded signed attributes must be what was signed (they are when the
            // signer wrote DER, as it must); otherwise the floor would time a failure.
            fs.verify(&value).map_err(|e| {
                usage(format!(
                    "{field}: the signature does not verify over the re-encoded signed \
                     attributes ({e}); the physical limit cannot be measured on this file"
                ))
            })?;
            signatures.push(fs);
        }
        if signatures.is_empty() {
            return Err(usage("--pdf: the file has no signature"));
        }
        Ok(FloorWork {
            pdf: pdf.to_vec(),
            signatures,
        })
    }

    fn signed_bytes(&self) -> usize {
        self.signatures
            .iter()
            .flat_map(|s| s.spans)
            .map(|(s, e)| e.saturating_sub(s))
            .sum()
    }

    /// Bytes [`Self::hash_shared`] reads per document.
    fn hashed_bytes(&self) -> usize {
        let prefix = self
            .signatures
            .iter()
            .map(|s| s.spans[0].1)
            .max()
            .unwrap_or(0);
        let seconds: usize = self
            .signatures
            .iter()
            .map(|s| s.spans[1].1.saturating_sub(s.spans[1].0))
            .sum();
        prefix + seconds
    }

    fn algorithms(&self) -> Vec<String> {
        self.signatures
            .iter()
            .map(|s| s.algorithm_name.clone())
            .collect()
    }

    /// Every signature's digest, hashing each byte once where the signed byte sequences share
    /// a prefix: every `/ByteRange` starts at 0, so an earlier signature's first range is a
    /// prefix of a later one's, and one running hash (cloned at each first range's end) serves
    /// them all. Two signatures over a 1 MiB file then cost ~1 MiB of hashing, not ~2.
    fn hash_shared(&self) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new(); self.signatures.len()];
        let mut order: Vec<usize> = (0..self.signatures.len()).collect();
        order.sort_by_key(|&i| {
            let s = &self.signatures[i];
            (s.digest as u8, s.spans[0].1)
        });
        let mut running: Option<(DigestAlgorithm, usize, crypto::Digester)> = None;
        for i in order {
            let s = &self.signatures[i];
            let (start, end) = s.spans[0];
            let reusable = matches!(&running, Some((alg, pos, _)) if *alg == s.digest && start == 0 && *pos <= end);
            if !reusable {
                running = Some((s.digest, start, s.digest.digester()));
            }
            let Some((_, pos, ctx)) = running.as_mut() else {
                continue;
            };
            ctx.update(self.pdf.get(*pos..end).unwrap_or_default());
            *pos = end;
            let mut d = ctx.clone();
            let (b0, b1) = s.spans[1];
            d.update(self.pdf.get(b0..b1).unwrap_or_default());
            if let Some(slot) = out.get_mut(i) {
                *slot = d.finish();
            }
        }
        out
    }

    /// One document's irreducible work.
    fn one(&self) -> bool {
        let digests = self.hash_shared();
        self.signatures
            .iter()
            .zip(&digests)
            .all(|(s, d)| s.verify(std::hint::black_box(d)).is_ok())
    }

    /// Documents per second on every core for `duration`, and the per-document split between
    /// hashing and signature checks (one thread, a short separate measurement).
    fn measure(self, duration: Duration) -> Result<Floor, CliError> {
        let work = Arc::new(self);
        let threads = cores();
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let work = work.clone();
                std::thread::spawn(move || {
                    let until = Instant::now() + duration;
                    let mut n = 0u64;
                    // At least one document per thread, so a zero duration still measures.
                    loop {
                        if work.one() {
                            n += 1;
                        }
                        if Instant::now() >= until {
                            break n;
                        }
                    }
                })
            })
            .collect();
        let mut docs = 0u64;
        for h in handles {
            docs += h
                .join()
                .map_err(|_| usage("physical limit thread panicked"))?;
        }
        let docs_per_sec = docs as f64 / start.elapsed().as_secs_f64().max(1e-9);

        let rounds = 8u32;
        let t = Instant::now();
        let mut digests = Vec::new();
        for _ in 0..rounds {
            digests = work.hash_shared();
        }
        let sha256_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
        // Each signature hashed on its own, as a verifier that shares nothing does.
        let t = Instant::now();
        for _ in 0..rounds {
            for s in &work.signatures {
                std::hint::black_box(s.hash(&work.pdf));
            }
        }
        let sha256_separate_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
        if digests
            .iter()
            .zip(&work.signatures)
            .any(|(d, s)| *d != s.hash(&work.pdf))
        {
            return Err(usage(
                "shared-prefix hashing disagrees with per-signature hashing",
            ));
        }
        let t = Instant::now();
        for _ in 0..rounds {
            for (s, d) in work.signatures.iter().zip(&digests) {
                std::hint::black_box(s.verify(d).is_ok());
            }
        }
        let signature_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
        Ok(Floor {
            threads,
            docs_per_sec,
            sha256_ms,
            sha256_separate_ms,
            hashed_bytes: work.hashed_bytes(),
            signature_ms,
        })
    }
}

// ------------------------------------------------------------------ pyHanko

struct Baseline {
    /// Validations per second of one pyHanko process alone.
    one_rate: f64,
    /// Validations per second of `processes` pyHanko processes at once.
    all_rate: f64,
    json: Value,
}

/// `pyhanko_tool.py validate --repeat N` with the bench's trust and revocation inputs.
fn pyhanko_command(b: &VerifyPdfBench, python: &PathBuf, tool: &PathBuf) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(tool).arg("validate").arg("--in").arg(&b.pdf);
    for r in &b.roots {
        cmd.arg("--root").arg(r);
    }
    for i in &b.intermediates {
        cmd.arg("--intermediate").arg(i);
    }
    for c in &b.crls {
        cmd.arg("--crl").arg(c);
    }
    cmd.arg("--revocation-mode")
        .arg(&b.baseline_revocation_mode)
        .arg("--repeat")
        .arg(b.baseline_runs.max(1).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `n` pyHanko processes at once and returns each one's JSON.
fn pyhanko_runs(
    b: &VerifyPdfBench,
    python: &PathBuf,
    tool: &PathBuf,
    n: usize,
) -> Result<Vec<Value>, CliError> {
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let child = pyhanko_command(b, python, tool)
            .spawn()
            .map_err(|e| usage(format!("--baseline-python {}: {e}", python.display())))?;
        children.push(child);
    }
    let mut out = Vec::with_capacity(n);
    for child in children {
        let o = child
            .wait_with_output()
            .map_err(|e| usage(format!("pyHanko: {e}")))?;
        if !o.status.success() {
            return Err(usage(format!(
                "pyHanko failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let v: Value = serde_json::from_slice(&o.stdout)
            .map_err(|e| usage(format!("pyHanko printed no JSON ({e})")))?;
        out.push(v);
    }
    Ok(out)
}

fn seconds_per_validation(v: &Value) -> Result<f64, CliError> {
    v["seconds_per_validation"]
        .as_f64()
        .filter(|s| *s > 0.0)
        .ok_or_else(|| usage(format!("pyHanko reported no timing: {v}")))
}

fn pyhanko(
    b: &VerifyPdfBench,
    python: &PathBuf,
    tool: &PathBuf,
    expected: usize,
) -> Result<Baseline, CliError> {
    if b.roots.is_empty() {
        return Err(usage("the pyHanko baseline needs --root"));
    }
    let version = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('pyHanko'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());

    // One process alone: pyHanko's own speed on this file.
    let one = pyhanko_runs(b, python, tool, 1)?;
    let first = one
        .first()
        .ok_or_else(|| usage("pyHanko did not run"))?
        .clone();
    let one_secs = seconds_per_validation(&first)?;

    // Its verdicts must be the service's (every signature passing), or the comparison times
    // different work.
    let sigs = first["signatures"].as_array().cloned().unwrap_or_default();
    let verdicts: Vec<Value> = sigs
        .iter()
        .map(|s| {
            json!({
                "field": s["field"],
                "summary": s["summary"],
                "bottom_line": s["bottom_line"],
                "coverage": s["coverage"],
                "modification_level": s["modification_level"],
            })
        })
        .collect();
    let all_pass = sigs.len() == expected && sigs.iter().all(|s| s["bottom_line"] == true);
    if !all_pass {
        return Err(usage(format!(
            "pyHanko does not validate every signature of the benchmark PDF: {verdicts:?}"
        )));
    }

    // One process per core at once: what pyHanko makes of the whole machine.
    let processes = b.baseline_processes.unwrap_or_else(cores).max(1);
    let (all_rate, all_secs) = if processes == 1 {
        (1.0 / one_secs, vec![one_secs])
    } else {
        let runs = pyhanko_runs(b, python, tool, processes)?;
        let secs = runs
            .iter()
            .map(seconds_per_validation)
            .collect::<Result<Vec<_>, _>>()?;
        (secs.iter().map(|s| 1.0 / s).sum(), secs)
    };

    let json = json!({
        "version": version,
        "tool": tool.display().to_string(),
        "revocation": format!(
            "offline: the CRL files given ({}), {}; a fresh ValidationContext per validation \
             (no cache carried over)",
            b.crls.len(),
            b.baseline_revocation_mode
        ),
        "runs_per_process": b.baseline_runs.max(1),
        "signatures": verdicts,
        "one_process": {
            "seconds_per_validation": one_secs,
            "validations_per_sec": 1.0 / one_secs,
        },
        "all_cores": {
            "processes": processes,
            "seconds_per_validation": all_secs,
            "validations_per_sec": all_rate,
        },
    });
    Ok(Baseline {
        one_rate: 1.0 / one_secs,
        all_rate,
        json,
    })
}

//! `kyso bench sign` against a whole cluster (SoftHSM2 behind `p11-kit server`, the registry,
//! the `kyso-signer` binary): both phases run, and every signature the gRPC phase reports has
//! its `signed` record in the audit log. Shape, not speed: nothing here is timed.
//!
//! `bench_sign_release_measurement` (ignored) is the measurement of docs/BENCHMARKS.md: RSA-2048
//! (`seal`) and P-256 (`chairman`) with the cluster's 2 sessions, printing the JSON of each run,
//! the CPU seconds every process spent in each phase and the signer's `/metrics` histograms:
//!
//! ```sh
//! cargo build --release -p kyso -p kyso-signer
//! cargo test --release -p kyso-tests --test signer -- bench_sign --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kyso_tests::cluster::Cluster;
use kyso_tests::hsm::workspace_bin;
use serde_json::Value;

/// `signed` entries in the audit log (seals and refusals are not counted).
pub(crate) fn signed_records(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""decision":"signed""#))
        .count() as u64
}

fn config_path(c: &Cluster) -> PathBuf {
    // Cluster::start_signer writes the configuration the signer runs with here.
    let p = c.dir.path().join("signer.toml");
    assert!(p.is_file(), "no {}", p.display());
    p
}

/// `kyso bench sign --server … --config … --organisation UBND --doc-type QD <args>`, with the
/// PKCS#11 client environment of the signer.
pub(crate) fn bench_command(c: &Cluster, args: &[String]) -> Command {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(["bench", "sign", "--server"])
        .arg(format!("http://{}", c.addr))
        .arg("--config")
        .arg(config_path(c))
        .args(["--organisation", &c.province.ubnd, "--doc-type", "QD"])
        .args(args)
        .env_remove("KYSO_SERVER");
    let (k, v) = c.p11.client_env();
    cmd.env(k, v);
    cmd
}

async fn bench(c: &Cluster, args: &[String]) -> Value {
    let mut cmd = bench_command(c, args);
    let out = tokio::task::spawn_blocking(move || {
        kyso_tests::run(&mut cmd, None, Duration::from_secs(180))
    })
    .await
    .unwrap()
    .expect_success();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON from kyso bench sign ({e}): {out}"))
}

fn assert_shape(v: &Value) {
    for phase in ["raw", "grpc"] {
        let p = &v[phase];
        assert!(p["ops_per_sec"].as_f64().unwrap() > 0.0, "{phase}: {v}");
        assert!(p["signatures"].as_u64().unwrap() > 0, "{phase}: {v}");
        assert!(p["p50_ms"].as_f64().unwrap() > 0.0, "{phase}: {v}");
        assert!(
            p["p99_ms"].as_f64().unwrap() >= p["p50_ms"].as_f64().unwrap(),
            "{phase}: {v}"
        );
    }
    assert_eq!(v["raw"]["errors"], 0, "{v}");
    assert_eq!(v["grpc"]["errors"], serde_json::json!({}), "{v}");
    assert!(v["ratio"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["target"], 0.85, "{v}");
    assert!(v["met"].is_boolean(), "{v}");
    assert_eq!(v["sessions"], 2, "the cluster's slot has 2 sessions: {v}");
    assert!(v["cores"].as_u64().unwrap() >= 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sign_measures_raw_and_grpc_and_every_grpc_signature_is_audited() {
    let c = Cluster::start().await;
    let p = c.province.clone();

    // Both keys, round robin, the NAME:PROFILE:PERSON form; default concurrency.
    let before = signed_records(&c.audit_path());
    let v = bench(
        &c,
        &[
            "--duration".into(),
            "1".into(),
            "--warmup".into(),
            "0".into(),
            "--key".into(),
            format!("seal:issue:{}", p.clerk),
            "--key".into(),
            format!("chairman:approval:{}", p.chairman),
            // A6: the seals go on documents the chairman approved first.
            "--approve-with".into(),
            format!("chairman:{}", p.chairman),
            "--approval-pool".into(),
            "4".into(),
        ],
    )
    .await;
    assert_shape(&v);
    assert_eq!(v["concurrency"], 4, "2 × 2 sessions: {v}");
    assert_eq!(v["keys"][0]["mechanism"], "rsa-pkcs1-sha256", "{v}");
    assert_eq!(v["keys"][1]["mechanism"], "ecdsa", "{v}");
    let grpc = v["grpc"]["signatures"].as_u64().unwrap();
    let outside = v["grpc"]["signed_outside_measurement"].as_u64().unwrap();
    assert_eq!(v["approval_pool"], 4, "{v}");
    assert_eq!(
        outside,
        4 + 2,
        "the approvals and one probe per key, no warm-up: {v}"
    );
    assert_eq!(
        signed_records(&c.audit_path()) - before,
        grpc + outside,
        "every signature of the run is in the audit log: {v}"
    );

    // One key with its context in flags, a warm-up, a fixed concurrency.
    let before = signed_records(&c.audit_path());
    let v = bench(
        &c,
        &[
            "--duration".into(),
            "1".into(),
            "--warmup".into(),
            "1".into(),
            "--concurrency".into(),
            "1".into(),
            "--key".into(),
            "chairman".into(),
            "--profile".into(),
            "approval".into(),
            "--acting-person".into(),
            p.chairman.clone(),
        ],
    )
    .await;
    assert_shape(&v);
    assert_eq!(v["concurrency"], 1, "{v}");
    let grpc = v["grpc"]["signatures"].as_u64().unwrap();
    let outside = v["grpc"]["signed_outside_measurement"].as_u64().unwrap();
    assert!(outside > 1, "the probe and the warm-up: {v}");
    assert_eq!(
        signed_records(&c.audit_path()) - before,
        grpc + outside,
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sign_stops_on_a_refused_probe_without_measuring() {
    let c = Cluster::start().await;
    // A person the registry does not know: the probe is refused, nothing is measured.
    let mut cmd = bench_command(
        &c,
        &[
            "--duration".into(),
            "1".into(),
            "--warmup".into(),
            "0".into(),
            "--key".into(),
            "seal:issue:per_00000000000000000000000000000000".into(),
        ],
    );
    let out = tokio::task::spawn_blocking(move || {
        kyso_tests::run(&mut cmd, None, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr_str().contains("probe"), "{out}");
}

// ------------------------------------------------------------------ the measurement

/// CPU seconds (user + system) by process name, over every process of the machine.
fn cpu_by_process() -> BTreeMap<String, f64> {
    let tick = 100.0; // USER_HZ on Linux
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the name: state is field 3, utime 14, stime 15 (1-based, name = 2).
        let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let t = u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0);
        *out.entry(name).or_default() += t / tick;
    }
    out
}

fn cpu_delta(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    b.iter()
        .map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d >= 0.05)
        .map(|(k, d)| (k, (d * 100.0).round() / 100.0))
        .collect()
}

fn scrape(c: &Cluster) -> String {
    let Some(addr) = c.metrics_addr() else {
        return String::new();
    };
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// `name{labels}` → value, for every sample line.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("kyso_signer_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Per histogram series over the window: count, mean, and the bucket bounds that hold the
/// median and the 99th percentile.
fn histograms(before: &str, after: &str) -> Vec<String> {
    let (a, b) = (samples(before), samples(after));
    let d = |k: &str| b.get(k).copied().unwrap_or(0.0) - a.get(k).copied().unwrap_or(0.0);
    let mut out = Vec::new();
    for k in b.keys().filter(|k| k.contains("_count")) {
        let n = d(k);
        if n <= 0.0 {
            continue;
        }
        let sum = d(&k.replace("_count", "_sum"));
        let (name, labels) = k.split_once("_count").unwrap();
        let labels = labels.trim_start_matches('{').trim_end_matches('}');
        let mut buckets: Vec<(f64, f64)> = b
            .keys()
            .filter(|bk| {
                bk.starts_with(&format!("{name}_bucket{{"))
                    && (labels.is_empty() || bk.contains(labels))
            })
            .filter_map(|bk| {
                let le = bk.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, d(bk)))
            })
            .collect();
        buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
        let q = |p: f64| {
            buckets
                .iter()
                .find(|(_, cum)| *cum >= p * n)
                .map(|(le, _)| le * 1000.0)
                .unwrap_or(f64::NAN)
        };
        out.push(format!(
            "{name}{{{labels}}}: n={n} mean={:.3} ms p50<={} ms p99<={} ms",
            sum / n * 1000.0,
            q(0.5),
            q(0.99)
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (minutes, release build): run with --ignored --nocapture"]
async fn bench_sign_release_measurement() {
    let c = Cluster::start().await;
    let p = c.province.clone();
    let secs = std::env::var("KYSO_BENCH_SIGN_SECS").unwrap_or_else(|_| "10".into());
    let runs = [
        ("RSA-2048 seal", format!("seal:issue:{}", p.clerk)),
        (
            "P-256 chairman",
            format!("chairman:approval:{}", p.chairman),
        ),
    ];
    for (what, key) in runs {
        let args: Vec<String> = vec![
            "--duration".into(),
            secs.clone(),
            "--warmup".into(),
            "2".into(),
            "--key".into(),
            key,
            "--approve-with".into(),
            format!("chairman:{}", p.chairman),
        ];
        measure(&c, what, &args).await;
    }
}

/// One measured `kyso bench sign` run: its JSON, the CPU seconds of every process in each
/// phase and the signer's `/metrics` histograms over the run, printed.
async fn measure(c: &Cluster, what: &str, args: &[String]) -> Value {
    let mut cmd = bench_command(c, args);
    println!(
        "== {what}: {} {}",
        workspace_bin("kyso").display(),
        args.join(" ")
    );
    let metrics_before = scrape(c);
    let (stdout, marks) = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).unwrap();
            s
        });
        // CPU by process at each phase boundary the bench announces on stderr.
        let mut marks = vec![("start".to_owned(), cpu_by_process())];
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            eprintln!("{line}");
            marks.push((line, cpu_by_process()));
        }
        assert!(child.wait().unwrap().success());
        (reader.join().unwrap(), marks)
    })
    .await
    .unwrap();
    let metrics_after = scrape(c);
    println!("{stdout}");
    let find = |m: &str| {
        marks
            .iter()
            .find(|(l, _)| l.contains(m))
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    println!(
        "CPU s by process, raw phase: {:?}",
        cpu_delta(&find("raw phase,"), &find("raw phase done"))
    );
    println!(
        "CPU s by process, gRPC phase: {:?}",
        cpu_delta(&find("grpc phase,"), &find("sign: done"))
    );
    println!("signer /metrics over the gRPC warm-up and phase (and the probe):");
    for h in histograms(&metrics_before, &metrics_after) {
        println!("  {h}");
    }
    serde_json::from_str(&stdout).unwrap()
}

/// N1: the measurement of docs/BENCHMARKS.md "B-T against a 50 ms TSA": P-256 and RSA-2048
/// signatures at B-B and at B-T through the same cluster, the test TSA (`openssl ts -reply`,
/// a pool of workers) answering every query 50 ms late. If the TSA's latency stacked (one
/// query at a time), B-T could not pass 20 signatures/s; with the shared client every request
/// waits for its own token only, so B-T's latency is B-B's plus ~50 ms and its throughput
/// follows the concurrency. Prints each run's JSON, CPU by process and the TSA's queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (minutes, release build): run with --ignored --nocapture"]
async fn bench_sign_b_t_against_a_50_ms_tsa_release_measurement_N1() {
    let tsa = kyso_tests::TestTsa::start();
    tsa.set_delay(Duration::from_millis(50));
    let c = Cluster::start_with(&format!(
        "\n[tsa]\nurl = {:?}\nbudget_ms = 1500\ntimeout_ms = 5000\ntsa_roots = {:?}\n",
        tsa.url(),
        tsa.root_pem()
    ))
    .await;
    let p = c.province.clone();
    let secs = std::env::var("KYSO_BENCH_SIGN_SECS").unwrap_or_else(|_| "10".into());
    let concurrency: Vec<String> = std::env::var("KYSO_BENCH_SIGN_CONCURRENCY")
        .unwrap_or_else(|_| "4,32".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let keys = [
        (
            "P-256 chairman",
            format!("chairman:approval:{}", p.chairman),
        ),
        ("RSA-2048 seal", format!("seal:issue:{}", p.clerk)),
    ];
    for (what, key) in keys {
        for n in &concurrency {
            for level in ["b-b", "b-t"] {
                let args: Vec<String> = vec![
                    "--duration".into(),
                    secs.clone(),
                    "--warmup".into(),
                    "2".into(),
                    "--concurrency".into(),
                    n.clone(),
                    "--level".into(),
                    level.into(),
                    "--key".into(),
                    key.clone(),
                    "--approve-with".into(),
                    format!("chairman:{}", p.chairman),
                ];
                let before = tsa.requests();
                let v = measure(&c, &format!("{what}, {level}, {n} callers"), &args).await;
                println!(
                    "TSA queries in the run: {}; grpc {} signatures/s, p50 {} ms, p99 {} ms, levels {}",
                    tsa.requests() - before,
                    v["grpc"]["ops_per_sec"],
                    v["grpc"]["p50_ms"],
                    v["grpc"]["p99_ms"],
                    v["grpc"]["levels_reached"]
                );
            }
        }
    }
}

/// N1: `kyso bench sign --level b-lt` asks every request for B-LT and counts the levels the
/// replies reached: with a TSA that answers in time, every measured signature is B_LT; with
/// `--level b-b`, every one is B_B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sign_level_counts_the_levels_reached_N1() {
    let tsa = kyso_tests::TestTsa::start();
    let c = Cluster::start_with(&format!(
        "\n[tsa]\nurl = {:?}\nbudget_ms = 10000\ntimeout_ms = 5000\ntsa_roots = {:?}\n",
        tsa.url(),
        tsa.root_pem()
    ))
    .await;
    let p = c.province.clone();
    for (level, name) in [("b-lt", "B_LT"), ("b-b", "B_B")] {
        let v = bench(
            &c,
            &[
                "--duration".into(),
                "1".into(),
                "--warmup".into(),
                "0".into(),
                "--concurrency".into(),
                "2".into(),
                "--level".into(),
                level.into(),
                "--key".into(),
                format!("chairman:approval:{}", p.chairman),
            ],
        )
        .await;
        let grpc = v["grpc"]["signatures"].as_u64().unwrap();
        assert!(grpc > 0, "{v}");
        assert_eq!(v["grpc"]["level_requested"], name, "{v}");
        assert_eq!(
            v["grpc"]["levels_reached"],
            serde_json::json!({ name: grpc }),
            "{v}"
        );
    }
}

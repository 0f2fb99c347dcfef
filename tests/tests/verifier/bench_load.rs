//! `kyso bench load` against a verifier in this process, over a small generated mixed corpus
//! (CMS and PDFs of 1–3 signatures, tampered and revoked-signer documents): every verdict as
//! the manifest expects, the timeline and the sweep present, the soak verdict with the cache
//! bounds from `/metrics`, the charts written as well-formed SVG; and a manifest that expects
//! a wrong verdict makes the bench count errors. Shape, not speed: the measurement is the
//! ignored `bench_load_full_run` (docs/BENCHMARKS.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kyso_tests::hsm::workspace_bin;
use kyso_tests::load_corpus::{self, CorpusOptions};
use kyso_tests::shared_servers;
use serde_json::Value;
use tokio::net::TcpListener;

/// A verifier on 127.0.0.1:0 with its metrics port: the test PKI, CRLs only (served by the
/// shared loopback server), its caches on. Returns the gRPC and metrics URLs.
async fn start_verifier() -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let maddr = metrics.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut config = kyso_tests::verifier_config(shared_servers());
    config.trust.revocation.order = "crl-only".into();
    tokio::spawn(kyso_verifier::serve(
        config,
        kyso_verifier::Listeners {
            grpc,
            metrics: Some(metrics),
        },
        kyso_verifier::system_clock(),
        async move {
            let _ = rx.await;
        },
    ));
    (
        format!("http://{addr}"),
        format!("http://{maddr}/metrics"),
        tx,
    )
}

async fn bench(args: Vec<String>, timeout: Duration) -> (bool, Value) {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(["bench", "load"])
        .args(args)
        .env_remove("KYSO_SERVER");
    let out = tokio::task::spawn_blocking(move || kyso_tests::run(&mut cmd, None, timeout))
        .await
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON from kyso bench load ({e}): {out}"));
    (out.success(), v)
}

fn small_corpus(dir: &Path) -> Value {
    load_corpus::generate(
        dir,
        &CorpusOptions {
            documents: 14,
            cms_share: 0.4,
            tampered_share: 0.2,
            revoked_share: 0.2,
            min_pdf_bytes: 100 << 10,
            max_pdf_bytes: 400 << 10,
            seed: 5,
        },
    )
}

fn assert_svg(path: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{path} is not well-formed XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{path}");
    assert!(
        doc.descendants().any(|n| n.tag_name().name() == "polyline"),
        "{path} draws no line"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_load_checks_every_verdict_of_a_mixed_corpus_and_writes_its_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let manifest = small_corpus(&corpus);
    let docs = manifest["documents"].as_array().unwrap();
    for class in ["valid", "tampered", "revoked"] {
        assert!(
            docs.iter().any(|d| d["class"] == class),
            "the corpus has no {class} document: {manifest}"
        );
    }
    for kind in ["cms", "pdf"] {
        assert!(docs.iter().any(|d| d["kind"] == kind), "{manifest}");
    }
    assert!(
        docs.iter()
            .any(|d| d["signatures"].as_array().unwrap().len() > 1),
        "no PDF with several signatures: {manifest}"
    );

    let (url, metrics, _stop) = start_verifier().await;
    let svg = tmp.path().join("svg");
    let args: Vec<String> = [
        "--server",
        &url,
        "--corpus",
        corpus.to_str().unwrap(),
        "--rates",
        "3,6",
        "--sweep-secs",
        "2",
        "--soak",
        "--duration-secs",
        "3",
        "--warmup-secs",
        "1",
        "--verifier-pid",
        &std::process::id().to_string(),
        "--metrics-url",
        &metrics,
        "--svg-dir",
        svg.to_str().unwrap(),
        "--svg-prefix",
        "t",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (_, v) = bench(args, Duration::from_secs(300)).await;

    assert_eq!(v["bench"], "load", "{v}");
    assert_eq!(v["errors_total"], 0, "every verdict as expected: {v:#}");
    let phases = v["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "{v}");
    for p in phases.iter().chain(std::iter::once(&v["soak"])) {
        assert!(p["sent"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["errors"], 0, "{p:#}");
        assert!(p["ok"].as_u64().unwrap() > 0, "{p}");
        let t = p["timeline"].as_array().unwrap();
        assert_eq!(t.len() as f64, p["duration_s"].as_f64().unwrap(), "{p}");
        assert!(
            t.iter().any(|s| s["completed_ok"].as_u64().unwrap() > 0),
            "{p}"
        );
        assert!(
            t.iter()
                .all(|s| s["verifier_rss_mib"].as_f64().is_some_and(|r| r > 0.0)),
            "{t:?}"
        );
        assert!(
            p["latency_ms"]["p99"].as_f64().unwrap() >= p["latency_ms"]["p50"].as_f64().unwrap()
        );
        assert!(
            p["cpu_ms_per_op"]["verifier"].as_f64().unwrap() > 0.0,
            "{p}"
        );
    }
    // Every class of document was sent and judged as expected under load.
    let by_class = &phases[1]["by_class"];
    let sent: u64 = ["valid", "tampered", "revoked"]
        .iter()
        .map(|c| by_class[c]["sent"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sent, phases[1]["measured"].as_u64().unwrap(), "{by_class}");
    // The soak verdict: the caches' sizes against the bounds the verifier exposes.
    let soak = &v["soak_verdict"];
    assert_eq!(soak["caches_ok"], true, "{soak}");
    assert!(
        soak["caches"]["ocsp/entries"]["bound"].as_f64().unwrap() > 0.0,
        "{soak}"
    );
    assert!(
        soak["caches"]["crl/bytes"]["max_seen"].as_f64().unwrap() > 0.0,
        "the CRLs fetched are counted: {soak}"
    );
    assert!(soak["rss_growth_after_warmup"].is_number(), "{soak}");
    assert!(soak["pass"].is_boolean(), "{soak}");

    let charts = v["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 8, "{v}");
    for c in charts {
        assert_svg(c.as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_load_counts_a_wrong_verdict_as_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let mut manifest = small_corpus(&corpus);
    // Expect every tampered document to pass: the verifier's (right) answer is then wrong.
    let mut flipped = 0;
    for d in manifest["documents"].as_array_mut().unwrap() {
        if d["class"] == "tampered" {
            d["indication"] = "TOTAL_PASSED".into();
            flipped += 1;
        }
    }
    assert!(flipped > 0);
    std::fs::write(
        corpus.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let (url, _, _stop) = start_verifier().await;
    let args: Vec<String> = [
        "--server",
        &url,
        "--corpus",
        corpus.to_str().unwrap(),
        "--rate",
        "14",
        "--duration-secs",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (_, v) = bench(args, Duration::from_secs(120)).await;
    let p = &v["phases"][0];
    assert!(
        p["error_kinds"]["wrong_verdict"].as_u64().unwrap() > 0,
        "{p:#}"
    );
    assert_eq!(p["errors"], p["by_class"]["tampered"]["errors"], "{p:#}");
    assert!(v["errors_total"].as_u64().unwrap() > 0);
}

/// The measurement recorded in docs/BENCHMARKS.md ("Mixed load"): the default corpus, a rate
/// sweep, then the soak at 70 % of the peak; charts into docs/. Run in release on an idle
/// machine (KYSO_LOAD_RATES, KYSO_LOAD_SECS, KYSO_LOAD_SOAK_SECS override the defaults).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the measurement: minutes, release build, idle machine"]
async fn bench_load_full_run() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    load_corpus::generate(&corpus, &CorpusOptions::default());
    let (url, metrics, _stop) = start_verifier().await;
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let args: Vec<String> = [
        "--server",
        &url,
        "--corpus",
        corpus.to_str().unwrap(),
        "--rates",
        &env("KYSO_LOAD_RATES", "2,5,10,20,40,80"),
        "--sweep-secs",
        &env("KYSO_LOAD_SECS", "30"),
        "--soak",
        "--duration-secs",
        &env("KYSO_LOAD_SOAK_SECS", "600"),
        "--warmup-secs",
        "5",
        "--verifier-pid",
        &std::process::id().to_string(),
        "--metrics-url",
        &metrics,
        "--svg-dir",
        docs.to_str().unwrap(),
        "--svg-prefix",
        "bench-load",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, v) = bench(args, Duration::from_secs(7200)).await;
    println!("{v:#}");
    assert!(ok, "the soak criteria: {:#}", v["soak_verdict"]);
}

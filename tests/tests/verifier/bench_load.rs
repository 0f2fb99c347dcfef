//! `kyso bench load` against a verifier in this process, over a small generated mixed corpus
//! (CMS and PDFs of 1–3 signatures, tampered and revoked-signer documents): every verdict as
//! the manifest expects, the timeline and the sweep present, the soak verdict with the cache
//! bounds from `/metrics`, the charts written as well-formed SVG; and a manifest that expects
//! a wrong verdict makes the bench count errors. Shape, not speed: the measurement is the
//! ignored `bench_load_full_run` (docs/BENCHMARKS.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kyso_tests::HttpServer;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::load_corpus::{self, CorpusOptions};
use serde_json::Value;
use tokio::net::TcpListener;

/// A verifier on 127.0.0.1:0 with its metrics port, configured from the corpus's own
/// `verifier.toml` (as `kyso-verifier --config DIR/verifier.toml` would be): the corpus PKI, CRLs
/// only, served by a loopback server over `DIR/pki/crl`; its caches on. Returns the gRPC and
/// metrics URLs, the stop signal and the CRL server (stops on drop).
async fn start_verifier(
    corpus: &Path,
) -> (String, String, tokio::sync::oneshot::Sender<()>, HttpServer) {
    let crl = HttpServer::start(corpus.join("pki/crl"));
    let toml = load_corpus::write_verifier_config(corpus, &crl.url(), "127.0.0.1:0", "127.0.0.1:0");
    let config = kyso_verifier::Config::from_file(&toml).unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let maddr = metrics.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
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
        crl,
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
            revoked_share: 0.3,
            min_pdf_bytes: 100 << 10,
            max_pdf_bytes: 400 << 10,
            // Three per CA: the first of each revoked.
            signers: 12,
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

    // Revoked signers under different CAs.
    let revoked_cas: std::collections::HashSet<&str> = docs
        .iter()
        .filter(|d| d["class"] == "revoked")
        .map(|d| {
            d["cas"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(revoked_cas.len() >= 2, "{manifest}");

    let (url, metrics, _stop, _crl) = start_verifier(&corpus).await;
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
    assert!(
        v["corpus"]["distinct_signers"].as_u64().unwrap() >= 8,
        "{v}"
    );
    assert!(v["corpus"]["distinct_cas"].as_u64().unwrap() >= 3, "{v}");
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
    let (url, _, _stop, _crl) = start_verifier(&corpus).await;
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
    let (url, metrics, _stop, _crl) = start_verifier(&corpus).await;
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

/// Many signers and several CAs (the caches are not trivially warm): a CMS-only corpus of 40
/// documents over a PKI of 48 signers meets 40 distinct signers under all four issuing CAs and
/// both roots, RSA and EC, and its manifest says so.
#[test]
fn load_corpus_spreads_its_documents_over_many_signers_and_cas() {
    let tmp = tempfile::tempdir().unwrap();
    let m = load_corpus::generate(
        tmp.path(),
        &CorpusOptions {
            documents: 40,
            cms_share: 1.0,
            tampered_share: 0.0,
            revoked_share: 0.0,
            signers: 48,
            ..CorpusOptions::default()
        },
    );
    let docs = m["documents"].as_array().unwrap();
    let field = |k: &str| -> std::collections::HashSet<String> {
        docs.iter()
            .flat_map(|d| d[k].as_array().unwrap().iter())
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(field("signers").len() >= 40, "{m}");
    assert!(field("cas").len() >= 3, "{m}");
    assert_eq!(m["pki"]["signers"], 48, "{m}");
    assert_eq!(m["pki"]["cas"].as_array().unwrap().len(), 4, "{m}");
    assert_eq!(m["pki"]["roots"].as_array().unwrap().len(), 2, "{m}");
    // One in eight revoked (the first of each CA), one in five RSA.
    assert_eq!(m["pki"]["revoked_signers"], 8, "{m}");
    assert!(m["pki"]["rsa_signers"].as_u64().unwrap() >= 8, "{m}");
    // Every certificate chains to a root of the corpus, and the CRLs list the revoked.
    let pki = tmp.path().join("pki");
    let crls = std::fs::read_dir(pki.join("crl")).unwrap().count();
    assert_eq!(crls, 6, "a CRL per CA and per root");
}

/// A corpus that outlives the process, for `kyso bench load` against a separately started
/// verifier (docs/BENCHMARKS.md, `scripts/gen-load-corpus.sh`): KYSO_LOAD_CORPUS_DIR (absent
/// or empty), KYSO_LOAD_DOCUMENTS, KYSO_LOAD_SIGNERS, KYSO_LOAD_CRL_PORT (where
/// `python3 -m http.server` will serve DIR/pki/crl), KYSO_LOAD_VERIFIER_PORT.
#[test]
#[ignore = "writes a corpus into KYSO_LOAD_CORPUS_DIR"]
fn generate_load_corpus() {
    let dir = std::env::var("KYSO_LOAD_CORPUS_DIR").expect("KYSO_LOAD_CORPUS_DIR");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .map(|v| v.parse::<usize>().unwrap_or_else(|e| panic!("{k}: {e}")))
            .unwrap_or(d)
    };
    let defaults = CorpusOptions::default();
    let opts = CorpusOptions {
        documents: env("KYSO_LOAD_DOCUMENTS", defaults.documents),
        signers: env("KYSO_LOAD_SIGNERS", defaults.signers),
        ..defaults
    };
    let dir = Path::new(&dir);
    let m = load_corpus::generate(dir, &opts);
    let crl_port = env("KYSO_LOAD_CRL_PORT", 18480);
    let port = env("KYSO_LOAD_VERIFIER_PORT", 50161);
    let toml = load_corpus::write_verifier_config(
        dir,
        &format!("http://127.0.0.1:{crl_port}/"),
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{}", port + 1),
    );
    // The configuration is one the verifier accepts.
    kyso_verifier::Config::from_file(&toml)
        .unwrap()
        .load()
        .unwrap();
    println!(
        "corpus: {} documents, {} signers under {} CAs; verifier configuration: {}",
        m["documents"].as_array().unwrap().len(),
        m["pki"]["signers"],
        m["pki"]["cas"].as_array().unwrap().len(),
        toml.display()
    );
}

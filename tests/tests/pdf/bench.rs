//! `kyso bench verify-pdf` against a verifier in this process: the ~1 MiB sample signed twice by
//! pyHanko (personal then organisation, incrementally), the service phase, the physical limit
//! and the pyHanko baseline all run and the JSON has its shape. Shape, not speed: nothing here
//! is timed (tiny durations; the measurement is `scripts/bench-verify-pdf.sh`, see
//! docs/BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use kyso_tests::hsm::workspace_bin;
use kyso_tests::pdf_peers::{Peers, PyhankoSign, SampleKind, peers_dir};
use kyso_tests::{TestPki, shared_servers};
use serde_json::Value;
use tokio::net::TcpListener;

/// The large sample signed by `personal-rsa` (Sig1, visible in the signature block) then by
/// `org-rsa` (Sig2) as an incremental update, written once per test process.
fn signed_pdf() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let pki = TestPki::get();
        let peers = Peers::get();
        let sample = peers.sample(SampleKind::Large);
        let one = peers.pyhanko_sign(
            &sample.bytes,
            &PyhankoSign::leaf(pki, "personal-rsa", "Sig1")
                .visible(sample.signature_block.signature_box),
        );
        let two = peers.pyhanko_sign(&one, &PyhankoSign::leaf(pki, "org-rsa", "Sig2"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two-signatures.pdf");
        std::fs::write(&path, two).unwrap();
        (dir, path)
    });
    path
}

/// A verifier on 127.0.0.1:0 configured as the script's: the test PKI, CRLs only (the same
/// files pyHanko is given, served by the shared loopback server), its caches on.
async fn start_verifier() -> (String, tokio::sync::oneshot::Sender<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut config = kyso_tests::verifier_config(shared_servers());
    config.trust.revocation.order = "crl-only".into();
    tokio::spawn(kyso_verifier::serve(
        config,
        kyso_verifier::Listeners {
            grpc,
            metrics: None,
        },
        kyso_verifier::system_clock(),
        async move {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), tx)
}

async fn bench(args: Vec<String>) -> Value {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(["bench", "verify-pdf"])
        .args(args)
        .env_remove("KYSO_SERVER");
    let out = tokio::task::spawn_blocking(move || {
        kyso_tests::run(&mut cmd, None, Duration::from_secs(300))
    })
    .await
    .unwrap()
    .expect_success();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON from kyso bench verify-pdf ({e}): {out}"))
}

fn base_args(url: &str) -> Vec<String> {
    [
        "--server",
        url,
        "--streams",
        "2",
        "--duration-secs",
        "1",
        "--warmup-secs",
        "0",
        "--floor-secs",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--pdf".to_owned(), signed_pdf().display().to_string()])
    .collect()
}

fn assert_service_and_floor(v: &Value) {
    assert_eq!(v["bench"], "verify-pdf", "{v}");
    assert_eq!(v["signatures_per_document"], 2, "{v}");
    assert!(v["document_bytes"].as_u64().unwrap() > 1_000_000, "{v}");
    // Each signature's ranges cover (nearly) the file as it was when it was signed.
    assert!(
        v["signed_bytes_per_document"].as_u64().unwrap() > 2_000_000,
        "{v}"
    );
    assert!(v["verifications"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["not_passed"], 0, "{v}");
    assert!(v["verifications_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    let lat = &v["latency_ms"];
    assert!(lat["p50"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        lat["p99"].as_f64().unwrap() >= lat["p50"].as_f64().unwrap(),
        "{v}"
    );
    // The verifier judged revocation from the CRLs, from its cache after the probe.
    let measured = &v["kyso_revocation"]["measured"];
    assert!(measured["answers"].as_u64().unwrap() > 0, "{v}");
    assert!(measured["by_source"]["CRL"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(measured["from_cache_share"], 1.0, "{v}");
    let floor = &v["physical_limit"];
    assert!(
        floor["verifications_per_sec"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(floor["threads"].as_u64().unwrap() >= 1, "{v}");
    // The floor hashes each byte once: the two signed sequences share their prefix.
    let hashed = floor["hashed_bytes_per_document"].as_u64().unwrap();
    assert!(hashed > 1_000_000, "{v}");
    assert!(
        hashed < v["signed_bytes_per_document"].as_u64().unwrap(),
        "{v}"
    );
    assert_eq!(
        floor["signature_algorithms"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    assert!(v["ratio_to_physical_limit"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["target_speedup"], 100.0, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_verify_pdf_runs_the_service_the_floor_and_pyhanko() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let (url, _stop) = start_verifier().await;
    let mut args = base_args(&url);
    for (flag, value) in [
        ("--baseline-python", peers.python().to_path_buf()),
        ("--baseline-tool", peers_dir().join("pyhanko_tool.py")),
        ("--root", pki.root_pem()),
        ("--intermediates", pki.intermediates_pem()),
        ("--crl", pki.crls_pem()),
    ] {
        args.push(flag.to_owned());
        args.push(value.display().to_string());
    }
    args.extend(["--baseline-runs", "1", "--baseline-processes", "2"].map(String::from));
    let v = bench(args).await;
    assert_service_and_floor(&v);

    let py = &v["pyhanko"];
    assert!(py["version"].is_string(), "{v}");
    let sigs = py["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{v}");
    assert!(sigs.iter().all(|s| s["bottom_line"] == true), "{v}");
    assert!(
        py["one_process"]["seconds_per_validation"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{v}"
    );
    assert_eq!(py["all_cores"]["processes"], 2, "{v}");
    assert_eq!(
        py["all_cores"]["seconds_per_validation"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{v}"
    );
    assert!(
        py["all_cores"]["validations_per_sec"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v["speedup_vs_pyhanko"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["speedup_vs_one_pyhanko_process"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v["target_met"].is_boolean(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_verify_pdf_without_a_baseline_has_no_speedup() {
    let (url, _stop) = start_verifier().await;
    let v = bench(base_args(&url)).await;
    assert_service_and_floor(&v);
    assert!(v["pyhanko"].is_null(), "{v}");
    assert!(v["speedup_vs_pyhanko"].is_null(), "{v}");
    assert!(v["target_met"].is_null(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_verify_pdf_refuses_a_pdf_without_signatures() {
    let (url, _stop) = start_verifier().await;
    let sample = Peers::get().sample(SampleKind::Decision);
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(["bench", "verify-pdf", "--server", &url, "--pdf"])
        .arg(&sample.path)
        .env_remove("KYSO_SERVER");
    let out = tokio::task::spawn_blocking(move || {
        kyso_tests::run(&mut cmd, None, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(!out.success(), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr_str().contains("no signature"), "{out}");
}

/// The ~1 MiB two-signature sample as the attachment of an edXML envelope sealed by
/// `org-rsa` (kyso's two-phase XML signing, the test PKI's key standing in for the HSM).
fn signed_envelope() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        use base64ct::Encoding;
        use kyso_edxml::dsig::{self, alg::SignatureMethod};
        use kyso_pki::cert::Cert;
        use kyso_pki::crypto::DigestAlgorithm;
        let pki = TestPki::get();
        let pdf = std::fs::read(signed_pdf()).unwrap();
        let q = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
        let unsigned = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{q}" xmlns:edXML="{q}"><edXML:edXMLEnvelope><edXML:edXMLHeader><edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.15.H34</edXML:OrganId></edXML:From><edXML:To><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:To><edXML:DocumentId>000.00.15.H34,2026/12/01,1234/QĐ-UBND</edXML:DocumentId><edXML:Code><edXML:CodeNumber>1234</edXML:CodeNumber><edXML:CodeNotation>QĐ-UBND</edXML:CodeNotation></edXML:Code><edXML:PromulgationInfo><edXML:Place>Khánh Hòa</edXML:Place><edXML:PromulgationDate>2026/12/01</edXML:PromulgationDate></edXML:PromulgationInfo><edXML:DocumentType><edXML:Type>1</edXML:Type></edXML:DocumentType><edXML:Subject>Kế hoạch năm 2027</edXML:Subject></edXML:MessageHeader></edXML:edXMLHeader><edXML:edXMLBody><edXML:edXMLManifest version="1.0"><edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId><edXML:ContentType>application/pdf</edXML:ContentType><edXML:AttachmentName>1234.pdf</edXML:AttachmentName></edXML:Reference></edXML:edXMLManifest></edXML:edXMLBody></edXML:edXMLEnvelope><AttachmentEncoded><Attachment><ContentId>cid:1</ContentId><AttachmentName>1234.pdf</AttachmentName><ContentType>application/pdf</ContentType><edXML:ContentTransferEncoded>{}</edXML:ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>
"#,
            base64ct::Base64::encode_string(&pdf)
        );
        let at = unsigned.find("</edXML:edXMLHeader>").unwrap();
        let chain = [
            Cert::from_der(&pki.leaf_der("org-rsa")).unwrap(),
            Cert::from_der(&pki.cert_der(pki.leaf_issuer("org-rsa"))).unwrap(),
        ];
        let method = SignatureMethod::RsaPkcs1(DigestAlgorithm::Sha256);
        let prepared = dsig::prepare(&unsigned, at, &chain, method).unwrap();
        let value = pki.sign_digest("org-rsa", "sha256", false, prepared.signed_info_digest());
        let signed = prepared.finish(&value).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("envelope.edxml");
        std::fs::write(&path, signed).unwrap();
        (dir, path)
    });
    path
}

/// `kyso bench verify-edxml`: the service phase, the floor and xmlsec1 on the same envelope
/// run, and the JSON has its shape (N6). Shape, not speed: the phases last
/// `KYSO_BENCH_EDXML_SECS` (1 s); the measurement of docs/BENCHMARKS.md is this test in a
/// release build with longer phases and `--nocapture` (it prints the JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_verify_edxml_runs_the_service_the_floor_and_xmlsec1_N6() {
    let pki = TestPki::get();
    let (url, _stop) = start_verifier().await;
    let envelope = signed_envelope().display().to_string();
    let pid = std::process::id().to_string();
    let root = pki.root_pem().display().to_string();
    let issuing = pki.issuing_ca_pem().display().to_string();
    let secs = std::env::var("KYSO_BENCH_EDXML_SECS").unwrap_or_else(|_| "1".into());
    let args = [
        "bench",
        "verify-edxml",
        "--server",
        &url,
        "--envelope",
        &envelope,
        "--streams",
        "2",
        "--duration-secs",
        &secs,
        "--warmup-secs",
        "1",
        "--floor-secs",
        &secs,
        "--server-pid",
        &pid,
        "--xmlsec1-trusted",
        &root,
        "--xmlsec1-untrusted",
        &issuing,
    ];
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(args).env_remove("KYSO_SERVER");
    let out = tokio::task::spawn_blocking(move || {
        kyso_tests::run(&mut cmd, None, Duration::from_secs(300))
    })
    .await
    .unwrap()
    .expect_success();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON from kyso bench verify-edxml ({e}): {out}"));
    println!("{v:#}");
    assert_eq!(v["bench"], "verify-edxml", "{v}");
    assert!(v["envelope_bytes"].as_u64().unwrap() > 1_000_000, "{v}");
    assert_eq!(v["attachments"], 1, "{v}");
    assert_eq!(v["attachment_signatures"], 2, "{v}");
    assert!(v["verifications"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["not_passed"], 0, "{v}");
    assert!(
        v["server_cpu_ms_per_verification"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    let floor = &v["physical_limit"];
    assert!(
        floor["verifications_per_sec"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(
        floor["cpu_ms_per_verification"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v["ratio_to_physical_limit"].as_f64().unwrap() > 0.0, "{v}");
    let x = &v["xmlsec1"];
    assert!(x["verifications"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(x["failed"], 0, "{v}");
    assert!(v["speedup_vs_xmlsec1"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["load_average"].is_number(), "{v}");
}

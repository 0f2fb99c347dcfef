//! The real `kyso` binary: `kyso verify --json`, in-process (`--trust-anchors`,
//! `--intermediates`, `--url-rewrite`) and through `--server` against a verifier started in this
//! process. Checks the JSON verdicts (`signatures[*].indication/sub_indication`) and the exit
//! codes: 0 all passed, 1 a verdict is not TOTAL_PASSED, 2 an input or usage error (V5: an
//! invalid or altered document is refused and the sender told why).
//!
//! The binary is `target/debug/kyso` (next to this test's `deps/` directory); the test script
//! builds it before the tests (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use kyso_tests::hsm::workspace_bin;
use kyso_tests::{CmsSign, Output, PkiServers, TestPki, openssl_cms_sign};
use kyso_validation::config::{RevocationSection, TrustConfig, UrlRewrite};
use kyso_verifier::Config;
use serde_json::Value;

const CONTENT: &[u8] = b"Cong van so 45/UBND-VP (kyso cli test)\n";
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

pub(crate) fn servers() -> &'static PkiServers {
    static SERVERS: OnceLock<PkiServers> = OnceLock::new();
    SERVERS.get_or_init(|| PkiServers::start(TestPki::get()))
}

/// The signatures the tests verify, written once into a directory of this process.
pub(crate) struct Artifacts {
    _dir: tempfile::TempDir,
    pub(crate) pass: PathBuf,
    pub(crate) revoked: PathBuf,
    pub(crate) tampered: PathBuf,
    pub(crate) rogue: PathBuf,
    pub(crate) detached: PathBuf,
    pub(crate) content: PathBuf,
    pub(crate) not_cms: PathBuf,
    pub(crate) missing: PathBuf,
}

pub(crate) fn artifacts() -> &'static Artifacts {
    static A: OnceLock<Artifacts> = OnceLock::new();
    A.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("write an artifact");
            p
        };
        let pass = write(
            "pass.p7s",
            &openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT)),
        );
        let revoked = write(
            "revoked.p7s",
            &openssl_cms_sign(&CmsSign::new("revoked", CONTENT)),
        );
        let mut tampered = openssl_cms_sign(&CmsSign::new("org-rsa", CONTENT));
        let at = tampered
            .windows(6)
            .position(|w| w == b"45/UBN")
            .expect("the content is in the signature");
        tampered[at] = b'9';
        let tampered = write("tampered.p7s", &tampered);
        let rogue = write(
            "rogue.p7s",
            &openssl_cms_sign(&CmsSign::new("rogue", CONTENT)),
        );
        let detached = write(
            "detached.p7s",
            &openssl_cms_sign(&CmsSign::new("personal-ec256", CONTENT).detached()),
        );
        let content = write("document.txt", CONTENT);
        let not_cms = write("not-cms.p7s", b"Xin chao: this is not a CMS signature\n");
        let missing = dir.path().join("no-such-file.p7s");
        Artifacts {
            _dir: dir,
            pass,
            revoked,
            tampered,
            rogue,
            detached,
            content,
            not_cms,
            missing,
        }
    })
}

/// `kyso verify --json ARGS...`, with no server settings from the environment.
pub(crate) fn kyso_verify(args: &[&std::ffi::OsStr]) -> (Output, Option<Value>) {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.arg("verify").arg("--json").args(args);
    for var in [
        "KYSO_SERVER",
        "KYSO_TLS_CA",
        "KYSO_TLS_CERT",
        "KYSO_TLS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("KYSO_LOG", "warn");
    // No anchors directory from the machine: the default trust is the pinned roots alone.
    cmd.env(
        "XDG_DATA_HOME",
        std::env::temp_dir().join("kyso-no-such-data-home"),
    );
    let out = kyso_tests::run(&mut cmd, None, CLI_TIMEOUT);
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

/// The in-process flags: anchors, intermediates and the three URL rewrites.
pub(crate) fn local_flags() -> Vec<std::ffi::OsString> {
    let pki = TestPki::get();
    let mut v: Vec<std::ffi::OsString> = vec![
        "--trust-anchors".into(),
        pki.root_pem().into(),
        "--trust-anchors".into(),
        pki.legacy_root_pem().into(),
        "--intermediates".into(),
        pki.intermediates_pem().into(),
    ];
    let rewrites = servers().rewrites();
    assert_eq!(rewrites.len(), 3);
    for (from, to) in rewrites {
        v.push("--url-rewrite".into());
        v.push(format!("{from}={to}").into());
    }
    v
}

pub(crate) fn local(files: &[&Path]) -> (Output, Option<Value>) {
    let mut args = local_flags();
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    kyso_verify(&refs)
}

pub(crate) fn remote(
    server: &str,
    extra: &[&std::ffi::OsStr],
    files: &[&Path],
) -> (Output, Option<Value>) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--server".as_ref(), server.as_ref()];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(|f| f.as_os_str()));
    kyso_verify(&args)
}

#[track_caller]
pub(crate) fn exit_code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("kyso was killed: {out}"))
}

/// The (indication, sub_indication) of every signature in the JSON, with its file.
#[track_caller]
pub(crate) fn verdicts(json: &Value, out: &Output) -> Vec<(String, String, Option<String>)> {
    let sigs = json["signatures"]
        .as_array()
        .unwrap_or_else(|| panic!("no signatures array in the JSON: {out}"));
    sigs.iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap_or_default().to_owned(),
                s["indication"].as_str().unwrap_or_default().to_owned(),
                s["sub_indication"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Runs one file and checks the exit code and the single verdict.
#[track_caller]
pub(crate) fn expect_one(
    (out, json): (Output, Option<Value>),
    file: &Path,
    code: i32,
    indication: &str,
    sub: Option<&str>,
) -> Value {
    assert_eq!(exit_code(&out), code, "exit code: {out}");
    let json = json.unwrap_or_else(|| panic!("stdout is not JSON: {out}"));
    let v = verdicts(&json, &out);
    assert_eq!(v.len(), 1, "one signature expected: {json:#}");
    assert_eq!(v[0].0, file.display().to_string(), "{json:#}");
    assert_eq!(
        (v[0].1.as_str(), v[0].2.as_deref()),
        (indication, sub),
        "{json:#}"
    );
    assert_eq!(json["indication"], indication, "{json:#}");
    json
}

// ---------------------------------------------------------------------------------------------
// A verifier server in this process
// ---------------------------------------------------------------------------------------------

/// `kyso_verifier::serve` on 127.0.0.1:0 in a runtime on a background thread; stopped on drop.
pub(crate) struct Server {
    pub(crate) url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    result: std::sync::Arc<Mutex<Option<String>>>,
}

impl Server {
    pub(crate) fn start(config: Config) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let result = std::sync::Arc::new(Mutex::new(None));
        let record = std::sync::Arc::clone(&result);
        let thread = std::thread::Builder::new()
            .name("kyso-verifier-under-test".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                let r = rt.block_on(async move {
                    let grpc = tokio::net::TcpListener::from_std(listener).expect("listener");
                    kyso_verifier::serve(
                        config,
                        kyso_verifier::Listeners {
                            grpc,
                            metrics: None,
                        },
                        kyso_verifier::system_clock(),
                        async move {
                            let _ = stopped.await;
                        },
                    )
                    .await
                });
                *record.lock().expect("lock") = Some(match r {
                    Ok(()) => "stopped".to_owned(),
                    Err(e) => format!("failed: {e}"),
                });
            })
            .expect("spawn the server thread");
        Server {
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
            result,
        }
    }

    /// Panics if the server has already returned (a configuration error, a crash).
    #[track_caller]
    pub(crate) fn assert_running(&self) {
        let finished = self.thread.as_ref().is_none_or(JoinHandle::is_finished);
        assert!(
            !finished,
            "the verifier server is not running: {:?}",
            self.result.lock().expect("lock")
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn server_config() -> Config {
    let pki = TestPki::get();
    Config {
        metrics_listen: None,
        trust: TrustConfig {
            trust_anchors: vec![pki.root_pem(), pki.legacy_root_pem()],
            intermediates: vec![pki.intermediates_pem()],
            fetch_aia: true,
            revocation: RevocationSection {
                url_rewrites: servers()
                    .rewrites()
                    .into_iter()
                    .map(|(from, to)| UrlRewrite { from, to })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// In-process verification
// ---------------------------------------------------------------------------------------------

#[test]
fn in_process_passing_signature_exits_0_V2_N3() {
    let a = artifacts();
    let json = expect_one(local(&[&a.pass]), &a.pass, 0, "TOTAL_PASSED", None);
    let s = &json["signatures"][0];
    assert_eq!(s["signer"]["title"], "Chủ tịch", "{json:#}");
    assert_eq!(s["signer"]["kind"], "PERSONAL", "{json:#}");
    assert_eq!(s["path"].as_array().map(Vec::len), Some(3), "{json:#}");
    assert_eq!(json["documents"][0]["indication"], "TOTAL_PASSED");
}

#[test]
fn in_process_revoked_signature_exits_1_N2() {
    let a = artifacts();
    let json = expect_one(
        local(&[&a.revoked]),
        &a.revoked,
        1,
        "TOTAL_FAILED",
        Some("REVOKED"),
    );
    let msg = json["signatures"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("revoked"), "the clerk is told why (V5): {msg}");
}

#[test]
fn in_process_tampered_signature_exits_1_N3_V5() {
    let a = artifacts();
    expect_one(
        local(&[&a.tampered]),
        &a.tampered,
        1,
        "TOTAL_FAILED",
        Some("HASH_FAILURE"),
    );
}

#[test]
fn in_process_rogue_signature_exits_1_V2() {
    let a = artifacts();
    expect_one(
        local(&[&a.rogue]),
        &a.rogue,
        1,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );
}

#[test]
fn in_process_detached_signature_with_content() {
    let a = artifacts();
    let mut args = local_flags();
    args.push("--content".into());
    args.push(a.content.clone().into());
    args.push(a.detached.clone().into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    expect_one(kyso_verify(&refs), &a.detached, 0, "TOTAL_PASSED", None);
    // Without the content: the signed data is not found.
    expect_one(
        local(&[&a.detached]),
        &a.detached,
        1,
        "INDETERMINATE",
        Some("SIGNED_DATA_NOT_FOUND"),
    );
}

#[test]
fn in_process_caller_time_before_revocation_passes_N2_W5() {
    let a = artifacts();
    let pki = TestPki::get();
    let at = time::OffsetDateTime::from(pki.revoked_at - Duration::from_secs(3600));
    let at = kyso_pki::time::rfc3339(at);
    let mut args = local_flags();
    args.push("--at".into());
    args.push(at.clone().into());
    args.push(a.revoked.clone().into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let json = expect_one(kyso_verify(&refs), &a.revoked, 0, "TOTAL_PASSED", None);
    assert_eq!(
        json["signatures"][0]["reference_time"]["source"], "CALLER",
        "{json:#}"
    );
}

#[test]
fn in_process_several_files_at_once() {
    let a = artifacts();
    let files = [&a.pass, &a.revoked, &a.tampered, &a.rogue];
    let (out, json) = local(&files.map(PathBuf::as_path));
    assert_eq!(exit_code(&out), 1, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    let mut got = verdicts(&json, &out);
    got.sort();
    let mut want = vec![
        (
            a.pass.display().to_string(),
            "TOTAL_PASSED".to_owned(),
            None,
        ),
        (
            a.revoked.display().to_string(),
            "TOTAL_FAILED".to_owned(),
            Some("REVOKED".to_owned()),
        ),
        (
            a.tampered.display().to_string(),
            "TOTAL_FAILED".to_owned(),
            Some("HASH_FAILURE".to_owned()),
        ),
        (
            a.rogue.display().to_string(),
            "INDETERMINATE".to_owned(),
            Some("NO_CERTIFICATE_CHAIN_FOUND".to_owned()),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{json:#}");
    assert_eq!(json["documents"].as_array().map(Vec::len), Some(4));
    // The worst indication of all.
    assert_eq!(json["indication"], "TOTAL_FAILED", "{json:#}");

    // All passing: exit 0.
    let (out, json) = local(&[&a.pass, &a.pass]);
    assert_eq!(exit_code(&out), 0, "{out}");
    assert_eq!(json.expect("JSON")["indication"], "TOTAL_PASSED");
}

#[test]
fn in_process_missing_file_exits_2() {
    let a = artifacts();
    let (out, json) = local(&[&a.missing]);
    assert_eq!(exit_code(&out), 2, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    let doc = &json["documents"][0];
    assert_eq!(doc["file"], a.missing.display().to_string());
    assert!(
        doc["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json:#}"
    );

    // A missing file among good ones still exits 2 and the others are still judged.
    let (out, json) = local(&[&a.pass, &a.missing]);
    assert_eq!(exit_code(&out), 2, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    let v = verdicts(&json, &out);
    assert_eq!(v.len(), 1, "{json:#}");
    assert_eq!(v[0].1, "TOTAL_PASSED");
}

#[test]
fn in_process_non_cms_input_exits_2() {
    let a = artifacts();
    let (out, json) = local(&[&a.not_cms]);
    assert_eq!(exit_code(&out), 2, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    // The error names the file and says what it is not.
    let error = json["documents"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a.not_cms.display().to_string()) && error.contains("not CMS"),
        "{json:#}"
    );
    assert_eq!(json["signatures"].as_array().map(Vec::len), Some(0));
}

#[test]
fn usage_errors_exit_2() {
    let a = artifacts();
    // A bad --at.
    let mut args = local_flags();
    args.extend(["--at".into(), "yesterday".into(), a.pass.clone().into()]);
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (out, _) = kyso_verify(&refs);
    assert_eq!(exit_code(&out), 2, "{out}");
    // A malformed --url-rewrite.
    let root = TestPki::get().root_pem();
    let refs: Vec<&std::ffi::OsStr> = vec![
        "--trust-anchors".as_ref(),
        root.as_os_str(),
        "--url-rewrite".as_ref(),
        "no-equals-sign".as_ref(),
        a.pass.as_os_str(),
    ];
    let (out, _) = kyso_verify(&refs);
    assert_eq!(exit_code(&out), 2, "{out}");
    // No trust anchors at all: the pinned government roots, a verdict and not a usage
    // error (`clerk::no_flags_*`).
}

// ---------------------------------------------------------------------------------------------
// Through a server (--server)
// ---------------------------------------------------------------------------------------------

#[test]
fn through_the_server_verdicts_and_exit_codes() {
    let a = artifacts();
    let server = Server::start(server_config());
    let url = server.url.clone();

    expect_one(
        remote(&url, &[], &[&a.pass]),
        &a.pass,
        0,
        "TOTAL_PASSED",
        None,
    );
    expect_one(
        remote(&url, &[], &[&a.revoked]),
        &a.revoked,
        1,
        "TOTAL_FAILED",
        Some("REVOKED"),
    );
    expect_one(
        remote(&url, &[], &[&a.tampered]),
        &a.tampered,
        1,
        "TOTAL_FAILED",
        Some("HASH_FAILURE"),
    );
    expect_one(
        remote(&url, &[], &[&a.rogue]),
        &a.rogue,
        1,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );
    let content = a.content.as_os_str();
    expect_one(
        remote(&url, &["--content".as_ref(), content], &[&a.detached]),
        &a.detached,
        0,
        "TOTAL_PASSED",
        None,
    );
    server.assert_running();
}

#[test]
fn through_the_server_several_files_and_input_errors() {
    let a = artifacts();
    let server = Server::start(server_config());
    let url = server.url.clone();

    let (out, json) = remote(&url, &[], &[&a.pass, &a.revoked, &a.rogue]);
    assert_eq!(exit_code(&out), 1, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    let mut got = verdicts(&json, &out);
    got.sort();
    let mut want = vec![
        (
            a.pass.display().to_string(),
            "TOTAL_PASSED".to_owned(),
            None,
        ),
        (
            a.revoked.display().to_string(),
            "TOTAL_FAILED".to_owned(),
            Some("REVOKED".to_owned()),
        ),
        (
            a.rogue.display().to_string(),
            "INDETERMINATE".to_owned(),
            Some("NO_CERTIFICATE_CHAIN_FOUND".to_owned()),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{json:#}");

    let (out, _) = remote(&url, &[], &[&a.missing]);
    assert_eq!(exit_code(&out), 2, "missing file through the server: {out}");
    let (out, json) = remote(&url, &[], &[&a.not_cms]);
    assert_eq!(
        exit_code(&out),
        2,
        "non-CMS input through the server: {out}"
    );
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    assert!(json["documents"][0]["error"].as_str().is_some(), "{json:#}");

    // The server's own trust applies: local trust flags are refused with --server.
    let pki = TestPki::get();
    let anchors = pki.root_pem();
    let (out, _) = remote(
        &url,
        &["--trust-anchors".as_ref(), anchors.as_os_str()],
        &[&a.pass],
    );
    assert_eq!(exit_code(&out), 2, "--trust-anchors with --server: {out}");
    server.assert_running();
}

#[test]
fn intermediates_flag_is_refused_with_server() {
    // `--intermediates` is documented "In-process only" and named in the usage error that
    // `--server` gives for local trust flags: it must not be silently ignored.
    let a = artifacts();
    let server = Server::start(server_config());
    let pki = TestPki::get();
    let intermediates = pki.intermediates_pem();
    let (out, _) = remote(
        &server.url,
        &["--intermediates".as_ref(), intermediates.as_os_str()],
        &[&a.pass],
    );
    assert_eq!(exit_code(&out), 2, "--intermediates with --server: {out}");
}

#[test]
fn unreachable_server_exits_2() {
    let a = artifacts();
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (out, _) = remote(&format!("http://127.0.0.1:{port}"), &[], &[&a.pass]);
    assert_eq!(exit_code(&out), 2, "{out}");
}

/// `kyso bench instructions`: callgrind counts the instructions of one warm in-process
/// verification (the server side of VerifyCms or VerifyEdxml without gRPC) and of one raw
/// RSA-2048 check, each as the difference between a warm-up-only run and a run with more; a
/// verification costs more than its signature check, and the ratio says how far from the
/// floor it is (issue 17's repeatable figure, docs/BENCHMARKS.md). With `KYSO_BIN_DIR` at a
/// release build and `KYSO_BENCH_INSTRUCTIONS_COUNT`, the figures recorded there.
#[test]
fn bench_instructions_counts_a_warm_verification_against_the_raw_check_V2() {
    use crate::edxml_dsig::{RSA_SHA256, SHA256, template, with_signature, xmlsec_sign};
    let a = artifacts();
    let pki = TestPki::get();
    let envelope = a.pass.with_file_name("envelope.edxml");
    // A real (unsigned) PDF as the attachment, as `kyso_verify_reads_envelopes_N6` has it.
    let pdf = kyso_tests::pdf_fixtures::classic_pdf(
        &[
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [] /Count 0 >>".to_string(),
        ],
        "",
    );
    let unsigned = with_signature(&template("ds:", RSA_SHA256, SHA256)).replace(
        crate::edxml_dsig::PDF_B64,
        &<base64ct::Base64 as base64ct::Encoding>::encode_string(&pdf),
    );
    std::fs::write(&envelope, xmlsec_sign(pki, "org-rsa", &unsigned)).unwrap();
    // The test command measures the CMS only (each file is four runs under callgrind); a
    // measurement for the record takes the envelope too.
    let record = std::env::var("KYSO_BENCH_INSTRUCTIONS_COUNT").ok();
    let count = record.clone().unwrap_or_else(|| "3".into());
    let files = match record {
        Some(_) => vec![&a.pass, &envelope],
        None => vec![&a.pass],
    };
    for file in files {
        let mut cmd = Command::new(workspace_bin("kyso"));
        cmd.args(["bench", "instructions", "--count", &count])
            .args(local_flags())
            .arg(file)
            .env("KYSO_LOG", "warn")
            .env("XDG_DATA_HOME", "/nonexistent");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let verify = v["verify_instructions_per_op"].as_f64().unwrap();
        let raw = v["raw_instructions_per_op"].as_f64().unwrap();
        assert!(
            raw > 100_000.0,
            "an RSA-2048 check is hundreds of thousands: {v}"
        );
        assert!(
            verify > raw,
            "a verification includes its signature check: {v}"
        );
        let ratio = v["ratio_raw_to_verify"].as_f64().unwrap();
        assert!(ratio > 0.0 && ratio < 1.0, "{v}");
        eprintln!("{v}");
    }
}

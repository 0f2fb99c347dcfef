//! Instructions the signer process spends per signature, counted by `valgrind
//! --tool=callgrind` (docs/BENCHMARKS.md "kyso bench sign", issue 17): a figure that does not
//! move with the machine's load, for before/after comparisons of the signer's own CPU.
//!
//! The cluster's signer is replaced by the same binary and configuration under callgrind,
//! which answers `kyso bench sign --requests N1` and is stopped (SIGTERM, which seals the log),
//! then again with N2. Start-up, the approval pool, the probes and the shutdown cost the same
//! in both runs, so instructions per signature = (Ir(N2) - Ir(N1)) / (N2 - N1). Only the
//! signer process is counted: SoftHSM's signature runs in `p11-kit-remote`, the registry in
//! this test process.
//!
//! ```sh
//! scripts/callgrind-sign.sh       # builds, runs this test, prints the JSON
//! ```
//! Environment: KYSO_CG_N1 / KYSO_CG_N2 (default 50 / 250), KYSO_CG_OUT (a directory that
//! keeps the callgrind files, for `callgrind_annotate`), KYSO_CG_KEYS (`rsa`, `p256` or both,
//! comma-separated).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kyso_tests::cluster::Cluster;
use kyso_tests::hsm::workspace_bin;
use serde_json::{Value, json};

use crate::bench::{bench_command, signed_records};

/// Starts the cluster's signer binary and configuration under callgrind, writing `cg`.
async fn start_under_callgrind(c: &mut Cluster, cg: &Path, log: &Path) {
    c.stop_signer();
    let cfg = c.dir.path().join("signer.toml");
    let out = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", cg.display()))
        .arg(workspace_bin("kyso-signer"))
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info");
    let (k, v) = c.p11.client_env();
    cmd.env(k, v).stdout(out.try_clone().unwrap()).stderr(out);
    c.signer = Some(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = kyso_tests::cluster::serving_addr(&text) {
            c.addr = addr;
            return;
        }
        if let Some(Ok(Some(status))) = c.signer.as_mut().map(|s| s.try_wait()) {
            panic!("kyso-signer under callgrind exited with {status}: {text}");
        }
        assert!(Instant::now() < deadline, "signer did not start: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Total instructions (`summary:` / `totals:` line) of a callgrind output file.
fn total_ir(cg: &Path) -> u64 {
    let text = std::fs::read_to_string(cg).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", cg.display()))
}

/// One run: the signer under callgrind answers `n` SignCms requests; its total Ir.
async fn run(c: &mut Cluster, out: &Path, tag: &str, n: u64, args: &[String]) -> u64 {
    let cg = out.join(format!("cg.{tag}.{n}"));
    start_under_callgrind(c, &cg, &out.join(format!("signer.{tag}.{n}.log"))).await;
    let before = signed_records(&c.audit_path());
    let mut args = args.to_vec();
    args.extend(["--requests".into(), n.to_string()]);
    let mut cmd = bench_command(c, &args);
    let json = tokio::task::spawn_blocking(move || {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut s = String::new();
        child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
        assert!(child.wait().unwrap().success(), "kyso bench sign: {s}");
        s
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["grpc"]["signatures"], n, "{v}");
    assert_eq!(v["grpc"]["errors"], json!({}), "{v}");
    // Every signature is in the audit log before its reply (the pool and probes included).
    let outside = v["grpc"]["signed_outside_measurement"].as_u64().unwrap();
    assert_eq!(signed_records(&c.audit_path()) - before, n + outside);
    c.stop_signer(); // callgrind writes its file when the signer exits
    total_ir(&cg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (minutes, release build, valgrind): run with --ignored --nocapture"]
async fn bench_sign_callgrind_instructions_per_signature() {
    let mut c = Cluster::start().await;
    let p = c.province.clone();
    let env_n = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n1, n2) = (env_n("KYSO_CG_N1", 50), env_n("KYSO_CG_N2", 250));
    assert!(n2 > n1);
    let out: PathBuf = match std::env::var("KYSO_CG_OUT") {
        Ok(d) => PathBuf::from(d),
        Err(_) => c.dir.path().join("callgrind"),
    };
    std::fs::create_dir_all(&out).unwrap();
    let keys = std::env::var("KYSO_CG_KEYS").unwrap_or_else(|_| "rsa,p256".into());
    let mut results = Vec::new();
    for (tag, what, key) in [
        (
            "rsa",
            "RSA-2048 seal, ISSUE",
            format!("seal:issue:{}", p.clerk),
        ),
        (
            "p256",
            "P-256 chairman, APPROVAL",
            format!("chairman:approval:{}", p.chairman),
        ),
    ] {
        if !keys.split(',').any(|k| k.trim() == tag) {
            continue;
        }
        let args: Vec<String> = vec![
            "--key".into(),
            key,
            "--approve-with".into(),
            format!("chairman:{}", p.chairman),
        ];
        let i1 = run(&mut c, &out, tag, n1, &args).await;
        let i2 = run(&mut c, &out, tag, n2, &args).await;
        results.push(json!({
            "key": what,
            "requests": [n1, n2],
            "instructions": [i1, i2],
            "instructions_per_signature": (i2 - i1) / (n2 - n1),
        }));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v = json!({
        "bench": "callgrind-sign",
        "signer": workspace_bin("kyso-signer").display().to_string(),
        "callgrind_files": out.display().to_string(),
        "runs": results,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}

//! `kyso bench instructions`: instructions per operation under callgrind, a figure that does
//! not move with whatever else the machine runs (issue 17: measurement that holds on a shared
//! machine).
//!
//! The command runs itself twice under `valgrind --tool=callgrind`: once doing only the
//! warm-up (one verification of each file: trust store, caches, OCSP/CRL fetched), once doing
//! the warm-up and `--count` more; the difference divided by `--count` is what one warm
//! in-process verification costs, the server side of `VerifyCms`/`VerifyPdf`/`VerifyEdxml`
//! without gRPC. The same is done for the raw signature check (RSA-2048 PKCS#1 v1.5 or
//! P-256 ECDSA, SHA-256, aws-lc-rs), the floor it is compared with.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::CliError;
use crate::verify::VerifyArgs;

/// Set in the child processes: do the work instead of measuring it.
const CHILD: &str = "KYSO_BENCH_INSTRUCTIONS_CHILD";
/// Set in the child processes: where the raw check's key and signature are.
const RAW_DIR: &str = "KYSO_BENCH_INSTRUCTIONS_DIR";

/// The raw operation a verification is compared with.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Raw {
    /// RSA-2048 PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// ECDSA P-256 with SHA-256.
    P256,
}

/// `kyso bench instructions`.
#[derive(Debug, Args)]
pub struct InstructionsBench {
    /// Operations measured after the warm-up.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// The raw signature check to compare with.
    #[arg(long, value_enum, default_value = "rsa2048")]
    raw: Raw,
    /// The valgrind program.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
    /// Where callgrind's output files go (default: a directory under the system's temporary
    /// directory, kept for `callgrind_annotate`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// What to verify, as `kyso verify` takes it (in-process only).
    #[command(flatten)]
    verify: VerifyArgs,
}

/// Runs the benchmark, or, in a child under callgrind, its workload.
pub async fn run(b: InstructionsBench) -> Result<ExitCode, CliError> {
    if let Ok(what) = std::env::var(CHILD) {
        return child(&b, &what).await;
    }
    let dir = b.out_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kyso-callgrind-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|source| CliError::File {
        path: dir.display().to_string(),
        source,
    })?;
    let load = crate::bench::load_average();
    let verify_ir = per_op(&b, &dir, "verify")?;
    // The raw check's key and signature are made here, once: key generation and signing
    // are randomised, checking a given signature is not.
    let (public, sig) = raw_material(b.raw)?;
    for (name, bytes) in [("raw.pub", &public), ("raw.sig", &sig)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| CliError::File {
            path: path.display().to_string(),
            source,
        })?;
    }
    let raw_ir = per_op(&b, &dir, "raw")?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "benchmark": "instructions",
            "files": b.verify.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "count": b.count,
            "verify_instructions_per_op": verify_ir,
            "raw": format!("{:?}", b.raw).to_lowercase(),
            "raw_instructions_per_op": raw_ir,
            "ratio_raw_to_verify": if verify_ir > 0.0 { raw_ir / verify_ir } else { 0.0 },
            "load_average": load,
            "tool": "valgrind --tool=callgrind (instructions, Ir)",
        }))
        .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Instructions of one `what` ("verify" or "raw"): two runs under callgrind, warm-up only
/// and warm-up plus `count`, the difference over `count`.
fn per_op(b: &InstructionsBench, dir: &Path, what: &str) -> Result<f64, CliError> {
    let base = callgrind(b, dir, what, 0)?;
    let full = callgrind(b, dir, what, b.count)?;
    Ok(full.saturating_sub(base) as f64 / b.count.max(1) as f64)
}

/// One run of this command under callgrind doing `count` operations after the warm-up;
/// the total instructions it reports.
fn callgrind(b: &InstructionsBench, dir: &Path, what: &str, count: usize) -> Result<u64, CliError> {
    let out = dir.join(format!("callgrind.{what}.{count}.out"));
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Usage(format!("this program's path: {e}")))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new(&b.valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .args(replace_count(&args, count))
        .env(CHILD, what)
        .env(RAW_DIR, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| CliError::Usage(format!("{}: {e}", b.valgrind.display())))?;
    if !status.success() {
        return Err(CliError::Usage(format!(
            "the {what} workload under callgrind failed ({status}); run it without valgrind: {CHILD}={what} kyso {}",
            args.join(" ")
        )));
    }
    total_instructions(&out)
}

/// `args` with `--count` set to `count`.
fn replace_count(args: &[String], count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--count" {
            skip = true;
            continue;
        }
        if a.starts_with("--count=") {
            continue;
        }
        out.push(a.clone());
    }
    // Options go before the positional files: `--count` right after `instructions`.
    let at = out
        .iter()
        .position(|a| a == "instructions")
        .map_or(0, |i| i + 1);
    out.insert(at, count.to_string());
    out.insert(at, "--count".into());
    out
}

/// The `summary:` (or `totals:`) line of a callgrind output file.
fn total_instructions(path: &Path) -> Result<u64, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .ok_or_else(|| CliError::Usage(format!("{}: no instruction total", path.display())))
}

/// The workload of a child: the warm-up, then `count` operations.
async fn child(b: &InstructionsBench, what: &str) -> Result<ExitCode, CliError> {
    match what {
        "verify" => {
            let worst = crate::verify::repeat_local(&b.verify, b.count).await?;
            if worst != "TOTAL_PASSED" {
                return Err(CliError::Usage(format!(
                    "the files verify {worst}: measure a passing verification"
                )));
            }
        }
        "raw" => {
            let dir = PathBuf::from(std::env::var_os(RAW_DIR).unwrap_or_default());
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read(&path).map_err(|source| CliError::File {
                    path: path.display().to_string(),
                    source,
                })
            };
            raw(b.raw, &read("raw.pub")?, &read("raw.sig")?, b.count)?;
        }
        other => return Err(CliError::Usage(format!("{CHILD}={other:?}"))),
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh key's public half and a signature over the fixed message.
fn raw_material(kind: Raw) -> Result<(Vec<u8>, Vec<u8>), CliError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let bad = |e: &dyn std::fmt::Display| CliError::Usage(format!("raw {kind:?}: {e}"));
    Ok(match kind {
        Raw::Rsa2048 => {
            let key =
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| bad(&e))?;
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(&signature::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut sig)
                .map_err(|e| bad(&e))?;
            (key.public_key().as_ref().to_vec(), sig)
        }
        Raw::P256 => {
            let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
                .map_err(|e| bad(&e))?;
            let sig = key.sign(&rng, &MESSAGE).map_err(|e| bad(&e))?;
            (key.public_key().as_ref().to_vec(), sig.as_ref().to_vec())
        }
    })
}

/// What the raw check's signature is over.
const MESSAGE: [u8; 64] = [0x5a; 64];

/// One check of the given signature (the warm-up), then `count` more.
fn raw(kind: Raw, public: &[u8], sig: &[u8], count: usize) -> Result<(), CliError> {
    let alg: &'static dyn signature::VerificationAlgorithm = match kind {
        Raw::Rsa2048 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Raw::P256 => &signature::ECDSA_P256_SHA256_ASN1,
    };
    let bad = |e: &dyn std::fmt::Display| CliError::Usage(format!("raw {kind:?}: {e}"));
    let pk = signature::UnparsedPublicKey::new(alg, public);
    for _ in 0..=count {
        pk.verify(&MESSAGE, sig).map_err(|e| bad(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_replaced_and_goes_before_the_files() {
        let args: Vec<String> = [
            "bench",
            "instructions",
            "--count",
            "5",
            "--raw",
            "p256",
            "a.p7s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            replace_count(&args, 0),
            [
                "bench",
                "instructions",
                "--count",
                "0",
                "--raw",
                "p256",
                "a.p7s"
            ]
        );
        let args: Vec<String> = ["bench", "instructions", "--count=7", "a.p7s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            replace_count(&args, 3),
            ["bench", "instructions", "--count", "3", "a.p7s"]
        );
    }
}

//! The signer's audit log end to end: many concurrent appends, reopening,
//! seals made with real keys (aws-lc-rs and OpenSSL), and tampered copies
//! caught both by `kyso_signer::audit::verify_log` and by the real
//! `kyso audit verify` binary (exit 0 intact, 1 broken naming the first
//! broken line, 2 usage or I/O error).
//!
//! The binary is `target/debug/kyso` (next to this test's `deps/`
//! directory), or `$KYSO_BIN`; build it first (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use futures::future::BoxFuture;
use kyso_pki::crypto::oid;
use kyso_signer::audit::{
    AuditConfig, AuditEntry, AuditLog, AuditRecord, Decision, ProblemKind, SealError, SealKey,
    SealSignature, Sealer, seal_message, verify_log,
};
use kyso_tests::hsm::workspace_bin;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-03-02 09:30:00 UTC);

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kyso(args: &[&str]) -> Run {
    let out = Command::new(workspace_bin("kyso"))
        .args(args)
        .output()
        .expect("run kyso");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn kyso_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let r = kyso(&all);
    let v = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("JSON from kyso ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        time: T0 + time::Duration::milliseconds(i as i64),
        caller: "CN=qlvb.sotttt.hanoi.gov.vn,O=So TTTT Ha Noi".into(),
        key: "sotttt-hanoi".into(),
        certificate_fingerprint: "0f".repeat(32),
        digest_algorithm: "sha256".into(),
        digest: kyso_pki::crypto::sha256(format!("document {i}").as_bytes()).to_vec(),
        acting_person_id: format!("p-{}", i % 5),
        organisation_id: "o-sotttt-hanoi".into(),
        document_type: "CV".into(),
        number_and_symbol: format!("{i}/STTTT-VP"),
        factor: String::new(),
        level: None,
        profile: "PROFILE_ISSUE".into(),
        mode: if i.is_multiple_of(2) {
            "SIGNING_MODE_OWN"
        } else {
            "SIGNING_MODE_KT"
        }
        .into(),
        decision: if i % 4 == 3 {
            Decision::Refused {
                rules: vec!["A3".into()],
                reason: "no delegation for this document type".into(),
            }
        } else {
            Decision::Signed
        },
    }
}

/// Seals with an RSA key (PKCS#1 v1.5, SHA-256).
#[derive(Debug)]
struct RsaSealer {
    key: aws_lc_rs::rsa::KeyPair,
    cert_fingerprint: String,
}

impl Sealer for RsaSealer {
    fn seal<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>> {
        Box::pin(async move {
            let mut sig = vec![0; self.key.public_modulus_len()];
            self.key
                .sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(SealError::new)?;
            Ok(SealSignature {
                algorithm: oid::SHA256_WITH_RSA,
                key_name: "audit-seal-rsa".into(),
                certificate_fingerprint: self.cert_fingerprint.clone(),
                signature: sig,
            })
        })
    }
}

/// Seals with an ECDSA P-256 key (SHA-256).
#[derive(Debug)]
struct EcSealer {
    key: EcdsaKeyPair,
    cert_fingerprint: String,
}

impl Sealer for EcSealer {
    fn seal<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>> {
        Box::pin(async move {
            let sig = self
                .key
                .sign(&SystemRandom::new(), message)
                .map_err(SealError::new)?;
            Ok(SealSignature {
                algorithm: oid::ECDSA_WITH_SHA256,
                key_name: "audit-seal-ec".into(),
                certificate_fingerprint: self.cert_fingerprint.clone(),
                signature: sig.as_ref().to_vec(),
            })
        })
    }
}

/// A fresh RSA sealer and its public key as a PEM file in `dir`.
fn rsa_sealer(dir: &Path, name: &str) -> (Arc<RsaSealer>, PathBuf) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("RSA key generation");
    let spki = key.public_key().as_der().expect("SPKI");
    let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, spki.as_ref())
        .expect("PEM");
    let path = dir.join(format!("{name}.pub.pem"));
    std::fs::write(&path, pem).expect("write public key");
    let sealer = RsaSealer {
        key,
        cert_fingerprint: String::new(),
    };
    (Arc::new(sealer), path)
}

fn pkcs8_of(pem_path: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_path).expect("read key");
    let (label, der) = der::pem::decode_vec(&pem).expect("PEM key");
    assert_eq!(label, "PRIVATE KEY");
    der
}

fn cert_fingerprint(pem_path: &Path) -> String {
    let pem = std::fs::read(pem_path).expect("read certificate");
    let (_, der) = der::pem::decode_vec(&pem).expect("PEM certificate");
    hex::encode(kyso_pki::crypto::sha256(&der))
}

fn config(seal_every: Option<u64>) -> AuditConfig {
    AuditConfig {
        seal_every_records: seal_every,
        ..AuditConfig::default()
    }
}

/// A log of 12 entries with seals after entries 4 and 8 and at close:
/// lines 1-4 entries, 5 seal, 6-9 entries, 10 seal, 11-14 entries, 15 seal.
async fn sealed_log(path: &Path, sealer: Arc<dyn Sealer>) {
    let log = AuditLog::open(path, config(None), Some(sealer))
        .await
        .expect("open");
    for i in 0..12 {
        log.append(entry(i)).await.expect("append");
        if i % 4 == 3 && i < 11 {
            log.seal(T0 + time::Duration::seconds(i as i64))
                .await
                .expect("seal")
                .expect("a seal record");
        }
    }
    log.close(T0 + time::Duration::minutes(5))
        .await
        .expect("close")
        .expect("a final seal");
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .expect("read log")
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn replace_in(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(line).expect("UTF-8 line");
    assert!(text.contains(from), "{from} in {text}");
    text.replacen(from, to, 1).into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn audit_concurrent_appends_are_contiguous_and_reopen_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let (sealer, pub_pem) = rsa_sealer(dir.path(), "seal");
    let log = AuditLog::open(&path, config(Some(200)), Some(sealer.clone()))
        .await
        .expect("open");
    assert!(log.opened().created);
    let tasks: Vec<_> = (0..48u64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..50u64 {
                    let r = log.append(entry(t * 100 + i)).await.expect("append");
                    seqs.push(r.seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.expect("task"));
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 2400, "every append has its own sequence number");
    let final_seal = log.close(T0).await.expect("close");
    drop(log);

    let report = verify_log(
        &path,
        &[SealKey::from_public_key(&std::fs::read(&pub_pem).unwrap()).unwrap()],
    )
    .expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.entries, 2400);
    assert!(report.seals >= 2, "{report:?}");
    assert_eq!(report.seals, report.seals_verified);
    assert_eq!(report.head_seq, report.entries + report.seals);
    assert_eq!(report.unsealed_records, 0);
    if let Some(r) = final_seal {
        assert_eq!(r.seq, report.head_seq);
        assert_eq!(r.hash_hex(), report.head_hash);
    }
    // Entry and seal sequence numbers together are 1..=head: contiguous.
    let seal_seqs: Vec<u64> = lines(&path)
        .iter()
        .map(|l| AuditRecord::parse(l).expect("record"))
        .filter(|r| r.seal.is_some())
        .map(|r| r.seq)
        .collect();
    // A seal follows the group commit that reaches 200 unsealed records:
    // at most 200 + 47 (the other tasks' records in that batch) between seals.
    let mut last = 0;
    for &q in &seal_seqs {
        assert!(
            q - last - 1 <= 247,
            "{} records between seals",
            q - last - 1
        );
        last = q;
    }
    let mut all = seqs.clone();
    all.extend(seal_seqs);
    all.sort_unstable();
    assert_eq!(all, (1..=report.head_seq).collect::<Vec<_>>());

    // Reopen: the head is recovered and the chain goes on.
    let log = AuditLog::open(&path, config(Some(200)), Some(sealer))
        .await
        .expect("reopen");
    assert_eq!(log.opened().head_seq, report.head_seq);
    assert_eq!(hex::encode(log.opened().head_hash), report.head_hash);
    let r = log.append(entry(9999)).await.expect("append after reopen");
    assert_eq!(r.seq, report.head_seq + 1);
    log.close(T0).await.expect("close");

    let (code, v) = kyso_json(&["audit", "verify", s(&path), "--public-key", s(&pub_pem)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["intact"], true);
    assert_eq!(v["entries"], 2401);
    assert_eq!(v["head_seq"], report.head_seq + 2);
    assert_eq!(v["seals"], v["seals_verified"]);
}

#[tokio::test]
async fn audit_seals_made_with_openssl_keys_verify_with_their_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, newkey) in [
        ("rsa", vec!["-newkey", "rsa:2048"]),
        (
            "p256",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
    ] {
        let key = dir.path().join(format!("{name}.key.pem"));
        let cert = dir.path().join(format!("{name}.crt.pem"));
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
        args.extend(&newkey);
        args.extend([
            "-subj",
            "/CN=kyso audit seal/O=Cuc CNTT",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
        ]);
        openssl(&args);
        let fp = cert_fingerprint(&cert);
        let sealer: Arc<dyn Sealer> = if name == "rsa" {
            Arc::new(RsaSealer {
                key: aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8_of(&key)).expect("RSA PKCS#8"),
                cert_fingerprint: fp.clone(),
            })
        } else {
            Arc::new(EcSealer {
                key: EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &pkcs8_of(&key),
                )
                .expect("EC PKCS#8"),
                cert_fingerprint: fp.clone(),
            })
        };
        let path = dir.path().join(format!("{name}.log"));
        sealed_log(&path, sealer).await;
        assert!(
            std::str::from_utf8(&std::fs::read(&path).unwrap())
                .unwrap()
                .contains(&format!("\"cert_sha256\":\"{fp}\",\"sig\"")),
            "the seal names the certificate"
        );

        let (code, v) = kyso_json(&["audit", "verify", s(&path), "--certificate", s(&cert)]);
        assert_eq!(code, 0, "{name}: {v:#}");
        assert_eq!(
            (v["seals"].clone(), v["seals_verified"].clone()),
            (3.into(), 3.into())
        );
        let r = kyso(&["audit", "verify", s(&path), "--certificate", s(&cert)]);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("INTACT"), "{}", r.stdout);
        assert!(
            r.stdout.contains("3 seal signatures verified"),
            "{}",
            r.stdout
        );
    }
}

#[tokio::test]
async fn audit_seal_signature_verifies_with_openssl_dgst() {
    // An auditor without kyso: the documented seal message and openssl.
    let dir = tempfile::tempdir().expect("tempdir");
    let (sealer, pub_pem) = rsa_sealer(dir.path(), "seal");
    let path = dir.path().join("audit.log");
    sealed_log(&path, sealer).await;
    let seal = AuditRecord::parse(&lines(&path)[4]).expect("record");
    let body = seal.seal.expect("line 5 is a seal");
    assert_eq!(body.through, 4);
    let head: [u8; 32] = hex::decode(&body.head).unwrap().try_into().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, seal_message(body.through, &head)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&msg).unwrap(),
        format!("kyso-audit-seal-v1:4:{}", body.head)
    );
    let sig = dir.path().join("sig.bin");
    std::fs::write(&sig, hex::decode(&body.sig).unwrap()).unwrap();
    openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&pub_pem),
        "-signature",
        s(&sig),
        s(&msg),
    ]);
}

#[tokio::test]
async fn audit_tampered_copies_exit_1_and_name_the_first_broken_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sealer, pub_pem) = rsa_sealer(dir.path(), "seal");
    let path = dir.path().join("audit.log");
    sealed_log(&path, sealer).await;
    let original = lines(&path);
    assert_eq!(original.len(), 15);
    let (code, _) = kyso_json(&["audit", "verify", s(&path), "--public-key", s(&pub_pem)]);
    assert_eq!(code, 0);

    let key = SealKey::from_public_key(&std::fs::read(&pub_pem).unwrap()).unwrap();
    let mut cases: Vec<(&str, Vec<Vec<u8>>, ProblemKind, u64)> = Vec::new();

    // One field of an entry edited.
    let mut t = original.clone();
    t[6] = replace_in(
        &t[6],
        "\"number_and_symbol\":\"5/STTTT-VP\"",
        "\"number_and_symbol\":\"6/STTTT-VP\"",
    );
    cases.push(("edited_field", t, ProblemKind::EditedRecord, 7));

    // One record removed.
    let mut t = original.clone();
    t.remove(2);
    cases.push(("removed_record", t, ProblemKind::RemovedRecord, 3));

    // Two records swapped.
    let mut t = original.clone();
    t.swap(10, 11);
    cases.push(("swapped_records", t, ProblemKind::ReorderedRecord, 11));

    // A seal's signature edited in place.
    let mut t = original.clone();
    let text = String::from_utf8(t[9].clone()).unwrap();
    let at = text.find("\"sig\":\"").unwrap() + 7;
    let digit = if &text[at..=at] == "f" { "e" } else { "f" };
    t[9] = format!("{}{digit}{}", &text[..at], &text[at + 1..]).into_bytes();
    cases.push(("edited_seal", t, ProblemKind::EditedRecord, 10));

    // A seal forged and its record hash recomputed: the signature fails.
    let mut t = original.clone();
    let mut rec = AuditRecord::parse(&t[14]).unwrap();
    rec.seal.as_mut().unwrap().sig = "ab".repeat(256);
    t[14] = rec.rehash_line();
    cases.push(("forged_seal", t, ProblemKind::BadSeal, 15));

    // Truncated in the middle of a line.
    let mut t = original.clone();
    t.truncate(8);
    let half = t[7].len() / 2;
    t[7].truncate(half);
    cases.push(("truncated_mid_line", t, ProblemKind::TornTail, 8));

    for (name, content, kind, line) in cases {
        let copy = dir.path().join(format!("{name}.log"));
        std::fs::write(&copy, content.concat()).unwrap();

        let report = verify_log(&copy, std::slice::from_ref(&key)).expect("verify");
        let p = report
            .problem
            .clone()
            .unwrap_or_else(|| panic!("{name}: not detected"));
        assert_eq!((p.kind, p.line), (kind, line), "{name}: {p:?}");

        let (code, v) = kyso_json(&["audit", "verify", s(&copy), "--public-key", s(&pub_pem)]);
        assert_eq!(code, 1, "{name}: {v:#}");
        assert_eq!(v["intact"], false, "{name}");
        assert_eq!(v["problem"]["line"], line, "{name}: {v:#}");
        assert_eq!(
            v["problem"]["kind"],
            serde_json::to_value(kind).unwrap(),
            "{name}: {v:#}"
        );

        let r = kyso(&["audit", "verify", s(&copy), "--public-key", s(&pub_pem)]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("BROKEN"), "{name}: {}", r.stdout);
        assert!(
            r.stdout.contains(&format!("first problem: line {line}")),
            "{name}: {}",
            r.stdout
        );
        assert!(r.stdout.contains(kind.name()), "{name}: {}", r.stdout);
    }
}

#[tokio::test]
async fn audit_unsealed_tail_is_a_warning_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sealer, pub_pem) = rsa_sealer(dir.path(), "seal");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, config(None), Some(sealer))
        .await
        .expect("open");
    for i in 0..3 {
        log.append(entry(i)).await.unwrap();
    }
    log.seal(T0).await.unwrap();
    for i in 3..6 {
        log.append(entry(i)).await.unwrap();
    }
    drop(log); // no clean shutdown: no final seal

    let r = kyso(&["audit", "verify", s(&path), "--public-key", s(&pub_pem)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("warning: unsealed tail: 3 records after the last seal (seq 4)"),
        "{}",
        r.stdout
    );
    let (code, v) = kyso_json(&["audit", "verify", s(&path), "--public-key", s(&pub_pem)]);
    assert_eq!(code, 0);
    assert_eq!(v["unsealed_records"], 3);
    assert_eq!(v["last_seal_seq"], 4);

    // Without a key the seal is not checked: a warning too.
    let (code, v) = kyso_json(&["audit", "verify", s(&path)]);
    assert_eq!(code, 0);
    assert_eq!(v["seals_verified"], 0);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not checked")),
        "{v:#}"
    );
}

#[tokio::test]
async fn audit_wrong_seal_key_exits_1_bad_seal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sealer, _) = rsa_sealer(dir.path(), "seal");
    let (_, other_pem) = rsa_sealer(dir.path(), "other");
    let path = dir.path().join("audit.log");
    sealed_log(&path, sealer).await;
    let (code, v) = kyso_json(&["audit", "verify", s(&path), "--public-key", s(&other_pem)]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["problem"]["kind"], "bad_seal");
    assert_eq!(v["problem"]["line"], 5);
}

#[test]
fn audit_usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.log");
    let r = kyso(&["audit", "verify", s(&missing)]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("missing.log"), "{}", r.stderr);

    let log = dir.path().join("empty.log");
    std::fs::write(&log, b"").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let r = kyso(&["audit", "verify", s(&log), "--public-key", s(&garbage)]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let r = kyso(&["audit", "verify", s(&log), "--certificate", s(&garbage)]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let r = kyso(&["audit", "verify"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);

    // An empty log is intact.
    let r = kyso(&["audit", "verify", s(&log)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

//! Unit tests of the audit log: group commit, recovery, seals, tampering.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use futures::future::BoxFuture;
use kyso_pki::crypto::oid;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-03-01 08:00:00 UTC);

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        time: T0 + time::Duration::milliseconds(i as i64),
        caller: "CN=van-thu.ubnd-hanoi.gov.vn".into(),
        key: "ubnd-hanoi-seal".into(),
        certificate_fingerprint: "AB".repeat(32),
        digest_algorithm: "sha256".into(),
        digest: kyso_pki::crypto::sha256(&i.to_be_bytes()).to_vec(),
        acting_person_id: format!("person-{}", i % 7),
        organisation_id: "org-ubnd-hanoi".into(),
        document_type: "QD".into(),
        number_and_symbol: format!("{i}/QĐ-UBND"),
        profile: "PROFILE_ISSUE".into(),
        mode: "SIGNING_MODE_OWN".into(),
        factor: ["", "totp", "on_behalf"][(i % 3) as usize].into(),
        level: None,
        decision: match i % 4 {
            0 => Decision::Signed,
            1 => Decision::Refused {
                rules: vec!["A7".into(), "P2".into()],
                reason: "classified \"mật\" documents are never signed".into(),
            },
            2 => Decision::Failed {
                reason: "HSM slot 2: CKR_DEVICE_ERROR".into(),
            },
            // The HSM signed; the CMS could not be built around it (issue 13).
            _ => Decision::NotReturned {
                reason: "the CMS could not be built: signature of 300 bytes for RSA-2048".into(),
            },
        },
    }
}

#[derive(Debug)]
struct RsaSealer(aws_lc_rs::rsa::KeyPair);

impl RsaSealer {
    fn generate() -> Self {
        Self(
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("RSA key generation"),
        )
    }

    fn seal_key(&self) -> SealKey {
        let der = self.0.public_key().as_der().expect("SPKI of the RSA key");
        SealKey::from_spki_der(der.as_ref()).expect("seal key")
    }
}

impl Sealer for RsaSealer {
    fn seal<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>> {
        Box::pin(async move {
            let mut sig = vec![0; self.0.public_modulus_len()];
            self.0
                .sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(SealError::new)?;
            Ok(SealSignature {
                algorithm: oid::SHA256_WITH_RSA,
                key_name: "audit-seal".into(),
                certificate_fingerprint: "CD".repeat(32),
                signature: sig,
            })
        })
    }
}

#[derive(Debug)]
struct EcSealer(EcdsaKeyPair);

impl Sealer for EcSealer {
    fn seal<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>> {
        Box::pin(async move {
            let sig = self
                .0
                .sign(&SystemRandom::new(), message)
                .map_err(SealError::new)?;
            Ok(SealSignature {
                algorithm: oid::ECDSA_WITH_SHA256,
                key_name: "audit-seal-ec".into(),
                certificate_fingerprint: String::new(),
                signature: sig.as_ref().to_vec(),
            })
        })
    }
}

#[derive(Debug)]
struct BrokenSealer;

impl Sealer for BrokenSealer {
    fn seal<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<SealSignature, SealError>> {
        Box::pin(async { Err(SealError::new("CKR_DEVICE_REMOVED")) })
    }
}

fn no_auto_seal() -> AuditConfig {
    AuditConfig {
        seal_every_records: None,
        ..AuditConfig::default()
    }
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("audit.log")
}

async fn write_log(path: &Path, n: u64, sealer: Option<Arc<dyn Sealer>>, every: Option<u64>) {
    let log = AuditLog::open(
        path,
        AuditConfig {
            seal_every_records: every,
            ..AuditConfig::default()
        },
        sealer,
    )
    .await
    .expect("open");
    for i in 0..n {
        log.append(entry(i)).await.expect("append");
    }
    log.close(T0 + time::Duration::hours(1))
        .await
        .expect("close");
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read log");
    data.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).expect("write log copy");
}

fn problem(path: &Path, keys: &[SealKey]) -> Problem {
    let r = verify_log(path, keys).expect("verify");
    r.problem.expect("a problem is reported")
}

/// Replaces `"field":"old"` by `"field":"new"` in a line.
fn edit(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = std::str::from_utf8(line).expect("utf-8 line");
    assert!(s.contains(from), "{from} in {s}");
    s.replacen(from, to, 1).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_from_many_tasks_is_durable_contiguous_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let log = AuditLog::open(&path, no_auto_seal(), None)
        .await
        .expect("open");
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let log = log.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..40u64 {
                    let r = log.append(entry(t * 1000 + i)).await.expect("append");
                    if i == 0 {
                        // Acknowledged means on disk: the line is in the file now.
                        let data = std::fs::read(&path).expect("read");
                        let needle = format!("\"hash\":\"{}\"}}\n", r.hash_hex());
                        assert!(
                            data.windows(needle.len()).any(|w| w == needle.as_bytes()),
                            "record {} is in the file once acknowledged",
                            r.seq
                        );
                    }
                    out.push(r);
                }
                out
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        receipts.extend(t.await.expect("task"));
    }
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2560).collect::<Vec<_>>());
    log.close(T0).await.expect("close");
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.records, 2560);
    assert_eq!(report.head_seq, 2560);
    let last = receipts
        .iter()
        .find(|r| r.seq == 2560)
        .expect("receipt of the last record");
    assert_eq!(report.head_hash, last.hash_hex());
    assert_eq!(report.unsealed_records, 2560);
    assert!(report.warnings.iter().any(|w| w.contains("unsealed tail")));
}

#[tokio::test]
async fn reopen_recovers_the_head_and_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 10, None, None).await;
    let log = AuditLog::open(&path, no_auto_seal(), None)
        .await
        .expect("reopen");
    assert_eq!(log.opened().head_seq, 10);
    assert_eq!(log.opened().records, 10);
    assert!(!log.opened().created);
    let r = log.append(entry(10)).await.expect("append");
    assert_eq!(r.seq, 11);
    drop(log);
    // Reopen again without a clean close: the writer task lets the lock go
    // once it sees every handle dropped.
    let mut tries = 0;
    let log = loop {
        match AuditLog::open(&path, no_auto_seal(), None).await {
            Err(AuditError::Locked { .. }) if tries < 200 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            r => break r.expect("reopen twice"),
        }
    };
    assert_eq!(log.opened().head_seq, 11);
    assert_eq!(log.opened().head_hash, r.hash);
    log.close(T0).await.expect("close");
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.records, 11);
}

#[tokio::test]
async fn record_format_follows_the_documented_hash_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 3, None, None).await;
    let ls = lines(&path);
    assert_eq!(ls.len(), 3);
    let first = std::str::from_utf8(&ls[0]).expect("utf-8");
    assert!(
        first.starts_with(&format!(
            "{{\"v\":2,\"seq\":1,\"prev\":\"{}\",\"time\":\"2026-03-01T08:00:00Z\",\"entry\":{{\"caller\":",
            "0".repeat(64)
        )),
        "{first}"
    );
    assert!(first.contains("\"number_and_symbol\":\"0/QĐ-UBND\""));
    let mut prev = "0".repeat(64);
    for l in &ls {
        // The rule of the module docs, from the raw bytes alone.
        let body = &l[..l.len() - 1];
        let mut pre = body[..body.len() - 75].to_vec();
        pre.push(b'}');
        let hash = hex::encode(kyso_pki::crypto::sha256(&pre));
        let v: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(v["hash"], hash.as_str());
        assert_eq!(v["prev"], prev.as_str());
        prev = hash;
    }
}

/// Rewrites the records of `ls` as format version 1 (no `factor`), chained again.
fn as_version_1(ls: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut prev = "0".repeat(64);
    ls.iter()
        .map(|l| {
            let mut rec = AuditRecord::parse(l).expect("record");
            rec.v = 1;
            if let Some(e) = rec.entry.as_mut() {
                e.factor = None;
            }
            rec.prev = prev.clone();
            let line = rec.rehash_line();
            prev = rec.hash.clone();
            line
        })
        .collect()
}

#[tokio::test]
async fn a_version_1_log_still_verifies_and_continues_in_version_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 4, None, None).await;
    let v2 = lines(&path);
    assert!(
        std::str::from_utf8(&v2[1])
            .expect("utf-8")
            .contains(",\"factor\":\"totp\"}")
    );
    let v1 = as_version_1(&v2);
    assert!(
        !std::str::from_utf8(&v1[1])
            .expect("utf-8")
            .contains("factor")
    );
    write_lines(&path, &v1);
    assert!(verify_log(&path, &[]).expect("verify").intact());
    // The signer opens it and goes on in version 2.
    let log = AuditLog::open(&path, no_auto_seal(), None)
        .await
        .expect("open a version 1 log");
    log.append(entry(4)).await.expect("append");
    log.close(T0).await.expect("close");
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.records, 5);
    let last = lines(&path).pop().expect("a line");
    assert!(last.starts_with(b"{\"v\":2,"));
    // A factor in a version 1 record, or none in a version 2 record: malformed.
    let mut bad = v1.clone();
    let mut rec = AuditRecord::parse(&bad[0]).expect("record");
    rec.entry.as_mut().expect("entry").factor = Some("totp".into());
    bad[0] = rec.rehash_line();
    write_lines(&path, &bad[..1]);
    assert_eq!(problem(&path, &[]).kind, ProblemKind::Malformed);
    let mut rec = AuditRecord::parse(&v2[0]).expect("record");
    rec.entry.as_mut().expect("entry").factor = None;
    write_lines(&path, &[rec.rehash_line()]);
    assert_eq!(problem(&path, &[]).kind, ProblemKind::Malformed);
}

#[tokio::test]
async fn seals_every_n_records_verify_with_the_rsa_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let sealer = Arc::new(RsaSealer::generate());
    let key = sealer.seal_key();
    write_log(&path, 25, Some(sealer.clone()), Some(10)).await;
    let report = verify_log(&path, std::slice::from_ref(&key)).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.entries, 25);
    // After 10 and 20 entries, and at close.
    assert_eq!(report.seals, 3);
    assert_eq!(report.seals_verified, 3);
    assert_eq!(report.unsealed_records, 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.last_seal_seq, Some(report.head_seq));

    // A different key does not verify the first seal (line 11).
    let other = RsaSealer::generate().seal_key();
    let p = problem(&path, &[other]);
    assert_eq!((p.kind, p.line), (ProblemKind::BadSeal, 11));
    // Without a key the seals are only checked for their head.
    let r = verify_log(&path, &[]).expect("verify");
    assert!(r.intact());
    assert_eq!(r.seals_verified, 0);
    assert!(r.warnings.iter().any(|w| w.contains("not checked")));
}

#[tokio::test]
async fn explicit_seal_verifies_with_an_ecdsa_p256_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let kp = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).expect("EC key");
    let key =
        SealKey::from_spki_der(kp.public_key().as_der().expect("SPKI").as_ref()).expect("seal key");
    let log = AuditLog::open(&path, no_auto_seal(), Some(Arc::new(EcSealer(kp))))
        .await
        .expect("open");
    for i in 0..5 {
        log.append(entry(i)).await.expect("append");
    }
    let seal = log.seal(T0).await.expect("seal").expect("a seal record");
    assert_eq!(seal.seq, 6);
    assert_eq!(
        log.seal(T0).await.expect("seal"),
        None,
        "nothing new to seal"
    );
    log.append(entry(5)).await.expect("append");
    log.close(T0).await.expect("close");
    let report = verify_log(&path, &[key]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.seals, report.seals_verified), (2, 2));
}

#[tokio::test]
async fn a_failing_sealer_does_not_block_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let log = AuditLog::open(
        &path,
        AuditConfig {
            seal_every_records: Some(2),
            ..AuditConfig::default()
        },
        Some(Arc::new(BrokenSealer)),
    )
    .await
    .expect("open");
    for i in 0..6 {
        log.append(entry(i))
            .await
            .expect("append despite the sealer");
    }
    assert!(matches!(log.seal(T0).await, Err(AuditError::Seal(_))));
    assert!(matches!(log.close(T0).await, Err(AuditError::Seal(_))));
    assert!(matches!(
        log.append(entry(9)).await,
        Err(AuditError::Closed)
    ));
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact());
    assert_eq!((report.entries, report.seals), (6, 0));
}

#[tokio::test]
async fn write_failure_fails_the_append_and_every_later_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let fault = Arc::new(AtomicBool::new(false));
    let log = AuditLog::open_with_fault(&path, no_auto_seal(), None, fault.clone())
        .await
        .expect("open");
    let ok = log.append(entry(0)).await.expect("append");
    fault.store(true, Ordering::SeqCst);
    let e = log.append(entry(1)).await.expect_err("the write fails");
    assert!(matches!(e, AuditError::WriteFailed(_)), "{e}");
    assert!(e.is_durability_failure());
    fault.store(false, Ordering::SeqCst);
    let e = log.append(entry(2)).await.expect_err("the log stays down");
    assert!(matches!(e, AuditError::Unavailable(_)), "{e}");
    drop(log);
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact());
    assert_eq!(report.head_hash, ok.hash_hex());
}

/// After a write failure (a full disk), the log takes records again once writing works and
/// `recover` finds the file ending at the last durable record: the chain goes on from it.
#[tokio::test]
async fn a_failed_log_recovers_when_writing_works_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let fault = Arc::new(AtomicBool::new(false));
    let log = AuditLog::open_with_fault(&path, no_auto_seal(), None, fault.clone())
        .await
        .expect("open");
    log.append(entry(0)).await.expect("append");
    assert!(log.writable());
    assert_eq!(log.head_seq(), 1);
    fault.store(true, Ordering::SeqCst);
    log.append(entry(1)).await.expect_err("the write fails");
    assert!(!log.writable());
    // Still failing: recovery is refused and the log stays down.
    assert!(log.recover().await.is_err());
    assert!(!log.writable());
    fault.store(false, Ordering::SeqCst);
    log.recover().await.expect("recovers");
    assert!(log.writable());
    let r = log.append(entry(2)).await.expect("appends again");
    assert_eq!(r.seq, 2, "the failed record took no sequence number");
    assert_eq!(log.head_seq(), 2);
    drop(log);
    let report = verify_log(&path, &[]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.head_hash, r.hash_hex());
}

/// A log file changed behind a failed writer is not taken back: only a restart (which
/// verifies the whole file) can reopen it.
#[tokio::test]
async fn a_failed_log_whose_file_changed_does_not_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let fault = Arc::new(AtomicBool::new(false));
    let log = AuditLog::open_with_fault(&path, no_auto_seal(), None, fault.clone())
        .await
        .expect("open");
    log.append(entry(0)).await.expect("append");
    log.append(entry(1)).await.expect("append");
    fault.store(true, Ordering::SeqCst);
    log.append(entry(2)).await.expect_err("the write fails");
    fault.store(false, Ordering::SeqCst);
    // Someone cuts the last record away meanwhile.
    let text = std::fs::read_to_string(&path).expect("read");
    let first = text.lines().next().expect("a line");
    std::fs::write(&path, format!("{first}\n")).expect("write");
    let e = log.recover().await.expect_err("refused");
    assert!(e.to_string().contains("last durable record"), "{e}");
    assert!(!log.writable());
}

#[tokio::test]
async fn invalid_fingerprint_is_refused_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(log_path(&dir), no_auto_seal(), None)
        .await
        .expect("open");
    let mut e = entry(0);
    e.certificate_fingerprint = "not-hex".into();
    assert!(matches!(
        log.append(e).await,
        Err(AuditError::InvalidEntry(_))
    ));
    let mut e = entry(0);
    e.certificate_fingerprint.clear();
    assert_eq!(log.append(e).await.expect("no key yet").seq, 1);
}

#[tokio::test]
async fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let _log = AuditLog::open(&path, no_auto_seal(), None)
        .await
        .expect("open");
    assert!(matches!(
        AuditLog::open(&path, no_auto_seal(), None).await,
        Err(AuditError::Locked { .. })
    ));
}

#[tokio::test]
async fn close_releases_the_lock_before_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    for round in 0..20 {
        let log = AuditLog::open(&path, no_auto_seal(), None)
            .await
            .expect("open right after close");
        assert_eq!(log.opened().head_seq, round);
        log.append(entry(round)).await.expect("append");
        log.close(T0).await.expect("close");
        assert!(matches!(
            log.append(entry(0)).await,
            Err(AuditError::Closed)
        ));
    }
}

#[tokio::test]
async fn open_cuts_a_torn_last_line_and_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 4, None, None).await;
    let mut ls = lines(&path);
    let torn = ls[3][..40].to_vec();
    ls[3] = torn;
    write_lines(&path, &ls);
    let p = problem(&path, &[]);
    assert_eq!((p.kind, p.line), (ProblemKind::TornTail, 4));

    let log = AuditLog::open(&path, no_auto_seal(), None)
        .await
        .expect("open repairs a torn tail");
    assert_eq!(log.opened().truncated_bytes, 40);
    assert_eq!(log.opened().head_seq, 3);
    assert_eq!(log.append(entry(99)).await.expect("append").seq, 4);
    log.close(T0).await.expect("close");
    assert!(verify_log(&path, &[]).expect("verify").intact());
}

/// A damaged last line (complete, newline-terminated, not a record) is not a write cut short:
/// start-up stops with the line named, and the file is left as it is (issue 13).
#[tokio::test]
async fn open_refuses_an_unparseable_terminated_last_line_and_leaves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 2, None, None).await;
    let mut ls = lines(&path);
    ls.push(vec![0; 17].into_iter().chain([b'\n']).collect());
    write_lines(&path, &ls);
    let before = std::fs::read(&path).expect("read");
    match AuditLog::open(&path, no_auto_seal(), None).await {
        Err(AuditError::Broken {
            line, kind, detail, ..
        }) => {
            assert_eq!((line, kind), (3, ProblemKind::Malformed));
            assert!(detail.contains("ends in a newline"), "{detail}");
        }
        other => panic!("a damaged last line is refused: {other:?}"),
    }
    assert_eq!(std::fs::read(&path).expect("read"), before, "left as it is");
}

#[tokio::test]
async fn open_refuses_a_log_broken_before_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    write_log(&path, 5, None, None).await;
    let mut ls = lines(&path);
    ls[1] = edit(
        &ls[1],
        "\"document_type\":\"QD\"",
        "\"document_type\":\"CV\"",
    );
    write_lines(&path, &ls);
    let before = std::fs::read(&path).expect("read");
    match AuditLog::open(&path, no_auto_seal(), None).await {
        Err(AuditError::Broken { line, kind, .. }) => {
            assert_eq!((line, kind), (2, ProblemKind::EditedRecord));
        }
        other => panic!("expected Broken, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "left untouched"
    );
}

#[tokio::test]
async fn tampering_is_detected_with_the_first_broken_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let sealer = Arc::new(RsaSealer::generate());
    let key = sealer.seal_key();
    // Entries 1-5, seal 6, entries 7-11, seal 12, entries 13-14, seal 15.
    write_log(&path, 12, Some(sealer), Some(5)).await;
    let ls = lines(&path);
    assert_eq!(ls.len(), 15);
    assert!(
        verify_log(&path, std::slice::from_ref(&key))
            .expect("verify")
            .intact()
    );
    let copy = dir.path().join("copy.log");
    let check = |ls: &[Vec<u8>], kind, line| {
        write_lines(&copy, ls);
        let p = problem(&copy, std::slice::from_ref(&key));
        assert_eq!((p.kind, p.line), (kind, line), "{p:?}");
    };

    // An edited field.
    let mut t = ls.clone();
    t[2] = edit(
        &t[2],
        "\"organisation_id\":\"org-ubnd-hanoi\"",
        "\"organisation_id\":\"org-ubnd-hcm\"",
    );
    check(&t, ProblemKind::EditedRecord, 3);

    // An edited field with the record's own hash recomputed: the next
    // record's prev no longer matches.
    let mut t = ls.clone();
    let mut rec = AuditRecord::parse(&t[2]).expect("parse");
    if let Some(e) = rec.entry.as_mut() {
        e.decision = "signed".into();
        e.rules.clear();
    }
    t[2] = rec.rehash_line();
    check(&t, ProblemKind::ChainBroken, 4);

    // A removed record.
    let mut t = ls.clone();
    t.remove(3);
    check(&t, ProblemKind::RemovedRecord, 4);

    // Several removed records.
    let mut t = ls.clone();
    t.drain(3..6);
    let p = {
        write_lines(&copy, &t);
        problem(&copy, &[])
    };
    assert_eq!((p.kind, p.line), (ProblemKind::RemovedRecord, 4));
    assert!(
        p.detail.contains("records 4 to 6 are missing"),
        "{}",
        p.detail
    );

    // Two records swapped.
    let mut t = ls.clone();
    t.swap(7, 8);
    check(&t, ProblemKind::ReorderedRecord, 8);

    // A record repeated.
    let mut t = ls.clone();
    t.insert(5, t[4].clone());
    check(&t, ProblemKind::ReorderedRecord, 6);

    // An edited seal signature: the seal record's hash breaks.
    let mut t = ls.clone();
    let s = std::str::from_utf8(&t[5]).expect("utf-8");
    let i = s.find("\"sig\":\"").expect("sig") + 7;
    let flipped = if &s[i..=i] == "0" { "1" } else { "0" };
    t[5] = format!("{}{}{}", &s[..i], flipped, &s[i + 1..]).into_bytes();
    check(&t, ProblemKind::EditedRecord, 6);

    // A forged seal whose record hash is recomputed: the signature fails.
    let mut t = ls.clone();
    let mut rec = AuditRecord::parse(&t[14]).expect("parse");
    if let Some(s) = rec.seal.as_mut() {
        s.sig = "00".repeat(256);
    }
    t[14] = rec.rehash_line();
    check(&t, ProblemKind::BadSeal, 15);

    // The whole chain rewritten from line 2 on (hashes recomputed) with
    // the old seal kept: the seal's head no longer matches.
    let mut t = ls.clone();
    let mut prev = AuditRecord::parse(&t[0]).expect("parse").hash;
    for (n, l) in t.iter_mut().enumerate().skip(1) {
        let mut rec = AuditRecord::parse(l).expect("parse");
        if n == 1
            && let Some(e) = rec.entry.as_mut()
        {
            e.acting_person_id = "someone-else".into();
        }
        rec.prev = prev.clone();
        *l = rec.rehash_line();
        prev = rec.hash;
    }
    check(&t, ProblemKind::BadSeal, 6);

    // Truncated in the middle of a line.
    let mut t = ls.clone();
    t.truncate(9);
    let half = t[8].len() / 2;
    t[8].truncate(half);
    check(&t, ProblemKind::TornTail, 9);

    // Garbage in the middle of the file.
    let mut t = ls.clone();
    t[4] = b"{\"v\":1,\n".to_vec();
    check(&t, ProblemKind::Malformed, 5);

    // Non-canonical spacing (same content, same hash field).
    let mut t = ls.clone();
    t[0] = edit(&t[0], "{\"v\":2,", "{\"v\": 2,");
    check(&t, ProblemKind::EditedRecord, 1);
}

#[tokio::test]
async fn unsealed_tail_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = log_path(&dir);
    let sealer = Arc::new(RsaSealer::generate());
    let key = sealer.seal_key();
    let log = AuditLog::open(&path, no_auto_seal(), Some(sealer))
        .await
        .expect("open");
    for i in 0..3 {
        log.append(entry(i)).await.expect("append");
    }
    log.seal(T0).await.expect("seal");
    for i in 3..5 {
        log.append(entry(i)).await.expect("append");
    }
    drop(log);
    let report = verify_log(&path, &[key]).expect("verify");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.unsealed_records, 2);
    assert_eq!(report.last_seal_seq, Some(4));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("2 records after the last seal (seq 4)")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn empty_log_is_intact() {
    let report = verify_reader(&b""[..], &[]).expect("verify");
    assert!(report.intact());
    assert_eq!(report.records, 0);
    assert_eq!(report.head_hash, "0".repeat(64));
}

#[test]
fn seal_message_is_the_documented_string() {
    let head = [0xab; 32];
    assert_eq!(
        seal_message(41, &head),
        format!("kyso-audit-seal-v1:41:{}", "ab".repeat(32)).into_bytes()
    );
}

/// Anchors: every seal is published once durable; past `max_unanchored_seals` seals without
/// an anchor the log refuses signatures, and an anchor lets them through again.
#[tokio::test]
async fn seals_not_anchored_stop_signatures_until_anchored() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let log = AuditLog::open(
        &path,
        AuditConfig {
            seal_every_records: None,
            max_unanchored_seals: Some(2),
            ..AuditConfig::default()
        },
        Some(Arc::new(RsaSealer::generate())),
    )
    .await
    .unwrap();
    let seals = log.subscribe_seals();
    assert!(seals.borrow().is_none());
    assert!(log.ready_to_sign().is_ok());
    log.append(entry(1)).await.unwrap();
    let r1 = log
        .seal(datetime!(2026-01-01 00:00 UTC))
        .await
        .unwrap()
        .unwrap();
    let head = seals.borrow().clone().unwrap();
    assert_eq!(head.anchor.sequence, r1.seq);
    assert_eq!(head.anchor.head_hash, r1.hash_hex());
    assert_eq!(head.seals_made, 1);
    assert!(!head.seal.signature.is_empty());
    assert!(
        log.ready_to_sign().is_ok(),
        "one seal unanchored is allowed"
    );
    log.append(entry(2)).await.unwrap();
    log.seal(datetime!(2026-01-01 00:01 UTC)).await.unwrap();
    assert_eq!(log.unanchored_seals(), 2);
    let e = log.ready_to_sign().unwrap_err();
    assert!(matches!(e, AuditError::Unanchored { seals: 2 }), "{e}");
    // The anchor of the first seal is not enough; of the latest, it is.
    log.mark_anchored(1);
    assert!(log.ready_to_sign().is_ok());
    log.mark_anchored(2);
    assert_eq!(log.unanchored_seals(), 0);
    log.close(datetime!(2026-01-01 00:02 UTC)).await.unwrap();
}

/// The file against its anchors: every anchored head present with its hash; a file cut
/// back, another history, or no file at all is named.
#[tokio::test]
async fn anchors_are_checked_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    write_log(&path, 12, Some(Arc::new(RsaSealer::generate())), Some(4)).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let recs: Vec<AuditRecord> = text
        .lines()
        .map(|l| AuditRecord::parse(l.as_bytes()).unwrap())
        .collect();
    let anchors: Vec<Anchor> = recs
        .iter()
        .filter(|r| r.seal.is_some())
        .map(|r| Anchor {
            sequence: r.seq,
            head_hash: r.hash.clone(),
        })
        .collect();
    assert!(anchors.len() >= 2);
    assert_eq!(check_anchors(&path, &anchors).unwrap(), None);
    assert_eq!(check_anchors(&path, &[]).unwrap(), None);

    // Cut back to the first seal.
    let first = anchors[0].sequence as usize;
    let cut: String = text.lines().take(first).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &cut).unwrap();
    let m = check_anchors(&path, &anchors).unwrap().unwrap();
    assert_eq!(m.kind, AnchorMismatchKind::Behind);
    assert_eq!(m.anchor, anchors[1]);

    // Another history as long as the anchored one: the record is there, its hash is not.
    let mut other = cut.clone();
    let mut prev = recs[first - 1].hash.clone();
    for r in &recs[first..] {
        let mut r = r.clone();
        r.prev = prev;
        if let Some(e) = r.entry.as_mut() {
            e.reason = "rewritten".into();
        }
        other.push_str(std::str::from_utf8(&r.rehash_line()).unwrap());
        prev = r.hash.clone();
    }
    std::fs::write(&path, &other).unwrap();
    let m = check_anchors(&path, &anchors).unwrap().unwrap();
    assert_eq!(m.kind, AnchorMismatchKind::HashDiffers);
    assert_eq!(m.anchor, anchors[1]);

    std::fs::remove_file(&path).unwrap();
    let m = check_anchors(&path, &anchors).unwrap().unwrap();
    assert_eq!(m.kind, AnchorMismatchKind::FileMissing);
    assert_eq!(m.anchor, anchors[0]);
    assert_eq!(check_anchors(&path, &[]).unwrap(), None, "a first start");
}

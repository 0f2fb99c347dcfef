//! An audit log that holds (issue 13): the audit-seal key is a key of its own that no caller
//! can sign with, and the log's head is anchored in the registry at every seal, so that a log
//! cut back to a seal, deleted, or replaced by an older copy stops the signer at start-up and
//! is reported by `kyso audit verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_signer::audit::{
    AuditRecord, ProblemKind, SealKey, SealRecord, VerifyReport, seal_message, verify_log,
};
use kyso_tests::cluster::{AUDIT_SEAL, Cluster, LOG_ID};
use kyso_tests::hsm::workspace_bin;
use serde_json::Value;

/// The audit-seal key's certificate: what an auditor checks seals with.
fn audit_seal_key(c: &Cluster) -> SealKey {
    let pem = std::fs::read(c.pki.path(format!("leaves/{AUDIT_SEAL}.pem"))).unwrap();
    SealKey::from_certificate(&pem).unwrap()
}

fn records(path: &Path) -> Vec<AuditRecord> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|b| *b == b'\n')
        .map(|l| AuditRecord::parse(l).unwrap())
        .collect()
}

fn write_records(path: &Path, recs: &[AuditRecord]) {
    let bytes: Vec<u8> = recs.iter().flat_map(AuditRecord::to_line).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Signs a few documents, each with the Chairman's approval and the seal.
async fn sign_some(c: &Cluster, n: usize) {
    let mut client = c.client().await;
    for i in 0..n {
        let req = c.approved_issue(format!("document {i}").as_bytes()).await;
        client.sign_cms(req).await.expect("an issued document");
    }
}

/// `kyso-signer` with the cluster's configuration, expected to stop on its own (a refusal
/// at start-up): its exit code and what it printed. A signer that starts instead runs until
/// the timeout, and the test fails.
fn start_refused(c: &Cluster) -> (Option<i32>, String) {
    let cfg = c.dir.path().join("signer.toml");
    std::fs::write(&cfg, c.config()).unwrap();
    let mut cmd = Command::new(workspace_bin("kyso-signer"));
    cmd.arg("--config").arg(&cfg).env("RUST_LOG", "info");
    let (k, v) = c.p11.client_env();
    cmd.env(k, v);
    let out =
        tokio::task::block_in_place(|| kyso_tests::run(&mut cmd, None, Duration::from_secs(60)));
    (
        out.status.code(),
        format!("{}{}", out.stderr_str(), out.stdout_str()),
    )
}

/// `kyso audit verify --json` with the seal certificate and the registry's anchors.
fn audit_verify_with_anchors(c: &Cluster, log: &Path) -> (Option<i32>, Value) {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args(["audit", "verify", "--json"])
        .arg(log)
        .arg("--certificate")
        .arg(c.pki.path(format!("leaves/{AUDIT_SEAL}.pem")))
        .args(["--registry", &c.registry.url(), "--log-id", LOG_ID]);
    let out =
        tokio::task::block_in_place(|| kyso_tests::run(&mut cmd, None, Duration::from_secs(60)));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "kyso audit verify: {} {}",
            out.stdout_str(),
            out.stderr_str()
        )
    });
    (out.status.code(), v)
}

async fn latest_anchor(c: &Cluster) -> Option<reg::AuditAnchor> {
    c.registry
        .client()
        .await
        .get_latest_audit_anchor(reg::GetLatestAuditAnchorRequest {
            log_id: LOG_ID.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .anchor
}

/// A signature over `message` made through the signer's RPCs with a callable key, and the
/// algorithm a forged seal would name; `None` when the signer refused.
struct Attempt {
    how: String,
    alg_oid: &'static str,
    signature: Vec<u8>,
}

fn alg_oid(ec: bool, digest: &str) -> &'static str {
    match (ec, digest) {
        (true, "sha256") => "1.2.840.10045.4.3.2",
        (true, "sha384") => "1.2.840.10045.4.3.3",
        (true, _) => "1.2.840.10045.4.3.4",
        (false, "sha256") => "1.2.840.113549.1.1.11",
        (false, "sha384") => "1.2.840.113549.1.1.12",
        (false, _) => "1.2.840.113549.1.1.13",
    }
}

fn digest(alg: &str, message: &[u8]) -> Vec<u8> {
    let a = match alg {
        "sha256" => &aws_lc_rs::digest::SHA256,
        "sha384" => &aws_lc_rs::digest::SHA384,
        _ => &aws_lc_rs::digest::SHA512,
    };
    aws_lc_rs::digest::digest(a, message).as_ref().to_vec()
}

/// Every way a caller could ask for a signature over the seal message: each callable key
/// (as ListKeys names them), SignDigest with every digest algorithm and SignCms, under every
/// profile, with the person the profile needs. What the signer made is returned.
async fn every_signature_callers_can_get(c: &Cluster, message: &[u8]) -> (Vec<Attempt>, usize) {
    let mut client = c.client().await;
    let keys = client
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let names: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
    assert!(!names.iter().any(|n| n == AUDIT_SEAL), "{names:?}");
    assert!(names.len() >= 3, "{names:?}");
    let profiles = [
        pb::Profile::Approval,
        pb::Profile::Issue,
        pb::Profile::ScannedIssue,
        pb::Profile::Copy,
        pb::Profile::Appendix,
        pb::Profile::Comment,
    ];
    let mut made = Vec::new();
    let mut asked = 0;
    // The audit-seal key itself, by its name: not a key a caller can name.
    for name in names.iter().map(String::as_str).chain([AUDIT_SEAL]) {
        let ec = keys
            .iter()
            .find(|k| k.name == name)
            .is_some_and(|k| k.algorithm.starts_with("ecdsa"));
        for profile in profiles {
            for person in [&c.province.chairman, &c.province.clerk] {
                let ctx = c.ctx(profile, person);
                for d in ["sha256", "sha384", "sha512"] {
                    asked += 1;
                    if let Ok(r) = client
                        .sign_digest(pb::SignDigestRequest {
                            key: name.into(),
                            context: Some(ctx.clone()),
                            digest_algorithm: d.into(),
                            digest: digest(d, message),
                            approval: Vec::new(),
                            activation_token: String::new(),
                        })
                        .await
                    {
                        made.push(Attempt {
                            how: format!("SignDigest {name} {profile:?} {d}"),
                            alg_oid: alg_oid(ec, d),
                            signature: r.into_inner().signature,
                        });
                    }
                }
                // SignCms over the seal message itself; for ISSUE with the Chairman's
                // approval of it, so that the seal's own legal form is reached.
                let mut req = c.cms_request(name, ctx.clone(), message);
                if profile == pb::Profile::Issue {
                    req = c.approved_issue(message).await;
                    req.key = name.into();
                    req.context = Some(ctx.clone());
                }
                asked += 1;
                if let Ok(r) = client.sign_cms(req).await {
                    let cms = r.into_inner().cms;
                    let parsed = kyso_pki::cms::parse(&cms).unwrap();
                    let signature = parsed.signer(0).unwrap().signature.as_bytes().to_vec();
                    made.push(Attempt {
                        how: format!("SignCms {name} {profile:?}"),
                        alg_oid: alg_oid(ec, "sha256"),
                        signature,
                    });
                }
            }
        }
    }
    (made, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_seal_cannot_be_forged_through_any_key_a_caller_can_use() {
    let mut c = Cluster::start().await;
    sign_some(&c, 2).await;
    // A clean stop seals the log; the genuine log verifies with the audit-seal key.
    c.stop_signer();
    let genuine = c.dir.path().join("genuine.log");
    std::fs::copy(c.audit_path(), &genuine).unwrap();
    let key = audit_seal_key(&c);
    let report = verify_log(&genuine, std::slice::from_ref(&key)).unwrap();
    assert!(report.intact(), "{report:?}");
    assert!(report.seals_verified >= 1, "{report:?}");
    c.start_signer().await;

    // The forger rewrites the log: the caller of the first entry is changed, the chain is
    // hashed again, and a new seal over the rewritten head is wanted.
    let mut recs = records(&genuine);
    let last_seal = recs.iter().rposition(|r| r.seal.is_some()).unwrap();
    let seal_template = recs[last_seal].clone();
    recs.truncate(last_seal);
    let first_entry = recs.iter().position(|r| r.entry.is_some()).unwrap();
    recs[first_entry].entry.as_mut().unwrap().caller = "nobody".into();
    let mut prev = if first_entry == 0 {
        "0".repeat(64)
    } else {
        recs[first_entry - 1].hash.clone()
    };
    for r in &mut recs[first_entry..] {
        r.prev = prev.clone();
        r.rehash_line();
        prev = r.hash.clone();
    }
    let head: [u8; 32] = hex::decode(&prev).unwrap().try_into().unwrap();
    let through = recs.last().unwrap().seq;
    let message = seal_message(through, &head);

    let (made, asked) = every_signature_callers_can_get(&c, &message).await;
    // The personal key does make raw signatures (a PDF's byte ranges, signed elsewhere): the
    // forger gets signatures, and none of them is a seal.
    assert!(
        !made.is_empty(),
        "no signature was made in {asked} requests"
    );
    let template = seal_template.seal.as_ref().unwrap();
    // A log ending in a seal made here from its parts: with the genuine parts over the
    // genuine records it verifies, so what the forgeries below lack is only the key.
    let build = |body: &[AuditRecord], alg_oid: &str, sig: &str, cert_sha256: &str| {
        let last = body.last().unwrap();
        let mut seal = AuditRecord {
            seq: last.seq + 1,
            prev: last.hash.clone(),
            seal: Some(SealRecord {
                through: last.seq,
                head: last.hash.clone(),
                alg: template.alg.clone(),
                alg_oid: alg_oid.into(),
                key: template.key.clone(),
                cert_sha256: cert_sha256.into(),
                sig: sig.into(),
            }),
            ..seal_template.clone()
        };
        seal.rehash_line();
        let mut all = body.to_vec();
        all.push(seal);
        let path = c.dir.path().join("built.log");
        write_records(&path, &all);
        path
    };
    let rebuilt = build(
        &records(&genuine)[..last_seal],
        &template.alg_oid,
        &template.sig,
        &template.cert_sha256,
    );
    let report = verify_log(&rebuilt, std::slice::from_ref(&key)).unwrap();
    assert!(report.intact() && report.seals_verified >= 1, "{report:?}");
    let mut forged = rebuilt;
    for a in &made {
        for cert_sha256 in [template.cert_sha256.as_str(), ""] {
            forged = build(&recs, a.alg_oid, &hex::encode(&a.signature), cert_sha256);
            let report: VerifyReport = verify_log(&forged, std::slice::from_ref(&key)).unwrap();
            let problem = report
                .problem
                .as_ref()
                .unwrap_or_else(|| panic!("a seal forged through {} verifies: {report:?}", a.how));
            assert_eq!(problem.kind, ProblemKind::BadSeal, "{}: {report:?}", a.how);
            assert_eq!(problem.seq, Some(through + 1), "{}", a.how);
        }
    }
    // The command line says the same of the last forgery.
    let out = c.kyso_audit_verify(&forged);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("bad_seal"),
        "{}",
        out.stdout_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_whose_seal_key_a_caller_can_use_is_refused_before_binding() {
    let mut c = Cluster::start().await;
    c.kill_signer();
    let good = c.config();
    let cfg = c.dir.path().join("refused.toml");
    let run = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        let mut cmd = Command::new(workspace_bin("kyso-signer"));
        cmd.arg("--config").arg(&cfg);
        let (k, v) = c.p11.client_env();
        cmd.env(k, v);
        tokio::task::block_in_place(|| kyso_tests::run(&mut cmd, None, Duration::from_secs(60)))
    };
    // The old form, a [[keys]] name: refused with the way out.
    let legacy = good.replacen("[audit]\n", "[audit]\nseal_key = \"seal\"\n", 1);
    let out = run(&legacy);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("audit.seal_key"),
        "{}",
        out.stderr_str()
    );
    assert!(
        out.stderr_str().contains("[audit.seal]"),
        "{}",
        out.stderr_str()
    );

    // A seal key that is the organisation's seal by name, by HSM id and by certificate:
    // every overlap reported at once, nothing bound.
    let seal_pem = c.pki.path("leaves/seal.pem");
    let audit_pem = c.pki.path(format!("leaves/{AUDIT_SEAL}.pem"));
    let overlapping = good.replacen(
        &format!("[audit.seal]\ncertificate = {audit_pem:?}\nlabel = \"{AUDIT_SEAL}\"\n"),
        &format!("[audit.seal]\nname = \"seal\"\ncertificate = {seal_pem:?}\nid = \"01\"\n"),
        1,
    );
    assert_ne!(overlapping, good);
    let out = run(&overlapping);
    let err = out.stderr_str();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("audit.seal.name"), "{err}");
    assert!(err.contains("audit.seal.id"), "{err}");
    assert!(err.contains("audit.seal.certificate"), "{err}");
    assert!(!err.contains("serving"), "{err}");
    // The same key by its HSM label.
    let by_label = good.replacen(
        &format!("label = \"{AUDIT_SEAL}\"\n"),
        "label = \"chairman\"\n",
        1,
    );
    let by_label = by_label.replacen(
        "name = \"chairman\"\n",
        "name = \"chairman\"\nlabel = \"chairman\"\n",
        1,
    );
    let out = run(&by_label);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("audit.seal.label"),
        "{}",
        out.stderr_str()
    );
}

/// Replaces the live log with `with` (None: deletes it), expects the signer to refuse to
/// start naming `why`, and `kyso audit verify` to report the anchor it does not hold.
fn refused_at_start(c: &Cluster, with: Option<&Path>, why: &str, kind: &str) {
    match with {
        Some(p) => {
            std::fs::copy(p, c.audit_path()).unwrap();
        }
        None => {
            let _ = std::fs::remove_file(c.audit_path());
        }
    }
    let (code, text) = start_refused(c);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("refusing to start"), "{text}");
    assert!(text.contains(why), "{text}");
    assert!(text.contains("docs/OPERATIONS.md"), "{text}");
    if with.is_none() {
        // The refusal did not create a new log in its place.
        assert!(!c.audit_path().exists());
    }
    let (code, v) = audit_verify_with_anchors(c, &c.audit_path());
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["anchors"]["mismatch"]["kind"], kind, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_behind_its_anchor_stops_the_signer_at_start_and_is_reported() {
    let mut c = Cluster::start().await;
    sign_some(&c, 2).await;
    c.stop_signer();
    // The first seal is anchored: the registry holds the head of the log.
    let first: PathBuf = c.dir.path().join("first.log");
    std::fs::copy(c.audit_path(), &first).unwrap();
    let head = records(&first).pop().unwrap();
    assert!(head.seal.is_some());
    let a1 = latest_anchor(&c).await.expect("the seal is anchored");
    assert_eq!(
        (a1.sequence, a1.head_hash.as_str()),
        (head.seq, head.hash.as_str())
    );
    assert!(!a1.seal_signature.is_empty());

    // More signatures and another seal: the anchor moves on.
    c.start_signer().await;
    sign_some(&c, 2).await;
    c.stop_signer();
    let current = c.dir.path().join("current.log");
    std::fs::copy(c.audit_path(), &current).unwrap();
    let a2 = latest_anchor(&c).await.unwrap();
    assert!(a2.sequence > a1.sequence);
    let (code, v) = audit_verify_with_anchors(&c, &current);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["anchors"]["anchors"], 2, "{v}");

    // Cut back to the first seal: a valid log on its own, behind its anchor.
    refused_at_start(&c, Some(&first), "behind its last anchor", "behind");
    // An older copy that was written on: as long as the anchored log, another history.
    let mut older = records(&first);
    let mut prev = older.last().unwrap().hash.clone();
    let template = older.iter().find(|r| r.entry.is_some()).unwrap().clone();
    while older.last().unwrap().seq < a2.sequence {
        let mut r = AuditRecord {
            seq: older.last().unwrap().seq + 1,
            prev: prev.clone(),
            ..template.clone()
        };
        r.rehash_line();
        prev = r.hash.clone();
        older.push(r);
    }
    let restored = c.dir.path().join("restored.log");
    write_records(&restored, &older);
    assert!(verify_log(&restored, &[]).unwrap().intact());
    refused_at_start(
        &c,
        Some(&restored),
        "anchored record differs",
        "hash_differs",
    );
    // Deleted: not silently replaced by a new log.
    refused_at_start(&c, None, "file missing", "file_missing");

    // The log put back as it was: the signer starts and signs again.
    std::fs::copy(&current, c.audit_path()).unwrap();
    c.start_signer().await;
    sign_some(&c, 1).await;

    // The registry unreachable at start: the signer does not start on an unchecked log.
    c.stop_signer();
    c.registry.stop().await;
    let (code, text) = start_refused(&c);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cannot be read from the registry"), "{text}");
}

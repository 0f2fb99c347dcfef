//! End-to-end tests of the signer against real components: SoftHSM2 tokens served by
//! `p11-kit server`, the `kyso-signer` binary loading `p11-kit-client.so`, the registry
//! (in-process, SQLite), the test PKI's `openssl ocsp` responder and CRLs over HTTP for the
//! signer's check of its own certificate (N1). Outputs are verified by `openssl cms -verify`
//! and by kyso's verifier; the audit log by `kyso audit verify`. The cluster is
//! `kyso_tests::cluster::Cluster`.
//! Build the binaries first (`cargo build --workspace --bins`; the test script does).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;
use kyso_tests::cluster::Cluster;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::mtls::Mtls;
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

pub(crate) fn status_rules(s: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    s.get_details_error_info()
        .and_then(|i| i.metadata.get("rules").cloned())
        .unwrap_or_default()
}

pub(crate) fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The status code of `GET path` on a plain HTTP/1.0 endpoint.
pub(crate) async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_then_seal_verify_with_openssl_and_kyso_and_the_audit_log_holds_both() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    let doc = "QUYẾT ĐỊNH số 01/QĐ-UBND về việc ban hành quy chế.\n".as_bytes();

    let personal = client.sign_cms(c.approval(doc)).await.unwrap().into_inner();
    let who = personal.signatory.clone().unwrap();
    assert_eq!(who.holder_name, "Nguyễn Văn An");
    assert_eq!(who.title, "Chủ tịch");
    c.openssl_verify(&personal.cms, None);
    let report = c.kyso_verify(&personal.cms, None);
    assert_eq!(report["indication"], json!("TOTAL_PASSED"), "{report}");
    // The legal form travels in the signature as its ETSI commitment type (issue 13).
    assert_eq!(
        report["signatures"][0]["commitment_type"],
        json!("proof-of-approval"),
        "{report}"
    );

    let mut detached = c.issue(doc);
    detached.detached = true;
    detached.approval = personal.cms.clone();
    let seal = client.sign_cms(detached).await.unwrap().into_inner();
    c.openssl_verify(&seal.cms, Some(doc));
    let report = c.kyso_verify(&seal.cms, Some(doc));
    assert_eq!(report["indication"], json!("TOTAL_PASSED"), "{report}");
    assert_eq!(
        report["signatures"][0]["commitment_type"],
        json!("proof-of-origin"),
        "{report}"
    );

    // Digest only: the document never leaves the caller.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, doc);
    let mut by_digest = c.issue(doc);
    by_digest.approval = personal.cms.clone();
    by_digest.payload = Some(pb::sign_cms_request::Payload::Digest(
        digest.as_ref().to_vec(),
    ));
    let third = client.sign_cms(by_digest).await.unwrap().into_inner();
    c.openssl_verify(&third.cms, Some(doc));

    // Every signature has its durable record, with the receipt's hash.
    let a = personal.audit.unwrap();
    let b = seal.audit.unwrap();
    assert!(b.sequence > a.sequence);
    let lines = audit_lines(&c.audit_path());
    assert!(
        lines.iter().any(|l| l["hash"] == json!(b.record_hash)),
        "the receipt's record is in the log"
    );
    c.stop_signer();
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(
        out.success(),
        "kyso audit verify: {} {}",
        out.stdout_str(),
        out.stderr_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classified_document_is_refused_and_the_refusal_recorded_A7() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let mut req = c.approval(b"mat");
    if let Some(d) = req.context.as_mut().and_then(|c| c.document.as_mut()) {
        d.classification = pb::Classification::Secret as i32;
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A7");
    let lines = audit_lines(&c.audit_path());
    assert!(
        lines.iter().any(|l| l.to_string().contains("A7")),
        "the refusal is in the audit log: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_A1_A5_W2_and_the_other_organisation_are_refused_with_their_ids() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    // A1: the chairman's personal key ordered by someone else.
    let req = c.cms_request(
        "chairman",
        c.ctx(pb::Profile::Approval, &c.province.deputy),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A1"), "{err:?}");
    // A5: the seal used by someone who is not its custodian.
    let req = c.cms_request(
        "seal",
        c.ctx(pb::Profile::Issue, &c.province.chairman),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A5"), "{err:?}");
    // W2: the seal on a document dated another day.
    let mut req = c.issue(b"x");
    if let Some(d) = req.context.as_mut().and_then(|c| c.document.as_mut()) {
        d.issue_date = "2020-01-01".into();
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("W2"), "{err:?}");
    // The seal of one organisation for another organisation's document.
    let mut req = c.issue(b"x");
    if let Some(ctx) = req.context.as_mut() {
        ctx.organisation_id = c.province.other_org.clone();
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(!status_rules(&err).is_empty(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_A2_A3_A4_are_refused_by_the_registry_with_their_ids() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    // A2: signing on behalf (KT.) without a delegation.
    let mut ctx = c.ctx(pb::Profile::Approval, &c.province.chairman);
    ctx.mode = pb::SigningMode::Kt as i32;
    let err = client
        .sign_cms(c.cms_request("chairman", ctx, b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A2"), "{err:?}");
    // A3: a document type the Chairman's title was not granted.
    let mut ctx = c.ctx(pb::Profile::Approval, &c.province.chairman);
    if let Some(d) = ctx.document.as_mut() {
        d.document_type = "CV".into();
    }
    let err = client
        .sign_cms(c.cms_request("chairman", ctx, b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A3"), "{err:?}");
    // A4: the seal for a use the organisation certificate was not granted (a copy).
    let ctx = c.ctx(pb::Profile::Copy, &c.province.clerk);
    let err = client
        .sign_cms(c.cms_request("seal", ctx, b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A4"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_needs_the_competent_persons_valid_approval_of_the_same_document_A6() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    // No approval at all.
    let err = client.sign_cms(c.issue(b"doc")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A6");
    // The Chairman's approval of another document.
    let other = client
        .sign_cms(c.approval(b"other"))
        .await
        .unwrap()
        .into_inner();
    let mut req = c.issue(b"doc");
    req.approval = other.cms;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(status_rules(&err), "A6", "{err:?}");
    // An approval by the seal itself is not a person's approval (an APPENDIX of a registered
    // outgoing document, D5, the seal's only form without an approval).
    c.register_document(&c.province.ubnd, "OUTGOING", "01/QĐ-UBND", &"0f".repeat(32))
        .await;
    let mut by_seal = c.cms_request(
        "seal",
        c.ctx(pb::Profile::Appendix, &c.province.clerk),
        b"doc",
    );
    by_seal.detached = true;
    let seal_only = client.sign_cms(by_seal).await.unwrap().into_inner();
    let mut req = c.issue(b"doc");
    req.detached = true;
    req.approval = seal_only.cms;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(status_rules(&err), "A6", "{err:?}");
    // Garbage.
    let mut req = c.issue(b"doc");
    req.approval = b"not a CMS".to_vec();
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(status_rules(&err), "A6", "{err:?}");
    // The real thing: detached approval, detached seal.
    let mut approval = c.approval(b"doc");
    approval.detached = true;
    let approval = client.sign_cms(approval).await.unwrap().into_inner();
    let mut req = c.issue(b"doc");
    req.detached = true;
    req.approval = approval.cms;
    client.sign_cms(req).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_invalid_arguments_and_change_nothing() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let before = audit_lines(&c.audit_path()).len();
    // Unknown key.
    let err = client
        .sign_cms(c.cms_request(
            "nope",
            c.ctx(pb::Profile::Approval, &c.province.chairman),
            b"x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // A digest of the wrong length.
    let mut req = c.issue(b"x");
    req.payload = Some(pb::sign_cms_request::Payload::Digest(vec![0; 20]));
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // No context.
    let mut req = c.issue(b"x");
    req.context = None;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // An unknown digest algorithm.
    let mut req = c.issue(b"x");
    req.digest_algorithm = "md5".into();
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // SignDigest with a digest of the wrong length.
    let err = client
        .sign_digest(pb::SignDigestRequest {
            key: "seal".into(),
            context: Some(c.ctx(pb::Profile::Issue, &c.province.clerk)),
            digest_algorithm: "sha256".into(),
            digest: vec![1; 31],
            approval: Vec::new(),
            activation_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        audit_lines(&c.audit_path()).len(),
        before,
        "nothing recorded for malformed requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_signer_certificate_is_refused_before_signing_N1() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let req = c.cms_request(
        "old-seal",
        c.ctx(pb::Profile::Issue, &c.province.clerk),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("N1"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_refuses_every_signature_fail_closed() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    client.sign_cms(c.approval(b"ok")).await.unwrap();
    c.registry.stop().await;
    let err = client.sign_cms(c.approval(b"no")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("registry"), "{err:?}");
}

/// The registry keeps answering from memory only while it is caught up with its database
/// within its staleness bound (1 s): with the database gone, it answers UNAVAILABLE and the
/// signer refuses to sign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_database_gone_refuses_signatures_within_the_staleness_bound() {
    let pg = tokio::task::spawn_blocking(kyso_tests::pg::PgCluster::start)
        .await
        .unwrap();
    let c = Cluster::start_with_registry_database(&pg.url).await;
    let mut client = c.client().await;
    client.sign_cms(c.approval(b"ok")).await.unwrap();
    tokio::task::block_in_place(|| pg.stop());
    let gone = Instant::now();
    let err = loop {
        match client.sign_cms(c.approval(b"no")).await {
            Ok(_) => assert!(
                gone.elapsed() < Duration::from_secs(3),
                "still signing {:?} after the database went away",
                gone.elapsed()
            ),
            Err(e) => break e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        gone.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        gone.elapsed()
    );
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("registry"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_digest_gives_a_signature_openssl_verifies() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let doc = b"a PDF's signed byte ranges";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, doc);
    let r = client
        .sign_digest(pb::SignDigestRequest {
            // A personal key: the seal makes no raw signatures (A6, `side_doors`).
            key: "chairman".into(),
            context: Some(c.ctx(pb::Profile::Approval, &c.province.chairman)),
            digest_algorithm: "sha256".into(),
            digest: digest.as_ref().to_vec(),
            approval: Vec::new(),
            activation_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.signature_algorithm, "ecdsa-sha256");
    let dir = c.dir.path();
    std::fs::write(dir.join("doc"), doc).unwrap();
    std::fs::write(dir.join("doc.sig"), &r.signature).unwrap();
    let pubkey = c.pki.openssl([
        "x509",
        "-in",
        c.pki.path("leaves/chairman.pem").to_str().unwrap(),
        "-pubkey",
        "-noout",
    ]);
    std::fs::write(dir.join("chairman.pub"), &pubkey.stdout).unwrap();
    let out = c.pki.openssl([
        "dgst",
        "-sha256",
        "-verify",
        dir.join("chairman.pub").to_str().unwrap(),
        "-signature",
        dir.join("doc.sig").to_str().unwrap(),
        dir.join("doc").to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", out.stderr_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_shows_certificates_and_slot_health() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let keys = client
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["chairman", "old-seal", "seal"]);
    let chairman = &keys[0];
    assert_eq!(chairman.algorithm, "ecdsa-sha256");
    assert!(chairman.servable);
    assert_eq!(chairman.slots.len(), 1);
    assert!(chairman.slots[0].up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p11kit_server_killed_fails_fast_flips_health_and_recovers_without_restart() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    client
        .sign_cms(c.approved_issue(b"before").await)
        .await
        .unwrap();
    c.wait_health(ServingStatus::Serving, Duration::from_secs(5))
        .await;

    let during = c.approved_issue(b"during").await;
    c.p11.kill();
    let started = Instant::now();
    let err = client.sign_cms(during).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    c.wait_health(ServingStatus::NotServing, Duration::from_secs(10))
        .await;
    // Kubernetes sees the same through the metrics port (its probes cannot speak TLS).
    let metrics = c.metrics_addr().expect("metrics address in the log");
    assert_eq!(http_status(metrics, "/readyz").await, 503);
    assert_eq!(http_status(metrics, "/healthz").await, 200);

    c.p11.restart();
    c.wait_health(ServingStatus::Serving, Duration::from_secs(30))
        .await;
    assert_eq!(http_status(metrics, "/readyz").await, 200);
    let r = client
        .sign_cms(c.approved_issue(b"after").await)
        .await
        .unwrap()
        .into_inner();
    c.openssl_verify(&r.cms, None);
    // The same process signed before and after: no restart.
    assert!(c.signer.as_mut().unwrap().try_wait().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_killed_mid_load_leaves_a_log_that_verifies_and_holds_every_returned_signature() {
    let mut c = Cluster::start().await;
    let url = format!("http://{}", c.addr);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let req = c.approved_issue(format!("load {i}").as_bytes()).await;
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = match SignerClient::connect(url).await {
                Ok(c) => c,
                Err(_) => return Vec::new(),
            };
            let mut got = Vec::new();
            for _ in 0..200 {
                match client.sign_cms(req.clone()).await {
                    Ok(r) => got.push(r.into_inner().audit.unwrap().record_hash),
                    Err(_) => break,
                }
            }
            got
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kill_signer();
    let mut returned = Vec::new();
    for t in tasks {
        returned.extend(t.await.unwrap());
    }
    assert!(
        !returned.is_empty(),
        "some signatures were made before the kill"
    );
    // Restart: the log is reopened (a torn last line, never acknowledged, is cut).
    c.start_signer().await;
    c.stop_signer();
    let lines = audit_lines(&c.audit_path());
    for h in &returned {
        assert!(
            lines.iter().any(|l| l["hash"] == json!(h)),
            "a returned signature has no record: {h}"
        );
    }
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(
        out.success(),
        "kyso audit verify: {} {}",
        out.stdout_str(),
        out.stderr_str()
    );
}

/// Signatures the registry's R2 report counts, over every managing agency.
async fn reported_signatures(c: &Cluster) -> (i64, bool) {
    use kyso_proto::registry::v1 as reg;
    let mut client = reg::registry_client::RegistryClient::connect(c.registry.url())
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = client
        .report(reg::ReportRequest {
            from: Some(prost_types::Timestamp {
                seconds: now - 86_400 * 370,
                nanos: 0,
            }),
            to: Some(prost_types::Timestamp {
                seconds: now + 86_400,
                nanos: 0,
            }),
            granularity: reg::Granularity::Year as i32,
        })
        .await
        .unwrap()
        .into_inner();
    (
        r.rows.iter().map(|x| x.signatures).sum(),
        r.signatures_counted,
    )
}

/// R2: the signer counts its signatures from the audit log and reports them to the
/// registry in batches. A SIGKILL between the registry's commit and the cursor's move, or
/// in the middle of a batch, must neither lose nor double a signature: the registry's
/// count ends equal to the signed records of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_reach_the_registry_report_exactly_once_across_a_crash_R2() {
    let mut c = Cluster::start().await;
    let url = format!("http://{}", c.addr);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let req = c.approved_issue(format!("usage {i}").as_bytes()).await;
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut client) = SignerClient::connect(url).await else {
                return;
            };
            for _ in 0..500 {
                if client.sign_cms(req.clone()).await.is_err() {
                    break;
                }
            }
        }));
    }
    // Long enough for a report round or two to run under load before the kill.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    c.kill_signer();
    for t in tasks {
        t.await.unwrap();
    }
    c.start_signer().await;
    let audit_path = c.audit_path();
    let signed = || {
        audit_lines(&audit_path)
            .iter()
            .filter(|l| l["entry"]["decision"] == json!("signed"))
            .count() as i64
    };
    let expected = signed();
    assert!(expected > 4, "signatures were made before the kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = reported_signatures(&c).await;
    while got.0 != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        got = reported_signatures(&c).await;
    }
    assert_eq!(
        got,
        (expected, true),
        "registry count vs signed audit records"
    );
    // A few more rounds change nothing (no batch is counted twice).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(reported_signatures(&c).await.0, expected);
    // A graceful stop reports what came after the last round.
    let mut client = c.client().await;
    let req = c.approved_issue(b"after the restart").await;
    client.sign_cms(req).await.unwrap();
    c.stop_signer();
    assert_eq!(reported_signatures(&c).await.0, signed());
    assert_eq!(signed(), expected + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_lists_every_problem_and_exits_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
listen = "127.0.0.1:1"
[[modules]]
name = "m"
path = "/nonexistent/module.so"
[[slots]]
name = "s"
module = "other"
token_label = "t"
[[keys]]
name = "k"
certificate = "/nonexistent/cert.pem"
slots = ["missing"]
"#,
    )
    .unwrap();
    let mut cmd = Command::new(workspace_bin("kyso-signer"));
    cmd.arg("--config").arg(&cfg);
    let out = kyso_tests::run(&mut cmd, None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr_str());
    let err = out.stderr_str();
    for needle in [
        "modules[0].path",
        "slots[0].module",
        "slots[0]: give exactly one of pin_file and pin_env",
        "keys[0].slots",
        "keys[0].certificate",
        "trust.trust_anchors",
        "tls",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
}

// ------------------------------------------------------------------ mTLS callers

/// A throwaway TLS CA, the signer's server certificate (127.0.0.1) and client certificates;
/// returns the files (each client's SHA-256 fingerprint: [`Mtls::fingerprint`]).
pub(crate) fn make_tls(names: &[&str]) -> Mtls {
    let subjects: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), format!("/CN={n}")))
        .collect();
    let clients: Vec<(&str, &str)> = subjects
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    Mtls::generate(&clients)
}

/// The signer's `[tls]` settings for the files of [`make_tls`] and two callers: the
/// People's Committee's document system "dms-ubnd" (client certificate "dms") and
/// "dms-other", bound to another organisation.
pub(crate) fn callers_config(tls: &Mtls) -> String {
    let d = tls.path();
    format!(
        r#"
[tls]
cert = {cert:?}
key = {key:?}
client_ca = {ca:?}

[[callers]]
name = "dms-ubnd"
fingerprint = "{dms}"

[[callers]]
name = "dms-other"
fingerprint = "{other}"
organisations = ["some-other-organisation"]
"#,
        cert = d.join("server.pem"),
        key = d.join("server.key"),
        ca = d.join("ca.pem"),
        dms = tls.fingerprint("dms"),
        other = tls.fingerprint("dms-other"),
    )
}

/// Lets "dms-ubnd" sign on behalf of the People's Committee's leaders, as a deployment may
/// say (A1), and restarts the signer with it.
pub(crate) async fn let_dms_sign_on_behalf(c: &mut Cluster) {
    c.extra_config = c.extra_config.replace(
        "name = \"dms-ubnd\"\n",
        &format!(
            "name = \"dms-ubnd\"\nsign_on_behalf = [{:?}]\n",
            c.province.ubnd
        ),
    );
    c.kill_signer();
    c.start_signer().await;
}

/// A TLS channel to the signer at `addr`, with the client certificate `client` of `tls_dir`
/// (none: no client certificate).
pub(crate) async fn mtls_channel(
    addr: std::net::SocketAddr,
    tls_dir: &Path,
    client: Option<&str>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(tls_dir.join("ca.pem")).unwrap(),
        ))
        .domain_name("localhost");
    if let Some(name) = client {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(tls_dir.join(format!("{name}.pem"))).unwrap(),
            std::fs::read(tls_dir.join(format!("{name}.key"))).unwrap(),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

async fn mtls_client(
    c: &Cluster,
    tls_dir: &Path,
    client: Option<&str>,
) -> Result<SignerClient<tonic::transport::Channel>, tonic::transport::Error> {
    Ok(SignerClient::new(
        mtls_channel(c.addr, tls_dir, client).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_identified_by_client_certificate_and_bound_to_their_organisations() {
    let tls = make_tls(&["dms", "dms-other", "stranger"]);
    let d = tls.path();
    let c = Cluster::start_with(&callers_config(&tls)).await;
    // No client certificate: the TLS handshake or the call fails.
    if let Ok(mut anon) = mtls_client(&c, d, None).await {
        assert!(anon.sign_cms(c.approval(b"x")).await.is_err());
    }
    // A certificate of the right CA that is not a configured caller.
    let mut stranger = mtls_client(&c, d, Some("stranger")).await.unwrap();
    let err = stranger.sign_cms(c.approval(b"x")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "caller");
    // A caller acting for another organisation.
    let mut other = mtls_client(&c, d, Some("dms-other")).await.unwrap();
    let err = other.sign_cms(c.approval(b"x")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "caller");
    // The organisation's document system: the Chairman's signature needs his consent (A1)...
    let mut dms = mtls_client(&c, d, Some("dms")).await.unwrap();
    let err = dms.sign_cms(c.approval(b"x")).await.unwrap_err();
    assert_eq!(status_rules(&err), "A1", "{err:?}");
    let token = dms
        .authorize_signature(pb::AuthorizeSignatureRequest {
            key: "chairman".into(),
            digest_algorithm: "sha256".into(),
            digests: vec![kyso_pki::crypto::sha256(b"x").to_vec()],
            otp: kyso_tests::cluster::totp_code(&c.chairman_otp, kyso_tests::cluster::totp_step()),
        })
        .await
        .unwrap()
        .into_inner()
        .activation_token;
    let mut req = c.approval(b"x");
    req.activation_token = token;
    // ...then it is signed, and the caller and the factor are named in the audit record.
    let r = dms.sign_cms(req).await.unwrap().into_inner();
    let hash = r.audit.unwrap().record_hash;
    let lines = audit_lines(&c.audit_path());
    let rec = lines.iter().find(|l| l["hash"] == json!(hash)).unwrap();
    assert_eq!(rec["entry"]["caller"], json!("dms-ubnd"), "{rec}");
    assert_eq!(rec["entry"]["factor"], json!("totp"), "{rec}");

    // A deployment that lets this document system sign on behalf of the People's
    // Committee's leaders says so for that organisation: no code, marked `on_behalf` (A1).
    let mut c = c;
    let_dms_sign_on_behalf(&mut c).await;
    let mut dms = mtls_client(&c, d, Some("dms")).await.unwrap();
    let r = dms.sign_cms(c.approval(b"y")).await.unwrap().into_inner();
    let hash = r.audit.unwrap().record_hash;
    let lines = audit_lines(&c.audit_path());
    let rec = lines.iter().find(|l| l["hash"] == json!(hash)).unwrap();
    assert_eq!(rec["entry"]["factor"], json!("on_behalf"), "{rec}");
}

//! Archive care over the signer's document store (R1, D7, N3): `kyso ltv extend --store`
//! (the real CLI binary) drives `ListStored` / `ExtendStored` as the archive operator; the
//! signer raises its stored PDFs at B-T to B-LTA with a real TSA (`openssl ts -reply`), keeps
//! each result as the original's current version, records `extended` in the audit log; an
//! interrupted run resumes from its state file, a second run finds everything up to date; a
//! caller without the archive role is refused with `R1`.

use std::path::Path;
use std::process::Command;

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_tests::TestTsa;
use kyso_tests::cluster::Cluster;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::mtls::Mtls;
use kyso_validation::pdf::{PdfVerifyOptions, SignatureKind};
use kyso_validation::report::{Indication, RevocationPolicy, SignatureLevel};
use serde_json::Value;
use tonic::Code;

use crate::sign::{
    audit_lines, callers_config, let_dms_sign_on_behalf, make_tls, mtls_channel, status_rules,
};

/// The signer with the test TSA (its own root), documents issued at B-T, the callers of
/// [`callers_config`] and the archive operator "archive" (client certificate "archive").
async fn cluster(tsa: &TestTsa, tls: &Mtls, budget_ms: u64) -> Cluster {
    let mut c = Cluster::start_with(&format!(
        "\n[tsa]\nurl = {:?}\nbudget_ms = {budget_ms}\ntimeout_ms = 5000\nretries = 1\ntsa_roots = {:?}\n\
         \n[levels]\n[levels.profiles]\nAPPROVAL = \"b-t\"\nISSUE = \"b-t\"\n{}\n[[callers]]\nname = \"archive\"\n\
         fingerprint = \"{}\"\narchive = true\n",
        tsa.url(),
        tsa.root_pem(),
        callers_config(tls),
        tls.fingerprint("archive"),
    ))
    .await;
    // The document system issues (the seal and the approval on the leaders' behalf, A1).
    let_dms_sign_on_behalf(&mut c).await;
    c
}

/// `kyso doc issue` over TLS as the document system "dms-ubnd".
fn issue(c: &Cluster, tls: &Path, number: &str) {
    let dir = c.dir.path();
    let input = dir.join(format!("draft-{}.pdf", number.replace('/', "-")));
    std::fs::write(&input, crate::pdf::sample_pdf()).unwrap();
    let out_file = input.with_extension("issued.pdf");
    let out = Command::new(workspace_bin("kyso"))
        .args(["doc", "issue", input.to_str().unwrap()])
        .args(["--server", &format!("https://{}", c.addr)])
        .args(["--tls-ca", tls.join("ca.pem").to_str().unwrap()])
        .args(["--tls-cert", tls.join("dms.pem").to_str().unwrap()])
        .args(["--tls-key", tls.join("dms.key").to_str().unwrap()])
        .args(["--out", out_file.to_str().unwrap()])
        .args(["--organisation", &c.province.ubnd])
        .args(["--document-type", "QD", "--number", number])
        .args(["--issue-date", &Cluster::today()])
        .args([
            "--approval-key",
            "chairman",
            "--approver",
            &c.province.chairman,
        ])
        .args(["--approval-rect", "1,100,100,300,200"])
        .args(["--seal-key", "seal", "--custodian", &c.province.clerk])
        .args(["--recipients", "Sở Tài chính"])
        .output()
        .unwrap();
    assert!(out.status.success(), "kyso doc issue: {out:?}");
}

/// `kyso ltv extend --store` as `client` (its mTLS certificate); exit code and JSON report.
fn ltv_store(c: &Cluster, tls: &Path, client: &str, state: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(workspace_bin("kyso"))
        .args(["ltv", "extend", "--store"])
        .args(["--server", &format!("https://{}", c.addr)])
        .args(["--tls-ca", tls.join("ca.pem").to_str().unwrap()])
        .args([
            "--tls-cert",
            tls.join(format!("{client}.pem")).to_str().unwrap(),
        ])
        .args([
            "--tls-key",
            tls.join(format!("{client}.key")).to_str().unwrap(),
        ])
        .args(["--state", state.to_str().unwrap(), "--json", "-"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::String(format!(
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    )));
    (out.status.code().unwrap_or(-1), v)
}

async fn documents(
    c: &Cluster,
    tls: &Path,
    client: Option<&str>,
) -> DocumentsClient<tonic::transport::Channel> {
    DocumentsClient::new(mtls_channel(c.addr, tls, client).await.unwrap())
        .max_decoding_message_size(64 << 20)
}

/// The in-process verifier on the cluster's PKI with the TSA's root as one more anchor.
async fn verify_levels(c: &Cluster, tsa: &TestTsa, pdf: &[u8]) -> Vec<SignatureLevel> {
    let mut cfg = kyso_tests::trust_config(&c.servers);
    cfg.trust_anchors.push(tsa.root_pem());
    let options = PdfVerifyOptions {
        // The test TSA publishes no revocation status for its certificate.
        policy: Some(RevocationPolicy::SoftFail),
        ..PdfVerifyOptions::default()
    };
    let r = kyso_tests::verifier_from(&cfg)
        .verify_pdf(pdf, &options, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    r.signatures
        .iter()
        .filter(|s| s.kind == SignatureKind::Signature)
        .map(|s| s.report.level)
        .collect()
}

/// R1, D7, N3: two documents issued at B-T; `kyso ltv extend --store --force --limit 1`
/// extends one, the next run resumes with the other (the first skipped as finished); both
/// are B-LTA for the verifier, GetDocument hands out the extended version (the stored one
/// its prefix), two `extended` records name the hashes before and after, and the audit log
/// still verifies. A fresh run without `--force` finds both up to date and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ltv_extend_store_raises_b_t_originals_to_b_lta_resumes_and_is_idempotent_N3_R1_D7() {
    let tsa = TestTsa::start();
    let tls = make_tls(&["dms", "dms-other", "archive"]);
    let d = tls.path();
    let c = cluster(&tsa, &tls, 10_000).await;
    issue(&c, d, "201/QĐ-UBND");
    issue(&c, d, "202/QĐ-UBND");

    let mut archive = documents(&c, d, Some("archive")).await;
    let listed = archive
        .list_stored(dpb::ListStoredRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.documents.len(), 1, "{listed:?}");
    assert!(!listed.next_page_token.is_empty());
    let all = archive
        .list_stored(dpb::ListStoredRequest::default())
        .await
        .unwrap()
        .into_inner()
        .documents;
    assert_eq!(all.len(), 2, "{all:?}");
    let mut before = Vec::new();
    for doc in &all {
        assert_eq!(
            (doc.kind.as_str(), doc.level.as_str()),
            ("pdf", "B_T"),
            "{doc:?}"
        );
        assert!(doc.last_timestamp_expires.is_some(), "{doc:?}");
        let got = documents(&c, d, Some("dms"))
            .await
            .get_document(dpb::GetDocumentRequest {
                sha256: doc.sha256.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .pdf;
        assert_eq!(
            hex::encode(kyso_pki::crypto::sha256(&got)),
            doc.current_sha256
        );
        before.push(got);
    }

    // Interrupted after one document (--limit 1), then resumed.
    let state = c.dir.path().join("ltv-store-state.json");
    let (code, first) = ltv_store(&c, d, "archive", &state, &["--force", "--limit", "1"]);
    assert_eq!(code, 0, "{first:#}");
    assert_eq!(first["summary"]["extended"], 1, "{first:#}");
    assert_eq!(first["summary"]["not_reached"], 1, "{first:#}");
    let (code, second) = ltv_store(&c, d, "archive", &state, &["--force"]);
    assert_eq!(code, 0, "{second:#}");
    assert_eq!(second["summary"]["extended"], 1, "{second:#}");
    assert_eq!(second["summary"]["skipped_finished"], 1, "{second:#}");

    let records: Vec<Value> = audit_lines(&c.audit_path())
        .into_iter()
        .filter_map(|l| l.get("entry").cloned())
        .filter(|e| e["decision"] == "extended")
        .collect();
    assert_eq!(records.len(), 2, "{records:#?}");
    for (doc, old) in all.iter().zip(&before) {
        let got = documents(&c, d, Some("dms"))
            .await
            .get_document(dpb::GetDocumentRequest {
                sha256: doc.sha256.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .pdf;
        assert_ne!(&got, old, "{} was not extended", doc.sha256);
        assert!(got.starts_with(old), "the stored bytes moved (D7)");
        let after = hex::encode(kyso_pki::crypto::sha256(&got));
        assert!(
            records
                .iter()
                .any(|r| r["before_sha256"] == doc.current_sha256.as_str()
                    && r["after_sha256"] == after.as_str()),
            "no extended record for {}: {records:#?}",
            doc.sha256
        );
        let levels = verify_levels(&c, &tsa, &got).await;
        assert!(
            !levels.is_empty() && levels.iter().all(|l| *l == SignatureLevel::BLta),
            "{levels:?}"
        );
    }
    let verified = c.kyso_audit_verify(&c.audit_path());
    assert!(verified.status.success(), "{verified:?}");

    // Idempotent: a fresh run (another state file) without --force finds both up to date.
    let fresh = c.dir.path().join("ltv-store-state-2.json");
    let (code, third) = ltv_store(&c, d, "archive", &fresh, &["--horizon-days", "1"]);
    assert_eq!(code, 0, "{third:#}");
    assert_eq!(third["summary"]["up_to_date"], 2, "{third:#}");
    assert_eq!(third["summary"]["extended"], 0, "{third:#}");
    let after_records = audit_lines(&c.audit_path())
        .into_iter()
        .filter(|l| l.get("entry").is_some_and(|e| e["decision"] == "extended"))
        .count();
    assert_eq!(after_records, 2);
}

/// R1: a caller without the archive role (the document systems' certificates, one acting for
/// any organisation, one bound to another) is refused ListStored and ExtendStored with PERMISSION_DENIED `R1`; the CLI run
/// as such a caller fails and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ltv_extend_store_refused_without_the_archive_role_R1() {
    let tsa = TestTsa::start();
    let tls = make_tls(&["dms", "dms-other", "archive"]);
    let d = tls.path();
    let c = cluster(&tsa, &tls, 10_000).await;
    issue(&c, d, "203/QĐ-UBND");
    let id = documents(&c, d, Some("archive"))
        .await
        .list_stored(dpb::ListStoredRequest::default())
        .await
        .unwrap()
        .into_inner()
        .documents[0]
        .sha256
        .clone();
    for who in [Some("dms"), Some("dms-other")] {
        let mut client = documents(&c, d, who).await;
        let e = client
            .list_stored(dpb::ListStoredRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
        assert_eq!(status_rules(&e), "R1", "{who:?}");
        let e = client
            .extend_stored(dpb::ExtendStoredRequest {
                sha256: id.clone(),
                force: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
        assert_eq!(status_rules(&e), "R1", "{who:?}");
    }
    let state = c.dir.path().join("refused-state.json");
    let (code, out) = ltv_store(&c, d, "dms", &state, &["--force"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.to_string().contains("R1") || out.to_string().contains("archive"),
        "{out}"
    );
    let records = audit_lines(&c.audit_path())
        .into_iter()
        .filter(|l| l.get("entry").is_some_and(|e| e["decision"] == "extended"))
        .count();
    assert_eq!(records, 0);
}

/// R1: a CAdES B-LT signature carries in its certificate-values the TSA's path (the TSA
/// certificate and its root) beside the signer's, so that its signature timestamp can be
/// validated offline once the TSA's CA stops publishing (the revocation values of the TSA's
/// path join the signer's when its CA publishes any; the test TSA's publishes none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cades_b_lt_certificate_values_carry_the_tsa_path_R1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&format!(
        "\n[tsa]\nurl = {:?}\nbudget_ms = 5000\ntimeout_ms = 5000\nretries = 1\ntsa_roots = {:?}\n",
        tsa.url(),
        tsa.root_pem(),
    ))
    .await;
    let mut req = c.approval(b"Quyet dinh so 14/QD-UBND: B-LT with the TSA path");
    req.level = kyso_proto::signer::v1::SignatureLevel::BLt as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(
        resp.level,
        kyso_proto::signer::v1::SignatureLevel::BLt as i32,
        "{:?}",
        resp.warnings
    );
    let msg = kyso_pki::cms::parse(&resp.cms).unwrap();
    let e = kyso_pki::cms::embedded(&msg, 0).unwrap();
    assert_eq!(e.timestamp_tokens.len(), 1);
    for name in ["tsa", "root"] {
        assert!(
            e.certificates.contains(&tsa.cert_der(name)),
            "the TSA's {name} certificate is not in certificate-values"
        );
    }
    assert!(!e.crls.is_empty() || !e.ocsp.is_empty(), "{e:?}");
    c.openssl_verify(&resp.cms, None);
}

/// R1, fail closed: the anonymous caller of a dev cluster (no client certificate) is never the
/// archive operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anonymous_caller_is_no_archive_operator_R1() {
    let c = Cluster::start().await;
    let mut client = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap();
    let e = client
        .list_stored(dpb::ListStoredRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), status_rules(&e)),
        (Code::PermissionDenied, "R1".into())
    );
    let e = client
        .extend_stored(dpb::ExtendStoredRequest {
            sha256: "00".repeat(32),
            force: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), status_rules(&e)),
        (Code::PermissionDenied, "R1".into())
    );
}

/// R1, D7: a CMS kept in the store (SignCms at B-T returned at B-B past a slow TSA's budget,
/// then raised to B-T in the background) is raised by `kyso ltv extend --store` to CAdES
/// B-LT: certificate-values with the signer's and the TSA's paths, revocation values, an
/// `extended` record; openssl still accepts it; a fresh run finds it up to date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ltv_extend_store_raises_a_stored_cades_b_t_to_b_lt_N3_R1_D7() {
    let tsa = TestTsa::start();
    let tls = make_tls(&["dms", "dms-other", "archive"]);
    let d = tls.path();
    let c = cluster(&tsa, &tls, 500).await;
    let mut signer = kyso_proto::signer::v1::signer_client::SignerClient::new(
        mtls_channel(c.addr, d, Some("dms")).await.unwrap(),
    );
    signer.sign_cms(c.approval(b"warm-up")).await.unwrap();
    tsa.set_delay(std::time::Duration::from_secs(2));
    let mut req = c.approval(b"Cong van 9/UBND-VP: kept for years");
    req.level = kyso_proto::signer::v1::SignatureLevel::BT as i32;
    let resp = signer.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(
        resp.level,
        kyso_proto::signer::v1::SignatureLevel::BB as i32
    );
    let id = hex::encode(kyso_pki::crypto::sha256(&resp.cms));
    tsa.set_delay(std::time::Duration::ZERO);
    // The background upgrade lands (B-T).
    let mut archive = documents(&c, d, Some("archive")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let listed = loop {
        let all = archive
            .list_stored(dpb::ListStoredRequest::default())
            .await
            .unwrap()
            .into_inner()
            .documents;
        if let Some(doc) = all.into_iter().find(|x| x.sha256 == id && x.level == "B_T") {
            break doc;
        }
        assert!(std::time::Instant::now() < deadline, "no upgrade");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(listed.kind, "cms");
    assert!(!listed.upgrade_pending);

    let state = c.dir.path().join("cms-state.json");
    let (code, out) = ltv_store(&c, d, "archive", &state, &["--force"]);
    assert_eq!(code, 0, "{out:#}");
    let entry = out["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["document"] == id.as_str())
        .unwrap();
    assert_eq!(entry["status"], "extended", "{out:#}");
    assert_eq!(
        (
            entry["level_before"].as_str(),
            entry["level_after"].as_str()
        ),
        (Some("B_T"), Some("B_LT"))
    );
    let got = documents(&c, d, Some("dms"))
        .await
        .get_document(dpb::GetDocumentRequest { sha256: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .pdf;
    let msg = kyso_pki::cms::parse(&got).unwrap();
    let e = kyso_pki::cms::embedded(&msg, 0).unwrap();
    assert_eq!(e.timestamp_tokens.len(), 1);
    assert!(e.certificates.contains(&tsa.cert_der("tsa")), "{e:?}");
    assert!(!e.crls.is_empty() || !e.ocsp.is_empty(), "{e:?}");
    c.openssl_verify(&got, None);
    let after = hex::encode(kyso_pki::crypto::sha256(&got));
    assert!(
        audit_lines(&c.audit_path())
            .iter()
            .filter_map(|l| l.get("entry"))
            .any(|e| e["decision"] == "extended" && e["after_sha256"] == after.as_str()),
        "no extended record"
    );
    let fresh = c.dir.path().join("cms-state-2.json");
    let (code, again) = ltv_store(&c, d, "archive", &fresh, &["--horizon-days", "1"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["summary"]["up_to_date"], 1, "{again:#}");
}

/// D7, R1: a received copy whose signatures fail (refused, but kept as received) is not given
/// a fresh timestamp: `kyso ltv extend --store --force` reports it skipped with the failed
/// signature, extends the issued original beside it, and writes one `extended` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ltv_extend_store_skips_a_kept_copy_whose_signature_failed_R1_D7() {
    let tsa = TestTsa::start();
    let tls = make_tls(&["dms", "dms-other", "archive"]);
    let d = tls.path();
    let c = cluster(&tsa, &tls, 10_000).await;
    issue(&c, d, "204/QĐ-UBND");
    let issued = std::fs::read(c.dir.path().join("draft-204-QĐ-UBND.issued.pdf")).unwrap();
    let at = issued
        .windows(13)
        .position(|w| w == b"Nguyen Van An")
        .expect("the sample's text");
    let mut tampered = issued.clone();
    tampered[at + 12] = b'm';
    let r = documents(&c, d, Some("dms"))
        .await
        .receive_incoming(dpb::ReceiveIncomingRequest {
            pdf: tampered.clone(),
            organisation_id: c.province.ubnd.clone(),
            seal_key: "seal".into(),
            custodian_person_id: c.province.clerk.clone(),
            sender: "Sở Tài chính".into(),
            document_type: "QD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.accepted, "{r:?}");
    let refused = hex::encode(kyso_pki::crypto::sha256(&tampered));

    let state = c.dir.path().join("state.json");
    let (code, out) = ltv_store(&c, d, "archive", &state, &["--force"]);
    assert_eq!(code, 0, "{out:#}");
    let docs = out["documents"].as_array().unwrap();
    let skipped = docs
        .iter()
        .find(|x| x["document"] == refused.as_str())
        .expect("the refused copy is listed");
    assert_eq!(skipped["status"], "skipped", "{out:#}");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("failed"),
        "{out:#}"
    );
    assert_eq!(out["summary"]["extended"], 1, "{out:#}");
    let kept = documents(&c, d, Some("dms"))
        .await
        .get_document(dpb::GetDocumentRequest {
            sha256: refused.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .pdf;
    assert_eq!(kept, tampered, "the refused copy changed");
    let extended = audit_lines(&c.audit_path())
        .into_iter()
        .filter(|l| l.get("entry").is_some_and(|e| e["decision"] == "extended"))
        .count();
    assert_eq!(extended, 1);
}

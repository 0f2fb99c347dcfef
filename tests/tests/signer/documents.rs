//! The document flow end to end (W1, W3, D5, D6, D7, R2) on the test cluster: SoftHSM2
//! behind `p11-kit server`, the registry with the sample province, `openssl ocsp` and CRLs
//! over HTTP; the PDF is the reportlab sample decision; pyHanko and pdfsig are the peers.

use std::path::Path;
use std::process::Command;

use kyso_proto::registry::v1 as reg;
use kyso_tests::cluster::Cluster;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::pdf_peers::{NssDb, Peers, SampleKind, Tamper, ValidateOptions, pdfsig};
use serde_json::Value;

/// `kyso doc ARGS` against the cluster's signer: exit code and the JSON it printed.
pub(crate) fn kyso_doc(c: &Cluster, args: &[&str]) -> (i32, Value) {
    let out = Command::new(workspace_bin("kyso"))
        .arg("doc")
        .args(&args[..1])
        .arg("--server")
        .arg(format!("http://{}", c.addr))
        .args(&args[1..])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::String(format!(
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    )));
    (out.status.code().unwrap_or(-1), v)
}

/// The register of the People's Committee in `direction` (every year).
pub(crate) async fn register(c: &Cluster, direction: reg::Direction) -> Vec<reg::RegisterEntry> {
    let mut client = reg::registry_client::RegistryClient::connect(c.registry.url())
        .await
        .unwrap();
    client
        .list_register(reg::ListRegisterRequest {
            organisation_id: c.province.ubnd.clone(),
            direction: direction as i32,
            year: 0,
            sha256: String::new(),
            number_and_symbol: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(kyso_pki::crypto::sha256(bytes))
}

/// W1 then W3 through `kyso doc`: the Chairman's approval between the title and the name
/// (P1), the seal by the clerk (P2, A5, A6, W2), the outgoing register; pyHanko and pdfsig
/// accept both signatures; the receiving side verifies every signature and signer, gives
/// the incoming number and adds the received stamp (D6); a tampered copy is refused with
/// the reason and entered as refused; every file is kept by its SHA-256 (D7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_then_incoming_W1_W3_with_peers_and_a_tampered_copy_refused_evidence_kept_N3() {
    let c = Cluster::start().await;
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let dir = c.dir.path();
    let input = dir.join("decision.pdf");
    std::fs::write(&input, &sample.bytes).unwrap();
    let b = &sample.signature_block.signature_box;
    let rect = format!(
        "{},{},{},{},{}",
        sample.signature_block.page, b.x1, b.y1, b.x2, b.y2
    );
    let issued = dir.join("issued.pdf");
    let today = Cluster::today();
    let (code, out) = kyso_doc(
        &c,
        &[
            "issue",
            input.to_str().unwrap(),
            "--out",
            issued.to_str().unwrap(),
            "--organisation",
            &c.province.ubnd,
            "--document-type",
            "QD",
            "--number",
            "123/QĐ-UBND",
            "--issue-date",
            &today,
            "--approval-key",
            "chairman",
            "--approver",
            &c.province.chairman,
            "--approval-rect",
            &rect,
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
            "--recipients",
            "Sở Tài chính",
        ],
    );
    assert_eq!(code, 0, "kyso doc issue: {out}");
    assert_eq!(out["register_number"], 1, "{out}");
    assert_eq!(out["signatures"], 2, "{out}");
    let issued_pdf = std::fs::read(&issued).unwrap();
    assert_eq!(out["sha256"], sha256_hex(&issued_pdf));
    // Incremental only: the draft is a prefix of the issued original.
    assert!(issued_pdf.starts_with(&sample.bytes));

    // The peers accept both signatures, trusted and unrevoked.
    let verdicts =
        peers.pyhanko_validate(&issued_pdf, &ValidateOptions::online(&c.pki, &c.servers));
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    for v in &verdicts {
        assert!(
            v.intact && v.valid && v.trusted && !v.revoked,
            "{}",
            v.describe()
        );
    }
    let nss = NssDb::for_test_pki(&c.pki);
    let sigs = pdfsig(&issued_pdf, &nss);
    assert_eq!(sigs.len(), 2);
    assert!(sigs.iter().all(|s| s.signature_valid()), "{sigs:?}");
    kyso_tests::pdf_peers::qpdf_check(&issued_pdf).unwrap();

    // D7: the stored original is the file returned.
    let fetched = dir.join("fetched.pdf");
    let (code, _) = kyso_doc(
        &c,
        &[
            "get",
            out["sha256"].as_str().unwrap(),
            "--out",
            fetched.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&fetched).unwrap(), issued_pdf);

    // W3: accepted, numbered, stamped.
    let received = dir.join("received.pdf");
    let receive = |file: &Path, out_file: &Path| {
        kyso_doc(
            &c,
            &[
                "receive",
                file.to_str().unwrap(),
                "--out",
                out_file.to_str().unwrap(),
                "--organisation",
                &c.province.ubnd,
                "--document-type",
                "QD",
                "--seal-key",
                "seal",
                "--custodian",
                &c.province.clerk,
                "--sender",
                "UBND tỉnh Khánh Hòa",
            ],
        )
    };
    let (code, out) = receive(&issued, &received);
    assert_eq!(code, 0, "kyso doc receive: {out}");
    assert_eq!(out["accepted"], true);
    assert_eq!(out["incoming_number"], 1);
    assert_eq!(out["received_sha256"], sha256_hex(&issued_pdf));
    let stamped = std::fs::read(&received).unwrap();
    assert!(stamped.starts_with(&issued_pdf));
    let stamped_sha256 = out["sha256"].as_str().unwrap().to_owned();
    let accepted_evidence = out["evidence"]["sha256"].as_str().unwrap().to_owned();
    let verdicts = peers.pyhanko_validate(&stamped, &ValidateOptions::online(&c.pki, &c.servers));
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(verdicts.iter().all(|v| v.intact && v.valid && v.trusted));

    // A copy changed after signing: refused with the reason, entered as refused, no stamp.
    let tampered = dir.join("tampered.pdf");
    std::fs::write(&tampered, peers.tamper(&issued_pdf, Tamper::Content)).unwrap();
    let (code, out) = receive(&tampered, &dir.join("never.pdf"));
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["accepted"], false);
    let problems = out["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(
        problems.iter().all(|p| p["rule"] == "V1"),
        "every signature is reported: {out}"
    );
    assert!(!dir.join("never.pdf").exists());
    let refused_sha256 = out["received_sha256"].as_str().unwrap().to_owned();
    let refused_evidence = out["evidence"]["sha256"].as_str().unwrap().to_owned();
    let flipped = dir.join("flipped.pdf");
    std::fs::write(&flipped, peers.tamper(&issued_pdf, Tamper::FlipByte)).unwrap();
    let (code, out) = receive(&flipped, &dir.join("never.pdf"));
    assert_eq!((code, &out["accepted"]), (1, &Value::Bool(false)), "{out}");

    // N3, D7: what was checked on receipt is kept with the original and chained in the audit
    // log before the answer: GetDocument returns it, for the stamped and the refused file.
    let evidence_of = |sha256: &str, name: &str| {
        let (code, out) = kyso_doc(
            &c,
            &[
                "get",
                sha256,
                "--out",
                dir.join(format!("{name}.pdf")).to_str().unwrap(),
                "--evidence-dir",
                dir.join(format!("{name}-evidence")).to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{out}");
        out["evidence"].as_array().unwrap().clone()
    };
    let kept = evidence_of(&stamped_sha256, "stamped");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["sha256"], accepted_evidence, "{kept:?}");
    assert_eq!(kept[0]["accepted"], true);
    assert_eq!(kept[0]["received_sha256"], sha256_hex(&issued_pdf));
    // The original as received (also the issued original: its own issue kept none) carries
    // the same report.
    let of_received = evidence_of(&sha256_hex(&issued_pdf), "issued");
    assert_eq!(of_received.len(), 1);
    assert_eq!(of_received[0]["sha256"], kept[0]["sha256"]);
    let refused_kept = evidence_of(&refused_sha256, "refused");
    assert_eq!(refused_kept.len(), 1);
    assert_eq!(refused_kept[0]["sha256"], refused_evidence);
    assert_eq!(refused_kept[0]["accepted"], false);
    assert!(
        refused_kept[0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["rule"] == "V1"),
        "{refused_kept:?}"
    );
    // Each report as kept hashes to its audit record's digest, and the log still verifies.
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    for k in kept.iter().chain(&refused_kept) {
        let bytes = std::fs::read(k["file"].as_str().unwrap()).unwrap();
        assert_eq!(sha256_hex(&bytes), k["sha256"].as_str().unwrap());
        assert_eq!(k["report"], "pdf", "{k}");
        assert!(k["verified_at"].as_i64().is_some(), "{k}");
        let record: Value = log
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["seq"] == k["audit_sequence"])
            .unwrap();
        assert_eq!(record["hash"], k["audit_record_hash"], "{record}");
        assert_eq!(record["entry"]["decision"], "evidence", "{record}");
        assert_eq!(record["entry"]["digest"], k["sha256"], "{record}");
        assert_eq!(record["entry"]["key"], "", "no key is used: {record}");
    }
    let verified = Command::new(workspace_bin("kyso"))
        .args(["audit", "verify", "--json"])
        .arg(c.audit_path())
        .arg("--certificate")
        .arg(c.leaf_pem(kyso_tests::cluster::AUDIT_SEAL))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    // The registers and R2 agree.
    let outgoing = register(&c, reg::Direction::Outgoing).await;
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0].sha256, sha256_hex(&issued_pdf));
    let incoming = register(&c, reg::Direction::Incoming).await;
    let refused: Vec<_> = incoming.iter().filter(|e| e.refused).collect();
    assert_eq!((incoming.len(), refused.len()), (3, 2));
    assert!(
        refused
            .iter()
            .all(|e| e.number == 0 && !e.reason.is_empty())
    );
}

/// D5, P4: each separate attachment is signed by the organisation as an APPENDIX showing
/// the main document's number, once that number is in the outgoing register (refused, D5,
/// before); a classified main document is refused (A7) and nothing is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_signed_as_appendices_D5() {
    let c = Cluster::start().await;
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let dir = c.dir.path();
    let a = dir.join("phu-luc-1.pdf");
    let b = dir.join("phu-luc-2.pdf");
    std::fs::write(&a, &sample.bytes).unwrap();
    std::fs::write(&b, &sample.bytes).unwrap();
    let out_dir = dir.join("signed");
    // D5: an attachment is sealed with the number of a registered outgoing document only.
    let (code, out) = kyso_doc(
        &c,
        &[
            "attach",
            a.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
            "--organisation",
            &c.province.ubnd,
            "--document-type",
            "QD",
            "--number",
            "123/QĐ-UBND",
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.to_string().contains("D5"), "{out}");
    assert!(!out_dir.exists(), "nothing signed, nothing written");
    c.register_document(
        &c.province.ubnd,
        "OUTGOING",
        "123/QĐ-UBND",
        &"1e".repeat(32),
    )
    .await;
    let (code, out) = kyso_doc(
        &c,
        &[
            "attach",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
            "--organisation",
            &c.province.ubnd,
            "--document-type",
            "QD",
            "--number",
            "123/QĐ-UBND",
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
        ],
    );
    assert_eq!(code, 0, "kyso doc attach: {out}");
    let list = out["attachments"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for item in list {
        let pdf = std::fs::read(item["out"].as_str().unwrap()).unwrap();
        assert_eq!(item["sha256"], sha256_hex(&pdf));
        let v = peers.pyhanko_validate(&pdf, &ValidateOptions::online(&c.pki, &c.servers));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].intact && v[0].valid && v[0].trusted,
            "{}",
            v[0].describe()
        );
    }
}

//! Archive care (issue 16 items 2 and 5; R1, D7): `kyso ltv extend` takes signed PDFs
//! to PAdES B-LTA — a DSS with the paths and revocation data of every signature and
//! document time-stamp, then a fresh document time-stamp from a real TSA (`openssl ts
//! -reply`, [`TestTsa`]) — and the peers judge the result: pyHanko's long-term
//! validation (ETSI EN 319 102-1 §5.6.3) passes with the test roots and **no fetching**
//! (the DSS must suffice), `pdfsig` lists the document time-stamp, `qpdf --check`
//! passes, and the original bytes are the prefix of the result (D7).
//!
//! Also: a second run skips the finished files (the state file), a broken PDF in the
//! folder is reported in the JSON while the others go on, the renewal rule
//! (`--renew-before`) leaves a fresh B-LTA alone, a dead TSA leaves the file unchanged,
//! and a TSA answer that does not verify (a genuine token for another document,
//! replayed) is never written.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_pades::{self as pades, PadesRequest, Placement, Profile};
use kyso_pki::cms_build::{self, SigningAlgorithm};
use kyso_pki::crypto::{DigestAlgorithm, sha256};
use kyso_pki::time::OffsetDateTime;
use kyso_tests::pdf_peers::{NssDb, Peers, PyhankoSign, SampleKind, pdfsig, qpdf_check};
use kyso_tests::{TestPki, TestTsa, shared_servers};
use serde_json::Value;

const RSA: SigningAlgorithm = SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256);
const CLI_TIMEOUT: Duration = Duration::from_secs(300);

/// A PDF signed by kyso's PAdES writer (B-B), APPROVAL by `personal-rsa`.
fn kyso_signed() -> Vec<u8> {
    kyso_signed_with(|cms| cms)
}

/// A PDF signed by kyso's PAdES writer with a signature time-stamp from `tsa` (B-T): the
/// token over the signature value in the unsigned attributes (ETSI EN 319 122-1 §5.3).
fn kyso_signed_bt(tsa: &TestTsa) -> Vec<u8> {
    kyso_signed_with(|cms| add_signature_timestamp(&cms, tsa))
}

/// Adds a signature time-stamp token (id-aa-signatureTimeStampToken) to the first signer of
/// `cms`; the signed attributes, hence the signature, are unchanged.
fn add_signature_timestamp(cms_der: &[u8], tsa: &TestTsa) -> Vec<u8> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};
    let ci = ContentInfo::from_der(cms_der).expect("ContentInfo");
    let mut sd: SignedData = ci.content.decode_as().expect("SignedData");
    let mut signers: Vec<_> = sd.signer_infos.0.iter().cloned().collect();
    let si = signers.first_mut().expect("a signer");
    let imprint = sha256(si.signature.as_bytes());
    let query =
        kyso_pki::tsp::TimeStampReq::new(DigestAlgorithm::Sha256, &imprint, &[9u8; 16], None)
            .and_then(|r| r.to_der_bytes())
            .expect("query");
    let token = kyso_pki::tsp::TimeStampResp::parse(&tsa.reply(&query))
        .and_then(|r| r.into_token())
        .expect("a token");
    let attr = cms::cert::x509::attr::Attribute {
        oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14"),
        values: der::asn1::SetOfVec::try_from(vec![der::Any::from_der(&token).expect("Any")])
            .expect("set"),
    };
    si.unsigned_attrs = Some(der::asn1::SetOfVec::try_from(vec![attr]).expect("attrs"));
    sd.signer_infos = cms::signed_data::SignerInfos(
        der::asn1::SetOfVec::try_from(signers).expect("signer infos"),
    );
    ContentInfo {
        content_type: ci.content_type,
        content: der::Any::encode_from(&sd).expect("encode"),
    }
    .to_der()
    .expect("DER")
}

fn kyso_signed_with(edit: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let pki = TestPki::get();
    let sample = Peers::get().sample(SampleKind::Decision);
    let chain = vec![pki.cert_der(pki.issuing_ca_cer())];
    let leaf = pki.leaf_der("personal-rsa");
    let t = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds");
    let mut req = PadesRequest::new(Profile::Approval, &leaf, &chain, t);
    let b = sample.signature_block.signature_box;
    req.placement = Placement::Rect {
        page: sample.signature_block.page,
        rect: [b.x1, b.y1, b.x2, b.y2],
    };
    let prepared = pades::prepare(&sample.bytes, &req).expect("prepare");
    let p = cms_build::prepare(prepared.cades_request(&leaf, &chain, RSA)).expect("cms");
    let sig = pki.sign_digest("personal-rsa", "sha256", false, &p.digest_to_sign());
    prepared
        .finish(&edit(p.finish(&sig).expect("cms finish")))
        .expect("finish")
}

/// A PDF signed by pyHanko with a signature time-stamp from `tsa` (B-T).
fn pyhanko_bt(tsa: &TestTsa) -> Vec<u8> {
    let pki = TestPki::get();
    let sample = Peers::get().sample(SampleKind::Decision);
    let req = PyhankoSign::leaf(pki, "org-rsa", "pyhanko_bt");
    Peers::get().pyhanko_sign_timestamped(&sample.bytes, &req, &tsa.url())
}

/// `kyso ltv extend` over `paths` with the test PKI's trust and `tsa_url`; the JSON report.
fn extend(
    tsa_url: &str,
    tsa: &TestTsa,
    state: &Path,
    extra: &[&str],
    paths: &[&Path],
) -> (i32, Value) {
    let pki = TestPki::get();
    let dir = tempfile::tempdir().expect("report dir");
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(kyso_tests::hsm::workspace_bin("kyso"));
    cmd.args(["ltv", "extend", "--tsa", tsa_url])
        .arg("--trust-anchors")
        .arg(pki.root_pem())
        .arg("--trust-anchors")
        .arg(tsa.root_pem())
        .arg("--intermediates")
        .arg(pki.intermediates_pem())
        .arg("--state")
        .arg(state)
        .arg("--json")
        .arg(&report)
        .args(extra);
    for (from, to) in shared_servers().rewrites() {
        cmd.arg("--url-rewrite").arg(format!("{from}={to}"));
    }
    cmd.args(paths);
    cmd.env("KYSO_LOG", "warn");
    let out = kyso_tests::run(&mut cmd, None, CLI_TIMEOUT);
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("kyso was killed: {out}"));
    let text = std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}): {out}"));
    let v: Value = serde_json::from_slice(&text).expect("the report is JSON");
    (code, v)
}

/// The report entry of `file`.
#[track_caller]
fn entry<'a>(report: &'a Value, file: &Path) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["file"].as_str() == Some(&file.display().to_string()))
        .unwrap_or_else(|| panic!("{} is not in the report: {report:#}", file.display()))
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(sha256(b))
}

/// pyHanko's B-LTA validation from the DSS alone, with the test roots and the TSA's.
#[track_caller]
fn assert_pyhanko_lta(pdf: &[u8], tsa: &TestTsa, case: &str) {
    let pki = TestPki::get();
    let v = Peers::get().pyhanko_validate_ltv(
        pdf,
        &[pki.root_pem(), tsa.root_pem()],
        &[pki.intermediates_pem()],
    );
    let sigs = v["signatures"].as_array().expect("signatures");
    assert!(!sigs.is_empty(), "{case}: no signature: {v:#}");
    for s in sigs {
        assert_eq!(s["passed"], true, "{case}: pyHanko's LTA validation: {v:#}");
    }
    assert!(
        !v["document_timestamps"]
            .as_array()
            .expect("timestamps")
            .is_empty(),
        "{case}: pyHanko sees no document time-stamp: {v:#}"
    );
}

#[test]
fn ltv_extend_takes_pyhanko_bt_and_kyso_pades_to_b_lta_pyhanko_validates_from_the_dss_R1_D7() {
    let tsa = TestTsa::start();
    let dir = tempfile::tempdir().expect("folder");
    let a = dir.path().join("pyhanko-bt.pdf");
    let b = dir.path().join("sub").join("kyso-bt.pdf");
    let c = dir.path().join("kyso-bb.pdf");
    std::fs::create_dir_all(b.parent().expect("parent")).expect("sub folder");
    let originals = [
        (a.clone(), pyhanko_bt(&tsa)),
        (b.clone(), kyso_signed_bt(&tsa)),
        (c.clone(), kyso_signed()),
    ];
    for (p, bytes) in &originals {
        std::fs::write(p, bytes).expect("write");
    }
    let state = dir.path().join(".state.json");
    let (code, report) = extend(&tsa.url(), &tsa, &state, &[], &[dir.path()]);
    assert_eq!(code, 0, "{report:#}");
    let db = NssDb::for_test_pki(TestPki::get());
    for (path, original) in &originals {
        let e = entry(&report, path);
        let case = path.display().to_string();
        assert_eq!(e["status"], "extended", "{case}: {e:#}");
        assert_eq!(e["level_after"], "B-LTA", "{case}");
        assert!(
            e["added"]["certs"].as_u64().unwrap_or(0) >= 2,
            "{case}: {e:#}"
        );
        assert!(
            e["added"]["ocsps"].as_u64().unwrap_or(0) + e["added"]["crls"].as_u64().unwrap_or(0)
                >= 1,
            "{case}: no revocation data added: {e:#}"
        );
        assert_eq!(e["added"]["document_timestamp"], "kyso_doc_timestamp_1");
        let out = std::fs::read(path).expect("read result");
        assert!(
            out.starts_with(original),
            "{case}: the original is not the prefix (D7)"
        );
        assert_eq!(e["sha256_before"], hex_sha256(original));
        assert_eq!(e["sha256_after"], hex_sha256(&out));
        let backup = PathBuf::from(e["backup"].as_str().expect("backup"));
        assert_eq!(
            &std::fs::read(&backup).expect("backup"),
            original,
            "{case}: backup"
        );
        qpdf_check(&out).unwrap_or_else(|r| panic!("{case}: qpdf --check: {r}"));
        let listed = pdfsig(&out, &db);
        assert!(
            listed
                .iter()
                .any(|s| s.field.as_deref() == Some("kyso_doc_timestamp_1")),
            "{case}: pdfsig does not list the document time-stamp: {listed:#?}"
        );
        if path != &c {
            assert_pyhanko_lta(&out, &tsa, &case);
        }
    }
    assert_eq!(entry(&report, &a)["level_before"], "B-T");
    assert_eq!(entry(&report, &b)["level_before"], "B-T");
    assert_eq!(entry(&report, &c)["level_before"], "B-B");

    // pyHanko's long-term validation wants a signature time-stamp (B-T) under the document
    // time-stamp: a B-B signature stays INDETERMINATE there even with the DSS (its
    // SIG_CONSTRAINTS_FAILURE for "no signature time-stamp").
    let pki = TestPki::get();
    let roots = [pki.root_pem(), tsa.root_pem()];
    let bb = Peers::get().pyhanko_validate_ltv(
        &std::fs::read(&c).expect("read"),
        &roots,
        &[pki.intermediates_pem()],
    );
    assert_eq!(
        bb["signatures"][0]["sub_indication"], "SIG_CONSTRAINTS_FAILURE",
        "{bb:#}"
    );
    // Without the DSS the B-T files fail the same check: the DSS is what makes them pass.
    for (path, original) in originals.iter().take(2) {
        let bare = Peers::get().pyhanko_validate_ltv(original, &roots, &[pki.intermediates_pem()]);
        assert_ne!(
            bare["signatures"][0]["passed"],
            true,
            "{}: pyHanko passes without validation data: the check cannot fail: {bare:#}",
            path.display()
        );
    }
}

#[test]
fn ltv_extend_resumes_skips_finished_files_and_reports_a_broken_one_D7() {
    let tsa = TestTsa::start();
    let dir = tempfile::tempdir().expect("folder");
    let good = dir.path().join("a-good.pdf");
    let broken = dir.path().join("b-broken.pdf");
    let later = dir.path().join("c-later.pdf");
    std::fs::write(&good, kyso_signed_bt(&tsa)).expect("write");
    std::fs::write(&broken, b"%PDF-1.7\nnot really a PDF\n%%EOF\n").expect("write");
    let state = dir.path().join(".state.json");

    // Run 1: the good file is extended; the broken one is reported, the run goes on.
    let (code, r1) = extend(&tsa.url(), &tsa, &state, &[], &[dir.path()]);
    assert_eq!(code, 1, "a failed file makes the exit code 1: {r1:#}");
    assert_eq!(entry(&r1, &good)["status"], "extended", "{r1:#}");
    let b = entry(&r1, &broken);
    assert_eq!(b["status"], "failed");
    assert!(
        !b["errors"].as_array().expect("errors").is_empty(),
        "no error for the broken file: {b:#}"
    );
    let after1 = std::fs::read(&good).expect("read");

    // A file appears (as if the first run had been interrupted before it).
    std::fs::write(&later, kyso_signed()).expect("write");
    let requests = tsa.requests();
    let (_, r2) = extend(&tsa.url(), &tsa, &state, &[], &[dir.path()]);
    assert_eq!(entry(&r2, &good)["status"], "skipped-finished", "{r2:#}");
    assert_eq!(
        std::fs::read(&good).expect("read"),
        after1,
        "a finished file was touched"
    );
    assert_eq!(entry(&r2, &later)["status"], "extended", "{r2:#}");
    assert_eq!(entry(&r2, &broken)["status"], "failed");
    assert_eq!(
        tsa.requests(),
        requests + 1,
        "one time-stamp: the new file's"
    );

    // Without the state: the renewal rule leaves a fresh B-LTA alone…
    let fresh_state = dir.path().join(".state2.json");
    let (_, r3) = extend(
        &tsa.url(),
        &tsa,
        &fresh_state,
        &["--renew-before", "0"],
        &[&good],
    );
    assert_eq!(entry(&r3, &good)["status"], "up-to-date", "{r3:#}");
    assert_eq!(std::fs::read(&good).expect("read"), after1);
    // …and renews one whose TSA certificate expires within the window: a second
    // document time-stamp over the first and the TSA's data in the DSS.
    let (code, r4) = extend(
        &tsa.url(),
        &tsa,
        &fresh_state,
        &["--renew-before", "100000"],
        &[&good],
    );
    assert_eq!(code, 0, "{r4:#}");
    let e = entry(&r4, &good);
    assert_eq!(e["status"], "extended", "{r4:#}");
    assert_eq!(e["level_before"], "B-LTA");
    assert_eq!(e["added"]["document_timestamp"], "kyso_doc_timestamp_2");
    let renewed = std::fs::read(&good).expect("read");
    assert!(renewed.starts_with(&after1));
    qpdf_check(&renewed).unwrap_or_else(|r| panic!("qpdf --check: {r}"));
    assert_pyhanko_lta(&renewed, &tsa, "renewed");
}

#[test]
fn ltv_extend_with_the_tsa_down_leaves_the_file_unchanged_R1() {
    let tsa = TestTsa::start();
    let dir = tempfile::tempdir().expect("folder");
    let file = dir.path().join("doc.pdf");
    let original = kyso_signed();
    std::fs::write(&file, &original).expect("write");
    tsa.set_down(true);
    let state = dir.path().join(".state.json");
    let (code, report) = extend(&tsa.url(), &tsa, &state, &[], &[&file]);
    assert_eq!(code, 1, "{report:#}");
    let e = entry(&report, &file);
    assert_eq!(e["status"], "failed");
    assert!(
        e["errors"][0].as_str().unwrap_or_default().contains("TSA"),
        "the error names the TSA: {e:#}"
    );
    assert_eq!(
        hex_sha256(&std::fs::read(&file).expect("read")),
        hex_sha256(&original)
    );
    assert!(
        e["backup"].is_null(),
        "a backup although nothing was written: {e:#}"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        entries.iter().all(|n| n == "doc.pdf"),
        "files were left behind: {entries:?}"
    );
}

/// An HTTP server on loopback answering every request with `body` as a timestamp reply.
fn replaying_tsa(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the headers and the body the Content-Length announces.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/")
}

#[test]
fn ltv_extend_never_writes_a_tsa_answer_that_does_not_verify_R1() {
    let tsa = TestTsa::start();
    // A genuine reply of the real TSA, for another document's digest.
    let other = sha256(b"another document");
    let query = kyso_pki::tsp::TimeStampReq::new(DigestAlgorithm::Sha256, &other, &[7u8; 16], None)
        .and_then(|r| r.to_der_bytes())
        .expect("query");
    let url = replaying_tsa(tsa.reply(&query));
    let dir = tempfile::tempdir().expect("folder");
    let file = dir.path().join("doc.pdf");
    let original = kyso_signed();
    std::fs::write(&file, &original).expect("write");
    let state = dir.path().join(".state.json");
    let (code, report) = extend(&url, &tsa, &state, &[], &[&file]);
    assert_eq!(code, 1, "{report:#}");
    let e = entry(&report, &file);
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["errors"][0].as_str().unwrap_or_default().contains("TSA"),
        "{e:#}"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        original,
        "the replayed token was written"
    );
    assert!(e["backup"].is_null());
}

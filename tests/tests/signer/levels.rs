//! Signature levels in the signer (N1, D7): CAdES and PAdES B-T with the signature timestamp
//! of a real TSA (`openssl ts -reply` behind HTTP, its own chain), checked by `openssl ts
//! -verify` and `openssl cms -verify`; the TSA budget (a slow TSA: B-B in time, the stored
//! original upgraded later, recorded); a dead TSA (B-B, no hang, the circuit opens); a TSA
//! outside the trust (never embedded); and a level no TSA can give (refused).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::signer::v1 as pb;
use kyso_tests::cluster::Cluster;
use kyso_tests::{DownMode, TestTsa};
use tonic::Code;

use crate::sign::audit_lines;

/// `[tsa]` for `tsa` with `budget_ms`, trusting the TSA's own root (or the [trust] anchors).
fn tsa_config(tsa: &TestTsa, budget_ms: u64, trust_tsa_root: bool) -> String {
    let roots = if trust_tsa_root {
        format!("tsa_roots = {:?}\n", tsa.root_pem())
    } else {
        String::new()
    };
    format!(
        "\n[tsa]\nurl = {:?}\nbudget_ms = {budget_ms}\ntimeout_ms = 5000\nretries = 1\n{roots}",
        tsa.url()
    )
}

/// The embedded evidence of signer 0.
fn embedded(cms: &[u8]) -> kyso_pki::cms::Embedded {
    let msg = kyso_pki::cms::parse(cms).expect("the CMS parses");
    kyso_pki::cms::embedded(&msg, 0).expect("signer 0")
}

/// SHA-256 of signer 0's signature value: the imprint of its signature timestamp.
fn signature_value_sha256(cms: &[u8]) -> Vec<u8> {
    let msg = kyso_pki::cms::parse(cms).expect("the CMS parses");
    let v = kyso_pki::cms::signature_value(&msg, 0).expect("signer 0");
    kyso_pki::crypto::sha256(v).to_vec()
}

fn scrape(c: &Cluster) -> String {
    let Some(addr) = c.metrics_addr() else {
        return String::new();
    };
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// N1: SignCms at B-T carries a signature timestamp whose imprint is the signature value's
/// SHA-256, accepted by `openssl ts -verify`; `openssl cms -verify` still accepts the CMS;
/// the reply and the audit record say B_T.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_b_t_embeds_a_token_openssl_ts_verify_accepts_N1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 5_000, true)).await;
    let content = b"Quyet dinh so 12/QD-UBND: B-T".to_vec();
    let mut req = c.approval(&content);
    req.level = pb::SignatureLevel::BT as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BT as i32,
        "{:?}",
        resp.warnings
    );
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);

    let e = embedded(&resp.cms);
    assert_eq!(e.timestamp_tokens.len(), 1, "{e:?}");
    let out =
        tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &signature_value_sha256(&resp.cms));
    assert!(out.success(), "openssl ts -verify: {}", out.stderr_str());
    assert!(
        out.stdout_str().contains("Verification: OK"),
        "{}",
        out.stdout_str()
    );
    // The token is over THIS signature: another digest fails.
    let other = tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &[7u8; 32]);
    assert!(!other.success(), "a token verified against another imprint");
    c.openssl_verify(&resp.cms, None);

    let lines = audit_lines(&c.audit_path());
    let last = lines
        .iter()
        .rev()
        .find_map(|l| l.get("entry"))
        .expect("an entry record");
    assert_eq!(last["decision"], "signed");
    assert_eq!(last["level_requested"], "B_T");
    assert_eq!(last["level_reached"], "B_T");
}

/// N1: a profile whose [levels] default is B-T signs at B-T without the request naming it;
/// a request may still ask for B-B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_level_applies_when_the_request_names_none_N1() {
    let tsa = TestTsa::start();
    let extra = format!(
        "{}\n[levels]\ndefault = \"b-b\"\n[levels.profiles]\nAPPROVAL = \"b-t\"\n",
        tsa_config(&tsa, 5_000, true)
    );
    let c = Cluster::start_with(&extra).await;
    let resp = c
        .client()
        .await
        .sign_cms(c.approval(b"profile level"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BT as i32,
        "{:?}",
        resp.warnings
    );
    assert!(embedded(&resp.cms).has_timestamp());
    let mut req = c.approval(b"asked for B-B");
    req.level = pb::SignatureLevel::BB as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(resp.level, pb::SignatureLevel::BB as i32);
    assert!(!embedded(&resp.cms).has_timestamp());
}

/// N1, D7: a TSA answering in 2 s against a budget of 500 ms: SignCms answers in time at
/// B-B with a warning; the CMS kept in the store is raised to B-T later (GetDocument by the
/// hash handed out gives the upgraded original) and the audit log has the upgrade record
/// with the SHA-256 before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_tsa_returns_b_b_within_budget_and_the_upgrade_lands_later_N1_D7() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 500, true)).await;
    let mut client = c.client().await;
    // Warm the signer's own-certificate check and the connections first: the budget is
    // about the TSA, not the first request's other work.
    client.sign_cms(c.approval(b"warm-up")).await.unwrap();
    tsa.set_delay(Duration::from_secs(2));

    let content = b"Cong van 7/UBND-VP: a slow TSA".to_vec();
    let mut req = c.approval(&content);
    req.level = pb::SignatureLevel::BT as i32;
    let started = Instant::now();
    let resp = client.sign_cms(req).await.unwrap().into_inner();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1_800), "SignCms took {took:?}");
    assert_eq!(resp.level, pb::SignatureLevel::BB as i32);
    assert!(
        resp.warnings.iter().any(|w| w.contains("budget")),
        "{:?}",
        resp.warnings
    );
    assert!(!embedded(&resp.cms).has_timestamp());
    let before = hex::encode(kyso_pki::crypto::sha256(&resp.cms));
    assert!(
        resp.warnings.iter().any(|w| w.contains(&before)),
        "{:?}",
        resp.warnings
    );
    let lines = audit_lines(&c.audit_path());
    let signed = lines
        .iter()
        .rev()
        .find_map(|l| l.get("entry"))
        .expect("an entry record");
    assert_eq!(signed["level_requested"], "B_T");
    assert_eq!(signed["level_reached"], "B_B");

    // The upgrade: the TSA answers (slowly) and the stored original is raised.
    let mut documents = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let upgraded = loop {
        let got = documents
            .get_document(dpb::GetDocumentRequest {
                sha256: before.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .pdf;
        if got != resp.cms {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the stored original was not upgraded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let e = embedded(&upgraded);
    assert_eq!(e.timestamp_tokens.len(), 1);
    let out =
        tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &signature_value_sha256(&upgraded));
    assert!(out.success(), "openssl ts -verify: {}", out.stderr_str());
    // Nothing signed moved: the same signature value, and openssl still accepts it.
    assert_eq!(
        signature_value_sha256(&upgraded),
        signature_value_sha256(&resp.cms)
    );
    c.openssl_verify(&upgraded, None);
    let after = hex::encode(kyso_pki::crypto::sha256(&upgraded));
    let lines = audit_lines(&c.audit_path());
    let up = lines
        .iter()
        .filter_map(|l| l.get("entry"))
        .find(|e| e["decision"] == "upgraded")
        .expect("an upgrade record");
    assert_eq!(up["before_sha256"], before.as_str());
    assert_eq!(up["after_sha256"], after.as_str());
    assert_eq!(up["level_reached"], "B_T");
    // The journal entry is gone once recorded.
    let pending = c.documents_dir().join("upgrades").join("cms");
    assert_eq!(std::fs::read_dir(pending).unwrap().count(), 0);
    // The log still verifies with the new record kind.
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(out.success(), "kyso audit verify: {}", out.stderr_str());
}

/// N1: a dead TSA (connections refused): every request answers at B-B with a warning,
/// promptly, and the TSA's circuit opens (later requests do not even try).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_tsa_gives_b_b_with_a_warning_and_opens_the_circuit_N1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 1_500, true)).await;
    tsa.set_down_mode(DownMode::Refuse);
    tsa.set_down(true);
    let mut client = c.client().await;
    for i in 0..5 {
        let mut req = c.approval(format!("dead TSA {i}").as_bytes());
        req.level = pb::SignatureLevel::BT as i32;
        let started = Instant::now();
        let resp = client.sign_cms(req).await.unwrap().into_inner();
        assert!(
            started.elapsed() < Duration::from_millis(4_000),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(resp.level, pb::SignatureLevel::BB as i32);
        assert!(!resp.warnings.is_empty());
        assert!(!embedded(&resp.cms).has_timestamp());
        c.openssl_verify(&resp.cms, None);
    }
    let metrics = scrape(&c);
    assert!(
        metrics.lines().any(|l| l.contains("source=\"tsa\"")
            && l.contains("circuit_open")
            && !l.ends_with(" 0")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("source=\"tsa\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// N1: a TSA whose certificate does not chain to the TSA trust (here the signer's [trust]
/// anchors, which do not hold the TSA's root): its token is never embedded; B-B, warned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_tsa_outside_the_trust_is_not_embedded_N1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 5_000, false)).await;
    let mut req = c.approval(b"untrusted TSA");
    req.level = pb::SignatureLevel::BT as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(resp.level, pb::SignatureLevel::BB as i32);
    assert!(
        resp.warnings.iter().any(|w| w.contains("not trusted")),
        "{:?}",
        resp.warnings
    );
    assert!(!embedded(&resp.cms).has_timestamp());
    assert!(tsa.requests() >= 1, "the TSA was asked");
}

/// N1: B-T asked of a signer without [tsa] is refused before anything is signed, with
/// FAILED_PRECONDITION naming N1; B-LTA is not a signing level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_t_without_a_tsa_is_refused_N1() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let records = audit_lines(&c.audit_path()).len();
    let mut req = c.approval(b"no TSA here");
    req.level = pb::SignatureLevel::BT as i32;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("N1"), "{}", err.message());
    assert!(err.message().contains("[tsa]"), "{}", err.message());
    assert_eq!(
        audit_lines(&c.audit_path()).len(),
        records,
        "nothing was signed"
    );
    let mut req = c.approval(b"no B-LTA here");
    req.level = pb::SignatureLevel::BLta as i32;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

/// N1: PAdES B-T: the PDF signature's CMS carries the signature timestamp (openssl ts
/// -verify accepts it over the signature value), inside the reserved /Contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_b_t_carries_the_signature_timestamp_in_its_cms_N1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 5_000, true)).await;
    let mut req = crate::pdf::approval(&c, crate::pdf::sample_pdf());
    req.level = pb::SignatureLevel::BT as i32;
    let resp = c
        .client()
        .await
        .max_decoding_message_size(64 << 20)
        .sign_pdf(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BT as i32,
        "{:?}",
        resp.warnings
    );
    let parsed = kyso_pdf::parse_signatures(&resp.pdf, &kyso_pdf::PdfLimits::default()).unwrap();
    let sig = parsed.signatures.last().expect("a signature");
    let cms = der_prefix(&sig.contents);
    let e = embedded(cms);
    assert_eq!(e.timestamp_tokens.len(), 1);
    let out = tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &signature_value_sha256(cms));
    assert!(out.success(), "openssl ts -verify: {}", out.stderr_str());
}

/// The DER element at the start of `b` (a /Contents is zero padded).
fn der_prefix(b: &[u8]) -> &[u8] {
    let (len, hdr) = match b.get(1).copied() {
        Some(l) if l < 0x80 => (usize::from(l), 2),
        Some(l) => {
            let n = usize::from(l & 0x7f);
            let len = b[2..2 + n]
                .iter()
                .fold(0usize, |a, x| (a << 8) | usize::from(*x));
            (len, 2 + n)
        }
        None => (0, 0),
    };
    &b[..hdr + len]
}

/// The certificates of a PEM file, DER.
fn pem_ders(path: &std::path::Path) -> Vec<Vec<u8>> {
    kyso_pki::cert::Cert::parse_many(&std::fs::read(path).unwrap())
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

/// N1 (B-LT building block): certificate-values and revocation-values added to a signer's
/// B-T CMS as unsigned attributes (kyso-pki `add_validation_data`): nothing signed moves,
/// `openssl cms -verify` still accepts it, the token still verifies, `openssl cms -cmsout
/// -print` shows both attributes, and `kyso_pki::cms::embedded` gives the same DER back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_data_added_to_a_b_t_cms_keeps_it_valid_and_reads_back_N1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 5_000, true)).await;
    let mut req = c.approval(b"B-LT material");
    req.level = pb::SignatureLevel::BT as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BT as i32,
        "{:?}",
        resp.warnings
    );

    let mut certificates = pem_ders(&c.leaf_pem("chairman"));
    certificates.extend(pem_ders(&c.pki.issuing_ca_pem()));
    certificates.extend(pem_ders(&c.pki.root_pem()));
    let crls = vec![
        std::fs::read(c.pki.crl("issuing-ca")).unwrap(),
        std::fs::read(c.pki.crl("root")).unwrap(),
    ];
    let data = kyso_pki::cms_build::ValidationData {
        certificates: certificates.clone(),
        crls: crls.clone(),
        ocsp: Vec::new(),
    };
    let lt = kyso_pki::cms_build::add_validation_data(&resp.cms, 0, &data).unwrap();
    assert_ne!(lt, resp.cms);
    assert_eq!(
        signature_value_sha256(&lt),
        signature_value_sha256(&resp.cms)
    );
    c.openssl_verify(&lt, None);
    let e = embedded(&lt);
    assert_eq!(e.certificates, certificates);
    assert_eq!(e.crls, crls);
    assert_eq!(e.timestamp_tokens.len(), 1);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    let out = tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &signature_value_sha256(&lt));
    assert!(out.success(), "openssl ts -verify: {}", out.stderr_str());

    let p = c.documents_dir().join("lt.p7s");
    std::fs::write(&p, &lt).unwrap();
    let printed = c.pki.openssl(&[
        "cms".into(),
        "-cmsout".into(),
        "-print".into(),
        "-inform".into(),
        "DER".into(),
        "-in".into(),
        p.display().to_string(),
    ]);
    assert!(printed.success(), "{}", printed.stderr_str());
    let text = printed.stdout_str();
    for name in [
        "id-smime-aa-ets-certValues",
        "id-smime-aa-ets-revocationValues",
        "id-smime-aa-timeStampToken",
    ] {
        assert!(text.contains(name), "{name} not in openssl's print");
    }

    // A BER input is refused, not re-encoded (the signed bytes could move).
    let skip = if lt[1] < 0x80 {
        2
    } else {
        2 + usize::from(lt[1] & 0x7f)
    };
    let mut ber = vec![0x30, 0x80]; // the outer SEQUENCE with an indefinite length
    ber.extend_from_slice(&lt[skip..]);
    ber.extend_from_slice(&[0, 0]);
    assert!(
        kyso_pki::cms::parse(&ber).is_ok(),
        "the BER form is a readable CMS"
    );
    assert!(kyso_pki::cms_build::add_signature_timestamp(&ber, 0, &e.timestamp_tokens[0]).is_err());
}

/// N1, R1: SignCms at B-LT carries, besides the signature timestamp, the signer's path as
/// certificate-values and the OCSP/CRL DER of every certificate on it as revocation-values,
/// fetched by the signer itself (`kyso_pki::cms::embedded` reads them back: the leaf, its CA,
/// and the CRLs the test PKI publishes); `openssl cms -verify` and `openssl ts -verify` still
/// accept it; a second signature with the same key reuses the cached data (same DER).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_b_lt_embeds_certificate_and_revocation_values_openssl_accepts_N1_R1() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 5_000, true)).await;
    let mut req = c.approval(b"Quyet dinh so 13/QD-UBND: B-LT");
    req.level = pb::SignatureLevel::BLt as i32;
    let resp = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BLt as i32,
        "{:?}",
        resp.warnings
    );
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);
    let e = embedded(&resp.cms);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    assert_eq!(e.timestamp_tokens.len(), 1);
    let leaf = pem_ders(&c.leaf_pem("chairman"));
    let ca = pem_ders(&c.pki.issuing_ca_pem());
    assert!(
        e.certificates.contains(&leaf[0]),
        "the leaf is not embedded"
    );
    assert!(e.certificates.contains(&ca[0]), "the CA is not embedded");
    assert!(
        !e.crls.is_empty() || !e.ocsp.is_empty(),
        "no revocation values: {e:?}"
    );
    let published = std::fs::read(c.pki.crl("issuing-ca")).unwrap();
    assert!(
        e.crls.contains(&published) || !e.ocsp.is_empty(),
        "the issuing CA's CRL is not the one embedded"
    );
    c.openssl_verify(&resp.cms, None);
    let out =
        tsa.openssl_verify_token_digest(&e.timestamp_tokens[0], &signature_value_sha256(&resp.cms));
    assert!(out.success(), "openssl ts -verify: {}", out.stderr_str());

    let mut req = c.approval(b"second B-LT");
    req.level = pb::SignatureLevel::BLt as i32;
    let again = c.client().await.sign_cms(req).await.unwrap().into_inner();
    assert_eq!(again.level, pb::SignatureLevel::BLt as i32);
    let e2 = embedded(&again.cms);
    assert_eq!((e2.crls, e2.ocsp), (e.crls, e.ocsp));

    let lines = audit_lines(&c.audit_path());
    let last = lines
        .iter()
        .rev()
        .find_map(|l| l.get("entry"))
        .expect("an entry record");
    assert_eq!(last["level_requested"], "B_LT");
    assert_eq!(last["level_reached"], "B_LT");
}

/// The signature dictionaries of a PDF (field, document timestamp or not).
fn pdf_signatures(pdf: &[u8]) -> Vec<kyso_pades::ltv::SignatureContents> {
    kyso_pades::ltv::signature_contents(pdf, &kyso_pades::PadesLimits::default()).unwrap()
}

/// N1, R1, D7: SignPdf at B-LTA: the signature (with its signature timestamp), then a DSS
/// revision with the signer's path and revocation DER and the TSA's certificates, then a
/// document timestamp; pyHanko's long-term validation, with the test roots and no fetching
/// (the DSS must suffice), passes; `pdfsig` lists the document timestamp; the signed bytes
/// are the prefix of the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_b_lta_dss_and_document_timestamp_pyhanko_ltv_passes_pdfsig_lists_it_N1_R1_D7() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 10_000, true)).await;
    let mut req = crate::pdf::approval(&c, crate::pdf::sample_pdf());
    req.level = pb::SignatureLevel::BLta as i32;
    let resp = c
        .client()
        .await
        .max_decoding_message_size(64 << 20)
        .sign_pdf(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BLta as i32,
        "{:?}",
        resp.warnings
    );
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);
    assert_eq!(resp.sha256, kyso_pki::crypto::sha256(&resp.pdf).to_vec());
    let sigs = pdf_signatures(&resp.pdf);
    assert!(sigs.iter().any(|s| s.document_timestamp), "{sigs:?}");
    let dss = kyso_pades::ltv::read_dss(&resp.pdf, &kyso_pades::PadesLimits::default())
        .unwrap()
        .expect("a DSS");
    assert!(!dss.certs.is_empty(), "{dss:?}");
    assert!(!dss.crls.is_empty() || !dss.ocsps.is_empty(), "{dss:?}");

    let v = kyso_tests::pdf_peers::Peers::get().pyhanko_validate_ltv(
        &resp.pdf,
        &[c.pki.root_pem(), tsa.root_pem()],
        &[c.pki.intermediates_pem()],
    );
    let list = v["signatures"].as_array().expect("signatures");
    assert!(!list.is_empty(), "{v:#}");
    for s in list {
        assert_eq!(s["passed"], true, "pyHanko's LTA validation: {v:#}");
    }
    let db = kyso_tests::pdf_peers::NssDb::for_test_pki(&c.pki);
    let listed = kyso_tests::pdf_peers::pdfsig(&resp.pdf, &db);
    let field = sigs
        .iter()
        .find(|s| s.document_timestamp)
        .map(|s| s.field_name.clone())
        .unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s.field.as_deref() == Some(field.as_str())),
        "pdfsig does not list the document timestamp: {listed:#?}"
    );
}

/// N1, D7: a PDF asked at B-T from a TSA slower than the budget: SignPdf answers in time at
/// B-B with a warning; the background upgrade then adds the DSS and a document timestamp
/// to the stored original (a B-B signature cannot take a signature timestamp without being
/// signed again), GetDocument by the first hash returns it, the signed bytes are its
/// prefix, and the audit log has the `upgraded` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_tsa_pdf_b_b_within_budget_then_the_stored_original_gets_dss_and_document_timestamp_N1_D7()
 {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&tsa_config(&tsa, 500, true)).await;
    let mut client = c.client().await.max_decoding_message_size(64 << 20);
    client.sign_cms(c.approval(b"warm-up")).await.unwrap();
    tsa.set_delay(Duration::from_secs(2));
    let mut req = crate::pdf::approval(&c, crate::pdf::sample_pdf());
    req.level = pb::SignatureLevel::BT as i32;
    let started = Instant::now();
    let resp = client.sign_pdf(req).await.unwrap().into_inner();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1_800), "SignPdf took {took:?}");
    assert_eq!(
        resp.level,
        pb::SignatureLevel::BB as i32,
        "{:?}",
        resp.warnings
    );
    let before = hex::encode(&resp.sha256);
    assert!(
        resp.warnings.iter().any(|w| w.contains(&before)),
        "{:?}",
        resp.warnings
    );

    let mut documents = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20);
    let deadline = Instant::now() + Duration::from_secs(40);
    let upgraded = loop {
        let got = documents
            .get_document(dpb::GetDocumentRequest {
                sha256: before.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .pdf;
        if got != resp.pdf {
            break got;
        }
        assert!(Instant::now() < deadline, "the stored PDF was not upgraded");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(upgraded.starts_with(&resp.pdf), "the signed bytes moved");
    let sigs = pdf_signatures(&upgraded);
    assert!(sigs.iter().any(|s| s.document_timestamp), "{sigs:?}");
    assert!(
        kyso_pades::ltv::read_dss(&upgraded, &kyso_pades::PadesLimits::default())
            .unwrap()
            .is_some(),
        "no DSS"
    );
    let db = kyso_tests::pdf_peers::NssDb::for_test_pki(&c.pki);
    let listed = kyso_tests::pdf_peers::pdfsig(&upgraded, &db);
    assert!(listed.len() >= 2, "{listed:#?}");
    let after = hex::encode(kyso_pki::crypto::sha256(&upgraded));
    let lines = audit_lines(&c.audit_path());
    let up = lines
        .iter()
        .filter_map(|l| l.get("entry"))
        .find(|e| e["decision"] == "upgraded")
        .expect("an upgrade record");
    assert_eq!(up["before_sha256"], before.as_str());
    assert_eq!(up["after_sha256"], after.as_str());
    let pending = c.documents_dir().join("upgrades").join("pdf");
    assert_eq!(std::fs::read_dir(pending).unwrap().count(), 0);
}

/// N1, D7: the document flow with `[levels] ISSUE = "b-lta"`: `kyso doc issue` (IssueOutgoing)
/// gets the seal at B-LTA (the DSS and a document timestamp after it), and the file stored
/// as the original, which GetDocument returns, is that file: the draft is its prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_outgoing_at_b_lta_stores_the_file_with_dss_and_document_timestamp_N1_D7() {
    let tsa = TestTsa::start();
    let c = Cluster::start_with(&format!(
        "{}\n[levels]\n[levels.profiles]\nISSUE = \"b-lta\"\n",
        tsa_config(&tsa, 10_000, true)
    ))
    .await;
    let draft = crate::pdf::sample_pdf();
    let dir = c.dir.path();
    let input = dir.join("draft.pdf");
    std::fs::write(&input, &draft).unwrap();
    let issued = dir.join("issued.pdf");
    let today = Cluster::today();
    let (code, out) = crate::documents::kyso_doc(
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
            "124/QĐ-UBND",
            "--issue-date",
            &today,
            "--approval-key",
            "chairman",
            "--approver",
            &c.province.chairman,
            "--approval-rect",
            "1,100,100,300,200",
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
            "--recipients",
            "Sở Tài chính",
        ],
    );
    assert_eq!(code, 0, "kyso doc issue: {out}");
    let issued_pdf = std::fs::read(&issued).unwrap();
    assert!(issued_pdf.starts_with(&draft));
    let sigs = pdf_signatures(&issued_pdf);
    assert_eq!(
        sigs.iter().filter(|s| !s.document_timestamp).count(),
        2,
        "{sigs:?}"
    );
    assert!(
        sigs.last().is_some_and(|s| s.document_timestamp),
        "{sigs:?}"
    );
    assert!(
        kyso_pades::ltv::read_dss(&issued_pdf, &kyso_pades::PadesLimits::default())
            .unwrap()
            .is_some()
    );
    let fetched = dir.join("fetched.pdf");
    let (code, _) = crate::documents::kyso_doc(
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
}

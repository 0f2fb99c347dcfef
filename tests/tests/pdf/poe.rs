//! PAdES beyond B-B made by pyHanko with the real test TSA (`openssl ts -reply` over HTTP):
//! kyso judges each signature at its proof of existence (issue 16 item 4). B-T: the signature
//! timestamp in the CMS; B-LT: the same plus a DSS (an allowed later update, V5); B-LTA: a
//! document timestamp (`/Type /DocTimeStamp`, `ETSI.RFC3161`) covering the signature and
//! the DSS, itself verified over its byte range with its TSA's path.

use kyso_pki::time::OffsetDateTime;
use kyso_tests::pdf_peers::{Peers, PyhankoLevel, PyhankoSign, SampleKind};
use kyso_tests::{TestPki, TestTsa, shared_servers};
use kyso_validation::pdf::{ModificationKind, PdfReport, PdfVerifyOptions, SignatureKind};
use kyso_validation::report::{
    CertStatus, EvidenceOrigin, Indication, RevocationPolicy, SignatureLevel, SubIndication,
    TimeSource, TimestampKind,
};

/// The test PKI's verifier with the TSA's root as one more anchor.
fn verifier(tsa: &TestTsa) -> kyso_validation::verify::Verifier {
    let mut cfg = kyso_tests::trust_config(shared_servers());
    cfg.trust_anchors.push(tsa.root_pem());
    kyso_tests::verifier_from(&cfg)
}

async fn kyso_verify(tsa: &TestTsa, pdf: &[u8]) -> PdfReport {
    let options = PdfVerifyOptions {
        // The test TSA publishes no revocation status for its certificate.
        policy: Some(RevocationPolicy::SoftFail),
        ..PdfVerifyOptions::default()
    };
    verifier(tsa)
        .verify_pdf(pdf, &options, OffsetDateTime::now_utc())
        .await
        .unwrap_or_else(|e| panic!("kyso refused to read the PDF: {e}"))
}

fn level(tsa: &TestTsa, lt: bool, lta: bool) -> PyhankoLevel {
    let pki = TestPki::get();
    PyhankoLevel {
        timestamp_url: Some(tsa.url()),
        embed_validation_info: lt,
        use_pades_lta: lta,
        roots: vec![pki.root_pem(), tsa.root_pem()],
        rewrites: shared_servers().rewrites(),
        ..PyhankoLevel::default()
    }
}

fn sign(tsa: &TestTsa, lt: bool, lta: bool) -> Vec<u8> {
    let pki = TestPki::get();
    let peers = Peers::get();
    let doc = peers.sample(SampleKind::Decision);
    peers.pyhanko_sign_level(
        &doc.bytes,
        &PyhankoSign::leaf(pki, "personal-rsa", "Sig1"),
        &level(tsa, lt, lta),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pyhanko_b_t_is_judged_at_its_signature_timestamp_N1_N3() {
    let tsa = TestTsa::start();
    let pdf = sign(&tsa, false, false);
    let r = kyso_verify(&tsa, &pdf).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    let s = &r.signatures[0].report;
    assert_eq!(s.timestamps.len(), 1, "{s:#?}");
    let t = &s.timestamps[0];
    assert_eq!(
        (t.kind, t.indication),
        (TimestampKind::Signature, Indication::TotalPassed),
        "{t:#?}"
    );
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    assert_eq!(Some(s.reference_time.time), t.gen_time);
    assert_eq!(s.level, SignatureLevel::BT);
    assert_eq!(s.poe.map(|p| p.time), t.gen_time);
}

#[tokio::test(flavor = "multi_thread")]
async fn pyhanko_b_lt_dss_is_an_allowed_update_and_the_level_is_b_lt_N3_R1() {
    let tsa = TestTsa::start();
    let pdf = sign(&tsa, true, false);
    let r = kyso_verify(&tsa, &pdf).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    assert_eq!(r.signatures.len(), 1, "{r:#?}");
    let sig = &r.signatures[0];
    assert!(
        sig.modifications
            .iter()
            .any(|m| m.kind == ModificationKind::Dss && m.allowed),
        "{:#?}",
        sig.modifications
    );
    assert_eq!(sig.report.level, SignatureLevel::BLt, "{:#?}", sig.report);
    assert_eq!(
        sig.report.reference_time.source,
        TimeSource::SignatureTimestamp
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pyhanko_b_lta_document_timestamp_covers_the_signature_and_the_dss_N3_R1() {
    let tsa = TestTsa::start();
    let pdf = sign(&tsa, true, true);
    let r = kyso_verify(&tsa, &pdf).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    assert_eq!(r.signatures.len(), 2, "{r:#?}");
    let (sig, doc_ts) = (&r.signatures[0], &r.signatures[1]);
    assert_eq!(sig.kind, SignatureKind::Signature);
    assert_eq!(doc_ts.kind, SignatureKind::DocTimeStamp);
    assert_eq!(doc_ts.sub_filter, "ETSI.RFC3161");
    // pyHanko adds the timestamp's own validation data in a DSS update after it: allowed.
    assert!(
        doc_ts.modifications.iter().all(|m| m.allowed),
        "{doc_ts:#?}"
    );
    // The DSS and the document timestamp are allowed later updates (V5).
    assert!(
        sig.modifications.iter().all(|m| m.allowed),
        "{:#?}",
        sig.modifications
    );
    assert!(
        sig.modifications
            .iter()
            .any(|m| m.kind == ModificationKind::Dss),
        "{:#?}",
        sig.modifications
    );
    // The document timestamp's own token is verified over its byte range.
    let own = &doc_ts.report.timestamps;
    assert_eq!(own.len(), 1, "{own:#?}");
    assert_eq!(
        (own[0].kind, own[0].indication),
        (TimestampKind::Document, Indication::TotalPassed),
        "{own:#?}"
    );
    // The signature: its signature timestamp and the covering document timestamp; the
    // earliest is its proof of existence.
    let kinds: Vec<_> = sig.report.timestamps.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [TimestampKind::Signature, TimestampKind::Document],
        "{:#?}",
        sig.report.timestamps
    );
    assert!(
        sig.report
            .timestamps
            .iter()
            .all(|t| t.indication == Indication::TotalPassed)
    );
    assert_eq!(
        sig.report.reference_time.source,
        TimeSource::SignatureTimestamp
    );
    assert_eq!(
        Some(sig.report.reference_time.time),
        sig.report.timestamps[0].gen_time
    );
    assert_eq!(sig.report.level, SignatureLevel::BLta);
}

/// [`verifier`] whose every revocation and AIA URL is rewritten to a closed port: the
/// sources no longer answer, as years after signing.
fn verifier_offline(tsa: &TestTsa) -> kyso_validation::verify::Verifier {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!("http://{}/", l.local_addr().expect("address"))
    };
    let mut cfg = kyso_tests::trust_config(shared_servers());
    cfg.trust_anchors.push(tsa.root_pem());
    cfg.revocation.url_rewrites = kyso_tests::rewrites(&closed, &closed, &closed)
        .into_iter()
        .map(|(from, to)| kyso_validation::config::UrlRewrite { from, to })
        .collect();
    kyso_tests::verifier_from(&cfg)
}

async fn verify_with(
    v: &kyso_validation::verify::Verifier,
    pdf: &[u8],
    policy: RevocationPolicy,
) -> PdfReport {
    let options = PdfVerifyOptions {
        policy: Some(policy),
        ..PdfVerifyOptions::default()
    };
    v.verify_pdf(pdf, &options, OffsetDateTime::now_utc())
        .await
        .unwrap_or_else(|e| panic!("kyso refused to read the PDF: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pyhanko_b_lt_passes_with_revocation_sources_down_from_its_dss_N2_N3_R1() {
    let tsa = TestTsa::start();
    let offline = verifier_offline(&tsa);

    let b_lt = sign(&tsa, true, false);
    // Soft-fail only for the TSA, which publishes no status; the signer's path must be
    // settled by the DSS alone.
    let r = verify_with(&offline, &b_lt, RevocationPolicy::SoftFail).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    let s = &r.signatures[0].report;
    assert_eq!(s.level, SignatureLevel::BLt, "{s:#?}");
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    assert!(!s.revocation.is_empty(), "{s:#?}");
    assert!(
        s.revocation
            .iter()
            .all(|e| e.origin == EvidenceOrigin::EmbeddedDss && e.status == CertStatus::Good),
        "{:#?}",
        s.revocation
    );

    // The same kind of file without a DSS (B-T): nothing settles the signer's status.
    let b_t = sign(&tsa, false, false);
    let r = verify_with(&offline, &b_t, RevocationPolicy::Require).await;
    let s = &r.signatures[0].report;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{s:#?}"
    );
}

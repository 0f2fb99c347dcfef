//! PDFs from the past (issue 16 item 4; ETSI EN 319 102-1 past signature validation): tokens
//! made with the clock moved back (`faketime`), by TSAs whose certificates have expired since.
//! A token's own genTime is not a proof that the token existed then; a LATER verified
//! document timestamp over it is (an archive timestamp), and its TSA is judged at that time.

use kyso_pades::PadesLimits;
use kyso_pades::ltv::{
    DocTimestampRequest, SignatureValidationData, add_dss, prepare_document_timestamp,
    signature_contents,
};
use kyso_pki::time::OffsetDateTime;
use kyso_tests::pdf_peers::{Peers, PyhankoLevel, PyhankoSign, SampleKind};
use kyso_tests::{PastTsa, TestPki};
use kyso_validation::pdf::{PdfReport, PdfVerifyOptions, SignatureKind};
use kyso_validation::report::{
    CertStatus, EvidenceOrigin, Indication, RevocationPolicy, SignatureLevel, SubIndication,
    TimeSource, TimestampKind, TimestampReport,
};

/// The test PKI's verifier with the given TSA roots as anchors too.
fn verifier(roots: &[std::path::PathBuf]) -> kyso_validation::verify::Verifier {
    let mut cfg = kyso_tests::trust_config(kyso_tests::shared_servers());
    cfg.trust_anchors.extend(roots.iter().cloned());
    kyso_tests::verifier_from(&cfg)
}

/// [`verifier`] whose every revocation and AIA URL of the test PKI is rewritten to a closed
/// port: the sources no longer answer, as years after signing.
fn verifier_offline(roots: &[std::path::PathBuf]) -> kyso_validation::verify::Verifier {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!("http://{}/", l.local_addr().expect("address"))
    };
    let mut cfg = kyso_tests::trust_config(kyso_tests::shared_servers());
    cfg.trust_anchors.extend(roots.iter().cloned());
    cfg.revocation.url_rewrites = kyso_tests::rewrites(&closed, &closed, &closed)
        .into_iter()
        .map(|(from, to)| kyso_validation::config::UrlRewrite { from, to })
        .collect();
    kyso_tests::verifier_from(&cfg)
}

/// pyHanko signs the sample as `leaf` with the clock `clock` away, with a signature timestamp
/// from `tsa_url` (a TSA stamping at that time too) when given.
fn pyhanko_at(leaf: &str, clock: &str, tsa_url: Option<String>) -> Vec<u8> {
    let pki = TestPki::get();
    let peers = Peers::get();
    let doc = peers.sample(SampleKind::Decision);
    peers.pyhanko_sign_level(
        &doc.bytes,
        &PyhankoSign::leaf(pki, leaf, "Sig1"),
        &PyhankoLevel {
            timestamp_url: tsa_url,
            clock: Some(clock.to_owned()),
            ..PyhankoLevel::default()
        },
    )
}

async fn verify(v: &kyso_validation::verify::Verifier, pdf: &[u8]) -> PdfReport {
    let options = PdfVerifyOptions {
        // The past TSAs publish no revocation status for their certificates.
        policy: Some(RevocationPolicy::SoftFail),
        ..PdfVerifyOptions::default()
    };
    v.verify_pdf(pdf, &options, OffsetDateTime::now_utc())
        .await
        .unwrap_or_else(|e| panic!("kyso refused to read the PDF: {e}"))
}

/// `pdf` with a document timestamp (kyso-pades' writer) whose token `tsa` stamps with the
/// clock `offset` away.
fn doc_timestamp(pdf: &[u8], tsa: &PastTsa, offset: &str) -> Vec<u8> {
    let prepared =
        prepare_document_timestamp(pdf, &DocTimestampRequest::default()).expect("prepared");
    let token = tsa.token_for(offset, prepared.digest_algorithm(), prepared.digest());
    prepared.finish(&token, &[]).expect("document timestamp").0
}

/// The verdict on document timestamp `i`'s own token.
fn own_token(r: &PdfReport, i: usize) -> &TimestampReport {
    let s = &r.signatures[i];
    assert_eq!(s.kind, SignatureKind::DocTimeStamp, "{s:#?}");
    s.report
        .timestamps
        .iter()
        .rfind(|t| t.kind == TimestampKind::Document)
        .unwrap_or_else(|| panic!("no verdict on its own token: {s:#?}"))
}

/// A document timestamp stamped 300 days ago by a TSA whose certificate expired 200 days ago:
/// alone it proves nothing (its TSA does not hold now, nothing proves the token existed while
/// it did: OUT_OF_BOUNDS_NO_POE, said in the report); covered by a later document timestamp
/// made 250 days ago (before the expiry, by a TSA still valid) its TSA is judged at the later
/// token's time and it is a proof of existence again; covered only by one made 100 days ago
/// (after the expiry) it still proves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn token_of_an_expired_tsa_counts_when_a_later_document_timestamp_covers_it_N3_R1() {
    let expired = PastTsa::issued("-400d", 200);
    let valid = PastTsa::issued("-400d", 3650);
    let doc = Peers::get().sample(SampleKind::Decision).bytes;
    let one = doc_timestamp(&doc, &expired, "-300d");
    let two = doc_timestamp(&one, &valid, "-250d");
    let too_late = doc_timestamp(&one, &valid, "-100d");
    let v = verifier(&[expired.root_pem(), valid.root_pem()]);

    let r = verify(&v, &one).await;
    let t = own_token(&r, 0);
    assert_eq!(
        (t.indication, t.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::OutOfBoundsNoPoe)
        ),
        "{t:#?}"
    );
    assert!(
        t.message.contains("proves nothing") && t.message.contains("no later document timestamp"),
        "{}",
        t.message
    );
    assert_ne!(r.indication, Indication::TotalPassed, "{r:#?}");

    let r = verify(&v, &two).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    let later = own_token(&r, 1);
    assert_eq!(later.indication, Indication::TotalPassed, "{later:#?}");
    let at = later.gen_time.expect("the later token's time");
    let t = own_token(&r, 0);
    assert_eq!(t.indication, Indication::TotalPassed, "{t:#?}");
    assert!(
        t.warnings.iter().any(|w| w.contains("judged at")),
        "{:#?}",
        t.warnings
    );
    let first = &r.signatures[0].report;
    assert_eq!(first.reference_time.source, TimeSource::DocumentTimestamp);
    assert_eq!(first.reference_time.time, at, "{first:#?}");
    let ago = OffsetDateTime::now_utc() - t.gen_time.expect("genTime");
    assert!(ago > time::Duration::days(299), "{ago}");

    let r = verify(&v, &too_late).await;
    assert_eq!(
        own_token(&r, 1).indication,
        Indication::TotalPassed,
        "{r:#?}"
    );
    let t = own_token(&r, 0);
    assert_eq!(
        (t.indication, t.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::OutOfBoundsNoPoe)
        ),
        "{t:#?}"
    );
    assert!(t.message.contains("did not hold at"), "{}", t.message);
    assert_ne!(r.indication, Indication::TotalPassed, "{r:#?}");
}

/// The `expired` leaf (valid from 400 to 30 days ago) signs with pyHanko 100 days ago (under
/// faketime), with a signature timestamp from a TSA stamping then (B-T); the DSS then holds
/// the CRLs its issuing CA and the root published the next day (made under faketime by
/// `openssl ca -gencrl`), B-LT, and a document timestamp over it makes B-LTA. Verified now,
/// with every revocation source down: B-LT and B-LTA pass at the signature timestamp's time,
/// the evidence from the DSS; B-B (the same signing, no timestamp) is OUT_OF_BOUNDS_NO_POE.
#[tokio::test(flavor = "multi_thread")]
async fn past_pdf_signature_b_lt_and_b_lta_pass_b_b_does_not_N2_N3_R1() {
    let pki = TestPki::get();
    let tsa = PastTsa::new();
    let server = tsa.serve("-100d");
    let b_b = pyhanko_at("expired", "-100d", None);
    let b_t = pyhanko_at("expired", "-100d", Some(server.url()));
    let limits = PadesLimits::default();
    let contents = signature_contents(&b_t, &limits).expect("signatures");
    let data = SignatureValidationData {
        contents: contents[0].contents.clone(),
        certs: vec![
            pki.cert_der(pki.leaf_issuer("expired")),
            pki.cert_der(pki.root_pem()),
        ],
        ocsps: Vec::new(),
        crls: vec![
            pki.crl_at("issuing-ca", "-99d", 365),
            pki.crl_at("root", "-99d", 365),
        ],
    };
    let b_lt = add_dss(&b_t, &[data], None, &limits).expect("DSS").pdf;
    let b_lta = doc_timestamp(&b_lt, &tsa, "-98d");
    let v = verifier_offline(&[tsa.root_pem()]);

    let r = verify(&v, &b_b).await;
    let s = &r.signatures[0].report;
    assert_eq!(
        (s.indication, s.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::OutOfBoundsNoPoe)
        ),
        "{s:#?}"
    );
    assert_eq!(s.level, SignatureLevel::BB);

    for (pdf, level) in [(&b_lt, SignatureLevel::BLt), (&b_lta, SignatureLevel::BLta)] {
        let r = verify(&v, pdf).await;
        assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
        let s = &r.signatures[0].report;
        assert_eq!(s.level, level, "{s:#?}");
        let poe = s.poe.expect("a proof of existence");
        assert_eq!(poe.source, TimeSource::SignatureTimestamp);
        assert_eq!(s.reference_time, poe);
        let ago = OffsetDateTime::now_utc() - poe.time;
        assert!(
            ago > time::Duration::days(99) && ago < time::Duration::days(101),
            "stamped 100 days ago: {poe:?}"
        );
        assert_eq!(s.revocation.len(), 2, "{:#?}", s.revocation);
        assert!(
            s.revocation
                .iter()
                .all(|e| e.origin == EvidenceOrigin::EmbeddedDss && e.status == CertStatus::Good),
            "{:#?}",
            s.revocation
        );
    }
}

/// The `revoked` leaf (revoked an hour ago, keyCompromise) signed two hours ago with pyHanko
/// (under faketime). A document timestamp made after the revocation proves only that the
/// signature existed after it: it does not rescue the B-B signature (REVOKED_NO_POE, ETSI EN
/// 319 102-1 5.6.2.4); the same signing with a signature timestamp from before the revocation
/// passes, judged at that time.
#[tokio::test(flavor = "multi_thread")]
async fn pdf_document_timestamp_after_the_revocation_does_not_rescue_b_b_N2_N3_R1() {
    let tsa = PastTsa::new();
    let server = tsa.serve("-2h");
    let b_b = pyhanko_at("revoked", "-2h", None);
    let late = doc_timestamp(&b_b, &tsa, "-1m");
    let b_t = pyhanko_at("revoked", "-2h", Some(server.url()));
    let v = verifier(&[tsa.root_pem()]);

    let r = verify(&v, &late).await;
    assert_eq!(
        own_token(&r, 1).indication,
        Indication::TotalPassed,
        "{r:#?}"
    );
    let s = &r.signatures[0].report;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::RevokedNoPoe)),
        "{s:#?}"
    );
    assert_eq!(s.reference_time.source, TimeSource::DocumentTimestamp);
    assert_ne!(r.indication, Indication::TotalPassed);

    let r = verify(&v, &b_t).await;
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    let s = &r.signatures[0].report;
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    let ago = OffsetDateTime::now_utc() - s.reference_time.time;
    assert!(ago > time::Duration::minutes(110), "{:?}", s.reference_time);
    assert!(
        s.warnings.iter().any(|w| w.contains("revoked at")),
        "{:#?}",
        s.warnings
    );
}

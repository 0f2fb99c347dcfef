//! Validation in the past (issue 16 item 4): the reference time is the best proof of
//! existence, never the signer's claim. A CAdES B-T signature (a CMS whose SignerInfo carries
//! an `id-aa-signatureTimeStampToken` from the real test TSA, `openssl ts -reply`) is judged at
//! the token's genTime; a token over another signature's value proves nothing and the
//! signature is judged now.

use cms::cert::x509::attr::Attribute;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use kyso_pki::cms::Detached;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::OffsetDateTime;
use kyso_pki::tsp::{TimeStampReq, TimeStampResp, TstInfo};
use kyso_tests::{CmsSign, PastTsa, TestTsa, openssl_at, openssl_cms_sign, os};
use kyso_validation::report::{
    CertStatus, EvidenceOrigin, Indication, RevocationPolicy, SignatureLevel, SignatureReport,
    SubIndication, TimeSource, TimestampKind,
};
use kyso_validation::verify::{CmsRequest, Verifier};

const CONTENT: &[u8] = b"Cong van so 16/CV: luu tru dai han (kyso test)\n";
const SIGNATURE_TIME_STAMP_TOKEN: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// The test PKI's verifier with the TSA's root as one more anchor.
fn verifier(tsa: &TestTsa) -> Verifier {
    let mut cfg = kyso_tests::trust_config(kyso_tests::shared_servers());
    cfg.trust_anchors.push(tsa.root_pem());
    kyso_tests::verifier_from(&cfg)
}

/// A token from the TSA over the SHA-256 of `datum`.
fn token_over(tsa: &TestTsa, datum: &[u8]) -> Vec<u8> {
    let digest = DigestAlgorithm::Sha256.digest(datum);
    let query = TimeStampReq::new(DigestAlgorithm::Sha256, &digest, &[7, 1, 16], None)
        .expect("request")
        .to_der_bytes()
        .expect("DER");
    TimeStampResp::parse(&tsa.reply(&query))
        .expect("a response")
        .into_token()
        .expect("granted")
}

fn signature_value(sig: &[u8]) -> Vec<u8> {
    let ci = ContentInfo::from_der(sig).expect("DER ContentInfo");
    let sd: SignedData = ci.content.decode_as().expect("SignedData");
    sd.signer_infos.0.as_slice()[0]
        .signature
        .as_bytes()
        .to_vec()
}

/// `sig` with `token` added as the first signer's signature timestamp (an unsigned attribute:
/// the signed bytes do not change, as a B-T upgrade does it).
fn with_timestamp(sig: &[u8], token: &[u8]) -> Vec<u8> {
    let ci = ContentInfo::from_der(sig).expect("DER ContentInfo");
    let mut sd: SignedData = ci.content.decode_as().expect("SignedData");
    let mut infos = sd.signer_infos.0.into_vec();
    let attr = Attribute {
        oid: SIGNATURE_TIME_STAMP_TOKEN,
        values: SetOfVec::try_from(vec![Any::from_der(token).expect("token as Any")])
            .expect("one value"),
    };
    infos[0].unsigned_attrs = Some(SetOfVec::try_from(vec![attr]).expect("attributes"));
    sd.signer_infos = SignerInfos::try_from(infos).expect("signer infos");
    ContentInfo {
        content_type: ci.content_type,
        content: Any::encode_from(&sd).expect("SignedData DER"),
    }
    .to_der()
    .expect("ContentInfo DER")
}

fn gen_time(token: &[u8]) -> OffsetDateTime {
    let msg = kyso_pki::cms::parse(token).expect("token");
    TstInfo::from_der(msg.content().expect("TSTInfo"))
        .expect("TSTInfo")
        .gen_time
}

async fn judge(v: &Verifier, sig: &[u8]) -> SignatureReport {
    let r = v
        .verify_cms(
            CmsRequest {
                signature: sig,
                detached: Detached::None,
                at: None,
                // The test TSA publishes no revocation status for its certificate.
                policy: Some(RevocationPolicy::SoftFail),
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("a CMS");
    r.signatures[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn cades_t_signature_timestamp_is_the_proof_of_existence_N1_N3() {
    let tsa = TestTsa::start();
    let v = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let token = token_over(&tsa, &signature_value(&sig));
    let b_t = with_timestamp(&sig, &token);
    let s = judge(&v, &b_t).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.timestamps.len(), 1, "{s:#?}");
    let t = &s.timestamps[0];
    assert_eq!(t.kind, TimestampKind::Signature);
    assert_eq!(t.indication, Indication::TotalPassed, "{t:#?}");
    assert_eq!(t.gen_time, Some(gen_time(&token)));
    assert!(t.path.last().is_some_and(|p| p.trust_anchor), "{t:#?}");
    assert_eq!(
        t.tsa.as_ref().and_then(|i| i.common_name.as_deref()),
        Some("Kyso Test Timestamping")
    );
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    assert_eq!(s.reference_time.time, gen_time(&token));
    assert!(s.claimed_signing_time.is_some());

    // Without the TSA's root the token proves nothing; the signature is judged now.
    let plain = kyso_tests::verifier_from(&kyso_tests::trust_config(kyso_tests::shared_servers()));
    let s = judge(&plain, &b_t).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    assert_eq!(
        s.timestamps[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound),
        "{s:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_over_another_signature_gives_no_proof_of_existence_N3() {
    let tsa = TestTsa::start();
    let v = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let other = openssl_cms_sign(&CmsSign::new("personal-rsa", b"another document".to_vec()));
    let stolen = token_over(&tsa, &signature_value(&other));
    let s = judge(&v, &with_timestamp(&sig, &stolen)).await;
    // The signature itself is intact and valid now: it is not failed for the token.
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    let t = &s.timestamps[0];
    assert_eq!(
        (t.indication, t.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::HashFailure)),
        "{t:#?}"
    );
    assert!(t.message.contains("signature value"), "{}", t.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn cades_t_level_and_proof_of_existence_reported_N3_R1() {
    let tsa = TestTsa::start();
    let v = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let token = token_over(&tsa, &signature_value(&sig));
    let b_t = with_timestamp(&sig, &token);
    let s = judge(&v, &b_t).await;
    assert_eq!(s.level, SignatureLevel::BT, "{s:#?}");
    let poe = s.poe.expect("a proof of existence");
    assert_eq!(poe.source, TimeSource::SignatureTimestamp);
    assert_eq!(poe.time, gen_time(&token));
    // A B-B signature: no proof, level B-B.
    let s = judge(&v, &sig).await;
    assert_eq!((s.level, s.poe), (SignatureLevel::BB, None), "{s:#?}");

    // `kyso verify` says the same, in JSON and in text.
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("b-t.p7s");
    std::fs::write(&file, &b_t).expect("write");
    let mut args = crate::cli::local_flags();
    args.extend([
        "--trust-anchors".into(),
        tsa.root_pem().into_os_string(),
        "--revocation".into(),
        "soft-fail".into(),
    ]);
    let mut json_args = args.clone();
    json_args.push(file.clone().into_os_string());
    let refs: Vec<&std::ffi::OsStr> = json_args.iter().map(|a| a.as_os_str()).collect();
    let (out, json) = crate::cli::kyso_verify(&refs);
    let json = json.unwrap_or_else(|| panic!("JSON: {out}"));
    let s = &json["signatures"][0];
    assert_eq!(s["indication"], "TOTAL_PASSED", "{json:#}");
    assert_eq!(s["level"], "B_T", "{json:#}");
    assert_eq!(s["poe"]["source"], "SIGNATURE_TIMESTAMP", "{json:#}");
    assert_eq!(
        s["reference_time"]["source"], "SIGNATURE_TIMESTAMP",
        "{json:#}"
    );
    assert_eq!(s["timestamps"][0]["kind"], "SIGNATURE", "{json:#}");

    let mut cmd = std::process::Command::new(kyso_tests::hsm::workspace_bin("kyso"));
    cmd.arg("verify").args(&args).arg(&file);
    for var in [
        "KYSO_SERVER",
        "KYSO_TLS_CA",
        "KYSO_TLS_CERT",
        "KYSO_TLS_KEY",
    ] {
        cmd.env_remove(var);
    }
    let out = kyso_tests::run(&mut cmd, None, std::time::Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("level: B_T"), "{text}");
    assert!(
        text.contains("proof of existence: ") && text.contains("(SIGNATURE_TIMESTAMP)"),
        "{text}"
    );
    assert!(text.contains("signature timestamp at "), "{text}");
}

/// A timestamp made after the signer's certificate was revoked proves only that the
/// signature existed after the revocation: it does not rescue it (ETSI EN 319 102-1 5.6.2.4,
/// REVOKED_NO_POE); one whose signer claims a time after the revocation is REVOKED.
#[tokio::test(flavor = "multi_thread")]
async fn timestamp_after_the_revocation_does_not_rescue_the_signature_N3_R1() {
    let tsa = TestTsa::start();
    let v = verifier(&tsa);
    // No signing-time attribute: nothing is claimed.
    let sig = openssl_cms_sign(&CmsSign::new("revoked", CONTENT).noattr());
    let stamped = with_timestamp(&sig, &token_over(&tsa, &signature_value(&sig)));
    let s = judge(&v, &stamped).await;
    assert_eq!(
        s.timestamps[0].indication,
        Indication::TotalPassed,
        "{s:#?}"
    );
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::RevokedNoPoe)),
        "{s:#?}"
    );
    assert!(s.message.contains("is not before it"), "{}", s.message);

    // Claimed (signing-time now) after the revocation, stamped after it too: REVOKED.
    let sig = openssl_cms_sign(&CmsSign::new("revoked", CONTENT));
    let stamped = with_timestamp(&sig, &token_over(&tsa, &signature_value(&sig)));
    let s = judge(&v, &stamped).await;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::Revoked)),
        "{s:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Signatures from the past, made under faketime
// ---------------------------------------------------------------------------------------------

/// The `expired` leaf (valid from 400 to 30 days ago) really signing 100 days ago, under
/// faketime, and a TSA stamping its signature then: judged at the token's genTime it passes,
/// with that proof of existence reported; the same signature without the token (B-B) does not,
/// although its signing-time attribute says the same time.
#[tokio::test(flavor = "multi_thread")]
async fn past_signature_made_under_faketime_passes_with_its_timestamp_b_b_does_not_N3_R1() {
    let pki = kyso_tests::TestPki::get();
    let tsa = PastTsa::new();
    let work = tempfile::tempdir().expect("temporary directory");
    std::fs::write(work.path().join("content.txt"), CONTENT).expect("content");
    let (cert, key, issuer) = (
        pki.leaf_cert("expired"),
        pki.leaf_key("expired"),
        pki.leaf_issuer("expired"),
    );
    openssl_at(
        "-100d",
        work.path(),
        &[
            os("cms"),
            os("-sign"),
            os("-binary"),
            os("-nodetach"),
            os("-md"),
            os("sha256"),
            os("-signer"),
            cert.as_os_str(),
            os("-inkey"),
            key.as_os_str(),
            os("-certfile"),
            issuer.as_os_str(),
            os("-in"),
            os("content.txt"),
            os("-outform"),
            os("DER"),
            os("-out"),
            os("sig.der"),
        ],
    );
    let b_b = std::fs::read(work.path().join("sig.der")).expect("signature");
    let token = tsa.token_over("-100d", &signature_value(&b_b));
    let b_t = with_timestamp(&b_b, &token);

    let mut cfg = kyso_tests::trust_config(kyso_tests::shared_servers());
    cfg.trust_anchors.push(tsa.root_pem());
    let v = kyso_tests::verifier_from(&cfg);

    let s = judge(&v, &b_b).await;
    assert_eq!(
        (s.indication, s.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::OutOfBoundsNoPoe)
        ),
        "{s:#?}"
    );
    let claimed = s
        .claimed_signing_time
        .expect("openssl writes a signing time");
    let ago = OffsetDateTime::now_utc() - claimed;
    assert!(
        ago > time::Duration::days(99) && ago < time::Duration::days(101),
        "signed 100 days ago: {claimed}"
    );

    let s = judge(&v, &b_t).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.level, SignatureLevel::BT);
    let poe = s.poe.expect("a proof of existence");
    assert_eq!(poe.source, TimeSource::SignatureTimestamp);
    assert_eq!(poe.time, gen_time(&token));
    assert_eq!(s.reference_time, poe);
    assert!(
        (poe.time - claimed).abs() < time::Duration::minutes(5),
        "{poe:?} vs {claimed}"
    );
}

/// A verifier of the test PKI (and the TSA's root) whose every revocation and AIA URL is
/// rewritten to a closed port: the sources no longer answer, as years after signing.
fn verifier_offline(tsa: &TestTsa) -> Verifier {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!("http://{}/", l.local_addr().expect("address"))
    };
    let mut cfg = kyso_tests::trust_config(kyso_tests::shared_servers());
    cfg.trust_anchors.push(tsa.root_pem());
    cfg.revocation.url_rewrites = kyso_tests::rewrites(&closed, &closed, &closed)
        .into_iter()
        .map(|(from, to)| kyso_validation::config::UrlRewrite { from, to })
        .collect();
    kyso_tests::verifier_from(&cfg)
}

async fn judge_with(v: &Verifier, sig: &[u8], policy: RevocationPolicy) -> SignatureReport {
    let r = v
        .verify_cms(
            CmsRequest {
                signature: sig,
                detached: Detached::None,
                at: None,
                policy: Some(policy),
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("a CMS");
    r.signatures[0].clone()
}

/// The raw OCSP responses and CRLs of `leaf`'s path (leaf by its issuing CA, the CA by
/// the root), fetched from the live test servers, with the issuing CA's certificate.
async fn validation_data(v: &Verifier, leaf: &str) -> kyso_pki::cms_build::ValidationData {
    let pki = kyso_tests::TestPki::get();
    let cert = kyso_pki::cert::Cert::from_der(&pki.leaf_der(leaf)).expect("leaf");
    let ca_der = pki.cert_der(pki.leaf_issuer(leaf));
    let ca = kyso_pki::cert::Cert::from_der(&ca_der).expect("CA");
    let root = kyso_pki::cert::Cert::from_der(&pki.cert_der(pki.root_pem())).expect("root");
    let now = OffsetDateTime::now_utc();
    let mut data = kyso_pki::cms_build::ValidationData {
        certificates: vec![ca_der],
        ..Default::default()
    };
    for (c, issuer) in [(&cert, &ca), (&ca, &root)] {
        let raw = v
            .revocation()
            .fetch_raw(c, issuer, now, RevocationPolicy::Require)
            .await;
        assert!(!raw.is_empty(), "no revocation data: {:?}", raw.errors);
        data.ocsp.extend(raw.ocsps);
        data.crls.extend(raw.crls);
    }
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn cades_b_lt_passes_with_revocation_sources_down_evidence_embedded_cms_N2_N3_R1() {
    let tsa = TestTsa::start();
    let online = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let token = token_over(&tsa, &signature_value(&sig));
    let b_t = kyso_pki::cms_build::add_signature_timestamp(&sig, 0, &token).expect("B-T");
    let data = validation_data(&online, "personal-rsa").await;
    let b_lt = kyso_pki::cms_build::add_validation_data(&b_t, 0, &data).expect("B-LT");

    let offline = verifier_offline(&tsa);
    // Soft-fail only for the TSA, which publishes no status: the signer's path is settled
    // by the embedded data, and the level says so.
    let s = judge_with(&offline, &b_lt, RevocationPolicy::SoftFail).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.level, SignatureLevel::BLt, "{s:#?}");
    assert_eq!(s.reference_time.source, TimeSource::SignatureTimestamp);
    assert_eq!(s.revocation.len(), 2, "{:#?}", s.revocation);
    assert!(
        s.revocation
            .iter()
            .all(|e| e.origin == EvidenceOrigin::EmbeddedCms && e.status == CertStatus::Good),
        "{:#?}",
        s.revocation
    );

    // Fail closed still holds: required, the embedded evidence is enough for the signer ...
    let s = judge_with(&offline, &b_lt, RevocationPolicy::Require).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert!(
        s.revocation
            .iter()
            .all(|e| e.origin == EvidenceOrigin::EmbeddedCms),
        "{:#?}",
        s.revocation
    );
    // ... and without it nothing settles the status: TRY_LATER.
    let s = judge_with(&offline, &b_t, RevocationPolicy::Require).await;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{s:#?}"
    );
    assert_eq!(s.level, SignatureLevel::BB, "{s:#?}");

    // Online, the same B-LT file: the embedded data is used first, nothing is fetched for it.
    let s = judge_with(&online, &b_lt, RevocationPolicy::SoftFail).await;
    assert_eq!(
        (s.indication, s.level),
        (Indication::TotalPassed, SignatureLevel::BLt),
        "{s:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_ocsp_for_another_certificate_is_no_evidence_and_is_reported_N2_R1() {
    let tsa = TestTsa::start();
    let online = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let token = token_over(&tsa, &signature_value(&sig));
    let b_t = kyso_pki::cms_build::add_signature_timestamp(&sig, 0, &token).expect("B-T");
    // The path data of ANOTHER leaf of the same CA: the CA's status is right, the leaf's
    // answer is about someone else.
    let mut data = validation_data(&online, "personal-ec256").await;
    data.crls.clear();
    let b_lt = kyso_pki::cms_build::add_validation_data(&b_t, 0, &data).expect("B-LT");
    let s = judge_with(&verifier_offline(&tsa), &b_lt, RevocationPolicy::Require).await;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{s:#?}"
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("is no evidence") && w.contains("does not answer for")),
        "{:#?}",
        s.warnings
    );
    assert!(
        s.revocation
            .iter()
            .all(|e| e.origin == EvidenceOrigin::Fetched || e.status != CertStatus::Good),
        "{:#?}",
        s.revocation
    );
}

/// An OCSP "good" for the signer's certificate made by `openssl ocsp` answering with
/// `rsigner`/`rkey` (absolute paths) over the test PKI's issuing-CA index.
fn ocsp_good_signed_by(dir: &std::path::Path, leaf: &str, rsigner: &str, rkey: &str) -> Vec<u8> {
    let pki = kyso_tests::TestPki::get();
    let (cert, ca, index) = (pki.leaf_cert(leaf), pki.leaf_issuer(leaf), pki.index());
    let p = |s: &std::path::Path| s.to_str().expect("UTF-8 path").to_owned();
    let req = p(&dir.join("req.der"));
    let out = kyso_tests::openssl([
        "ocsp",
        "-issuer",
        &p(&ca),
        "-cert",
        &p(&cert),
        "-no_nonce",
        "-reqout",
        &req,
    ]);
    assert!(out.success(), "{out}");
    let resp = p(&dir.join("resp.der"));
    let out = kyso_tests::openssl([
        "ocsp",
        "-index",
        &p(&index),
        "-CA",
        &p(&ca),
        "-rsigner",
        rsigner,
        "-rkey",
        rkey,
        "-reqin",
        &req,
        "-respout",
        &resp,
        "-ndays",
        "1",
    ]);
    assert!(out.success(), "{out}");
    std::fs::read(&resp).expect("OCSP response")
}

/// A "good" answer for the signer's certificate signed by a WRONG key is no evidence (RFC 6960
/// 4.2.2.2): one naming the issuer as responder but signed by another key (an impostor
/// certificate with the CA's name), and one signed by another leaf of the same CA (not a
/// delegated responder: no id-kp-OCSPSigning). Both are reported; with the sources down and
/// revocation required nothing settles the signer's status: TRY_LATER, never TOTAL_PASSED.
#[tokio::test(flavor = "multi_thread")]
async fn embedded_ocsp_signed_by_a_wrong_key_is_no_evidence_and_is_reported_N2_R1() {
    let pki = kyso_tests::TestPki::get();
    let tsa = TestTsa::start();
    let online = verifier(&tsa);
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT));
    let token = token_over(&tsa, &signature_value(&sig));
    let b_t = kyso_pki::cms_build::add_signature_timestamp(&sig, 0, &token).expect("B-T");

    let work = tempfile::tempdir().expect("temporary directory");
    let d = work.path();
    let path = |n: &str| d.join(n).to_str().expect("UTF-8 path").to_owned();
    // The impostor: the issuing CA's certificate re-signed over a fresh key (same subject).
    let ca = pki.leaf_issuer("personal-rsa");
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ],
        vec!["x509", "-in", ca.to_str().expect("UTF-8"), "-signkey"],
    ] {
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        args.push(path("impostor.key"));
        if args[0] == "x509" {
            args.extend(["-out".to_owned(), path("impostor.pem")]);
        }
        let out = kyso_tests::openssl(&args);
        assert!(out.success(), "{out}");
    }
    let impostor = ocsp_good_signed_by(
        d,
        "personal-rsa",
        &path("impostor.pem"),
        &path("impostor.key"),
    );
    let other = pki.leaf_cert("personal-ec256");
    let other_key = pki.leaf_key("personal-ec256");
    let sibling = ocsp_good_signed_by(
        d,
        "personal-rsa",
        other.to_str().expect("UTF-8"),
        other_key.to_str().expect("UTF-8"),
    );

    // The CA's own status is genuine (root's CRL and OCSP, fetched now); the leaf's is forged.
    let ca_cert = kyso_pki::cert::Cert::from_der(&pki.cert_der(&ca)).expect("CA");
    let root = kyso_pki::cert::Cert::from_der(&pki.cert_der(pki.root_pem())).expect("root");
    let raw = online
        .revocation()
        .fetch_raw(
            &ca_cert,
            &root,
            OffsetDateTime::now_utc(),
            RevocationPolicy::Require,
        )
        .await;
    assert!(!raw.is_empty(), "{:?}", raw.errors);
    let mut data = kyso_pki::cms_build::ValidationData {
        certificates: vec![pki.cert_der(&ca)],
        ..Default::default()
    };
    data.ocsp = vec![impostor, sibling];
    data.ocsp.extend(raw.ocsps);
    data.crls.extend(raw.crls);
    let b_lt = kyso_pki::cms_build::add_validation_data(&b_t, 0, &data).expect("B-LT");

    let s = judge_with(&verifier_offline(&tsa), &b_lt, RevocationPolicy::Require).await;
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Indeterminate, Some(SubIndication::TryLater)),
        "{s:#?}"
    );
    let reported = |what: &str| {
        s.warnings.iter().any(|w| {
            w.contains("is no evidence")
                && w.contains("neither the issuer nor an authorised responder")
                && w.contains(what)
        })
    };
    assert!(
        reported("does not verify with the issuer's key"),
        "{:#?}",
        s.warnings
    );
    assert!(reported("lacks id-kp-OCSPSigning"), "{:#?}", s.warnings);
    assert!(
        s.revocation
            .iter()
            .filter(|e| e.status == CertStatus::Good)
            .all(|e| e.certificate_subject.contains(kyso_tests::ISSUING_CA_CN)),
        "{:#?}",
        s.revocation
    );
}

//! The CAdES-BES builder of `kyso_pki::cms_build`, signed with software keys of the test PKI
//! (`openssl pkeyutl -sign` over the prehashed digest, as an HSM would sign it), then checked
//! by `openssl cms -verify` (the reference peer) and by kyso's own verifier.

use std::process::Command;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tagged};
use kyso_pki::cms::{Detached, SigningCertificateV2};
use kyso_pki::cms_build::{
    BuildError, CadesRequest, Content, PreparedSignature, SigningAlgorithm, ecdsa_raw_to_der,
    prepare,
};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::OffsetDateTime;
use kyso_tests::{CmsVerify, PkiServers, TestPki, openssl_cms_verify_output};
use kyso_validation::report::{Indication, SignatureReport, SubIndication};
use kyso_validation::verify::{CmsRequest, Verifier};

const CONTENT: &[u8] = b"Quyet dinh so 456/QD-UBND: van ban ky bang kyso cms_build\n";

const SHA256: DigestAlgorithm = DigestAlgorithm::Sha256;
const SHA384: DigestAlgorithm = DigestAlgorithm::Sha384;

// ---------------------------------------------------------------------------------------------
// Set-up: the verifier as the service builds it (same as cms_verdicts.rs)
// ---------------------------------------------------------------------------------------------

fn servers() -> &'static PkiServers {
    kyso_tests::shared_servers()
}

fn verifier() -> Verifier {
    kyso_tests::verifier_from(&kyso_tests::trust_config(servers()))
}

/// kyso's report of the only signature of `sig`.
async fn kyso_verify(v: &Verifier, sig: &[u8], detached: Detached<'_>) -> SignatureReport {
    let report = v
        .verify_cms(
            CmsRequest {
                signature: sig,
                detached,
                at: None,
                policy: None,
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_or_else(|e| panic!("verify_cms refused the input: {e}"));
    assert_eq!(report.signatures.len(), 1, "{report:#?}");
    report.signatures[0].clone()
}

/// `openssl cms -verify -crl_check_all` against the test anchors and intermediates.
fn openssl_accepts(sig: &[u8], content: Option<&[u8]>) -> kyso_tests::Output {
    openssl_cms_verify_output(
        TestPki::get(),
        sig,
        content,
        &CmsVerify {
            crl_check_all: true,
            ..CmsVerify::default()
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Signing with a software key, the way an HSM signs: over the prehashed digest
// ---------------------------------------------------------------------------------------------

fn md_name(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha1 => "sha1",
        DigestAlgorithm::Sha256 => "sha256",
        DigestAlgorithm::Sha384 => "sha384",
        DigestAlgorithm::Sha512 => "sha512",
    }
}

fn request<'a>(
    leaf_der: &'a [u8],
    chain: &'a [Vec<u8>],
    alg: SigningAlgorithm,
    content: Content<'a>,
    signing_time: OffsetDateTime,
) -> CadesRequest<'a> {
    CadesRequest {
        digest_algorithm: alg.digest(),
        content,
        signer_certificate: leaf_der,
        chain,
        signing_time: Some(signing_time),
        signature_algorithm: alg,
        content_type: None,
        commitment_type: None,
    }
}

/// A signing time a little in the past, in whole seconds.
fn recent() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    t.replace_nanosecond(0).expect("0 ns is valid")
}

/// Prepares, signs with the leaf's software key, finishes.
fn build(leaf: &str, alg: SigningAlgorithm, content: Content<'_>, with_ca: bool) -> Vec<u8> {
    let pki = TestPki::get();
    let leaf_der = pki.leaf_der(leaf);
    let chain = if with_ca {
        vec![pki.cert_der(pki.issuing_ca_cer())]
    } else {
        Vec::new()
    };
    let prepared = prepare(request(&leaf_der, &chain, alg, content, recent())).expect("prepare");
    let sig = pkeyutl_sign(leaf, alg, &prepared.digest_to_sign());
    prepared.check_signature(&sig).expect("the key signed");
    prepared.finish(&sig).expect("finish")
}

fn signed_data(cms_der: &[u8]) -> SignedData {
    let ci = ContentInfo::from_der(cms_der).expect("a DER ContentInfo");
    assert_eq!(ci.content_type, kyso_pki::cms::oid::SIGNED_DATA);
    ci.content.decode_as::<SignedData>().expect("SignedData")
}

/// Attached, detached and digest-only, each checked by openssl and kyso.
async fn three_forms_pass(leaf: &str, alg: SigningAlgorithm) {
    let v = verifier();
    let digest = alg.digest().digest(CONTENT);
    let forms: [(&str, Content<'_>, Detached<'_>); 3] = [
        ("attached", Content::Attached(CONTENT), Detached::None),
        (
            "detached",
            Content::Detached(CONTENT),
            Detached::Content(CONTENT),
        ),
        (
            "digest only",
            Content::Digest(&digest),
            Detached::Digest {
                algorithm: alg.digest(),
                value: &digest,
            },
        ),
    ];
    for (label, content, detached) in forms {
        let label = format!("{leaf} {alg} {label}");
        let attached = matches!(content, Content::Attached(_));
        let sig = build(leaf, alg, content, true);
        let out = openssl_accepts(&sig, (!attached).then_some(CONTENT));
        assert!(out.success(), "{label}: openssl refuses: {out}");
        if attached {
            let sd = signed_data(&sig);
            let econtent = sd.encap_content_info.econtent.expect("attached content");
            assert_eq!(
                econtent.decode_as::<OctetString>().unwrap().as_bytes(),
                CONTENT
            );
        }
        let s = kyso_verify(&v, &sig, detached).await;
        assert_eq!(
            s.indication,
            Indication::TotalPassed,
            "{label}: kyso: {s:#?}"
        );
        assert!(s.ess_signing_certificate_v2, "{label}: ESS v2 not bound");
        assert!(s.signed_attributes);
        assert_eq!(s.detached, !attached, "{label}");
        assert_eq!(s.digest_algorithm.as_deref(), Some(alg.digest().name()));
        assert!(
            s.warnings.is_empty(),
            "{label}: unexpected warnings {:#?}",
            s.warnings
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures that pass, with openssl and kyso
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn rsa_pkcs1_sha256_attached_detached_and_digest_only_pass_openssl_and_kyso() {
    three_forms_pass("personal-rsa", SigningAlgorithm::RsaPkcs1(SHA256)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_pss_sha256_attached_detached_and_digest_only_pass_openssl_and_kyso() {
    three_forms_pass("personal-pss", SigningAlgorithm::RsaPss(SHA256)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_p256_sha256_attached_detached_and_digest_only_pass_openssl_and_kyso() {
    three_forms_pass("personal-ec256", SigningAlgorithm::Ecdsa(SHA256)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_p384_sha384_attached_detached_and_digest_only_pass_openssl_and_kyso() {
    three_forms_pass("personal-ec384", SigningAlgorithm::Ecdsa(SHA384)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_digests_and_the_signer_certificate_alone_pass_openssl_and_kyso() {
    let v = verifier();
    for (leaf, alg) in [
        ("org-rsa", SigningAlgorithm::RsaPkcs1(SHA384)),
        (
            "org-rsa",
            SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha512),
        ),
        (
            "personal-pss",
            SigningAlgorithm::RsaPss(DigestAlgorithm::Sha512),
        ),
        ("personal-ec256", SigningAlgorithm::Ecdsa(SHA384)),
    ] {
        // Only the signer's certificate embedded, as VGCA documents do: kyso has the
        // intermediates configured, openssl has them in its store.
        let sig = build(leaf, alg, Content::Attached(CONTENT), false);
        let out = openssl_accepts(&sig, None);
        assert!(out.success(), "{leaf} {alg}: openssl refuses: {out}");
        let s = kyso_verify(&v, &sig, Detached::None).await;
        assert_eq!(
            s.indication,
            Indication::TotalPassed,
            "{leaf} {alg}: {s:#?}"
        );
        assert!(s.ess_signing_certificate_v2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn non_data_content_type_is_signed_with_signed_data_version_3() {
    let pki = TestPki::get();
    let leaf = pki.leaf_der("personal-rsa");
    let alg = SigningAlgorithm::RsaPkcs1(SHA256);
    // id-ct-TSTInfo, any non-data type will do.
    let tst_info = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
    let mut req = request(&leaf, &[], alg, Content::Attached(CONTENT), recent());
    req.content_type = Some(tst_info);
    let prepared = prepare(req).unwrap();
    let sig = pkeyutl_sign("personal-rsa", alg, &prepared.digest_to_sign());
    let cms = prepared.finish(&sig).unwrap();
    let sd = signed_data(&cms);
    assert_eq!(sd.version, cms::content_info::CmsVersion::V3);
    assert_eq!(sd.encap_content_info.econtent_type, tst_info);
    let out = openssl_accepts(&cms, None);
    assert!(out.success(), "openssl refuses: {out}");
}

// ---------------------------------------------------------------------------------------------
// A wrong signature value: a CMS that both refuse
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn wrong_signature_value_gives_a_cms_openssl_and_kyso_reject_with_sig_crypto_failure() {
    let v = verifier();
    for (leaf, alg) in [
        ("personal-rsa", SigningAlgorithm::RsaPkcs1(SHA256)),
        ("personal-pss", SigningAlgorithm::RsaPss(SHA256)),
        ("personal-ec256", SigningAlgorithm::Ecdsa(SHA256)),
    ] {
        let pki = TestPki::get();
        let leaf_der = pki.leaf_der(leaf);
        let prepared = prepare(request(
            &leaf_der,
            &[],
            alg,
            Content::Attached(CONTENT),
            recent(),
        ))
        .unwrap();
        // The signature of another message, of the right shape.
        let other = alg.digest().digest(b"not the signed attributes");
        let sig = pkeyutl_sign(leaf, alg, &other);
        assert!(matches!(
            prepared.check_signature(&sig),
            Err(BuildError::SignatureInvalid(_))
        ));
        let cms = prepared.finish(&sig).expect("finish does not verify");
        let out = openssl_accepts(&cms, None);
        assert!(!out.success(), "{leaf}: openssl accepts a wrong signature");
        let s = kyso_verify(&v, &cms, Detached::None).await;
        assert_eq!(
            (s.indication, s.sub_indication),
            (
                Indication::TotalFailed,
                Some(SubIndication::SigCryptoFailure)
            ),
            "{leaf}: {s:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding details
// ---------------------------------------------------------------------------------------------

/// The value of the one signed attribute `oid`, DER.
fn signed_attr(sd: &SignedData, oid: ObjectIdentifier) -> Vec<u8> {
    let si = sd.signer_infos.0.get(0).expect("one SignerInfo");
    let attrs = si.signed_attrs.as_ref().expect("signed attributes");
    let a = attrs
        .iter()
        .find(|a| a.oid == oid)
        .unwrap_or_else(|| panic!("no attribute {oid}"));
    assert_eq!(a.values.len(), 1);
    a.values.get(0).unwrap().to_der().unwrap()
}

fn prepare_at(t: OffsetDateTime) -> PreparedSignature {
    let leaf = TestPki::get().leaf_der("personal-rsa");
    prepare(request(
        &leaf,
        &[],
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Detached(CONTENT),
        t,
    ))
    .unwrap()
}

/// The signing-time attribute value of a prepared signature (finished with a dummy value).
fn signing_time_der(p: PreparedSignature) -> Vec<u8> {
    let cms = p.finish(&[1u8; 256]).unwrap();
    signed_attr(&signed_data(&cms), kyso_pki::cms::oid::SIGNING_TIME)
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_time_round_trips_as_utctime_through_kyso() {
    let t = recent();
    let sig = build(
        "personal-rsa",
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Attached(CONTENT),
        false,
    );
    let v = verifier();
    let s = kyso_verify(&v, &sig, Detached::None).await;
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    let claimed = s.claimed_signing_time.expect("signing time");
    // build() takes its own recent(): the same second or the next.
    assert!((claimed - t).whole_seconds().abs() <= 1, "{claimed} vs {t}");

    // A fixed time, with a zone and sub-seconds: written in UTC, whole seconds, UTCTime.
    let t = time::macros::datetime!(2026-03-14 09:30:15.789 +07:00);
    let der = signing_time_der(prepare_at(t));
    assert_eq!(der, [&[0x17, 13][..], b"260314023015Z"].concat());
    assert_eq!(
        signing_time_der(prepare_at(time::macros::datetime!(2049-12-31 23:59:59 UTC))),
        [&[0x17, 13][..], b"491231235959Z"].concat()
    );
}

#[test]
fn signing_time_from_2050_is_generalized_time() {
    let der = signing_time_der(prepare_at(time::macros::datetime!(2051-01-02 03:04:05 UTC)));
    assert_eq!(der, [&[0x18, 15][..], b"20510102030405Z"].concat());
    let der = signing_time_der(prepare_at(time::macros::datetime!(2050-01-01 00:00:00 UTC)));
    assert_eq!(der, [&[0x18, 15][..], b"20500101000000Z"].concat());
}

#[test]
fn signed_attributes_are_a_der_set_signed_as_0x31_and_embedded_as_0xa0() {
    let pki = TestPki::get();
    let leaf = pki.leaf_der("personal-rsa");
    let chain = vec![pki.cert_der(pki.issuing_ca_cer())];
    let p = prepare(request(
        &leaf,
        &chain,
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Attached(CONTENT),
        recent(),
    ))
    .unwrap();
    let tbs = p.to_be_signed().to_vec();
    assert_eq!(tbs[0], 0x31, "the signature covers the SET OF tag");
    assert_eq!(p.digest_to_sign(), SHA256.digest(&tbs));
    assert_eq!(p.message_digest(), SHA256.digest(CONTENT));
    let cms = p.finish(&[7u8; 256]).unwrap();
    let mut implicit = tbs.clone();
    implicit[0] = 0xA0;
    assert!(
        cms.windows(implicit.len()).any(|w| w == implicit),
        "the SignerInfo carries the same bytes under [0] IMPLICIT"
    );

    let sd = signed_data(&cms);
    assert_eq!(sd.version, cms::content_info::CmsVersion::V1);
    let si = sd.signer_infos.0.get(0).unwrap();
    assert_eq!(
        si.signed_attrs.as_ref().unwrap().to_der().unwrap(),
        tbs,
        "re-encoding gives the same DER"
    );
    // The elements are in DER order (sorted by their encodings).
    let encoded: Vec<Vec<u8>> = si
        .signed_attrs
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.to_der().unwrap())
        .collect();
    let mut sorted = encoded.clone();
    sorted.sort();
    assert_eq!(encoded, sorted);
    assert_eq!(encoded.len(), 4);

    // SignerInfo: version 1, issuerAndSerialNumber of the leaf; algorithms as openssl writes.
    assert_eq!(si.version, cms::content_info::CmsVersion::V1);
    let cert = cms::cert::x509::Certificate::from_der(&leaf).unwrap();
    match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            assert_eq!(ias.issuer, cert.tbs_certificate.issuer);
            assert_eq!(ias.serial_number, cert.tbs_certificate.serial_number);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        si.digest_alg.to_der().unwrap(),
        sd.digest_algorithms.get(0).unwrap().to_der().unwrap()
    );
    assert_eq!(
        si.digest_alg.to_der().unwrap(),
        hex_bytes("300b0609608648016503040201"),
        "sha256 without parameters"
    );
    assert_eq!(
        si.signature_algorithm.to_der().unwrap(),
        hex_bytes("300d06092a864886f70d0101010500"),
        "rsaEncryption with NULL"
    );
    // content-type id-data.
    assert_eq!(
        signed_attr(&sd, kyso_pki::cms::oid::CONTENT_TYPE),
        kyso_pki::cms::oid::DATA.to_der().unwrap()
    );

    // ESS signing-certificate-v2: SHA-256 of the leaf, hashAlgorithm omitted (DER default),
    // issuerSerial = directoryName(issuer) + serial.
    let ess_der = signed_attr(&sd, kyso_pki::cms::oid::SIGNING_CERTIFICATE_V2);
    let ess = SigningCertificateV2::from_der(&ess_der).unwrap();
    assert_eq!(ess.certs.len(), 1);
    let id = &ess.certs[0];
    assert_eq!(id.cert_hash.as_bytes(), kyso_pki::crypto::sha256(&leaf));
    assert_eq!(id.hash_algorithm.oid, SHA256.oid());
    // ESSCertIDv2 starts directly with the OCTET STRING: no hashAlgorithm written.
    let outer: Vec<der::Any> = Vec::from_der(&ess_der).unwrap();
    let ids: Vec<der::Any> = outer[0].decode_as().unwrap();
    let fields: Vec<der::Any> = ids[0].decode_as().unwrap();
    assert_eq!(
        fields.iter().map(|f| f.tag()).collect::<Vec<_>>(),
        [der::Tag::OctetString, der::Tag::Sequence],
        "ESSCertIDv2 = certHash, issuerSerial: hashAlgorithm omitted"
    );

    let is = id.issuer_serial.as_ref().expect("issuerSerial");
    assert_eq!(is.serial_number, cert.tbs_certificate.serial_number);
    assert_eq!(is.issuer.len(), 1);
    match &is.issuer[0] {
        cms::cert::x509::ext::pkix::name::GeneralName::DirectoryName(n) => {
            assert_eq!(*n, cert.tbs_certificate.issuer)
        }
        other => panic!("{other:?}"),
    }

    // certificates: the leaf and the chain, each as given.
    let certs: Vec<Vec<u8>> = sd
        .certificates
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect();
    assert_eq!(certs.len(), 2);
    assert!(certs.contains(&leaf) && certs.contains(&chain[0]));
}

#[test]
fn pss_and_ecdsa_algorithm_identifiers_match_openssl() {
    let pki = TestPki::get();
    let alg_of = |leaf: &str, alg| {
        let leaf = pki.leaf_der(leaf);
        let p = prepare(request(
            &leaf,
            &[],
            alg,
            Content::Detached(CONTENT),
            recent(),
        ))
        .unwrap();
        let sig = pkeyutl_sign(
            match alg {
                SigningAlgorithm::Ecdsa(_) => "personal-ec256",
                _ => "personal-pss",
            },
            alg,
            &p.digest_to_sign(),
        );
        let cms = p.finish(&sig).unwrap();
        let sd = signed_data(&cms);
        sd.signer_infos
            .0
            .get(0)
            .unwrap()
            .signature_algorithm
            .to_der()
            .unwrap()
    };
    // What `openssl cms -sign -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:digest` writes.
    assert_eq!(
        alg_of("personal-pss", SigningAlgorithm::RsaPss(SHA256)),
        hex_bytes(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500\
             a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"
        )
    );
    assert_eq!(
        alg_of("personal-ec256", SigningAlgorithm::Ecdsa(SHA256)),
        hex_bytes("300a06082a8648ce3d040302")
    );
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers for HSM mechanisms
// ---------------------------------------------------------------------------------------------

#[test]
fn pkcs1_digest_info_signed_with_raw_pkcs1_gives_the_same_signature() {
    let pki = TestPki::get();
    let leaf = pki.leaf_der("personal-rsa");
    let alg = SigningAlgorithm::RsaPkcs1(SHA256);
    let p = prepare(request(
        &leaf,
        &[],
        alg,
        Content::Attached(CONTENT),
        recent(),
    ))
    .unwrap();
    let info = p.pkcs1_digest_info().unwrap();
    assert_eq!(
        info[..19],
        hex_bytes("3031300d060960864801650304020105000420")[..]
    );
    assert_eq!(info[19..], p.digest_to_sign()[..]);
    // CKM_RSA_PKCS: PKCS#1 v1.5 padding over the DigestInfo, no hashing.
    let mut cmd = Command::new("openssl");
    cmd.current_dir(&pki.dir)
        .args(["pkeyutl", "-sign", "-inkey"])
        .arg(pki.leaf_key("personal-rsa"))
        .args(["-pkeyopt", "rsa_padding_mode:pkcs1"]);
    let raw = kyso_tests::run(&mut cmd, Some(&info), kyso_tests::COMMAND_TIMEOUT)
        .expect_success()
        .stdout;
    // PKCS#1 v1.5 is deterministic: the same as signing the digest with digest:sha256.
    assert_eq!(raw, pkeyutl_sign("personal-rsa", alg, &p.digest_to_sign()));
    p.check_signature(&raw).unwrap();
}

#[test]
fn ecdsa_raw_r_s_converts_to_the_der_signature() {
    let pki = TestPki::get();
    let leaf = pki.leaf_der("personal-ec256");
    let alg = SigningAlgorithm::Ecdsa(SHA256);
    let p = prepare(request(
        &leaf,
        &[],
        alg,
        Content::Attached(CONTENT),
        recent(),
    ))
    .unwrap();
    let der_sig = pkeyutl_sign("personal-ec256", alg, &p.digest_to_sign());
    // DER → r||s (32 bytes each, left-padded), as CKM_ECDSA returns it.
    let (r, s) = parse_ecdsa(&der_sig);
    let pad = |x: &[u8]| {
        let x = &x[x.len().saturating_sub(32)..];
        let mut v = vec![0u8; 32 - x.len()];
        v.extend_from_slice(x);
        v
    };
    let raw = [pad(&r), pad(&s)].concat();
    assert_eq!(ecdsa_raw_to_der(&raw).unwrap(), der_sig);
    // finish() refuses the raw form.
    assert!(matches!(
        p.clone().finish(&raw),
        Err(BuildError::MalformedSignature(_))
    ));
    p.check_signature(&der_sig).unwrap();
    assert!(p.finish(&der_sig).is_ok());

    // Leading zeros and a high bit: integers stay minimal and positive.
    let mut raw = vec![0u8; 64];
    raw[1] = 0x80;
    raw[63] = 1;
    let der = ecdsa_raw_to_der(&raw).unwrap();
    let (r, s) = parse_ecdsa(&der);
    assert_eq!(r[0], 0x00);
    assert_eq!(r[1], 0x80);
    assert_eq!(r.len(), 32);
    assert_eq!(s, vec![1]);
    assert!(matches!(
        ecdsa_raw_to_der(&[1, 2, 3]),
        Err(BuildError::MalformedSignature(_))
    ));
    assert!(matches!(
        ecdsa_raw_to_der(&[0; 64]),
        Err(BuildError::MalformedSignature(_))
    ));
    assert_eq!(ecdsa_raw_to_der(&[]), Err(BuildError::EmptySignature));
}

/// r and s of a DER ECDSA-Sig-Value, as their INTEGER contents.
fn parse_ecdsa(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(der[0], 0x30);
    let body = &der[2..];
    assert_eq!(der[1] as usize, body.len());
    assert_eq!(body[0], 0x02);
    let rl = body[1] as usize;
    let r = body[2..2 + rl].to_vec();
    let rest = &body[2 + rl..];
    assert_eq!(rest[0], 0x02);
    let s = rest[2..2 + rest[1] as usize].to_vec();
    (r, s)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn digest_only_content_of_the_wrong_length_is_refused() {
    let leaf = TestPki::get().leaf_der("personal-rsa");
    let short = [0u8; 20];
    let r = prepare(request(
        &leaf,
        &[],
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Digest(&short),
        recent(),
    ));
    assert_eq!(
        r.unwrap_err(),
        BuildError::DigestLength {
            algorithm: SHA256,
            expected: 32,
            actual: 20
        }
    );
    let sha256_of_content = SHA256.digest(CONTENT);
    let r = prepare(request(
        &leaf,
        &[],
        SigningAlgorithm::RsaPkcs1(SHA384),
        Content::Digest(&sha256_of_content),
        recent(),
    ));
    assert!(matches!(
        r,
        Err(BuildError::DigestLength {
            expected: 48,
            actual: 32,
            ..
        })
    ));
}

#[test]
fn signer_certificate_that_is_not_der_is_refused() {
    let pki = TestPki::get();
    let pem = std::fs::read(pki.leaf_cert("personal-rsa")).unwrap();
    let der = pki.leaf_der("personal-rsa");
    let truncated = der[..der.len() - 1].to_vec();
    // The same certificate with a long-form length where a short one is enough: BER, not DER.
    let mut ber = vec![0x30, 0x84];
    ber.extend_from_slice(&u32::try_from(der.len() - 4).unwrap().to_be_bytes());
    ber.extend_from_slice(&der[4..]);
    for (label, bytes) in [
        ("PEM", pem),
        ("truncated", truncated),
        ("garbage", b"not a certificate".to_vec()),
        ("empty", Vec::new()),
        ("BER", ber),
    ] {
        let r = prepare(request(
            &bytes,
            &[],
            SigningAlgorithm::RsaPkcs1(SHA256),
            Content::Attached(CONTENT),
            recent(),
        ));
        assert!(
            matches!(r, Err(BuildError::SignerCertificate(_))),
            "{label}: {r:?}"
        );
    }
    let bad_chain = vec![pki.cert_der(pki.issuing_ca_cer()), b"junk".to_vec()];
    let r = prepare(request(
        &der,
        &bad_chain,
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Attached(CONTENT),
        recent(),
    ));
    assert!(
        matches!(r, Err(BuildError::ChainCertificate { index: 1, .. })),
        "{r:?}"
    );
}

#[test]
fn signature_algorithm_must_fit_the_certificate_key() {
    let pki = TestPki::get();
    let rsa = pki.leaf_der("personal-rsa");
    let ec = pki.leaf_der("personal-ec256");
    for (cert, alg, key) in [
        (&rsa, SigningAlgorithm::Ecdsa(SHA256), "RSA"),
        (&ec, SigningAlgorithm::RsaPkcs1(SHA256), "EC"),
        (&ec, SigningAlgorithm::RsaPss(SHA256), "EC"),
    ] {
        let r = prepare(request(
            cert,
            &[],
            alg,
            Content::Attached(CONTENT),
            recent(),
        ));
        assert_eq!(
            r.unwrap_err(),
            BuildError::KeyMismatch {
                algorithm: alg,
                key: key.to_owned()
            }
        );
    }
}

#[test]
fn digest_algorithm_must_be_the_signature_hash_and_not_sha1() {
    let rsa = TestPki::get().leaf_der("personal-rsa");
    let mut req = request(
        &rsa,
        &[],
        SigningAlgorithm::RsaPkcs1(SHA384),
        Content::Attached(CONTENT),
        recent(),
    );
    req.digest_algorithm = SHA256;
    assert!(matches!(
        prepare(req),
        Err(BuildError::DigestMismatch { .. })
    ));
    let req = request(
        &rsa,
        &[],
        SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha1),
        Content::Attached(CONTENT),
        recent(),
    );
    assert_eq!(
        prepare(req).unwrap_err(),
        BuildError::WeakDigest(DigestAlgorithm::Sha1)
    );
}

#[test]
fn empty_or_misshapen_signature_values_are_refused_by_finish() {
    let pki = TestPki::get();
    let rsa = pki.leaf_der("personal-rsa");
    let p = prepare(request(
        &rsa,
        &[],
        SigningAlgorithm::RsaPkcs1(SHA256),
        Content::Attached(CONTENT),
        recent(),
    ))
    .unwrap();
    assert_eq!(p.clone().finish(&[]), Err(BuildError::EmptySignature));
    assert!(matches!(
        p.clone().finish(&[1u8; 255]),
        Err(BuildError::MalformedSignature(_))
    ));
    assert!(p.finish(&[1u8; 256]).is_ok(), "shape only, not verified");

    let ec = pki.leaf_der("personal-ec256");
    let p = prepare(request(
        &ec,
        &[],
        SigningAlgorithm::Ecdsa(SHA256),
        Content::Attached(CONTENT),
        recent(),
    ))
    .unwrap();
    assert_eq!(p.clone().finish(&[]), Err(BuildError::EmptySignature));
    assert!(matches!(
        p.finish(&[0x30, 0x00, 0x01]),
        Err(BuildError::MalformedSignature(_))
    ));
}

#[test]
fn build_errors_become_invalid_request_errors_of_kyso_pki() {
    let e: kyso_pki::Error = BuildError::EmptySignature.into();
    assert!(matches!(e, kyso_pki::Error::InvalidRequest(_)), "{e}");
}

/// The "HSM": `openssl pkeyutl` with `leaf`'s key file.
fn pkeyutl_sign(leaf: &str, alg: SigningAlgorithm, digest: &[u8]) -> Vec<u8> {
    let pss = matches!(alg, SigningAlgorithm::RsaPss(_));
    TestPki::get().sign_digest(leaf, md_name(alg.digest()), pss, digest)
}

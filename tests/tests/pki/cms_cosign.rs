//! Co-signatures (DOMAIN.md D2): the competent person's personal signature and the
//! organisation's signature, made separately by `kyso_pki::cms_build` (or by `openssl cms`),
//! merged by `kyso_pki::cms_build::add_signers` into one SignedData with several SignerInfos,
//! then checked by `openssl cms -verify` (which verifies every signer) and by kyso's verifier.

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::SignedData;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use kyso_pki::ber::{self, Limits};
use kyso_pki::cms::Detached;
use kyso_pki::cms_build::{
    BuildError, CadesRequest, Content, SigningAlgorithm, add_signers, prepare,
};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::OffsetDateTime;
use kyso_tests::{
    CmsSign, CmsVerify, PkiServers, TestPki, openssl_cms_sign, openssl_cms_verify_output,
};
use kyso_validation::report::{DocumentReport, Indication};
use kyso_validation::verify::{CmsRequest, Verifier};

const CONTENT: &[u8] = b"Cong van so 789/UBND-VP: van ban ky so ca nhan va co quan\n";
const OTHER_CONTENT: &[u8] = b"Cong van so 790/UBND-VP: mot van ban khac\n";

const SHA256: DigestAlgorithm = DigestAlgorithm::Sha256;
const SHA384: DigestAlgorithm = DigestAlgorithm::Sha384;

const PERSONAL: (&str, SigningAlgorithm) = ("personal-rsa", SigningAlgorithm::RsaPkcs1(SHA256));
const ORG: (&str, SigningAlgorithm) = ("org-rsa", SigningAlgorithm::RsaPkcs1(SHA256));
const PERSONAL_EC: (&str, SigningAlgorithm) = ("personal-ec256", SigningAlgorithm::Ecdsa(SHA384));

// ---------------------------------------------------------------------------------------------
// Set-up: the verifier as the service builds it (copied from cms_build.rs)
// ---------------------------------------------------------------------------------------------

fn servers() -> &'static PkiServers {
    kyso_tests::shared_servers()
}

fn verifier() -> Verifier {
    kyso_tests::verifier_from(&kyso_tests::trust_config(servers()))
}

/// kyso's report on every signature of `sig`.
async fn kyso_verify(sig: &[u8], detached: Detached<'_>) -> DocumentReport {
    verifier()
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
        .unwrap_or_else(|e| panic!("verify_cms refused the input: {e}"))
}

/// kyso reports `n` signatures, all TOTAL_PASSED, by `n` different signers (or keys).
async fn kyso_all_pass(label: &str, sig: &[u8], detached: Detached<'_>, n: usize) {
    let report = kyso_verify(sig, detached).await;
    assert_eq!(report.signatures.len(), n, "{label}: {report:#?}");
    for s in &report.signatures {
        assert_eq!(
            s.indication,
            Indication::TotalPassed,
            "{label}: signature #{}: {s:#?}",
            s.index
        );
    }
    let mut subjects: Vec<String> = report
        .signatures
        .iter()
        .map(|s| {
            // The same person may hold an RSA and an EC certificate.
            let subject = &s.signer.as_ref().expect("signer identity").subject;
            format!("{subject} / {:?}", s.signature_algorithm)
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), n, "{label}: signers {subjects:?}");
    assert_eq!(report.indication, Indication::TotalPassed, "{label}");
}

/// `openssl cms -verify -crl_check_all` (every signer) against the test anchors and
/// intermediates; panics with openssl's messages if it refuses.
fn openssl_accepts(label: &str, sig: &[u8], content: Option<&[u8]>) {
    let out = openssl_cms_verify_output(
        TestPki::get(),
        sig,
        content,
        &CmsVerify {
            crl_check_all: true,
            ..CmsVerify::default()
        },
    );
    assert!(out.success(), "{label}: openssl refuses: {out}");
}

// ---------------------------------------------------------------------------------------------
// Signing with a software key, the way an HSM signs (copied from cms_build.rs)
// ---------------------------------------------------------------------------------------------

fn md_name(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha1 => "sha1",
        DigestAlgorithm::Sha256 => "sha256",
        DigestAlgorithm::Sha384 => "sha384",
        DigestAlgorithm::Sha512 => "sha512",
    }
}

/// A signing time a little in the past, in whole seconds.
fn recent() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    t.replace_nanosecond(0).expect("0 ns is valid")
}

/// Prepares, signs with the leaf's software key, finishes (the issuing CA embedded).
fn build_with(
    (leaf, alg): (&str, SigningAlgorithm),
    content: Content<'_>,
    content_type: Option<ObjectIdentifier>,
) -> Vec<u8> {
    let pki = TestPki::get();
    let leaf_der = pki.leaf_der(leaf);
    let chain = vec![pki.cert_der(pki.issuing_ca_cer())];
    let prepared = prepare(CadesRequest {
        digest_algorithm: alg.digest(),
        content,
        signer_certificate: &leaf_der,
        chain: &chain,
        signing_time: Some(recent()),
        signature_algorithm: alg,
        content_type,
        commitment_type: None,
    })
    .expect("prepare");
    let sig = pkeyutl_sign(leaf, alg, &prepared.digest_to_sign());
    prepared.check_signature(&sig).expect("the key signed");
    prepared.finish(&sig).expect("finish")
}

fn build(signer: (&str, SigningAlgorithm), content: Content<'_>) -> Vec<u8> {
    build_with(signer, content, None)
}

// ---------------------------------------------------------------------------------------------
// Looking inside
// ---------------------------------------------------------------------------------------------

fn signed_data(cms_der: &[u8]) -> SignedData {
    let ci = ContentInfo::from_der(cms_der).expect("a DER ContentInfo");
    assert_eq!(ci.content_type, kyso_pki::cms::oid::SIGNED_DATA);
    ci.content.decode_as::<SignedData>().expect("SignedData")
}

/// The encapsulated content of a DER CMS, if attached.
fn econtent(cms_der: &[u8]) -> Option<Vec<u8>> {
    signed_data(cms_der)
        .encap_content_info
        .econtent
        .map(|e| e.decode_as::<OctetString>().unwrap().as_bytes().to_vec())
}

/// The elements of the SignedData (DER after BER normalisation), by tag: the raw bytes of
/// every child of the element with `tag` (0x31 for the last SET, the signerInfos).
fn signed_data_children(cms: &[u8], tag: u8) -> Vec<Vec<u8>> {
    let der = ber::to_der(cms, Limits::default()).unwrap();
    let (ci, _) = ber::read_tlv(&der).unwrap();
    let explicit = ber::children(ci.content).nth(1).unwrap().unwrap();
    let (sd, _) = ber::read_tlv(explicit.content).unwrap();
    let element = ber::children(sd.content)
        .map(Result::unwrap)
        .filter(|t| t.tag == tag)
        .last()
        .unwrap_or_else(|| panic!("no element with tag {tag:#04x}"));
    ber::children(element.content)
        .map(|c| c.unwrap().raw.to_vec())
        .collect()
}

fn signer_infos_raw(cms: &[u8]) -> Vec<Vec<u8>> {
    signed_data_children(cms, 0x31)
}

fn certificates_raw(cms: &[u8]) -> Vec<Vec<u8>> {
    signed_data_children(cms, 0xA0)
}

fn merge(existing: &[u8], other: &[u8]) -> Vec<u8> {
    add_signers(existing, other).unwrap_or_else(|e| panic!("add_signers: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Merges that pass
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn attached_personal_and_detached_org_signature_merge_into_an_attached_cms_both_pass() {
    let personal = build(PERSONAL, Content::Attached(CONTENT));
    let org = build(ORG, Content::Detached(CONTENT));
    let merged = merge(&personal, &org);
    assert_eq!(
        econtent(&merged).as_deref(),
        Some(CONTENT),
        "attached stays attached"
    );
    assert_eq!(signer_infos_raw(&merged).len(), 2);
    openssl_accepts("attached + detached", &merged, None);
    kyso_all_pass("attached + detached", &merged, Detached::None, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_existing_and_attached_other_merge_into_an_attached_cms_with_its_content() {
    let personal = build(PERSONAL, Content::Detached(CONTENT));
    let org = build(ORG, Content::Attached(CONTENT));
    let merged = merge(&personal, &org);
    assert_eq!(econtent(&merged).as_deref(), Some(CONTENT));
    openssl_accepts("detached + attached", &merged, None);
    kyso_all_pass("detached + attached", &merged, Detached::None, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_personal_and_detached_org_signature_merge_into_a_detached_cms_both_pass() {
    let personal = build(PERSONAL, Content::Detached(CONTENT));
    let org = build(ORG, Content::Detached(CONTENT));
    let merged = merge(&personal, &org);
    assert_eq!(econtent(&merged), None, "detached stays detached");
    openssl_accepts("detached + detached", &merged, Some(CONTENT));
    kyso_all_pass(
        "detached + detached",
        &merged,
        Detached::Content(CONTENT),
        2,
    )
    .await;
    // The signature of the digest alone (Content::Digest) merges the same way.
    let digest = SHA256.digest(CONTENT);
    let org = build(ORG, Content::Digest(&digest));
    let merged = merge(&personal, &org);
    openssl_accepts("detached + digest only", &merged, Some(CONTENT));
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_signatures_with_no_digest_algorithm_in_common_are_merged_and_pass() {
    // Nothing to compare the message digests with: accepted, the verifier checks.
    let personal = build(PERSONAL, Content::Detached(CONTENT));
    let org = build(
        ("org-rsa", SigningAlgorithm::RsaPkcs1(SHA384)),
        Content::Detached(CONTENT),
    );
    let merged = merge(&personal, &org);
    let sd = signed_data(&merged);
    let digests: Vec<_> = sd.digest_algorithms.iter().map(|a| a.oid).collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert!(digests.contains(&SHA256.oid()) && digests.contains(&SHA384.oid()));
    openssl_accepts("sha256 + sha384 detached", &merged, Some(CONTENT));
    kyso_all_pass(
        "sha256 + sha384 detached",
        &merged,
        Detached::Content(CONTENT),
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_stream_ber_signature_and_ours_merge_and_both_pass() {
    // `openssl cms -sign -stream -nodetach`: indefinite lengths, the content as a
    // constructed OCTET STRING.
    let ber_attached = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT).stream().cades());
    assert_eq!(&ber_attached[..2], &[0x30, 0x80], "indefinite-length BER");
    let org = build(ORG, Content::Detached(CONTENT));
    let merged = merge(&ber_attached, &org);
    assert_eq!(econtent(&merged).as_deref(), Some(CONTENT));
    openssl_accepts("openssl BER attached + ours", &merged, None);
    kyso_all_pass("openssl BER attached + ours", &merged, Detached::None, 2).await;

    // Both attached: the BER constructed OCTET STRING and our primitive one hold the same
    // content. (With DER output, `openssl cms -sign -stream` encapsulates the content even
    // without `-nodetach`: its BER is always attached.)
    let ber_sha384 = openssl_cms_sign(
        &CmsSign::new("personal-rsa", CONTENT)
            .stream()
            .cades()
            .md("sha384"),
    );
    assert_eq!(&ber_sha384[..2], &[0x30, 0x80], "indefinite-length BER");
    let org = build(ORG, Content::Attached(CONTENT));
    let merged = merge(&ber_sha384, &org);
    assert_eq!(econtent(&merged).as_deref(), Some(CONTENT));
    assert_eq!(signed_data(&merged).digest_algorithms.len(), 2);
    openssl_accepts("openssl BER + ours, both attached", &merged, None);
    kyso_all_pass(
        "openssl BER + ours, both attached",
        &merged,
        Detached::None,
        2,
    )
    .await;

    // Ours detached first, openssl's BER as the other: its content is taken (as DER).
    let personal = build(PERSONAL, Content::Detached(CONTENT));
    let ber_org = openssl_cms_sign(&CmsSign::new("org-rsa", CONTENT).stream());
    assert_eq!(&ber_org[..2], &[0x30, 0x80], "indefinite-length BER");
    let merged = merge(&personal, &ber_org);
    assert_eq!(econtent(&merged).as_deref(), Some(CONTENT));
    openssl_accepts("ours detached + openssl BER", &merged, None);
    kyso_all_pass("ours detached + openssl BER", &merged, Detached::None, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_signers_merge_step_by_step_and_all_pass() {
    let personal = build(PERSONAL, Content::Attached(CONTENT));
    let org = build(ORG, Content::Detached(CONTENT));
    let ec = build(PERSONAL_EC, Content::Detached(CONTENT));
    let two = merge(&personal, &org);
    let three = merge(&two, &ec);
    assert_eq!(signer_infos_raw(&three).len(), 3);
    let sd = signed_data(&three);
    let digests: Vec<_> = sd.digest_algorithms.iter().map(|a| a.oid).collect();
    assert_eq!(digests.len(), 2, "sha256 once, sha384: {digests:?}");
    // Every SignerInfo of the two-signer CMS is still there, byte for byte.
    let kept = signer_infos_raw(&three);
    for si in signer_infos_raw(&two) {
        assert!(kept.contains(&si));
    }
    openssl_accepts("three signers", &three, None);
    kyso_all_pass("three signers", &three, Detached::None, 3).await;

    // The third one detached as well: a detached merge of a merged CMS.
    let personal = build(PERSONAL, Content::Detached(CONTENT));
    let three = merge(&merge(&personal, &org), &ec);
    assert_eq!(econtent(&three), None);
    openssl_accepts("three detached", &three, Some(CONTENT));
    kyso_all_pass("three detached", &three, Detached::Content(CONTENT), 3).await;
}

// ---------------------------------------------------------------------------------------------
// What the merge keeps
// ---------------------------------------------------------------------------------------------

#[test]
fn the_merged_cms_keeps_existing_signer_infos_byte_for_byte_and_is_der() {
    let personal = build(PERSONAL, Content::Attached(CONTENT));
    let org = build(ORG, Content::Detached(CONTENT));
    let merged = merge(&personal, &org);

    let first = signer_infos_raw(&personal);
    assert_eq!(first.len(), 1);
    let merged_signers = signer_infos_raw(&merged);
    assert_eq!(merged_signers.len(), 2);
    assert!(
        merged_signers.contains(&first[0]),
        "the personal SignerInfo changed"
    );
    assert!(merged_signers.contains(&signer_infos_raw(&org)[0]));
    // Merged the other way round: the same bytes (a DER SET OF is sorted by encoding,
    // whatever the merge order), so the position does not tell who signed first.
    // (Here the whole CMS is the same: the detached org signature takes the content.)
    assert_eq!(merge(&org, &personal), merged);

    let mut sorted = merged_signers.clone();
    sorted.sort();
    assert_eq!(merged_signers, sorted);

    // Decoding with der and encoding again gives the same bytes: the merged CMS is DER.
    let sd = signed_data(&merged);
    let again = ContentInfo {
        content_type: kyso_pki::cms::oid::SIGNED_DATA,
        content: der::Any::encode_from(&sd).unwrap(),
    }
    .to_der()
    .unwrap();
    assert_eq!(again, merged, "the merged CMS is not DER");
    assert_eq!(sd.version, CmsVersion::V1);

    // Certificates: the union, each once (both embed the issuing CA).
    let certs = certificates_raw(&merged);
    let pki = TestPki::get();
    let ca = pki.cert_der(pki.issuing_ca_cer());
    for c in [pki.leaf_der("personal-rsa"), pki.leaf_der("org-rsa"), ca] {
        assert_eq!(certs.iter().filter(|x| **x == c).count(), 1);
    }
    assert_eq!(certs.len(), 3);

    // From openssl's indefinite-length BER: the SignerInfo is kept as normalised to DER
    // (lengths only; the signed attributes and the signature value are untouched).
    let ber = openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT).stream().cades());
    let merged = merge(&ber, &org);
    let ber_signer = signer_infos_raw(&ber);
    assert_eq!(ber_signer.len(), 1);
    assert!(signer_infos_raw(&merged).contains(&ber_signer[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn merging_a_signature_already_present_changes_nothing() {
    let personal = build(PERSONAL, Content::Attached(CONTENT));
    let org = build(ORG, Content::Detached(CONTENT));
    let merged = merge(&personal, &org);
    // A retried merge: the SignerInfo is kept once.
    assert_eq!(merge(&merged, &org), merged);
    assert_eq!(merge(&merged, &merged), merged);
    kyso_all_pass("merged twice", &merge(&merged, &org), Detached::None, 2).await;
}

#[test]
fn the_signed_data_version_is_the_higher_of_the_two() {
    // id-ct-TSTInfo, any non-data content type: SignedData version 3.
    let tst_info = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
    let personal = build_with(PERSONAL, Content::Attached(CONTENT), Some(tst_info));
    let org = build_with(ORG, Content::Detached(CONTENT), Some(tst_info));
    let merged = merge(&personal, &org);
    let sd = signed_data(&merged);
    assert_eq!(sd.version, CmsVersion::V3);
    assert_eq!(sd.encap_content_info.econtent_type, tst_info);
    openssl_accepts("non-data content type", &merged, None);
}

// ---------------------------------------------------------------------------------------------
// Merges that are refused
// ---------------------------------------------------------------------------------------------

#[test]
fn signatures_over_different_contents_are_refused_with_content_mismatch() {
    let cases: [(&str, Vec<u8>, Vec<u8>); 6] = [
        (
            "attached + attached",
            build(PERSONAL, Content::Attached(CONTENT)),
            build(ORG, Content::Attached(OTHER_CONTENT)),
        ),
        (
            "attached + detached",
            build(PERSONAL, Content::Attached(CONTENT)),
            build(ORG, Content::Detached(OTHER_CONTENT)),
        ),
        (
            "detached + attached",
            build(PERSONAL, Content::Detached(CONTENT)),
            build(ORG, Content::Attached(OTHER_CONTENT)),
        ),
        (
            "detached + detached",
            build(PERSONAL, Content::Detached(CONTENT)),
            build(ORG, Content::Detached(OTHER_CONTENT)),
        ),
        (
            "detached + openssl BER (attached)",
            build(PERSONAL, Content::Detached(CONTENT)),
            openssl_cms_sign(&CmsSign::new("org-rsa", OTHER_CONTENT).stream()),
        ),
        (
            "openssl BER (attached) + attached",
            openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT).stream()),
            build(ORG, Content::Attached(OTHER_CONTENT)),
        ),
    ];
    for (label, existing, other) in cases {
        let r = add_signers(&existing, &other);
        assert!(
            matches!(r, Err(BuildError::ContentMismatch(_))),
            "{label}: {r:?}"
        );
        // The error says what differs.
        println!("{label}: {}", r.unwrap_err());
    }
}

#[test]
fn signatures_over_different_content_types_are_refused() {
    let tst_info = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
    let personal = build(PERSONAL, Content::Attached(CONTENT));
    let org = build_with(ORG, Content::Detached(CONTENT), Some(tst_info));
    assert_eq!(
        add_signers(&personal, &org),
        Err(BuildError::ContentTypeMismatch {
            existing: kyso_pki::cms::oid::DATA,
            other: tst_info
        })
    );
}

#[test]
fn a_detached_other_signer_without_message_digest_is_refused() {
    // `-noattr`: the signature is over the content itself, nothing to compare.
    let noattr = openssl_cms_sign(&CmsSign::new("org-rsa", CONTENT).noattr().detached());
    for existing in [
        build(PERSONAL, Content::Attached(CONTENT)),
        build(PERSONAL, Content::Detached(CONTENT)),
    ] {
        assert_eq!(
            add_signers(&existing, &noattr),
            Err(BuildError::NoMessageDigest { index: 0 })
        );
    }
    // Attached on both sides, the contents are compared instead: accepted.
    let noattr = openssl_cms_sign(&CmsSign::new("org-rsa", CONTENT).noattr());
    let merged = merge(&build(PERSONAL, Content::Attached(CONTENT)), &noattr);
    openssl_accepts("attached + noattr attached", &merged, None);
}

#[test]
fn inputs_that_are_not_signed_data_are_refused_as_invalid_cms() {
    let good = build(PERSONAL, Content::Attached(CONTENT));
    // ContentInfo with id-data.
    let data_ci: &[u8] = &[
        0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x04,
        0x04, 0x02, 0x68, 0x69,
    ];
    let pem = format!("-----BEGIN CMS-----\n{}\n-----END CMS-----\n", "MAA=");
    let bad: [(&str, &[u8]); 6] = [
        ("empty", b""),
        ("garbage", b"not a CMS"),
        ("truncated", &good[..good.len() - 1]),
        ("id-data", data_ci),
        ("empty sequence", b"\x30\x00"),
        ("PEM", pem.as_bytes()),
    ];
    for (label, input) in bad {
        let r = add_signers(input, &good);
        assert!(
            matches!(
                r,
                Err(BuildError::InvalidCms {
                    which: "existing",
                    ..
                })
            ),
            "{label}: {r:?}"
        );
        let r = add_signers(&good, input);
        assert!(
            matches!(r, Err(BuildError::InvalidCms { which: "other", .. })),
            "{label}: {r:?}"
        );
    }
    // Trailing data after the ContentInfo.
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        add_signers(&trailing, &good),
        Err(BuildError::InvalidCms { .. })
    ));
}

/// The "HSM": `openssl pkeyutl` with `leaf`'s key file.
fn pkeyutl_sign(leaf: &str, alg: SigningAlgorithm, digest: &[u8]) -> Vec<u8> {
    let pss = matches!(alg, SigningAlgorithm::RsaPss(_));
    TestPki::get().sign_digest(leaf, md_name(alg.digest()), pss, digest)
}

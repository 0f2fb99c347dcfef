//! The default trust of `kyso verify` (issue 15 item 9): anchors pinned by SHA-256
//! fingerprint, trusted wherever the certificate is found, without shipping the roots.
//! With the real government certificates (`shared/trust/vgca`, required: these tests do
//! not skip): a G1 sub-CA chains to the G1 root found by its fingerprint (its SHA-1
//! signature under the legacy rule, V2), a look-alike root with the same name is refused.
//! With the test PKI: the pinned set overridden in-process decides, and without a pinned
//! root the verdict names the pinned government roots.

use std::path::{Path, PathBuf};

use kyso_pki::cert::Cert;
use kyso_pki::cms::Detached;
use kyso_pki::time::OffsetDateTime;
use kyso_tests::{CmsSign, TestPki, openssl_cms_sign};
use kyso_validation::config::TrustConfig;
use kyso_validation::report::{CertSource, Indication, RevocationPolicy, SubIndication};
use kyso_validation::verify::CmsRequest;
use time::macros::datetime;

/// Inside every government certificate's validity.
const AT: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

fn vgca_dir() -> PathBuf {
    let dir = match std::env::var_os("KYSO_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("trust/vgca"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/trust/vgca"),
    };
    assert!(
        dir.join("g1-root.pem").is_file(),
        "the government CA certificates are needed at {} (set KYSO_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn load(path: &Path) -> Cert {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Cert::parse_many(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .remove(0)
}

/// The default: the government roots pinned, no anchor file, no AIA (nothing fetched).
fn pinned_government() -> TrustConfig {
    let mut c = TrustConfig {
        fetch_aia: false,
        ..TrustConfig::default()
    };
    c.pin_government_roots(Vec::new());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn g1_sub_ca_chains_to_the_g1_root_found_by_fingerprint_V2() {
    let dir = vgca_dir();
    let v = kyso_tests::verifier_from(&pinned_government());
    let root = load(&dir.join("g1-root.pem"));
    let now = OffsetDateTime::now_utc();
    for file in ["g1-chinh-phu.pem", "g1-bo-ngoai-giao.pem"] {
        let sub = load(&dir.join(file));
        // The root comes with the chain (as a document's certificates would carry it).
        let r = v
            .check_certificate(
                &[sub.clone(), root.clone()],
                Some(AT),
                Some(RevocationPolicy::Off),
                now,
            )
            .await
            .expect("judged");
        assert_eq!(
            (r.indication, r.sub_indication),
            (Indication::TotalPassed, None),
            "{file}: {r:#?}"
        );
        assert_eq!(r.path.len(), 2, "{file}: {r:#?}");
        assert!(r.path[1].trust_anchor, "{file}: {r:#?}");
        assert_eq!(r.path[1].source, CertSource::Anchor, "{file}");
        assert_eq!(r.path[1].fingerprint_sha256, root.fingerprint_hex());
        // Without the root anywhere: no anchor, and the report names the pinned roots.
        let r = v
            .check_certificate(&[sub], Some(AT), Some(RevocationPolicy::Off), now)
            .await
            .expect("judged");
        assert_eq!(
            (r.indication, r.sub_indication),
            (
                Indication::Indeterminate,
                Some(SubIndication::NoCertificateChainFound)
            ),
            "{file}: {r:#?}"
        );
        assert!(r.message.contains("pinned"), "{}", r.message);
    }
    // The root found among configured intermediates is an anchor too.
    let mut c = pinned_government();
    c.intermediates.push(dir.join("g1-root.pem"));
    let v = kyso_tests::verifier_from(&c);
    let r = v
        .check_certificate(
            &[load(&dir.join("g1-bo-cong-an.pem"))],
            Some(AT),
            Some(RevocationPolicy::Off),
            now,
        )
        .await
        .expect("judged");
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_root_with_the_same_name_is_refused_V2() {
    let dir = vgca_dir();
    let tmp = tempfile::tempdir().expect("tmp");
    let key = tmp.path().join("k.pem");
    let fake = tmp.path().join("fake-root.pem");
    kyso_tests::openssl([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().expect("utf-8"),
    ])
    .expect_success();
    // The real root re-signed with another key: same name, same extensions, other key.
    kyso_tests::openssl([
        "x509",
        "-in",
        dir.join("g1-root.pem").to_str().expect("utf-8"),
        "-signkey",
        key.to_str().expect("utf-8"),
        "-out",
        fake.to_str().expect("utf-8"),
    ])
    .expect_success();
    let real = load(&dir.join("g1-root.pem"));
    let fake = load(&fake);
    assert_eq!(fake.subject(), real.subject(), "a look-alike");
    assert_ne!(fake.fingerprint(), real.fingerprint());
    let v = kyso_tests::verifier_from(&pinned_government());
    let sub = load(&dir.join("g1-chinh-phu.pem"));
    let r = v
        .check_certificate(
            &[sub, fake],
            Some(AT),
            Some(RevocationPolicy::Off),
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("judged");
    assert_eq!(
        (r.indication, r.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoCertificateChainFound)
        ),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_set_overridden_with_the_test_pki_decides_V2() {
    let pki = TestPki::get();
    let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", b"pinned roots".to_vec()));
    let root = load(&pki.root_pem());
    let req = CmsRequest {
        signature: &sig,
        detached: Detached::None,
        at: None,
        policy: Some(RevocationPolicy::Off),
    };
    let now = OffsetDateTime::now_utc();
    // The test root pinned, found among the intermediates: an anchor.
    let pinned_test = TrustConfig {
        pinned_anchors: vec![root.fingerprint_hex()],
        intermediates: vec![pki.intermediates_pem(), pki.root_pem()],
        fetch_aia: false,
        ..TrustConfig::default()
    };
    let r = kyso_tests::verifier_from(&pinned_test)
        .verify_cms(req, now)
        .await
        .expect("judged");
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.path.last().map(|p| p.trust_anchor), Some(true), "{s:#?}");
    // The same files with the government pins: the test root is no anchor.
    let mut gov = pinned_government();
    gov.intermediates = vec![pki.intermediates_pem(), pki.root_pem()];
    let r = kyso_tests::verifier_from(&gov)
        .verify_cms(req, now)
        .await
        .expect("judged");
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoCertificateChainFound)
        ),
        "{s:#?}"
    );
    assert!(
        s.message.contains("G2") && s.message.contains("RootCA"),
        "{}",
        s.message
    );
}

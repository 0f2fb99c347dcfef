//! The real government CA certificates (Ban Cơ yếu Chính phủ) in `shared/trust/vgca/`: they
//! parse, their SHA-256 fingerprints are the published ones (hard-coded below from the folder's
//! README), every G1 sub-CA chains to the G1 root with its SHA-1 signature accepted only when
//! the G1 root is configured as a legacy root (V2, N2 art. 32), and anchors can be pinned.
//!
//! The folder is public data that is not part of the repository: `$KYSO_SHARED_DIR/trust/vgca`,
//! else `../shared/trust/vgca` next to the workspace. Without it every test prints
//! "skipped: ..." and returns (a user's clone has none).

use std::path::PathBuf;

use kyso_pki::cert::{Cert, CertKind};
use kyso_pki::crypto::{AlgorithmPolicy, DigestAlgorithm, verify_signature};
use kyso_pki::time::OffsetDateTime;
use kyso_validation::config::TrustConfig;
use kyso_validation::report::{
    CertSource, Indication, RevocationPolicy, SubIndication, TimeSource,
};
use kyso_validation::verify::Verifier;
use time::macros::datetime;

/// file, subject CN, SHA-256 fingerprint: the table of `trust/vgca/README.md`.
const PUBLISHED: &[(&str, &str, &str)] = &[
    (
        "g1-root.pem",
        "Co quan chung thuc so chuyen dung Chinh phu (RootCA)",
        "F7:BC:89:05:4C:EC:7F:12:73:0D:7B:8C:D3:EB:79:55:B1:63:83:50:87:E5:EB:87:3E:DF:B5:84:76:3B:3F:90",
    ),
    (
        "g1-chinh-phu.pem",
        "Co quan chung thuc so Chinh phu",
        "75:E9:69:C0:7B:A3:5C:29:C7:2B:BC:1B:FB:88:0F:20:F3:89:1A:61:9B:00:B7:7E:B0:2C:A6:16:07:36:A1:FE",
    ),
    (
        "g1-bo-cong-an.pem",
        "Co quan chung thuc so Bo Cong an",
        "EC:BF:84:28:26:6C:54:9E:B1:BF:DC:27:15:27:0D:5B:9D:FF:3B:BB:E2:D3:F0:C3:3E:0F:D9:1F:70:B2:D9:43",
    ),
    (
        "g1-bo-tai-chinh.pem",
        "Co quan chung thuc so Bo Tai chinh",
        "A2:62:CF:A4:89:DB:BE:66:6F:8B:89:FA:B8:32:54:78:09:87:4D:5A:06:FA:9F:7A:38:FC:22:7E:BD:F4:05:14",
    ),
    (
        "g1-dang-cong-san.pem",
        "Co quan chung thuc so Dang Cong san",
        "6E:21:8B:3E:BC:2F:31:B0:D0:32:05:C6:4F:D7:E8:92:0F:B4:71:87:D3:7A:FC:DB:4C:B2:BB:41:78:BF:46:35",
    ),
    (
        "g1-bo-ngoai-giao.pem",
        "Cơ quan chứng thực số Bộ Ngoại giao",
        "3C:42:81:29:6F:92:D2:92:CC:95:22:95:FE:41:AD:7D:0B:37:43:8F:F1:D1:43:B5:6C:46:42:CC:1B:14:BD:93",
    ),
    (
        "g2-root.pem",
        "RootCA chuyên dùng Chính phủ G2",
        "F0:4B:A4:B4:59:A7:C9:A1:B9:71:AD:9B:1C:B8:33:E6:95:A8:0C:79:AE:A6:3B:17:4B:66:A7:0E:DF:E2:FD:B8",
    ),
];

/// The G1 sub-CAs (all issued by the G1 root).
const G1_SUB_CAS: &[&str] = &[
    "g1-chinh-phu.pem",
    "g1-bo-cong-an.pem",
    "g1-bo-tai-chinh.pem",
    "g1-dang-cong-san.pem",
    "g1-bo-ngoai-giao.pem",
];

/// A time inside every certificate's validity (2016-04-07 … 2029-12-15 at the narrowest).
const AT: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

/// The folder, or `None` (after printing why) when it is absent.
fn vgca_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KYSO_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("trust/vgca"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/trust/vgca"),
    };
    if dir.join("g1-root.pem").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no government CA certificates at {} (set KYSO_SHARED_DIR to the folder that holds trust/vgca)",
            dir.display()
        );
        None
    }
}

fn colon_free_lower(fp: &str) -> String {
    fp.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn load(dir: &std::path::Path, file: &str) -> Cert {
    let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut certs = Cert::parse_many(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(certs.len(), 1, "{file} holds one certificate");
    certs.remove(0)
}

fn published_fingerprint(file: &str) -> String {
    let (_, _, fp) = PUBLISHED
        .iter()
        .find(|(f, _, _)| *f == file)
        .expect("a published file");
    colon_free_lower(fp)
}

/// A verifier whose anchors are the G1 and G2 roots, the G1 root listed as a legacy SHA-1 root
/// when `legacy`; no intermediates, no AIA: nothing touches the network.
fn verifier(dir: &std::path::Path, legacy: bool) -> Verifier {
    let config = TrustConfig {
        trust_anchors: vec![dir.join("g1-root.pem"), dir.join("g2-root.pem")],
        legacy_sha1_roots: if legacy {
            vec![PUBLISHED[0].2.to_owned()]
        } else {
            Vec::new()
        },
        fetch_aia: false,
        ..TrustConfig::default()
    };
    verifier_from(&config)
}

fn verifier_from(config: &TrustConfig) -> Verifier {
    kyso_tests::verifier_from(config)
}

#[test]
fn certificates_parse_with_the_published_fingerprints_and_names() {
    let Some(dir) = vgca_dir() else { return };
    for (file, cn, fp) in PUBLISHED {
        let c = load(&dir, file);
        assert_eq!(
            c.fingerprint_hex(),
            colon_free_lower(fp),
            "{file}: fingerprint"
        );
        assert_eq!(
            c.subject_attr(cn_oid()).as_deref(),
            Some(*cn),
            "{file}: subject CN"
        );
        assert_eq!(c.kind(), CertKind::Ca, "{file} is a CA certificate");
        assert!(c.is_ca(), "{file}: basicConstraints cA");
        assert!(
            c.not_before() <= AT && AT <= c.not_after(),
            "{file}: valid on {AT}"
        );
    }
    // The roots are self-issued; the sub-CAs are issued by the G1 root.
    let g1 = load(&dir, "g1-root.pem");
    assert!(g1.is_self_issued());
    assert!(load(&dir, "g2-root.pem").is_self_issued());
    for file in G1_SUB_CAS {
        let c = load(&dir, file);
        assert_eq!(c.issuer(), g1.subject(), "{file}: issuer is the G1 root");
        assert!(!c.is_self_issued(), "{file}");
    }
}

fn cn_oid() -> der::oid::ObjectIdentifier {
    der::oid::ObjectIdentifier::new_unwrap("2.5.4.3")
}

#[test]
fn g1_sub_ca_signatures_verify_with_the_g1_root_key_only_with_sha1_allowed() {
    let Some(dir) = vgca_dir() else { return };
    let g1 = load(&dir, "g1-root.pem");
    let g2 = load(&dir, "g2-root.pem");
    let root_key = &g1.x509().tbs_certificate.subject_public_key_info;
    for file in G1_SUB_CAS {
        let c = load(&dir, file);
        let x = c.x509();
        let sha1 = AlgorithmPolicy {
            allow_sha1: true,
            ..AlgorithmPolicy::default()
        };
        let alg = verify_signature(
            root_key,
            &x.signature_algorithm,
            None::<DigestAlgorithm>,
            c.tbs_der(),
            x.signature.raw_bytes(),
            sha1,
        )
        .unwrap_or_else(|e| panic!("{file}: the G1 root's key does not verify it: {e}"));
        assert!(alg.uses_sha1(), "{file} is sha1WithRSA");
        // SHA-1 is refused by default.
        assert!(
            verify_signature(
                root_key,
                &x.signature_algorithm,
                None,
                c.tbs_der(),
                x.signature.raw_bytes(),
                AlgorithmPolicy::default(),
            )
            .is_err(),
            "{file}: SHA-1 accepted without being allowed"
        );
        // Another root's key does not verify it.
        assert!(
            verify_signature(
                &g2.x509().tbs_certificate.subject_public_key_info,
                &x.signature_algorithm,
                None,
                c.tbs_der(),
                x.signature.raw_bytes(),
                sha1,
            )
            .is_err(),
            "{file}: the G2 root's key verifies it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn g1_sub_cas_chain_to_the_g1_root_under_the_legacy_flag_V2_N2() {
    let Some(dir) = vgca_dir() else { return };
    let v = verifier(&dir, true);
    let g1_fp = published_fingerprint("g1-root.pem");
    let now = OffsetDateTime::now_utc();
    for file in G1_SUB_CAS {
        let c = load(&dir, file);
        let r = v
            .check_certificate(
                std::slice::from_ref(&c),
                Some(AT),
                Some(RevocationPolicy::Off),
                now,
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (r.indication, r.sub_indication),
            (Indication::TotalPassed, None),
            "{file}: {r:#?}"
        );
        assert_eq!(r.path.len(), 2, "{file}: sub-CA + G1 root: {:#?}", r.path);
        assert_eq!(
            r.path[0].fingerprint_sha256,
            published_fingerprint(file),
            "{file}"
        );
        assert!(
            r.path[0]
                .signature_algorithm
                .to_ascii_lowercase()
                .contains("sha1"),
            "{file}: {:#?}",
            r.path[0]
        );
        assert_eq!(r.path[1].fingerprint_sha256, g1_fp, "{file}: the anchor");
        assert!(r.path[1].trust_anchor, "{file}");
        assert_eq!(r.path[1].source, CertSource::Anchor, "{file}");
        assert_eq!(r.reference_time.source, TimeSource::Caller);
        assert!(
            r.warnings.iter().any(|w| w.contains("not checked")),
            "{file}: revocation off is reported: {:#?}",
            r.warnings
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn g1_sub_cas_are_refused_without_the_legacy_flag_V2() {
    let Some(dir) = vgca_dir() else { return };
    let v = verifier(&dir, false);
    let now = OffsetDateTime::now_utc();
    for file in G1_SUB_CAS {
        let c = load(&dir, file);
        let r = v
            .check_certificate(&[c], Some(AT), Some(RevocationPolicy::Off), now)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (r.indication, r.sub_indication),
            (
                Indication::Indeterminate,
                Some(SubIndication::CryptoConstraintsFailure)
            ),
            "{file}: {r:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn g1_sub_cas_do_not_chain_to_the_g2_root_V2() {
    let Some(dir) = vgca_dir() else { return };
    let config = TrustConfig {
        trust_anchors: vec![dir.join("g2-root.pem")],
        fetch_aia: false,
        ..TrustConfig::default()
    };
    let v = verifier_from(&config);
    let now = OffsetDateTime::now_utc();
    for file in G1_SUB_CAS {
        let c = load(&dir, file);
        let r = v
            .check_certificate(&[c], Some(AT), Some(RevocationPolicy::Off), now)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (r.indication, r.sub_indication),
            (
                Indication::Indeterminate,
                Some(SubIndication::NoCertificateChainFound)
            ),
            "{file}: {r:#?}"
        );
    }
}

#[test]
fn anchors_pinned_by_the_published_fingerprints_load_and_others_are_refused() {
    let Some(dir) = vgca_dir() else { return };
    let anchors = vec![dir.join("g1-root.pem"), dir.join("g2-root.pem")];
    let pins = vec![
        PUBLISHED[0].2.to_owned(),
        published_fingerprint("g2-root.pem"),
    ];
    let ok = TrustConfig {
        trust_anchors: anchors.clone(),
        anchor_fingerprints: pins,
        ..TrustConfig::default()
    };
    let loaded = ok.load().expect("the published fingerprints pin the roots");
    assert_eq!(loaded.trust.anchors().len(), 2);

    // A sub-CA offered as an anchor is not among the pinned roots.
    let bad = TrustConfig {
        trust_anchors: vec![dir.join("g1-root.pem"), dir.join("g1-chinh-phu.pem")],
        ..ok
    };
    let err = bad.load().expect_err("an unpinned anchor is refused");
    let text = err.join("\n");
    assert!(
        text.contains(&published_fingerprint("g1-chinh-phu.pem"))
            || text.contains("anchor_fingerprints"),
        "{text}"
    );
}

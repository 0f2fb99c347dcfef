//! The verdict matrix of `kyso_validation::verify::Verifier` (docs/FLOWS.md, "Verdict rules"),
//! artifact by artifact, against `openssl cms -verify -crl_check_all` as the reference peer:
//! openssl passes ⇔ kyso says TOTAL_PASSED, except where a case documents why the two must
//! differ (openssl has no OCSP, no caller-given time, no legacy-root policy, no digest-only
//! input), and then openssl's own verdict is asserted too, so the documented reason stays true.
//!
//! The verifier is built the way the service builds it: a `kyso_validation::config::TrustConfig` (anchors
//! root + legacy root, the intermediates, the legacy root's fingerprint as a SHA-1 root, the URL
//! rewrites onto the loopback CRL/AIA/OCSP servers) → `TrustConfig::load` → `Verifier::new`.
//!
//! Rule IDs (shared/DOMAIN.md) are in the names of the tests that check them.

use std::process::Command;
use std::time::{Duration, SystemTime};

use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use kyso_pki::cms::Detached;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::OffsetDateTime;
use kyso_tests::{
    CmsSign, CmsVerify, LOCALITY, ORG_NAME, PERSONAL_CN, PERSONAL_EMAIL, PERSONAL_TITLE,
    PERSONAL_UID, PkiServers, TestPki, openssl_cms_sign, openssl_cms_verify_output,
};
use kyso_validation::config::TrustConfig;
use kyso_validation::report::{
    CertSource, CertStatus, DocumentReport, Indication, RevocationPolicy, RevocationSource,
    SignatureReport, SubIndication, TimeSource,
};
use kyso_validation::verify::{CmsRequest, Verifier};

const CONTENT: &[u8] = b"Quyet dinh so 123/QD-UBND: noi dung van ban (kyso test)\n";

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

fn servers() -> &'static PkiServers {
    kyso_tests::shared_servers()
}

/// The configuration a deployment of the test PKI would have, on the shared servers.
fn config() -> TrustConfig {
    config_for(servers())
}

fn config_for(servers: &PkiServers) -> TrustConfig {
    kyso_tests::trust_config(servers)
}

fn verifier_from(config: &TrustConfig) -> Verifier {
    kyso_tests::verifier_from(config)
}

fn verifier() -> Verifier {
    verifier_from(&config())
}

fn fingerprint_hex(der: &[u8]) -> String {
    hex::encode(kyso_pki::crypto::sha256(der))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn sign(opts: CmsSign) -> Vec<u8> {
    openssl_cms_sign(&opts)
}

// ---------------------------------------------------------------------------------------------
// One case: kyso's verdict, and openssl's on the same bytes
// ---------------------------------------------------------------------------------------------

/// What `openssl cms -verify -crl_check_all` must say about a case.
#[derive(Clone, Copy, Debug)]
enum Reference {
    /// openssl passes exactly when kyso says TOTAL_PASSED.
    Agrees,
    /// The two must differ, for the reason given; openssl's verdict is asserted as stated.
    Differs {
        openssl_passes: bool,
        why: &'static str,
    },
}

struct Case<'a> {
    label: &'a str,
    signature: &'a [u8],
    detached: Detached<'a>,
    at: Option<OffsetDateTime>,
    policy: Option<RevocationPolicy>,
    /// The detached content openssl gets (defaults to `Detached::Content`'s).
    openssl_content: Option<&'a [u8]>,
    indication: Indication,
    sub_indication: Option<SubIndication>,
    reference: Reference,
}

impl<'a> Case<'a> {
    fn new(label: &'a str, signature: &'a [u8]) -> Self {
        Case {
            label,
            signature,
            detached: Detached::None,
            at: None,
            policy: None,
            openssl_content: None,
            indication: Indication::TotalPassed,
            sub_indication: None,
            reference: Reference::Agrees,
        }
    }
    fn content(mut self, content: &'a [u8]) -> Self {
        self.detached = Detached::Content(content);
        self.openssl_content = Some(content);
        self
    }
    fn expect(mut self, indication: Indication, sub: SubIndication) -> Self {
        self.indication = indication;
        self.sub_indication = Some(sub);
        self
    }
    fn policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
    fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }
    fn differs(mut self, openssl_passes: bool, why: &'static str) -> Self {
        self.reference = Reference::Differs {
            openssl_passes,
            why,
        };
        self
    }

    /// Verifies with kyso and openssl and checks both verdicts; returns kyso's report of the
    /// (only) signature.
    async fn run(self, v: &Verifier) -> SignatureReport {
        let label = self.label;
        let report: DocumentReport = v
            .verify_cms(
                CmsRequest {
                    signature: self.signature,
                    detached: self.detached,
                    at: self.at,
                    policy: self.policy,
                },
                now(),
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: verify_cms refused the input: {e}"));
        assert_eq!(
            report.signatures.len(),
            1,
            "{label}: one SignerInfo expected: {report:#?}"
        );
        let s = report.signatures[0].clone();
        assert_eq!(
            (s.indication, s.sub_indication),
            (self.indication, self.sub_indication),
            "{label}: unexpected verdict: {s:#?}"
        );
        assert_eq!(
            report.indication, s.indication,
            "{label}: the document verdict is its only signature's"
        );
        if s.indication == Indication::TotalPassed {
            assert!(
                s.path.last().is_some_and(|p| p.trust_anchor),
                "{label}: a passed signature has a path ending at an anchor: {s:#?}"
            );
        } else {
            assert!(!s.message.is_empty(), "{label}: a failure says why");
        }

        let pki = TestPki::get();
        let out = openssl_cms_verify_output(
            pki,
            self.signature,
            self.openssl_content,
            &CmsVerify {
                crl_check_all: true,
                ..CmsVerify::default()
            },
        );
        let ours = s.indication == Indication::TotalPassed;
        match self.reference {
            Reference::Agrees => assert_eq!(
                out.success(),
                ours,
                "{label}: openssl and kyso disagree\nopenssl: {out}\nkyso: {s:#?}"
            ),
            Reference::Differs {
                openssl_passes,
                why,
            } => {
                assert_eq!(
                    out.success(),
                    openssl_passes,
                    "{label}: the documented difference with openssl ({why}) does not hold: {out}"
                );
                assert_ne!(
                    out.success(),
                    ours,
                    "{label}: documented as differing from openssl ({why}), but both agree"
                );
            }
        }
        s
    }
}

fn assert_warning(s: &SignatureReport, needle: &str, label: &str) {
    assert!(
        s.warnings.iter().any(|w| w.contains(needle)),
        "{label}: no warning mentioning {needle:?}: {:#?}",
        s.warnings
    );
}

// ---------------------------------------------------------------------------------------------
// Formats and algorithms that pass (V2, N3)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn attached_der_signature_passes_with_full_path_and_evidence_V2_N3() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT));
    let s = Case::new("attached DER", &sig).run(&v).await;
    assert!(s.signed_attributes && !s.detached);
    assert!(
        !s.ess_signing_certificate_v2,
        "plain openssl -sign has no ESS v2"
    );
    // The claimed signing time is reported, never the reference time (N3: a claim is
    // no proof of existence): without a timestamp the certificate is judged now.
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    assert!(s.claimed_signing_time.is_some());
    assert_eq!(s.digest_algorithm.as_deref(), Some("SHA-256"));
    // leaf (from the signature) → issuing CA (configured) → root (anchor).
    assert_eq!(s.path.len(), 3, "{:#?}", s.path);
    assert_eq!(s.path[0].source, CertSource::Signature);
    assert_eq!(s.path[1].source, CertSource::Configured);
    assert_eq!(s.path[2].source, CertSource::Anchor);
    assert_eq!(
        s.path[2].fingerprint_sha256,
        fingerprint_hex(&pki.cert_der(pki.root_cer()))
    );
    assert_eq!(
        s.path[0].fingerprint_sha256,
        fingerprint_hex(&pki.leaf_der("personal-rsa"))
    );
    // N2 art. 32: the leaf and the issuing CA were checked, both good.
    let serial_leaf = pki.serial("personal-rsa").to_ascii_lowercase();
    let leaf_ev: Vec<_> = s
        .revocation
        .iter()
        .filter(|e| {
            e.certificate_serial
                .trim_start_matches('0')
                .eq_ignore_ascii_case(serial_leaf.trim_start_matches('0'))
        })
        .collect();
    assert!(
        leaf_ev.iter().any(|e| e.status == CertStatus::Good),
        "no good evidence for the leaf: {:#?}",
        s.revocation
    );
    assert!(
        s.revocation.len() >= 2,
        "the issuing CA's status is checked too (N2 art. 32): {:#?}",
        s.revocation
    );
    assert!(
        s.revocation
            .iter()
            .all(|e| e.status == CertStatus::Good || e.status == CertStatus::NotChecked),
        "{:#?}",
        s.revocation
    );
    assert_eq!(s.revocation_policy, RevocationPolicy::Require);
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_signature_with_its_content_passes_N3() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).detached());
    let s = Case::new("detached", &sig).content(CONTENT).run(&v).await;
    assert!(s.detached);
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_indefinite_length_ber_passes_N3() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).stream());
    // Really BER: the outer ContentInfo has an indefinite length.
    assert_eq!(
        &sig[..2],
        &[0x30, 0x80],
        "openssl -stream writes indefinite lengths"
    );
    Case::new("attached -stream BER", &sig).run(&v).await;

    // (openssl writes `-stream -outform DER` attached even without -nodetach, so there is no
    // detached BER case here.)
    let s = Case::new(
        "attached -stream BER, ECDSA",
        &sign(
            CmsSign::new("personal-ec384", CONTENT)
                .md("sha384")
                .stream(),
        ),
    )
    .run(&v)
    .await;
    assert!(!s.detached);
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_without_signed_attributes_passes_at_validation_time_N3() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).noattr());
    let s = Case::new("-noattr", &sig).run(&v).await;
    assert!(!s.signed_attributes);
    assert_eq!(s.claimed_signing_time, None);
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
}

#[tokio::test(flavor = "multi_thread")]
async fn cades_signature_binds_the_signer_certificate_with_ess_v2() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).cades());
    let s = Case::new("-cades", &sig).run(&v).await;
    assert!(s.ess_signing_certificate_v2, "{s:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_pss_signature_passes() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-pss", CONTENT).pss());
    let s = Case::new("RSASSA-PSS", &sig).run(&v).await;
    let alg = s.signature_algorithm.clone().unwrap_or_default();
    assert!(alg.contains("PSS"), "{alg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_p256_and_p384_signatures_pass() {
    let v = verifier();
    for (leaf, curve, md) in [
        ("personal-ec256", "P-256", "sha256"),
        ("personal-ec384", "P-384", "sha384"),
    ] {
        let sig = sign(CmsSign::new(leaf, CONTENT).md(md));
        let s = Case::new(leaf, &sig).run(&v).await;
        let alg = s.signature_algorithm.clone().unwrap_or_default();
        assert!(
            alg.contains("ECDSA") && alg.contains(curve),
            "{leaf}: {alg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sha384_and_sha512_digests_pass() {
    let v = verifier();
    for (md, name) in [("sha384", "SHA-384"), ("sha512", "SHA-512")] {
        let sig = sign(CmsSign::new("personal-rsa", CONTENT).md(md));
        let s = Case::new(md, &sig).run(&v).await;
        assert_eq!(s.digest_algorithm.as_deref(), Some(name), "{md}");
        let sig = sign(CmsSign::new("personal-rsa", CONTENT).md(md).detached());
        Case::new(md, &sig).content(CONTENT).run(&v).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_carrying_its_issuing_ca_uses_it_V2() {
    let v = verifier_from(&TrustConfig {
        intermediates: Vec::new(),
        fetch_aia: false,
        ..config()
    });
    let sig = sign(CmsSign::new("org-rsa", CONTENT).with_ca());
    let s = Case::new("with the CA", &sig).run(&v).await;
    assert_eq!(s.path.len(), 3);
    assert_eq!(s.path[1].source, CertSource::Signature);
}

// ---------------------------------------------------------------------------------------------
// Identity (D1, N3 art. 12: the signer and organisation information is kept)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn organisation_certificate_is_reported_as_organisation_D1() {
    let v = verifier();
    let sig = sign(CmsSign::new("org-rsa", CONTENT));
    let s = Case::new("org-rsa", &sig).run(&v).await;
    let id = s.signer.expect("signer identity");
    assert_eq!(id.kind, Some(kyso_pki::cert::CertKind::Organisation));
    assert_eq!(id.common_name.as_deref(), Some(ORG_NAME));
    assert_eq!(id.organisation.as_deref(), Some(ORG_NAME));
    assert_eq!(id.title, None);
    assert_eq!(id.uid, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_certificate_identity_round_trips_in_utf8_D1_N3() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT));
    let s = Case::new("personal-rsa", &sig).run(&v).await;
    let id = s.signer.expect("signer identity");
    assert_eq!(id.kind, Some(kyso_pki::cert::CertKind::Personal));
    assert_eq!(id.common_name.as_deref(), Some(PERSONAL_CN));
    assert_eq!(id.title.as_deref(), Some(PERSONAL_TITLE));
    assert_eq!(id.title.as_deref(), Some("Chủ tịch"));
    assert_eq!(id.organisation.as_deref(), Some(ORG_NAME));
    assert_eq!(id.email.as_deref(), Some(PERSONAL_EMAIL));
    assert_eq!(id.uid.as_deref(), Some(PERSONAL_UID));
    assert_eq!(id.locality.as_deref(), Some(LOCALITY));
    assert_eq!(id.country.as_deref(), Some("VN"));
    assert!(id.subject.contains(PERSONAL_CN), "{}", id.subject);
    assert!(
        id.issuer.contains(kyso_tests::ISSUING_CA_CN),
        "{}",
        id.issuer
    );
    assert!(
        id.serial_number
            .trim_start_matches('0')
            .eq_ignore_ascii_case(pki.serial("personal-rsa").trim_start_matches('0')),
        "{} vs {}",
        id.serial_number,
        pki.serial("personal-rsa")
    );
    assert_eq!(
        id.fingerprint_sha256,
        fingerprint_hex(&pki.leaf_der("personal-rsa"))
    );
}

// ---------------------------------------------------------------------------------------------
// Legacy SHA-1 CA certificates (G1)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sha1_ca_certificate_accepted_under_a_configured_legacy_root_V2() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("legacy", CONTENT));
    let s = Case::new("legacy", &sig).run(&v).await;
    assert_eq!(s.path.len(), 3, "{:#?}", s.path);
    assert!(
        s.path[1]
            .signature_algorithm
            .to_ascii_lowercase()
            .contains("sha1"),
        "the legacy sub-CA is SHA-1 signed: {:#?}",
        s.path[1]
    );
    assert_eq!(
        s.path[2].fingerprint_sha256,
        fingerprint_hex(&pki.cert_der(pki.legacy_root_pem()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sha1_ca_certificate_refused_without_a_legacy_root_V2() {
    let v = verifier_from(&TrustConfig {
        legacy_sha1_roots: Vec::new(),
        ..config()
    });
    let sig = sign(CmsSign::new("legacy", CONTENT));
    Case::new("legacy, no legacy root", &sig)
        .expect(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
        )
        .differs(true, "openssl accepts SHA-1 CA signatures under any root")
        .run(&v)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Validity at the reference time (N2 a)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn signing_time_after_not_after_is_total_failed_expired_N2_V1() {
    let v = verifier();
    let sig = sign(CmsSign::new("expired", CONTENT));
    // The signer's own claim puts the signature after the expiry: failed on its word.
    let s = Case::new("expired", &sig)
        .expect(Indication::TotalFailed, SubIndication::Expired)
        .run(&v)
        .await;
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    assert!(s.message.contains("claimed signing time"), "{}", s.message);
}

/// Issue 16: a claimed signing time inside an expired certificate's validity used to make
/// the signature pass; anyone holding the old key can write that claim. Without a
/// timestamp (or a caller's trusted time) nothing proves the signature was made in time.
#[tokio::test(flavor = "multi_thread")]
async fn claimed_time_inside_an_expired_validity_is_out_of_bounds_no_poe_N3_R1() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("expired", CONTENT));
    // The `expired` leaf was valid from 400 to 30 days before generation.
    let claimed = pki.generated_at - Duration::from_secs(100 * 86_400);
    let backdated = with_signing_time("expired", &sig, claimed);
    let s = Case::new("expired, claimed inside the validity", &backdated)
        .expect(Indication::Indeterminate, SubIndication::OutOfBoundsNoPoe)
        .run(&v)
        .await;
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    assert_eq!(
        s.claimed_signing_time.map(|t| t.unix_timestamp()),
        Some(OffsetDateTime::from(claimed).unix_timestamp())
    );
    assert!(s.message.contains("claimed, not proven"), "{}", s.message);

    // The same claim given as the caller's trusted time (W5) is proof: it passes.
    Case::new("expired, caller time inside the validity", &backdated)
        .at(OffsetDateTime::from(claimed))
        .differs(
            false,
            "openssl judges the certificate now, kyso at the caller's trusted time",
        )
        .run(&v)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_without_signing_time_is_out_of_bounds_no_poe_N2() {
    let v = verifier();
    let sig = sign(CmsSign::new("expired", CONTENT).noattr());
    let s = Case::new("expired -noattr", &sig)
        .expect(Indication::Indeterminate, SubIndication::OutOfBoundsNoPoe)
        .run(&v)
        .await;
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_time_before_not_before_is_total_failed_not_yet_valid_N2() {
    let v = verifier();
    let sig = sign(CmsSign::new("notyet", CONTENT));
    Case::new("notyet", &sig)
        .expect(Indication::TotalFailed, SubIndication::NotYetValid)
        .run(&v)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_time_inside_the_validity_of_an_expired_certificate_passes_N2_W5() {
    let pki = TestPki::get();
    let v = verifier();
    // `expired` was valid from −400 d to −30 d; the exchange received it at −60 d (W5).
    let at = OffsetDateTime::from(pki.generated_at - Duration::from_secs(60 * 86_400));
    let sig = sign(CmsSign::new("expired", CONTENT));
    let s = Case::new("expired, caller time inside validity", &sig)
        .at(at)
        .differs(
            false,
            "openssl judges the certificate now, not at the trusted time",
        )
        .run(&v)
        .await;
    assert_eq!(s.reference_time.source, TimeSource::Caller);
    assert_eq!(s.reference_time.time, at);
}

// ---------------------------------------------------------------------------------------------
// Revocation and suspension at the reference time (N2 c, N7, V1, V3)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn revoked_before_signing_time_is_total_failed_N2_V1_V3() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("revoked", CONTENT));
    let s = Case::new("revoked", &sig)
        .expect(Indication::TotalFailed, SubIndication::Revoked)
        .run(&v)
        .await;
    let ev = s
        .revocation
        .iter()
        .find(|e| e.status == CertStatus::Revoked)
        .unwrap_or_else(|| panic!("no revoked evidence: {:#?}", s.revocation));
    assert_eq!(ev.revocation_reason.as_deref(), Some("keyCompromise"));
    let rt = ev.revocation_time.expect("revocation time");
    let expected = OffsetDateTime::from(pki.revoked_at);
    assert!(
        (rt - expected).abs() <= time::Duration::seconds(1),
        "revocation time {rt} vs {expected}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_on_hold_is_revoked_with_reason_certificate_hold_N7_V1() {
    let v = verifier();
    let sig = sign(CmsSign::new("onhold", CONTENT));
    let s = Case::new("onhold", &sig)
        .expect(Indication::TotalFailed, SubIndication::Revoked)
        .run(&v)
        .await;
    assert!(
        s.revocation.iter().any(|e| e.status == CertStatus::Revoked
            && e.revocation_reason.as_deref() == Some("certificateHold")),
        "{:#?}",
        s.revocation
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_after_a_caller_given_time_passes_with_a_warning_N2_W5() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("revoked", CONTENT));
    let at = OffsetDateTime::from(pki.revoked_at - Duration::from_secs(3600));
    let s = Case::new("revoked, caller time before the revocation", &sig)
        .at(at)
        .differs(
            false,
            "openssl rejects any certificate listed on the CRL, whatever the time",
        )
        .run(&v)
        .await;
    assert_eq!(s.reference_time.source, TimeSource::Caller);
    assert_eq!(s.reference_time.time, at);
    assert_warning(&s, "revoked", "revoked after the caller's time");
    assert!(s.revocation.iter().any(|e| e.status == CertStatus::Revoked));

    // The same trusted time after the revocation: failed.
    let late = OffsetDateTime::from(pki.revoked_at + Duration::from_secs(60));
    Case::new("revoked, caller time after the revocation", &sig)
        .at(late)
        .expect(Indication::TotalFailed, SubIndication::Revoked)
        .run(&v)
        .await;
}

/// Re-signs a signature's signed attributes with the signing time replaced (openssl cms has no
/// option for the signing time; this is what a signer with a wrong or forged clock produces).
fn with_signing_time(leaf: &str, sig: &[u8], at: SystemTime) -> Vec<u8> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerInfos};

    const SIGNING_TIME: der::oid::ObjectIdentifier =
        der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    let pki = TestPki::get();
    let ci = ContentInfo::from_der(sig).expect("a DER ContentInfo");
    let mut sd: SignedData = ci.content.decode_as().expect("SignedData");
    let mut infos = sd.signer_infos.0.into_vec();
    let si = &mut infos[0];
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let utc = UtcTime::from_unix_duration(Duration::from_secs(secs)).expect("UTCTime");
    let mut attrs = si
        .signed_attrs
        .take()
        .expect("signed attributes")
        .into_vec();
    let mut replaced = false;
    for a in &mut attrs {
        if a.oid == SIGNING_TIME {
            a.values =
                SetOfVec::try_from(vec![Any::encode_from(&utc).expect("Any")]).expect("one value");
            replaced = true;
        }
    }
    assert!(replaced, "the signature has a signing-time attribute");
    let attrs = SetOfVec::try_from(attrs).expect("attributes");
    let tmp = tempfile::tempdir().expect("tmp");
    let tbs = tmp.path().join("attrs.der");
    let out = tmp.path().join("sig.bin");
    std::fs::write(&tbs, attrs.to_der().expect("DER")).expect("write");
    kyso_tests::run(
        Command::new("openssl")
            .arg("dgst")
            .arg("-sha256")
            .arg("-sign")
            .arg(pki.leaf_key(leaf))
            .arg("-out")
            .arg(&out)
            .arg(&tbs),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success();
    si.signed_attrs = Some(attrs);
    si.signature = OctetString::new(std::fs::read(&out).expect("read")).expect("octets");
    sd.signer_infos = SignerInfos::try_from(infos).expect("signer infos");
    ContentInfo {
        content_type: ci.content_type,
        content: Any::encode_from(&sd).expect("SignedData DER"),
    }
    .to_der()
    .expect("ContentInfo DER")
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_after_a_claimed_signing_time_is_revoked_no_poe_N2() {
    let pki = TestPki::get();
    let v = verifier();
    let sig = sign(CmsSign::new("revoked", CONTENT));
    // Two hours before generation: one hour before the revocation.
    let claimed = pki.generated_at - Duration::from_secs(2 * 3600);
    let backdated = with_signing_time("revoked", &sig, claimed);
    let s = Case::new(
        "revoked, claimed signing time before the revocation",
        &backdated,
    )
    .expect(Indication::Indeterminate, SubIndication::RevokedNoPoe)
    .run(&v)
    .await;
    assert_eq!(s.reference_time.source, TimeSource::ValidationTime);
    assert_eq!(
        s.claimed_signing_time.map(|t| t.unix_timestamp()),
        Some(OffsetDateTime::from(claimed).unix_timestamp())
    );

    // The crafting itself is sound: the same re-signing on a good certificate passes.
    let good = sign(CmsSign::new("personal-rsa", CONTENT));
    let good = with_signing_time("personal-rsa", &good, claimed);
    Case::new("re-signed attributes, good certificate", &good)
        .run(&v)
        .await;
}

/// Servers on which the `unknown` leaf has no revocation evidence at all: its OCSP responder
/// answers *unknown* and its CRL cannot be fetched (HTTP 404). The issuing CA's own CRL
/// (`root.crl`) is still served, so only the leaf lacks evidence.
fn servers_without_leaf_crl() -> PkiServers {
    let servers = PkiServers::start(TestPki::get());
    servers.crl.put("/issuing-ca.crl", 404, b"gone\n".to_vec());
    servers
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsp_unknown_falls_back_to_the_crl_N2() {
    // OCSP says *unknown*; the order ocsp-then-crl then asks the CRL, which does not list the
    // certificate: evidence that it is not revoked (N2 c: "read from the CRL or OCSP").
    let v = verifier();
    let sig = sign(CmsSign::new("unknown", CONTENT));
    let s = Case::new("unknown, require, CRL reachable", &sig)
        .policy(RevocationPolicy::Require)
        .run(&v)
        .await;
    assert!(
        s.revocation
            .iter()
            .any(|e| e.source == RevocationSource::Ocsp && e.status == CertStatus::Unknown),
        "the OCSP answer was unknown: {:#?}",
        s.revocation
    );
    assert!(
        s.revocation
            .iter()
            .any(|e| e.source == RevocationSource::Crl && e.status == CertStatus::Good),
        "the CRL decided: {:#?}",
        s.revocation
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_revocation_evidence_under_require_is_try_later_N2() {
    let servers = servers_without_leaf_crl();
    let v = verifier_from(&config_for(&servers));
    let sig = sign(CmsSign::new("unknown", CONTENT));
    let s = Case::new("unknown, require, no CRL", &sig)
        .policy(RevocationPolicy::Require)
        .expect(Indication::Indeterminate, SubIndication::TryLater)
        .differs(
            true,
            "openssl has no OCSP and reads the CRLs from its trust file, not over HTTP",
        )
        .run(&v)
        .await;
    assert_eq!(s.revocation_policy, RevocationPolicy::Require);
    assert!(
        s.revocation.iter().any(|e| e.status == CertStatus::Unknown),
        "{:#?}",
        s.revocation
    );
    assert!(
        !s.revocation
            .iter()
            .any(|e| e.status == CertStatus::Good && e.certificate_subject.contains(PERSONAL_CN)),
        "no evidence may say the leaf is good: {:#?}",
        s.revocation
    );
    assert!(
        servers.crl.count("/issuing-ca.crl") > 0,
        "the CRL was asked for"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_revocation_evidence_under_soft_fail_passes_with_a_warning_N2() {
    let servers = servers_without_leaf_crl();
    let v = verifier_from(&config_for(&servers));
    let sig = sign(CmsSign::new("unknown", CONTENT));
    let s = Case::new("unknown, soft-fail, no CRL", &sig)
        .policy(RevocationPolicy::SoftFail)
        .run(&v)
        .await;
    assert_eq!(s.revocation_policy, RevocationPolicy::SoftFail);
    assert_warning(&s, "soft-fail", "unknown, soft-fail");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_policy_off_passes_and_says_not_checked() {
    let servers = servers_without_leaf_crl();
    let v = verifier_from(&config_for(&servers));
    let sig = sign(CmsSign::new("unknown", CONTENT));
    let s = Case::new("unknown, off", &sig)
        .policy(RevocationPolicy::Off)
        .run(&v)
        .await;
    assert_eq!(s.revocation_policy, RevocationPolicy::Off);
    assert_warning(&s, "not checked", "unknown, off");

    // Off does not look at the network at all, even for a revoked certificate.
    let asked = servers.ocsp_proxy.requests() + servers.crl.total();
    let sig = sign(CmsSign::new("revoked", CONTENT));
    let s = Case::new("revoked, off", &sig)
        .policy(RevocationPolicy::Off)
        .differs(
            false,
            "openssl checks the CRL; the caller switched revocation off",
        )
        .run(&v)
        .await;
    assert_warning(&s, "not checked", "revoked, off");
    assert_eq!(
        servers.ocsp_proxy.requests() + servers.crl.total(),
        asked,
        "policy off fetched revocation data"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn default_policy_comes_from_the_configuration() {
    let servers = servers_without_leaf_crl();
    let mut cfg = config_for(&servers);
    cfg.revocation.policy = RevocationPolicy::SoftFail;
    let v = verifier_from(&cfg);
    let sig = sign(CmsSign::new("unknown", CONTENT));
    let s = Case::new("unknown, configured soft-fail", &sig)
        .run(&v)
        .await;
    assert_eq!(s.revocation_policy, RevocationPolicy::SoftFail);
}

// ---------------------------------------------------------------------------------------------
// Paths (V2)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn rogue_ca_with_the_real_name_never_chains_V2() {
    let v = verifier();
    let sig = sign(CmsSign::new("rogue", CONTENT));
    Case::new("rogue", &sig)
        .expect(
            Indication::Indeterminate,
            SubIndication::NoCertificateChainFound,
        )
        .run(&v)
        .await;
    // Even when the signature carries the rogue CA itself.
    let sig = sign(CmsSign::new("rogue", CONTENT).with_ca());
    Case::new("rogue with its CA", &sig)
        .expect(
            Indication::Indeterminate,
            SubIndication::NoCertificateChainFound,
        )
        .run(&v)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_intermediate_is_fetched_through_aia_V2() {
    let servers = servers();
    let before = servers.aia.count("/issuing-ca.cer");
    let v = verifier_from(&TrustConfig {
        intermediates: Vec::new(),
        fetch_aia: true,
        ..config()
    });
    let sig = sign(CmsSign::new("personal-rsa", CONTENT));
    let s = Case::new("leaf only, AIA", &sig).run(&v).await;
    assert_eq!(s.path.len(), 3, "{:#?}", s.path);
    match &s.path[1].source {
        CertSource::Aia(url) => assert!(
            url.ends_with("/issuing-ca.cer"),
            "the AIA URL of the leaf: {url}"
        ),
        other => panic!("the issuing CA came from {other:?}, not AIA"),
    }
    assert!(
        servers.aia.count("/issuing-ca.cer") > before,
        "the AIA server was not asked"
    );

    // Without AIA and without intermediates there is no path.
    let v = verifier_from(&TrustConfig {
        intermediates: Vec::new(),
        fetch_aia: false,
        ..config()
    });
    let v_report = v
        .verify_cms(
            CmsRequest {
                signature: &sig,
                detached: Detached::None,
                at: None,
                policy: None,
            },
            now(),
        )
        .await
        .expect("a report");
    assert_eq!(
        v_report.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound),
        "{v_report:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The signature itself (N3: integrity, the signer's key)
// ---------------------------------------------------------------------------------------------

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_content_is_hash_failure_N3_V5() {
    let v = verifier();
    // Attached: one byte of the encapsulated content changed in place.
    let mut sig = sign(CmsSign::new("personal-rsa", CONTENT));
    let at = find(&sig, b"123/QD").expect("the content is in the signature");
    sig[at] = b'9';
    Case::new("tampered attached content", &sig)
        .expect(Indication::TotalFailed, SubIndication::HashFailure)
        .run(&v)
        .await;

    // Detached: another document given.
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).detached());
    let other = b"Quyet dinh so 999/QD-UBND: noi dung van ban (kyso test)\n";
    Case::new("detached, other content", &sig)
        .content(other)
        .expect(Indication::TotalFailed, SubIndication::HashFailure)
        .run(&v)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_signature_byte_is_sig_crypto_failure_N3() {
    let v = verifier();
    for (label, opts) in [
        ("RSA", CmsSign::new("personal-rsa", CONTENT)),
        (
            "RSA without attributes",
            CmsSign::new("personal-rsa", CONTENT).noattr(),
        ),
        ("ECDSA", CmsSign::new("personal-ec256", CONTENT)),
    ] {
        let mut sig = sign(opts);
        // The SignerInfo is last and has no unsigned attributes: the last byte of the DER
        // is the last byte of the signature value.
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        Case::new(label, &sig)
            .expect(Indication::TotalFailed, SubIndication::SigCryptoFailure)
            .run(&v)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_without_the_signer_certificate_is_no_signing_certificate_found() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).nocerts());
    let s = Case::new("-nocerts", &sig)
        .expect(
            Indication::Indeterminate,
            SubIndication::NoSigningCertificateFound,
        )
        .run(&v)
        .await;
    assert!(s.signer.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_signature_without_content_is_signed_data_not_found() {
    let v = verifier();
    let sig = sign(CmsSign::new("personal-rsa", CONTENT).detached());
    Case::new("detached, no content", &sig)
        .expect(Indication::Indeterminate, SubIndication::SignedDataNotFound)
        .run(&v)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_signature_with_only_the_digest_passes_N3() {
    let v = verifier();
    for (md, alg) in [
        ("sha256", DigestAlgorithm::Sha256),
        ("sha512", DigestAlgorithm::Sha512),
    ] {
        let sig = sign(CmsSign::new("personal-rsa", CONTENT).detached().md(md));
        let digest = alg.digest(CONTENT);
        let mut case = Case::new("detached, digest only", &sig);
        case.detached = Detached::Digest {
            algorithm: alg,
            value: &digest,
        };
        // openssl cannot take a digest: it gets the content.
        case.openssl_content = Some(CONTENT);
        let s = case.run(&v).await;
        assert!(s.detached);

        // The digest of another document: the signature does not cover it.
        let wrong = alg.digest(b"another document");
        let mut case = Case::new("detached, wrong digest", &sig)
            .expect(Indication::TotalFailed, SubIndication::HashFailure);
        case.detached = Detached::Digest {
            algorithm: alg,
            value: &wrong,
        };
        case.openssl_content = Some(b"another document");
        case.run(&v).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Input that cannot be judged: an error, never a panic, never a verdict
// ---------------------------------------------------------------------------------------------

async fn must_refuse(v: &Verifier, label: &str, input: &[u8]) {
    let r = v
        .verify_cms(
            CmsRequest {
                signature: input,
                detached: Detached::None,
                at: None,
                policy: Some(RevocationPolicy::Off),
            },
            now(),
        )
        .await;
    assert!(r.is_err(), "{label}: expected an error, got {r:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_and_garbage_input_are_errors() {
    let v = verifier();
    must_refuse(&v, "empty", b"").await;
    must_refuse(&v, "text", b"this is not a signature").await;
    must_refuse(&v, "a lone tag", &[0x30]).await;
    must_refuse(&v, "an empty SEQUENCE", &[0x30, 0x00]).await;
    must_refuse(
        &v,
        "a huge declared length",
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
    )
    .await;
    must_refuse(
        &v,
        "bad PEM",
        b"-----BEGIN CMS-----\n!!!\n-----END CMS-----\n",
    )
    .await;
    // A certificate is DER but not a CMS.
    let cert = TestPki::get().leaf_der("personal-rsa");
    must_refuse(&v, "a certificate", &cert).await;
    // Pseudo-random bytes (deterministic), some starting like a SEQUENCE.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..200 {
        let len = 1 + (i * 7) % 600;
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push((x >> 24) as u8);
        }
        if i % 2 == 0 {
            buf[0] = 0x30;
        }
        must_refuse(&v, &format!("random #{i}"), &buf).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_signatures_are_errors() {
    let v = verifier();
    for (label, sig) in [
        ("DER", sign(CmsSign::new("personal-rsa", CONTENT))),
        (
            "BER",
            sign(CmsSign::new("personal-ec256", CONTENT).stream()),
        ),
    ] {
        // Every length in the first and last 64 bytes, and every 7th in between.
        let n = sig.len();
        let lengths = (0..n).filter(|l| *l < 64 || *l + 64 >= n || l % 7 == 0);
        for len in lengths {
            must_refuse(
                &v,
                &format!("{label} truncated to {len} of {n}"),
                &sig[..len],
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn content_info_of_another_type_is_an_error() {
    let v = verifier();
    // ContentInfo { id-data, [0] OCTET STRING "hello" }.
    let data_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    let mut ci = vec![0x30, 0x14];
    ci.extend_from_slice(&data_oid);
    ci.extend_from_slice(&[0xa0, 0x07, 0x04, 0x05]);
    ci.extend_from_slice(b"hello");
    assert_eq!(ci.len(), 0x16);
    must_refuse(&v, "id-data ContentInfo", &ci).await;

    // What openssl makes of the same idea, and an enveloped-data ContentInfo.
    let pki = TestPki::get();
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.txt");
    std::fs::write(&input, CONTENT).expect("write");
    for (label, args) in [
        ("openssl -data_create", vec!["-data_create"]),
        ("openssl -encrypt", vec!["-encrypt", "-aes256"]),
    ] {
        let out = tmp.path().join("out.der");
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&pki.dir)
            .arg("cms")
            .args(&args)
            .args(["-binary", "-outform", "DER", "-in"])
            .arg(&input)
            .arg("-out")
            .arg(&out);
        if label.contains("encrypt") {
            cmd.arg(pki.leaf_cert("personal-rsa"));
        }
        kyso_tests::run(&mut cmd, None, kyso_tests::COMMAND_TIMEOUT).expect_success();
        let bytes = std::fs::read(&out).expect("read");
        must_refuse(&v, label, &bytes).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_ber_is_an_error_not_a_stack_overflow() {
    let v = verifier();
    for depth in [65usize, 1_000, 100_000] {
        // Indefinite-length SEQUENCEs, then as many end-of-contents.
        let mut ber = Vec::with_capacity(depth * 4);
        for _ in 0..depth {
            ber.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..depth {
            ber.extend_from_slice(&[0x00, 0x00]);
        }
        must_refuse(&v, &format!("{depth} nested indefinite SEQUENCEs"), &ber).await;

        // Constructed OCTET STRINGs (BER segments) nested inside a ContentInfo-like start.
        let mut ber = vec![0x30, 0x80, 0x06, 0x09];
        ber.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
        for _ in 0..depth {
            ber.extend_from_slice(&[0x24, 0x80]);
        }
        for _ in 0..depth + 1 {
            ber.extend_from_slice(&[0x00, 0x00]);
        }
        must_refuse(
            &v,
            &format!("{depth} nested constructed OCTET STRINGs"),
            &ber,
        )
        .await;
    }
    // Definite lengths, nested 10 000 deep (a long-form length at every level).
    let depth = 10_000usize;
    let mut der = Vec::new();
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..depth {
        let len = inner.len();
        der.clear();
        der.push(0x30);
        der.push(0x84);
        der.extend_from_slice(&u32::try_from(len).expect("small").to_be_bytes());
        der.extend_from_slice(&inner);
        std::mem::swap(&mut der, &mut inner);
    }
    must_refuse(&v, "10 000 nested definite SEQUENCEs", &inner).await;
}

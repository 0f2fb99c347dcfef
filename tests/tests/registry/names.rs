//! One rendering of X.509 names across the services: the issuer string a verifier report
//! gives for a signer finds that signer's certificate in the registry by issuer and serial.
//! The test PKI's issuing CA has a Vietnamese UTF-8 name (`CN=Test Cơ quan chứng thực số
//! Chính phủ,O=Ban Cơ yếu Chính phủ,C=VN`), which a rendering that escapes non-ASCII bytes
//! would not match.

use kyso_pki::cms::Detached;
use kyso_pki::time::OffsetDateTime;
use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_tests::registry::Registry;
use kyso_tests::{CA_ORG, CmsSign, ISSUING_CA_CN, ORG_NAME, TestPki, openssl_cms_sign};
use kyso_validation::report::{Indication, SignerIdentity};
use kyso_validation::verify::CmsRequest;
use tonic::transport::Channel;

const CONTENT: &[u8] = "Công văn số 12/UBND-VP (kiểm thử tên X.509)".as_bytes();

fn change(reason: &str) -> Option<pb::Change> {
    Some(pb::Change {
        actor: "subscriber-manager@sotttt.khanhhoa.gov.vn".into(),
        reason: reason.into(),
    })
}

/// The verifier's report on an organisation's signature (`org-rsa`): who signed.
async fn reported_signer() -> SignerIdentity {
    let verifier =
        kyso_tests::verifier_from(&kyso_tests::trust_config(kyso_tests::shared_servers()));
    let cms = openssl_cms_sign(&CmsSign::new("org-rsa", CONTENT));
    let report = verifier
        .verify_cms(
            CmsRequest {
                signature: &cms,
                detached: Detached::None,
                at: None,
                policy: None,
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    let signer = report.signatures[0].signer.clone().unwrap();
    assert!(
        signer.issuer.contains(ISSUING_CA_CN) && signer.issuer.contains(CA_ORG),
        "the issuer is rendered in UTF-8, most specific RDN first: {}",
        signer.issuer
    );
    assert!(signer.issuer.starts_with("CN="), "{}", signer.issuer);
    signer
}

/// Registers `org-rsa` for a new organisation.
pub(crate) async fn register_org_certificate(c: &mut RegistryClient<Channel>) -> pb::Certificate {
    let org = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: ORG_NAME.into(),
            parent_id: String::new(),
            managing_agency_id: String::new(),
            mail_domain: "khanhhoa.gov.vn".into(),
            code: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    c.register_certificate(pb::RegisterCertificateRequest {
        change: change("issued by the CA"),
        der: TestPki::get().leaf_der("org-rsa"),
        kind: pb::CertificateKind::Organisation as i32,
        person_id: String::new(),
        organisation_id: org,
        renewal_of: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .certificate
    .unwrap()
}

/// GetCertificate by issuer and serial, with exactly what a report said.
async fn by_issuer_serial(
    c: &mut RegistryClient<Channel>,
    who: &SignerIdentity,
) -> pb::Certificate {
    c.get_certificate(pb::GetCertificateRequest {
        by: Some(pb::get_certificate_request::By::IssuerSerial(
            pb::IssuerSerial {
                issuer: who.issuer.clone(),
                serial: who.serial_number.clone(),
            },
        )),
    })
    .await
    .unwrap()
    .into_inner()
    .certificate
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_from_a_verifier_report_finds_the_certificate_by_issuer_and_serial() {
    let signer = reported_signer().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("registry.db").display());
    let mut registry = Registry::start_with(&url).await;
    let mut c = registry.client().await;
    let registered = register_org_certificate(&mut c).await;
    assert_eq!(registered.issuer, signer.issuer);
    assert_eq!(registered.subject, signer.subject);

    let found = by_issuer_serial(&mut c, &signer).await;
    assert_eq!(found.fingerprint, signer.fingerprint_sha256);
    registry.stop().await;
}

/// Rows written before the one rendering (x509-cert's, non-ASCII escaped) are re-rendered
/// from their DER when the registry starts, once, and are then found the same way.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_stored_with_the_former_rendering_are_found_after_the_upgrade() {
    let signer = reported_signer().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("registry.db").display());
    let mut registry = Registry::start_with(&url).await;
    register_org_certificate(&mut registry.client().await).await;
    registry.stop().await;

    // What an older registry stored, as it stored it.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE certificates SET issuer = $1, subject = $2, names_rendering = 0",
    )
    .bind("CN=Test C\\C6\\A1 quan ch\\E1\\BB\\A9ng th\\E1\\BB\\B1c s\\E1\\BB\\91 Ch\\C3\\ADnh ph\\E1\\BB\\A7")
    .bind("CN=old rendering")
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let mut registry = Registry::start_with(&url).await;
    let mut c = registry.client().await;
    let found = by_issuer_serial(&mut c, &signer).await;
    assert_eq!(found.fingerprint, signer.fingerprint_sha256);
    assert_eq!(found.issuer, signer.issuer);
    assert_eq!(found.subject, signer.subject);
    registry.stop().await;
}

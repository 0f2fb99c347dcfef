//! One rendering of X.509 names across the services: the issuer string a verifier report
//! gives for a signer finds that signer's certificate in the registry by issuer and serial.
//! The test PKI's issuing CA has a Vietnamese UTF-8 name (`CN=Test Cơ quan chứng thực số
//! Chính phủ,O=Ban Cơ yếu Chính phủ,C=VN`), which a rendering that escapes non-ASCII bytes
//! would not match.

use std::time::Duration;

use kyso_pki::cms::Detached;
use kyso_pki::time::OffsetDateTime;
use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_registry::{Config, Listeners, serve, system_clock};
use kyso_tests::{CA_ORG, CmsSign, ISSUING_CA_CN, TestPki, openssl_cms_sign};
use kyso_validation::report::Indication;
use kyso_validation::verify::CmsRequest;
use tokio::net::TcpListener;

const CONTENT: &[u8] = "Công văn số 12/UBND-VP (kiểm thử tên X.509)".as_bytes();

fn change(reason: &str) -> Option<pb::Change> {
    Some(pb::Change {
        actor: "subscriber-manager@sotttt.khanhhoa.gov.vn".into(),
        reason: reason.into(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_from_a_verifier_report_finds_the_certificate_by_issuer_and_serial() {
    let pki = TestPki::get();

    // The verifier's report on an organisation's signature.
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

    // The registry, with the same certificate registered.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite:{}", dir.path().join("registry.db").display()),
        mail_domain: "khanhhoa.gov.vn".into(),
        ..Config::default()
    };
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        config,
        Listeners {
            grpc,
            metrics: None,
        },
        system_clock(),
        async move {
            let _ = stopped.await;
        },
    ));
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(30));
    let mut client = None;
    for _ in 0..100 {
        match endpoint.connect().await {
            Ok(c) => {
                client = Some(RegistryClient::new(c));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut c = client.expect("the registry accepts connections");
    let org = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: "Ủy ban nhân dân tỉnh Khánh Hòa".into(),
            parent_id: String::new(),
            managing_agency_id: String::new(),
            mail_domain: "khanhhoa.gov.vn".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let registered = c
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("issued by the CA"),
            der: pki.leaf_der("org-rsa"),
            kind: pb::CertificateKind::Organisation as i32,
            person_id: String::new(),
            organisation_id: org,
            renewal_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(registered.issuer, signer.issuer);

    // Looked up with exactly what the report said.
    let found = c
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::IssuerSerial(
                pb::IssuerSerial {
                    issuer: signer.issuer.clone(),
                    serial: signer.serial_number.clone(),
                },
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(found.fingerprint, signer.fingerprint_sha256);
    assert_eq!(found.subject, signer.subject);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the registry stops")
        .unwrap()
        .unwrap();
}

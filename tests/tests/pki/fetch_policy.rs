//! Server-side request forgery through AIA (issue 14): a signature whose leaf names its
//! issuer at caIssuers URLs on the verifier's own host, the cloud metadata address and a
//! private address. The certificate is not verified yet when those URLs are read, so the
//! fetch policy alone decides: nothing is fetched unless the operator listed the host, the
//! report says which URL was not fetched and why, and the answer comes at once.

use std::path::Path;
use std::time::{Duration, Instant};

use kyso_pki::cert::Cert;
use kyso_pki::cms::Detached;
use kyso_tests::HttpServer;
use kyso_tests::hostile::{ca_certificate, cms_sign, ec_key, issue};
use kyso_validation::config::TrustConfig;
use kyso_validation::report::{DocumentReport, Indication, SubIndication};
use kyso_validation::verify::{CmsRequest, Verifier};

/// A CMS signed by a leaf of an untrusted CA whose AIA names `urls`; the CA's certificate
/// (DER) is written to `serve_dir/ca.cer`.
fn signature_naming(urls: &[String], serve_dir: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path();
    let (ca_key, ca, leaf_key) = (d.join("ca.key"), d.join("ca.pem"), d.join("leaf.key"));
    ec_key(&ca_key);
    ec_key(&leaf_key);
    ca_certificate(&ca_key, "/C=VN/O=Elsewhere/CN=Elsewhere CA", 1, &ca);
    let ca_der = Cert::parse_many(&std::fs::read(&ca).expect("CA"))
        .expect("the CA parses")
        .remove(0);
    std::fs::write(serve_dir.join("ca.cer"), ca_der.der()).expect("ca.cer");
    let ext = d.join("leaf.ext");
    let aia: Vec<String> = urls.iter().map(|u| format!("caIssuers;URI:{u}")).collect();
    std::fs::write(
        &ext,
        format!(
            "authorityInfoAccess={}\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
            aia.join(",")
        ),
    )
    .expect("extension file");
    let leaf = d.join("leaf.pem");
    issue(
        &leaf_key,
        "/C=VN/O=Elsewhere/CN=Elsewhere signer",
        (&ca, &ca_key),
        9,
        Some(&ext),
        &leaf,
    );
    cms_sign(
        &leaf,
        &leaf_key,
        None,
        b"van ban (kyso fetch policy test)\n",
    )
}

fn verifier(allowed_hosts: Option<Vec<String>>) -> Verifier {
    let base = kyso_tests::trust_config(kyso_tests::shared_servers());
    kyso_tests::verifier_from(&TrustConfig {
        revocation: kyso_validation::config::RevocationSection {
            allowed_hosts,
            ..base.revocation.clone()
        },
        ..base
    })
}

async fn verify(v: &Verifier, sig: &[u8]) -> (DocumentReport, Duration) {
    let started = Instant::now();
    let report = v
        .verify_cms(
            CmsRequest {
                signature: sig,
                detached: Detached::None,
                at: None,
                policy: None,
            },
            kyso_pki::time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("a report");
    (report, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn aia_urls_at_loopback_metadata_and_private_addresses_are_not_fetched() {
    let served = tempfile::tempdir().expect("temporary directory");
    let server = HttpServer::start(served.path());
    let own = format!("{}/ca.cer", server.url());
    let urls = vec![
        own.clone(),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://10.1.2.3/ca.cer".to_owned(),
        format!("http://localhost:{}/ca.cer", server.addr().port()),
        "http://192.168.1.1/fifth.cer".to_owned(),
    ];
    let sig = signature_naming(&urls, served.path());

    // The default allow-list (the hosts the configured CAs name) lists none of them.
    let (report, took) = verify(&verifier(None), &sig).await;
    let s = &report.signatures[0];
    assert_eq!(s.indication, Indication::Indeterminate, "{s:#?}");
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    let text = format!("{s:?}");
    for refused in [
        format!("host {} is not allowed", server.addr()),
        "host 169.254.169.254:80 is not allowed".to_owned(),
        "host 10.1.2.3:80 is not allowed".to_owned(),
        format!("host localhost:{} is not allowed", server.addr().port()),
        "names 5 caIssuers URLs; only the first 4 were tried".to_owned(),
    ] {
        assert!(
            text.contains(&refused),
            "the report does not say {refused:?}: {text}"
        );
    }
    assert!(
        !text.contains("192.168.1.1/fifth.cer: "),
        "the fifth URL was tried: {text}"
    );
    assert_eq!(server.total(), 0, "a refused URL reached the server");
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // Listed by name, but the name resolves to loopback: refused after resolution.
    let by_name = verifier(Some(vec!["localhost".into()]));
    let (report, _) = verify(&by_name, &sig).await;
    let text = format!("{:?}", report.signatures[0]);
    assert!(
        text.contains("is 127.0.0.1, a loopback address the fetch policy refuses")
            || text.contains("is ::1, a loopback address the fetch policy refuses"),
        "{text}"
    );
    assert_eq!(server.total(), 0, "a refused URL reached the server");

    // The operator lists the host exactly: fetched (the CA is still not trusted).
    let listed = verifier(Some(vec![server.addr().to_string()]));
    let (report, _) = verify(&listed, &sig).await;
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    assert_eq!(server.count("/ca.cer"), 1, "the listed host was not asked");
}

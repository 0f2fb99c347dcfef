//! Smoke tests of the end-to-end harness itself: the generated PKI, the OCSP responder behind
//! the counting proxy, the file server, and openssl cms as the reference peer.

use std::time::{Duration, Instant};

use kyso_tests::{
    CmsSign, CountingProxy, DownMode, HttpServer, LEAVES, OcspResponder, PERSONAL_CN,
    PERSONAL_TITLE, PkiServers, TestPki, exchange, openssl_cms_sign, openssl_cms_verify, rewrites,
};

fn subject(pki: &TestPki, leaf: &str) -> String {
    let cert = pki.leaf_cert(leaf);
    pki.openssl([
        "x509",
        "-noout",
        "-subject",
        "-nameopt",
        "utf8",
        "-in",
        cert.to_str().unwrap(),
    ])
    .expect_success()
    .stdout_str()
}

#[test]
fn pki_is_generated_with_vietnamese_subjects() {
    let pki = TestPki::get();
    for leaf in LEAVES {
        assert!(pki.leaf_cert(leaf).is_file(), "{leaf}.pem");
        assert!(pki.leaf_key(leaf).is_file(), "{leaf}.key");
        assert_eq!(pki.leaf_der(leaf)[0], 0x30, "{leaf}.cer is DER");
    }
    for f in [
        "root.cer",
        "issuing-ca.cer",
        "ocsp.pem",
        "crl/issuing-ca.crl",
        "crl/root.crl",
    ] {
        assert!(pki.path(f).is_file(), "{f}");
    }

    let personal = subject(pki, "personal-rsa");
    assert!(
        personal.contains(&format!("CN={PERSONAL_CN}")),
        "{personal}"
    );
    assert!(
        personal.contains(&format!("title={PERSONAL_TITLE}")),
        "{personal}"
    );
    assert!(
        personal.contains("O=Ủy ban nhân dân tỉnh Khánh Hòa"),
        "{personal}"
    );
    assert!(
        personal.contains("emailAddress=an.nv@khanhhoa.gov.vn"),
        "{personal}"
    );
    assert!(personal.contains("UID=CMND:0123456789"), "{personal}");
    let org = subject(pki, "org-rsa");
    assert!(org.contains("CN=Ủy ban nhân dân tỉnh Khánh Hòa"), "{org}");
    assert!(!org.contains("title="), "{org}");

    // Time-based variants, relative to now.
    let checkend = |leaf: &str, secs: &str| {
        let cert = pki.leaf_cert(leaf);
        pki.openssl([
            "x509",
            "-noout",
            "-checkend",
            secs,
            "-in",
            cert.to_str().unwrap(),
        ])
        .success()
    };
    assert!(checkend("personal-rsa", "86400"));
    assert!(!checkend("expired", "0"));
    let not_before = pki
        .openssl(["x509", "-noout", "-startdate", "-in", "leaves/notyet.pem"])
        .expect_success()
        .stdout_str();
    assert!(not_before.starts_with("notBefore="), "{not_before}");

    // The legacy CAs are signed with sha1WithRSAEncryption.
    let legacy = pki
        .openssl(["x509", "-noout", "-text", "-in", "legacy-sub.pem"])
        .expect_success();
    assert!(legacy.stdout_str().contains("sha1WithRSAEncryption"));

    // DER helpers agree with openssl.
    let der = pki.cert_der("root.pem");
    assert_eq!(der, std::fs::read(pki.root_cer()).unwrap());
    assert_eq!(pki.serial("personal-rsa"), "2001");
    assert_eq!(pki.serial("revoked"), "2008");
    assert!(pki.generated_at > pki.revoked_at);
}

fn ocsp_status(pki: &TestPki, leaf: &str, url: &str) -> String {
    ocsp_status_within(pki, leaf, url, 10)
}

/// `openssl ocsp` as the client; note that it retries a refused connection until `timeout`.
fn ocsp_status_within(pki: &TestPki, leaf: &str, url: &str, timeout: u32) -> String {
    let cert = pki.leaf_cert(leaf);
    let out = pki.openssl([
        "ocsp",
        "-issuer",
        "issuing-ca.pem",
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        url,
        "-CAfile",
        "root.pem",
        "-timeout",
        &timeout.to_string(),
    ]);
    format!("{}{}", out.stdout_str(), out.stderr_str())
}

#[test]
fn ocsp_responder_answers_through_the_proxy() {
    let pki = TestPki::get();
    let responder = OcspResponder::start(pki);
    let proxy = CountingProxy::in_front_of(&responder);
    let url = format!("{}/", proxy.url());

    let good = ocsp_status(pki, "personal-rsa", &url);
    assert!(good.contains("personal-rsa.pem: good"), "{good}");
    assert!(good.contains("Response verify OK"), "{good}");
    assert_eq!(proxy.requests(), 1);
    assert_eq!(proxy.posts(), 1);

    let revoked = ocsp_status(pki, "revoked", &url);
    assert!(revoked.contains("revoked.pem: revoked"), "{revoked}");
    assert!(revoked.contains("keyCompromise"), "{revoked}");
    let onhold = ocsp_status(pki, "onhold", &url);
    assert!(onhold.contains("onhold.pem: revoked"), "{onhold}");
    assert!(onhold.contains("certificateHold"), "{onhold}");
    let unknown = ocsp_status(pki, "unknown", &url);
    assert!(unknown.contains("unknown.pem: unknown"), "{unknown}");
    assert_eq!(proxy.requests(), 4);

    // Down: refused, nothing counted; back up: answers again.
    proxy.set_down(true);
    let down = ocsp_status_within(pki, "personal-rsa", &url, 1);
    assert!(!down.contains(": good"), "{down}");
    assert_eq!(proxy.requests(), 4);
    proxy.set_down(false);
    assert!(ocsp_status(pki, "personal-rsa", &url).contains(": good"));
    assert_eq!(proxy.requests(), 5);

    // Down as 503: counted, not answered.
    proxy.set_down_mode(DownMode::Status(503));
    proxy.set_down(true);
    assert!(!ocsp_status_within(pki, "personal-rsa", &url, 1).contains(": good"));
    assert_eq!(proxy.requests(), 6);
    proxy.set_down(false);
    assert!(
        responder
            .log()
            .contains("waiting for OCSP client connections")
    );
}

#[test]
fn ocsp_proxy_serialises_a_burst() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let request = {
        let tmp = tempfile::tempdir().unwrap();
        let req = tmp.path().join("req.der");
        pki.openssl([
            "ocsp",
            "-issuer",
            "issuing-ca.pem",
            "-cert",
            "leaves/personal-rsa.pem",
            "-reqout",
            req.to_str().unwrap(),
        ])
        .expect_success();
        std::fs::read(req).unwrap()
    };
    let addr = servers.ocsp_proxy.addr();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                exchange(
                    addr,
                    "POST",
                    "/",
                    Some("application/ocsp-request"),
                    &request,
                    Duration::from_secs(30),
                )
                .unwrap()
            })
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some("application/ocsp-response"));
    }
    assert_eq!(servers.ocsp_proxy.requests(), 16);
}

// A current-thread runtime blocked in synchronous calls: the servers run on the harness's
// own runtime, so they still answer.
#[tokio::test(flavor = "current_thread")]
async fn http_server_serves_crls_and_counts() {
    let pki = TestPki::get();
    let server = HttpServer::start(pki.path("crl"));
    let get =
        |path: &str, timeout: Duration| exchange(server.addr(), "GET", path, None, b"", timeout);

    let r = get("/issuing-ca.crl", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/pkix-crl"));
    assert_eq!(r.body, std::fs::read(pki.crl("issuing-ca")).unwrap());
    assert_eq!(server.count("/issuing-ca.crl"), 1);
    assert_eq!(
        get("/nothing.crl", Duration::from_secs(5)).unwrap().status,
        404
    );
    assert_eq!(
        get("/../root.key", Duration::from_secs(5)).unwrap().status,
        404
    );
    assert_eq!(server.total(), 3);

    // The default down mode refuses connections.
    server.set_down(true);
    let err = get("/issuing-ca.crl", Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    server.set_down(false);
    assert_eq!(
        get("/issuing-ca.crl", Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );

    server.set_down_mode(DownMode::Status(500));
    server.set_down(true);
    assert_eq!(
        get("/issuing-ca.crl", Duration::from_secs(5))
            .unwrap()
            .status,
        500
    );

    server.set_down_mode(DownMode::Reset);
    assert!(get("/issuing-ca.crl", Duration::from_secs(5)).is_err());

    server.set_down_mode(DownMode::Hang);
    let started = Instant::now();
    let err = get("/issuing-ca.crl", Duration::from_millis(300)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(250), "{err}");
    server.set_down(false);
    assert_eq!(
        get("/issuing-ca.crl", Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );

    server.put("/issuing-ca.crl", 200, b"not a CRL".to_vec());
    assert_eq!(
        get("/issuing-ca.crl", Duration::from_secs(5)).unwrap().body,
        b"not a CRL"
    );
    server.clear_puts();
    // Refused, reset and hung connections never carried a request the server read.
    assert_eq!(server.count("/issuing-ca.crl"), 5);
}

#[test]
fn rewrites_map_the_certificate_prefixes() {
    let r = rewrites(
        "http://127.0.0.1:1",
        "http://127.0.0.1:2/",
        "http://127.0.0.1:3",
    );
    assert_eq!(
        r,
        vec![
            (
                "http://ocsp.kyso.test/".to_owned(),
                "http://127.0.0.1:1/".to_owned()
            ),
            (
                "http://crl.kyso.test/".to_owned(),
                "http://127.0.0.1:2/".to_owned()
            ),
            (
                "http://aia.kyso.test/".to_owned(),
                "http://127.0.0.1:3/".to_owned()
            ),
        ]
    );
    let pki = TestPki::get();
    let text = pki
        .openssl([
            "x509",
            "-noout",
            "-ext",
            "authorityInfoAccess,crlDistributionPoints",
            "-in",
            "leaves/personal-rsa.pem",
        ])
        .expect_success()
        .stdout_str();
    for (from, _) in &r {
        assert!(text.contains(from.as_str()), "{from} in {text}");
    }
}

#[test]
fn openssl_cms_sign_and_verify_agree() {
    let content = "Quyết định số 123/QĐ-UBND".as_bytes().to_vec();

    let attached = openssl_cms_sign(&CmsSign::new("personal-rsa", content.clone()));
    assert!(openssl_cms_verify(&attached, None, true));

    let detached = openssl_cms_sign(&CmsSign::new("org-rsa", content.clone()).detached().cades());
    assert!(openssl_cms_verify(&detached, Some(&content), true));

    // Tampered content (detached) and a flipped byte inside the encapsulated content.
    let mut other = content.clone();
    other[0] ^= 1;
    assert!(!openssl_cms_verify(&detached, Some(&other), false));
    let pos = attached
        .windows(content.len())
        .position(|w| w == content.as_slice())
        .expect("attached signature encapsulates the content");
    let mut tampered = attached.clone();
    tampered[pos] ^= 1;
    assert!(!openssl_cms_verify(&tampered, None, false));

    // Variants the verifier must read: BER, PSS, ECDSA, sha1-signed CA path.
    let ber = openssl_cms_sign(&CmsSign::new("personal-rsa", content.clone()).stream());
    assert_eq!(&ber[..2], &[0x30, 0x80], "indefinite-length BER");
    assert!(openssl_cms_verify(&ber, None, true));
    let pss = openssl_cms_sign(
        &CmsSign::new("personal-pss", content.clone())
            .pss()
            .md("sha384"),
    );
    assert!(openssl_cms_verify(&pss, None, true));
    let ec = openssl_cms_sign(&CmsSign::new("personal-ec384", content.clone()).md("sha512"));
    assert!(openssl_cms_verify(&ec, None, true));
    let legacy = openssl_cms_sign(&CmsSign::new("legacy", content.clone()).with_ca());
    assert!(openssl_cms_verify(&legacy, None, true));

    // And openssl's verdicts on the bad certificates.
    let revoked = openssl_cms_sign(&CmsSign::new("revoked", content.clone()));
    assert!(openssl_cms_verify(&revoked, None, false));
    assert!(!openssl_cms_verify(&revoked, None, true));
    let onhold = openssl_cms_sign(&CmsSign::new("onhold", content.clone()));
    assert!(!openssl_cms_verify(&onhold, None, true));
    let expired = openssl_cms_sign(&CmsSign::new("expired", content.clone()));
    assert!(!openssl_cms_verify(&expired, None, false));
    let rogue = openssl_cms_sign(&CmsSign::new("rogue", content.clone()).with_ca());
    assert!(!openssl_cms_verify(&rogue, None, false));
}

#[test]
fn revocations_on_an_own_pki_reach_crl_and_ocsp() {
    let pki = TestPki::generate();
    let servers = PkiServers::start(&pki);
    let url = format!("{}/", servers.ocsp_proxy.url());
    assert!(ocsp_status(&pki, "org-rsa", &url).contains("org-rsa.pem: good"));

    pki.revoke("org-rsa", "superseded");
    servers.ocsp.refresh();
    let crl = exchange(
        servers.crl.addr(),
        "GET",
        "/issuing-ca.crl",
        None,
        b"",
        Duration::from_secs(5),
    )
    .unwrap();
    std::fs::write(pki.path("fetched.crl"), &crl.body).unwrap();
    let text = pki
        .openssl([
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            "fetched.crl",
        ])
        .expect_success()
        .stdout_str();
    assert!(
        text.contains(&format!("Serial Number: {}", pki.serial("org-rsa"))),
        "{text}"
    );

    // openssl ocsp re-reads the index when it changes (refresh() flushed the stale answer).
    let status = ocsp_status(&pki, "org-rsa", &url);
    assert!(status.contains("org-rsa.pem: revoked"), "{status}");
    assert!(status.contains("superseded"), "{status}");

    pki.release("onhold");
    servers.ocsp.refresh();
    assert!(ocsp_status(&pki, "onhold", &url).contains("onhold.pem: good"));
}

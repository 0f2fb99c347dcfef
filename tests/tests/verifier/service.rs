//! End-to-end tests of the verifier service: `kyso_verifier::serve` in-process on loopback
//! listeners (gRPC and metrics), the test PKI behind a real `openssl ocsp` (through the counting
//! proxy) and CRL/AIA file servers, and tonic clients as the peers.
//!
//! Every network wait is bounded so that a hang fails the test instead of wedging it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kyso_proto::verifier::v1 as pb;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use kyso_tests::mtls::Mtls;
use kyso_tests::{
    CmsSign, DownMode, ISSUING_CA_CN, ORG_NAME, PERSONAL_CN, PERSONAL_EMAIL, PERSONAL_TITLE,
    PERSONAL_UID, PkiServers, ROOT_CN, TestPki, openssl_cms_sign,
};
use kyso_validation::config::{RevocationSection, TrustConfig, UrlRewrite};
use kyso_verifier::config::TlsSection;
use kyso_verifier::{Config, Listeners, serve, system_clock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// Upper bound of any single RPC in these tests: a hang fails, it does not wedge.
pub(crate) const RPC_DEADLINE: Duration = Duration::from_secs(30);
/// The gRPC service name (health, reflection).
const SERVICE_NAME: &str = "kyso.verifier.v1.Verifier";

pub(crate) const CONTENT: &str =
    "Quyết định số 123/QĐ-UBND về việc ban hành quy chế sử dụng chữ ký số";

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

/// A verifier running in-process on the test's runtime, stopped by a oneshot.
pub(crate) struct Service {
    pub(crate) addr: SocketAddr,
    pub(crate) metrics_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<kyso_verifier::Result<()>>>,
}

impl Service {
    pub(crate) async fn start(config: Config) -> Service {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            Listeners {
                grpc,
                metrics: Some(metrics),
            },
            system_clock(),
            async move {
                let _ = rx.await;
            },
        ));
        Service {
            addr,
            metrics_addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn endpoint(&self, scheme: &str) -> Endpoint {
        Endpoint::from_shared(format!("{scheme}://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(RPC_DEADLINE)
    }

    pub(crate) async fn channel(&self) -> Channel {
        self.assert_running();
        self.endpoint("http").connect().await.unwrap()
    }

    pub(crate) async fn client(&self) -> VerifierClient<Channel> {
        VerifierClient::new(self.channel().await)
    }

    #[track_caller]
    fn assert_running(&self) {
        let task = self.task.as_ref().expect("service task");
        assert!(
            !task.is_finished(),
            "the verifier stopped on its own (bad configuration?)"
        );
    }

    /// Resolves the shutdown future and waits (bounded) for `serve` to return.
    async fn shutdown(mut self) -> kyso_verifier::Result<()> {
        let _ = self.stop.take().expect("not stopped yet").send(());
        let task = self.task.take().expect("service task");
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("serve returns within 15 s of the shutdown signal")
            .expect("the serve task did not panic")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The test PKI's trust material, with the certificates' URLs rewritten onto `servers`.
pub(crate) fn config(pki: &TestPki, servers: &PkiServers) -> Config {
    Config {
        metrics_listen: None,
        trust: TrustConfig {
            trust_anchors: vec![pki.root_pem(), pki.legacy_root_pem()],
            intermediates: vec![pki.intermediates_pem()],
            revocation: RevocationSection {
                url_rewrites: servers
                    .rewrites()
                    .into_iter()
                    .map(|(from, to)| UrlRewrite { from, to })
                    .collect(),
                timeout_ms: 5_000,
                ..RevocationSection::default()
            },
            ..TrustConfig::default()
        },
        ..Config::default()
    }
}

async fn start_default() -> (&'static TestPki, PkiServers, Service) {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Service::start(config(pki, &servers)).await;
    (pki, servers, service)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

pub(crate) fn sign(opts: &CmsSign) -> Vec<u8> {
    openssl_cms_sign(opts)
}

pub(crate) fn request(signature: Vec<u8>) -> pb::VerifyCmsRequest {
    pb::VerifyCmsRequest {
        signature,
        ..Default::default()
    }
}

pub(crate) fn with_content(signature: Vec<u8>, content: &[u8]) -> pb::VerifyCmsRequest {
    pb::VerifyCmsRequest {
        signature,
        detached: Some(pb::verify_cms_request::Detached::Content(content.to_vec())),
        ..Default::default()
    }
}

fn with_digest(
    signature: Vec<u8>,
    algorithm: pb::DigestAlgorithm,
    value: Vec<u8>,
) -> pb::VerifyCmsRequest {
    pb::VerifyCmsRequest {
        signature,
        detached: Some(pb::verify_cms_request::Detached::ContentDigest(
            pb::ContentDigest {
                algorithm: algorithm as i32,
                value,
            },
        )),
        ..Default::default()
    }
}

/// An attached signature with one byte of its encapsulated content flipped.
pub(crate) fn tamper(signature: &[u8], content: &[u8]) -> Vec<u8> {
    let pos = signature
        .windows(content.len())
        .position(|w| w == content)
        .expect("the attached signature encapsulates the content");
    let mut out = signature.to_vec();
    out[pos] ^= 0x01;
    out
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn epoch_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn ts(secs: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

/// Serials compare as openssl prints them, without leading zeros.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches('0').to_ascii_uppercase();
    norm(a) == norm(b)
}

fn assert_personal(signer: &pb::SignerIdentity) {
    assert_eq!(signer.kind(), pb::CertificateKind::Personal, "{signer:#?}");
    assert_eq!(
        signer.title, PERSONAL_TITLE,
        "title is 2.5.4.12: {signer:#?}"
    );
    assert_eq!(signer.common_name, PERSONAL_CN, "{signer:#?}");
    assert_eq!(signer.organisation, ORG_NAME, "{signer:#?}");
    assert_eq!(signer.email, PERSONAL_EMAIL, "{signer:#?}");
    assert_eq!(signer.uid, PERSONAL_UID, "{signer:#?}");
    assert_eq!(signer.country, "VN", "{signer:#?}");
    assert!(signer.issuer.contains(ISSUING_CA_CN), "{signer:#?}");
    assert_eq!(signer.fingerprint_sha256.len(), 64, "{signer:#?}");
}

fn assert_organisation(signer: &pb::SignerIdentity) {
    assert_eq!(
        signer.kind(),
        pb::CertificateKind::Organisation,
        "{signer:#?}"
    );
    assert_eq!(signer.common_name, ORG_NAME, "{signer:#?}");
    assert_eq!(signer.organisation, ORG_NAME, "{signer:#?}");
    assert!(signer.title.is_empty(), "{signer:#?}");
}

/// leaf → issuing CA (configured intermediate) → root (anchor).
fn assert_path(path: &[pb::CertificateInfo], leaf_cn: &str) {
    assert_eq!(path.len(), 3, "leaf, issuing CA, root: {path:#?}");
    assert!(path[0].subject.contains(leaf_cn), "{path:#?}");
    assert_eq!(path[0].source, "signature", "{path:#?}");
    assert!(!path[0].trust_anchor, "{path:#?}");
    assert!(path[1].subject.contains(ISSUING_CA_CN), "{path:#?}");
    assert_eq!(path[1].source, "configured", "{path:#?}");
    assert!(!path[1].trust_anchor, "{path:#?}");
    assert!(path[2].subject.contains(ROOT_CN), "{path:#?}");
    assert!(path[2].trust_anchor, "{path:#?}");
    assert_eq!(path[2].source, "anchor", "{path:#?}");
    for p in path {
        let (nb, na) = (p.not_before.unwrap(), p.not_after.unwrap());
        assert!(nb.seconds < now_secs() && now_secs() < na.seconds, "{p:#?}");
        assert!(!p.signature_algorithm.is_empty(), "{p:#?}");
    }
}

/// The leaf's status came from the OCSP responder (through the proxy), with its times; the
/// issuing CA's from the root's CRL (N2 art. 32: every certificate of the path).
fn assert_good_evidence(
    evidence: &[pb::RevocationEvidence],
    leaf_serial: &str,
    pki: &TestPki,
    servers: &PkiServers,
) {
    let leaf = evidence
        .iter()
        .find(|e| {
            same_serial(&e.certificate_serial, leaf_serial)
                && e.source() == pb::RevocationSource::Ocsp
        })
        .unwrap_or_else(|| panic!("OCSP evidence for the leaf {leaf_serial}: {evidence:#?}"));
    assert_eq!(leaf.status(), pb::CertStatus::Good, "{leaf:#?}");
    assert!(
        leaf.url.starts_with(&servers.ocsp_proxy.url()),
        "the rewritten OCSP URL: {leaf:#?}"
    );
    let this = leaf.this_update.expect("this_update").seconds;
    let next = leaf.next_update.expect("next_update").seconds;
    assert!(this <= now_secs() + 5, "{leaf:#?}");
    // openssl ocsp -nmin 60.
    assert!(
        (3_590..=3_610).contains(&(next - this)),
        "nextUpdate = thisUpdate + 60 min: {leaf:#?}"
    );
    assert!(!leaf.stale, "{leaf:#?}");

    let ca_serial = pki.serial("issuing-ca");
    let ca = evidence
        .iter()
        .find(|e| same_serial(&e.certificate_serial, ca_serial))
        .unwrap_or_else(|| panic!("evidence for the issuing CA {ca_serial}: {evidence:#?}"));
    assert_eq!(ca.source(), pb::RevocationSource::Crl, "{ca:#?}");
    assert_eq!(ca.status(), pb::CertStatus::Good, "{ca:#?}");
    assert!(ca.url.ends_with("/root.crl"), "{ca:#?}");
    assert!(
        ca.this_update.is_some() && ca.next_update.is_some(),
        "{ca:#?}"
    );
}

async fn verify(
    client: &mut VerifierClient<Channel>,
    req: pb::VerifyCmsRequest,
) -> pb::VerifyCmsResponse {
    tokio::time::timeout(RPC_DEADLINE, client.verify_cms(req))
        .await
        .expect("VerifyCms answers in time")
        .unwrap_or_else(|s| panic!("VerifyCms failed: {s:?}"))
        .into_inner()
}

#[track_caller]
fn assert_single_passed(resp: &pb::VerifyCmsResponse) -> &pb::SignatureReport {
    assert_eq!(resp.indication(), pb::Indication::TotalPassed, "{resp:#?}");
    assert_eq!(resp.signatures.len(), 1, "{resp:#?}");
    let s = &resp.signatures[0];
    assert_eq!(s.indication(), pb::Indication::TotalPassed, "{s:#?}");
    assert_eq!(s.sub_indication(), pb::SubIndication::Unspecified, "{s:#?}");
    s
}

// ---------------------------------------------------------------------------------------------
// VerifyCms
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn verify_cms_attached_passes_with_identity_path_and_ocsp_evidence_V5_N2() {
    let (pki, servers, service) = start_default().await;
    let mut client = service.client().await;

    let sig = sign(&CmsSign::new("personal-rsa", CONTENT).cades());
    let resp = verify(&mut client, request(sig.clone())).await;
    let s = assert_single_passed(&resp);
    assert_personal(s.signer.as_ref().expect("signer identity"));
    assert!(same_serial(
        &s.signer.as_ref().unwrap().serial_number,
        pki.serial("personal-rsa")
    ));
    assert_path(&s.path, PERSONAL_CN);
    assert_good_evidence(&s.revocation, pki.serial("personal-rsa"), pki, &servers);
    assert!(
        s.signed_attributes && s.ess_signing_certificate_v2 && !s.detached,
        "{s:#?}"
    );
    assert_eq!(
        s.digest_algorithm.to_ascii_lowercase().replace('-', ""),
        "sha256",
        "{s:#?}"
    );
    let rt = s.reference_time.as_ref().expect("reference time");
    // The claimed time is reported, never proof: judged at the validation time (N3).
    assert_eq!(rt.source(), pb::TimeSource::ValidationTime, "{s:#?}");
    assert!(s.claimed_signing_time.is_some(), "{s:#?}");
    assert_eq!(
        s.revocation_policy(),
        pb::RevocationPolicy::Require,
        "{s:#?}"
    );

    // The organisation's certificate: the seal (D1).
    let sig = sign(&CmsSign::new("org-rsa", CONTENT));
    let resp = verify(&mut client, request(sig)).await;
    let s = assert_single_passed(&resp);
    assert_organisation(s.signer.as_ref().expect("signer identity"));
    assert_path(&s.path, ORG_NAME);
    assert_good_evidence(&s.revocation, pki.serial("org-rsa"), pki, &servers);

    // V5: an altered document is refused, with the reason.
    let bad = tamper(
        &sign(&CmsSign::new("personal-rsa", CONTENT)),
        CONTENT.as_bytes(),
    );
    let resp = verify(&mut client, request(bad)).await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::HashFailure,
        "{resp:#?}"
    );
    assert!(!resp.signatures[0].message.is_empty());

    // A signature made now by a revoked certificate (revoked an hour ago): N2 c.
    let revoked = sign(&CmsSign::new("revoked", CONTENT));
    let resp = verify(&mut client, request(revoked)).await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::Revoked,
        "{resp:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_cms_detached_with_content_and_with_content_digest_V5() {
    let (pki, servers, service) = start_default().await;
    let mut client = service.client().await;
    let content = CONTENT.as_bytes();

    let sig = sign(&CmsSign::new("personal-rsa", content).detached());
    let resp = verify(&mut client, with_content(sig.clone(), content)).await;
    let s = assert_single_passed(&resp);
    assert!(s.detached, "{s:#?}");
    assert_personal(s.signer.as_ref().unwrap());
    assert_path(&s.path, PERSONAL_CN);
    assert_good_evidence(&s.revocation, pki.serial("personal-rsa"), pki, &servers);

    // Only the digest (a large document hashed by the caller).
    let digest = kyso_pki::crypto::sha256(content).to_vec();
    let resp = verify(
        &mut client,
        with_digest(sig.clone(), pb::DigestAlgorithm::Sha256, digest.clone()),
    )
    .await;
    let s = assert_single_passed(&resp);
    assert!(s.detached, "{s:#?}");
    assert_personal(s.signer.as_ref().unwrap());
    assert_good_evidence(&s.revocation, pki.serial("personal-rsa"), pki, &servers);

    // SHA-384 signer, SHA-384 digest.
    let sig384 = sign(&CmsSign::new("org-rsa", content).detached().md("sha384"));
    let d384 = kyso_pki::crypto::DigestAlgorithm::Sha384.digest(content);
    let resp = verify(
        &mut client,
        with_digest(sig384, pb::DigestAlgorithm::Sha384, d384),
    )
    .await;
    assert_organisation(assert_single_passed(&resp).signer.as_ref().unwrap());

    // Other content, other digest: HASH_FAILURE.
    let mut other = content.to_vec();
    other[0] ^= 1;
    let resp = verify(&mut client, with_content(sig.clone(), &other)).await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::HashFailure
    );
    let mut wrong = digest.clone();
    wrong[31] ^= 1;
    let resp = verify(
        &mut client,
        with_digest(sig.clone(), pb::DigestAlgorithm::Sha256, wrong),
    )
    .await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::HashFailure
    );

    // Detached signature without content: the signed data is not found.
    let resp = verify(&mut client, request(sig)).await;
    assert_ne!(resp.indication(), pb::Indication::TotalPassed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::SignedDataNotFound,
        "{resp:#?}"
    );
}

/// D2: the competent person signs, then the organisation, on the same document.
#[tokio::test(flavor = "multi_thread")]
async fn verify_cms_two_signers_person_then_organisation_D2() {
    let (pki, servers, service) = start_default().await;
    let mut client = service.client().await;

    let org_cert = pki.leaf_cert("org-rsa");
    let org_key = pki.leaf_key("org-rsa");
    let sig = sign(
        &CmsSign::new("personal-rsa", CONTENT)
            .cades()
            .arg("-signer")
            .arg(org_cert.to_str().unwrap())
            .arg("-inkey")
            .arg(org_key.to_str().unwrap()),
    );
    let resp = verify(&mut client, request(sig.clone())).await;
    assert_eq!(resp.indication(), pb::Indication::TotalPassed, "{resp:#?}");
    assert_eq!(resp.signatures.len(), 2, "two SignerInfos: {resp:#?}");
    let (first, second) = (&resp.signatures[0], &resp.signatures[1]);
    assert_eq!((first.index, second.index), (0, 1), "{resp:#?}");
    for s in [first, second] {
        assert_eq!(s.indication(), pb::Indication::TotalPassed, "{s:#?}");
        assert_eq!(s.path.len(), 3, "{s:#?}");
    }
    assert_personal(first.signer.as_ref().unwrap());
    assert_organisation(second.signer.as_ref().unwrap());
    assert_good_evidence(&first.revocation, pki.serial("personal-rsa"), pki, &servers);
    assert_good_evidence(&second.revocation, pki.serial("org-rsa"), pki, &servers);

    // One bad signer spoils the document: replace the organisation by the revoked leaf.
    let rev_cert = pki.leaf_cert("revoked");
    let rev_key = pki.leaf_key("revoked");
    let sig = sign(
        &CmsSign::new("personal-rsa", CONTENT)
            .arg("-signer")
            .arg(rev_cert.to_str().unwrap())
            .arg("-inkey")
            .arg(rev_key.to_str().unwrap()),
    );
    let resp = verify(&mut client, request(sig)).await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(resp.signatures[0].indication(), pb::Indication::TotalPassed);
    assert_eq!(
        resp.signatures[1].sub_indication(),
        pb::SubIndication::Revoked
    );
}

/// The policy named in the request is the one applied (N2: fail closed unless told otherwise).
#[tokio::test(flavor = "multi_thread")]
async fn revocation_policy_of_the_request_is_applied_N2() {
    let (_pki, servers, service) = start_default().await;
    let mut client = service.client().await;
    let sig = sign(&CmsSign::new("personal-rsa", CONTENT));
    // Down, answering 503: every attempt is counted.
    servers.ocsp_proxy.set_down_mode(DownMode::Status(503));
    servers.ocsp_proxy.set_down(true);
    servers.crl.set_down_mode(DownMode::Status(503));
    servers.crl.set_down(true);
    let with_policy = |p: pb::RevocationPolicy| pb::VerifyCmsRequest {
        signature: sig.clone(),
        revocation_policy: p as i32,
        ..Default::default()
    };

    // Unspecified: the configured default (require).
    for p in [
        pb::RevocationPolicy::Unspecified,
        pb::RevocationPolicy::Require,
    ] {
        let r = verify(&mut client, with_policy(p)).await;
        assert_eq!(
            r.indication(),
            pb::Indication::Indeterminate,
            "{p:?}: {r:#?}"
        );
        let s = &r.signatures[0];
        assert_eq!(
            s.sub_indication(),
            pb::SubIndication::TryLater,
            "{p:?}: {s:#?}"
        );
        assert_eq!(s.revocation_policy(), pb::RevocationPolicy::Require);
    }

    let r = verify(&mut client, with_policy(pb::RevocationPolicy::SoftFail)).await;
    let s = assert_single_passed(&r);
    assert_eq!(s.revocation_policy(), pb::RevocationPolicy::SoftFail);
    assert!(
        !s.warnings.is_empty(),
        "soft-fail says what was not checked: {s:#?}"
    );

    let before = servers.ocsp_proxy.requests() + servers.crl.total();
    let r = verify(&mut client, with_policy(pb::RevocationPolicy::Off)).await;
    let s = assert_single_passed(&r);
    assert_eq!(s.revocation_policy(), pb::RevocationPolicy::Off);
    assert!(
        !s.warnings.is_empty(),
        "the report says revocation was not checked: {s:#?}"
    );
    assert!(
        s.revocation
            .iter()
            .all(|e| e.status() == pb::CertStatus::NotChecked),
        "{s:#?}"
    );
    assert_eq!(
        servers.ocsp_proxy.requests() + servers.crl.total(),
        before,
        "policy off touches no revocation source"
    );
}

// ---------------------------------------------------------------------------------------------
// VerifyStream
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Passed,
    HashFailure,
    InvalidArgument,
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_stream_answers_in_order_and_survives_garbage_V5() {
    let (_pki, _servers, service) = start_default().await;
    let mut client = service.client().await;

    let content = CONTENT.as_bytes();
    let good = sign(&CmsSign::new("personal-rsa", content));
    let good_org = sign(&CmsSign::new("org-rsa", content).detached());
    let tampered = tamper(&good, content);
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50 {
        let id = format!("req-{i:02}");
        let (mut req, exp) = match i % 6 {
            0 | 3 => (request(good.clone()), Expect::Passed),
            1 => (with_content(good_org.clone(), content), Expect::Passed),
            2 => (request(tampered.clone()), Expect::HashFailure),
            4 => (
                request(format!("garbage #{i}, not a CMS").into_bytes()),
                Expect::InvalidArgument,
            ),
            _ => (request(Vec::new()), Expect::InvalidArgument),
        };
        req.request_id = id.clone();
        requests.push(req);
        expected.push((id, exp));
    }

    let started = Instant::now();
    let mut stream = tokio::time::timeout(
        RPC_DEADLINE,
        client.verify_stream(tokio_stream::iter(requests)),
    )
    .await
    .expect("VerifyStream opens in time")
    .expect("VerifyStream is accepted")
    .into_inner();
    let mut answers = Vec::new();
    loop {
        let next = tokio::time::timeout(RPC_DEADLINE, stream.message())
            .await
            .expect("the stream answers in time")
            .unwrap_or_else(|s| panic!("the stream failed after {} answers: {s:?}", answers.len()));
        match next {
            Some(a) => answers.push(a),
            None => break,
        }
    }
    eprintln!("50 documents over one stream in {:?}", started.elapsed());
    assert_eq!(answers.len(), 50, "one answer per request");
    for ((id, exp), answer) in expected.iter().zip(&answers) {
        assert_eq!(&answer.request_id, id, "answers come in request order");
        match (exp, answer.result.as_ref()) {
            (Expect::Passed, Some(pb::verify_stream_response::Result::Report(r))) => {
                assert_eq!(r.indication(), pb::Indication::TotalPassed, "{id}: {r:#?}");
            }
            (Expect::HashFailure, Some(pb::verify_stream_response::Result::Report(r))) => {
                assert_eq!(r.indication(), pb::Indication::TotalFailed, "{id}: {r:#?}");
                assert_eq!(
                    r.signatures[0].sub_indication(),
                    pb::SubIndication::HashFailure
                );
            }
            (Expect::InvalidArgument, Some(pb::verify_stream_response::Result::Error(e))) => {
                assert_eq!(e.code, Code::InvalidArgument as i32, "{id}: {e:?}");
                assert_eq!(e.code, 3);
                assert!(!e.message.is_empty(), "{id}: {e:?}");
            }
            (exp, got) => panic!("{id}: expected {exp:?}, got {got:#?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CheckCertificate
// ---------------------------------------------------------------------------------------------

async fn check(
    client: &mut VerifierClient<Channel>,
    pki: &TestPki,
    leaf: &str,
    at: Option<i64>,
) -> pb::CheckCertificateResponse {
    let req = pb::CheckCertificateRequest {
        chain: vec![pki.leaf_der(leaf)],
        at: at.map(ts),
        revocation_policy: 0,
    };
    tokio::time::timeout(RPC_DEADLINE, client.check_certificate(req))
        .await
        .expect("CheckCertificate answers in time")
        .unwrap_or_else(|s| panic!("CheckCertificate {leaf} failed: {s:?}"))
        .into_inner()
}

fn leaf_evidence<'a>(
    r: &'a pb::CheckCertificateResponse,
    pki: &TestPki,
    leaf: &str,
) -> &'a pb::RevocationEvidence {
    r.revocation
        .iter()
        .find(|e| {
            same_serial(&e.certificate_serial, pki.serial(leaf))
                && e.status() != pb::CertStatus::Unknown
        })
        .unwrap_or_else(|| panic!("evidence for {leaf}: {r:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn check_certificate_good_revoked_expired_N2() {
    let (pki, servers, service) = start_default().await;
    let mut client = service.client().await;

    let good = check(&mut client, pki, "personal-rsa", None).await;
    assert_eq!(good.indication(), pb::Indication::TotalPassed, "{good:#?}");
    assert_personal(good.subject.as_ref().unwrap());
    assert_path(&good.path, PERSONAL_CN);
    assert_good_evidence(&good.revocation, pki.serial("personal-rsa"), pki, &servers);
    assert_eq!(
        good.reference_time.as_ref().unwrap().source(),
        pb::TimeSource::ValidationTime
    );

    // Revoked (keyCompromise) one hour before the PKI was made.
    let revoked = check(&mut client, pki, "revoked", None).await;
    assert_eq!(
        revoked.indication(),
        pb::Indication::TotalFailed,
        "{revoked:#?}"
    );
    assert_eq!(
        revoked.sub_indication(),
        pb::SubIndication::Revoked,
        "{revoked:#?}"
    );
    let e = leaf_evidence(&revoked, pki, "revoked");
    assert_eq!(e.status(), pb::CertStatus::Revoked, "{e:#?}");
    assert_eq!(e.revocation_reason, "keyCompromise", "{e:#?}");
    let rt = e.revocation_time.expect("revocation time").seconds;
    assert!((rt - epoch_secs(pki.revoked_at)).abs() <= 2, "{e:#?}");

    // A trusted (caller-given) time before the revocation: active then, passes with a warning.
    let before = epoch_secs(pki.revoked_at) - 600;
    let earlier = check(&mut client, pki, "revoked", Some(before)).await;
    assert_eq!(
        earlier.indication(),
        pb::Indication::TotalPassed,
        "{earlier:#?}"
    );
    assert!(
        !earlier.warnings.is_empty(),
        "a warning about the later revocation: {earlier:#?}"
    );
    assert_eq!(
        earlier.reference_time.as_ref().unwrap().source(),
        pb::TimeSource::Caller
    );

    // Expired 30 days ago: judged at a given time (now), it is EXPIRED.
    let expired = check(&mut client, pki, "expired", Some(now_secs())).await;
    assert_eq!(
        expired.indication(),
        pb::Indication::TotalFailed,
        "{expired:#?}"
    );
    assert_eq!(
        expired.sub_indication(),
        pb::SubIndication::Expired,
        "{expired:#?}"
    );
    // Without a time the validation time is used: never a pass.
    let expired_now = check(&mut client, pki, "expired", None).await;
    eprintln!(
        "expired leaf at the validation time: {:?}/{:?}",
        expired_now.indication(),
        expired_now.sub_indication()
    );
    assert_ne!(
        expired_now.indication(),
        pb::Indication::TotalPassed,
        "{expired_now:#?}"
    );
    assert!(
        matches!(
            expired_now.sub_indication(),
            pb::SubIndication::Expired | pb::SubIndication::OutOfBoundsNoPoe
        ),
        "{expired_now:#?}"
    );

    // And inside its validity (a given time 100 days ago) the expired leaf was fine.
    let in_validity = check(&mut client, pki, "expired", Some(now_secs() - 100 * 86_400)).await;
    assert_eq!(
        in_validity.indication(),
        pb::Indication::TotalPassed,
        "{in_validity:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_certificate_on_hold_is_not_active_N7() {
    let (pki, _servers, service) = start_default().await;
    let mut client = service.client().await;

    let onhold = check(&mut client, pki, "onhold", None).await;
    assert_eq!(
        onhold.indication(),
        pb::Indication::TotalFailed,
        "{onhold:#?}"
    );
    assert_eq!(
        onhold.sub_indication(),
        pb::SubIndication::Revoked,
        "{onhold:#?}"
    );
    assert!(onhold.message.contains("certificateHold"), "{onhold:#?}");
    let e = leaf_evidence(&onhold, pki, "onhold");
    assert_eq!(e.status(), pb::CertStatus::Revoked, "{e:#?}");
    assert_eq!(e.revocation_reason, "certificateHold", "{e:#?}");

    // A signature by the suspended certificate, made now: refused (N7, V5).
    let sig = sign(&CmsSign::new("onhold", CONTENT));
    let resp = verify(&mut client, request(sig)).await;
    assert_eq!(resp.indication(), pb::Indication::TotalFailed, "{resp:#?}");
    assert_eq!(
        resp.signatures[0].sub_indication(),
        pb::SubIndication::Revoked
    );
}

// ---------------------------------------------------------------------------------------------
// Request errors
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_violation(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("a BadRequest detail: {status:?}"));
    assert!(
        bad.field_violations
            .iter()
            .any(|v| v.field == field && !v.description.is_empty()),
        "a violation of {field:?}: {bad:?}"
    );
}

async fn verify_err(
    client: &mut VerifierClient<Channel>,
    req: pb::VerifyCmsRequest,
) -> tonic::Status {
    match tokio::time::timeout(RPC_DEADLINE, client.verify_cms(req))
        .await
        .expect("VerifyCms answers in time")
    {
        Ok(r) => panic!("expected an error, got {:#?}", r.into_inner()),
        Err(s) => s,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_are_invalid_argument_with_field_violations() {
    let (_pki, _servers, service) = start_default().await;
    let mut client = service.client().await;
    let sig = sign(&CmsSign::new("personal-rsa", CONTENT).detached());

    let s = verify_err(&mut client, request(Vec::new())).await;
    assert_violation(&s, "signature");

    let s = verify_err(
        &mut client,
        with_digest(sig.clone(), pb::DigestAlgorithm::Sha256, vec![0u8; 20]),
    )
    .await;
    assert_violation(&s, "content_digest.value");

    let s = verify_err(
        &mut client,
        with_digest(sig.clone(), pb::DigestAlgorithm::Unspecified, vec![0u8; 32]),
    )
    .await;
    assert_violation(&s, "content_digest.algorithm");

    let s = verify_err(
        &mut client,
        request(b"\x30\x03\x02\x01\x01 not a CMS".to_vec()),
    )
    .await;
    assert_violation(&s, "signature");

    // CheckCertificate: no chain, and a chain that is not a certificate.
    let s = client
        .check_certificate(pb::CheckCertificateRequest::default())
        .await
        .unwrap_err();
    assert_violation(&s, "chain");
    let s = client
        .check_certificate(pb::CheckCertificateRequest {
            chain: vec![b"not a certificate".to_vec()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&s, "chain");

    // The service is unharmed.
    let ok = verify(&mut client, with_content(sig, CONTENT.as_bytes())).await;
    assert_single_passed(&ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn message_over_the_size_limit_is_refused_not_a_crash() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_message_bytes = 64 * 1024;
    let service = Service::start(cfg).await;
    let mut client = service.client().await;

    let huge = request(vec![0x30; 200 * 1024]);
    let s = verify_err(&mut client, huge).await;
    assert!(
        matches!(s.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{s:?}"
    );

    // Same connection, then a new one: still serving.
    let ok = verify(
        &mut client,
        request(sign(&CmsSign::new("personal-rsa", CONTENT))),
    )
    .await;
    assert_single_passed(&ok);
    let mut fresh = service.client().await;
    let ok = verify(&mut fresh, request(sign(&CmsSign::new("org-rsa", CONTENT)))).await;
    assert_single_passed(&ok);
    service.assert_running();
}

// ---------------------------------------------------------------------------------------------
// Health, reflection
// ---------------------------------------------------------------------------------------------

async fn health(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut h = HealthClient::new(channel);
    let r = tokio::time::timeout(
        RPC_DEADLINE,
        h.check(HealthCheckRequest {
            service: service.to_owned(),
        }),
    )
    .await
    .expect("health answers in time")?;
    Ok(r.into_inner().status())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_serving_and_reflection_lists_the_verifier() {
    let (_pki, _servers, service) = start_default().await;
    let channel = service.channel().await;
    assert_eq!(
        health(channel.clone(), SERVICE_NAME).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    let unknown = health(channel.clone(), "kyso.nothing.v1.Nothing")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // The metrics port answers its own liveness path (it is not the gRPC port).
    let maddr = service.metrics_addr;
    let r = tokio::task::spawn_blocking(move || {
        kyso_tests::exchange(maddr, "GET", "/healthz", None, b"", Duration::from_secs(5))
    })
    .await
    .unwrap()
    .expect("GET /healthz on the metrics port");
    assert_eq!(r.status, 200);

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = tokio::time::timeout(
        RPC_DEADLINE,
        refl.server_reflection_info(tokio_stream::iter(vec![req])),
    )
    .await
    .expect("reflection answers in time")
    .expect("reflection is served")
    .into_inner();
    let answer = tokio::time::timeout(RPC_DEADLINE, stream.message())
        .await
        .expect("reflection answers in time")
        .expect("reflection answer")
        .expect("one answer");
    let names: Vec<String> = match answer.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("a service list, got {other:?}"),
    };
    assert!(names.iter().any(|n| n == SERVICE_NAME), "{names:?}");
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Overload and shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn load_shedding_answers_resource_exhausted_and_never_hangs() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_concurrent_requests = 1;
    let service = Service::start(cfg).await;
    let client = service.client().await;
    // A slow OCSP responder keeps the one slot busy.
    servers.ocsp_proxy.set_delay(Duration::from_millis(1_500));

    let sig = sign(&CmsSign::new("personal-rsa", CONTENT));
    let started = Instant::now();
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let mut client = client.clone();
            let req = request(sig.clone());
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(20), client.verify_cms(req)).await
            })
        })
        .collect();
    let (mut ok, mut shed, mut other) = (0, 0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Err(_) => panic!("a request hung for 20 s under load"),
            Ok(Ok(r)) => {
                assert_eq!(r.into_inner().indication(), pb::Indication::TotalPassed);
                ok += 1;
            }
            Ok(Err(s)) if s.code() == Code::ResourceExhausted => shed += 1,
            Ok(Err(s)) => other.push(s),
        }
    }
    eprintln!(
        "24 concurrent requests, limit 1: {ok} served, {shed} shed, in {:?}",
        started.elapsed()
    );
    assert!(other.is_empty(), "only served or shed: {other:?}");
    assert!(ok >= 1, "at least one served");
    assert!(shed >= 1, "some shed with RESOURCE_EXHAUSTED");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Once the burst is over the slot is free again.
    servers.ocsp_proxy.set_delay(Duration::ZERO);
    let mut c = client.clone();
    let r = verify(&mut c, request(sig)).await;
    assert_single_passed(&r);
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_in_flight_requests_and_returns() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Service::start(config(pki, &servers)).await;
    let mut client = service.client().await;
    // An idle connection must not hold the shutdown up.
    let idle = service.channel().await;
    assert_eq!(
        health(idle.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );

    servers.ocsp_proxy.set_delay(Duration::from_millis(1_500));
    let sig = sign(&CmsSign::new("personal-rsa", CONTENT));
    let in_flight = tokio::spawn(async move {
        tokio::time::timeout(RPC_DEADLINE, client.verify_cms(request(sig))).await
    });
    // Let the request reach the (slow) OCSP responder.
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers.ocsp_proxy.requests() == 0 {
        assert!(Instant::now() < deadline, "the request never reached OCSP");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = service.addr;
    let started = Instant::now();
    service.shutdown().await.expect("serve returns Ok");
    eprintln!("shutdown took {:?}", started.elapsed());

    let r = in_flight
        .await
        .unwrap()
        .expect("the in-flight request finished in time")
        .expect("the in-flight request was served, not cut");
    assert_eq!(r.into_inner().indication(), pb::Indication::TotalPassed);
    // Nothing listens any more.
    let refused =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect returns");
    assert!(refused.is_err(), "the gRPC port is closed after shutdown");
    drop(idle);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn config_with_several_problems_lists_them_all_at_once() {
    let missing = PathBuf::from("/nonexistent/kyso/anchors.pem");
    let cfg = Config {
        trust: TrustConfig {
            trust_anchors: vec![missing.clone()],
            anchor_fingerprints: vec!["zz:not:a:fingerprint".into()],
            revocation: RevocationSection {
                url_rewrites: vec![UrlRewrite {
                    from: "ocsp.kyso.test/".into(),
                    to: "http://127.0.0.1:1/".into(),
                }],
                ..RevocationSection::default()
            },
            ..TrustConfig::default()
        },
        ..Config::default()
    };
    let problems = match cfg.load() {
        Err(kyso_verifier::Error::Config(p)) => p,
        Err(e) => panic!("expected Error::Config, got {e:?}"),
        Ok(_) => panic!("a broken configuration was accepted"),
    };
    eprintln!("{problems:#?}");
    let has = |needles: &[&str]| {
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n)))
    };
    assert!(
        has(&["trust_anchors", "/nonexistent/kyso/anchors.pem"]),
        "{problems:#?}"
    );
    assert!(
        has(&["anchor_fingerprints", "zz:not:a:fingerprint"]),
        "{problems:#?}"
    );
    assert!(
        has(&["url_rewrites[0].from", "ocsp.kyso.test/"]),
        "{problems:#?}"
    );
    assert!(problems.len() >= 3, "{problems:#?}");
    // The message shows every problem.
    let text = kyso_verifier::Error::Config(problems.clone()).to_string();
    for p in &problems {
        assert!(text.contains(p.as_str()), "{text}");
    }

    // serve() refuses it before serving anything.
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        serve(
            cfg,
            Listeners {
                grpc,
                metrics: None,
            },
            system_clock(),
            std::future::pending::<()>(),
        ),
    )
    .await
    .expect("serve returns at once on a bad configuration");
    assert!(matches!(r, Err(kyso_verifier::Error::Config(_))), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// mTLS
// ---------------------------------------------------------------------------------------------

/// A throwaway CA with a server certificate (localhost, 127.0.0.1) and a client certificate.
struct TlsFiles {
    _files: Mtls,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_tls_files() -> TlsFiles {
    let files = Mtls::generate(&[("client", "/CN=kyso test client/O=Văn phòng UBND tỉnh")]);
    TlsFiles {
        ca: files.ca(),
        server_cert: files.cert("server"),
        server_key: files.key("server"),
        client_cert: files.cert("client"),
        client_key: files.key("client"),
        _files: files,
    }
}

async fn tls_channel(
    service: &Service,
    tls: ClientTlsConfig,
) -> Result<Channel, tonic::transport::Error> {
    tokio::time::timeout(
        Duration::from_secs(10),
        service.endpoint("https").tls_config(tls).unwrap().connect(),
    )
    .await
    .expect("TLS connect returns in time")
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_rejects_a_client_without_certificate_and_accepts_one_with() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let files = make_tls_files();
    let mut cfg = config(pki, &servers);
    cfg.tls = Some(TlsSection::new(
        files.server_cert.clone(),
        files.server_key.clone(),
        Some(files.ca.clone()),
    ));
    let service = Service::start(cfg).await;
    let ca = Certificate::from_pem(std::fs::read(&files.ca).unwrap());
    let base = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");

    // Without a client certificate: the handshake or the first call fails.
    let refused = match tls_channel(&service, base.clone()).await {
        Err(e) => format!("connect: {e:?}"),
        Ok(ch) => match health(ch, SERVICE_NAME).await {
            Err(s) => format!("call: {s:?}"),
            Ok(st) => panic!("a client without certificate was served: {st:?}"),
        },
    };
    eprintln!("without a client certificate: {refused}");

    // Plaintext to the TLS port: refused too.
    if let Ok(Ok(ch)) =
        tokio::time::timeout(Duration::from_secs(10), service.endpoint("http").connect()).await
    {
        assert!(
            health(ch, SERVICE_NAME).await.is_err(),
            "plaintext served on the mTLS port"
        );
    }

    // With one issued by the configured client CA: served.
    let identity = Identity::from_pem(
        std::fs::read(&files.client_cert).unwrap(),
        std::fs::read(&files.client_key).unwrap(),
    );
    let ch = tls_channel(&service, base.identity(identity))
        .await
        .expect("mTLS connect with a client certificate");
    assert_eq!(
        health(ch.clone(), SERVICE_NAME)
            .await
            .expect("served over mTLS"),
        ServingStatus::Serving
    );
    let mut client = VerifierClient::new(ch);
    let r = verify(
        &mut client,
        request(sign(&CmsSign::new("personal-rsa", CONTENT))),
    )
    .await;
    assert_single_passed(&r);
}

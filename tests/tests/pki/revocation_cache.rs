//! Revocation checking and its caches, end to end: the library verifier
//! (`kyso_validation::verify::Verifier`, configured through `kyso_validation::config::TrustConfig`
//! as the service and the CLI do) against a real `openssl ocsp` behind the counting proxy and CRLs served over
//! HTTP. "now" is a parameter of `verify_cms`, so cache expiry is driven by a controlled clock.
//! The last test reads the counters through `/metrics` of a running service.
//!
//! N2 (Decree 68/2024 art. 31 c, art. 32): the status of every certificate of the path, read
//! from the provider's OCSP or CRL, must be "active" at the time of signing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso_pki::cms::Detached;
use kyso_pki::time::OffsetDateTime;
use kyso_proto::verifier::v1 as pb;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use kyso_revocation::PkiMetrics;
use kyso_tests::{CmsSign, DownMode, PkiServers, TestPki, exchange, openssl_cms_sign};
use kyso_validation::config::{RevocationSection, TrustConfig, UrlRewrite};
use kyso_validation::report::{
    CertStatus, DocumentReport, Indication, RevocationEvidence, RevocationPolicy, RevocationSource,
    SubIndication,
};
use kyso_validation::verify::{CmsRequest, Verifier};
use kyso_verifier::{Config, Listeners, serve, system_clock};

const CONTENT: &str = "Công văn số 45/UBND-VP về việc triển khai chữ ký số chuyên dùng";
/// Bound on any single verification here: a hang fails the test instead of wedging it.
const VERIFY_DEADLINE: Duration = Duration::from_secs(30);

fn trust(pki: &TestPki, servers: &PkiServers) -> TrustConfig {
    TrustConfig {
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
    }
}

fn config(pki: &TestPki, servers: &PkiServers) -> Config {
    Config {
        metrics_listen: None,
        trust: trust(pki, servers),
        ..Config::default()
    }
}

/// A library verifier with its own caches and its own (unregistered) metrics.
struct Lib {
    verifier: Verifier,
    metrics: PkiMetrics,
}

fn library(pki: &TestPki, servers: &PkiServers, tweak: impl FnOnce(&mut TrustConfig)) -> Lib {
    let mut cfg = trust(pki, servers);
    tweak(&mut cfg);
    let loaded = cfg.load().expect("a valid configuration");
    let metrics = PkiMetrics::unregistered().unwrap();
    Lib {
        verifier: Verifier::from_config(loaded, metrics.clone()).expect("fetcher"),
        metrics,
    }
}

async fn verify_at(
    v: &Verifier,
    signature: &[u8],
    policy: Option<RevocationPolicy>,
    now: OffsetDateTime,
) -> DocumentReport {
    tokio::time::timeout(
        VERIFY_DEADLINE,
        v.verify_cms(
            CmsRequest {
                signature,
                detached: Detached::None,
                at: None,
                policy,
            },
            now,
        ),
    )
    .await
    .expect("the verification returns in time")
    .expect("the signature can be judged")
}

fn sign_personal() -> Vec<u8> {
    openssl_cms_sign(&CmsSign::new("personal-rsa", CONTENT))
}

fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches('0').to_ascii_uppercase();
    norm(a) == norm(b)
}

/// The evidence about `leaf` in the (single) signature of `r`.
fn evidence_for<'a>(
    r: &'a DocumentReport,
    pki: &TestPki,
    leaf: &str,
) -> Vec<&'a RevocationEvidence> {
    assert_eq!(r.signatures.len(), 1, "{r:#?}");
    r.signatures[0]
        .revocation
        .iter()
        .filter(|e| same_serial(&e.certificate_serial, pki.serial(leaf)))
        .collect()
}

fn ocsp_evidence<'a>(r: &'a DocumentReport, pki: &TestPki) -> &'a RevocationEvidence {
    evidence_for(r, pki, "personal-rsa")
        .into_iter()
        .find(|e| e.source == RevocationSource::Ocsp && e.status == CertStatus::Good)
        .unwrap_or_else(|| panic!("good OCSP evidence for the leaf: {r:#?}"))
}

#[track_caller]
fn assert_passed(r: &DocumentReport) {
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
}

fn minutes(m: i64) -> time::Duration {
    time::Duration::minutes(m)
}

// ---------------------------------------------------------------------------------------------

/// A cold burst coalesces: one OCSP request for the leaf, one CRL download for the issuing CA's
/// own status (N2 art. 32), however many verifications ask at once.
#[tokio::test(flavor = "multi_thread")]
async fn cold_burst_of_500_makes_one_ocsp_request_and_one_crl_fetch_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let lib = library(pki, &servers, |_| {});
    let sig = Arc::new(sign_personal());
    let now = OffsetDateTime::now_utc();

    const N: usize = 500;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let started = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let v = lib.verifier.clone();
            let sig = Arc::clone(&sig);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                verify_at(&v, &sig, None, now).await
            })
        })
        .collect();
    let mut fetched = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_passed(&r);
        if !ocsp_evidence(&r, pki).from_cache {
            fetched += 1;
        }
    }
    eprintln!("{N} concurrent verifications in {:?}", started.elapsed());

    assert_eq!(
        servers.ocsp_proxy.requests(),
        1,
        "one OCSP request for a cold burst of {N}"
    );
    assert_eq!(
        servers.crl.count("/root.crl"),
        1,
        "the issuing CA's CRL, once"
    );
    assert_eq!(
        servers.crl.count("/issuing-ca.crl"),
        0,
        "no CRL for the leaf when OCSP answered"
    );
    assert_eq!(
        servers.aia.total(),
        0,
        "intermediates are configured: no AIA"
    );
    assert_eq!(
        lib.metrics.fetches.with_label_values(&["ocsp", "ok"]).get(),
        1
    );
    assert_eq!(
        lib.metrics.fetches.with_label_values(&["crl", "ok"]).get(),
        1
    );
    // Coalesced waiters may or may not call their answer "from cache"; only report it.
    eprintln!("{fetched} of {N} reports say their OCSP answer was fetched for them");
}

/// The OCSP answer (openssl -nmin 60: nextUpdate = thisUpdate + 1 h) is reused until its
/// nextUpdate, judged by the `now` given to the verifier, then fetched again.
#[tokio::test(flavor = "multi_thread")]
async fn cached_ocsp_answer_is_reused_until_next_update_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    // max_ttl well above the answers' lifetimes: nextUpdate decides.
    let lib = library(pki, &servers, |c| c.revocation.max_ttl_secs = 7 * 86_400);
    let sig = sign_personal();
    let now0 = OffsetDateTime::now_utc();

    let r1 = verify_at(&lib.verifier, &sig, None, now0).await;
    assert_passed(&r1);
    let e1 = ocsp_evidence(&r1, pki);
    assert!(!e1.from_cache, "{e1:#?}");
    let next_update = e1.next_update.expect("OCSP nextUpdate");
    assert!(
        next_update > now0 + minutes(50) && next_update < now0 + minutes(70),
        "{e1:#?}"
    );
    assert_eq!(servers.ocsp_proxy.requests(), 1);

    // 30 minutes later: still fresh, from the cache.
    let r2 = verify_at(&lib.verifier, &sig, None, now0 + minutes(30)).await;
    assert_passed(&r2);
    let e2 = ocsp_evidence(&r2, pki);
    assert!(e2.from_cache && !e2.stale, "{e2:#?}");
    assert_eq!(servers.ocsp_proxy.requests(), 1, "reused before nextUpdate");

    // Two hours later: past nextUpdate, asked again.
    let r3 = verify_at(&lib.verifier, &sig, None, now0 + minutes(120)).await;
    eprintln!(
        "at now + 2 h: {:?} {:?}",
        r3.indication, r3.signatures[0].sub_indication
    );
    assert_eq!(
        servers.ocsp_proxy.requests(),
        2,
        "past nextUpdate the answer is fetched again (once)"
    );
    // The root's CRL (nextUpdate + 1 day) is still fresh: not downloaded again.
    assert_eq!(servers.crl.count("/root.crl"), 1);
}

/// OCSP refused: the leaf's status comes from the issuing CA's CRL, the evidence says why OCSP
/// was not used, and the signature still passes (N2 c: CRL or OCSP).
#[tokio::test(flavor = "multi_thread")]
async fn ocsp_down_falls_back_to_the_crl_and_passes_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let lib = library(pki, &servers, |_| {});
    let sig = sign_personal();
    servers.ocsp_proxy.set_down(true);

    let r = verify_at(&lib.verifier, &sig, None, OffsetDateTime::now_utc()).await;
    assert_passed(&r);
    let leaf = evidence_for(&r, pki, "personal-rsa");
    let crl = leaf
        .iter()
        .find(|e| e.source == RevocationSource::Crl)
        .unwrap_or_else(|| panic!("CRL evidence for the leaf: {r:#?}"));
    assert_eq!(crl.status, CertStatus::Good, "{crl:#?}");
    assert!(
        crl.url
            .as_deref()
            .is_some_and(|u| u.ends_with("/issuing-ca.crl")),
        "{crl:#?}"
    );
    assert!(
        crl.this_update.is_some() && crl.next_update.is_some(),
        "{crl:#?}"
    );
    let proxy_addr = servers.ocsp_proxy.addr().to_string();
    // Every source tried is in the evidence, failures included.
    let ocsp_failure = leaf
        .iter()
        .find(|e| e.source == RevocationSource::Ocsp)
        .unwrap_or_else(|| panic!("the failed OCSP attempt is in the evidence: {leaf:#?}"));
    assert_eq!(
        ocsp_failure.status,
        CertStatus::Unknown,
        "{ocsp_failure:#?}"
    );
    assert!(
        ocsp_failure
            .url
            .as_deref()
            .is_some_and(|u| u.contains(&proxy_addr)),
        "{ocsp_failure:#?}"
    );
    let detail = ocsp_failure.detail.as_deref().unwrap_or_default();
    assert!(
        !detail.is_empty(),
        "the evidence says why OCSP was not used: {ocsp_failure:#?}"
    );
    eprintln!("OCSP failure detail: {detail}");
    assert_eq!(servers.crl.count("/issuing-ca.crl"), 1);

    // Again: the CRL comes from the cache.
    let r = verify_at(&lib.verifier, &sig, None, OffsetDateTime::now_utc()).await;
    assert_passed(&r);
    assert_eq!(
        servers.crl.count("/issuing-ca.crl"),
        1,
        "the parsed CRL is cached"
    );
}

/// A failure is shared by a burst too: during an OCSP outage, a burst of verifications makes
/// one attempt at the responder and one CRL download, and every verification passes on the CRL.
#[tokio::test(flavor = "multi_thread")]
async fn burst_during_an_ocsp_outage_makes_one_attempt_and_one_crl_fetch_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let lib = library(pki, &servers, |_| {});
    let sig = Arc::new(sign_personal());
    // 503 rather than refused, so that attempts are counted.
    servers.ocsp_proxy.set_down_mode(DownMode::Status(503));
    servers.ocsp_proxy.set_down(true);
    let now = OffsetDateTime::now_utc();

    const N: usize = 100;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let v = lib.verifier.clone();
            let sig = Arc::clone(&sig);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                verify_at(&v, &sig, None, now).await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_passed(&r);
        assert!(
            evidence_for(&r, pki, "personal-rsa")
                .iter()
                .any(|e| e.source == RevocationSource::Crl && e.status == CertStatus::Good),
            "{r:#?}"
        );
    }
    assert_eq!(
        servers.ocsp_proxy.requests(),
        1,
        "one attempt at the failing responder for the whole burst"
    );
    assert_eq!(servers.crl.count("/issuing-ca.crl"), 1);
    assert_eq!(servers.crl.count("/root.crl"), 1);
}

/// Neither OCSP nor CRL: fail closed under `require` (INDETERMINATE/TRY_LATER), pass with a
/// warning under `soft-fail`.
#[tokio::test(flavor = "multi_thread")]
async fn ocsp_and_crl_down_try_later_under_require_warning_under_soft_fail_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let lib = library(pki, &servers, |_| {});
    let sig = sign_personal();
    servers.ocsp_proxy.set_down(true);
    servers.crl.set_down(true);

    let r = verify_at(
        &lib.verifier,
        &sig,
        Some(RevocationPolicy::Require),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(r.indication, Indication::Indeterminate, "{r:#?}");
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::TryLater),
        "{r:#?}"
    );
    assert!(
        !r.signatures[0]
            .revocation
            .iter()
            .any(|e| e.status == CertStatus::Good),
        "no good status out of nothing: {r:#?}"
    );

    let r = verify_at(
        &lib.verifier,
        &sig,
        Some(RevocationPolicy::SoftFail),
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_passed(&r);
    let s = &r.signatures[0];
    assert_eq!(s.revocation_policy, RevocationPolicy::SoftFail);
    assert!(
        s.warnings.iter().any(|w| w.contains("revocation")),
        "a warning says revocation could not be checked: {s:#?}"
    );
    assert!(
        !s.revocation.iter().any(|e| e.status == CertStatus::Good),
        "{s:#?}"
    );
}

/// A stale entry (past nextUpdate) is served, marked `stale`, only while its sources are down
/// and only within `stale_grace`.
#[tokio::test(flavor = "multi_thread")]
async fn stale_entry_is_served_within_grace_only_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let lib = library(pki, &servers, |c| {
        c.revocation.stale_grace_secs = 3_600;
        c.revocation.max_ttl_secs = 7 * 86_400;
    });
    let sig = sign_personal();
    let now0 = OffsetDateTime::now_utc();

    let r = verify_at(&lib.verifier, &sig, None, now0).await;
    assert_passed(&r);
    assert!(!ocsp_evidence(&r, pki).stale);
    assert_eq!(servers.ocsp_proxy.requests(), 1);

    // Sources down, answering 503 (so the attempts are counted).
    servers.ocsp_proxy.set_down_mode(DownMode::Status(503));
    servers.ocsp_proxy.set_down(true);
    servers.crl.set_down_mode(DownMode::Status(503));
    servers.crl.set_down(true);

    // 90 minutes: 30 minutes past nextUpdate, inside the 60-minute grace.
    let r = verify_at(&lib.verifier, &sig, None, now0 + minutes(90)).await;
    assert_passed(&r);
    let e = ocsp_evidence(&r, pki);
    assert!(e.stale, "served stale: {e:#?}");
    assert!(
        servers.ocsp_proxy.requests() >= 2,
        "the responder was asked before the stale answer was used"
    );

    // 3 hours: past nextUpdate + grace. Nothing usable: fail closed.
    let r = verify_at(&lib.verifier, &sig, None, now0 + minutes(180)).await;
    assert_eq!(r.indication, Indication::Indeterminate, "{r:#?}");
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::TryLater),
        "{r:#?}"
    );
    assert!(
        !evidence_for(&r, pki, "personal-rsa")
            .iter()
            .any(|e| e.status == CertStatus::Good),
        "no stale answer beyond the grace: {r:#?}"
    );
}

/// A responder that accepts and never answers costs the configured timeout, not a hang.
#[tokio::test(flavor = "multi_thread")]
async fn hanging_responders_cost_the_timeout_not_a_hang() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let timeout_ms = |c: &mut TrustConfig| c.revocation.timeout_ms = 500;
    let sig = sign_personal();

    // OCSP hangs, the CRL answers: passes through the CRL.
    servers.ocsp_proxy.set_down_mode(DownMode::Hang);
    servers.ocsp_proxy.set_down(true);
    let lib = library(pki, &servers, timeout_ms);
    let started = Instant::now();
    let r = verify_at(&lib.verifier, &sig, None, OffsetDateTime::now_utc()).await;
    let took = started.elapsed();
    eprintln!("OCSP hanging: {:?} in {took:?}", r.indication);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_passed(&r);
    let leaf = evidence_for(&r, pki, "personal-rsa");
    assert!(
        leaf.iter()
            .any(|e| e.source == RevocationSource::Crl && e.status == CertStatus::Good),
        "{leaf:#?}"
    );
    assert!(
        leaf.iter()
            .filter_map(|e| e.detail.as_deref())
            .any(|d| d.to_ascii_lowercase().contains("timeout")),
        "the OCSP timeout is stated: {leaf:#?}"
    );

    // Both hang: fail closed, still bounded.
    servers.crl.set_down_mode(DownMode::Hang);
    servers.crl.set_down(true);
    let lib = library(pki, &servers, timeout_ms);
    let started = Instant::now();
    let r = verify_at(&lib.verifier, &sig, None, OffsetDateTime::now_utc()).await;
    let took = started.elapsed();
    eprintln!("OCSP and CRL hanging: {:?} in {took:?}", r.indication);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(r.indication, Indication::Indeterminate, "{r:#?}");
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::TryLater),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// /metrics of a running service
// ---------------------------------------------------------------------------------------------

/// Sum of the samples of `name` whose labels include every pair of `filters`.
fn metric(text: &str, name: &str, filters: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = match head.find('{') {
            Some(i) => (&head[..i], head[i + 1..].trim_end_matches('}')),
            None => (head, ""),
        };
        if metric != name {
            continue;
        }
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim_start_matches(',').trim();
            let after = &rest[eq + 2..];
            let end = after.find('"').expect("closing quote");
            map.insert(key.to_owned(), after[..end].to_owned());
            rest = &after[end + 1..];
        }
        if filters
            .iter()
            .all(|(k, v)| map.get(*k).is_some_and(|x| x == v))
        {
            sum += value.parse::<f64>().expect("a sample value");
        }
    }
    sum
}

async fn scrape(addr: SocketAddr) -> String {
    let r = tokio::task::spawn_blocking(move || {
        exchange(addr, "GET", "/metrics", None, b"", Duration::from_secs(5))
    })
    .await
    .unwrap()
    .expect("GET /metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).expect("UTF-8 exposition")
}

/// A verifier service on loopback (gRPC, metrics) with its shutdown trigger.
struct Running {
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<kyso_verifier::Result<()>>,
}

impl Running {
    async fn start(config: Config) -> Running {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mlistener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap();
        let metrics = mlistener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            Listeners {
                grpc,
                metrics: Some(mlistener),
            },
            system_clock(),
            async move {
                let _ = stopped.await;
            },
        ));
        Running {
            addr,
            metrics,
            stop,
            task,
        }
    }

    async fn client(&self) -> VerifierClient<tonic::transport::Channel> {
        VerifierClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    async fn verify_passes(
        &self,
        client: &mut VerifierClient<tonic::transport::Channel>,
        sig: &[u8],
    ) {
        let r = tokio::time::timeout(
            VERIFY_DEADLINE,
            client.verify_cms(pb::VerifyCmsRequest {
                signature: sig.to_vec(),
                ..Default::default()
            }),
        )
        .await
        .expect("in time")
        .expect("served")
        .into_inner();
        assert_eq!(r.indication(), pb::Indication::TotalPassed, "{r:#?}");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .expect("serve returns Ok");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_cache_fetch_and_request_counters_moving() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Running::start(config(pki, &servers)).await;
    let maddr = service.metrics;

    let before = scrape(maddr).await;
    let verify_ok = [("method", "VerifyCms"), ("outcome", "ok")];
    let ocsp_ok = [("source", "ocsp"), ("outcome", "ok")];
    assert_eq!(
        metric(&before, "kyso_verifier_requests_total", &verify_ok),
        0.0
    );
    assert_eq!(metric(&before, "kyso_fetch_total", &ocsp_ok), 0.0);
    assert_eq!(
        metric(&before, "kyso_revocation_cache_requests_total", &[]),
        0.0
    );

    let mut client = service.client().await;
    let sig = sign_personal();
    for _ in 0..3 {
        service.verify_passes(&mut client, &sig).await;
    }
    let bad = client
        .verify_cms(pb::VerifyCmsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    let after = scrape(maddr).await;
    eprintln!(
        "{}",
        after
            .lines()
            .filter(|l| l.starts_with("kyso_") && !l.contains("_bucket"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        metric(&after, "kyso_verifier_requests_total", &verify_ok),
        3.0
    );
    assert_eq!(
        metric(
            &after,
            "kyso_verifier_requests_total",
            &[("method", "VerifyCms"), ("outcome", "invalid_argument")]
        ),
        1.0
    );
    assert_eq!(
        metric(&after, "kyso_fetch_total", &ocsp_ok),
        1.0,
        "one OCSP fetch, then the cache"
    );
    assert_eq!(servers.ocsp_proxy.requests(), 1);
    let cache_total = metric(&after, "kyso_revocation_cache_requests_total", &[]);
    assert!(cache_total >= 3.0, "cache look-ups counted: {cache_total}");
    assert!(
        metric(
            &after,
            "kyso_revocation_cache_requests_total",
            &[("result", "hit")]
        ) >= 2.0,
        "the 2nd and 3rd requests hit the cache"
    );
    assert!(
        metric(
            &after,
            "kyso_revocation_cache_requests_total",
            &[("result", "miss")]
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &after,
            "kyso_verifier_signatures_total",
            &[("indication", "TOTAL_PASSED")]
        ),
        3.0
    );
    assert_eq!(metric(&after, "kyso_verifier_in_flight_requests", &[]), 0.0);
    assert!(
        metric(
            &after,
            "kyso_verifier_request_duration_seconds_count",
            &[("method", "VerifyCms")]
        ) >= 4.0
    );

    service.stop().await;
}

/// The entries gauge: after one verification the OCSP cache holds the leaf's answer and the CRL
/// cache the root's CRL; `/metrics` must say so (docs/FLOWS.md: "cache hits/misses/entries").
#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_the_entries_the_caches_hold() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Running::start(config(pki, &servers)).await;
    let mut client = service.client().await;
    let sig = sign_personal();
    service.verify_passes(&mut client, &sig).await;
    assert_eq!(servers.ocsp_proxy.requests(), 1);

    let text = scrape(service.metrics).await;
    let ocsp = metric(&text, "kyso_revocation_cache_entries", &[("cache", "ocsp")]);
    let crl = metric(&text, "kyso_revocation_cache_entries", &[("cache", "crl")]);
    service.stop().await;
    assert_eq!(
        (ocsp, crl),
        (1.0, 1.0),
        "kyso_revocation_cache_entries{{cache=ocsp|crl}} while each cache holds one answer"
    );
}

//! Scale-out (issue 17): two `kyso-verifier` processes, each in a network namespace of its
//! own, behind one service address balanced per connection by iptables DNAT (what a
//! Kubernetes Service does), with the test PKI's OCSP and CRL servers reached through
//! counting relays. The load must be shared, every answer right, and the address must keep
//! answering when one replica stops. The bytes the replicas fetch are the per-document
//! revocation traffic docs/OPERATIONS.md ("Sizing a province") uses.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use kyso_proto::verifier::v1 as pb;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::netns::{Fabric, Guarded, Relay};
use kyso_tests::{CmsSign, PkiServers, TestPki, exchange};
use tonic::transport::{Channel, Endpoint};

use crate::service::{CONTENT, RPC_DEADLINE, request, sign};

const GRPC_PORT: u16 = 50061;
const METRICS_PORT: u16 = 9461;
/// Connections the client opens to the one address: gRPC keeps one HTTP/2 connection per
/// channel and an L4 balancer places connections, not requests.
const CONNECTIONS: usize = 8;
/// Verifications per connection in the shared phase.
const PER_CONNECTION: usize = 25;
/// Distinct documents (signatures) the load cycles through, by two certificates.
const DOCUMENTS: usize = 6;

/// One replica: the verifier binary in its namespace, its log in `dir`.
struct Replica {
    process: Guarded,
    metrics: SocketAddr,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(net: &Fabric, i: usize, config: &Path, dir: &Path) -> Replica {
        let addr = net.replica_addr(i);
        let log = dir.join(format!("replica-{i}.log"));
        let out = std::fs::File::create(&log).expect("replica log");
        let err = out.try_clone().expect("replica log");
        let child = net
            .command_in(i, &workspace_bin("kyso-verifier"))
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(format!("{addr}:{GRPC_PORT}"))
            .arg("--metrics-listen")
            .arg(format!("{addr}:{METRICS_PORT}"))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start kyso-verifier in its namespace");
        Replica {
            process: Guarded(child),
            metrics: SocketAddr::from((addr, METRICS_PORT)),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the replica says it is ready on its metrics port.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.exited() {
                panic!("the replica exited ({status}): {}", self.log());
            }
            let r = exchange(
                self.metrics,
                "GET",
                "/readyz",
                None,
                b"",
                Duration::from_secs(2),
            );
            if matches!(r, Ok(ref r) if r.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica is not ready after 60 s ({r:?}): {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Signatures this replica judged TOTAL_PASSED, from its /metrics.
    fn passed(&self) -> u64 {
        let r = exchange(
            self.metrics,
            "GET",
            "/metrics",
            None,
            b"",
            Duration::from_secs(5),
        )
        .expect("scrape the replica's /metrics");
        assert_eq!(r.status, 200);
        let text = String::from_utf8_lossy(&r.body);
        let passed: f64 = text
            .lines()
            .filter(|l| l.starts_with("kyso_verifier_signatures_total{"))
            .filter(|l| l.contains("indication=\"TOTAL_PASSED\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        passed as u64
    }
}

/// The replicas' configuration file: the test PKI's trust, its URLs rewritten onto the
/// relays (the replicas' only way out of their namespaces).
fn write_config(
    dir: &Path,
    net: &Fabric,
    pki: &TestPki,
    (ocsp, crl, aia): (&Relay, &Relay, &Relay),
) -> std::path::PathBuf {
    let rewrites = kyso_tests::rewrites(&ocsp.url(), &crl.url(), &aia.url())
        .into_iter()
        .map(|(from, to)| format!("{{ from = {from:?}, to = {to:?} }}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "trust_anchors = [{:?}, {:?}]\nintermediates = [{:?}]\nfetch_aia = true\n\
         [revocation]\ntimeout_ms = 5000\nurl_rewrites = [{rewrites}]\nallowed_networks = [{:?}]\n",
        pki.root_pem().display().to_string(),
        pki.legacy_root_pem().display().to_string(),
        pki.intermediates_pem().display().to_string(),
        net.network(),
    );
    let path = dir.join("verifier.toml");
    std::fs::write(&path, text).expect("write the replicas' configuration");
    path
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a harness server's address")
}

/// `CONNECTIONS`-style load: `connections` fresh connections to the one address, `each`
/// verifications on each, every answer checked.
async fn drive(service: SocketAddr, connections: usize, each: usize, docs: &[Vec<u8>]) {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        // One Endpoint::connect is one TCP connection, placed by the balancer on its own.
        let channel: Channel = Endpoint::from_shared(format!("http://{service}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(RPC_DEADLINE)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connection {c} to the service address: {e:?}"));
        let docs = docs.to_vec();
        tasks.spawn(async move {
            let mut client = VerifierClient::new(channel);
            for k in 0..each {
                let sig = docs[(c + k) % docs.len()].clone();
                let resp = tokio::time::timeout(RPC_DEADLINE, client.verify_cms(request(sig)))
                    .await
                    .expect("VerifyCms answers in time")
                    .unwrap_or_else(|s| panic!("VerifyCms on connection {c}: {s:?}"))
                    .into_inner();
                assert_eq!(resp.indication(), pb::Indication::TotalPassed, "{resp:#?}");
                assert_eq!(resp.signatures.len(), 1, "{resp:#?}");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a connection's task");
    }
}

#[test]
fn two_replicas_behind_one_address_share_the_load_and_one_can_stop() {
    let _turn = crate::MACHINE.blocking_lock();
    let Some(net) = Fabric::create(2) else {
        return;
    };
    let pki = TestPki::get();
    // This test's own servers: their counters are its replicas' traffic alone.
    let servers = PkiServers::start(pki);
    let host = net.host_addr().into();
    let ocsp = Relay::start(host, addr_of(&servers.ocsp_proxy.url()));
    let crl = Relay::start(host, addr_of(&servers.crl.url()));
    let aia = Relay::start(host, addr_of(&servers.aia.url()));
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = write_config(dir.path(), &net, pki, (&ocsp, &crl, &aia));

    let mut replicas: Vec<Replica> = (0..2)
        .map(|i| Replica::start(&net, i, &config, dir.path()))
        .collect();
    for r in &mut replicas {
        r.wait_ready();
    }
    net.balance(GRPC_PORT, &[0, 1]);
    let service = SocketAddr::from((net.service_addr(), GRPC_PORT));

    // Distinct documents by two certificates (a person's and the organisation's seal).
    let docs: Vec<Vec<u8>> = (0..DOCUMENTS)
        .map(|k| {
            let leaf = if k % 2 == 0 {
                "personal-rsa"
            } else {
                "org-rsa"
            };
            sign(&CmsSign::new(leaf, format!("{CONTENT} ({k})")))
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");

    // Shared phase: every answer right, both replicas serving a real share.
    rt.block_on(drive(service, CONNECTIONS, PER_CONNECTION, &docs));
    let total = (CONNECTIONS * PER_CONNECTION) as u64;
    let shares: Vec<u64> = replicas.iter().map(Replica::passed).collect();
    assert_eq!(
        shares.iter().sum::<u64>(),
        total,
        "every verification is counted by the replica that served it: {shares:?}"
    );
    for (i, s) in shares.iter().enumerate() {
        assert!(
            *s * 4 >= total,
            "replica {i} served {s} of {total} verifications (< 25 %): {shares:?}"
        );
    }

    // Revocation traffic: fetched per certificate and per replica cache, not per document.
    let bytes = |r: &Relay| r.bytes_up() + r.bytes_down();
    let (ocsp_bytes, crl_bytes, aia_bytes) = (bytes(&ocsp), bytes(&crl), bytes(&aia));
    let (ocsp_requests, crl_requests) = (servers.ocsp_proxy.requests(), servers.crl.total());
    eprintln!(
        "scale-out: {total} verifications, shares {shares:?}; outbound: OCSP {ocsp_requests} \
         requests {ocsp_bytes} B ({} B up, {} B down), CRL {crl_requests} requests \
         ({} of /root.crl) {crl_bytes} B, AIA {} requests {aia_bytes} B; per verification {:.1} B",
        ocsp.bytes_up(),
        ocsp.bytes_down(),
        servers.crl.count("/root.crl"),
        servers.aia.total(),
        (ocsp_bytes + crl_bytes + aia_bytes) as f64 / total as f64,
    );
    assert!(
        ocsp_requests + crl_requests > 0 && ocsp_bytes + crl_bytes > 0,
        "the replicas checked revocation through the relays"
    );
    // Two replicas, two leaves, their CAs: a handful of fetches each, whatever the load.
    assert!(
        ocsp_requests + crl_requests <= 16,
        "revocation fetches grew with the documents: OCSP {ocsp_requests}, CRL {crl_requests} \
         for {total} verifications"
    );

    // One replica stops; its endpoint leaves the Service (readiness) and new connections
    // go to the other, which answers them all.
    let before = replicas[1].passed();
    replicas[0].process.stop();
    let gone = SocketAddr::from((net.replica_addr(0), GRPC_PORT));
    assert!(
        std::net::TcpStream::connect_timeout(&gone, Duration::from_secs(2)).is_err(),
        "replica 0 still accepts connections after being stopped"
    );
    net.balance(GRPC_PORT, &[1]);
    rt.block_on(drive(service, 4, 5, &docs));
    assert_eq!(
        replicas[1].passed(),
        before + 20,
        "the remaining replica served every new connection"
    );
    drop(rt);
}

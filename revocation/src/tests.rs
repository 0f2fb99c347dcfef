//! Tests against a real test PKI made with the `openssl` CLI: a live
//! `openssl ocsp` responder, and precomputed OCSP responses and CRLs served
//! by a small counting HTTP server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

// ---------------------------------------------------------------- test PKI

/// Everything the tests need, made once per test process.
struct Pki {
    dir: PathBuf,
    ca: Cert,
    good: Cert,
    revoked: Cert,
    hold: Cert,
    unknown: Cert,
    none: Cert,
    resp: HashMap<&'static str, Vec<u8>>,
    crl: HashMap<&'static str, Vec<u8>>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed by these tests");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: &str = "ec:ecparam.pem";

fn ca_config(dir: &Path) -> String {
    format!(
        r#"
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ leaf_both ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, nonRepudiation
authorityInfoAccess = OCSP;URI:http://ocsp.kyso.test/
crlDistributionPoints = URI:http://crl.kyso.test/ca.crl
[ leaf_none ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, nonRepudiation
[ ocsp_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = OCSPSigning
[ noeku_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ delta_ext ]
2.5.29.27 = critical,ASN1:INTEGER:1
[ weird_ext ]
1.3.6.1.4.1.55555.1 = critical,ASN1:NULL
[ idp_ext ]
issuingDistributionPoint = critical, @idp_section
[ idp_section ]
fullname = URI:http://crl.kyso.test/elsewhere.crl
"#,
        dir = dir.display()
    )
}

/// A CA directory for `openssl ca`; serials start with the high bit set so
/// that their DER carries a leading zero octet (normalisation is exercised).
fn make_ca(dir: &Path, cn: &str, newkey: &str) {
    std::fs::create_dir_all(dir.join("newcerts")).unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "80A000\n").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(dir.join("ca.cnf"), ca_config(dir)).unwrap();
    openssl(
        dir,
        &["ecparam", "-name", "prime256v1", "-out", "ecparam.pem"],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            newkey,
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            &format!("/CN={cn}/O=Kyso Test"),
            "-days",
            "60",
            "-config",
            "ca.cnf",
            "-extensions",
            "ca_ext",
        ],
    );
}

fn issue(dir: &Path, name: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            EC,
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}/O=Kyso Test"),
            "-config",
            "ca.cnf",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-extensions",
            ext,
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-notext",
        ],
    );
}

fn gencrl(dir: &Path, exts: &str, out: &str) -> Vec<u8> {
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-crlexts",
            exts,
            "-out",
            &format!("{out}.pem"),
        ],
    );
    openssl(
        dir,
        &[
            "crl",
            "-in",
            &format!("{out}.pem"),
            "-outform",
            "DER",
            "-out",
            out,
        ],
    );
    std::fs::read(dir.join(out)).unwrap()
}

/// A response of the CA's database to a request about `cert`, signed by `signer`.
fn ocsp_response(dir: &Path, cert: &str, signer: &str, key: &str, extra: &[&str]) -> Vec<u8> {
    let req = format!("{cert}.req");
    openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            &format!("{cert}.pem"),
            "-reqout",
            &req,
            "-no_nonce",
        ],
    );
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = format!("{cert}-{n}.resp");
    let mut args = vec![
        "ocsp",
        "-index",
        "index.txt",
        "-CA",
        "ca.pem",
        "-rsigner",
        signer,
        "-rkey",
        key,
        "-reqin",
        &req,
        "-respout",
        &out,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    std::fs::read(dir.join(&out)).unwrap()
}

fn load(dir: &Path, name: &str) -> Cert {
    let pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
    Cert::parse_many(&pem).unwrap().remove(0)
}

fn make_pki() -> Pki {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let root = std::env::temp_dir().join(format!("kyso-revocation-{}-{nanos}", std::process::id()));
    let dir = root.join("ca");
    let other = root.join("other");
    make_ca(&dir, "Kyso Test CA", "rsa:2048");
    make_ca(&other, "Kyso Other CA", "ec:ecparam.pem");
    // Same name as the real CA, another key.
    let impostor = root.join("impostor");
    make_ca(&impostor, "Kyso Test CA", "ec:ecparam.pem");

    for name in ["good", "revoked", "hold"] {
        issue(&dir, name, "leaf_both");
    }
    issue(&dir, "none", "leaf_none");
    issue(&dir, "responder", "ocsp_ext");
    issue(&dir, "noeku", "noeku_ext");
    // Signed by the CA but absent from its database: OCSP says unknown.
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            EC,
            "-nodes",
            "-keyout",
            "unknown.key",
            "-out",
            "unknown.csr",
            "-subj",
            "/CN=unknown/O=Kyso Test",
            "-config",
            "ca.cnf",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "unknown.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x8777",
            "-days",
            "30",
            "-extfile",
            "ca.cnf",
            "-extensions",
            "leaf_both",
            "-out",
            "unknown.pem",
        ],
    );
    openssl(
        &dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-revoke",
            "revoked.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    openssl(
        &dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-revoke",
            "hold.pem",
            "-crl_hold",
            "holdInstructionReject",
        ],
    );

    let mut crl = HashMap::new();
    crl.insert("ca", gencrl(&dir, "crl_ext", "ca.crl"));
    crl.insert("ca-pem", std::fs::read(dir.join("ca.crl.pem")).unwrap());
    crl.insert("delta", gencrl(&dir, "delta_ext", "delta.crl"));
    crl.insert("critical", gencrl(&dir, "weird_ext", "weird.crl"));
    crl.insert("idp", gencrl(&dir, "idp_ext", "idp.crl"));
    crl.insert("other", gencrl(&other, "crl_ext", "other.crl"));

    let other_pem = other.join("ca.pem").display().to_string();
    let other_key = other.join("ca.key").display().to_string();
    let mut resp = HashMap::new();
    resp.insert(
        "good",
        ocsp_response(&dir, "good", "ca.pem", "ca.key", &["-ndays", "1"]),
    );
    resp.insert(
        "good-60min",
        ocsp_response(&dir, "good", "ca.pem", "ca.key", &["-nmin", "60"]),
    );
    resp.insert(
        "revoked",
        ocsp_response(&dir, "revoked", "ca.pem", "ca.key", &["-ndays", "1"]),
    );
    resp.insert(
        "hold",
        ocsp_response(&dir, "hold", "ca.pem", "ca.key", &["-ndays", "1"]),
    );
    resp.insert(
        "unknown",
        ocsp_response(&dir, "unknown", "ca.pem", "ca.key", &["-ndays", "1"]),
    );
    resp.insert(
        "by-key",
        ocsp_response(
            &dir,
            "good",
            "ca.pem",
            "ca.key",
            &["-ndays", "1", "-resp_key_id"],
        ),
    );
    resp.insert(
        "delegated",
        ocsp_response(
            &dir,
            "good",
            "responder.pem",
            "responder.key",
            &["-ndays", "1"],
        ),
    );
    resp.insert(
        "no-eku",
        ocsp_response(&dir, "good", "noeku.pem", "noeku.key", &["-ndays", "1"]),
    );
    resp.insert(
        "wrong-key",
        ocsp_response(&dir, "good", &other_pem, &other_key, &["-ndays", "1"]),
    );
    resp.insert(
        "wrong-key-no-certs",
        ocsp_response(
            &dir,
            "good",
            &other_pem,
            &other_key,
            &["-ndays", "1", "-resp_no_certs"],
        ),
    );
    let impostor_pem = impostor.join("ca.pem").display().to_string();
    let impostor_key = impostor.join("ca.key").display().to_string();
    resp.insert(
        "impostor",
        ocsp_response(&dir, "good", &impostor_pem, &impostor_key, &["-ndays", "1"]),
    );

    Pki {
        ca: load(&dir, "ca"),
        good: load(&dir, "good"),
        revoked: load(&dir, "revoked"),
        hold: load(&dir, "hold"),
        unknown: load(&dir, "unknown"),
        none: load(&dir, "none"),
        dir,
        resp,
        crl,
    }
}

// ---------------------------------------------------------- counting server

#[derive(Clone)]
struct Route {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
    hang: bool,
    location: Option<String>,
}

impl Route {
    fn ok(body: &[u8]) -> Self {
        Self {
            status: 200,
            body: body.to_vec(),
            delay: Duration::ZERO,
            hang: false,
            location: None,
        }
    }

    fn redirect(to: &str) -> Self {
        Self {
            status: 302,
            location: Some(to.to_owned()),
            ..Self::ok(b"")
        }
    }
}

type Routes = Arc<Mutex<HashMap<String, Route>>>;
type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// A minimal HTTP/1.1 server that counts requests per path.
struct TestServer {
    addr: SocketAddr,
    routes: Routes,
    hits: Hits,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Routes = Arc::default();
        let hits: Hits = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, r.clone(), h.clone()));
            }
        });
        Self {
            addr,
            routes,
            hits,
            task,
        }
    }

    fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_owned(), route);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn rewrites(&self) -> Vec<UrlRewrite> {
        vec![
            UrlRewrite {
                from: "http://ocsp.kyso.test/".into(),
                to: format!("http://{}/ocsp/", self.addr),
            },
            UrlRewrite {
                from: "http://crl.kyso.test/".into(),
                to: format!("http://{}/crl/", self.addr),
            },
        ]
    }

    /// Stops accepting: later connections are refused.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn serve(mut stream: TcpStream, routes: Routes, hits: Hits) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let route = routes.lock().unwrap().get(&path).cloned();
    let route = route.unwrap_or(Route {
        status: 404,
        ..Route::ok(b"")
    });
    if route.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    tokio::time::sleep(route.delay).await;
    let location = route
        .location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\n{location}Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        route.status,
        route.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&route.body).await;
    let _ = stream.shutdown().await;
}

/// A loopback port nobody listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ----------------------------------------------------------------- helpers

fn config(rewrites: Vec<UrlRewrite>, order: RevocationOrder) -> RevocationConfig {
    let mut cfg = RevocationConfig {
        order,
        max_ttl: Duration::from_secs(3 * 86_400),
        ..RevocationConfig::default()
    };
    cfg.fetch.url_rewrites = rewrites;
    cfg.fetch.timeout = Duration::from_secs(3);
    cfg
}

fn checker(cfg: RevocationConfig) -> (RevocationChecker, PkiMetrics) {
    let metrics = PkiMetrics::unregistered().unwrap();
    (
        RevocationChecker::from_config(cfg, metrics.clone()).unwrap(),
        metrics,
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn check(c: &RevocationChecker, cert: &Cert, at: OffsetDateTime) -> RevocationOutcome {
    c.check(cert, &pki().ca, at, at, RevocationPolicy::Require)
        .await
}

fn details(o: &RevocationOutcome) -> String {
    o.evidence
        .iter()
        .filter_map(|e| e.detail.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn revoked_with(o: &RevocationOutcome, reason: &str) -> OffsetDateTime {
    match &o.status {
        Status::Revoked { time, reason: r } => {
            assert_eq!(r.as_deref(), Some(reason), "{o:#?}");
            *time
        }
        other => panic!("expected revoked, got {other:?}: {o:#?}"),
    }
}

// ------------------------------------------------------------------- OCSP

/// A real `openssl ocsp` responder process, killed on drop.
struct Responder {
    child: std::process::Child,
    port: u16,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_openssl_responder(dir: &Path) -> Responder {
    // `-port 0` lets the kernel choose; openssl prints "ACCEPT [::]:PORT".
    let mut child = Command::new("openssl")
        .args([
            "ocsp",
            "-index",
            "index.txt",
            "-port",
            "0",
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-nmin",
            "5",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.strip_prefix("ACCEPT ") {
                let port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .flatten()
        .expect("openssl ocsp did not report its port");
    Responder { child, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_openssl_responder_good_revoked_hold_unknown_with_nonce() {
    let pki = pki();
    let responder = start_openssl_responder(&pki.dir);
    let rewrites = vec![UrlRewrite {
        from: "http://ocsp.kyso.test/".into(),
        to: format!("http://127.0.0.1:{}/", responder.port),
    }];
    let mut cfg = config(rewrites, RevocationOrder::OcspOnly);
    cfg.ocsp_nonce = true;
    let (c, _) = checker(cfg);
    let at = now();

    let o = check(&c, &pki.good, at).await;
    assert_eq!(o.status, Status::Good, "{o:#?}");
    let ev = &o.evidence[0];
    assert_eq!(ev.source, RevocationSource::Ocsp);
    assert_eq!(ev.status, CertStatus::Good);
    assert_eq!(
        ev.url.as_deref(),
        Some(format!("http://127.0.0.1:{}/", responder.port).as_str())
    );
    assert!(!ev.from_cache && !ev.stale);
    assert!(ev.next_update.is_some() && ev.produced_at.is_some());

    let o = check(&c, &pki.revoked, at).await;
    revoked_with(&o, "keyCompromise");
    let o = check(&c, &pki.hold, at).await;
    revoked_with(&o, "certificateHold");
    let o = check(&c, &pki.unknown, at).await;
    assert_eq!(o.status, Status::Unknown, "{o:#?}");
    assert_eq!(o.evidence[0].status, CertStatus::Unknown);

    // Asked again: served from the cache, no new request needed.
    let o = check(&c, &pki.good, at).await;
    assert!(o.evidence[0].from_cache, "{o:#?}");
}

async fn ocsp_server(resp: &str) -> TestServer {
    let server = TestServer::start().await;
    server.route("/ocsp/", Route::ok(&pki().resp[resp]));
    server
}

#[tokio::test]
async fn precomputed_ocsp_statuses() {
    let pki = pki();
    let at = now();
    for (resp, cert) in [
        ("good", &pki.good),
        ("by-key", &pki.good),
        ("revoked", &pki.revoked),
        ("hold", &pki.hold),
        ("unknown", &pki.unknown),
    ] {
        let server = ocsp_server(resp).await;
        let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
        let o = check(&c, cert, at).await;
        match resp {
            "good" | "by-key" => assert_eq!(o.status, Status::Good, "{resp}: {o:#?}"),
            "revoked" => {
                let t = revoked_with(&o, "keyCompromise");
                // The revocation is after a reference time in the past: still
                // reported, with a detail; the caller compares.
                let earlier = t - time::Duration::hours(1);
                let o = c
                    .check(cert, &pki.ca, earlier, at, RevocationPolicy::Require)
                    .await;
                assert_eq!(revoked_with(&o, "keyCompromise"), t);
                assert!(details(&o).contains("after the reference time"), "{o:#?}");
            }
            "hold" => {
                revoked_with(&o, "certificateHold");
            }
            _ => assert_eq!(o.status, Status::Unknown, "{resp}: {o:#?}"),
        }
        assert_eq!(server.hits("/ocsp/"), 1);
    }
}

#[tokio::test]
async fn unknown_from_ocsp_falls_back_to_crl() {
    let pki = pki();
    let server = ocsp_server("unknown").await;
    server.route("/crl/ca.crl", Route::ok(&pki.crl["ca"]));
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspThenCrl));
    let o = check(&c, &pki.unknown, now()).await;
    assert_eq!(o.status, Status::Good, "{o:#?}");
    assert_eq!(o.evidence.len(), 2);
    assert_eq!(o.evidence[0].source, RevocationSource::Ocsp);
    assert_eq!(o.evidence[0].status, CertStatus::Unknown);
    assert_eq!(o.evidence[1].source, RevocationSource::Crl);
    assert_eq!(o.evidence[1].status, CertStatus::Good);
}

#[tokio::test]
async fn delegated_responder_accepted() {
    let pki = pki();
    let server = ocsp_server("delegated").await;
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
    let o = check(&c, &pki.good, now()).await;
    assert_eq!(o.status, Status::Good, "{o:#?}");
}

#[tokio::test]
async fn responses_signed_by_unauthorised_keys_rejected() {
    let pki = pki();
    for (resp, why) in [
        (
            "wrong-key",
            "is issued by O=Kyso Test,CN=Kyso Other CA, not by the certificate's issuer",
        ),
        ("no-eku", "lacks id-kp-OCSPSigning"),
        (
            "wrong-key-no-certs",
            "is neither the issuer nor a certificate in the response",
        ),
        (
            "impostor",
            "the signature does not verify with the issuer's key",
        ),
    ] {
        let server = ocsp_server(resp).await;
        let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
        let o = check(&c, &pki.good, now()).await;
        assert_eq!(o.status, Status::Unknown, "{resp}: {o:#?}");
        let d = details(&o);
        assert!(
            d.contains("OCSP response signed by a key that is neither the issuer nor an authorised responder"),
            "{resp}: {d}"
        );
        assert!(d.contains(why), "{resp}: {d}");
    }
}

#[tokio::test]
async fn response_for_another_certificate_rejected() {
    let pki = pki();
    // The responder answers about "revoked" when asked about "good".
    let server = ocsp_server("revoked").await;
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
    let o = check(&c, &pki.good, now()).await;
    assert_eq!(o.status, Status::Unknown, "{o:#?}");
    assert!(
        details(&o).contains("does not answer for the certificate"),
        "{o:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_burst_of_500_checks_makes_one_request() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route(
        "/ocsp/",
        Route {
            // Slow enough that every check arrives while the fetch is in flight.
            delay: Duration::from_millis(300),
            ..Route::ok(&pki.resp["good"])
        },
    );
    let (c, metrics) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
    let at = now();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (c, cert, ca) = (c.clone(), pki.good.clone(), pki.ca.clone());
            tokio::spawn(
                async move { c.check(&cert, &ca, at, at, RevocationPolicy::Require).await },
            )
        })
        .collect();
    for t in tasks {
        let o = t.await.unwrap();
        assert_eq!(o.status, Status::Good, "{o:#?}");
    }
    assert_eq!(server.hits("/ocsp/"), 1);
    assert_eq!(metrics.fetches.with_label_values(&["ocsp", "ok"]).get(), 1);
    let o = check(&c, &pki.good, at).await;
    assert!(o.evidence[0].from_cache);
    assert_eq!(server.hits("/ocsp/"), 1);
    assert_eq!(
        metrics
            .cache_requests
            .with_label_values(&["ocsp", "hit"])
            .get()
            + metrics
                .cache_requests
                .with_label_values(&["ocsp", "miss"])
                .get(),
        501
    );
    assert_eq!(c.cache_stats().await.ocsp_entries, 1);
}

#[tokio::test]
async fn cached_answer_reused_until_next_update() {
    let pki = pki();
    let server = ocsp_server("good-60min").await;
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::OcspOnly));
    let t0 = now();
    let o = check(&c, &pki.good, t0).await;
    assert_eq!(o.status, Status::Good);
    assert!(!o.evidence[0].from_cache);
    let next_update = o.evidence[0].next_update.unwrap();

    let o = check(&c, &pki.good, next_update - time::Duration::minutes(1)).await;
    assert_eq!(o.status, Status::Good);
    assert!(o.evidence[0].from_cache && !o.evidence[0].stale);
    assert_eq!(server.hits("/ocsp/"), 1);

    // Past nextUpdate: fetched again (the responder now has a newer answer).
    server.route("/ocsp/", Route::ok(&pki.resp["good"]));
    let o = check(&c, &pki.good, next_update + time::Duration::seconds(1)).await;
    assert_eq!(o.status, Status::Good, "{o:#?}");
    assert!(!o.evidence[0].from_cache);
    assert!(o.evidence[0].next_update.unwrap() > next_update);
    assert_eq!(server.hits("/ocsp/"), 2);
}

#[tokio::test]
async fn max_ttl_caps_caching() {
    let pki = pki();
    let server = ocsp_server("good").await;
    let mut cfg = config(server.rewrites(), RevocationOrder::OcspOnly);
    cfg.max_ttl = Duration::from_secs(600);
    let (c, _) = checker(cfg);
    let t0 = now();
    check(&c, &pki.good, t0).await;
    check(&c, &pki.good, t0 + time::Duration::minutes(9)).await;
    assert_eq!(server.hits("/ocsp/"), 1);
    let o = check(&c, &pki.good, t0 + time::Duration::minutes(11)).await;
    assert_eq!(o.status, Status::Good);
    assert_eq!(server.hits("/ocsp/"), 2);
}

#[tokio::test]
async fn down_responder_falls_back_to_crl() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route("/crl/ca.crl", Route::ok(&pki.crl["ca"]));
    let mut rewrites = server.rewrites();
    rewrites[0].to = format!("http://127.0.0.1:{}/", dead_port());
    let (c, _) = checker(config(rewrites, RevocationOrder::OcspThenCrl));
    let o = check(&c, &pki.revoked, now()).await;
    revoked_with(&o, "keyCompromise");
    assert_eq!(o.evidence.len(), 2, "{o:#?}");
    assert_eq!(o.evidence[0].source, RevocationSource::Ocsp);
    assert_eq!(o.evidence[0].status, CertStatus::Unknown);
    assert!(o.evidence[0].detail.is_some());
    assert_eq!(o.evidence[1].source, RevocationSource::Crl);
    assert_eq!(o.evidence[1].status, CertStatus::Revoked);
}

#[tokio::test]
async fn timeout_is_respected() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route(
        "/ocsp/",
        Route {
            hang: true,
            ..Route::ok(b"")
        },
    );
    let mut cfg = config(server.rewrites(), RevocationOrder::OcspOnly);
    cfg.fetch.timeout = Duration::from_millis(300);
    let (c, metrics) = checker(cfg);
    let started = Instant::now();
    let o = check(&c, &pki.good, now()).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
        "{took:?}"
    );
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(details(&o), "timeout after 300ms");
    assert_eq!(
        metrics
            .fetches
            .with_label_values(&["ocsp", "timeout"])
            .get(),
        1
    );
}

// -------------------------------------------------------------------- CRL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_fetched_once_for_all_certificates_of_the_issuer() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route(
        "/crl/ca.crl",
        Route {
            delay: Duration::from_millis(100),
            ..Route::ok(&pki.crl["ca"])
        },
    );
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::CrlOnly));
    let at = now();
    let (good, revoked, hold) = tokio::join!(
        check(&c, &pki.good, at),
        check(&c, &pki.revoked, at),
        check(&c, &pki.hold, at)
    );
    assert_eq!(good.status, Status::Good, "{good:#?}");
    let t = revoked_with(&revoked, "keyCompromise");
    assert!(
        (at - t).abs() < time::Duration::minutes(10),
        "revocation date {t}"
    );
    // N7: on hold from the hold time.
    revoked_with(&hold, "certificateHold");
    let ev = &revoked.evidence[0];
    assert_eq!(ev.source, RevocationSource::Crl);
    assert_eq!(
        ev.url.as_deref(),
        Some(format!("http://{}/crl/ca.crl", server.addr).as_str())
    );
    assert!(ev.this_update.is_some() && ev.next_update.is_some());
    assert_eq!(server.hits("/crl/ca.crl"), 1);
    let stats = c.cache_stats().await;
    assert_eq!(stats.crl_entries, 1);
    assert!(stats.crl_bytes > 0);
}

#[tokio::test]
async fn pem_crl_accepted() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route("/crl/ca.crl", Route::ok(&pki.crl["ca-pem"]));
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::CrlOnly));
    let o = check(&c, &pki.revoked, now()).await;
    revoked_with(&o, "keyCompromise");
}

#[tokio::test]
async fn unusable_crls_rejected_with_reason() {
    let pki = pki();
    for (crl, why) in [
        (
            "other",
            "CRL is issued by O=Kyso Test,CN=Kyso Other CA, not by the certificate's issuer",
        ),
        ("delta", "delta CRLs are not supported"),
        (
            "critical",
            "unsupported critical extension 1.3.6.1.4.1.55555.1",
        ),
        (
            "idp",
            "CRL is for distribution point http://crl.kyso.test/elsewhere.crl",
        ),
    ] {
        let server = TestServer::start().await;
        server.route("/crl/ca.crl", Route::ok(&pki.crl[crl]));
        let (c, _) = checker(config(server.rewrites(), RevocationOrder::CrlOnly));
        let o = check(&c, &pki.revoked, now()).await;
        assert_eq!(o.status, Status::Unknown, "{crl}: {o:#?}");
        assert!(details(&o).contains(why), "{crl}: {}", details(&o));
    }
}

#[tokio::test]
async fn stale_crl_served_within_grace_when_server_is_down() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route("/crl/ca.crl", Route::ok(&pki.crl["ca"]));
    let mut cfg = config(server.rewrites(), RevocationOrder::CrlOnly);
    cfg.stale_grace = Duration::from_secs(3600);
    let (c, metrics) = checker(cfg);
    let o = check(&c, &pki.revoked, now()).await;
    revoked_with(&o, "keyCompromise");
    let next_update = o.evidence[0].next_update.unwrap();
    server.stop().await;

    let o = check(&c, &pki.revoked, next_update + time::Duration::minutes(10)).await;
    revoked_with(&o, "keyCompromise");
    let ev = &o.evidence[0];
    assert!(ev.stale && ev.from_cache, "{o:#?}");
    assert!(details(&o).contains("refresh failed"), "{o:#?}");
    assert_eq!(
        metrics
            .cache_requests
            .with_label_values(&["crl", "stale"])
            .get(),
        1
    );

    let o = check(&c, &pki.revoked, next_update + time::Duration::hours(2)).await;
    assert_eq!(o.status, Status::Unknown, "{o:#?}");
    assert!(details(&o).contains("expired"), "{o:#?}");
}

#[tokio::test]
async fn expired_crl_not_served_without_grace() {
    let pki = pki();
    let server = TestServer::start().await;
    server.route("/crl/ca.crl", Route::ok(&pki.crl["ca"]));
    let (c, _) = checker(config(server.rewrites(), RevocationOrder::CrlOnly));
    let t0 = now();
    let o = check(&c, &pki.good, t0).await;
    let next_update = o.evidence[0].next_update.unwrap();
    // The server still hands out the same, now expired, CRL.
    let o = check(&c, &pki.good, next_update + time::Duration::minutes(1)).await;
    assert_eq!(o.status, Status::Unknown, "{o:#?}");
    assert!(details(&o).contains("expired"), "{o:#?}");
    assert_eq!(server.hits("/crl/ca.crl"), 2);
}

// ---------------------------------------------------------------- policy

#[tokio::test]
async fn policy_off_and_certificates_without_sources() {
    let pki = pki();
    // No rewrites: any network access would fail to resolve *.kyso.test.
    let (c, metrics) = checker(config(Vec::new(), RevocationOrder::OcspThenCrl));
    let at = now();
    let o = c
        .check(&pki.good, &pki.ca, at, at, RevocationPolicy::Off)
        .await;
    assert_eq!(o.status, Status::NotChecked);
    assert_eq!(o.evidence[0].status, CertStatus::NotChecked);
    assert_eq!(
        metrics.fetches.with_label_values(&["ocsp", "error"]).get(),
        0
    );

    let o = check(&c, &pki.none, at).await;
    assert_eq!(o.status, Status::Unknown);
    assert_eq!(o.evidence.len(), 1);
    assert_eq!(o.evidence[0].source, RevocationSource::None);
    assert!(details(&o).contains("no OCSP responder"), "{o:#?}");
}

// ---------------------------------------------------------------- fetcher

fn fetcher(cfg: FetchConfig) -> Fetcher {
    Fetcher::new(cfg, PkiMetrics::unregistered().unwrap()).unwrap()
}

#[tokio::test]
async fn fetcher_limits_status_scheme_and_rewrites() {
    let server = TestServer::start().await;
    server.route("/big", Route::ok(&[7u8; 1000]));
    server.route("/small", Route::ok(b"hello"));
    let f = fetcher(FetchConfig {
        max_body_bytes: 100,
        url_rewrites: vec![
            UrlRewrite {
                from: "http://internal.gov.vn/".into(),
                to: format!("http://{}/", server.addr),
            },
            UrlRewrite {
                from: "http://internal.gov.vn/small".into(),
                to: "http://never.used/".into(),
            },
        ],
        ..FetchConfig::default()
    });
    assert_eq!(
        f.get("http://internal.gov.vn/small", FetchSource::Aia)
            .await
            .unwrap(),
        &b"hello"[..]
    );
    assert_eq!(
        f.get("http://internal.gov.vn/big", FetchSource::Crl).await,
        Err(FetchError::TooLarge(100))
    );
    assert_eq!(
        f.get("http://internal.gov.vn/missing", FetchSource::Crl)
            .await,
        Err(FetchError::Status(404))
    );
    assert!(matches!(
        f.get("ldap://ldap.ca.gov.vn/cn=CA?certificateRevocationList", FetchSource::Crl)
            .await,
        Err(FetchError::UnsupportedScheme(s)) if s == "ldap"
    ));
    assert_eq!(f.rewrite("http://elsewhere/x"), "http://elsewhere/x");
}

#[tokio::test]
async fn circuit_breaker_opens_and_recovers() {
    let server = TestServer::start().await;
    server.route(
        "/x",
        Route {
            status: 503,
            ..Route::ok(b"")
        },
    );
    let metrics = PkiMetrics::unregistered().unwrap();
    let f = Fetcher::new(
        FetchConfig {
            breaker: BreakerConfig {
                failure_threshold: 2,
                cool_down: Duration::from_millis(200),
            },
            policy: allow(&server),
            ..FetchConfig::default()
        },
        metrics.clone(),
    )
    .unwrap();
    let url = format!("http://{}/x", server.addr);
    assert_eq!(
        f.get(&url, FetchSource::Ocsp).await,
        Err(FetchError::Status(503))
    );
    assert_eq!(
        f.get(&url, FetchSource::Ocsp).await,
        Err(FetchError::Status(503))
    );
    // Open: refused without touching the network.
    let r = f.get(&url, FetchSource::Ocsp).await;
    assert!(matches!(r, Err(FetchError::CircuitOpen(_))), "{r:?}");
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("circuit open for {} after repeated failures", server.addr)
    );
    assert_eq!(server.hits("/x"), 2);
    assert_eq!(
        metrics
            .fetches
            .with_label_values(&["ocsp", "circuit_open"])
            .get(),
        1
    );

    // After the cool-down one probe goes through; it fails, so open again.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        f.get(&url, FetchSource::Ocsp).await,
        Err(FetchError::Status(503))
    );
    assert!(matches!(
        f.get(&url, FetchSource::Ocsp).await,
        Err(FetchError::CircuitOpen(_))
    ));
    assert_eq!(server.hits("/x"), 3);

    // The host recovers: the next probe closes the circuit.
    server.route("/x", Route::ok(b"ok"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(f.get(&url, FetchSource::Ocsp).await.unwrap(), &b"ok"[..]);
    assert_eq!(f.get(&url, FetchSource::Ocsp).await.unwrap(), &b"ok"[..]);
    assert_eq!(server.hits("/x"), 5);
}

/// A policy that lists exactly the test server's loopback address and port.
fn allow(server: &TestServer) -> FetchPolicy {
    FetchPolicy {
        allowed_hosts: vec![HostPattern::exact("127.0.0.1", Some(server.addr.port()))],
        ..FetchPolicy::default()
    }
}

#[tokio::test]
async fn the_fetch_policy_refuses_unlisted_hosts_loopback_names_and_redirects_elsewhere() {
    let server = TestServer::start().await;
    server.route("/ok", Route::ok(b"ok"));
    server.route(
        "/metadata",
        Route::redirect("http://169.254.169.254/latest/meta-data/"),
    );
    server.route("/private", Route::redirect("http://10.0.0.1/crl"));
    server.route("/home", Route::redirect("/ok"));
    let port = server.addr.port();
    let metrics = PkiMetrics::unregistered().unwrap();
    let with = |policy: FetchPolicy| {
        Fetcher::new(
            FetchConfig {
                policy,
                ..FetchConfig::default()
            },
            metrics.clone(),
        )
        .unwrap()
    };
    let refused = |r: Result<bytes::Bytes, FetchError>| match r {
        Err(FetchError::Policy(p)) => p,
        other => panic!("not refused by the policy: {other:?}"),
    };

    // Nothing listed (the library default): nothing fetched.
    let closed = with(FetchPolicy::default());
    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://10.0.0.1/ca.crt".into(),
        "http://[::1]/x".into(),
    ] {
        let p = refused(closed.get(&url, FetchSource::Aia).await);
        assert!(matches!(p, PolicyRefusal::Host(_)), "{url}: {p}");
    }
    // A listed name that resolves to loopback is refused after resolution.
    let by_name = with(FetchPolicy {
        allowed_hosts: vec!["localhost".parse().unwrap()],
        ..FetchPolicy::default()
    });
    let p = refused(
        by_name
            .get(&format!("http://localhost:{port}/ok"), FetchSource::Aia)
            .await,
    );
    assert!(
        matches!(
            p,
            PolicyRefusal::Address {
                kind: "loopback",
                ..
            }
        ),
        "{p}"
    );
    assert!(
        p.to_string()
            .contains("loopback address the fetch policy refuses")
    );
    // A wildcard does not list an address.
    let wide = with(FetchPolicy {
        allowed_hosts: vec!["*.gov.vn".parse().unwrap()],
        ..FetchPolicy::default()
    });
    let p = refused(wide.get("http://169.254.169.254/", FetchSource::Aia).await);
    assert!(matches!(p, PolicyRefusal::Host(_)), "{p}");
    assert_eq!(server.hits("/ok"), 0, "nothing refused reached the server");

    // Listed exactly: fetched; its redirects stay within the list.
    let listed = with(allow(&server));
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    assert_eq!(
        listed.get(&url("/ok"), FetchSource::Ocsp).await.unwrap(),
        &b"ok"[..]
    );
    assert_eq!(
        listed.get(&url("/home"), FetchSource::Ocsp).await.unwrap(),
        &b"ok"[..]
    );
    for (path, to) in [
        ("/metadata", "169.254.169.254:80"),
        ("/private", "10.0.0.1:80"),
    ] {
        let p = refused(listed.get(&url(path), FetchSource::Crl).await);
        assert_eq!(p, PolicyRefusal::Host(to.into()), "{path}");
    }
    assert_eq!(server.hits("/ok"), 2);
    assert!(metrics.fetches.with_label_values(&["aia", "policy"]).get() >= 6);

    // One request makes a bounded number of fetches; cache hits are free.
    let results = policy::per_request(2, async {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(listed.get(&url("/ok"), FetchSource::Ocsp).await);
        }
        out
    })
    .await;
    assert!(results[0].is_ok() && results[1].is_ok());
    assert_eq!(
        results[2],
        Err(FetchError::Policy(PolicyRefusal::Budget(2)))
    );
    // Outside a request, no budget applies.
    assert!(listed.get(&url("/ok"), FetchSource::Ocsp).await.is_ok());
}

#[tokio::test]
async fn the_breaker_map_stays_bounded_whatever_hosts_fail() {
    let f = Fetcher::new(
        FetchConfig {
            policy: FetchPolicy {
                allowed_hosts: vec!["127.0.0.1".parse().unwrap()],
                max_tracked_hosts: 3,
                ..FetchPolicy::default()
            },
            timeout: Duration::from_millis(500),
            ..FetchConfig::default()
        },
        PkiMetrics::unregistered().unwrap(),
    )
    .unwrap();
    for _ in 0..8 {
        let url = format!("http://127.0.0.1:{}/x", dead_port());
        assert!(f.get(&url, FetchSource::Ocsp).await.is_err());
    }
    assert!(f.tracked_hosts() <= 3, "{}", f.tracked_hosts());
}

#[test]
fn serials_normalised() {
    assert_eq!(&*normalise_serial(&[0, 0x80, 1]), &[0x80, 1]);
    assert_eq!(&*normalise_serial(&[0, 0, 5]), &[5]);
    assert_eq!(&*normalise_serial(&[0]), &[0]);
    assert_eq!(&*normalise_serial(&[0x12, 0]), &[0x12, 0]);
}

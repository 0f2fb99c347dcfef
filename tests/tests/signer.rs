//! End-to-end tests of the signer against real components: SoftHSM2 tokens served by
//! `p11-kit server`, the `kyso-signer` binary loading `p11-kit-client.so`, the registry
//! (in-process, SQLite), the test PKI's `openssl ocsp` responder and CRLs over HTTP for the
//! signer's check of its own certificate (N1). Outputs are verified by `openssl cms -verify`
//! and by kyso's verifier; the audit log by `kyso audit verify`.
//!
//! The signer runs as a child process: the PKCS#11 client library reads its server address
//! from the process environment, which a multi-threaded test cannot set for itself.
//! Keys are made inside the tokens (`kyso signer keygen`), certified through a CSR made by the
//! HSM (`kyso signer csr`) and the test CA (`openssl ca`), as in production.
//! Build the binaries first (`cargo build --workspace --bins`; the test script does).

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;
use kyso_registry::{Config as RegistryConfig, Listeners, serve, system_clock};
use kyso_tests::hsm::{P11KitServer, SoftHsm, workspace_bin};
use kyso_tests::{PkiServers, TestPki};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DOMAIN: &str = "khanhhoa.gov.vn";
const PIN: &str = "246810";
const PERSONAL_SUBJ: &str = "/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/title=Chủ tịch/CN=Nguyễn Văn An/emailAddress=an.nv@khanhhoa.gov.vn";
const ORG_SUBJ: &str =
    "/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/CN=Ủy ban nhân dân tỉnh Khánh Hòa";
const P11_CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

// ------------------------------------------------------------------ the registry, in-process

struct Registry {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<kyso_registry::Result<()>>>,
}

impl Registry {
    async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let config = RegistryConfig {
            database_url: format!("sqlite:{}", dir.path().join("registry.db").display()),
            mail_domain: DOMAIN.into(),
            ..RegistryConfig::default()
        };
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            Listeners {
                grpc,
                metrics: None,
            },
            system_clock(),
            async move {
                let _ = rx.await;
            },
        ));
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        for _ in 0..200 {
            if ep.connect().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Registry {
            addr,
            _dir: dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    /// `kyso registry --server URL <args>` with JSON on stdin; must succeed.
    async fn ok(&self, args: &[&str], input: Value) -> Value {
        let mut cmd = tokio::process::Command::new(workspace_bin("kyso"));
        cmd.arg("registry")
            .arg("--server")
            .arg(self.url())
            .args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.to_string().as_bytes()).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kyso registry {args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or(Value::String(stdout))
    }
}

fn change(reason: &str) -> Value {
    json!({"actor": "subscriber-manager@sotttt.khanhhoa.gov.vn", "reason": reason})
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Who is who in the sample province.
#[derive(Clone, Debug)]
struct Province {
    ubnd: String,
    other_org: String,
    chairman: String,
    clerk: String,
    deputy: String,
}

async fn build_province(r: &Registry, certs: &[(&str, &Path)]) -> Province {
    let sotttt = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "Sở Thông tin và Truyền thông tỉnh Khánh Hòa",
                   "mail_domain": "sotttt.khanhhoa.gov.vn"}),
        )
        .await);
    let ubnd = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "Ủy ban nhân dân tỉnh Khánh Hòa",
                   "managing_agency_id": sotttt, "mail_domain": DOMAIN}),
        )
        .await);
    let chairman_title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Chủ tịch"}),
        )
        .await);
    let clerk_title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Văn thư"}),
        )
        .await);
    let deputy_title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Phó Chủ tịch"}),
        )
        .await);
    let person = |name: &str, mail: &str| {
        json!({"change": change("staff"), "full_name": name, "email": mail,
               "organisation_id": ubnd, "service_end": "2045-01-01T00:00:00Z"})
    };
    let chairman = id(&r
        .ok(
            &["create-person"],
            person("Nguyễn Văn An", "an.nv@khanhhoa.gov.vn"),
        )
        .await);
    let clerk = id(&r
        .ok(
            &["create-person"],
            person("Lê Văn Cường", "cuong.lv@khanhhoa.gov.vn"),
        )
        .await);
    let deputy = id(&r
        .ok(
            &["create-person"],
            person("Trần Thị Bình", "binh.tt@khanhhoa.gov.vn"),
        )
        .await);
    for (p, t) in [
        (&chairman, &chairman_title),
        (&clerk, &clerk_title),
        (&deputy, &deputy_title),
    ] {
        r.ok(
            &["create-appointment"],
            json!({"change": change("appointment"), "person_id": p, "title_id": t,
                   "organisation_id": ubnd, "valid_from": "2020-01-01T00:00:00Z",
                   "decision_ref": "12/QĐ-TTg"}),
        )
        .await;
    }
    r.ok(
        &["create-document-type"],
        json!({"change": change("document types"), "code": "QD", "name": "Quyết định",
               "classification": "NONE"}),
    )
    .await;
    r.ok(
        &["grant-authority"],
        json!({"change": change("working rules"),
               "title_authorities": [
                   {"organisation_id": ubnd, "title_id": chairman_title, "document_type": "QD"}],
               "organisation_profiles": [
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_ISSUE"}]}),
    )
    .await;
    for (kind, path) in certs {
        let body = if *kind == "PERSONAL" {
            json!({"change": change("issued"), "kind": "PERSONAL", "person_id": chairman})
        } else {
            json!({"change": change("issued"), "kind": "ORGANISATION", "organisation_id": ubnd})
        };
        let fp = r
            .ok(
                &["register-certificate", "--cert", path.to_str().unwrap()],
                body,
            )
            .await["certificate"]["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned();
        if *kind == "ORGANISATION" {
            r.ok(
                &["assign-custodian"],
                json!({"change": change("custodian of the seal"), "fingerprint": fp,
                       "person_id": clerk, "decision_ref": "45/QĐ-UBND",
                       "decision_date": "2025-01-01T00:00:00Z"}),
            )
            .await;
        }
    }
    let other_org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "Sở Tài chính tỉnh Khánh Hòa",
                   "managing_agency_id": sotttt, "mail_domain": DOMAIN}),
        )
        .await);
    Province {
        ubnd,
        other_org,
        chairman,
        clerk,
        deputy,
    }
}

// ------------------------------------------------------------------ tokens and keys

/// `kyso signer <args>` with the PKCS#11 client pointed at `server`.
fn kyso_signer(server: &P11KitServer, args: &[&str]) -> kyso_tests::Output {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.arg("signer").args(args);
    let (k, v) = server.client_env();
    cmd.env(k, v);
    kyso_tests::run(&mut cmd, None, Duration::from_secs(120))
}

/// A key generated inside the token and certified by the test CA through an HSM-made CSR.
fn make_key(
    pki: &TestPki,
    server: &P11KitServer,
    pin_file: &Path,
    token: &str,
    name: &str,
    id_hex: &str,
    algorithm: &str,
    subject: &str,
) -> PathBuf {
    let pin = pin_file.to_str().unwrap();
    kyso_signer(
        server,
        &[
            "keygen",
            "--module",
            P11_CLIENT,
            "--token",
            token,
            "--pin-file",
            pin,
            "--label",
            name,
            "--id",
            id_hex,
            "--algorithm",
            algorithm,
        ],
    )
    .expect_success();
    let csr = pki.path(format!("{name}.csr"));
    kyso_signer(
        server,
        &[
            "csr",
            "--module",
            P11_CLIENT,
            "--token",
            token,
            "--pin-file",
            pin,
            "--id",
            id_hex,
            "--subject",
            "CN=kyso",
            "--out",
            csr.to_str().unwrap(),
        ],
    )
    .expect_success();
    pki.issue_from_csr(name, &csr, subject)
}

// ------------------------------------------------------------------ the cluster

struct Cluster {
    pki: TestPki,
    servers: PkiServers,
    _hsm: SoftHsm,
    p11: P11KitServer,
    registry: Registry,
    province: Province,
    dir: tempfile::TempDir,
    signer: Option<Child>,
    addr: SocketAddr,
    extra_config: String,
}

const TOKEN: &str = "kyso-ubnd";

impl Cluster {
    async fn start() -> Cluster {
        Self::start_with("").await
    }

    /// The whole cluster; `extra_config` is appended to the signer's TOML.
    async fn start_with(extra_config: &str) -> Cluster {
        let pki = TestPki::generate();
        let dir = tempfile::tempdir().unwrap();
        let hsm = SoftHsm::new();
        hsm.init_token(TOKEN, PIN, "13579024");
        let p11 = P11KitServer::start(&hsm, TOKEN);
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        let seal = make_key(
            &pki, &p11, &pin_file, TOKEN, "seal", "01", "rsa2048", ORG_SUBJ,
        );
        let personal = make_key(
            &pki,
            &p11,
            &pin_file,
            TOKEN,
            "chairman",
            "02",
            "p256",
            PERSONAL_SUBJ,
        );
        let revoked = make_key(
            &pki, &p11, &pin_file, TOKEN, "old-seal", "03", "rsa2048", ORG_SUBJ,
        );
        pki.revoke("old-seal", "superseded");
        let servers = PkiServers::start(&pki);
        let registry = Registry::start().await;
        let province = build_province(
            &registry,
            &[
                ("ORGANISATION", seal.as_path()),
                ("PERSONAL", personal.as_path()),
                ("ORGANISATION", revoked.as_path()),
            ],
        )
        .await;
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut c = Cluster {
            pki,
            servers,
            _hsm: hsm,
            p11,
            registry,
            province,
            dir,
            signer: None,
            addr,
            extra_config: extra_config.to_owned(),
        };
        c.start_signer().await;
        c
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    fn config(&self) -> String {
        let pki = &self.pki;
        let rewrites: Vec<String> = self
            .servers
            .rewrites()
            .into_iter()
            .map(|(from, to)| format!("{{ from = {from:?}, to = {to:?} }}"))
            .collect();
        format!(
            r#"
listen = "127.0.0.1:0"
allow_anonymous = true
registry = {{ url = "{registry}", timeout_ms = 2000 }}
own_check_ttl_secs = 60

[audit]
path = {audit:?}
seal_key = "seal"
seal_every_records = 50
seal_every_secs = 3600

[trust]
trust_anchors = [{root:?}]
intermediates = [{inter:?}]
[trust.revocation]
policy = "require"
url_rewrites = [{rewrites}]

[[modules]]
name = "hsm"
path = "{P11_CLIENT}"

[[slots]]
name = "hsm-1"
module = "hsm"
token_label = "{TOKEN}"
pin_file = {pin:?}
sessions = 2

[[keys]]
name = "seal"
certificate = {seal:?}
chain = [{ca:?}]
id = "01"
slots = ["hsm-1"]

[[keys]]
name = "chairman"
certificate = {chairman:?}
chain = [{ca:?}]
id = "02"
slots = ["hsm-1"]

[[keys]]
name = "old-seal"
certificate = {old:?}
chain = [{ca:?}]
id = "03"
slots = ["hsm-1"]
{extra}
"#,
            registry = self.registry.url(),
            audit = self.audit_path(),
            root = pki.root_pem(),
            inter = pki.intermediates_pem(),
            rewrites = rewrites.join(", "),
            pin = self.dir.path().join("pin"),
            seal = pki.path("leaves/seal.pem"),
            chairman = pki.path("leaves/chairman.pem"),
            old = pki.path("leaves/old-seal.pem"),
            ca = pki.issuing_ca_pem(),
            extra = self.extra_config,
        )
    }

    async fn start_signer(&mut self) {
        let cfg = self.dir.path().join("signer.toml");
        std::fs::write(&cfg, self.config()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("signer.log")).unwrap();
        let mut cmd = Command::new(workspace_bin("kyso-signer"));
        cmd.arg("--config").arg(&cfg).env("RUST_LOG", "info");
        let (k, v) = self.p11.client_env();
        cmd.env(k, v).stdout(log.try_clone().unwrap()).stderr(log);
        self.signer = Some(cmd.spawn().unwrap());
        // The signer binds port 0 and logs the address: no race for a free port.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.signer_log();
            if let Some(line) = log.lines().find(|l| l.contains("signer serving")) {
                let at = line
                    .find("127.0.0.1:")
                    .expect("address in the serving line");
                let port: String = line[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                self.addr = format!("127.0.0.1:{port}").parse().unwrap();
                return;
            }
            if let Some(Ok(Some(status))) = self.signer.as_mut().map(|c| c.try_wait()) {
                panic!("kyso-signer exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "signer did not start: {log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signer_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("signer.log")).unwrap_or_default()
    }

    fn kill_signer(&mut self) {
        if let Some(mut c) = self.signer.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM: a graceful stop, which seals the log.
    fn stop_signer(&mut self) {
        if let Some(mut c) = self.signer.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    async fn client(&self) -> SignerClient<tonic::transport::Channel> {
        SignerClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    async fn health(&self) -> ServingStatus {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut h = HealthClient::new(channel);
        let r = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: "kyso.signer.v1.Signer".into(),
            })
            .await
            .unwrap()
            .into_inner();
        ServingStatus::try_from(r.status).unwrap()
    }

    async fn wait_health(&self, want: ServingStatus, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.health().await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "health stayed {got:?}, wanted {want:?}: {}",
                self.signer_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kyso_audit_verify(&self, log: &Path) -> kyso_tests::Output {
        let mut cmd = Command::new(workspace_bin("kyso"));
        cmd.args(["audit", "verify", "--json"])
            .arg(log)
            .arg("--certificate")
            .arg(self.pki.path("leaves/seal.pem"));
        kyso_tests::run(&mut cmd, None, Duration::from_secs(60))
    }

    fn today() -> String {
        let t = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    }

    fn ctx(&self, profile: pb::Profile, person: &str) -> pb::SigningContext {
        pb::SigningContext {
            document: Some(pb::DocumentInfo {
                document_type: "QD".into(),
                number_and_symbol: "01/QĐ-UBND".into(),
                issue_date: Self::today(),
                classification: pb::Classification::None as i32,
            }),
            profile: profile as i32,
            mode: pb::SigningMode::Own as i32,
            acting_person_id: person.into(),
            organisation_id: self.province.ubnd.clone(),
        }
    }

    fn cms_request(
        &self,
        key: &str,
        ctx: pb::SigningContext,
        content: &[u8],
    ) -> pb::SignCmsRequest {
        pb::SignCmsRequest {
            key: key.into(),
            context: Some(ctx),
            payload: Some(pb::sign_cms_request::Payload::Content(content.to_vec())),
            detached: false,
            digest_algorithm: "sha256".into(),
            signing_time: None,
        }
    }

    fn approval(&self, content: &[u8]) -> pb::SignCmsRequest {
        self.cms_request(
            "chairman",
            self.ctx(pb::Profile::Approval, &self.province.chairman),
            content,
        )
    }

    fn issue(&self, content: &[u8]) -> pb::SignCmsRequest {
        self.cms_request(
            "seal",
            self.ctx(pb::Profile::Issue, &self.province.clerk),
            content,
        )
    }

    /// `openssl cms -verify` against the test root.
    fn openssl_verify(&self, cms: &[u8], content: Option<&[u8]>) {
        let dir = self.dir.path();
        let sig = dir.join("verify.p7s");
        std::fs::write(&sig, cms).unwrap();
        let mut args: Vec<String> = vec![
            "cms".into(),
            "-verify".into(),
            "-binary".into(),
            "-inform".into(),
            "DER".into(),
            "-in".into(),
            sig.display().to_string(),
            "-CAfile".into(),
            self.pki.anchors_pem().display().to_string(),
            "-purpose".into(),
            "any".into(),
            "-out".into(),
            dir.join("verify.out").display().to_string(),
        ];
        if let Some(c) = content {
            let p = dir.join("verify.content");
            std::fs::write(&p, c).unwrap();
            args.push("-content".into());
            args.push(p.display().to_string());
        }
        let out = self.pki.openssl(&args);
        assert!(out.success(), "openssl cms -verify: {}", out.stderr_str());
    }

    /// kyso's verifier, in-process through the CLI, with the test PKI's servers.
    fn kyso_verify(&self, cms: &[u8], content: Option<&[u8]>) -> Value {
        let dir = self.dir.path();
        let sig = dir.join("kyso-verify.p7s");
        std::fs::write(&sig, cms).unwrap();
        let mut cmd = Command::new(workspace_bin("kyso"));
        cmd.args(["verify", "--json", "--trust-anchors"])
            .arg(self.pki.root_pem())
            .arg("--intermediates")
            .arg(self.pki.intermediates_pem());
        for (from, to) in self.servers.rewrites() {
            cmd.arg("--url-rewrite").arg(format!("{from}={to}"));
        }
        if let Some(c) = content {
            let p = dir.join("kyso-verify.content");
            std::fs::write(&p, c).unwrap();
            cmd.arg("--content").arg(p);
        }
        cmd.arg(&sig).env_remove("KYSO_SERVER");
        let out = kyso_tests::run(&mut cmd, None, Duration::from_secs(60));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("kyso verify: {} {}", out.stdout_str(), out.stderr_str()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_signer();
    }
}

fn status_rules(s: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    s.get_details_error_info()
        .and_then(|i| i.metadata.get("rules").cloned())
        .unwrap_or_default()
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_then_seal_verify_with_openssl_and_kyso_and_the_audit_log_holds_both() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    let doc = "QUYẾT ĐỊNH số 01/QĐ-UBND về việc ban hành quy chế.\n".as_bytes();

    let personal = client.sign_cms(c.approval(doc)).await.unwrap().into_inner();
    let who = personal.signatory.clone().unwrap();
    assert_eq!(who.holder_name, "Nguyễn Văn An");
    assert_eq!(who.title, "Chủ tịch");
    c.openssl_verify(&personal.cms, None);
    let report = c.kyso_verify(&personal.cms, None);
    assert_eq!(report["indication"], json!("TOTAL_PASSED"), "{report}");

    let mut detached = c.issue(doc);
    detached.detached = true;
    let seal = client.sign_cms(detached).await.unwrap().into_inner();
    c.openssl_verify(&seal.cms, Some(doc));
    let report = c.kyso_verify(&seal.cms, Some(doc));
    assert_eq!(report["indication"], json!("TOTAL_PASSED"), "{report}");

    // Digest only: the document never leaves the caller.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, doc);
    let mut by_digest = c.issue(doc);
    by_digest.payload = Some(pb::sign_cms_request::Payload::Digest(
        digest.as_ref().to_vec(),
    ));
    let third = client.sign_cms(by_digest).await.unwrap().into_inner();
    c.openssl_verify(&third.cms, Some(doc));

    // Every signature has its durable record, with the receipt's hash.
    let a = personal.audit.unwrap();
    let b = seal.audit.unwrap();
    assert!(b.sequence > a.sequence);
    let lines = audit_lines(&c.audit_path());
    assert!(
        lines.iter().any(|l| l["hash"] == json!(b.record_hash)),
        "the receipt's record is in the log"
    );
    c.stop_signer();
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(
        out.success(),
        "kyso audit verify: {} {}",
        out.stdout_str(),
        out.stderr_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classified_document_is_refused_and_the_refusal_recorded_A7() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let mut req = c.approval(b"mat");
    if let Some(d) = req.context.as_mut().and_then(|c| c.document.as_mut()) {
        d.classification = pb::Classification::Secret as i32;
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A7");
    let lines = audit_lines(&c.audit_path());
    assert!(
        lines.iter().any(|l| l.to_string().contains("A7")),
        "the refusal is in the audit log: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_A1_A5_W2_and_the_other_organisation_are_refused_with_their_ids() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    // A1: the chairman's personal key ordered by someone else.
    let req = c.cms_request(
        "chairman",
        c.ctx(pb::Profile::Approval, &c.province.deputy),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A1"), "{err:?}");
    // A5: the seal used by someone who is not its custodian.
    let req = c.cms_request(
        "seal",
        c.ctx(pb::Profile::Issue, &c.province.chairman),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("A5"), "{err:?}");
    // W2: the seal on a document dated another day.
    let mut req = c.issue(b"x");
    if let Some(d) = req.context.as_mut().and_then(|c| c.document.as_mut()) {
        d.issue_date = "2020-01-01".into();
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(status_rules(&err).contains("W2"), "{err:?}");
    // The seal of one organisation for another organisation's document.
    let mut req = c.issue(b"x");
    if let Some(ctx) = req.context.as_mut() {
        ctx.organisation_id = c.province.other_org.clone();
    }
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(!status_rules(&err).is_empty(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_invalid_arguments_and_change_nothing() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let before = audit_lines(&c.audit_path()).len();
    // Unknown key.
    let err = client
        .sign_cms(c.cms_request(
            "nope",
            c.ctx(pb::Profile::Approval, &c.province.chairman),
            b"x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // A digest of the wrong length.
    let mut req = c.issue(b"x");
    req.payload = Some(pb::sign_cms_request::Payload::Digest(vec![0; 20]));
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // No context.
    let mut req = c.issue(b"x");
    req.context = None;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // An unknown digest algorithm.
    let mut req = c.issue(b"x");
    req.digest_algorithm = "md5".into();
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // SignDigest with a digest of the wrong length.
    let err = client
        .sign_digest(pb::SignDigestRequest {
            key: "seal".into(),
            context: Some(c.ctx(pb::Profile::Issue, &c.province.clerk)),
            digest_algorithm: "sha256".into(),
            digest: vec![1; 31],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        audit_lines(&c.audit_path()).len(),
        before,
        "nothing recorded for malformed requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_signer_certificate_is_refused_before_signing_N1() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let req = c.cms_request(
        "old-seal",
        c.ctx(pb::Profile::Issue, &c.province.clerk),
        b"x",
    );
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("N1"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_refuses_every_signature_fail_closed() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    client.sign_cms(c.approval(b"ok")).await.unwrap();
    c.registry.stop().await;
    let err = client.sign_cms(c.approval(b"no")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("registry"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_digest_gives_a_signature_openssl_verifies() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let doc = b"a PDF's signed byte ranges";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, doc);
    let r = client
        .sign_digest(pb::SignDigestRequest {
            key: "seal".into(),
            context: Some(c.ctx(pb::Profile::Issue, &c.province.clerk)),
            digest_algorithm: "sha256".into(),
            digest: digest.as_ref().to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.signature_algorithm, "rsa-pkcs1-sha256");
    let dir = c.dir.path();
    std::fs::write(dir.join("doc"), doc).unwrap();
    std::fs::write(dir.join("doc.sig"), &r.signature).unwrap();
    let pubkey = c.pki.openssl([
        "x509",
        "-in",
        c.pki.path("leaves/seal.pem").to_str().unwrap(),
        "-pubkey",
        "-noout",
    ]);
    std::fs::write(dir.join("seal.pub"), &pubkey.stdout).unwrap();
    let out = c.pki.openssl([
        "dgst",
        "-sha256",
        "-verify",
        dir.join("seal.pub").to_str().unwrap(),
        "-signature",
        dir.join("doc.sig").to_str().unwrap(),
        dir.join("doc").to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", out.stderr_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_shows_certificates_and_slot_health() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let keys = client
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["chairman", "old-seal", "seal"]);
    let chairman = &keys[0];
    assert_eq!(chairman.algorithm, "ecdsa-sha256");
    assert!(chairman.servable);
    assert_eq!(chairman.slots.len(), 1);
    assert!(chairman.slots[0].up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p11kit_server_killed_fails_fast_flips_health_and_recovers_without_restart() {
    let mut c = Cluster::start().await;
    let mut client = c.client().await;
    client.sign_cms(c.issue(b"before")).await.unwrap();
    c.wait_health(ServingStatus::Serving, Duration::from_secs(5))
        .await;

    c.p11.kill();
    let started = Instant::now();
    let err = client.sign_cms(c.issue(b"during")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    c.wait_health(ServingStatus::NotServing, Duration::from_secs(10))
        .await;

    c.p11.restart();
    c.wait_health(ServingStatus::Serving, Duration::from_secs(30))
        .await;
    let r = client
        .sign_cms(c.issue(b"after"))
        .await
        .unwrap()
        .into_inner();
    c.openssl_verify(&r.cms, None);
    // The same process signed before and after: no restart.
    assert!(c.signer.as_mut().unwrap().try_wait().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_killed_mid_load_leaves_a_log_that_verifies_and_holds_every_returned_signature() {
    let mut c = Cluster::start().await;
    let url = format!("http://{}", c.addr);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let req = c.issue(format!("load {i}").as_bytes());
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = match SignerClient::connect(url).await {
                Ok(c) => c,
                Err(_) => return Vec::new(),
            };
            let mut got = Vec::new();
            for _ in 0..200 {
                match client.sign_cms(req.clone()).await {
                    Ok(r) => got.push(r.into_inner().audit.unwrap().record_hash),
                    Err(_) => break,
                }
            }
            got
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kill_signer();
    let mut returned = Vec::new();
    for t in tasks {
        returned.extend(t.await.unwrap());
    }
    assert!(
        !returned.is_empty(),
        "some signatures were made before the kill"
    );
    // Restart: the log is reopened (a torn last line, never acknowledged, is cut).
    c.start_signer().await;
    c.stop_signer();
    let lines = audit_lines(&c.audit_path());
    for h in &returned {
        assert!(
            lines.iter().any(|l| l["hash"] == json!(h)),
            "a returned signature has no record: {h}"
        );
    }
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(
        out.success(),
        "kyso audit verify: {} {}",
        out.stdout_str(),
        out.stderr_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_lists_every_problem_and_exits_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
listen = "127.0.0.1:1"
[[modules]]
name = "m"
path = "/nonexistent/module.so"
[[slots]]
name = "s"
module = "other"
token_label = "t"
[[keys]]
name = "k"
certificate = "/nonexistent/cert.pem"
slots = ["missing"]
"#,
    )
    .unwrap();
    let mut cmd = Command::new(workspace_bin("kyso-signer"));
    cmd.arg("--config").arg(&cfg);
    let out = kyso_tests::run(&mut cmd, None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr_str());
    let err = out.stderr_str();
    for needle in [
        "modules[0].path",
        "slots[0].module",
        "slots[0]: give exactly one of pin_file and pin_env",
        "keys[0].slots",
        "keys[0].certificate",
        "trust.trust_anchors",
        "tls",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
}

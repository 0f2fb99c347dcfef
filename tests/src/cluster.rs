//! A whole signing cluster for end-to-end tests: the test PKI with its OCSP and CRL servers,
//! a SoftHSM2 token behind `p11-kit server` holding keys generated inside it and certified
//! through HSM-made CSRs, the registry in-process (SQLite) with a sample province, and the
//! `kyso-signer` binary as a child process (the PKCS#11 client library reads its server
//! address from the process environment, which a multi-threaded test cannot set for itself).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    missing_debug_implementations
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;
use serde_json::{Value, json};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::hsm::{P11KitServer, SoftHsm, workspace_bin};
use crate::{PkiServers, TestPki};

pub use crate::registry::{DOMAIN, Registry};
pub const PIN: &str = "246810";
pub const PERSONAL_SUBJ: &str = "/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/title=Chủ tịch/CN=Nguyễn Văn An/emailAddress=an.nv@khanhhoa.gov.vn";
pub const ORG_SUBJ: &str =
    "/C=VN/L=Khánh Hòa/O=Ủy ban nhân dân tỉnh Khánh Hòa/CN=Ủy ban nhân dân tỉnh Khánh Hòa";
/// Who a province is: its organisations, people and certificate subjects. Two sites on one
/// test PKI are two provinces' clusters under the same root (the exchange between them, N6).
#[derive(Clone, Copy, Debug)]
pub struct Site {
    /// Prefix of its leaves in the test PKI and of its keys' HSM labels ("" for the first).
    pub prefix: &'static str,
    pub province: &'static str,
    pub sotttt: &'static str,
    pub sotttt_domain: &'static str,
    pub ubnd: &'static str,
    pub other_org: &'static str,
    pub domain: &'static str,
    /// The People's Committee's organisation code (Decision 20/2020), if it has one.
    pub code: Option<&'static str>,
    pub org_subj: &'static str,
    pub personal_subj: &'static str,
    /// Chairman, clerk, deputy: (full name, mail).
    pub people: [(&'static str, &'static str); 3],
}

/// The sample province every cluster test uses.
pub const KHANH_HOA: Site = Site {
    prefix: "",
    province: "Khánh Hòa",
    sotttt: "Sở Thông tin và Truyền thông tỉnh Khánh Hòa",
    sotttt_domain: "sotttt.khanhhoa.gov.vn",
    ubnd: "Ủy ban nhân dân tỉnh Khánh Hòa",
    other_org: "Sở Tài chính tỉnh Khánh Hòa",
    domain: DOMAIN,
    code: None,
    org_subj: ORG_SUBJ,
    personal_subj: PERSONAL_SUBJ,
    people: [
        ("Nguyễn Văn An", "an.nv@khanhhoa.gov.vn"),
        ("Lê Văn Cường", "cuong.lv@khanhhoa.gov.vn"),
        ("Trần Thị Bình", "binh.tt@khanhhoa.gov.vn"),
    ],
};

/// A second province, for the exchange between two clusters.
pub const PHU_YEN: Site = Site {
    prefix: "py-",
    province: "Phú Yên",
    sotttt: "Sở Thông tin và Truyền thông tỉnh Phú Yên",
    sotttt_domain: "sotttt.phuyen.gov.vn",
    ubnd: "Ủy ban nhân dân tỉnh Phú Yên",
    other_org: "Sở Tài chính tỉnh Phú Yên",
    domain: "phuyen.gov.vn",
    code: Some("000.00.00.H54"),
    org_subj: "/C=VN/L=Phú Yên/O=Ủy ban nhân dân tỉnh Phú Yên/CN=Ủy ban nhân dân tỉnh Phú Yên",
    personal_subj: "/C=VN/L=Phú Yên/O=Ủy ban nhân dân tỉnh Phú Yên/title=Chủ tịch/CN=Phạm Văn Dũng/emailAddress=dung.pv@phuyen.gov.vn",
    people: [
        ("Phạm Văn Dũng", "dung.pv@phuyen.gov.vn"),
        ("Võ Thị Hoa", "hoa.vt@phuyen.gov.vn"),
        ("Đặng Văn Hải", "hai.dv@phuyen.gov.vn"),
    ],
};

pub const P11_CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

// ------------------------------------------------------------------ the registry, in-process

pub fn change(reason: &str) -> Value {
    json!({"actor": "subscriber-manager@sotttt.khanhhoa.gov.vn", "reason": reason})
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Who is who in the sample province.
/// Who is who in the sample province.
#[derive(Clone, Debug)]
pub struct Province {
    /// The managing agency (I6) of the People's Committee: it files unlock requests (I5).
    pub sotttt: String,
    pub ubnd: String,
    pub other_org: String,
    pub chairman: String,
    pub clerk: String,
    pub deputy: String,
}

pub async fn build_province(r: &Registry, certs: &[(&str, &Path)]) -> Province {
    build_site(r, &KHANH_HOA, certs).await
}

/// The province of `site` in registry `r`, with `certs` registered (kind, PEM file).
pub async fn build_site(r: &Registry, site: &Site, certs: &[(&str, &Path)]) -> Province {
    let sotttt = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": site.sotttt,
                   "mail_domain": site.sotttt_domain}),
        )
        .await);
    let ubnd = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": site.ubnd,
                   "managing_agency_id": sotttt, "mail_domain": site.domain,
                   "code": site.code.unwrap_or_default()}),
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
    let [chairman, clerk, deputy] = site.people;
    let chairman = id(&r
        .ok(&["create-person"], person(chairman.0, chairman.1))
        .await);
    let clerk = id(&r.ok(&["create-person"], person(clerk.0, clerk.1)).await);
    let deputy = id(&r.ok(&["create-person"], person(deputy.0, deputy.1)).await);
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
    // A type nobody was granted: for refusals by title (A3) and by organisation profile (A4).
    r.ok(
        &["create-document-type"],
        json!({"change": change("document types"), "code": "CV", "name": "Công văn",
               "classification": "NONE"}),
    )
    .await;
    r.ok(
        &["grant-authority"],
        json!({"change": change("working rules"),
               "title_authorities": [
                   {"organisation_id": ubnd, "title_id": chairman_title, "document_type": "QD"}],
               "organisation_profiles": [
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_ISSUE"},
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_RECEIVED"},
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_APPENDIX"},
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_EXCHANGE"},
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_STATUS"}]}),
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
            json!({"change": change("set-up"), "name": site.other_org,
                   "managing_agency_id": sotttt, "mail_domain": site.domain}),
        )
        .await);
    Province {
        sotttt,
        ubnd,
        other_org,
        chairman,
        clerk,
        deputy,
    }
}

// ------------------------------------------------------------------ tokens and keys

/// `kyso signer <args>` with the PKCS#11 client pointed at `server`.
pub fn kyso_signer(server: &P11KitServer, args: &[&str]) -> crate::Output {
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.arg("signer").args(args);
    let (k, v) = server.client_env();
    cmd.env(k, v);
    crate::run(&mut cmd, None, Duration::from_secs(120))
}

/// A key generated inside the token and certified by the test CA through an HSM-made CSR.
#[allow(clippy::too_many_arguments)] // one line per fact of the key, at one call site
pub fn make_key(
    pki: &TestPki,
    server: &P11KitServer,
    pin_file: &Path,
    token: &str,
    name: &str,
    id_hex: &str,
    algorithm: &str,
    subject: &str,
) -> PathBuf {
    make_key_as(
        pki,
        server,
        (pin_file, token),
        (name, name),
        id_hex,
        algorithm,
        subject,
    )
}

/// [`make_key`] with an HSM label (`label`) other than the leaf's name in the PKI (`leaf`):
/// two provinces' keys on one PKI, each token with the labels its signer's config names.
pub fn make_key_as(
    pki: &TestPki,
    server: &P11KitServer,
    (pin_file, token): (&Path, &str),
    (label, name): (&str, &str),
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
            label,
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

/// `kyso signer enroll-otp` for the personal key with CKA_ID `id_hex`: the otpauth URI.
pub fn enroll_otp(server: &P11KitServer, pin_file: &Path, token: &str, id_hex: &str) -> String {
    let out = kyso_signer(
        server,
        &[
            "enroll-otp",
            "--module",
            P11_CLIENT,
            "--token",
            token,
            "--pin-file",
            pin_file.to_str().unwrap(),
            "--id",
            id_hex,
            "--account",
            "chairman",
            "--no-qr",
        ],
    )
    .expect_success();
    out.stdout_str()
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("no otpauth URI: {}", out.stdout_str()))
        .to_owned()
}

/// The TOTP code (RFC 6238: HMAC-SHA-1, 30 s, 6 digits) of the otpauth `uri` for time step
/// `step`, computed by python3's hmac: independent of the signer's code.
pub fn totp_code(uri: &str, step: u64) -> String {
    let script = r#"
import base64, hmac, hashlib, struct, sys, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
s = q["secret"][0]
key = base64.b32decode(s + "=" * (-len(s) % 8))
mac = hmac.new(key, struct.pack(">Q", int(sys.argv[2])), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(uri).arg(step.to_string());
    let out = crate::run(&mut cmd, None, Duration::from_secs(30)).expect_success();
    out.stdout_str().trim().to_owned()
}

/// The current TOTP time step.
pub fn totp_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

// ------------------------------------------------------------------ the cluster

pub struct Cluster {
    /// Shared by the clusters of several provinces under one root (`start_neighbour`).
    pub pki: Arc<TestPki>,
    pub servers: Arc<PkiServers>,
    /// Which province this cluster serves.
    pub site: Site,
    pub hsm: SoftHsm,
    pub p11: P11KitServer,
    pub registry: Registry,
    pub province: Province,
    pub dir: tempfile::TempDir,
    pub signer: Option<Child>,
    pub addr: SocketAddr,
    pub extra_config: String,
    /// Where the audit log and the document store live (default: `dir`); a test may move
    /// them (onto a small volume) before restarting the signer.
    pub data_dir: Option<PathBuf>,
    /// Extra environment of the signer process (a failpoint).
    pub signer_env: Vec<(String, String)>,
    /// The signer's config lets the anonymous test caller sign with the Chairman's key on
    /// behalf of the organisation (no one-time code, marked `on_behalf` in the audit log);
    /// false: every personal signature needs the holder's activation token (A1).
    pub on_behalf: bool,
    /// The Chairman's one-time-code enrolment (`kyso signer enroll-otp`): the otpauth URI.
    pub chairman_otp: String,
}

pub const TOKEN: &str = "kyso-ubnd";
/// The audit-seal key's HSM label (and certificate name under `leaves/`).
pub const AUDIT_SEAL: &str = "audit-seal";
/// The signer's audit log id in the registry's anchors.
pub const LOG_ID: &str = "test-signer";

impl Cluster {
    pub async fn start() -> Cluster {
        Self::start_with("").await
    }

    /// The whole cluster; `extra_config` is appended to the signer's TOML.
    pub async fn start_with(extra_config: &str) -> Cluster {
        Self::start_full(extra_config, None).await
    }

    /// The whole cluster with the registry over `database_url` (a PostgreSQL cluster the
    /// test can take away).
    pub async fn start_with_registry_database(database_url: &str) -> Cluster {
        Self::start_full("", Some(database_url)).await
    }

    /// The whole cluster where every personal signature needs the holder's consent (A1).
    pub async fn start_consent(extra_config: &str) -> Cluster {
        Self::start_inner(extra_config, None, false).await
    }

    async fn start_full(extra_config: &str, registry_database: Option<&str>) -> Cluster {
        Self::start_inner(extra_config, registry_database, true).await
    }

    async fn start_inner(
        extra_config: &str,
        registry_database: Option<&str>,
        on_behalf: bool,
    ) -> Cluster {
        Self::start_site(KHANH_HOA, None, extra_config, registry_database, on_behalf).await
    }

    /// The cluster of province `site` on a PKI of its own.
    pub async fn start_province(site: Site) -> Cluster {
        Self::start_site(site, None, "", None, true).await
    }

    /// The cluster of another province (`site`: its own registry, HSM and signer) under this
    /// cluster's PKI: one trust root, two provinces (the exchange between them, N6).
    pub async fn start_neighbour(&self, site: Site, extra_config: &str) -> Cluster {
        let shared = (Arc::clone(&self.pki), Arc::clone(&self.servers));
        Self::start_site(site, Some(shared), extra_config, None, true).await
    }

    async fn start_site(
        site: Site,
        shared: Option<(Arc<TestPki>, Arc<PkiServers>)>,
        extra_config: &str,
        registry_database: Option<&str>,
        on_behalf: bool,
    ) -> Cluster {
        let (pki, servers) = match shared {
            Some((pki, servers)) => (pki, Some(servers)),
            None => (Arc::new(TestPki::generate()), None),
        };
        let leaf = |name: &str| format!("{}{name}", site.prefix);
        let dir = tempfile::tempdir().unwrap();
        let hsm = SoftHsm::new();
        hsm.init_token(TOKEN, PIN, "13579024");
        let p11 = P11KitServer::start(&hsm, TOKEN);
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        let seal = make_key_as(
            &pki,
            &p11,
            (&pin_file, TOKEN),
            ("seal", &leaf("seal")),
            "01",
            "rsa2048",
            site.org_subj,
        );
        let personal = make_key_as(
            &pki,
            &p11,
            (&pin_file, TOKEN),
            ("chairman", &leaf("chairman")),
            "02",
            "p256",
            site.personal_subj,
        );
        let chairman_otp = enroll_otp(&p11, &pin_file, TOKEN, "02");
        let revoked = make_key_as(
            &pki,
            &p11,
            (&pin_file, TOKEN),
            ("old-seal", &leaf("old-seal")),
            "03",
            "rsa2048",
            site.org_subj,
        );
        pki.revoke(&leaf("old-seal"), "superseded");
        // The audit-seal key: its own HSM object, which no caller can name.
        make_key_as(
            &pki,
            &p11,
            (&pin_file, TOKEN),
            (AUDIT_SEAL, &leaf(AUDIT_SEAL)),
            "a5",
            "p256",
            "/C=VN/O=kyso test/CN=kyso audit seal",
        );
        let servers = match servers {
            Some(s) => {
                // The responder learns of the new leaves (and the revocation).
                s.ocsp.refresh();
                s
            }
            None => Arc::new(PkiServers::start(&pki)),
        };
        let registry = match registry_database {
            Some(url) => Registry::start_with(url).await,
            None => Registry::start_for_domain(site.domain).await,
        };
        let province = build_site(
            &registry,
            &site,
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
            site,
            hsm,
            p11,
            registry,
            province,
            dir,
            signer: None,
            addr,
            extra_config: extra_config.to_owned(),
            data_dir: None,
            signer_env: Vec::new(),
            on_behalf,
            chairman_otp,
        };
        c.start_signer().await;
        c
    }

    fn data(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.dir.path().to_path_buf())
    }

    pub fn audit_path(&self) -> PathBuf {
        self.data().join("audit.log")
    }

    /// The signer's document store (`documents_dir`).
    pub fn documents_dir(&self) -> PathBuf {
        self.data().join("documents")
    }

    /// The certificate of this site's key `name` ("seal", "chairman", "old-seal", the audit
    /// seal).
    pub fn leaf_pem(&self, name: &str) -> PathBuf {
        self.pki
            .path(format!("leaves/{}{name}.pem", self.site.prefix))
    }

    pub fn config(&self) -> String {
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
metrics_listen = "127.0.0.1:0"
allow_anonymous = true
anonymous_sign_on_behalf = [{on_behalf}]
registry = {{ url = "{registry}", timeout_ms = 2000 }}
own_check_ttl_secs = 60
documents_dir = {documents:?}

[audit]
path = {audit:?}
log_id = "{LOG_ID}"
anchor_startup_wait_secs = 5
seal_every_records = 50
seal_every_secs = 3600
report_usage_every_secs = 1

[audit.seal]
certificate = {audit_seal:?}
label = "{AUDIT_SEAL}"
slots = ["hsm-1"]

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
            documents = self.documents_dir(),
            root = pki.root_pem(),
            inter = pki.intermediates_pem(),
            rewrites = rewrites.join(", "),
            pin = self.dir.path().join("pin"),
            seal = self.leaf_pem("seal"),
            chairman = self.leaf_pem("chairman"),
            old = self.leaf_pem("old-seal"),
            audit_seal = self.leaf_pem(AUDIT_SEAL),
            ca = pki.issuing_ca_pem(),
            extra = self.extra_config,
            on_behalf = if self.on_behalf {
                format!("{:?}", self.province.ubnd)
            } else {
                String::new()
            },
        )
    }

    pub async fn start_signer(&mut self) {
        let cfg = self.dir.path().join("signer.toml");
        std::fs::write(&cfg, self.config()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("signer.log")).unwrap();
        let mut cmd = Command::new(workspace_bin("kyso-signer"));
        cmd.arg("--config").arg(&cfg).env("RUST_LOG", "info");
        let (k, v) = self.p11.client_env();
        cmd.env(k, v).stdout(log.try_clone().unwrap()).stderr(log);
        cmd.envs(self.signer_env.iter().map(|(k, v)| (k, v)));
        self.signer = Some(cmd.spawn().unwrap());
        // The signer binds port 0 and logs the address: no race for a free port.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.signer_log();
            if let Some(addr) = serving_addr(&log) {
                self.addr = addr;
                return;
            }
            if let Some(Ok(Some(status))) = self.signer.as_mut().map(|c| c.try_wait()) {
                panic!("kyso-signer exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "signer did not start: {log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The signer's `/metrics` address (port 0, read from its log).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        logged_addr(&self.signer_log(), "metrics serving")
    }

    pub fn signer_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("signer.log")).unwrap_or_default()
    }

    pub fn kill_signer(&mut self) {
        if let Some(mut c) = self.signer.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the signer to exit by itself (a failpoint aborted it) and returns how.
    pub fn wait_signer_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.signer.as_mut().expect("the signer was started");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.signer = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.signer = None;
                panic!(
                    "the signer did not exit within {within:?}: {}",
                    self.signer_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: a graceful stop, which seals the log.
    pub fn stop_signer(&mut self) {
        if let Some(mut c) = self.signer.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    pub async fn client(&self) -> SignerClient<tonic::transport::Channel> {
        SignerClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub async fn health(&self) -> ServingStatus {
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

    pub async fn wait_health(&self, want: ServingStatus, within: Duration) {
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

    pub fn kyso_audit_verify(&self, log: &Path) -> crate::Output {
        let mut cmd = Command::new(workspace_bin("kyso"));
        cmd.args(["audit", "verify", "--json"])
            .arg(log)
            .arg("--certificate")
            .arg(self.leaf_pem(AUDIT_SEAL));
        crate::run(&mut cmd, None, Duration::from_secs(60))
    }

    /// Enters a document in `organisation`'s register (W1, W3) through `kyso registry`: the
    /// precondition of a COPY (P3, by `sha256`, hex) or an APPENDIX (D5, by `number`).
    pub async fn register_document(
        &self,
        organisation: &str,
        direction: &str,
        number: &str,
        sha256: &str,
    ) -> Value {
        self.registry
            .ok(
                &["register-document"],
                json!({"change": change("văn thư vào sổ"), "organisation_id": organisation,
                       "direction": direction, "document_type": "QD",
                       "number_and_symbol": number, "sha256": sha256,
                       "counterparty": "Sở Tài chính tỉnh Khánh Hòa"}),
            )
            .await
    }

    pub fn today() -> String {
        let t = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    }

    pub fn ctx(&self, profile: pb::Profile, person: &str) -> pb::SigningContext {
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

    pub fn cms_request(
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
            approval: Vec::new(),
            competent_person_id: String::new(),
            activation_token: String::new(),
            level: 0,
        }
    }

    pub fn approval(&self, content: &[u8]) -> pb::SignCmsRequest {
        self.cms_request(
            "chairman",
            self.ctx(pb::Profile::Approval, &self.province.chairman),
            content,
        )
    }

    pub fn issue(&self, content: &[u8]) -> pb::SignCmsRequest {
        self.cms_request(
            "seal",
            self.ctx(pb::Profile::Issue, &self.province.clerk),
            content,
        )
    }

    /// An ISSUE request carrying the Chairman's approval of the same content (A6), signed
    /// through the signer first.
    pub async fn approved_issue(&self, content: &[u8]) -> pb::SignCmsRequest {
        let mut client = self.client().await;
        let approval = client
            .sign_cms(self.approval(content))
            .await
            .expect("the Chairman's approval")
            .into_inner()
            .cms;
        let mut req = self.issue(content);
        req.approval = approval;
        req
    }

    /// `openssl cms -verify` against the test root.
    pub fn openssl_verify(&self, cms: &[u8], content: Option<&[u8]>) {
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
    pub fn kyso_verify(&self, cms: &[u8], content: Option<&[u8]>) -> Value {
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
        let out = crate::run(&mut cmd, None, Duration::from_secs(60));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("kyso verify: {} {}", out.stdout_str(), out.stderr_str()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_signer();
    }
}

/// The address a signer reports in its log once it serves ("signer serving … 127.0.0.1:PORT"):
/// it binds port 0, so there is no race for a free port.
pub fn serving_addr(log: &str) -> Option<SocketAddr> {
    logged_addr(log, "signer serving")
}

/// The loopback address on the first log line holding `marker` ("… 127.0.0.1:PORT").
fn logged_addr(log: &str, marker: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains(marker))?;
    let at = line.find("127.0.0.1:")?;
    let port: String = line[at + 10..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    format!("127.0.0.1:{port}").parse().ok()
}

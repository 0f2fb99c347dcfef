//! A real RFC 3161 timestamp authority on loopback: `openssl ts -reply` behind a small HTTP
//! server, with its own chain (a root and a TSA certificate whose extendedKeyUsage is critical
//! id-kp-timeStamping, RFC 3161 §2.3). The server can be made slow or dead through the shared
//! front ([`TestTsa::set_delay`], [`TestTsa::set_down_mode`]).
//!
//! `openssl ts -reply` refuses to sign with a certificate that is not for timestamping, so
//! tokens of such a certificate are made by re-signing a real token's TSTInfo with kyso's CAdES
//! builder ([`TestTsa::resign`]): the same content, an ESS signing-certificate-v2 of the other
//! certificate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_pki::cms_build::{CadesRequest, Content, SigningAlgorithm, prepare};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::oid::TST_INFO;

use crate::hostile::{ca_certificate, ec_key, issue};
use crate::http::{DownMode, Front, Handler};
use crate::process::{self, COMMAND_TIMEOUT, Output};

/// The policy the test TSA stamps under by default.
pub const TSA_POLICY: &str = "1.3.6.1.4.1.59420.3161.1";
/// A second policy the test TSA accepts when asked.
pub const TSA_OTHER_POLICY: &str = "1.3.6.1.4.1.59420.3161.2";
/// The test TSA's subject.
pub const TSA_SUBJECT: &str = "/C=VN/O=Kyso Test TSA/CN=Kyso Test Timestamping";

/// Which certificate signs a re-signed token ([`TestTsa::resign`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsaSigner {
    /// The TSA's own certificate (critical EKU timeStamping): a control.
    Tsa,
    /// A certificate of the same root with keyUsage digitalSignature and no EKU.
    NoEku,
    /// A certificate of the same root with a non-critical EKU timeStamping.
    NonCriticalEku,
    /// A second certificate of the TSA's key (serial 5, critical EKU timeStamping); the
    /// TSA's own certificate is embedded beside it.
    Twin,
}

/// A running test TSA; stops on drop.
#[derive(Debug)]
pub struct TestTsa {
    front: Front,
    dir: tempfile::TempDir,
}

impl TestTsa {
    /// Generates the chain and starts serving `POST /` (`application/timestamp-query`).
    pub fn start() -> TestTsa {
        let dir = tempfile::tempdir().expect("temporary directory for the TSA");
        let d = dir.path();
        ec_key(&d.join("root.key"));
        ca_certificate(
            &d.join("root.key"),
            "/C=VN/O=Kyso Test TSA/CN=Kyso Test TSA Root",
            1,
            &d.join("root.pem"),
        );
        let ca = (d.join("root.pem"), d.join("root.key"));
        for (name, subject, serial, ext) in [
            (
                "tsa",
                TSA_SUBJECT,
                2,
                "extendedKeyUsage=critical,timeStamping\n",
            ),
            ("noeku", "/C=VN/O=Kyso Test TSA/CN=Kyso Test No EKU", 3, ""),
            (
                "noncritical",
                "/C=VN/O=Kyso Test TSA/CN=Kyso Test Non-critical EKU",
                4,
                "extendedKeyUsage=timeStamping\n",
            ),
        ] {
            let ext_file = d.join(format!("{name}.ext"));
            std::fs::write(
                &ext_file,
                format!(
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{ext}"
                ),
            )
            .expect("extension file");
            ec_key(&d.join(format!("{name}.key")));
            issue(
                &d.join(format!("{name}.key")),
                subject,
                (&ca.0, &ca.1),
                serial,
                Some(&ext_file),
                &d.join(format!("{name}.pem")),
            );
        }
        // The TSA's key and name in a second certificate (serial 5): a token whose ESS names one
        // certificate while its signer identifier names the other.
        std::fs::copy(d.join("tsa.key"), d.join("twin.key")).expect("twin key");
        issue(
            &d.join("twin.key"),
            TSA_SUBJECT,
            (&ca.0, &ca.1),
            5,
            Some(&d.join("tsa.ext")),
            &d.join("twin.pem"),
        );
        // One configuration and serial file per worker, the serials in disjoint ranges
        // (worker k counts from k * 2^32), so the workers stamp in parallel as a real TSA does.
        for k in 0..TSA_WORKERS {
            std::fs::write(
                d.join(format!("tsaserial-{k}")),
                format!("{:016x}\n", (k << 32) | 1),
            )
            .expect("serial file");
            std::fs::write(d.join(format!("tsa-{k}.cnf")), config(d, k))
                .expect("TSA configuration");
        }
        let front = Front::start(Handler::Tsa {
            dir: d.to_path_buf(),
            idle: std::sync::Mutex::new((0..TSA_WORKERS).collect()),
            ready: tokio::sync::Semaphore::new(TSA_WORKERS as usize),
            clock: None,
        });
        TestTsa { front, dir }
    }

    /// `http://127.0.0.1:PORT/` — where to POST queries.
    pub fn url(&self) -> String {
        format!("{}/", self.front.url())
    }

    /// The listening address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.front.addr()
    }

    /// The directory with `root.pem`, `tsa.pem`, `noeku.pem` and their keys.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The root certificate (PEM file).
    pub fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The TSA certificate (PEM file).
    pub fn tsa_pem(&self) -> PathBuf {
        self.dir.path().join("tsa.pem")
    }

    /// A certificate (DER) of the TSA's directory: `root`, `tsa`, `noeku`, `noncritical`, `twin`.
    pub fn cert_der(&self, name: &str) -> Vec<u8> {
        let pem = std::fs::read(self.dir.path().join(format!("{name}.pem"))).expect("cert");
        kyso_pki::cert::Cert::parse_many(&pem)
            .expect("the certificate parses")
            .remove(0)
            .der()
            .to_vec()
    }

    /// Requests received (POSTs and others), whatever they were answered.
    pub fn requests(&self) -> usize {
        self.front.total()
    }

    /// Delays every answer (the slow TSA).
    pub fn set_delay(&self, delay: Duration) {
        self.front.set_delay(delay);
    }

    /// Takes the TSA down (`true`) with the mode of [`TestTsa::set_down_mode`], or back up.
    pub fn set_down(&self, down: bool) {
        self.front.set_down(down);
    }

    /// How the TSA behaves when down (refused connections, 503, ...).
    pub fn set_down_mode(&self, mode: DownMode) {
        self.front.set_down_mode(mode);
    }

    /// `openssl ts -reply` on a query, directly (not through HTTP).
    pub fn reply(&self, query: &[u8]) -> Vec<u8> {
        reply(self.dir.path(), 0, query, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `openssl ts -verify` of a token (DER ContentInfo) against the query that asked for it,
    /// trusting the TSA's root.
    pub fn openssl_verify_token(&self, token: &[u8], query: &[u8]) -> Output {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let (t, q) = (tmp.path().join("token.der"), tmp.path().join("query.tsq"));
        std::fs::write(&t, token).expect("token");
        std::fs::write(&q, query).expect("query");
        process::run(
            Command::new("openssl").args([
                "ts".as_ref(),
                "-verify".as_ref(),
                "-token_in".as_ref(),
                "-in".as_ref(),
                t.as_os_str(),
                "-queryfile".as_ref(),
                q.as_os_str(),
                "-CAfile".as_ref(),
                self.root_pem().as_os_str(),
            ]),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// `openssl ts -verify` of a token against a SHA-256 `digest` of the datum (`-digest`: a
    /// CAdES signature timestamp is over the signature value), trusting the TSA's root. The
    /// nonce is not checked (it is the requester's).
    pub fn openssl_verify_token_digest(&self, token: &[u8], digest: &[u8]) -> Output {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let t = tmp.path().join("token.der");
        std::fs::write(&t, token).expect("token");
        process::run(
            Command::new("openssl")
                .args(["ts", "-verify", "-token_in", "-in"])
                .arg(&t)
                .args(["-digest", &hex::encode(digest), "-CAfile"])
                .arg(self.root_pem()),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// The TSTInfo of `token` signed again, as a token, by `signer` (ECDSA SHA-256, ESS
    /// signing-certificate-v2 of that certificate, no other certificate embedded but the root).
    pub fn resign(&self, token: &[u8], signer: TsaSigner) -> Vec<u8> {
        let name = match signer {
            TsaSigner::Tsa => "tsa",
            TsaSigner::NoEku => "noeku",
            TsaSigner::NonCriticalEku => "noncritical",
            TsaSigner::Twin => "twin",
        };
        let msg = kyso_pki::cms::parse(token).expect("the token parses");
        let tst_info = msg.content().expect("the token encapsulates its TSTInfo");
        let cert = self.cert_der(name);
        let mut chain = vec![self.cert_der("root")];
        if signer == TsaSigner::Twin {
            chain.push(self.cert_der("tsa"));
        }
        let prepared = prepare(CadesRequest {
            digest_algorithm: DigestAlgorithm::Sha256,
            content: Content::Attached(tst_info),
            signer_certificate: &cert,
            chain: &chain,
            signing_time: None,
            signature_algorithm: SigningAlgorithm::Ecdsa(DigestAlgorithm::Sha256),
            content_type: Some(TST_INFO),
            commitment_type: None,
        })
        .expect("prepare the re-signed token");
        let key = self.dir.path().join(format!("{name}.key"));
        let sig = process::run(
            Command::new("openssl")
                .args(["pkeyutl", "-sign", "-inkey"])
                .arg(&key)
                .args(["-pkeyopt", "digest:sha256"]),
            Some(&prepared.digest_to_sign()),
            COMMAND_TIMEOUT,
        )
        .expect_success()
        .stdout;
        prepared.finish(&sig).expect("finish the re-signed token")
    }
}

/// How many `openssl ts -reply` run at once: the TSA's capacity is not one process at a time
/// (a benchmark against it measures the signer, not a queue in front of one process).
pub(crate) const TSA_WORKERS: u64 = 4;

/// The `openssl ts` configuration of worker `k`: SHA-256 ESSCertIDv2, accuracy 1.5001 s,
/// ordering, the tsa name, the root in the token when certReq is set.
fn config(d: &Path, k: u64) -> String {
    format!(
        "[ tsa ]\ndefault_tsa = tsa_config\n\n[ tsa_config ]\ndir = {dir}\n\
         serial = $dir/tsaserial-{k}\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n\
         certs = $dir/root.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
         default_policy = {TSA_POLICY}\nother_policies = {TSA_OTHER_POLICY}\n\
         digests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500, microsecs:100\n\
         clock_precision_digits = 0\nordering = yes\ntsa_name = yes\ness_cert_id_chain = no\n\
         ess_cert_id_alg = sha256\n",
        dir = d.display()
    )
}

/// One `openssl ts -reply` run by worker `k` (one query at a time per worker: its serial file),
/// under `faketime -f CLOCK` when `clock` is given (a TSA stamping in the past).
pub(crate) fn reply(
    dir: &Path,
    k: u64,
    query: &[u8],
    clock: Option<&str>,
) -> Result<Vec<u8>, String> {
    let tmp = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
    let (q, r) = (tmp.path().join("q.tsq"), tmp.path().join("r.tsr"));
    std::fs::write(&q, query).map_err(|e| e.to_string())?;
    let mut cmd = match clock {
        Some(c) => {
            let mut cmd = Command::new("faketime");
            cmd.args(["-f", c, "openssl"]);
            cmd
        }
        None => Command::new("openssl"),
    };
    let out = process::run(
        cmd.current_dir(dir)
            .args(["ts", "-reply", "-config"])
            .arg(format!("tsa-{k}.cnf"))
            .arg("-queryfile")
            .arg(&q)
            .arg("-out")
            .arg(&r),
        None,
        COMMAND_TIMEOUT,
    );
    if !out.success() {
        return Err(format!(
            "openssl ts -reply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::read(&r).map_err(|e| format!("the reply file: {e}"))
}

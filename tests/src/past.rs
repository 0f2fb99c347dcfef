//! The past, made with a real clock moved back: `openssl` run under `faketime` (libfaketime)
//! and [`PastTsa`], a timestamp authority of its own chain whose certificates were issued and
//! whose tokens are stamped at a chosen moment in the past. Signatures "made years ago" are
//! made this way, never taken from checked-in files.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::TimeStampReq;

use crate::http::{Front, Handler};
use crate::process;
use crate::tsa::TSA_POLICY;

/// `openssl ARGS` run in `dir` with the clock set `offset` away (libfaketime's format, e.g.
/// `-100d`). Panics with the command's output when it fails.
pub fn openssl_at(offset: &str, dir: &Path, args: &[&OsStr]) {
    let mut cmd = Command::new("faketime");
    cmd.current_dir(dir)
        .args(["-f", offset, "openssl"])
        .args(args);
    let out = process::run(&mut cmd, None, Duration::from_secs(60));
    assert!(out.success(), "faketime {offset} openssl {args:?}: {out}");
}

/// A `&OsStr` from a `&str`, for [`openssl_at`]'s arguments.
pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A TSA whose chain was issued in the past, stamping with the clock moved back.
#[derive(Debug)]
pub struct PastTsa {
    dir: tempfile::TempDir,
}

impl PastTsa {
    /// A chain made 200 days ago, root and TSA certificate valid ten years.
    pub fn new() -> PastTsa {
        Self::issued("-200d", 3650)
    }

    /// A chain made with the clock at `issued` (e.g. `-400d`), the root valid ten years
    /// from then and the TSA certificate `tsa_days` days (a short one has expired by now).
    pub fn issued(issued: &str, tsa_days: u32) -> PastTsa {
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path();
        for key in ["root.key", "tsa.key"] {
            openssl_at(
                issued,
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    key,
                ]
                .map(os),
            );
        }
        openssl_at(
            issued,
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                "/C=VN/O=Kyso Test Past TSA/CN=Kyso Past TSA Root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "root.pem",
            ]
            .map(os),
        );
        std::fs::write(
            d.join("tsa.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
             extendedKeyUsage=critical,timeStamping\n",
        )
        .expect("extensions");
        openssl_at(
            issued,
            d,
            &[
                "req",
                "-new",
                "-key",
                "tsa.key",
                "-subj",
                "/C=VN/O=Kyso Test Past TSA/CN=Kyso Past Timestamping",
                "-out",
                "tsa.csr",
            ]
            .map(os),
        );
        let days = tsa_days.to_string();
        openssl_at(
            issued,
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "2",
                "-days",
                &days,
                "-extfile",
                "tsa.ext",
                "-out",
                "tsa.pem",
            ]
            .map(os),
        );
        std::fs::write(d.join("tsaserial"), "01\n").expect("serial");
        // Named as the HTTP TSA's worker 0 reads it (`serve`), one serial file for both ways.
        std::fs::write(
            d.join("tsa-0.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n\n[ tsa_config ]\ndir = {}\n\
                 serial = $dir/tsaserial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n\
                 certs = $dir/root.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
                 default_policy = {TSA_POLICY}\ndigests = sha256\naccuracy = secs:1\n\
                 ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                d.display(),
            ),
        )
        .expect("TSA configuration");
        PastTsa { dir }
    }

    /// The chain's root (PEM), to trust.
    pub fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The TSA's certificate (PEM).
    pub fn tsa_pem(&self) -> PathBuf {
        self.dir.path().join("tsa.pem")
    }

    /// A token over the SHA-256 of `datum`, stamped with the clock `offset` away.
    pub fn token_over(&self, offset: &str, datum: &[u8]) -> Vec<u8> {
        let digest = DigestAlgorithm::Sha256.digest(datum);
        self.token_for(offset, DigestAlgorithm::Sha256, &digest)
    }

    /// A token over `digest` (made with `algorithm`), stamped with the clock `offset` away.
    pub fn token_for(&self, offset: &str, algorithm: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
        let d = self.dir.path();
        let query = TimeStampReq::new(algorithm, digest, &[9, 9], None)
            .expect("request")
            .to_der_bytes()
            .expect("DER");
        std::fs::write(d.join("q.tsq"), query).expect("query");
        openssl_at(
            offset,
            d,
            &[
                "ts",
                "-reply",
                "-config",
                "tsa-0.cnf",
                "-queryfile",
                "q.tsq",
                "-token_out",
                "-out",
                "token.der",
            ]
            .map(os),
        );
        std::fs::read(d.join("token.der")).expect("token")
    }
}

/// A [`PastTsa`] answering RFC 3161 queries over HTTP (`POST /`) with the clock moved back;
/// stops on drop.
#[derive(Debug)]
pub struct PastTsaServer {
    front: Front,
}

impl PastTsaServer {
    /// `http://127.0.0.1:PORT/`: where to POST queries.
    pub fn url(&self) -> String {
        format!("{}/", self.front.url())
    }
}

impl PastTsa {
    /// Serves this TSA over HTTP, every token stamped with the clock `offset` away (for a
    /// peer, itself run under `faketime`, that asks a TSA by URL).
    pub fn serve(&self, offset: &str) -> PastTsaServer {
        PastTsaServer {
            front: Front::start(Handler::Tsa {
                dir: self.dir.path().to_path_buf(),
                // One worker: its configuration is this TSA's (`tsa-0.cnf`).
                idle: std::sync::Mutex::new(vec![0]),
                ready: tokio::sync::Semaphore::new(1),
                clock: Some(offset.to_owned()),
            }),
        }
    }
}

impl Default for PastTsa {
    fn default() -> Self {
        Self::new()
    }
}

//! Throwaway mTLS material: a CA, a server certificate for localhost and 127.0.0.1, and
//! client certificates, made by the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{COMMAND_TIMEOUT, Output, run};

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// `ca.pem`, `server.{pem,key}` (CN=localhost) and `NAME.{pem,key}` per client (a NAME
/// starting with `server` is one more server certificate), in a temporary directory removed
/// on drop.
#[derive(Debug)]
pub struct Mtls {
    dir: tempfile::TempDir,
}

impl Mtls {
    /// The CA, the server certificate and one client certificate per `(name, subject)`
    /// (openssl's `/CN=…/O=…` form, UTF-8).
    pub fn generate(clients: &[(&str, &str)]) -> Mtls {
        let dir = tempfile::tempdir().expect("temporary directory");
        let m = Mtls { dir };
        let mut ca = vec!["req", "-x509"];
        ca.extend(EC);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kyso test mTLS CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        m.openssl(&ca);
        let write = |name: &str, text: &str| {
            std::fs::write(m.path().join(name), text).expect("write an extension file")
        };
        write(
            "server.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        );
        write(
            "client.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        );
        let server = std::iter::once(("server", "/CN=localhost", "server.ext"));
        // A name starting with `server` is another server certificate (a rotation's next one).
        let clients = clients.iter().map(|(n, s)| {
            let ext = if n.starts_with("server") {
                "server.ext"
            } else {
                "client.ext"
            };
            (*n, *s, ext)
        });
        for (i, (name, subject, ext)) in server.chain(clients).enumerate() {
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let mut req = vec!["req", "-new", "-utf8"];
            req.extend(EC);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
            m.openssl(&req);
            let serial = (i + 1).to_string();
            m.openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-sha256",
                "-extfile",
                ext,
                "-out",
                &pem,
            ]);
        }
        m
    }

    fn openssl(&self, args: &[&str]) -> Output {
        run(
            Command::new("openssl").args(args).current_dir(self.path()),
            None,
            COMMAND_TIMEOUT,
        )
        .expect_success()
    }

    /// The directory holding the files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ca.pem`
    pub fn ca(&self) -> PathBuf {
        self.path().join("ca.pem")
    }

    /// `NAME.pem` (`server` or a client's name)
    pub fn cert(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.pem"))
    }

    /// `NAME.key`
    pub fn key(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.key"))
    }

    /// A certificate's SHA-256 fingerprint, in openssl's colon form.
    pub fn fingerprint(&self, name: &str) -> String {
        let pem = format!("{name}.pem");
        let out = self.openssl(&["x509", "-in", &pem, "-noout", "-fingerprint", "-sha256"]);
        let text = out.stdout_str();
        text.trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

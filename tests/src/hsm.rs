//! A real PKCS#11 boundary for the signer: SoftHSM2 tokens in a temporary directory, served by
//! `p11-kit server` over a unix socket, reached through `p11-kit-client.so`.
//!
//! The p11-kit client reads `P11_KIT_SERVER_ADDRESS` and SoftHSM reads `SOFTHSM2_CONF` from the
//! process environment, which a test must not change (unsafe, racy): code that loads a module
//! runs in a child process (`kyso signer ...`, `kyso-signer`) with [`P11KitServer::client_env`]
//! (and [`SoftHsm::env`] when it loads SoftHSM directly) set on that child only.
//!
//! `p11-kit server` forks a `p11-kit-remote` per connection: [`P11KitServer::kill`] kills the
//! whole process group (server and remotes), otherwise connected clients would not notice.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{COMMAND_TIMEOUT, run};

/// SoftHSM2's PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The p11-kit client module (talks to `p11-kit server`).
pub const P11_KIT_CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

/// A binary of this workspace (`kyso`, `kyso-signer`): in `$KYSO_BIN_DIR` when set (a release
/// build, say), else next to the test executable's `deps/` directory. `scripts/test.sh` builds
/// them before the tests.
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("KYSO_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            exe.parent()
                .and_then(Path::parent)
                .expect("the test binary lives in target/PROFILE/deps")
                .to_path_buf()
        }
    };
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "build the binaries first: cargo build --workspace --bins (no {})",
        bin.display()
    );
    bin
}

/// SoftHSM2 with its own configuration and token directory (deleted on drop).
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Default for SoftHsm {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftHsm {
    /// A fresh, empty SoftHSM2 (no tokens yet).
    pub fn new() -> SoftHsm {
        let dir = tempfile::Builder::new()
            .prefix("kyso-hsm")
            .tempdir()
            .expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        SoftHsm { dir, conf }
    }

    /// The directory (for pin files, sockets, configuration of the test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `SOFTHSM2_CONF` for a child that loads SoftHSM.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("SOFTHSM2_CONF", self.conf.clone())
    }

    fn util(&self) -> Command {
        let mut cmd = Command::new("softhsm2-util");
        cmd.env("SOFTHSM2_CONF", &self.conf);
        cmd
    }

    /// Initialises a token in the first free slot.
    pub fn init_token(&self, label: &str, user_pin: &str, so_pin: &str) {
        run(
            self.util().args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                user_pin,
                "--so-pin",
                so_pin,
            ]),
            None,
            COMMAND_TIMEOUT,
        )
        .expect_success();
    }

    /// Imports a PKCS#8 PEM private key (and its public key) into `token`, e.g. the same key
    /// into two tokens for an HA group.
    pub fn import_key(&self, token: &str, pin: &str, pkcs8_pem: &Path, label: &str, id_hex: &str) {
        run(
            self.util().arg("--import").arg(pkcs8_pem).args([
                "--token", token, "--pin", pin, "--label", label, "--id", id_hex,
            ]),
            None,
            COMMAND_TIMEOUT,
        )
        .expect_success();
    }

    /// Writes `pin` to a file in the directory (for `--pin-file`, `pin_file =`).
    pub fn write_pin(&self, name: &str, pin: &str) -> PathBuf {
        let p = self.dir().join(name);
        std::fs::write(&p, format!("{pin}\n")).expect("pin file");
        p
    }
}

/// `p11-kit server` exporting one SoftHSM token on a unix socket. Killed on drop.
#[derive(Debug)]
pub struct P11KitServer {
    conf: PathBuf,
    token: String,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl P11KitServer {
    /// Starts a server for `token` of `hsm` and waits until it accepts connections.
    pub fn start(hsm: &SoftHsm, token: &str) -> P11KitServer {
        let safe: String = token
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(24)
            .collect();
        let mut s = P11KitServer {
            conf: hsm.conf.clone(),
            token: token.to_owned(),
            socket: hsm.dir().join(format!("p11-{safe}.sock")),
            log: hsm.dir().join(format!("p11-{safe}.log")),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new("p11-kit")
            .args(["server", "--provider", SOFTHSM_MODULE, "-f", "-n"])
            .arg(&self.socket)
            .arg(format!("pkcs11:token={}", self.token))
            .env("SOFTHSM2_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: kill() takes the per-connection remotes down too.
            .process_group(0)
            .spawn()
            .expect("p11-kit server (apt install p11-kit p11-kit-modules softhsm2)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "p11-kit server exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "p11-kit server did not listen on {} within 10 s",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `("P11_KIT_SERVER_ADDRESS", "unix:path=SOCKET")`: set it on the child that loads
    /// [`P11_KIT_CLIENT`].
    pub fn client_env(&self) -> (&'static str, String) {
        (
            "P11_KIT_SERVER_ADDRESS",
            format!("unix:path={}", self.socket.display()),
        )
    }

    /// Whether the server is running.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL to the server and its per-connection processes: an HSM outage.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.socket);
        }
    }

    /// Kills the server if it runs and starts it again on the same socket.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for P11KitServer {
    fn drop(&mut self) {
        self.kill();
    }
}

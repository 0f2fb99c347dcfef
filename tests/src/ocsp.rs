//! A real OCSP responder (`openssl ocsp` as a server) and a counting reverse proxy in front of it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::{DownMode, Front, Handler, exchange};
use crate::pki::TestPki;

/// How long the responder may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of one proxied exchange with the responder.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The wrapper keeps `openssl ocsp` on a leash: it runs openssl in the background, prints its
/// PID, and kills it as soon as its own standard input (a pipe from this process) reaches end of
/// file: when the responder is dropped, and also when the test process dies without running
/// destructors (a timeout kill), so no responder outlives its test.
const WATCHDOG: &str = r#"log=$1; shift
openssl "$@" >>"$log" 2>&1 &
c=$!
echo "$c"
while read -r _; do :; done
kill "$c" 2>/dev/null
wait "$c""#;

/// `openssl ocsp -index index.txt -CA issuing-ca.pem -rsigner ocsp.pem -rkey ocsp.key -port PORT
/// -nmin 60 -ignore_err`, run in the PKI directory, on a free port; killed on drop.
///
/// It is single-threaded and answers one request per connection; a connection that sends
/// nothing wedges it. Put a [`CountingProxy`] in front of it rather than pointing many clients
/// at it directly.
#[derive(Debug)]
pub struct OcspResponder {
    addr: SocketAddr,
    process: Watched,
    probe: Vec<u8>,
    tmp: TempDir,
}

impl OcspResponder {
    /// Starts the responder for the issuing CA of `pki`.
    pub fn start(pki: &TestPki) -> OcspResponder {
        Self::start_with(pki, &[])
    }

    /// As [`OcspResponder::start`] with more `openssl ocsp` arguments, given after the default
    /// ones (e.g. `["-ndays", "1"]`, `["-resp_no_certs"]`, `["-rmd", "sha1"]`, `["-badsig"]`).
    pub fn start_with(pki: &TestPki, extra: &[&str]) -> OcspResponder {
        let tmp = tempfile::Builder::new()
            .prefix("kyso-ocsp-")
            .tempdir()
            .expect("temporary directory for the OCSP responder");
        // A well-formed request to check that the responder answers (built offline).
        let probe = tmp.path().join("probe.req");
        pki.openssl([
            "ocsp",
            "-issuer",
            "issuing-ca.pem",
            "-cert",
            "ocsp.pem",
            "-no_nonce",
            "-reqout",
            probe.to_str().expect("UTF-8 path"),
        ])
        .expect_success();
        let probe = fs::read(&probe).expect("read the probe request");

        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = tmp.path().join(format!("ocsp-{port}.log"));
            let mut process = Watched::spawn(
                Command::new("sh")
                    .current_dir(&pki.dir)
                    .arg("-c")
                    .arg(WATCHDOG)
                    .arg("sh")
                    .arg(&log)
                    .args(["ocsp", "-index", "index.txt", "-CA", "issuing-ca.pem"])
                    .args(["-rsigner", "ocsp.pem", "-rkey", "ocsp.key"])
                    .args(["-port", &port.to_string(), "-nmin", "60", "-ignore_err"])
                    .args(extra),
            );
            match process.wait_for_log(&log, "waiting for OCSP client connections") {
                Ok(()) => {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    probe_responder(addr, &probe, &log);
                    return OcspResponder {
                        addr,
                        process,
                        probe,
                        tmp,
                    };
                }
                Err(text) => last_log = text,
            }
        }
        panic!("openssl ocsp did not start; last log:\n{last_log}");
    }

    /// The responder's own address (prefer a [`CountingProxy`] in front of it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` of the responder itself.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What openssl printed so far.
    pub fn log(&self) -> String {
        let log = self
            .tmp
            .path()
            .join(format!("ocsp-{}.log", self.addr.port()));
        fs::read_to_string(log).unwrap_or_default()
    }

    /// Makes the responder pick up a changed CA database ([`TestPki::revoke`],
    /// [`TestPki::release`]). `openssl ocsp` checks whether `index.txt` changed before it waits
    /// for a connection, so the first request after a change is still answered from the old
    /// index: this sends that request (directly, not through any proxy, so no counter moves).
    #[track_caller]
    pub fn refresh(&self) {
        let log = self
            .tmp
            .path()
            .join(format!("ocsp-{}.log", self.addr.port()));
        probe_responder(self.addr, &self.probe, &log);
    }

    /// Stops the responder now (as dropping it does).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

fn probe_responder(addr: SocketAddr, request: &[u8], log: &Path) {
    let r = exchange(
        addr,
        "POST",
        "/",
        Some("application/ocsp-request"),
        request,
        UPSTREAM_TIMEOUT,
    );
    match r {
        Ok(r) if r.status == 200 && !r.body.is_empty() => {}
        other => panic!(
            "openssl ocsp on {addr} does not answer: {other:?}; log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        ),
    }
}

/// A process started through [`WATCHDOG`]; stopped on drop.
#[derive(Debug)]
struct Watched {
    child: Option<Child>,
    /// PID of the watched program (not of the shell).
    pid: u32,
}

impl Watched {
    fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh");
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            // The shell prints the PID at once.
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        Watched {
            child: Some(child),
            pid: line.trim().parse().unwrap_or(0),
        }
    }

    /// Waits until the log file contains `ready`; the log text if the program failed first.
    fn wait_for_log(&mut self, log: &Path, ready: &str) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(log).unwrap_or_default();
            if text.contains(ready) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || text.contains("rror") || Instant::now() >= deadline {
                self.stop();
                return Err(text);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the watchdog's stdin makes it kill the program and exit.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        if self.pid != 0 {
            // The shell's builtin kill: no dependency on procps.
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -9 {}", self.pid)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago on 127.0.0.1 (openssl binds it itself; the caller
/// retries if someone else took it meanwhile).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// An HTTP reverse proxy on `127.0.0.1:0` in front of an upstream HTTP server (the OCSP
/// responder): it counts requests and can be taken down. Requests are forwarded one at a time,
/// each on a fresh upstream connection with a deadline, so a burst of clients neither wedges
/// nor deadlocks the single-threaded `openssl ocsp`. Stops on drop.
#[derive(Debug)]
pub struct CountingProxy {
    front: Front,
}

impl CountingProxy {
    /// A proxy forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> CountingProxy {
        CountingProxy {
            front: Front::start(Handler::Proxy {
                upstream,
                lock: tokio::sync::Mutex::new(()),
                timeout: UPSTREAM_TIMEOUT,
            }),
        }
    }

    /// A proxy in front of `responder`.
    pub fn in_front_of(responder: &OcspResponder) -> CountingProxy {
        Self::start(responder.addr())
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.front.addr()
    }

    /// Requests received (POST and GET: an OCSP client may use either), whatever they were
    /// answered, since start or the last [`CountingProxy::reset_counts`].
    pub fn requests(&self) -> usize {
        self.front.total()
    }

    /// POST requests received.
    pub fn posts(&self) -> usize {
        self.front.posts()
    }

    /// Requests received for a URL path (an OCSP GET carries the request in the path).
    pub fn count(&self, path: &str) -> usize {
        self.front.count(path)
    }

    /// Zeroes the counters.
    pub fn reset_counts(&self) {
        self.front.reset_counts();
    }

    /// Takes the proxy down (see [`DownMode`]; default [`DownMode::Refuse`]) or brings it back.
    /// Applied before this returns.
    pub fn set_down(&self, down: bool) {
        self.front.set_down(down);
    }

    /// How the proxy behaves while down.
    pub fn set_down_mode(&self, mode: DownMode) {
        self.front.set_down_mode(mode);
    }

    /// Whether the proxy is down.
    pub fn is_down(&self) -> bool {
        self.front.is_down()
    }

    /// Delays every answer by `delay` (zero: none): a slow responder.
    pub fn set_delay(&self, delay: Duration) {
        self.front.set_delay(delay);
    }
}

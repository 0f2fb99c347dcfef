//! Small real HTTP/1.1 servers on loopback: a static file server (CRLs, AIA certificates) and
//! the machinery shared with the counting OCSP proxy.
//!
//! Every server runs on the harness's own runtime (its own threads), so it answers whatever the
//! calling test does: a synchronous test, a current-thread `#[tokio::test]` that blocks on an
//! openssl child, or a multi-thread runtime.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream as StdStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Largest request body a harness server accepts.
const MAX_BODY: usize = 16 << 20;
/// How long `set_down` waits for the server to apply the change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime every harness server runs on (never dropped).
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kyso-harness")
            .enable_all()
            .build()
            .expect("build the harness runtime")
    })
}

/// How a server that is "down" behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownMode {
    /// The listening socket is closed: connections are refused (ECONNREFUSED). Open connections
    /// are closed. Coming back up binds the same port again.
    Refuse,
    /// Connections are accepted and immediately reset (RST, zero linger). Open connections are
    /// closed.
    Reset,
    /// Connections are accepted and requests read, but nothing is ever answered until the
    /// server comes back up (then hung connections are closed, hung requests answered).
    Hang,
    /// Every request is answered with this HTTP status (e.g. 500 or 503).
    Status(u16),
}

#[derive(Clone, Copy, Debug)]
struct State {
    down: bool,
    mode: DownMode,
    delay: Duration,
    generation: u64,
}

impl State {
    fn refusing(&self) -> bool {
        self.down && self.mode == DownMode::Refuse
    }
    fn cutting(&self) -> bool {
        self.down && matches!(self.mode, DownMode::Refuse | DownMode::Reset)
    }
}

/// What a front server does with a request that it answers.
#[derive(Debug)]
pub(crate) enum Handler {
    /// Serve files under a directory (GET, HEAD), with in-memory overrides.
    Files {
        root: PathBuf,
        overrides: Mutex<HashMap<String, (u16, Bytes)>>,
    },
    /// Forward to an upstream HTTP server, one exchange at a time, one connection each.
    Proxy {
        upstream: SocketAddr,
        lock: tokio::sync::Mutex<()>,
        timeout: Duration,
    },
    /// Answer `application/timestamp-query` POSTs with `openssl ts -reply` run in `dir` by a
    /// pool of workers, each one query at a time (each keeps its own serial number file).
    Tsa {
        dir: PathBuf,
        idle: Mutex<Vec<u64>>,
        ready: tokio::sync::Semaphore,
        /// `openssl` run under `faketime -f CLOCK` (a TSA of the past), or at the real time.
        clock: Option<String>,
    },
}

#[derive(Debug)]
struct Shared {
    state: watch::Sender<State>,
    applied: AtomicU64,
    counts: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    posts: AtomicUsize,
    handler: Handler,
}

/// The server core shared by [`HttpServer`] and [`crate::CountingProxy`].
#[derive(Debug)]
pub(crate) struct Front {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Front {
    pub(crate) fn start(handler: Handler) -> Front {
        // The listener registers with the runtime that serves it.
        let _runtime = runtime().enter();
        let listener = shared_port_socket(SocketAddr::from(([127, 0, 0, 1], 0)))
            .and_then(|s| s.listen(1024))
            .expect("listen on 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (state, _) = watch::channel(State {
            down: false,
            mode: DownMode::Refuse,
            delay: Duration::ZERO,
            generation: 0,
        });
        let shared = Arc::new(Shared {
            state,
            applied: AtomicU64::new(0),
            counts: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            posts: AtomicUsize::new(0),
            handler,
        });
        let task = runtime().spawn(accept_loop(listener, addr, Arc::clone(&shared)));
        Front { addr, shared, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn count(&self, path: &str) -> usize {
        let counts = self.shared.counts.lock().expect("counts lock");
        counts.get(path).copied().unwrap_or(0)
    }

    pub(crate) fn total(&self) -> usize {
        self.shared.total.load(Ordering::SeqCst)
    }

    pub(crate) fn posts(&self) -> usize {
        self.shared.posts.load(Ordering::SeqCst)
    }

    pub(crate) fn reset_counts(&self) {
        self.shared.counts.lock().expect("counts lock").clear();
        self.shared.total.store(0, Ordering::SeqCst);
        self.shared.posts.store(0, Ordering::SeqCst);
    }

    pub(crate) fn handler(&self) -> &Handler {
        &self.shared.handler
    }

    /// Changes the state and waits until the accept loop has applied it (so that, once this
    /// returns, a refused port is really closed and a reopened one really listens).
    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut generation = 0;
        self.shared.state.send_modify(|s| {
            f(s);
            s.generation += 1;
            generation = s.generation;
        });
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while self.shared.applied.load(Ordering::SeqCst) < generation {
            assert!(
                !self.task.is_finished(),
                "the server on {} has stopped (could it not bind its port again?)",
                self.addr
            );
            assert!(
                Instant::now() < deadline,
                "the server on {} did not apply a state change",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.update(|s| s.down = down);
    }

    pub(crate) fn set_down_mode(&self, mode: DownMode) {
        self.update(|s| s.mode = mode);
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.update(|s| s.delay = delay);
    }

    pub(crate) fn is_down(&self) -> bool {
        self.shared.state.borrow().down
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // Dropping the task drops the listener and every connection task with it.
        self.task.abort();
    }
}

async fn accept_opt(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// A socket bound to `addr` with `SO_REUSEPORT`, so that a second such socket can hold the
/// same port. A server that is down keeps its port with a bound socket that does not listen:
/// connections are refused (the kernel answers a SYN with RST when no socket listens), and no
/// other server of the test run can take the port meanwhile (with a closed port, one did, and
/// the server could not come back up or answered for someone else).
fn shared_port_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    // While refusing: the port's holder (bound, not listening).
    let mut holder: Option<TcpSocket> = None;
    let mut rx = shared.state.subscribe();
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        let state = *rx.borrow_and_update();
        if state.cutting() {
            conns.abort_all();
        }
        if state.refusing() {
            if holder.is_none() {
                // Hold the port before the listener goes.
                match shared_port_socket(addr) {
                    Ok(h) => holder = Some(h),
                    Err(e) => {
                        eprintln!("kyso-tests: server on {addr}: cannot hold the port: {e}");
                        return;
                    }
                }
            }
            listener = None;
        } else if listener.is_none() {
            match shared_port_socket(addr).and_then(|s| s.listen(1024)) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("kyso-tests: server on {addr}: cannot listen again: {e}");
                    return;
                }
            }
            holder = None;
        }
        shared.applied.store(state.generation, Ordering::SeqCst);

        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                accepted = accept_opt(listener.as_ref()) => {
                    let Ok((stream, _peer)) = accepted else { continue };
                    let now = *shared.state.borrow();
                    if now.down && now.mode == DownMode::Reset {
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    }
                    if now.down && now.mode == DownMode::Hang {
                        // Hold the connection, unread, until the server comes back up.
                        let mut rx = shared.state.subscribe();
                        conns.spawn(async move {
                            let _held = stream;
                            let _ = rx.wait_for(|s| !s.down).await;
                        });
                        continue;
                    }
                    let shared = Arc::clone(&shared);
                    conns.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }
}

fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    *shared
        .counts
        .lock()
        .expect("counts lock")
        .entry(path.clone())
        .or_insert(0) += 1;
    shared.total.fetch_add(1, Ordering::SeqCst);
    if req.method() == Method::POST {
        shared.posts.fetch_add(1, Ordering::SeqCst);
    }

    let state = *shared.state.borrow();
    if state.down {
        match state.mode {
            DownMode::Status(code) => {
                let mut resp = response(code, "text/plain", "down (kyso test server)\n");
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
            DownMode::Hang => {
                let mut rx = shared.state.subscribe();
                let _ = rx.wait_for(|s| !s.down).await;
            }
            // The connection is being cut; answer nothing useful.
            DownMode::Refuse | DownMode::Reset => {
                let mut resp = response(503, "text/plain", "down (kyso test server)\n");
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
        }
    }
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }

    match &shared.handler {
        Handler::Tsa {
            dir,
            idle,
            ready,
            clock,
        } => {
            let is_query = req
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == b"application/timestamp-query");
            if req.method() != Method::POST || !is_query {
                return response(415, "text/plain", "POST application/timestamp-query\n");
            }
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return response(400, "text/plain", "bad request body\n"),
            };
            let Ok(_permit) = ready.acquire().await else {
                return response(503, "text/plain", "TSA closed\n");
            };
            // A permit guarantees an idle worker.
            let Some(k) = idle.lock().expect("TSA pool").pop() else {
                return response(500, "text/plain", "TSA pool empty\n");
            };
            let (dir, clock) = (dir.clone(), clock.clone());
            let answer = tokio::task::spawn_blocking(move || {
                crate::tsa::reply(&dir, k, &body, clock.as_deref())
            })
            .await;
            idle.lock().expect("TSA pool").push(k);
            match answer {
                Ok(Ok(reply)) => response(200, "application/timestamp-reply", reply),
                Ok(Err(e)) => response(500, "text/plain", format!("{e}\n")),
                Err(e) => response(500, "text/plain", format!("TSA task: {e}\n")),
            }
        }
        Handler::Files { root, overrides } => {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return response(405, "text/plain", "method not allowed\n");
            }
            let head = req.method() == Method::HEAD;
            let over = overrides
                .lock()
                .expect("overrides lock")
                .get(&path)
                .cloned();
            let (status, ctype, body) = match over {
                Some((status, body)) => (status, content_type_for(&path), body),
                None => match resolve(root, &path) {
                    Some(file) => match tokio::fs::read(&file).await {
                        Ok(bytes) => (200, content_type_for(&path), Bytes::from(bytes)),
                        Err(_) => (404, "text/plain", Bytes::from_static(b"not found\n")),
                    },
                    None => (404, "text/plain", Bytes::from_static(b"not found\n")),
                },
            };
            let len = body.len();
            let mut resp = response(status, ctype, if head { Bytes::new() } else { body });
            if head {
                resp.headers_mut()
                    .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            resp
        }
        Handler::Proxy {
            upstream,
            lock,
            timeout,
        } => {
            let method = req.method().as_str().to_owned();
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned());
            let ctype = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return response(400, "text/plain", "bad request body\n"),
            };
            // One exchange at a time: `openssl ocsp` serves one connection at a time.
            let _guard = lock.lock().await;
            let upstream = *upstream;
            let timeout = *timeout;
            let result = tokio::task::spawn_blocking(move || {
                exchange(upstream, &method, &target, ctype.as_deref(), &body, timeout)
            })
            .await;
            match result {
                Ok(Ok(r)) => {
                    let ctype = r
                        .content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream");
                    response(r.status, ctype, r.body)
                }
                Ok(Err(e)) => response(502, "text/plain", format!("upstream {upstream}: {e}\n")),
                Err(e) => response(502, "text/plain", format!("upstream task: {e}\n")),
            }
        }
    }
}

/// Maps a URL path onto a file under `root`, refusing anything that would leave it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    out.is_file().then_some(out)
}

fn content_type_for(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("crl") => "application/pkix-crl",
        Some("cer" | "der" | "crt") => "application/pkix-cert",
        Some("p7c") => "application/pkcs7-mime",
        Some("pem") => "application/x-pem-file",
        _ => "application/octet-stream",
    }
}

/// A response read by [`exchange`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// One HTTP/1.0 exchange on a fresh connection (`Connection: close`), with a deadline on
/// every socket operation: the request is written in full before anything is read, and the
/// response is read to the end (or to its Content-Length).
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> io::Result<RawResponse> {
    let mut s = StdStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {target} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if method != "GET" && method != "HEAD" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req)?;
    s.flush()?;

    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(r) = parse_response(&buf, false) {
            let _ = s.shutdown(Shutdown::Both);
            return Ok(r);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "response deadline"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_response(&buf, true).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "incomplete or malformed HTTP response",
        )
    })
}

/// Parses a complete response from `buf`; `None` while incomplete (a response without a
/// Content-Length is complete only at end of stream, `eof`).
fn parse_response(buf: &[u8], eof: bool) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let body = &buf[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut content_type = None;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-type") {
            content_type = Some(v.to_owned());
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        }
    }
    match length {
        Some(n) if body.len() >= n => Some(RawResponse {
            status,
            content_type,
            body: body[..n].to_vec(),
        }),
        Some(_) => None,
        None if eof => Some(RawResponse {
            status,
            content_type,
            body: body.to_vec(),
        }),
        None => None,
    }
}

/// A static file server on `127.0.0.1:0` (HTTP/1.1, keep-alive) for CRLs and AIA certificates,
/// with per-path request counters and outages on demand. Stops on drop.
#[derive(Debug)]
pub struct HttpServer {
    front: Front,
}

impl HttpServer {
    /// Serves the files under `root` (GET and HEAD; 404 for anything else).
    pub fn start(root: impl Into<PathBuf>) -> HttpServer {
        HttpServer {
            front: Front::start(Handler::Files {
                root: root.into(),
                overrides: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.front.addr()
    }

    /// Requests received for a URL path (e.g. `/issuing-ca.crl`; the query is not part of it),
    /// whatever they were answered, since start or the last [`HttpServer::reset_counts`].
    pub fn count(&self, path: &str) -> usize {
        self.front.count(path)
    }

    /// All requests received.
    pub fn total(&self) -> usize {
        self.front.total()
    }

    /// Zeroes the counters.
    pub fn reset_counts(&self) {
        self.front.reset_counts();
    }

    /// Takes the server down (behaving as the [`DownMode`], default [`DownMode::Refuse`]) or
    /// brings it back. Applied before this returns.
    pub fn set_down(&self, down: bool) {
        self.front.set_down(down);
    }

    /// How the server behaves while down.
    pub fn set_down_mode(&self, mode: DownMode) {
        self.front.set_down_mode(mode);
    }

    /// Whether the server is down.
    pub fn is_down(&self) -> bool {
        self.front.is_down()
    }

    /// Delays every answer by `delay` (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        self.front.set_delay(delay);
    }

    /// Serves `body` with `status` at `path` instead of the file (e.g. a corrupt CRL).
    pub fn put(&self, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        if let Handler::Files { overrides, .. } = self.front.handler() {
            let body = Bytes::from(body.into());
            overrides
                .lock()
                .expect("overrides lock")
                .insert(path.to_owned(), (status, body));
        }
    }

    /// Removes every [`HttpServer::put`] override.
    pub fn clear_puts(&self) {
        if let Handler::Files { overrides, .. } = self.front.handler() {
            overrides.lock().expect("overrides lock").clear();
        }
    }
}

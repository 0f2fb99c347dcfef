//! Network namespaces on one machine, for scale-out tests: several service replicas, each in a
//! namespace of its own, behind one service address, as a Kubernetes Service puts pods behind
//! its cluster IP.
//!
//! ```text
//!   test process (host namespace)          "lb" namespace                   replica namespaces
//!   clients, PKI servers + relays  ──veth──  service address (lo)   ──veth──  replica 0: 10.X.1.2
//!   10.X.0.1                        10.X.0.2  iptables DNAT, nth      ──veth──  replica 1: 10.X.2.2
//! ```
//!
//! - The "lb" namespace holds the service address on its loopback and forwards; iptables DNAT
//!   rules in its PREROUTING chain spread *new connections* over the endpoints
//!   (`-m statistic --mode nth`), which is what kube-proxy's iptables mode does (with random
//!   probabilities). Established connections stay where they were sent: an HTTP/2 (gRPC)
//!   client on one connection talks to one replica only.
//! - Replicas route everything through "lb" back to the host namespace, so they reach the
//!   test's servers there through a [`Relay`] bound on the host's end (10.X.0.1); the relays
//!   count the bytes, which is the outbound traffic of the replicas.
//! - Everything is torn down on drop (also while a panic unwinds): processes left in the
//!   namespaces are killed, the namespaces deleted, which removes their interfaces, the host
//!   end of the uplink and the host route with them. The namespaces of a test process killed
//!   before its drops ran (`kyso-PID-…`, PID gone) are deleted by the next [`Fabric::create`].
//!
//! Needs root, `ip` (iproute2) and `iptables` (`scripts/setup.sh` installs them).
//! [`Fabric::create`] returns `None`, after saying why, only when the kernel refuses to make
//! a namespace (an unprivileged container); every other failure fails the test.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::http::runtime;

/// How long a relay waits for its upstream to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Namespaces, links, routes and the balancer of one test. See the module documentation.
#[derive(Debug)]
pub struct Fabric {
    /// `kyso-PID-N`: prefix of the namespaces' names.
    tag: String,
    /// Second octet of the fabric's 10.X.0.0/16.
    octet: u8,
    replicas: usize,
    /// Namespaces made so far, deleted on drop.
    namespaces: Vec<String>,
}

impl Fabric {
    /// Makes the "lb" namespace with the service address and `replicas` replica namespaces,
    /// all linked and routed. `None` (with a message on stderr) when the kernel forbids
    /// namespaces; panics on anything else.
    pub fn create(replicas: usize) -> Option<Fabric> {
        assert!(
            (1..=100).contains(&replicas),
            "1 to 100 replicas, not {replicas}"
        );
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("kyso-{pid}-{n}");
        let mut fabric = Fabric {
            tag,
            octet: free_octet(pid, n),
            replicas,
            namespaces: Vec::new(),
        };
        let lb = fabric.lb();
        sweep_stale();
        match ip(&["netns", "add", &lb]) {
            Ok(()) => fabric.namespaces.push(lb.clone()),
            Err(e) if forbidden(&e) => {
                eprintln!(
                    "SKIPPED: this machine does not allow network namespaces ({e}); the \
                     scale-out test needs root (CI runs it as root)"
                );
                return None;
            }
            Err(e) => panic!("ip netns add {lb}: {e}"),
        }
        fabric.build();
        Some(fabric)
    }

    fn build(&mut self) {
        let lb = self.lb();
        let host_if = format!("ky{}h{}", std::process::id(), self.tag_n());
        let x = self.octet;
        // Uplink: host 10.X.0.1 <-> lb 10.X.0.2; the whole 10.X/16 is reached through lb.
        must(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "uplink", "netns", &lb,
        ]);
        must(&["addr", "add", &format!("10.{x}.0.1/24"), "dev", &host_if]);
        must(&["link", "set", &host_if, "up"]);
        must(&[
            "-n",
            &lb,
            "addr",
            "add",
            &format!("10.{x}.0.2/24"),
            "dev",
            "uplink",
        ]);
        must(&["-n", &lb, "link", "set", "uplink", "up"]);
        must(&["-n", &lb, "link", "set", "lo", "up"]);
        must(&[
            "-n",
            &lb,
            "addr",
            "add",
            &format!("{}/32", self.service_addr()),
            "dev",
            "lo",
        ]);
        must(&[
            "-n",
            &lb,
            "route",
            "add",
            "default",
            "via",
            &format!("10.{x}.0.1"),
        ]);
        must(&[
            "route",
            "add",
            &format!("10.{x}.0.0/16"),
            "via",
            &format!("10.{x}.0.2"),
        ]);
        // Per namespace: /proc/sys/net is the writer's namespace's.
        run_in(&lb, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        for i in 0..self.replicas {
            let ns = self.replica_ns(i);
            must(&["netns", "add", &ns]);
            self.namespaces.push(ns.clone());
            let (gw, addr) = (self.gateway(i), self.replica_addr(i));
            let lb_if = format!("r{i}");
            must(&[
                "link", "add", &lb_if, "netns", &lb, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&["-n", &lb, "addr", "add", &format!("{gw}/24"), "dev", &lb_if]);
            must(&["-n", &lb, "link", "set", &lb_if, "up"]);
            must(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            must(&["-n", &ns, "link", "set", "eth0", "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            must(&["-n", &ns, "route", "add", "default", "via", &gw.to_string()]);
        }
    }

    fn tag_n(&self) -> &str {
        self.tag.rsplit('-').next().unwrap_or("0")
    }

    fn lb(&self) -> String {
        format!("{}-lb", self.tag)
    }

    /// The name of replica `i`'s namespace.
    pub fn replica_ns(&self, i: usize) -> String {
        format!("{}-r{i}", self.tag)
    }

    /// The host namespace's end of the uplink: bind here what the replicas must reach.
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, 0, 1)
    }

    /// The fabric's network, `10.X.0.0/16` (for a verifier's `allowed_networks`).
    pub fn network(&self) -> String {
        format!("10.{}.0.0/16", self.octet)
    }

    /// The one address of the service (in the "lb" namespace, reached from the host).
    pub fn service_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, 255, 1)
    }

    /// Replica `i`'s own address (its pod IP).
    pub fn replica_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, self.subnet(i), 2)
    }

    fn gateway(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, self.subnet(i), 1)
    }

    fn subnet(&self, i: usize) -> u8 {
        assert!(i < self.replicas, "replica {i} of {}", self.replicas);
        u8::try_from(i + 1).unwrap_or(u8::MAX)
    }

    /// Sends new TCP connections to `service_addr():port` to the `endpoints` (replica indices,
    /// their `port`), one after the other (nth), replacing the previous rules: what kube-proxy
    /// does when a Service's endpoints change. No endpoints: connections are refused.
    pub fn balance(&self, port: u16, endpoints: &[usize]) {
        let lb = self.lb();
        let chain = "KYSO-SERVICE";
        let vip = self.service_addr().to_string();
        let port_s = port.to_string();
        // The jump from PREROUTING is made once; the chain is flushed and refilled.
        let exists = Command::new("ip")
            .args([
                "netns", "exec", &lb, "iptables", "-t", "nat", "-n", "-L", chain,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if exists {
            run_in(&lb, &["iptables", "-t", "nat", "-F", chain]);
        } else {
            run_in(&lb, &["iptables", "-t", "nat", "-N", chain]);
            run_in(
                &lb,
                &[
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-d",
                    &vip,
                    "-p",
                    "tcp",
                    "--dport",
                    &port_s,
                    "-j",
                    chain,
                ],
            );
        }
        // Rule k takes every (n-k)th connection that reaches it: 1/n, 1/(n-1) of the rest, ...
        // so each endpoint gets an equal share; the last takes what is left.
        let n = endpoints.len();
        for (k, &i) in endpoints.iter().enumerate() {
            let to = format!("{}:{port}", self.replica_addr(i));
            let every = (n - k).to_string();
            let mut rule = vec!["iptables", "-t", "nat", "-A", chain, "-p", "tcp"];
            if n - k > 1 {
                rule.extend(["-m", "statistic", "--mode", "nth", "--every", &every]);
                rule.extend(["--packet", "0"]);
            }
            rule.extend(["-j", "DNAT", "--to-destination", &to]);
            run_in(&lb, &rule);
        }
    }

    /// `program args` inside replica `i`'s namespace (`ip netns exec`, which execs the
    /// program: the child's id is the program's).
    pub fn command_in(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.replica_ns(i)]).arg(program);
        c
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        // Whatever still runs in a namespace keeps it (and its links) alive: stop it first.
        // These are the test's own children (started through `command_in`).
        for ns in &self.namespaces {
            kill_all_in(ns);
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("netns: could not delete {ns}: {e}");
            }
        }
    }
}

/// Deletes the namespaces of fabrics whose test process is gone (killed before its drops
/// ran): `kyso-PID-N-*` with no process PID. Only this harness makes such names.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("kyso-")
            .and_then(|rest| rest.split('-').next())
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        kill_all_in(name);
        if let Err(e) = ip(&["netns", "del", name]) {
            eprintln!("netns: could not delete the stale {name}: {e}");
        }
    }
}

/// Kills every process left in namespace `ns` (the harness's own children).
fn kill_all_in(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if pid.bytes().all(|b| b.is_ascii_digit()) {
                // The shell's builtin: no procps needed.
                let _ = Command::new("sh")
                    .args(["-c", &format!("kill -KILL {pid}")])
                    .status();
            }
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Guarded(pub Child);

impl Guarded {
    /// Kills the process now and waits for it.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay from `bind:0` to `upstream` that counts the bytes each way: how the replicas
/// reach the test's loopback servers, and the measure of their outbound traffic.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counters {
    /// Client to upstream (requests).
    up: AtomicU64,
    /// Upstream to client (responses).
    down: AtomicU64,
    connections: AtomicU64,
}

impl Relay {
    /// Listens on `bind` (a free port) and relays every connection to `upstream`.
    pub fn start(bind: IpAddr, upstream: SocketAddr) -> Relay {
        let _runtime = runtime().enter();
        let std = std::net::TcpListener::bind((bind, 0)).expect("relay: bind");
        std.set_nonblocking(true).expect("relay: non-blocking");
        let addr = std.local_addr().expect("relay: address");
        let listener = TcpListener::from_std(std).expect("relay: listener");
        let counters = Arc::new(Counters::default());
        let task = runtime().spawn(accept_loop(listener, upstream, Arc::clone(&counters)));
        Relay {
            addr,
            counters,
            task,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes sent to the upstream so far.
    pub fn bytes_up(&self) -> u64 {
        self.counters.up.load(Ordering::SeqCst)
    }

    /// Bytes received from the upstream so far.
    pub fn bytes_down(&self) -> u64 {
        self.counters.down.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it drops them all.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, counters: Arc<Counters>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or the like: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let counters = Arc::clone(&counters);
        conns.spawn(async move {
            let Ok(Ok(server)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
            else {
                return;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let c = Arc::clone(&counters);
            let up = pump(cr, sw, move |n| {
                c.up.fetch_add(n, Ordering::SeqCst);
            });
            let down = pump(sr, cw, move |n| {
                counters.down.fetch_add(n, Ordering::SeqCst);
            });
            let _ = tokio::join!(up, down);
        });
        // Reap finished connections so the set does not grow with the test.
        while conns.try_join_next().is_some() {}
    }
}

/// Copies until end of stream, counting as it goes (a kept-alive connection is counted
/// before it closes), then shuts the write side.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: impl Fn(u64),
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        count(n as u64);
    }
}

/// A second octet for 10.X.0.0/16 that no route of the host uses yet.
fn free_octet(pid: u32, n: u32) -> u8 {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let start = pid.wrapping_mul(31).wrapping_add(n.wrapping_mul(7));
    (0..190u32)
        .map(|k| u8::try_from(64 + (start.wrapping_add(k)) % 190).unwrap_or(64))
        .find(|o| !routes.contains(&format!("10.{o}.")))
        .expect("a free 10.X.0.0/16 for the test network")
}

/// `ip ARGS`, its stderr as the error.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run `ip` ({e}): scripts/setup.sh installs iproute2"),
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[track_caller]
fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("ip {}: {e}", args.join(" "));
    }
}

/// `program args` in namespace `ns`; panics on failure.
#[track_caller]
fn run_in(ns: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    must(&full);
}

/// The kernel (or the container around the test) refuses namespaces.
fn forbidden(e: &io::Error) -> bool {
    let m = e.to_string();
    e.kind() == ErrorKind::PermissionDenied
        || m.contains("Operation not permitted")
        || m.contains("Permission denied")
}

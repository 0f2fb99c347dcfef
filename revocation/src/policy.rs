//! Where the fetcher may go: the outbound policy against server-side request forgery.
//!
//! The URLs the fetcher follows come from certificates, and an AIA caIssuers URL is
//! followed before the certificate naming it has been verified: an attacker who can send
//! a document can make the service connect wherever the document says. So a URL is
//! fetched only when
//! - its host (and port) is on the allow-list: configured, or by default the hosts that the
//!   configured CA certificates name themselves; or a URL rewrite, which the operator
//!   wrote, applied to it;
//! - every address it resolves to is public, unless the operator listed it: loopback,
//!   private (RFC 1918, unique local), link-local (the cloud metadata address
//!   169.254.169.254 among them), carrier-grade NAT, multicast and reserved ranges are
//!   refused after DNS resolution, so a public name pointing at 127.0.0.1 is refused too;
//! - a redirect goes only where a first request could have gone;
//! - the request has not used up its fetches, and the certificate names few URLs (only
//!   the first [`FetchPolicy::max_urls_per_certificate`] of each kind are tried).

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipnet::IpNet;

/// One allow-list entry: `host`, `host:port`, `*.suffix` or `*.suffix:port`; an IPv6
/// address in brackets (`[2001:db8::1]:80`). Without a port, any port matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// Exactly this host (lower case), or this IP address.
    Exact(String),
    /// Any host ending in `.suffix` (not the suffix itself).
    Suffix(String),
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = split_host_port(s)?;
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                HostMatch::Suffix(suffix.to_owned())
            }
            Some(_) => return Err(format!("{s:?}: a wildcard needs a suffix (*.ca.gov.vn)")),
            None if host.contains('*') => {
                return Err(format!("{s:?}: '*' only as the first label (*.ca.gov.vn)"));
            }
            None => HostMatch::Exact(host),
        };
        Ok(Self { host, port })
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            HostMatch::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostMatch::Exact(h) => f.write_str(h)?,
            HostMatch::Suffix(s) => write!(f, "*.{s}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// `host[:port]`, `[v6][:port]`, or a bare IPv6 address.
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = |p: &str| format!("{s:?}: {p:?} is not a port");
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed '['"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(p.parse().map_err(|_| bad_port(p))?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("{s:?}: unexpected {after:?} after ']'")),
        };
    }
    if s.matches(':').count() > 1 {
        return Ok((s, None)); // a bare IPv6 address
    }
    match s.split_once(':') {
        Some((h, p)) => Ok((h, Some(p.parse().map_err(|_| bad_port(p))?))),
        None => Ok((s, None)),
    }
}

impl HostPattern {
    /// The pattern for exactly `host` at `port`.
    pub fn exact(host: &str, port: Option<u16>) -> Self {
        Self {
            host: HostMatch::Exact(host.trim_matches(['[', ']']).to_ascii_lowercase()),
            port,
        }
    }

    /// Whether `host` (lower case, IPv6 without brackets) at `port` matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        }
    }

    /// The IP address this pattern names exactly, if it is one.
    fn ip(&self) -> Option<IpAddr> {
        match &self.host {
            HostMatch::Exact(h) => h.parse().ok(),
            HostMatch::Suffix(_) => None,
        }
    }
}

/// The outbound policy of a [`Fetcher`](crate::Fetcher); see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Hosts that may be fetched from. Empty: none but the targets of URL rewrites.
    pub allowed_hosts: Vec<HostPattern>,
    /// Networks whose addresses may be connected to although they are loopback, private,
    /// link-local or otherwise special (`10.20.0.0/16` for a data centre's own responder).
    pub allowed_networks: Vec<IpNet>,
    /// URLs of each kind (OCSP, CRL distribution points, caIssuers) tried per certificate.
    pub max_urls_per_certificate: usize,
    /// Network fetches one request (one verification) may make; answers served from the
    /// caches are free.
    pub max_fetches_per_request: usize,
    /// Hosts whose failures the circuit breakers remember; beyond it new failing hosts are
    /// not tracked (the map stays bounded whatever hosts documents name).
    pub max_tracked_hosts: usize,
}

impl Default for FetchPolicy {
    /// Fail closed: no host is allowed until the configuration names some.
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_networks: Vec::new(),
            max_urls_per_certificate: 4,
            max_fetches_per_request: 32,
            max_tracked_hosts: 1024,
        }
    }
}

/// Why the policy refused a URL; goes into the evidence and the report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyRefusal {
    /// The host is not on the allow-list.
    #[error("not fetched: host {0} is not allowed by the fetch policy")]
    Host(String),
    /// The host resolves (or is) only to addresses the policy refuses.
    #[error("not fetched: {host} is {addr}, a {kind} address the fetch policy refuses")]
    Address {
        /// The host of the URL.
        host: String,
        /// The first refused address.
        addr: IpAddr,
        /// "loopback", "private", "link-local (cloud metadata)", ...
        kind: &'static str,
    },
    /// This request has made as many fetches as it may.
    #[error("not fetched: this request already made {0} fetches, the most allowed")]
    Budget(usize),
}

impl FetchPolicy {
    /// Whether `host:port` of a URL found in a certificate may be fetched.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        self.allowed_hosts.iter().any(|p| p.matches(host, port))
    }

    /// Whether `addr` may be connected to: public, or listed (an allowed network, or an
    /// IP address the allow-list names exactly). `None` when allowed, else its kind.
    pub fn refuses_addr(&self, addr: IpAddr) -> Option<&'static str> {
        let kind = special_kind(addr)?;
        let listed = self.allowed_networks.iter().any(|n| n.contains(&addr))
            || self.allowed_hosts.iter().any(|p| p.ip() == Some(addr));
        (!listed).then_some(kind)
    }
}

/// The hosts a CA certificate names itself (OCSP, CRL distribution points, caIssuers),
/// each at its port: the default allow-list is made of those of the configured CAs.
pub fn hosts_named_by(cert: &kyso_pki::cert::Cert) -> Vec<HostPattern> {
    let mut urls = crate::ocsp_urls(cert).unwrap_or_default();
    urls.extend(kyso_pki::path::aia_urls(
        cert,
        const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
    ));
    for point in crate::crl_points(cert).unwrap_or_default() {
        urls.extend(point.into_urls());
    }
    let mut out: Vec<HostPattern> = Vec::new();
    for u in urls {
        let Ok(url) = reqwest::Url::parse(&u) else {
            continue;
        };
        if let (Some(h), Some(port)) = (url.host_str(), url.port_or_known_default()) {
            let p = HostPattern::exact(h, Some(port));
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The kind of a non-public address, `None` for a public one. IPv4 addresses mapped or
/// translated into IPv6 are judged as the IPv4 address they carry.
pub fn special_kind(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) => special_v4(a),
        IpAddr::V6(a) => special_v6(a),
    }
}

fn special_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [b0, b1, ..] = a.octets();
    Some(if a.is_loopback() {
        "loopback"
    } else if a.is_private() {
        "private"
    } else if a == Ipv4Addr::new(169, 254, 169, 254) {
        "link-local (cloud metadata)"
    } else if a.is_link_local() {
        "link-local"
    } else if b0 == 100 && (64..128).contains(&b1) {
        "shared (carrier-grade NAT)"
    } else if b0 == 0 || a.is_broadcast() || b0 >= 240 {
        "reserved"
    } else if a.is_multicast() {
        "multicast"
    } else if a.is_documentation() || (b0 == 198 && (b1 == 18 || b1 == 19)) {
        "documentation or benchmarking"
    } else {
        return None;
    })
}

fn special_v6(a: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = a.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let s = a.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        let [.., a, b, c, d] = a.octets();
        return special_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(if a.is_loopback() {
        "loopback"
    } else if a.is_unspecified() {
        "reserved"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "private (unique local)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if a.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation or benchmarking"
    } else {
        return None;
    })
}

/// The fetches one request may still make, shared by the tasks of that request.
#[derive(Clone, Debug)]
pub struct RequestFetches {
    used: Arc<AtomicUsize>,
    max: usize,
}

tokio::task_local! {
    static FETCHES: RequestFetches;
}

impl RequestFetches {
    /// Takes one fetch; the refusal when the request has used them all.
    fn take(&self) -> Result<(), PolicyRefusal> {
        let before = self.used.fetch_add(1, Ordering::Relaxed);
        if before >= self.max {
            return Err(PolicyRefusal::Budget(self.max));
        }
        Ok(())
    }

    /// Fetches made so far.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed).min(self.max)
    }
}

/// Runs `f` as one request: every network fetch made inside it (OCSP, CRL, AIA) counts
/// against `max`. Fetches outside any request (background refreshes) are not counted.
pub async fn per_request<F: Future>(max: usize, f: F) -> F::Output {
    let fetches = RequestFetches {
        used: Arc::new(AtomicUsize::new(0)),
        max,
    };
    FETCHES.scope(fetches, f).await
}

/// Takes one fetch from the current request's budget, if there is one.
pub(crate) fn take_fetch() -> Result<(), PolicyRefusal> {
    FETCHES.try_with(RequestFetches::take).unwrap_or(Ok(()))
}

/// The policy as the fetcher applies it: the configured policy and the hosts the operator
/// named as URL rewrite targets (those may be fetched from and resolve anywhere).
#[derive(Clone, Debug)]
pub(crate) struct Outbound {
    pub(crate) policy: Arc<FetchPolicy>,
    /// (host, port) of every rewrite target.
    operator_hosts: Arc<HashSet<(String, u16)>>,
}

impl Outbound {
    pub(crate) fn new(policy: &FetchPolicy, rewrites: &[crate::UrlRewrite]) -> Self {
        let operator_hosts = rewrites
            .iter()
            .filter_map(|r| reqwest::Url::parse(&r.to).ok())
            .filter_map(|u| Some((url_host(u.host_str()?), u.port_or_known_default()?)))
            .collect();
        Self {
            policy: Arc::new(policy.clone()),
            operator_hosts: Arc::new(operator_hosts),
        }
    }

    /// The resolver that applies the address rules.
    pub(crate) fn resolver(&self) -> PolicyResolver {
        PolicyResolver {
            policy: Arc::clone(&self.policy),
            operator_hosts: Arc::clone(&self.operator_hosts),
        }
    }

    /// The verdict on `url`'s host, `rewritten` when a URL rewrite made it (the operator
    /// chose that host). The addresses of named hosts are judged when they are resolved.
    pub(crate) fn check_url(
        &self,
        url: &reqwest::Url,
        rewritten: bool,
    ) -> Result<(), PolicyRefusal> {
        let host = url_host(url.host_str().unwrap_or_default());
        let port = url.port_or_known_default().unwrap_or(0);
        let operator = rewritten || self.operator_hosts.contains(&(host.clone(), port));
        if !operator && !self.policy.allows_host(&host, port) {
            return Err(PolicyRefusal::Host(format!("{host}:{port}")));
        }
        // An IP literal is not resolved: its address is judged here.
        if let (false, Ok(addr)) = (operator, host.parse::<IpAddr>())
            && let Some(kind) = self.policy.refuses_addr(addr)
        {
            return Err(PolicyRefusal::Address { host, addr, kind });
        }
        Ok(())
    }
}

/// A URL's host as the allow-list compares it: lower case, IPv6 without brackets.
fn url_host(h: &str) -> String {
    h.trim_matches(['[', ']']).to_ascii_lowercase()
}

/// The DNS resolver of the fetcher: the system resolver, with the addresses the policy
/// refuses removed (all of them refused: the lookup fails with the reason). Hosts that
/// the operator named as rewrite targets may resolve anywhere.
#[derive(Debug)]
pub(crate) struct PolicyResolver {
    policy: Arc<FetchPolicy>,
    /// (host, port) of the URL rewrite targets.
    operator_hosts: Arc<HashSet<(String, u16)>>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let policy = Arc::clone(&self.policy);
        // The resolver sees no port: a name the operator chose is its own at any port.
        let trusted = self.operator_hosts.iter().any(|(h, _)| *h == host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let mut refused = None;
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.refuses_addr(a.ip()) {
                    None => true,
                    Some(kind) => {
                        refused.get_or_insert((a.ip(), kind));
                        false
                    }
                })
                .collect();
            match (kept.is_empty(), refused) {
                (true, Some((addr, kind))) => Err(Box::new(PolicyRefusal::Address {
                    host: host.clone(),
                    addr,
                    kind,
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pat(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_hosts_ports_and_suffixes() {
        assert!(pat("ocsp.ca.gov.vn").matches("ocsp.ca.gov.vn", 80));
        assert!(pat("OCSP.ca.gov.vn:80").matches("ocsp.ca.gov.vn", 80));
        assert!(!pat("ocsp.ca.gov.vn:80").matches("ocsp.ca.gov.vn", 8080));
        assert!(pat("*.ca.gov.vn").matches("crl.ca.gov.vn", 443));
        assert!(!pat("*.ca.gov.vn").matches("ca.gov.vn", 443));
        assert!(!pat("*.ca.gov.vn").matches("evilca.gov.vn", 443));
        assert!(pat("[::1]:8080").matches("::1", 8080));
        assert!(pat("2001:db8::1").matches("2001:db8::1", 1));
        assert!("*".parse::<HostPattern>().is_err());
        assert!("a.*.vn".parse::<HostPattern>().is_err());
        assert!("host:port".parse::<HostPattern>().is_err());
        assert_eq!(pat("*.ca.gov.vn:80").to_string(), "*.ca.gov.vn:80");
    }

    #[test]
    fn special_addresses_are_refused_unless_listed() {
        let mut p = FetchPolicy::default();
        for (a, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "reserved"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),
            ("fd00:ec2::254", "private (unique local)"),
            ("fe80::1", "link-local"),
        ] {
            assert_eq!(p.refuses_addr(a.parse().unwrap()), Some(kind), "{a}");
        }
        assert_eq!(p.refuses_addr("203.162.4.190".parse().unwrap()), None);
        assert_eq!(p.refuses_addr("2402:800::1".parse().unwrap()), None);
        p.allowed_networks.push("10.20.0.0/16".parse().unwrap());
        p.allowed_hosts.push(pat("127.0.0.1:8080"));
        assert_eq!(p.refuses_addr("10.20.3.4".parse().unwrap()), None);
        assert_eq!(p.refuses_addr("127.0.0.1".parse().unwrap()), None);
        assert!(p.refuses_addr("10.21.0.1".parse().unwrap()).is_some());
    }
}

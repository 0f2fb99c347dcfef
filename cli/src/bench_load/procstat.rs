//! The processes' CPU time and memory during the run: from `/proc/PID` when the verifier's pid
//! is given (and for this load generator itself), else from the verifier's Prometheus
//! `/metrics` (`process_cpu_seconds_total`, `process_resident_memory_bytes`), which also gives
//! the cache sizes (`kyso_revocation_cache_entries`) and their bounds
//! (`kyso_verifier_cache_bound`).

use std::collections::BTreeMap;
use std::time::Duration;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// CPU seconds and RSS of `/proc/<pid>` (`self` for this process).
pub fn read_proc(pid: &str) -> Option<ProcSample> {
    let (cpu_s, _) = crate::bench::cpu_seconds(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu_s,
        rss_bytes: rss_kb * 1024,
    })
}

/// Machine-wide busy and total CPU ticks (`/proc/stat`), to tell how busy the machine was.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The metric samples of a Prometheus text exposition: `name{labels}` → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            out.insert(key.trim().to_owned(), v);
        }
    }
    out
}

/// `GET url` over plain HTTP/1.1 (the metrics port), bounded in time and size.
pub async fn http_get(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.take(16 << 20).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return None;
        }
        // A chunked body would need decoding; the exposition here is sent whole.
        Some(body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

/// What the verifier's `/metrics` says of its process and caches.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub process: Option<ProcSample>,
    /// `cache` → entries.
    pub cache_entries: BTreeMap<String, f64>,
    /// `cache/unit` → configured bound.
    pub cache_bounds: BTreeMap<String, f64>,
    /// `cache/unit` → current size in that unit (entries or bytes).
    pub cache_sizes: BTreeMap<String, f64>,
}

fn label<'a>(key: &'a str, name: &str) -> Option<&'a str> {
    let start = key.find(&format!("{name}=\""))? + name.len() + 2;
    let len = key.get(start..)?.find('"')?;
    key.get(start..start + len)
}

/// Reads the verifier's `/metrics`.
pub async fn scrape(url: &str) -> Option<Scrape> {
    let m = parse_metrics(&http_get(url).await?);
    let mut s = Scrape {
        process: match (
            m.get("process_cpu_seconds_total"),
            m.get("process_resident_memory_bytes"),
        ) {
            (Some(c), Some(r)) => Some(ProcSample {
                cpu_s: *c,
                rss_bytes: *r as u64,
            }),
            _ => None,
        },
        ..Scrape::default()
    };
    for (k, v) in &m {
        let (cache, unit) = (label(k, "cache"), label(k, "unit"));
        let name = k.split('{').next().unwrap_or_default();
        match (name, cache, unit) {
            ("kyso_revocation_cache_entries", Some(c), _) => {
                s.cache_entries.insert(c.to_owned(), *v);
            }
            ("kyso_verifier_cache_bound", Some(c), Some(u)) => {
                s.cache_bounds.insert(format!("{c}/{u}"), *v);
            }
            ("kyso_verifier_cache_size", Some(c), Some(u)) => {
                s.cache_sizes.insert(format!("{c}/{u}"), *v);
            }
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = read_proc("self").unwrap_or_default();
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn parses_an_exposition_and_its_labels() {
        let m = parse_metrics(
            "# HELP x\nkyso_verifier_cache_bound{cache=\"ocsp\",unit=\"entries\"} 100000\nprocess_cpu_seconds_total 1.5\n",
        );
        assert_eq!(m.get("process_cpu_seconds_total"), Some(&1.5));
        let k = "kyso_verifier_cache_bound{cache=\"ocsp\",unit=\"entries\"}";
        assert_eq!(m.get(k), Some(&100000.0));
        assert_eq!(label(k, "cache"), Some("ocsp"));
        assert_eq!(label(k, "unit"), Some("entries"));
    }
}

//! Who is calling: the client certificate of the connection (mTLS), and the actor a change
//! records once the call is admitted.

use std::collections::HashMap;
use std::sync::Arc;

use der::Decode;
use tonic::Request;
use tonic::transport::CertificateDer;

use super::role::Role;
use crate::error::{Error, Result};

/// The caller of one request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A client certificate the TLS handshake verified against the registry's client CA.
    Certificate {
        /// SHA-256 of the leaf's DER, lowercase hex: the key of the role map.
        fingerprint: Fingerprint,
        /// The chain the client presented, leaf first (shared with the connection).
        chain: Arc<Vec<CertificateDer<'static>>>,
    },
    /// Plaintext on loopback with `access.development_plaintext`: no certificate, and every
    /// caller is a provincial administrator. Development only; logged loudly at start.
    Development,
}

impl Caller {
    /// The caller of `req`: its client certificate, else the development caller when the
    /// registry serves plaintext for development, else refused (UNAUTHENTICATED).
    pub fn of<T>(req: &Request<T>, development: bool, cache: &FingerprintCache) -> Result<Self> {
        let chain = req.peer_certs();
        match chain {
            Some(chain) if !chain.is_empty() => Ok(Self::Certificate {
                fingerprint: cache.of(&chain),
                chain,
            }),
            _ if development => Ok(Self::Development),
            _ => Err(Error::Unauthenticated(
                "no client certificate: the registry requires mTLS".into(),
            )),
        }
    }

    /// The certificate's fingerprint ("" for the development caller).
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Certificate { fingerprint, .. } => fingerprint.as_str(),
            Self::Development => "",
        }
    }

    /// The certificate's subject (RFC 4514, as the registry renders every name).
    pub fn subject(&self) -> String {
        match self {
            Self::Certificate { chain, .. } => chain
                .first()
                .and_then(|c| x509_cert::Certificate::from_der(c).ok())
                .map(|c| kyso_pki::name::rfc4514(&c.tbs_certificate.subject))
                .unwrap_or_else(|| "(unreadable subject)".into()),
            Self::Development => DEVELOPMENT.into(),
        }
    }

    /// The caller as refusals and logs name it: subject and fingerprint.
    pub fn describe(&self) -> String {
        match self {
            Self::Certificate { fingerprint, .. } => {
                format!("{} (sha256 {})", self.subject(), fingerprint.as_str())
            }
            Self::Development => DEVELOPMENT.into(),
        }
    }
}

/// A certificate's SHA-256 as lowercase hex, on the stack: computed for every request on the
/// hot path (`Authorize`), so it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 64]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let mut out = [b'0'; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(digest.as_ref()) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        Self(out)
    }

    /// As text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fingerprints of the connections' certificates, so a connection's many requests hash its
/// certificate once: keyed by the address of the chain tonic shares between the requests of one
/// connection. An entry holds that chain (an `Arc`), so the address cannot be reused by another
/// connection while the entry exists; entries whose chain no connection holds any more are
/// dropped when the map grows past [`FingerprintCache::SWEEP_AT`].
#[derive(Debug, Default)]
pub struct FingerprintCache {
    map: std::sync::RwLock<HashMap<usize, (Chain, Fingerprint)>>,
}

type Chain = Arc<Vec<CertificateDer<'static>>>;

impl FingerprintCache {
    /// Entries past which the ones of closed connections are dropped.
    pub const SWEEP_AT: usize = 1024;

    /// The fingerprint of `chain`'s leaf (the caller checks that there is one).
    pub fn of(&self, chain: &Chain) -> Fingerprint {
        let key = Arc::as_ptr(chain) as usize;
        if let Ok(map) = self.map.read()
            && let Some((held, fp)) = map.get(&key)
            && Arc::ptr_eq(held, chain)
        {
            return *fp;
        }
        let fp = chain
            .first()
            .map(|leaf| Fingerprint::of(leaf))
            .unwrap_or(Fingerprint([b'0'; 64]));
        if let Ok(mut map) = self.map.write() {
            if map.len() >= Self::SWEEP_AT {
                map.retain(|_, (held, _)| Arc::strong_count(held) > 1);
            }
            if map.len() < 2 * Self::SWEEP_AT {
                map.insert(key, (chain.clone(), fp));
            }
        }
        fp
    }
}

const DEVELOPMENT: &str = "development caller (plaintext, no certificate)";

/// How an actor came to be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// By its roles in the `roles` table, checked again inside each change's transaction.
    Roles,
    /// A bootstrap administrator named in the configuration (provincial-admin).
    Bootstrap,
    /// The development caller (plaintext on loopback).
    Development,
    /// An operator's tool writing the database directly (it holds the database credentials,
    /// so the registry's roles do not apply), e.g. the benchmark's synthetic province.
    Local,
}

/// Who makes a change, as the event log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The certificate's subject, or what the caller is.
    pub name: String,
    /// The certificate's fingerprint; empty without one.
    pub fingerprint: String,
    /// The role that admitted the call.
    pub role: Role,
    /// How it was allowed.
    pub source: Source,
    /// The RPC that makes the change (refusals name it).
    pub call: &'static str,
}

impl Actor {
    /// The actor of an admitted call.
    pub fn of(caller: &Caller, role: Role, source: Source, call: super::Call) -> Self {
        Self {
            name: caller.subject(),
            fingerprint: caller.fingerprint().to_owned(),
            role,
            source,
            call: call.name(),
        }
    }

    /// An operator's tool writing the database directly (see [`Source::Local`]).
    pub fn local(tool: &str) -> Self {
        Self {
            name: format!("local tool: {tool}"),
            fingerprint: String::new(),
            role: Role::ProvincialAdmin,
            source: Source::Local,
            call: "",
        }
    }

    /// As refusals name it.
    pub fn describe(&self) -> String {
        if self.fingerprint.is_empty() {
            self.name.clone()
        } else {
            format!("{} (sha256 {})", self.name, self.fingerprint)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_lowercase_hex_sha256() {
        let der = b"not really a certificate";
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        assert_eq!(Fingerprint::of(der).as_str(), hex::encode(digest.as_ref()));
    }

    #[test]
    fn a_connection_is_hashed_once_and_closed_ones_are_swept() {
        let cache = FingerprintCache::default();
        let a: Chain = Arc::new(vec![CertificateDer::from(b"a".to_vec())]);
        let b: Chain = Arc::new(vec![CertificateDer::from(b"b".to_vec())]);
        assert_eq!(cache.of(&a), Fingerprint::of(b"a"));
        assert_eq!(cache.of(&a.clone()), Fingerprint::of(b"a"));
        assert_eq!(cache.of(&b), Fingerprint::of(b"b"));
        for _ in 0..FingerprintCache::SWEEP_AT {
            let gone: Chain = Arc::new(vec![CertificateDer::from(b"c".to_vec())]);
            cache.of(&gone);
        }
        let held = cache.map.read().map(|m| m.len()).unwrap_or_default();
        assert!(held <= FingerprintCache::SWEEP_AT, "{held}");
        assert_eq!(cache.of(&a), Fingerprint::of(b"a"));
    }
}

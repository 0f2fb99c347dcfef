//! Who is calling: the client certificate of the connection (mTLS), and the actor a change
//! records once the call is admitted.

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
        fingerprint: String,
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
    pub fn of<T>(req: &Request<T>, development: bool) -> Result<Self> {
        let chain = req.peer_certs();
        match chain {
            Some(chain) if !chain.is_empty() => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &chain[0]);
                Ok(Self::Certificate {
                    fingerprint: hex::encode(digest.as_ref()),
                    chain,
                })
            }
            _ if development => Ok(Self::Development),
            _ => Err(Error::Unauthenticated(
                "no client certificate: the registry requires mTLS".into(),
            )),
        }
    }

    /// The certificate's fingerprint ("" for the development caller).
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Certificate { fingerprint, .. } => fingerprint,
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
                format!("{} (sha256 {fingerprint})", self.subject())
            }
            Self::Development => DEVELOPMENT.into(),
        }
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
}

impl Actor {
    /// The actor of an admitted call.
    pub fn of(caller: &Caller, role: Role, source: Source) -> Self {
        Self {
            name: caller.subject(),
            fingerprint: caller.fingerprint().to_owned(),
            role,
            source,
        }
    }

    /// An operator's tool writing the database directly (see [`Source::Local`]).
    pub fn local(tool: &str) -> Self {
        Self {
            name: format!("local tool: {tool}"),
            fingerprint: String::new(),
            role: Role::ProvincialAdmin,
            source: Source::Local,
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

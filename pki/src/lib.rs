//! `kyso-pki`: the PKI core of kyso, without any gRPC.
//!
//! - [`ber`]: BER to DER normalisation (openssl `-stream` output is BER).
//! - [`cms`]: CMS SignedData parsing and the per-signer cryptographic checks.
//! - [`cms_build`]: CAdES-BES SignedData building, two-phase for HSM keys.
//! - [`crypto`]: digests and signature verification (aws-lc-rs).
//! - [`cert`]: a parsed certificate with its DER, fingerprint and identity.
//! - [`path`]: certification path building and RFC 5280 checks.
//! - [`revocation`]: OCSP and CRL clients behind bounded, coalescing caches.
//! - [`verify`]: the whole verification of a signature into a [`report`].
//!
//! Time-dependent functions take the reference time and "now" as parameters.

pub mod ber;
pub mod cert;
pub mod cms;
pub mod cms_build;
pub mod crypto;
pub mod error;
pub mod metrics;
pub mod pades;
pub mod path;
pub mod pdf;
pub mod report;
pub mod revocation;
pub mod time;
pub mod verify;

pub use error::{Error, Result};

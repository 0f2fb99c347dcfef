//! `kyso-pki`: ASN.1, CMS, certificates and certification paths, with no I/O.
//!
//! Everything here is a pure function of its inputs (bytes, the reference time,
//! "now"): it parses, builds and checks, and never opens a socket, a file or a
//! database. Fetching OCSP responses, CRLs and AIA certificates is the job of
//! `kyso-revocation` (the path builder asks for issuers through
//! [`path::IssuerSource`]); judging a signature into a report is `kyso-validation`;
//! PDF files are `kyso-pdf` and `kyso-pades`.
//!
//! - [`ber`]: BER to DER normalisation (openssl `-stream` output is BER).
//! - [`cms`]: CMS SignedData parsing and the per-signer cryptographic checks.
//! - [`cms_build`]: CAdES-BES SignedData building, two-phase for HSM keys.
//! - [`crypto`]: digests and signature verification (aws-lc-rs).
//! - [`cert`]: a parsed certificate with its DER, fingerprint and identity.
//! - [`name`]: the one text rendering of X.509 names (RFC 4514, UTF-8).
//! - [`path`]: certification path building and RFC 5280 checks.
//! - [`time`]: ASN.1 times and RFC 3339.
//! - [`tsp`]: RFC 3161 timestamp requests, responses and token verification.

pub mod ber;
pub mod cert;
pub mod cms;
pub mod cms_build;
pub mod crypto;
pub mod error;
pub mod name;
pub mod orgcode;
pub mod path;
pub mod time;
pub mod tsp;

pub use error::{Error, Result};

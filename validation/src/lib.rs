//! `kyso-validation`: the verification engine shared by the verifier service and
//! the signer (its check of its own certificates, N1, and of the documents it
//! receives).
//!
//! - [`verify`]: [`verify::Verifier`], the whole judgement of a CMS signature or a
//!   certificate: cryptography, path, validity and revocation at the reference time.
//! - [`pdf`]: `Verifier::verify_pdf`, the CMS checks of each PDF signature over its
//!   byte range folded with the PDF reader's checks.
//! - [`edxml`]: `Verifier::verify_edxml`, an edXML envelope's XML signature judged like a
//!   CMS signer, and its attached PDFs and CMS verified as documents of their own.
//! - [`certsource`]: where a signer's certificate may come from when the signature
//!   does not carry it (the caller's certificates; a service's book, behind a trait).
//! - `poe`: the reference time (the best proof of existence, never the claimed time)
//!   and the claimed time's plausibility (issue 16 item 4).
//! - [`pinned`]: the government roots pinned by fingerprint, the default trust.
//! - [`timestamps`]: signature and document timestamps judged as proofs of existence
//!   (the token, its TSA's path and revocation at the token's own proof of existence).
//! - `archive`: a token's own proof of existence: a later document timestamp covering
//!   it, else now (never its genTime); the latest document timestamp is judged first.
//! - [`report`]: the ETSI EN 319 102-1 style report (indication, sub-indication).
//! - [`config`]: the trust configuration (`trust_anchors`, `intermediates`,
//!   `[revocation]`, ...) as the verifier's file and the signer's `[trust]` write it.
//! - [`convert`]: the report to and from its protobuf form.
//!
//! It does not serve gRPC, bind sockets or read requests (that is the verifier
//! service), parse PDFs itself (`kyso-pdf`) nor fetch anything itself: the HTTP
//! client and caches of OCSP, CRL and AIA are `kyso-revocation`'s.

mod archive;
pub mod certsource;
pub mod config;
pub mod convert;
pub mod edxml;
mod embedded;
pub mod pdf;
pub mod pinned;
mod poe;
pub mod report;
pub mod timestamps;
pub mod verify;

//! The fuzz targets' bodies, one function per parser family that reads
//! untrusted bytes. Each takes arbitrary bytes and must return without
//! panicking, in bounded time and memory; a panic is a finding.
//!
//! Two callers: the cargo-fuzz binaries in `fuzz/fuzz_targets/` (one-line
//! wrappers, nightly and libFuzzer), and the platform test `fuzz_replay`,
//! which runs every file of `fuzz/corpus/<name>/` and
//! `fuzz/regressions/<name>/` through [`TARGETS`] on the stable toolchain,
//! so the corpora and every crash found stay tested by the ordinary test
//! command.

mod certs;
mod cms;
mod edxml;
mod pdf;
mod png;
mod revocation;
mod tsp;
mod xml_c14n;

pub use certs::certs;
pub use cms::cms;
pub use edxml::{edxml_open, edxml_read, edxml_status, organ_id};
pub use pdf::pdf;
pub use png::png;
pub use revocation::revocation;
pub use tsp::tsp;
pub use xml_c14n::xml_c14n;

/// A target's body: arbitrary bytes in, nothing out; a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target by name: the cargo-fuzz binary, `fuzz/corpus/<name>/` and
/// `fuzz/regressions/<name>/` all use this name. A target added here without
/// a seed corpus fails the replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("cms", cms),
    ("certs", certs),
    ("pdf", pdf),
    ("png", png),
    ("revocation", revocation),
    ("tsp", tsp),
    ("xml_c14n", xml_c14n),
    ("edxml_open", edxml_open),
    ("edxml_read", edxml_read),
    ("edxml_status", edxml_status),
    ("organ_id", organ_id),
];

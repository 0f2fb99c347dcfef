//! PDF: PAdES signing and rendered appearances, verification and attacks, pyHanko, pdfsig
//! and qpdf as peers, and the PDF verification benchmark.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod bench;
mod interop;
mod ltv;
mod pades;
mod pades_render;
mod past;
mod peers;
mod poe;
mod verify;

//! The signer on SoftHSM2 behind p11-kit: signing and refusals, HSM slots, PDF signing,
//! the audit log, the document flow (retries and readiness included), signature levels with
//! the TSA budget (N1, D7) and the signing benchmark.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod anchors;
mod archive;
mod audit;
mod bench;
mod callgrind;
mod certbook;
mod consent;
mod documents;
mod exchange;
mod exchange_seal;
mod hsm;
mod levels;
mod outside;
mod pdf;
mod readiness;
mod retry;
mod side_doors;
mod sign;

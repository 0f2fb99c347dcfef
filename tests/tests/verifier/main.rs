//! The verifier service over gRPC and the `kyso verify` command line.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod admission;
mod batch;
mod clerk;
mod cli;
mod edxml_dsig;
mod hostile;
mod poe;
mod service;

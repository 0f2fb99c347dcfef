//! The verifier service over gRPC and the `kyso verify` command line.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod admission;
mod batch;
mod bench_load;
mod clerk;
mod cli;
mod edxml_dsig;
mod hostile;
mod poe;
mod scaleout;
mod service;

/// Tests that load the machine with processes of their own (`scaleout`: two verifier
/// processes under load) and tests that bound latencies (`hostile`) take turns: on two cores
/// the first would break the second's bounds.
pub(crate) static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

//! Deployment and upkeep: the Helm chart against the services' real metrics and configs, the
//! rule catalogue (docs/RULES.md) against the rule IDs the code cites, and the fuzz corpora
//! replayed through the fuzz targets (docs/FUZZING.md).
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod chart;
mod fuzz_replay;
mod fuzz_seeds;
mod rules;

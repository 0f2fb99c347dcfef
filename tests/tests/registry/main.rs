//! The registry: the subscriber book and authority rules on SQLite and PostgreSQL, the
//! in-memory index against the SQL reference, the benchmark's seeded province, and `kyso
//! registry`.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod book;
mod cli;
mod index;
mod names;
mod seed;

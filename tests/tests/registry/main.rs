//! The registry: the subscriber book and authority rules on SQLite and PostgreSQL, the
//! in-memory index against the SQL reference, the benchmark's seeded province, and `kyso
//! registry`.
//!
//! The service's end-to-end scenarios are split by topic (`authority`, `certificates`,
//! `events`, `organisations`, `reports`, `status_history`, `unlock`) over one shared `setup`:
//! the service on either backend, the sample province and the request helpers.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod access;
mod anchors;
mod authority;
mod certificates;
mod cli;
mod events;
mod index;
mod jurisdiction;
mod names;
mod organisations;
mod reports;
mod seal;
mod seed;
mod setup;
mod status_history;
mod unlock;

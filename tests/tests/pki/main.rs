//! PKI core: CMS parsing, building and co-signing, verdicts against openssl, revocation
//! caches, the real government CA certificates, and the test harness itself.
//!
//! One test binary per area (modules inside): each binary is linked once, which is most of
//! the test gate's build time.

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

mod cms_build;
mod cms_cosign;
mod cms_parse;
mod cms_verdicts;
mod fetch_policy;
mod harness;
mod path_budget;
mod pinned_roots;
mod revocation_cache;
mod tsp;
mod vgca;

//! Who may sign what: the `Authorize` and `CheckAuthority` rules (DOMAIN.md A1-A5, A7, V1, V3,
//! N7), written once (rules.rs) over a small trait of the facts they read (facts.rs).
//!
//! Two sources implement the facts: the in-memory index (index/, what production answers
//! from, kept in step with every commit) and the SQL loader (sql.rs, one query per fact, the
//! reference the index is tested against). Dependencies point one way: the store and the
//! service use this module; it uses only storage, policy, cert and error.

pub mod decision;
pub mod facts;
pub mod index;
pub mod request;
pub mod rule;
pub mod rules;
pub mod sql;

pub use decision::{AuthorityCheck, Decision, Refusal};
pub use facts::Facts;
pub use index::Index;
pub use request::{AuthorizeQuery, CheckQuery};
pub use rule::Rule;
pub use sql::SqlFacts;

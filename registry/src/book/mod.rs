//! The registry's book: organisations, people, titles and appointments, certificates,
//! custodians, delegations, unlock requests, usage, registers, reports and the event log,
//! one module per entity.
//!
//! Every change is one write transaction committed together with its event-log entry
//! (storage.rs), so the log and the state never disagree; every refusal names its rule
//! (DOMAIN.md). The book takes and answers domain types (model.rs): the service converts
//! protobuf at its edge (convert.rs) and checks there what is about the wire (fields
//! missing, enum values unknown, timestamps impossible); the rules about the data are here.

pub mod model;
pub mod seed;
pub(crate) mod shared;

mod audit_anchors;
mod certificates;
mod custodians;
mod delegations;
mod events;
mod organisations;
mod people;
mod registers;
mod reports;
mod roles;
pub(crate) mod search;
mod statuses;
mod titles;
mod unlocks;
mod usage;

pub(crate) use audit_anchors::log_id;
pub use search::search_key;

use crate::storage::Db;

/// The book over a database, with the deployment's mail domain (I1).
#[derive(Clone, Debug)]
pub struct Book {
    db: Db,
    mail_domain: String,
}

impl Book {
    /// A book over a connected database; `mail_domain` is checked by the config (I1).
    pub fn new(db: Db, mail_domain: String) -> Self {
        Self { db, mail_domain }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

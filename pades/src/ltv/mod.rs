//! Long-term validation (ETSI EN 319 142-1 §5.4 and §5.5): the writers that take a
//! PAdES signature from B-T to B-LT (a Document Security Store with the validation data,
//! [`dss`]) and to B-LTA (a document time-stamp over the whole file, [`doc_timestamp`]).
//!
//! Both are incremental updates: the bytes already signed stay the prefix of the
//! result (D7), so every earlier signature still covers exactly what it signed.
//! Like the signature writer they do no I/O and judge nothing: the caller fetches
//! the certificates, OCSP responses, CRLs and the time-stamp token, and
//! `kyso-validation` says what the result is worth.

pub mod doc_timestamp;
pub mod dss;

pub use doc_timestamp::{DocTimestampRequest, PreparedDocTimestamp, prepare_document_timestamp};
pub use dss::{
    DssAdded, DssContents, DssUpdate, SignatureContents, SignatureValidationData, VriCounts,
    add_dss, read_dss, signature_contents, vri_key,
};

#[cfg(test)]
mod tests;

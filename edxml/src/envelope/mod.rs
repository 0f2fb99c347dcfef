//! The edXML envelope (N6): the typed model, the strict reader over the parsed tree (the
//! same tree the signature is verified over) and the deterministic writer.

pub mod model;
pub mod read;
pub mod write;

#[cfg(test)]
mod tests;

pub use model::{DSIG_NS, Envelope, QCVN_NS};
pub use read::{Message, Read, read, read_bytes};
pub use write::{Written, write, write_status};

//! Access control: who may call what (issue 12).
//!
//! - The caller is its client certificate (mTLS on every listener; [`caller`]): its SHA-256
//!   fingerprint and subject, never a field of the request.
//! - Roles are bound to certificates in the registry's own `roles` table (book/roles.rs), so
//!   granting and revoking are events, audited and replicated like every other change; a
//!   bootstrap administrator comes from the configuration.
//! - Every RPC declares the one right it needs in ONE table ([`call::Call::needs`]); the
//!   service checks it before any work, against the in-memory role map kept in step with the
//!   event log by the authorization index (a hash lookup on the hot path, `Authorize`).
//! - Every change is checked again inside its transaction against the database ([`scope`]):
//!   the role still held, and for an agency administrator the organisation changed inside
//!   its managing agency's subtree (I6). A revocation therefore stops writes at once on
//!   every replica, and decisions within the replica's staleness bound.

pub mod call;
pub mod caller;
pub mod gate;
pub mod role;
pub mod scope;

pub use call::Call;
pub use caller::{Actor, Caller, Source};
pub use gate::{Admitted, Gate};
pub use role::{Grant, Right, Role, RoleMap, RoleSet};

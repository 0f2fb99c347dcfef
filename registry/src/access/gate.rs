//! Admission: the caller of a request, its roles, and the right its call needs, checked
//! before any work is done.

use std::collections::HashSet;

use tonic::Request;

use super::call::Call;
use super::caller::{Actor, Caller, Source};
use super::role::{Right, Role, RoleSet};
use crate::book::model::Change;
use crate::error::{Error, Result};
use crate::store::Store;

/// What admits calls: the bootstrap administrators and the development mode, from the
/// configuration; the roles, from the store's in-memory role map.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// Fingerprints of the bootstrap administrators (provincial-admin by configuration).
    pub bootstrap_admins: HashSet<String>,
    /// Plaintext on loopback: every caller is the development caller.
    pub development_plaintext: bool,
    /// The connections' certificate fingerprints (one SHA-256 per connection, not per call).
    pub fingerprints: std::sync::Arc<super::caller::FingerprintCache>,
}

/// A call admitted: who, and the role that lets it through.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The caller.
    pub caller: Caller,
    /// The role that gives the call's right (none for a call open to anyone authenticated).
    pub role: Option<Role>,
    /// How the role is held.
    pub source: Source,
    /// Every role held now.
    pub roles: RoleSet,
    /// The call admitted.
    pub call: Call,
}

impl Admitted {
    /// `change` with its caller: what the event log records, and what the change's
    /// transaction checks again (access/scope.rs).
    pub fn stamp(&self, mut change: Change) -> Change {
        // Every change needs a right some role gives, so `role` is set; the change's
        // transaction judges the caller by its roles in the database anyway (scope.rs).
        let role = self.role.unwrap_or(Role::Reader);
        change.by = Some(Actor::of(&self.caller, role, self.source, self.call));
        change
    }
}

impl Gate {
    /// Admits `req` for `call`, or refuses it: UNAUTHENTICATED without a certificate,
    /// PERMISSION_DENIED naming the caller, the call and the missing right.
    pub async fn admit<T>(
        &self,
        store: &Store,
        call: Call,
        req: &Request<T>,
        now: i64,
    ) -> Result<Admitted> {
        let caller = Caller::of(req, self.development_plaintext, &self.fingerprints)?;
        let admin = RoleSet::default().with(Role::ProvincialAdmin);
        let (roles, source) = match &caller {
            Caller::Development => (admin, Source::Development),
            Caller::Certificate { fingerprint, .. } => {
                let fingerprint = fingerprint.as_str();
                if self.bootstrap_admins.contains(fingerprint) {
                    (admin, Source::Bootstrap)
                } else {
                    (store.roles_of(fingerprint, now).await?, Source::Roles)
                }
            }
        };
        let right = call.needs();
        // The development caller stands for every service of a loopback cluster, its signer
        // included: it may anchor that signer's audit log.
        let roles = match (&caller, right) {
            (Caller::Development, Right::Anchor) => roles.with(Role::Signer),
            _ => roles,
        };
        match roles.giving(right) {
            None if right == Right::Anyone => Ok(Admitted {
                caller,
                role: None,
                source,
                roles,
                call,
            }),
            Some(role) => Ok(Admitted {
                caller,
                role: Some(role),
                source,
                roles,
                call,
            }),
            None => Err(Error::PermissionDenied {
                caller: caller.describe(),
                call: call.name().to_owned(),
                missing: format!(
                    "the right {:?} (roles held: {})",
                    right.as_str(),
                    match roles.names() {
                        n if n.is_empty() => "none".to_owned(),
                        n => n.join(", "),
                    }
                ),
            }),
        }
    }
}

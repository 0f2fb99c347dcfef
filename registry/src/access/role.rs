//! The roles a client certificate can hold and the rights each gives.

use std::collections::HashMap;

/// A role bound to a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The signing service: `Authorize`, `CheckSeal`, `CheckAuthority`, `RecordUsage`,
    /// `RegisterDocument`, `LatestUnlock` (holder consent, I5), lookups.
    Signer,
    /// The verifying side (W3): `CheckAuthority`, lookups and finds.
    Verifier,
    /// A reading client: as the verifier.
    Reader,
    /// The administrator of one managing agency (I6): changes to the organisations under it,
    /// transitively, and to their people, appointments, certificates, custodians, delegations
    /// and unlock requests; nothing outside its subtree, no roles.
    AgencyAdmin,
    /// The province's administrator: every change, agencies and roles included.
    ProvincialAdmin,
    /// Reads the event log and the reports (R2); changes nothing.
    Auditor,
}

/// Every role, in the order they are listed.
pub const ROLES: [Role; 6] = [
    Role::Signer,
    Role::Verifier,
    Role::Reader,
    Role::AgencyAdmin,
    Role::ProvincialAdmin,
    Role::Auditor,
];

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Right {
    /// Ask `Authorize` and `CheckSeal` (the signer's hot path).
    Sign,
    /// Report usage and register documents (R2, the signer's side effects).
    Record,
    /// Ask `CheckAuthority`.
    Check,
    /// Look certificates, people, organisations, registers and holidays up.
    Read,
    /// Change organisations and what belongs to them (checked against the subtree, I6).
    Manage,
    /// Change what belongs to the whole province: document types, holidays.
    Province,
    /// Grant, revoke and list roles.
    Roles,
    /// Read the event log and the reports.
    Audit,
    /// Record the head of one's own audit log (the signer at every seal).
    Anchor,
    /// Read audit anchors (the signer at start, auditors, `kyso audit verify`).
    ReadAnchors,
    /// Anyone authenticated (`WhoAmI`).
    Anyone,
}

impl Right {
    /// The name refusals give.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Record => "record",
            Self::Check => "check",
            Self::Read => "read",
            Self::Manage => "manage",
            Self::Province => "province",
            Self::Roles => "roles",
            Self::Audit => "audit",
            Self::Anchor => "anchor",
            Self::ReadAnchors => "read-anchors",
            Self::Anyone => "anyone",
        }
    }
}

impl Role {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Verifier => "verifier",
            Self::Reader => "reader",
            Self::AgencyAdmin => "agency-admin",
            Self::ProvincialAdmin => "provincial-admin",
            Self::Auditor => "auditor",
        }
    }

    /// The role of a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        ROLES.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role gives `right`: the rights of each role, in one place.
    pub fn grants(self, right: Right) -> bool {
        use Right as R;
        match self {
            // Everything but a signer's audit anchors: those are written by the signer whose
            // log it is, so an administrator cannot move a log's head.
            Self::ProvincialAdmin => right != R::Anchor,
            Self::Signer => matches!(
                right,
                R::Sign | R::Record | R::Check | R::Read | R::Anchor | R::ReadAnchors | R::Anyone
            ),
            Self::Verifier | Self::Reader => matches!(right, R::Check | R::Read | R::Anyone),
            Self::AgencyAdmin => matches!(right, R::Manage | R::Read | R::Anyone),
            Self::Auditor => matches!(right, R::Audit | R::ReadAnchors | R::Anyone),
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The roles a certificate holds at one moment: a bit set, so the hot path allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoleSet(u8);

impl RoleSet {
    /// With `role` added.
    pub fn with(self, role: Role) -> Self {
        Self(self.0 | role.bit())
    }

    /// Whether it holds `role`.
    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// The first role held that gives `right` (the one an event records).
    pub fn giving(self, right: Right) -> Option<Role> {
        ROLES.into_iter().find(|r| self.has(*r) && r.grants(right))
    }

    /// The roles held, by name.
    pub fn names(self) -> Vec<&'static str> {
        ROLES
            .into_iter()
            .filter(|r| self.has(*r))
            .map(Role::as_str)
            .collect()
    }
}

/// One grant of a role, as the role map keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// agency-admin: the managing agency.
    pub agency_id: Option<String>,
    /// From when (unix seconds).
    pub valid_from: i64,
    /// Until when, if limited.
    pub valid_to: Option<i64>,
}

impl Grant {
    /// Whether the grant is in force at `now` (revoked grants are not in the map at all).
    pub fn in_force(&self, now: i64) -> bool {
        self.valid_from <= now && self.valid_to.is_none_or(|to| now < to)
    }
}

/// Certificate fingerprint (lowercase hex) -> its grants not revoked.
pub type RoleMap = HashMap<String, Vec<Grant>>;

/// The roles `grants` give at `now`.
pub fn roles_at(grants: &[Grant], now: i64) -> RoleSet {
    grants
        .iter()
        .filter(|g| g.in_force(now))
        .fold(RoleSet::default(), |set, g| set.with(g.role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_provincial_admin_manages_roles_and_the_province() {
        for r in ROLES {
            assert_eq!(r.grants(Right::Roles), r == Role::ProvincialAdmin, "{r:?}");
            assert_eq!(
                r.grants(Right::Province),
                r == Role::ProvincialAdmin,
                "{r:?}"
            );
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(!Role::Signer.grants(Right::Manage));
        assert!(!Role::Auditor.grants(Right::Read));
        assert!(Role::AgencyAdmin.grants(Right::Manage));
    }

    #[test]
    fn only_the_signer_records_audit_anchors() {
        for r in ROLES {
            assert_eq!(r.grants(Right::Anchor), r == Role::Signer, "{r:?}");
            assert_eq!(
                r.grants(Right::ReadAnchors),
                matches!(r, Role::Signer | Role::Auditor | Role::ProvincialAdmin),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_grant_limited_in_time_ends() {
        let g = Grant {
            role: Role::Signer,
            agency_id: None,
            valid_from: 10,
            valid_to: Some(20),
        };
        assert_eq!(roles_at(std::slice::from_ref(&g), 5), RoleSet::default());
        assert!(roles_at(std::slice::from_ref(&g), 10).has(Role::Signer));
        assert_eq!(roles_at(&[g], 20), RoleSet::default());
    }
}

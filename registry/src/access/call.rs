//! Every RPC of `kyso.registry.v1.Registry` and the one right it needs: THE table of who may
//! call what. The service names the call when it admits a request, so an RPC without a row
//! here does not compile.

use super::role::Right;

macro_rules! calls {
    ($($call:ident => $right:ident,)*) => {
        /// An RPC of the registry.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Call {
            $(
                #[doc = concat!("`", stringify!($call), "`")]
                $call,
            )*
        }

        impl Call {
            /// Every call, for the tests that walk the table.
            pub const ALL: &'static [Call] = &[$(Call::$call,)*];

            /// The RPC's name (metrics, logs, refusals).
            pub fn name(self) -> &'static str {
                match self {
                    $(Call::$call => stringify!($call),)*
                }
            }

            /// The right a caller needs to make this call.
            pub fn needs(self) -> Right {
                match self {
                    $(Call::$call => Right::$right,)*
                }
            }
        }
    };
}

calls! {
    // The signer's hot path and its side effects.
    Authorize => Sign,
    // The seal's side doors (issue 13), asked by the signer after Authorize.
    CheckSeal => Sign,
    RecordUsage => Record,
    RegisterDocument => Record,
    // W4, N6: the status history of a registered document, recorded like the register.
    RecordDocumentStatus => Record,
    // Holder consent: the signer lifts a one-time-code lock after an approved unlock (I5).
    LatestUnlock => Sign,
    // The verifier's question (W3).
    CheckAuthority => Check,
    // A4 for signers from outside (the document flow asks, with the verifier's right).
    CheckJurisdiction => Check,
    // Lookups and finds.
    GetCertificate => Read,
    ListExpiringCertificates => Read,
    FindPeople => Read,
    FindOrganisations => Read,
    ListRegister => Read,
    // The status history and the sender's unconfirmed view (W4), read like the register.
    ListDocumentStatus => Read,
    ListUnconfirmed => Read,
    // Issue 15, item 8: a signer certificate a signature does not carry, from the book.
    FindCertificates => Read,
    ListOverdueUnlocks => Read,
    ListHolidays => Read,
    // Changes inside a managing agency's subtree (I6); the subtree is checked in the
    // change's transaction (access/scope.rs).
    CreateOrganisation => Manage,
    SetOrganisationStatus => Manage,
    UpdateOrganisation => Manage,
    CreatePerson => Manage,
    UpdatePerson => Manage,
    CreateTitle => Manage,
    CreateAppointment => Manage,
    EndAppointment => Manage,
    GrantAuthority => Manage,
    RegisterCertificate => Manage,
    ChangeCertificateStatus => Manage,
    AssignCustodian => Manage,
    CreateDelegation => Manage,
    RevokeDelegation => Manage,
    RequestUnlock => Manage,
    ResolveUnlock => Manage,
    // The whole province's settings.
    CreateDocumentType => Province,
    SetHolidays => Province,
    // Roles.
    GrantRole => Roles,
    RevokeRole => Roles,
    ListRoles => Roles,
    WhoAmI => Anyone,
    // The log and the reports (R2).
    ListEvents => Audit,
    Report => Audit,
    // Audit anchors: the signer records the head of its own log at every seal; the signer
    // (at start) and the auditors read them.
    RecordAuditAnchor => Anchor,
    GetLatestAuditAnchor => ReadAnchors,
    ListAuditAnchors => ReadAnchors,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::role::{ROLES, Role};

    #[test]
    fn the_signer_and_the_verifier_change_nothing() {
        for call in Call::ALL {
            let change = matches!(call.needs(), Right::Manage | Right::Province | Right::Roles);
            if change {
                for r in [Role::Signer, Role::Verifier, Role::Reader, Role::Auditor] {
                    assert!(!r.grants(call.needs()), "{r:?} {call:?}");
                }
            }
        }
        assert!(ROLES.iter().all(|r| r.grants(Call::WhoAmI.needs())));
    }

    #[test]
    fn every_rpc_of_the_service_has_a_row() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(kyso_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_default();
        let mut rpcs: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "kyso.registry.v1")
            .flat_map(|f| f.service.iter())
            .filter(|s| s.name() == "Registry")
            .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
            .collect();
        let mut rows: Vec<String> = Call::ALL.iter().map(|c| c.name().to_owned()).collect();
        rpcs.sort();
        rows.sort();
        assert!(!rpcs.is_empty());
        assert_eq!(rpcs, rows);
    }
}

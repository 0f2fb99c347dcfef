//! A3, A4 for each signer of an incoming document, with signers from outside the province.
//!
//! Authority is checked only for organisations the registry manages. A certificate the
//! registry judges (it knows it) is allowed or refused as always, revoked and not-entitled
//! ones included. A certificate it does not know is asked about once more
//! (`CheckJurisdiction`): issued for an organisation the registry manages (same subject as a
//! registered certificate, a subject value naming a managed organisation or holding its code,
//! a mail address in its domain, or the sender's code at or under a managed code) it is
//! refused (A4), fail closed; otherwise it is "outside this registry: authority not checked"
//! and the cryptographic verdict decides. The sender's code comes from the caller, so it is
//! only ever a reason MORE to treat a signer as managed, never a way around the check.

use kyso_proto::registry::v1 as reg;
use kyso_validation::report::PathEntry;
use time::OffsetDateTime;

use crate::authority::Authority;
use crate::error::Result;

use super::DocumentsService;

/// What came of one signer: the outcome for the reply and the register, and whether it is
/// a personal certificate (known ones only: D2 order).
pub(super) struct Judged {
    pub outcome: reg::SignatureAuthority,
    pub personal: bool,
}

impl DocumentsService {
    /// A3/A4 for the signer certificate `leaf` of signature `field` at `at`.
    pub(super) async fn signer_authority(
        &self,
        field: &str,
        leaf: &PathEntry,
        document_type: &str,
        sender_code: &str,
        at: OffsetDateTime,
    ) -> Result<Judged> {
        let registry = self.signer.registry();
        let a = registry
            .check_authority(&leaf.fingerprint_sha256, document_type, at)
            .await?;
        let base = reg::SignatureAuthority {
            field_name: field.to_owned(),
            subject: leaf.subject.clone(),
            fingerprint: leaf.fingerprint_sha256.clone(),
            organisation_id: a.organisation_id.clone(),
            organisation_name: a.organisation_name.clone(),
            ..Default::default()
        };
        if a.authorised {
            return Ok(Judged {
                outcome: reg::SignatureAuthority {
                    outcome: reg::AuthorityOutcome::Allowed as i32,
                    message: who(&a, leaf),
                    ..base
                },
                personal: a.personal,
            });
        }
        let refused = |rule: &str, message: String| reg::SignatureAuthority {
            outcome: reg::AuthorityOutcome::Refused as i32,
            rule: rule.to_owned(),
            message,
            ..base.clone()
        };
        let known_refusal = |a: &Authority| {
            refused(
                if a.personal { "A3" } else { "A4" },
                format!("{}: {}", who(a, leaf), a.reasons.join("; ")),
            )
        };
        if a.judged {
            // Known here (revoked, suspended, not entitled): refused as always.
            return Ok(Judged {
                outcome: known_refusal(&a),
                personal: a.personal,
            });
        }
        let j = registry
            .check_jurisdiction(reg::CheckJurisdictionRequest {
                fingerprint: leaf.fingerprint_sha256.clone(),
                subject: leaf.subject.clone(),
                sender_code: sender_code.to_owned(),
            })
            .await?;
        let outcome = if j.registered {
            // Registered, yet the question was refused (an unknown document type): the
            // registry's own reason stands.
            known_refusal(&a)
        } else if j.managed {
            reg::SignatureAuthority {
                organisation_id: j.organisation_id,
                organisation_name: j.organisation_name,
                ..refused(
                    "A4",
                    format!(
                        "{}: the certificate is not registered here, yet it is one of an \
                         organisation this registry manages ({})",
                        leaf.subject,
                        j.matches.join("; ")
                    ),
                )
            }
        } else {
            let sender = match (sender_code, j.sender_name.as_str()) {
                ("", _) => String::new(),
                (c, "") => format!("; sender {c}"),
                (c, n) => format!("; sender {c} ({n})"),
            };
            reg::SignatureAuthority {
                outcome: reg::AuthorityOutcome::Outside as i32,
                message: format!(
                    "outside this registry: authority not checked ({}{sender})",
                    leaf.subject
                ),
                sender_code: sender_code.to_owned(),
                ..base
            }
        };
        Ok(Judged {
            outcome,
            personal: false,
        })
    }
}

/// The signer for messages: the registry's holder name, else the certificate's subject.
fn who(a: &Authority, leaf: &PathEntry) -> String {
    if a.holder_name.is_empty() {
        leaf.subject.clone()
    } else {
        a.holder_name.clone()
    }
}

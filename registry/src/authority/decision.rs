//! What the authority rules answer: every failed rule of a decision, with the names a person
//! reads. The service turns these into the proto responses.

use super::rule::Rule;

/// One failed rule of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The rule refused by.
    pub rule: Rule,
    /// For a person to read.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(rule: Rule, reason: impl Into<String>) -> Self {
        Self {
            rule,
            reason: reason.into(),
        }
    }
}

/// The answer to `Authorize`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Every failed rule; empty means allowed.
    pub refusals: Vec<Refusal>,
    /// The certificate holder's name (person or organisation).
    pub holder_name: String,
    /// The title the signature is made under.
    pub title: String,
    /// The delegator, for KT./TL./TUQ.
    pub on_behalf_of: String,
}

/// The answer to `CheckAuthority`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorityCheck {
    /// Every failed rule; empty means the holder had authority.
    pub refusals: Vec<Refusal>,
    /// Personal or organisation (`CertificateKind`).
    pub kind: i32,
    /// Holder's name.
    pub holder_name: String,
    /// The title that carried the authority.
    pub title: String,
    /// The certificate's organisation.
    pub organisation_name: String,
    /// Its registry ID.
    pub organisation_id: String,
    /// Status at the time asked (`CertificateStatus`).
    pub status: i32,
}

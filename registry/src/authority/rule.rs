//! The rule IDs a decision can refuse by (DOMAIN.md), typed so a refusal cannot name a rule
//! that does not exist. On the wire (the proto `Refusal.rule`, the decision metrics) they are
//! the IDs' strings, unchanged.

use std::fmt;

/// A DOMAIN.md rule that `Authorize`, `CheckAuthority` or `CheckSeal` enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A personal certificate is used only by its holder.
    A1,
    /// Signing on behalf (KT., TL., TUQ.) under a delegation in force, with the delegate's own
    /// personal certificate.
    A2,
    /// A personal certificate signs only what its holder's title may sign in the organisation.
    A3,
    /// The uses of an organisation certificate (the seal), for its own organisation only.
    A4,
    /// Only the custodian assigned by decision uses the organisation certificate.
    A5,
    /// The seal only over the competent person's signature, or over copies the organisation
    /// made itself.
    A6,
    /// Classified documents are never signed.
    A7,
    /// Where the competent person holds a certificate, the electronic form with both
    /// signatures (not the scanned paper original, D3), unless the document type allows it.
    D2,
    /// A separate attachment file is sealed with its main document's number (P4).
    D5,
    /// A copy is made by the organisation of a document of its own registers.
    P3,
    /// Valid: inside its validity period, neither suspended nor revoked.
    V1,
    /// Revocation is permanent from its stated moment.
    V3,
    /// On hold (suspended): not active from the moment of the hold until it is lifted.
    N7,
    /// Outgoing: what is sent is a document entered in the outgoing register.
    W1,
}

impl Rule {
    /// The rule ID as DOMAIN.md writes it ("A1", ...), as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A1 => "A1",
            Self::A2 => "A2",
            Self::A3 => "A3",
            Self::A4 => "A4",
            Self::A5 => "A5",
            Self::A6 => "A6",
            Self::A7 => "A7",
            Self::D2 => "D2",
            Self::D5 => "D5",
            Self::P3 => "P3",
            Self::V1 => "V1",
            Self::V3 => "V3",
            Self::N7 => "N7",
            Self::W1 => "W1",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn displays_as_the_rule_id() {
        assert_eq!(Rule::A1.to_string(), "A1");
        assert_eq!(Rule::N7.as_str(), "N7");
        assert_eq!(format!("{}", Rule::V3), "V3");
    }
}

//! The ETSI commitment-type indication: what the signer commits to by signing (ETSI EN
//! 319 122-1 §5.2.3, the signed attribute of RFC 5126 §5.11.1). kyso's legal forms map onto
//! the six generic commitments, so that any CAdES or PAdES validator can tell an approval
//! from an issue or a received stamp:
//!
//! ```text
//! id-aa-ets-commitmentType OBJECT IDENTIFIER ::= { 1 2 840 113549 1 9 16 2 16 }
//! CommitmentTypeIndication ::= SEQUENCE {
//!     commitmentTypeId CommitmentTypeIdentifier,
//!     commitmentTypeQualifier SEQUENCE SIZE (1..MAX) OF CommitmentTypeQualifier OPTIONAL }
//! CommitmentTypeIdentifier ::= OBJECT IDENTIFIER
//! id-cti-ets-proofOfOrigin   ::= { 1 2 840 113549 1 9 16 6 1 }  -- … proofOfCreation 6
//! ```

use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, Encode, Sequence};

/// id-aa-ets-commitmentType.
pub const ID_AA_ETS_COMMITMENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.16");

/// The generic commitment types of ETSI (`id-cti-ets-proofOf…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentType {
    /// The signer created, approved and sent the content: an issued document (ISSUE,
    /// SCANNED_ISSUE, APPENDIX).
    ProofOfOrigin,
    /// The signer received the content: the received stamp (RECEIVED, D6).
    ProofOfReceipt,
    /// A trusted service delivered the content.
    ProofOfDelivery,
    /// The signer sent the content without necessarily creating it.
    ProofOfSender,
    /// The signer approved the content: the competent person's signature (APPROVAL).
    ProofOfApproval,
    /// The signer created the content without approving it: a copy, a comment (COPY,
    /// COMMENT).
    ProofOfCreation,
}

impl CommitmentType {
    const ALL: [Self; 6] = [
        Self::ProofOfOrigin,
        Self::ProofOfReceipt,
        Self::ProofOfDelivery,
        Self::ProofOfSender,
        Self::ProofOfApproval,
        Self::ProofOfCreation,
    ];

    /// The `id-cti-ets-proofOf…` object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::ProofOfOrigin => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.1"),
            Self::ProofOfReceipt => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.2"),
            Self::ProofOfDelivery => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.3"),
            Self::ProofOfSender => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.4"),
            Self::ProofOfApproval => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.5"),
            Self::ProofOfCreation => ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.6.6"),
        }
    }

    /// `proof-of-origin`, … (what reports show).
    pub fn name(self) -> &'static str {
        match self {
            Self::ProofOfOrigin => "proof-of-origin",
            Self::ProofOfReceipt => "proof-of-receipt",
            Self::ProofOfDelivery => "proof-of-delivery",
            Self::ProofOfSender => "proof-of-sender",
            Self::ProofOfApproval => "proof-of-approval",
            Self::ProofOfCreation => "proof-of-creation",
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.oid() == *oid)
    }
}

/// `CommitmentTypeIndication`, qualifiers kept undecoded.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct CommitmentTypeIndication {
    commitment_type_id: ObjectIdentifier,
    #[asn1(optional = "true")]
    commitment_type_qualifier: Option<Vec<Any>>,
}

/// The attribute value for `t` (no qualifiers).
pub fn encode(t: CommitmentType) -> der::Result<Any> {
    Any::encode_from(&CommitmentTypeIndication {
        commitment_type_id: t.oid(),
        commitment_type_qualifier: None,
    })
}

/// What a signature's commitment-type indication says: a generic commitment's name, or
/// the dotted identifier of another one.
pub fn decode(value: &Any) -> der::Result<String> {
    let ind = CommitmentTypeIndication::from_der(&value.to_der()?)?;
    Ok(match CommitmentType::from_oid(&ind.commitment_type_id) {
        Some(t) => t.name().to_owned(),
        None => ind.commitment_type_id.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_commitment_round_trips_and_unknown_ones_show_their_identifier() {
        for t in CommitmentType::ALL {
            assert_eq!(decode(&encode(t).unwrap()).unwrap(), t.name());
        }
        let other = Any::encode_from(&CommitmentTypeIndication {
            commitment_type_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
            commitment_type_qualifier: None,
        })
        .unwrap();
        assert_eq!(decode(&other).unwrap(), "1.2.3.4");
    }
}

//! Status messages: how a receiver answers a document on the exchange (N6, N5 art. 21.2).
//!
//! Same root and envelope as a document, a header with only a `MessageHeader`. Only the
//! codes whose meaning a source gives are read; 07–12 and 14 have none, so they are
//! refused as unknown rather than guessed (N6). The reader is
//! [`crate::envelope::read`], the writer [`crate::envelope::write_status`].

use std::fmt;

use time::PrimitiveDateTime;

use crate::envelope::model::{Organization, ResponseFor, StaffInfo};
use crate::{EdxmlError, error::Result};

/// A status message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMessage {
    /// The organisation answering.
    pub from: Organization,
    /// The document answered.
    pub response_for: ResponseFor,
    /// The clerk answering.
    pub staff_info: Option<StaffInfo>,
    /// What happened.
    pub status_code: StatusCode,
    /// Why (the reason of a refusal, 02, or of a take-back, 13 and 16).
    pub description: Option<String>,
    /// When (`yyyy/MM/dd HH:mm:ss`).
    pub timestamp: PrimitiveDateTime,
}

/// The status codes with a known meaning (N6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// 01: the receiving system has it; the clerk has not handled it yet.
    Arrived,
    /// 02: refused, with the reason in `Description`.
    Refused,
    /// 03: accepted and entered in the incoming register.
    Accepted,
    /// 04: a leader assigned it for handling.
    Assigned,
    /// 05: in handling.
    InHandling,
    /// 06: finished.
    Finished,
    /// 13: the sender asks to take it back or update it (with the reason).
    TakeBackRequested,
    /// 15: take-back or update accepted.
    TakeBackAccepted,
    /// 16: take-back or update refused.
    TakeBackRefused,
}

impl StatusCode {
    /// Every known code, in numeric order.
    pub const ALL: [Self; 9] = [
        Self::Arrived,
        Self::Refused,
        Self::Accepted,
        Self::Assigned,
        Self::InHandling,
        Self::Finished,
        Self::TakeBackRequested,
        Self::TakeBackAccepted,
        Self::TakeBackRefused,
    ];

    /// Reads a two-digit code; unknown codes (07–12, 14, anything else) are refused (N6).
    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                EdxmlError::Unsupported(format!(
                    "status code {:?}: unknown (known: 01-06, 13, 15, 16) (N6)",
                    text.chars().take(20).collect::<String>()
                ))
            })
    }

    /// The two digits written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arrived => "01",
            Self::Refused => "02",
            Self::Accepted => "03",
            Self::Assigned => "04",
            Self::InHandling => "05",
            Self::Finished => "06",
            Self::TakeBackRequested => "13",
            Self::TakeBackAccepted => "15",
            Self::TakeBackRefused => "16",
        }
    }

    /// What the code means, for people.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Arrived => "arrived",
            Self::Refused => "refused",
            Self::Accepted => "accepted and registered",
            Self::Assigned => "assigned for handling",
            Self::InHandling => "in handling",
            Self::Finished => "finished",
            Self::TakeBackRequested => "take-back requested",
            Self::TakeBackAccepted => "take-back accepted",
            Self::TakeBackRefused => "take-back refused",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    #[test]
    fn known_status_codes_read_and_unknown_ones_are_refused_N6() {
        for code in StatusCode::ALL {
            assert_eq!(StatusCode::parse(code.as_str()).ok(), Some(code));
        }
        for unknown in [
            "07", "08", "09", "10", "11", "12", "14", "17", "00", "1", "3", "003", " 03", "03 ", "",
        ] {
            assert!(
                matches!(StatusCode::parse(unknown), Err(EdxmlError::Unsupported(_))),
                "{unknown:?} accepted"
            );
        }
    }
}

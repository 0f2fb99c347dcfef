//! The proof that a timestamp token itself existed (ETSI EN 319 102-1 §5.6.2.x, past
//! signature validation; PAdES B-LTA archive timestamps; issue 16 item 4).
//!
//! A token's own genTime is what it claims, not a proof that the token existed then: once
//! its TSA's key is compromised (the certificate revoked) or out of its care (expired), a
//! token with any genTime can be made. So a token's TSA certificate is judged at the
//! token's own proof of existence: a LATER verified document timestamp whose byte range
//! covers the token (its revision); with none, now. A signature timestamp or an earlier
//! document timestamp whose TSA certificate expired or was revoked since still counts
//! when a later document timestamp proves the token existed before that, with the DSS's
//! validation data for the TSA used at the later timestamp's time; without one it proves
//! nothing, and the report says why.
//!
//! The order of the checks is therefore fixed: the document timestamps from the latest to
//! the earliest ([`latest_first`]), each judged at [`TokenPoe::of`] the later ones already
//! judged, then the signatures' own timestamps at the proof of the stamps covering them.

use kyso_pki::time::{OffsetDateTime, rfc3339};

use crate::report::{ReferenceTime, TimeSource};
use crate::timestamps::{TimestampReport, earliest_proof};

/// The time a token's TSA certificate is judged at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenPoe {
    /// Nothing later covers the token: its TSA must hold now.
    Now(OffsetDateTime),
    /// A later verified document timestamp covers the token: its TSA must have held then.
    Covered(ReferenceTime),
}

impl TokenPoe {
    /// The proof of existence of a token covered by `covering` (the judged document
    /// timestamps of later revisions): the earliest that passed, else now.
    pub(crate) fn of(covering: &[TimestampReport], now: OffsetDateTime) -> Self {
        earliest_proof(covering).map_or(Self::Now(now), Self::Covered)
    }

    /// The reference time of the TSA's path and revocation: a proof (a document
    /// timestamp's time) or the validation time, never the token's own claim.
    pub(crate) fn reference(self) -> ReferenceTime {
        match self {
            Self::Now(time) => ReferenceTime {
                time,
                source: TimeSource::ValidationTime,
            },
            Self::Covered(r) => r,
        }
    }

    /// Why a token whose TSA certificate does not hold at this time proves nothing.
    pub(crate) fn failure_words(self) -> String {
        match self {
            Self::Now(_) => "its TSA certificate does not hold now and no later document \
                             timestamp proves the token existed while it did"
                .to_owned(),
            Self::Covered(r) => format!(
                "its TSA certificate did not hold at {}, the earliest later document timestamp covering the token",
                rfc3339(r.time)
            ),
        }
    }

    /// A note for a token judged at a later document timestamp's time.
    pub(crate) fn note(self) -> Option<String> {
        match self {
            Self::Now(_) => None,
            Self::Covered(r) => Some(format!(
                "the token's TSA certificate was judged at {}: a later document timestamp proves the token existed then",
                rfc3339(r.time)
            )),
        }
    }
}

/// The positions of `revisions` (one per document timestamp) ordered from the latest
/// revision to the earliest: the order in which their proofs can be established.
pub(crate) fn latest_first(revisions: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..revisions.len()).collect();
    order.sort_by(|a, b| revisions[*b].cmp(&revisions[*a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Indication;
    use crate::timestamps::TimestampKind;

    fn stamp(passed: bool, days_ago: i64, now: OffsetDateTime) -> TimestampReport {
        TimestampReport {
            kind: TimestampKind::Document,
            indication: if passed {
                Indication::TotalPassed
            } else {
                Indication::Indeterminate
            },
            sub_indication: None,
            message: String::new(),
            gen_time: Some(now - time::Duration::days(days_ago)),
            tsa: None,
            path: Vec::new(),
            revocation: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn latest_revision_is_judged_first() {
        assert_eq!(latest_first(&[2, 5, 3]), vec![1, 2, 0]);
        assert!(latest_first(&[]).is_empty());
    }

    #[test]
    fn a_token_is_judged_now_unless_a_later_passed_stamp_covers_it() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(TokenPoe::of(&[], now), TokenPoe::Now(now));
        // A stamp that proves nothing is no proof for what it covers.
        assert_eq!(
            TokenPoe::of(&[stamp(false, 9, now)], now),
            TokenPoe::Now(now)
        );
        let poe = TokenPoe::of(&[stamp(true, 3, now), stamp(true, 7, now)], now);
        assert_eq!(
            poe.reference(),
            ReferenceTime {
                time: now - time::Duration::days(7),
                source: TimeSource::DocumentTimestamp
            }
        );
        assert_eq!(
            TokenPoe::Now(now).reference().source,
            TimeSource::ValidationTime
        );
        assert!(poe.note().is_some() && TokenPoe::Now(now).note().is_none());
    }
}

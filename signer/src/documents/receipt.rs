//! W5: the time an incoming document was received, the reference time of its checks.
//!
//! The caller's word is not enough: a backdated receipt time would judge a signature revoked
//! since as valid. The reference is the service's clock; only the document exchange system
//! (a `[[callers]]` entry with `exchange = true`, identified by its client certificate) may
//! give its own receipt time, and only within `receipt_time_bound_secs` of the clock. Any
//! other caller's time is reported back as claimed and not used.

use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Refusal, Result};

/// The receipt time to judge at, and the caller's time when it was not used (claimed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Receipt {
    pub at: OffsetDateTime,
    pub claimed: Option<OffsetDateTime>,
}

/// W5: the trusted receipt time of a `ReceiveIncoming` request.
pub(super) fn receipt_time(
    caller: &Caller,
    given: Option<&prost_types::Timestamp>,
    now: OffsetDateTime,
    bound: time::Duration,
) -> Result<Receipt> {
    let Some(t) = given else {
        return Ok(Receipt {
            at: now,
            claimed: None,
        });
    };
    let t = OffsetDateTime::from_unix_timestamp(t.seconds).map_err(|_| Error::InvalidField {
        field: "received_at",
        reason: "impossible date".into(),
    })?;
    if !caller.exchange {
        return Ok(Receipt {
            at: now,
            claimed: Some(t),
        });
    }
    let off = (t - now).abs();
    if off > bound {
        return Err(Error::Refused(vec![Refusal {
            rule: "W5".into(),
            reason: format!(
                "the receipt time {t} is {}s from the service's clock {now}; the exchange \
                 system's time is trusted within {}s only",
                off.whole_seconds(),
                bound.whole_seconds()
            ),
        }]));
    }
    Ok(Receipt {
        at: t,
        claimed: None,
    })
}

/// A time from the wire (a journaled reference time), or `or` when there is none.
pub(super) fn unstamp(t: Option<prost_types::Timestamp>, or: OffsetDateTime) -> OffsetDateTime {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .unwrap_or(or)
}

/// A time on the wire.
pub(super) fn stamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn caller(exchange: bool) -> Caller {
        Caller {
            name: "t".into(),
            organisations: Vec::new(),
            sign_on_behalf: Vec::new(),
            exchange,
            archive: false,
        }
    }

    #[test]
    fn only_the_exchange_sets_the_receipt_time_and_within_the_bound_w5() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let bound = time::Duration::minutes(5);
        let back = |s: i64| prost_types::Timestamp {
            seconds: now.unix_timestamp() - s,
            nanos: 0,
        };
        let r = receipt_time(&caller(true), Some(&back(120)), now, bound).unwrap();
        assert_eq!(r.at.unix_timestamp(), now.unix_timestamp() - 120);
        assert_eq!(r.claimed, None);
        let e = receipt_time(&caller(true), Some(&back(3600)), now, bound).unwrap_err();
        assert!(e.to_string().contains("W5"), "{e}");
        let r = receipt_time(&caller(false), Some(&back(3600)), now, bound).unwrap();
        assert_eq!(r.at, now);
        assert_eq!(
            r.claimed.map(|t| t.unix_timestamp()),
            Some(back(3600).seconds)
        );
        let r = receipt_time(&caller(false), None, now, bound).unwrap();
        assert_eq!((r.at, r.claimed), (now, None));
    }
}

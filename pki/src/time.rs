//! Conversions between ASN.1 times and [`OffsetDateTime`].

use der::asn1::GeneralizedTime;
pub use time::OffsetDateTime;
use x509_cert::time::Time;

/// An X.509 `Time` (UTCTime or GeneralizedTime) as an [`OffsetDateTime`].
pub fn from_x509(t: &Time) -> OffsetDateTime {
    from_unix(t.to_unix_duration())
}

/// A `GeneralizedTime` as an [`OffsetDateTime`].
pub fn from_generalized(t: &GeneralizedTime) -> OffsetDateTime {
    from_unix(t.to_unix_duration())
}

fn from_unix(d: std::time::Duration) -> OffsetDateTime {
    // Times in DER are bounded to year 9999, which always fits.
    OffsetDateTime::from_unix_timestamp(d.as_secs().min(253_402_300_799) as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 rendering used in reports and logs.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Parses an RFC 3339 time (`2025-03-14T09:30:00+07:00`).
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
}

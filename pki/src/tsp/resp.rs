//! `TimeStampResp`, `PKIStatusInfo` and `TSTInfo` (RFC 3161 §2.4.2), parsed
//! with bounds: the size limit first, then BER normalised to DER (`ber/`).

use const_oid::ObjectIdentifier;
use der::asn1::{BitString, Int, Uint};
use der::{Any, Decode, Encode, Sequence, Tag};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;

use super::MAX_RESPONSE_LEN;
use super::error::TspError;
use super::req::MessageImprint;
use crate::ber::{self, Limits};
use crate::time::OffsetDateTime;

/// ```text
/// TimeStampResp ::= SEQUENCE  {
///      status                  PKIStatusInfo,
///      timeStampToken          TimeStampToken     OPTIONAL  }
/// ```
#[derive(Clone, Debug)]
pub struct TimeStampResp {
    /// The TSA's answer.
    pub status: PkiStatusInfo,
    /// `TimeStampToken ::= ContentInfo` (a SignedData of id-ct-TSTInfo), DER.
    pub token: Option<Vec<u8>>,
}

#[derive(Sequence)]
struct TimeStampRespWire {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    token: Option<Any>,
}

/// ```text
/// PKIStatusInfo ::= SEQUENCE {
///     status        PKIStatus,
///     statusString  PKIFreeText     OPTIONAL,
///     failInfo      PKIFailureInfo  OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    /// `PKIStatus ::= INTEGER`.
    pub status: u8,
    /// `PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String`.
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    /// `PKIFailureInfo ::= BIT STRING`.
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// `PKIStatus` values (RFC 3161 §2.4.2).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PkiStatus {
    /// granted (0): "a TimeStampToken, as requested, is present".
    Granted,
    /// grantedWithMods (1): "a TimeStampToken, with modifications, is present".
    GrantedWithMods,
    /// rejection (2), waiting (3), revocationWarning (4), revocationNotification (5).
    Other(u8),
}

impl PkiStatusInfo {
    /// The status as an enum.
    pub fn status(&self) -> PkiStatus {
        match self.status {
            0 => PkiStatus::Granted,
            1 => PkiStatus::GrantedWithMods,
            n => PkiStatus::Other(n),
        }
    }

    /// The failInfo bits set, by their RFC 3161 names.
    pub fn fail_info_names(&self) -> Vec<&'static str> {
        const NAMES: [(usize, &str); 8] = [
            (0, "badAlg"),
            (2, "badRequest"),
            (5, "badDataFormat"),
            (14, "timeNotAvailable"),
            (15, "unacceptedPolicy"),
            (16, "unacceptedExtension"),
            (17, "addInfoNotAvailable"),
            (25, "systemFailure"),
        ];
        let Some(bits) = &self.fail_info else {
            return Vec::new();
        };
        let bytes = bits.raw_bytes();
        NAMES
            .iter()
            .filter(|(bit, _)| {
                bytes
                    .get(bit / 8)
                    .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
            })
            .map(|(_, n)| *n)
            .collect()
    }

    /// The statusString, joined with "; ".
    pub fn text(&self) -> String {
        self.status_string
            .as_deref()
            .map(|s| s.join("; "))
            .unwrap_or_default()
    }
}

impl TimeStampResp {
    /// Parses a `TimeStampResp` (DER or BER), at most [`MAX_RESPONSE_LEN`] bytes.
    pub fn parse(input: &[u8]) -> Result<Self, TspError> {
        if input.len() > MAX_RESPONSE_LEN {
            return Err(TspError::TooLarge {
                limit: MAX_RESPONSE_LEN,
            });
        }
        let limits = Limits {
            max_len: MAX_RESPONSE_LEN,
            ..Limits::default()
        };
        let der =
            ber::to_der(input, limits).map_err(|e| TspError::malformed("TimeStampResp", e))?;
        ber::check_set_sizes(&der, ber::MAX_SET_ELEMENTS, limits.max_depth)
            .map_err(|e| TspError::malformed("TimeStampResp", e))?;
        let wire = TimeStampRespWire::from_der(&der)
            .map_err(|e| TspError::malformed("TimeStampResp", e))?;
        let token = match wire.token {
            Some(t) => Some(
                t.to_der()
                    .map_err(|e| TspError::malformed("TimeStampToken", e))?,
            ),
            None => None,
        };
        Ok(Self {
            status: wire.status,
            token,
        })
    }

    /// The token of a granted response; the refusal otherwise.
    pub fn into_token(self) -> Result<Vec<u8>, TspError> {
        match self.status.status() {
            PkiStatus::Granted | PkiStatus::GrantedWithMods => self.token.ok_or(TspError::NoToken),
            PkiStatus::Other(status) => Err(TspError::Rejected {
                status,
                fail_info: self.status.fail_info_names().join(", "),
                text: self.status.text(),
            }),
        }
    }
}

/// ```text
/// TSTInfo ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    policy                       TSAPolicyId,
///    messageImprint               MessageImprint,
///    serialNumber                 INTEGER,
///    genTime                      GeneralizedTime,
///    accuracy                     Accuracy                 OPTIONAL,
///    ordering                     BOOLEAN             DEFAULT FALSE,
///    nonce                        INTEGER                  OPTIONAL,
///    tsa                          [0] GeneralName          OPTIONAL,
///    extensions                   [1] IMPLICIT Extensions   OPTIONAL  }
/// ```
#[derive(Clone, Debug)]
pub struct TstInfo {
    /// Always 1.
    pub version: u8,
    /// The TSA policy under which the token was issued.
    pub policy: ObjectIdentifier,
    /// "MUST have the same value as the similar field in TimeStampReq".
    pub message_imprint: MessageImprint,
    /// Unique per TSA; up to 160 bits.
    pub serial_number: Int,
    /// "the time at which the time-stamp token has been created by the TSA",
    /// fractions of a second kept.
    pub gen_time: OffsetDateTime,
    /// "the time deviation around the UTC time contained in GeneralizedTime".
    pub accuracy: Option<Accuracy>,
    /// Whether tokens of this TSA are ordered by genTime alone.
    pub ordering: bool,
    /// "MUST be present if the similar field was present in the TimeStampReq".
    pub nonce: Option<Uint>,
    /// "give a hint in identifying the name of the TSA".
    pub tsa: Option<GeneralName>,
    /// Not interpreted.
    pub extensions: Option<Extensions>,
}

#[derive(Sequence)]
struct TstInfoWire {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Uint>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Extensions>,
}

/// ```text
/// Accuracy ::= SEQUENCE {
///       seconds        INTEGER              OPTIONAL,
///       millis     [0] INTEGER  (1..999)    OPTIONAL,
///       micros     [1] INTEGER  (1..999)    OPTIONAL  }
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Sequence)]
pub struct Accuracy {
    /// Whole seconds.
    #[asn1(optional = "true")]
    pub seconds: Option<u32>,
    /// Milliseconds, 1..999.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub millis: Option<u16>,
    /// Microseconds, 1..999.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub micros: Option<u16>,
}

impl Accuracy {
    /// The deviation as a duration. "If either of the millis or micros
    /// fields is missing, then ... they MUST be taken as zero."
    pub fn duration(&self) -> time::Duration {
        time::Duration::seconds(i64::from(self.seconds.unwrap_or(0)))
            + time::Duration::milliseconds(i64::from(self.millis.unwrap_or(0)))
            + time::Duration::microseconds(i64::from(self.micros.unwrap_or(0)))
    }
}

impl TstInfo {
    /// Decodes the eContent of a token (DER).
    pub fn from_der(der: &[u8]) -> Result<Self, TspError> {
        const WHAT: &str = "TSTInfo";
        let w = TstInfoWire::from_der(der).map_err(|e| TspError::malformed(WHAT, e))?;
        if w.version != 1 {
            return Err(TspError::malformed(WHAT, format!("version {}", w.version)));
        }
        for (name, v) in [
            ("millis", w.accuracy.and_then(|a| a.millis)),
            ("micros", w.accuracy.and_then(|a| a.micros)),
        ] {
            if v.is_some_and(|v| !(1..=999).contains(&v)) {
                return Err(TspError::malformed(
                    WHAT,
                    format!("accuracy {name} not in 1..999"),
                ));
            }
        }
        if der::Tagged::tag(&w.gen_time) != Tag::GeneralizedTime {
            return Err(TspError::malformed(
                WHAT,
                "genTime is not a GeneralizedTime",
            ));
        }
        let gen_time = parse_generalized(w.gen_time.value())
            .ok_or_else(|| TspError::malformed(WHAT, "genTime is not YYYYMMDDhhmmss[.s...]Z"))?;
        Ok(Self {
            version: w.version,
            policy: w.policy,
            message_imprint: w.message_imprint,
            serial_number: w.serial_number,
            gen_time,
            accuracy: w.accuracy,
            ordering: w.ordering,
            nonce: w.nonce,
            tsa: w.tsa,
            extensions: w.extensions,
        })
    }
}

/// RFC 3161 §2.4.2: "The syntax is: YYYYMMDDhhmmss[.s...]Z ... the fraction-of-second
/// element ... MUST NOT include trailing zeros" (der's GeneralizedTime has no fractions).
fn parse_generalized(v: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(v).ok()?;
    let body = s.strip_suffix('Z')?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let mut nanos = 0u32;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || f.ends_with('0') || !f.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        nanos = f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32);
    }
    let t = time::Time::from_hms_nano(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
        nanos,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_with_and_without_fractions() {
        let t = parse_generalized(b"20261203132814Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_796_304_494);
        let f = parse_generalized(b"20261203132814.25Z").unwrap();
        assert_eq!(f.nanosecond(), 250_000_000);
        for bad in [
            &b"20261203132814.250Z"[..],
            b"20261203132814",
            b"2026120313281Z",
            b"20261303132814Z",
            b"20261203132814.Z",
        ] {
            assert!(parse_generalized(bad).is_none(), "{bad:?}");
        }
    }
}

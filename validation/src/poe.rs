//! The reference time of a signature and what a claimed time may and may not do
//! (issue 16 item 4; ETSI EN 319 102-1 5.6.2, past signature validation).
//!
//! A certificate is judged at the best PROOF that the signature existed: the
//! caller's trusted time, else the earliest verified signature timestamp, else a
//! document timestamp covering the signature, else the moment of validation. The
//! signer's claimed time (the CMS signing-time attribute, a PDF's `/M`) is reported
//! and checked for plausibility but is never proof: anyone holding an old key can
//! write any claim, so an expired certificate is not rescued by one (N3 art. 7).

use kyso_pki::name::rfc4514;
use kyso_pki::path::{ValidPath, ValidityFailure};
use kyso_pki::time::{OffsetDateTime, rfc3339};

use crate::report::{Indication, ReferenceTime, SubIndication, TimeSource};
use crate::verify::Verdict;

/// Slack for clocks: a claim this far after a proof of existence is not remarked on.
const CLAIM_SLACK: time::Duration = time::Duration::minutes(5);

/// The times one signature is judged with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignatureTimes {
    /// The caller's trusted reference time (W5), which wins over everything.
    pub(crate) at: Option<OffsetDateTime>,
    /// The earliest verified proof of existence of the signature (a signature
    /// timestamp's or a covering document timestamp's genTime).
    pub(crate) poe: Option<ReferenceTime>,
    /// Where the claimed time comes from (the signing-time attribute or `/M`): only
    /// for the report's words.
    pub(crate) claim_source: TimeSource,
}

impl SignatureTimes {
    /// Only the caller's time (or none) and claims from the signing-time attribute.
    pub(crate) fn caller(at: Option<OffsetDateTime>) -> Self {
        Self {
            at,
            poe: None,
            claim_source: TimeSource::SigningTimeAttribute,
        }
    }

    /// The time certificates are judged at: the best proof of existence, else now.
    pub(crate) fn reference(&self, now: OffsetDateTime) -> ReferenceTime {
        match (self.at, self.poe) {
            (Some(t), _) => ReferenceTime {
                time: t,
                source: TimeSource::Caller,
            },
            (None, Some(p)) => p,
            (None, None) => ReferenceTime {
                time: now,
                source: TimeSource::ValidationTime,
            },
        }
    }
}

/// The signer's claimed time and where it was read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub(crate) time: OffsetDateTime,
    pub(crate) source: TimeSource,
}

impl Claim {
    fn words(self) -> String {
        let what = match self.source {
            TimeSource::PdfSignatureDictionary => "the claimed signing time (/M)",
            _ => "the claimed signing time",
        };
        format!("{what} {}", rfc3339(self.time))
    }
}

/// Whether a reference time of this source proves that the signature existed then.
pub(crate) fn is_proof(source: TimeSource) -> bool {
    matches!(
        source,
        TimeSource::Caller | TimeSource::SignatureTimestamp | TimeSource::DocumentTimestamp
    )
}

fn reference_words(reference: ReferenceTime) -> &'static str {
    match reference.source {
        TimeSource::Caller => "the given reference time",
        TimeSource::SignatureTimestamp => "the signature timestamp's time",
        TimeSource::DocumentTimestamp => "the document timestamp's time",
        TimeSource::SigningTimeAttribute | TimeSource::PdfSignatureDictionary => {
            "the claimed signing time"
        }
        TimeSource::ValidationTime => "the validation time",
    }
}

fn who(vp: &ValidPath, index: usize) -> String {
    vp.certs
        .get(index)
        .map(|pc| {
            if index == 0 {
                "the signer's certificate".to_owned()
            } else {
                format!("the CA certificate {}", rfc4514(pc.cert.subject()))
            }
        })
        .unwrap_or_default()
}

/// N2 a: the path's validity at the reference time, then the claim's plausibility.
/// `None` when both are fine.
pub(crate) fn validity(
    vp: &ValidPath,
    reference: ReferenceTime,
    claim: Option<Claim>,
    warnings: &mut Vec<String>,
) -> Option<Verdict> {
    if let Err(f) = vp.check_validity(reference.time) {
        return Some(validity_verdict(vp, f, reference, claim));
    }
    let claim = claim?;
    if is_proof(reference.source) {
        // The signature existed at the proven time: a later claim cannot be true.
        if claim.time > reference.time + CLAIM_SLACK {
            warnings.push(format!(
                "{} is after {} {}: the claim is implausible and was not used",
                claim.words(),
                reference_words(reference),
                rfc3339(reference.time)
            ));
        }
        return None;
    }
    // No proof: a claim outside the validity period is the signer's own statement
    // that it signed with a certificate not valid then (N2 a).
    match vp.check_validity(claim.time) {
        Ok(()) => None,
        Err(f) => Some(claimed_outside(vp, f, claim)),
    }
}

fn claimed_outside(vp: &ValidPath, f: ValidityFailure, claim: Claim) -> Verdict {
    match f {
        ValidityFailure::Expired { index, not_after } => Verdict::fail(
            Indication::TotalFailed,
            SubIndication::Expired,
            format!(
                "{} expired at {}, before {} (N2 a)",
                who(vp, index),
                rfc3339(not_after),
                claim.words()
            ),
        ),
        ValidityFailure::NotYetValid { index, not_before } => Verdict::fail(
            Indication::TotalFailed,
            SubIndication::NotYetValid,
            format!(
                "{} is valid only from {}, after {} (N2 a)",
                who(vp, index),
                rfc3339(not_before),
                claim.words()
            ),
        ),
    }
}

/// A path not valid at the reference time. Expired: a failure only against the
/// caller's trusted time or the signer's own later claim; against the validation
/// time or a proof of existence after the expiry nothing proves the signature was
/// made in time (OUT_OF_BOUNDS_NO_POE), whatever earlier time the signer claims.
fn validity_verdict(
    vp: &ValidPath,
    f: ValidityFailure,
    reference: ReferenceTime,
    claim: Option<Claim>,
) -> Verdict {
    let when = reference_words(reference);
    match f {
        ValidityFailure::Expired { index, not_after } => {
            if reference.source == TimeSource::Caller {
                return Verdict::fail(
                    Indication::TotalFailed,
                    SubIndication::Expired,
                    format!(
                        "{} expired at {}, before {when} {} (N2 a)",
                        who(vp, index),
                        rfc3339(not_after),
                        rfc3339(reference.time)
                    ),
                );
            }
            if reference.source == TimeSource::ValidationTime
                && let Some(c) = claim
                && c.time > not_after
            {
                return claimed_outside(vp, f, c);
            }
            let proof = if reference.source == TimeSource::ValidationTime {
                "nothing proves the signature was made before".to_owned()
            } else {
                format!(
                    "the earliest proof that the signature existed, {when} {}, is after it",
                    rfc3339(reference.time)
                )
            };
            let claimed = claim
                .map(|c| format!("; {} is claimed, not proven", c.words()))
                .unwrap_or_default();
            Verdict::fail(
                Indication::Indeterminate,
                SubIndication::OutOfBoundsNoPoe,
                format!(
                    "{} expired at {} and {proof}{claimed} (N2 a)",
                    who(vp, index),
                    rfc3339(not_after),
                ),
            )
        }
        ValidityFailure::NotYetValid { index, not_before } => Verdict::fail(
            Indication::TotalFailed,
            SubIndication::NotYetValid,
            format!(
                "{} is valid only from {}, after {when} {} (N2 a)",
                who(vp, index),
                rfc3339(not_before),
                rfc3339(reference.time)
            ),
        ),
    }
}

/// N2 c: a revocation at `revoked` of the path's certificate `i` (0 = the signer's),
/// judged against the reference time and the claim. `None`: the certificate was
/// active at a proven time (a warning says so).
#[allow(clippy::too_many_arguments)]
pub(crate) fn revocation_verdict(
    who: &str,
    what: &str,
    why: &str,
    i: usize,
    revoked: OffsetDateTime,
    reference: ReferenceTime,
    claim: Option<Claim>,
    warnings: &mut Vec<String>,
) -> Option<Verdict> {
    let no_poe = if i == 0 {
        SubIndication::RevokedNoPoe
    } else {
        SubIndication::RevokedCaNoPoe
    };
    let at = rfc3339(revoked);
    if revoked > reference.time && is_proof(reference.source) {
        // The signature provably existed before the revocation (N2 c).
        warnings.push(format!(
            "{who} was {what} at {at}{why}, after {} {}",
            reference_words(reference),
            rfc3339(reference.time)
        ));
        return None;
    }
    match reference.source {
        TimeSource::Caller => Some(Verdict::fail(
            Indication::TotalFailed,
            SubIndication::Revoked,
            format!(
                "{who} was {what} at {at}{why}, at or before the reference time {} (N2 c)",
                rfc3339(reference.time)
            ),
        )),
        TimeSource::SignatureTimestamp | TimeSource::DocumentTimestamp
            if claim.is_none_or(|c| c.time < revoked) =>
        {
            Some(Verdict::fail(
                Indication::Indeterminate,
                no_poe,
                format!(
                    "{who} was {what} at {at}{why}; the earliest proof that the signature existed, {} {}, is not before it (N2 c)",
                    reference_words(reference),
                    rfc3339(reference.time)
                ),
            ))
        }
        _ => match claim {
            Some(c) if c.time < revoked => Some(Verdict::fail(
                Indication::Indeterminate,
                no_poe,
                format!(
                    "{who} was {what} at {at}{why}; {} before it is only claimed, not proven",
                    c.words()
                ),
            )),
            // The signer's own claim, or nothing at all, puts the signature after it.
            _ => Some(Verdict::fail(
                Indication::TotalFailed,
                SubIndication::Revoked,
                format!(
                    "{who} was {what} at {at}{why}, at or before {} (N2 c)",
                    claim.map_or_else(|| "the validation time".to_owned(), Claim::words)
                ),
            )),
        },
    }
}

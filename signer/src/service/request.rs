//! Steps 1-2 of a signing request: who the caller is (mTLS), which key, the digest algorithm
//! and signing time asked for, and the signing context checked against the signer's own rules
//! (A7 classification, W2 issue date, the caller's organisations). Here so that every flow
//! parses the same way and refuses the same things before the registry is asked.

use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;
use tonic::Request;

use crate::config::{Caller, KeySpec};
use crate::error::{Error, Refusal, Result};

use super::SignerService;

/// Vietnam's offset: issue dates (W2) are local dates.
const VN_OFFSET: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

/// Where a signing request comes from: a caller of the Signer service, or the signer's own
/// document flow after its checks (the received stamp of `ReceiveIncoming`, the seal over an
/// edXML message it built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// SignCms, SignDigest, SignPdf.
    Caller,
    /// `ReceiveIncoming`, after the incoming document's signatures were verified (W3).
    ReceiveIncoming,
    /// The exchange flow (`SendOutgoing`, status messages): the seal over an edXML envelope
    /// or status message it built (EXCHANGE, STATUS; N6), made only through `seal_xml_as`.
    Exchange,
}

/// The signer's view of one request, after parsing.
pub(super) struct Job<'a> {
    pub(super) key: &'a KeySpec,
    pub(super) ctx: pb::SigningContext,
    pub(super) digest_algorithm: DigestAlgorithm,
    /// The document digest (for the audit record).
    pub(super) document_digest: Vec<u8>,
    pub(super) signing_time: OffsetDateTime,
    /// A raw signature over the digest (SignDigest), not a CMS or PDF.
    pub(super) raw: bool,
    /// A1: the holder's activation token (personal keys), bound to `document_digest`.
    pub(super) activation_token: String,
    /// What made a personal signature the holder's (set by the consent check).
    pub(super) factor: crate::consent::Factor,
    /// What the seal's side doors look at (SCANNED_ISSUE, COPY; `super::seal`).
    pub(super) seal: SealSubject,
}

/// What a request names for the seal's side doors, checked by the registry (`CheckSeal`).
#[derive(Clone, Debug, Default)]
pub(super) struct SealSubject {
    /// SCANNED_ISSUE: the competent person who signed the paper original by hand (D3).
    pub(super) competent_person_id: String,
    /// COPY: the SHA-256 of what is sealed (the PDF as sent, or the CMS content), which must
    /// be the stored original of a document in the organisation's registers (A6, P3); None
    /// when only a digest of another algorithm was sent. EXCHANGE: the SHA-256 of the issued
    /// original the envelope carries, which must be in the outgoing register (W1).
    pub(super) content_sha256: Option<Vec<u8>>,
}

impl SignerService {
    /// Identifies the caller by its client certificate.
    pub(super) fn caller<T>(&self, req: &Request<T>) -> Result<Caller> {
        let first = req
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| kyso_pki::crypto::sha256(c.as_ref())));
        match first {
            Some(fp) => match self.inner.callers.get(&fp) {
                Some(c) => Ok(c.clone()),
                None => Err(Error::Refused(vec![Refusal {
                    rule: "caller".into(),
                    reason: format!(
                        "client certificate {} is not a configured caller",
                        hex::encode(fp)
                    ),
                }])),
            },
            None if self.inner.allow_anonymous => Ok(Caller {
                name: "anonymous".into(),
                organisations: Vec::new(),
                sign_on_behalf: self.inner.anonymous_sign_on_behalf.clone(),
                // W5: an unidentified caller is never the exchange system.
                exchange: false,
                // R1: nor the archive operator (fail closed).
                archive: false,
            }),
            None => Err(Error::Refused(vec![Refusal {
                rule: "caller".into(),
                reason: "no client certificate: callers are identified by mTLS".into(),
            }])),
        }
    }

    pub(super) fn key(&self, name: &str) -> Result<&KeySpec> {
        if name.is_empty() {
            return Err(Error::InvalidField {
                field: "key",
                reason: "name the key to sign with".into(),
            });
        }
        self.inner.keys.get(name).ok_or_else(|| Error::UnknownKey {
            key: name.to_owned(),
        })
    }

    /// Steps 1-2: the request's shape and the signer's own rules.
    pub(super) fn parse_context(
        &self,
        caller: &Caller,
        ctx: Option<pb::SigningContext>,
        signing_time: OffsetDateTime,
    ) -> Result<pb::SigningContext> {
        let ctx = ctx.ok_or(Error::InvalidField {
            field: "context",
            reason: "the signing context (document, profile, mode, acting person, organisation) is required".into(),
        })?;
        let doc = ctx.document.as_ref().ok_or(Error::InvalidField {
            field: "context.document",
            reason: "the document (type, number, issue date, classification) is required".into(),
        })?;
        if doc.document_type.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.document.document_type",
                reason: "required".into(),
            });
        }
        let profile = pb::Profile::try_from(ctx.profile).unwrap_or(pb::Profile::Unspecified);
        if profile == pb::Profile::Unspecified {
            return Err(Error::InvalidField {
                field: "context.profile",
                reason: "state the legal form: APPROVAL, ISSUE, SCANNED_ISSUE, COPY, APPENDIX, RECEIVED, COMMENT, EXCHANGE or STATUS".into(),
            });
        }
        let mode = pb::SigningMode::try_from(ctx.mode).unwrap_or(pb::SigningMode::Unspecified);
        if mode == pb::SigningMode::Unspecified {
            return Err(Error::InvalidField {
                field: "context.mode",
                reason: "state the signing mode: OWN, KT, TL or TUQ".into(),
            });
        }
        if ctx.acting_person_id.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.acting_person_id",
                reason: "name the person who orders the signature".into(),
            });
        }
        if ctx.organisation_id.trim().is_empty() {
            return Err(Error::InvalidField {
                field: "context.organisation_id",
                reason: "name the organisation the document belongs to".into(),
            });
        }
        let mut refusals = Vec::new();
        match pb::Classification::try_from(doc.classification) {
            Ok(pb::Classification::None) => {}
            Ok(pb::Classification::Unspecified) | Err(_) => {
                return Err(Error::InvalidField {
                    field: "context.document.classification",
                    reason: "state the classification (NONE for an unclassified document)".into(),
                });
            }
            Ok(c) => refusals.push(Refusal {
                rule: "A7".into(),
                reason: format!(
                    "classified documents ({}) are never signed with these certificates",
                    c.as_str_name()
                ),
            }),
        }
        // W2: the organisation's signature on an outgoing document is made on
        // its issue date; the issue date is a local (UTC+7) date.
        if matches!(profile, pb::Profile::Issue | pb::Profile::ScannedIssue) {
            let today = signing_time.to_offset(VN_OFFSET).date();
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(&doc.issue_date, &fmt) {
                Ok(d) if d == today => {}
                Ok(d) => refusals.push(Refusal {
                    rule: "W2".into(),
                    reason: format!(
                        "the signing date {today} must be the document's issue date {d}"
                    ),
                }),
                Err(_) => {
                    return Err(Error::InvalidField {
                        field: "context.document.issue_date",
                        reason: format!(
                            "{:?} is not a YYYY-MM-DD date (required for ISSUE and SCANNED_ISSUE, W2)",
                            doc.issue_date
                        ),
                    });
                }
            }
        }
        if !caller.acts_for(&ctx.organisation_id) {
            refusals.push(Refusal {
                rule: "caller".into(),
                reason: format!(
                    "caller {:?} does not act for organisation {:?}",
                    caller.name, ctx.organisation_id
                ),
            });
        }
        if refusals.is_empty() {
            Ok(ctx)
        } else {
            Err(Error::Refused(refusals))
        }
    }

    pub(super) fn digest_algorithm(name: &str) -> Result<DigestAlgorithm> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "" | "sha256" => Ok(DigestAlgorithm::Sha256),
            "sha384" => Ok(DigestAlgorithm::Sha384),
            "sha512" => Ok(DigestAlgorithm::Sha512),
            other => Err(Error::InvalidField {
                field: "digest_algorithm",
                reason: format!("{other:?} is not one of sha256, sha384, sha512"),
            }),
        }
    }

    pub(super) fn signing_time(
        &self,
        requested: Option<prost_types::Timestamp>,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime> {
        let Some(ts) = requested else { return Ok(now) };
        let t =
            OffsetDateTime::from_unix_timestamp(ts.seconds).map_err(|_| Error::InvalidField {
                field: "signing_time",
                reason: "out of range".into(),
            })?;
        if (t - now).abs() > self.inner.max_skew {
            return Err(Error::InvalidField {
                field: "signing_time",
                reason: format!(
                    "{t} is more than {} s from the signer's clock ({now})",
                    self.inner.max_skew.whole_seconds()
                ),
            });
        }
        Ok(t)
    }
}

/// A digest sent by the caller must have its algorithm's length.
pub(super) fn check_digest_len(alg: DigestAlgorithm, digest: &[u8]) -> Result<()> {
    if digest.len() == alg.output_len() {
        return Ok(());
    }
    Err(Error::InvalidField {
        field: "digest",
        reason: format!(
            "{} bytes, but a {} digest has {}",
            digest.len(),
            alg.name(),
            alg.output_len()
        ),
    })
}

/// The legal form a request states, as the PAdES writer knows it (`None`: unspecified or
/// unknown). One mapping for the CAdES commitment type and the PDF appearance.
pub(super) fn legal_form(profile: i32) -> Option<kyso_pades::Profile> {
    use kyso_pades::Profile as P;
    Some(match pb::Profile::try_from(profile).ok()? {
        pb::Profile::Approval => P::Approval,
        pb::Profile::Issue => P::Issue,
        pb::Profile::ScannedIssue => P::ScannedIssue,
        pb::Profile::Copy => P::Copy,
        pb::Profile::Appendix => P::Appendix,
        pb::Profile::Received => P::Received,
        pb::Profile::Comment => P::Comment,
        // Not forms of a PDF or CMS: the seal over an edXML message (N6), `super::xml`.
        pb::Profile::Unspecified | pb::Profile::Exchange | pb::Profile::Status => return None,
    })
}

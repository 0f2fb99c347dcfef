//! The questions the authority rules answer, read from the proto requests: fields checked
//! and normalised once, before any fact is looked up.

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;

use crate::book::shared::need;
use crate::cert;
use crate::convert::ts;
use crate::error::{Error, Result};

/// `Authorize`: may `acting_person_id` make this signature with this certificate?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeQuery {
    /// Normalised SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// The person at the key.
    pub acting_person_id: String,
    /// The organisation the document is issued in.
    pub organisation_id: String,
    /// Document type code.
    pub document_type: String,
    /// The use of the signature (never `Unspecified`).
    pub profile: spb::Profile,
    /// Own name, or on behalf (KT., TL., TUQ.).
    pub mode: spb::SigningMode,
    /// The time the decision is for (unix seconds).
    pub at: i64,
}

/// `CheckAuthority`: did the certificate's holder have authority for the document type then?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckQuery {
    /// Normalised SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// Document type code.
    pub document_type: String,
    /// The time asked about (unix seconds).
    pub at: i64,
}

impl AuthorizeQuery {
    /// Reads `req`; `at` defaults to `now`.
    pub fn parse(req: &pb::AuthorizeRequest, now: i64) -> Result<Self> {
        let fingerprint = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let acting_person_id = need("acting_person_id", &req.acting_person_id)?;
        let organisation_id = need("organisation_id", &req.organisation_id)?;
        let document_type = need("document_type", &req.document_type)?;
        let profile = match spb::Profile::try_from(req.profile) {
            Ok(spb::Profile::Unspecified) | Err(_) => {
                return Err(Error::field("profile", "required"));
            }
            Ok(p) => p,
        };
        let mode = spb::SigningMode::try_from(req.mode)
            .map_err(|_| Error::field("mode", "unknown signing mode"))?;
        Ok(Self {
            fingerprint,
            acting_person_id,
            organisation_id,
            document_type,
            profile,
            mode,
            at: at(&req.at, now)?,
        })
    }
}

impl CheckQuery {
    /// Reads `req`; `at` defaults to `now`.
    pub fn parse(req: &pb::CheckAuthorityRequest, now: i64) -> Result<Self> {
        Ok(Self {
            fingerprint: cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?,
            document_type: need("document_type", &req.document_type)?,
            at: at(&req.at, now)?,
        })
    }
}

/// `at`, or `now` when absent.
fn at(t: &Option<prost_types::Timestamp>, now: i64) -> Result<i64> {
    Ok(ts("at", t)?.unwrap_or(now))
}

//! `CheckSeal`: the seal's side doors (issue 13). The forms of the organisation's seal that
//! carry no personal signature are allowed only over what the rules let the seal sign, and
//! only the registry knows the facts that decide it:
//! - SCANNED_ISSUE (D3): the paper original was signed by hand by the competent person, who
//!   had authority for the document type in the sealing organisation then (A3, A6); and where
//!   that person holds a valid personal certificate, the electronic form with both
//!   signatures is required (D2) unless the document type allows the scanned form;
//! - COPY (A6 "copies it made itself", P3): of a document of the sealing organisation's own
//!   outgoing or incoming register, found by the SHA-256 of its stored original (D7);
//! - APPENDIX (D5, P4): with the number and symbol of a document of the sealing
//!   organisation's outgoing register;
//! - EXCHANGE (W1 -> send, N6): the edXML envelope carries a document of the sealing
//!   organisation's outgoing register, found by the SHA-256 of its stored original: the seal
//!   sends only what the organisation issued and entered there.
//!
//! Every failed rule is collected, as `Authorize` does. The facts are read from the database
//! (not the in-memory index): these forms are rare next to ISSUE and APPROVAL, and the
//! registers are not in the index.

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;

use crate::authority::facts::Facts;
use crate::authority::rules::{authorised_title, covers, validity};
use crate::authority::{Refusal, Rule, SqlFacts};
use crate::book::Book;
use crate::book::model::{Direction, EntryLookup, RegisterEntry};
use crate::book::shared::need;
use crate::cert;
use crate::convert::ts;
use crate::error::{Error, Result};
use crate::policy::show;
use crate::storage::Db;

/// What `CheckSeal` is asked, checked and normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealQuery {
    /// The sealing organisation.
    pub organisation_id: String,
    /// SCANNED_ISSUE, COPY, APPENDIX or EXCHANGE.
    pub profile: spb::Profile,
    /// Document type code.
    pub document_type: String,
    /// SCANNED_ISSUE: who signed the paper original.
    pub competent_person_id: String,
    /// COPY: the copied document's SHA-256; EXCHANGE: the sent document's; lower-case hex.
    pub sha256: String,
    /// APPENDIX: the main document's number and symbol.
    pub number_and_symbol: String,
    /// The time asked about (unix seconds).
    pub at: i64,
}

impl SealQuery {
    /// Reads `req`; `at` defaults to `now`. Each form needs its own field.
    pub fn parse(req: &pb::CheckSealRequest, now: i64) -> Result<Self> {
        let profile = spb::Profile::try_from(req.profile).unwrap_or(spb::Profile::Unspecified);
        let mut q = Self {
            organisation_id: need("organisation_id", &req.organisation_id)?,
            profile,
            document_type: need("document_type", &req.document_type)?,
            competent_person_id: String::new(),
            sha256: String::new(),
            number_and_symbol: String::new(),
            at: ts("at", &req.at)?.unwrap_or(now),
        };
        match profile {
            spb::Profile::ScannedIssue => {
                q.competent_person_id = need("competent_person_id", &req.competent_person_id)?;
            }
            spb::Profile::Copy | spb::Profile::Exchange => {
                q.sha256 = cert::normalise_fingerprint(&req.sha256, "sha256")?;
            }
            spb::Profile::Appendix => {
                q.number_and_symbol = need("number_and_symbol", &req.number_and_symbol)?;
            }
            _ => {
                return Err(Error::field(
                    "profile",
                    "CheckSeal answers for SCANNED_ISSUE, COPY, APPENDIX and EXCHANGE",
                ));
            }
        }
        Ok(q)
    }
}

/// The answer: every failed rule (empty: allowed) and the register entry found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealCheck {
    /// Every failed rule; empty means allowed.
    pub refusals: Vec<Refusal>,
    /// COPY, APPENDIX: the entry of the organisation's register the seal is over.
    pub entry: Option<RegisterEntry>,
}

/// Decides `q` over the book in `db`.
pub async fn check_seal(db: &Db, book: &Book, q: &SealQuery) -> Result<SealCheck> {
    let facts = SqlFacts::new(db);
    if facts.organisation_name(&q.organisation_id).await?.is_none() {
        return Err(Error::not_found(
            "organisation",
            "organisation_id",
            &q.organisation_id,
        ));
    }
    let scanned_allowed = scanned_issue_allowed(db, &q.document_type)
        .await?
        .ok_or_else(|| Error::not_found("document type", "document_type", &q.document_type))?;
    let mut out = SealCheck::default();
    match q.profile {
        spb::Profile::ScannedIssue => {
            scanned_issue(&facts, db, q, scanned_allowed, &mut out.refusals).await?;
        }
        spb::Profile::Copy => {
            out.entry = book
                .find_entry(&EntryLookup {
                    organisation_id: q.organisation_id.clone(),
                    direction: None,
                    sha256: q.sha256.clone(),
                    number_and_symbol: String::new(),
                })
                .await?;
            if out.entry.is_none() {
                out.refusals.push(Refusal::new(
                    Rule::P3,
                    format!(
                        "the document copied (SHA-256 {}) is in neither the outgoing nor the incoming register of the sealing organisation: the organisation seals only copies of its own documents (A6, P3)",
                        q.sha256
                    ),
                ));
            }
        }
        spb::Profile::Appendix => {
            out.entry = book
                .find_entry(&EntryLookup {
                    organisation_id: q.organisation_id.clone(),
                    direction: Some(Direction::Outgoing),
                    sha256: String::new(),
                    number_and_symbol: q.number_and_symbol.clone(),
                })
                .await?;
            if out.entry.is_none() {
                out.refusals.push(Refusal::new(
                    Rule::D5,
                    format!(
                        "{} is not in the outgoing register of the sealing organisation: an attachment is sealed only with the number of a registered outgoing document (D5, P4)",
                        q.number_and_symbol
                    ),
                ));
            }
        }
        spb::Profile::Exchange => {
            out.entry = book
                .find_entry(&EntryLookup {
                    organisation_id: q.organisation_id.clone(),
                    direction: Some(Direction::Outgoing),
                    sha256: q.sha256.clone(),
                    number_and_symbol: String::new(),
                })
                .await?;
            if out.entry.is_none() {
                out.refusals.push(Refusal::new(
                    Rule::W1,
                    format!(
                        "the document in the envelope (SHA-256 {}) is not in the outgoing register of the sealing organisation: the seal sends only documents the organisation issued and registered (W1, N6)",
                        q.sha256
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(out)
}

/// SCANNED_ISSUE: the competent person (A3, A6) and the form (D2).
async fn scanned_issue(
    facts: &SqlFacts,
    db: &Db,
    q: &SealQuery,
    scanned_allowed: bool,
    out: &mut Vec<Refusal>,
) -> Result<()> {
    let (person, org, doc, t) = (
        q.competent_person_id.as_str(),
        q.organisation_id.as_str(),
        q.document_type.as_str(),
        q.at,
    );
    let Some(name) = facts.person_name(person).await? else {
        out.push(Refusal::new(
            Rule::A6,
            format!(
                "no person {person} in the book: the paper original must be signed by the competent person of the sealing organisation (A6)"
            ),
        ));
        return Ok(());
    };
    // A3, A6: a title with authority for the type in the sealing organisation itself, or a
    // delegation there (A2); another body's leader does not sign this body's documents.
    let own = authorised_title(facts, person, org, doc, t)
        .await?
        .is_some();
    let delegated = !own
        && facts
            .delegations_to(person)
            .await?
            .iter()
            .any(|dl| covers(dl, org, doc, t));
    if !own && !delegated {
        out.push(Refusal::new(
            Rule::A3,
            format!(
                "{name} had no title with authority for {doc} in the sealing organisation, nor a delegation for it, at {}: the seal is applied only over its competent person's signature (A6)",
                show(t)
            ),
        ));
    }
    if !scanned_allowed && let Some(fp) = valid_personal_certificate(facts, db, person, t).await? {
        out.push(Refusal::new(
            Rule::D2,
            format!(
                "{name} holds a valid personal certificate ({fp}) at {}: the document is issued in the electronic form, signed by {name} and then sealed (D2); document type {doc} does not allow the scanned paper form (D3)",
                show(t)
            ),
        ));
    }
    Ok(())
}

/// D2: the fingerprint of a personal certificate of `person` valid at `t` (inside its
/// validity period and active then), if any.
pub async fn valid_personal_certificate(
    facts: &SqlFacts,
    db: &Db,
    person: &str,
    t: i64,
) -> Result<Option<String>> {
    let fingerprints: Vec<String> = sqlx::query_scalar(
        "SELECT fingerprint FROM certificates WHERE person_id = $1 AND kind = 'personal' \
         ORDER BY not_before, fingerprint",
    )
    .bind(person)
    .fetch_all(db.pool())
    .await?;
    for fp in fingerprints {
        let Some(c) = facts.certificate(&fp).await? else {
            continue;
        };
        let mut refusals = Vec::new();
        validity(&c, t, &mut refusals);
        if refusals.is_empty() {
            return Ok(Some(fp));
        }
    }
    Ok(None)
}

/// D2: whether the document type allows the scanned form; None for an unknown type.
async fn scanned_issue_allowed(db: &Db, document_type: &str) -> Result<Option<bool>> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT scanned_issue_allowed FROM document_types WHERE code = $1")
            .bind(document_type)
            .fetch_optional(db.pool())
            .await?;
    Ok(v.map(|v| v != 0))
}

//! The authority rules, written once: `Authorize` (may this signature be made?) and
//! `CheckAuthority` (did the holder have authority then?), over any [`Facts`] source.
//!
//! Every failed rule is collected rather than stopping at the first, so the caller can fix
//! everything at once. The order of the checks, of the refusals and their words is the
//! contract the signer, the verifier and the tests read.

use std::borrow::Cow;

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;

use super::decision::{AuthorityCheck, Decision, Refusal};
use super::facts::{Certificate, Delegation, Facts, StatusChange, Title};
use super::facts::{kind_value, mode_name, status_value};
use super::request::{AuthorizeQuery, CheckQuery};
use super::rule::Rule;
use crate::error::{Error, Result};
use crate::policy::show;

/// Decides whether a signature may be made (V1, V3, N7, A7, then A1-A3 for a personal
/// certificate, A2, A4, A5 for an organisation certificate).
pub async fn authorize<F: Facts>(facts: &F, q: &AuthorizeQuery) -> Result<Decision> {
    let (acting, org, doc, t) = (
        q.acting_person_id.as_str(),
        q.organisation_id.as_str(),
        q.document_type.as_str(),
        q.at,
    );
    let c = certificate(facts, &q.fingerprint).await?;
    if facts.person_name(acting).await?.is_none() {
        return Err(Error::not_found("person", "acting_person_id", acting));
    }
    if facts.organisation_name(org).await?.is_none() {
        return Err(Error::not_found("organisation", "organisation_id", org));
    }
    let class = classification(facts, doc).await?;

    let mut d = Decision::default();
    validity(&c, t, &mut d.refusals);
    classified(doc, &class, &mut d.refusals);

    if c.kind == "personal" {
        let holder = c.person_id.as_deref().unwrap_or_default();
        d.holder_name = name(facts.person_name(holder).await?);
        // A1: used only by its holder.
        if holder != acting {
            d.refusals.push(Refusal::new(
                Rule::A1,
                "a personal certificate is used only by its holder",
            ));
        }
        // A4, D1: the other uses are the seal's.
        match q.profile {
            spb::Profile::Approval | spb::Profile::Comment => {}
            other => d.refusals.push(Refusal::new(
                Rule::A4,
                format!(
                    "{} is a use of the organisation certificate (the seal, D1), not of a personal one",
                    other.as_str_name()
                ),
            )),
        }
        let held = titles_held(facts, acting, org, t).await?;
        let first = held.first().map(|t| t.name.clone()).unwrap_or_default();
        if held.is_empty() {
            // A3: within the authority of the organisation, so a title in it.
            d.refusals.push(Refusal::new(
                Rule::A3,
                "the signer holds no title in this organisation at that time",
            ));
        } else if let Some(m) = mode_name(q.mode) {
            // A2: signing on behalf, under a delegation in force, from someone who has the
            // authority, with the delegate's own certificate.
            d.title = first;
            match delegator(facts, acting, org, doc, m, t).await? {
                Some(name) => d.on_behalf_of = name,
                None => d.refusals.push(Refusal::new(
                    Rule::A2,
                    format!(
                        "no {} delegation in force for document type {doc} from someone with the authority to sign it",
                        m.to_uppercase()
                    ),
                )),
            }
        } else if q.profile == spb::Profile::Approval {
            // A3: a title the organisation granted the document type.
            match authorised_title(facts, acting, org, doc, t).await? {
                Some(title) => d.title = title,
                None => d.refusals.push(Refusal::new(
                    Rule::A3,
                    format!(
                        "none of the signer's titles ({}) may sign document type {doc} in this organisation",
                        held.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        } else {
            d.title = first;
        }
    } else {
        d.holder_name = name(facts.organisation_name(&c.organisation_id).await?);
        // A5: only the current custodian uses the organisation key.
        match custodian_at(facts, &c.id, t).await? {
            Some(p) if p == acting => {}
            Some(_) => d.refusals.push(Refusal::new(
                Rule::A5,
                "only the assigned custodian may use the organisation certificate",
            )),
            None => d.refusals.push(Refusal::new(
                Rule::A5,
                "the organisation certificate has no custodian assigned by decision",
            )),
        }
        if mode_name(q.mode).is_some() {
            d.refusals.push(Refusal::new(
                Rule::A2,
                "signing on behalf uses the delegate's own personal certificate",
            ));
        }
        // A4: the seal of its own organisation, for the uses the organisation allows.
        if c.organisation_id != org {
            d.refusals.push(Refusal::new(
                Rule::A4,
                "an organisation certificate signs only for its own organisation",
            ));
        }
        let profile = q.profile.as_str_name();
        let allowed = facts
            .profiles(&c.organisation_id, doc)
            .await?
            .iter()
            .any(|p| p == profile);
        if !allowed {
            d.refusals.push(Refusal::new(
                Rule::A4,
                format!(
                    "the organisation certificate is not allowed {profile} for document type {doc}"
                ),
            ));
        }
    }
    Ok(d)
}

/// For the verifier: did this certificate's holder have authority to sign the document type
/// at the time (V1, V3, N7 status, A7, A2/A3 for a person, A4 for an organisation)?
pub async fn check_authority<F: Facts>(facts: &F, q: &CheckQuery) -> Result<AuthorityCheck> {
    let (doc, t) = (q.document_type.as_str(), q.at);
    let c = certificate(facts, &q.fingerprint).await?;
    let class = classification(facts, doc).await?;
    let mut out = AuthorityCheck {
        kind: kind_value(&c.kind) as i32,
        organisation_name: name(facts.organisation_name(&c.organisation_id).await?),
        organisation_id: c.organisation_id.clone(),
        ..AuthorityCheck::default()
    };
    out.status = validity(&c, t, &mut out.refusals) as i32;
    classified(doc, &class, &mut out.refusals);
    if let Some(person) = &c.person_id {
        out.holder_name = name(facts.person_name(person).await?);
        match authorised_title(facts, person, &c.organisation_id, doc, t).await? {
            Some(title) => out.title = title,
            None => {
                // Signing on behalf counts too (A2).
                let delegated = facts
                    .delegations_to(person)
                    .await?
                    .iter()
                    .any(|dl| covers(dl, &c.organisation_id, doc, t));
                if !delegated {
                    out.refusals.push(Refusal::new(
                        Rule::A3,
                        format!(
                            "the holder had no title with authority for {doc}, nor a delegation for it, at {}",
                            show(t)
                        ),
                    ));
                }
            }
        }
    } else {
        out.holder_name = out.organisation_name.clone();
        // A4: an organisation certificate with no use for the document type.
        if facts.profiles(&c.organisation_id, doc).await?.is_empty() {
            out.refusals.push(Refusal::new(
                Rule::A4,
                format!("the organisation certificate has no use for {doc}"),
            ));
        }
    }
    Ok(out)
}

// ----- the parts ------------------------------------------------------------------------------

async fn certificate<'f, F: Facts>(facts: &'f F, fp: &str) -> Result<Cow<'f, Certificate>> {
    facts
        .certificate(fp)
        .await?
        .ok_or_else(|| Error::not_found("certificate", "fingerprint", fp))
}

async fn classification<'f, F: Facts>(facts: &'f F, doc: &str) -> Result<Cow<'f, str>> {
    facts
        .classification(doc)
        .await?
        .ok_or_else(|| Error::not_found("document type", "document_type", doc))
}

/// A name for messages; empty when the row is gone.
fn name(n: Option<Cow<'_, str>>) -> String {
    n.map(Cow::into_owned).unwrap_or_default()
}

/// In force at `t`: from `valid_from` (inclusive) to `valid_to` (exclusive, open when None).
fn in_force(valid_from: i64, valid_to: Option<i64>, t: i64) -> bool {
    valid_from <= t && valid_to.is_none_or(|to| to > t)
}

/// The status at `t` (N7, V3): the last change effective at or before `t`; None before the
/// certificate's first entry.
pub(crate) fn status_at(history: &[StatusChange], t: i64) -> Option<&StatusChange> {
    let n = history.partition_point(|s| s.effective_at <= t);
    n.checked_sub(1).and_then(|i| history.get(i))
}

/// V1, N2 (a, c), N7, V3: valid at `t` = inside its validity period and active then. Returns
/// the status at `t`.
pub(crate) fn validity(c: &Certificate, t: i64, out: &mut Vec<Refusal>) -> pb::CertificateStatus {
    if t < c.not_before {
        out.push(Refusal::new(
            Rule::V1,
            format!("the certificate is not valid before {}", show(c.not_before)),
        ));
    }
    if t > c.not_after {
        out.push(Refusal::new(
            Rule::V1,
            format!("the certificate expired at {}", show(c.not_after)),
        ));
    }
    let status = status_at(&c.history, t);
    match status {
        Some(s) if s.status == "active" => {}
        Some(s) if s.status == "suspended" => out.push(Refusal::new(
            Rule::N7,
            format!("the certificate is suspended at {}", show(t)),
        )),
        Some(s) => out.push(Refusal::new(
            Rule::V3,
            format!(
                "the certificate is revoked at {} ({})",
                show(t),
                s.reason.as_deref().unwrap_or_default()
            ),
        )),
        None if t >= c.not_before && t <= c.not_after => out.push(Refusal::new(
            Rule::V1,
            "the certificate has no status at that time",
        )),
        None => {}
    }
    match status {
        Some(s) => status_value(&s.status),
        None => pb::CertificateStatus::Unspecified,
    }
}

/// A7: classified document types are never signed.
fn classified(doc: &str, classification: &str, out: &mut Vec<Refusal>) {
    if classification != "none" {
        out.push(Refusal::new(
            Rule::A7,
            format!(
                "document type {doc} is classified ({classification}); these certificates never sign classified documents"
            ),
        ));
    }
}

/// Titles the person holds in the organisation at `t`, by name; one per appointment.
async fn titles_held<'f, F: Facts>(
    facts: &'f F,
    person: &str,
    org: &str,
    t: i64,
) -> Result<Vec<Cow<'f, Title>>> {
    let mut held = Vec::new();
    for a in facts.appointments(person).await?.iter() {
        if a.organisation_id == org
            && in_force(a.valid_from, a.valid_to, t)
            && let Some(title) = facts.title(&a.title_id).await?
        {
            held.push(title);
        }
    }
    held.sort_by_key(|t| t.rank);
    Ok(held)
}

/// The first title (by name) under which the person may sign `doc` as an approval in `org`
/// at `t` (A2, A3).
pub(crate) async fn authorised_title<F: Facts>(
    facts: &F,
    person: &str,
    org: &str,
    doc: &str,
    t: i64,
) -> Result<Option<String>> {
    let mut best: Option<Cow<'_, Title>> = None;
    for a in facts.appointments(person).await?.iter() {
        if a.organisation_id != org
            || !in_force(a.valid_from, a.valid_to, t)
            || !facts.title_may_sign(org, &a.title_id, doc).await?
        {
            continue;
        }
        if let Some(title) = facts.title(&a.title_id).await?
            && best.as_ref().is_none_or(|b| title.rank < b.rank)
        {
            best = Some(title);
        }
    }
    Ok(best.map(|t| t.name.clone()))
}

/// A delegation in `org` covering `doc`, in force at `t` (A2).
pub(crate) fn covers(dl: &Delegation, org: &str, doc: &str, t: i64) -> bool {
    dl.organisation_id == org
        && dl.valid_from <= t
        && dl.valid_to > t
        && dl.document_types.iter().any(|x| x == doc)
}

/// The name of the first delegator (in the order the delegations were made) who lets
/// `delegate` sign `doc` on their behalf in `mode` at `t` and has the authority to sign it
/// themselves (A2).
async fn delegator<F: Facts>(
    facts: &F,
    delegate: &str,
    org: &str,
    doc: &str,
    mode: &str,
    t: i64,
) -> Result<Option<String>> {
    for dl in facts.delegations_to(delegate).await?.iter() {
        if dl.mode != mode || !covers(dl, org, doc, t) {
            continue;
        }
        let Some(from) = facts.person_name(&dl.from_person_id).await? else {
            continue;
        };
        if authorised_title(facts, &dl.from_person_id, org, doc, t)
            .await?
            .is_some()
        {
            return Ok(Some(from.into_owned()));
        }
    }
    Ok(None)
}

/// The custodian of an organisation certificate at `t`: of those in force, the last
/// assigned (A5).
async fn custodian_at<F: Facts>(facts: &F, cert_id: &str, t: i64) -> Result<Option<String>> {
    Ok(facts
        .custodians(cert_id)
        .await?
        .iter()
        .filter(|k| in_force(k.valid_from, k.valid_to, t))
        .max_by_key(|k| k.valid_from)
        .map(|k| k.person_id.clone()))
}

#[cfg(test)]
#[allow(non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    fn change(effective_at: i64, ordinal: i64, status: &str) -> StatusChange {
        StatusChange {
            effective_at,
            ordinal,
            status: status.into(),
            reason: None,
        }
    }

    #[test]
    fn status_at_takes_the_last_change_at_or_before_N7() {
        let history = vec![
            change(10, 1, "active"),
            change(50, 2, "suspended"),
            change(50, 3, "active"),
        ];
        let at = |t| status_at(&history, t).map(|s| s.status.as_str());
        assert_eq!(at(9), None);
        assert_eq!(at(10), Some("active"));
        assert_eq!(at(49), Some("active"));
        assert_eq!(at(50), Some("active"));
    }

    #[test]
    fn windows_include_the_start_and_exclude_the_end() {
        assert!(in_force(10, None, 10));
        assert!(in_force(10, Some(20), 19));
        assert!(!in_force(10, Some(20), 20));
        assert!(!in_force(10, None, 9));
    }
}

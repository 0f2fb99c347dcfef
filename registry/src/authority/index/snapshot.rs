//! The index's in-memory copy of the book: exactly the facts the authority rules read, keyed as
//! they look them up, so a decision costs a few hash lookups and no query.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::{Future, ready};

use crate::authority::facts::{Appointment, Certificate, Custodian, Delegation, Facts, Title};
use crate::error::Result;

/// The copy.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// By fingerprint.
    pub(super) certs: HashMap<String, Certificate>,
    /// Certificate id -> fingerprint.
    pub(super) cert_fp: HashMap<String, String>,
    /// Person id -> full name.
    pub(super) people: HashMap<String, String>,
    /// Organisation id -> name.
    pub(super) orgs: HashMap<String, String>,
    /// Title id -> name and its rank in the database's ORDER BY name.
    pub(super) titles: HashMap<String, Title>,
    /// Document type code -> classification.
    pub(super) doc_types: HashMap<String, String>,
    /// Person id -> appointments.
    pub(super) appointments: HashMap<String, Vec<Appointment>>,
    /// Organisation id -> its grants (A2-A4).
    pub(super) rules: HashMap<String, OrgRules>,
    /// Certificate id -> custodians (A5).
    pub(super) custodians: HashMap<String, Vec<Custodian>>,
    /// Delegate (to_person_id) -> delegations (A2), in the order they were made.
    pub(super) delegations: HashMap<String, Vec<Delegation>>,
    /// Client certificate fingerprint -> its roles not revoked (access/): the admission of
    /// every call is a lookup here.
    pub(super) roles: crate::access::RoleMap,
}

/// What an organisation granted.
#[derive(Debug, Default)]
pub(super) struct OrgRules {
    /// Title id -> document types it signs as APPROVAL (A3).
    pub(super) titles: HashMap<String, HashSet<String>>,
    /// Document type -> profiles of the organisation certificate (A4).
    pub(super) profiles: HashMap<String, Vec<String>>,
}

impl Snapshot {
    /// Puts a certificate in, in place of its previous version.
    pub(super) fn insert_cert(&mut self, c: Certificate) {
        self.cert_fp.insert(c.id.clone(), c.fingerprint.clone());
        self.certs.insert(c.fingerprint.clone(), c);
    }
}

fn slice<T: Clone>(rows: Option<&Vec<T>>) -> Cow<'_, [T]> {
    Cow::Borrowed(rows.map(Vec::as_slice).unwrap_or_default())
}

fn text(s: Option<&String>) -> Option<Cow<'_, str>> {
    s.map(|s| Cow::Borrowed(s.as_str()))
}

// Every answer is ready at once: the facts are in memory.
impl Facts for Snapshot {
    fn certificate(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, Certificate>>>> + Send {
        ready(Ok(self.certs.get(fingerprint).map(Cow::Borrowed)))
    }

    fn person_name(&self, id: &str) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send {
        ready(Ok(text(self.people.get(id))))
    }

    fn organisation_name(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send {
        ready(Ok(text(self.orgs.get(id))))
    }

    fn classification(
        &self,
        document_type: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send {
        ready(Ok(text(self.doc_types.get(document_type))))
    }

    fn appointments(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Appointment]>>> + Send {
        ready(Ok(slice(self.appointments.get(person_id))))
    }

    fn title(&self, id: &str) -> impl Future<Output = Result<Option<Cow<'_, Title>>>> + Send {
        ready(Ok(self.titles.get(id).map(Cow::Borrowed)))
    }

    fn title_may_sign(
        &self,
        organisation_id: &str,
        title_id: &str,
        document_type: &str,
    ) -> impl Future<Output = Result<bool>> + Send {
        ready(Ok(self
            .rules
            .get(organisation_id)
            .and_then(|r| r.titles.get(title_id))
            .is_some_and(|docs| docs.contains(document_type))))
    }

    fn profiles(
        &self,
        organisation_id: &str,
        document_type: &str,
    ) -> impl Future<Output = Result<Cow<'_, [String]>>> + Send {
        ready(Ok(slice(
            self.rules
                .get(organisation_id)
                .and_then(|r| r.profiles.get(document_type)),
        )))
    }

    fn custodians(
        &self,
        certificate_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Custodian]>>> + Send {
        ready(Ok(slice(self.custodians.get(certificate_id))))
    }

    fn delegations_to(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Delegation]>>> + Send {
        ready(Ok(slice(self.delegations.get(person_id))))
    }
}

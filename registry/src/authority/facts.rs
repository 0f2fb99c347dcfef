//! The facts the authority rules read, and the trait every source of them implements: the
//! in-memory index (production) and the SQL loader (the reference it is tested against).
//!
//! A source only looks facts up by key; it never filters by time nor decides anything. Every
//! "in force at t", every status at t and every choice among candidates is made by the rules
//! (rules.rs), once.

use std::borrow::Cow;
use std::future::Future;

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;

use crate::error::Result;

/// A registered certificate with its whole status history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Registry id (`crt_...`).
    pub id: String,
    /// Normalised SHA-256 fingerprint.
    pub fingerprint: String,
    /// Stored kind: `personal` or `organisation`.
    pub kind: String,
    /// The holder, for a personal certificate.
    pub person_id: Option<String>,
    /// The organisation it belongs to.
    pub organisation_id: String,
    /// Validity period (unix seconds, both inclusive).
    pub not_before: i64,
    /// See `not_before`.
    pub not_after: i64,
    /// Sorted by (effective_at, ordinal).
    pub history: Vec<StatusChange>,
}

/// One entry of a certificate's status history (V3, N7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// From when (unix seconds).
    pub effective_at: i64,
    /// Order among changes effective at the same second.
    pub ordinal: i64,
    /// Stored status: `active`, `suspended` or `revoked`.
    pub status: String,
    /// Revocation reason (V4), as stored.
    pub reason: Option<String>,
}

/// A title and its place in the database's own order of title names (its collation), which
/// the rules use wherever they pick or list titles "by name".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Title {
    /// As written in the book.
    pub name: String,
    /// How many titles sort before this one.
    pub rank: usize,
}

/// A person holds a title in an organisation over a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appointment {
    /// Where.
    pub organisation_id: String,
    /// Which title.
    pub title_id: String,
    /// From (inclusive).
    pub valid_from: i64,
    /// To (exclusive; open when None).
    pub valid_to: Option<i64>,
}

/// A custodian of an organisation certificate, assigned by decision (A5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custodian {
    /// The clerk.
    pub person_id: String,
    /// From (inclusive).
    pub valid_from: i64,
    /// To (exclusive; open when None).
    pub valid_to: Option<i64>,
}

/// A decision letting the delegate sign on behalf of the delegator (A2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    /// Where.
    pub organisation_id: String,
    /// The delegator.
    pub from_person_id: String,
    /// Stored mode: `kt`, `tl` or `tuq` (see [`mode_name`]).
    pub mode: String,
    /// From (inclusive).
    pub valid_from: i64,
    /// To (exclusive).
    pub valid_to: i64,
    /// The document types covered.
    pub document_types: Vec<String>,
}

/// Where the authority rules read their facts. Lookups by key, each answering what the book
/// holds now; borrowed where the source holds them in memory. Lists come in the source's
/// order, which must be the same for every source where the rules take the first or last
/// (delegations: in the order they were made).
pub trait Facts: Sync {
    /// The certificate with this (normalised) fingerprint.
    fn certificate(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, Certificate>>>> + Send;

    /// A person's full name; None when no such person.
    fn person_name(&self, id: &str) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send;

    /// An organisation's name; None when no such organisation.
    fn organisation_name(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send;

    /// A document type's stored classification (`none`, `secret`, ...); None when unknown.
    fn classification(
        &self,
        document_type: &str,
    ) -> impl Future<Output = Result<Option<Cow<'_, str>>>> + Send;

    /// Every appointment of a person, past, present and future.
    fn appointments(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Appointment]>>> + Send;

    /// A title by id.
    fn title(&self, id: &str) -> impl Future<Output = Result<Option<Cow<'_, Title>>>> + Send;

    /// Whether the organisation granted the title the signing of the document type as an
    /// approval (its title authorities).
    fn title_may_sign(
        &self,
        organisation_id: &str,
        title_id: &str,
        document_type: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The profiles (stored `Profile` names) the organisation's certificate is allowed for a
    /// document type.
    fn profiles(
        &self,
        organisation_id: &str,
        document_type: &str,
    ) -> impl Future<Output = Result<Cow<'_, [String]>>> + Send;

    /// Every custodian ever assigned to a certificate, by certificate id.
    fn custodians(
        &self,
        certificate_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Custodian]>>> + Send;

    /// Every delegation to a person, in the order they were made.
    fn delegations_to(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Cow<'_, [Delegation]>>> + Send;
}

// ----- stored names ---------------------------------------------------------------------------

/// The stored name of a delegated signing mode; None for signing in one's own name.
pub fn mode_name(m: spb::SigningMode) -> Option<&'static str> {
    use spb::SigningMode as M;
    match m {
        M::Kt => Some("kt"),
        M::Tl => Some("tl"),
        M::Tuq => Some("tuq"),
        M::Own | M::Unspecified => None,
    }
}

/// The proto value of a stored status name.
pub fn status_value(s: &str) -> pb::CertificateStatus {
    match s {
        "active" => pb::CertificateStatus::Active,
        "suspended" => pb::CertificateStatus::Suspended,
        "revoked" => pb::CertificateStatus::Revoked,
        _ => pb::CertificateStatus::Unspecified,
    }
}

/// The proto value of a stored certificate kind.
pub fn kind_value(s: &str) -> pb::CertificateKind {
    match s {
        "personal" => pb::CertificateKind::Personal,
        "organisation" => pb::CertificateKind::Organisation,
        _ => pb::CertificateKind::Unspecified,
    }
}

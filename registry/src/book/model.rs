//! The book's domain types: what its operations take and answer, free of the wire format
//! (the service converts protobuf at its edge, convert.rs). Times are unix seconds;
//! identifiers are the registry's opaque ids; an enum's `as_str` is the name the database
//! and the event log hold, so those stay as they were written.

use crate::access::Actor;

/// An enum whose values are stored by name.
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v),+
        }

        impl $name {
            /// The name the database and the event log hold.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$v => $s),+
                }
            }

            /// The value of a stored name; None for a name this version does not know.
            pub fn from_stored(s: &str) -> Option<Self> {
                match s {
                    $($s => Some(Self::$v),)+
                    _ => None,
                }
            }
        }
    };
}

/// Who made a change and why: the event log keeps both with the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Who: the admitted caller (access/), stamped by the service; the book refuses a
    /// change without one, so no change can forget its caller.
    pub by: Option<Actor>,
    /// Why.
    pub reason: String,
    /// The request's free `actor` text, kept as a comment (never who made the change).
    pub note: String,
}

impl Change {
    /// A change made by an operator's tool writing the database directly.
    pub fn local(tool: &str, reason: &str) -> Self {
        Self {
            by: Some(Actor::local(tool)),
            reason: reason.to_owned(),
            note: String::new(),
        }
    }
}

stored_enum! {
    /// An organisation's status; a pending change blocks new certificates (I2).
    OrganisationStatus {
        /// Working.
        Active => "active",
        /// To be dissolved.
        PendingDissolution => "pending_dissolution",
        /// To be merged.
        PendingMerger => "pending_merger",
        /// To be split.
        PendingSplit => "pending_split",
        /// To be renamed.
        PendingRename => "pending_rename",
        /// Dissolved: its status no longer changes.
        Dissolved => "dissolved",
    }
}

stored_enum! {
    /// A document type's secrecy (A7: anything but `None` is never signed).
    Classification {
        /// Not classified.
        None => "none",
        /// Mật.
        Secret => "secret",
        /// Tối mật.
        TopSecret => "top_secret",
        /// Tuyệt mật.
        HighestSecret => "highest_secret",
    }
}

stored_enum! {
    /// How a delegate signs on behalf (A2): KT., TL., TUQ.
    DelegationMode {
        /// Ký thay.
        Kt => "kt",
        /// Thừa lệnh.
        Tl => "tl",
        /// Thừa ủy quyền.
        Tuq => "tuq",
    }
}

stored_enum! {
    /// Whose key a certificate is.
    CertificateKind {
        /// A person's.
        Personal => "personal",
        /// An organisation's (the seal), used by its custodian (A5).
        Organisation => "organisation",
    }
}

stored_enum! {
    /// A certificate's status (N7, V3).
    CertificateStatus {
        /// In use.
        Active => "active",
        /// Suspended until reinstated (N7).
        Suspended => "suspended",
        /// Revoked, permanently (V3).
        Revoked => "revoked",
    }
}

stored_enum! {
    /// Why a certificate is revoked (V4); stored as the protocol names them.
    RevocationReason {
        /// Expired.
        Expired => "REVOCATION_REASON_EXPIRED",
        /// Key exposed or may be.
        KeyCompromise => "REVOCATION_REASON_KEY_COMPROMISE",
        /// Device lost, copied or otherwise unsafe.
        DeviceLost => "REVOCATION_REASON_DEVICE_LOST",
        /// Device broken.
        DeviceBroken => "REVOCATION_REASON_DEVICE_BROKEN",
        /// Asked by a prosecuting or security body.
        AuthorityRequest => "REVOCATION_REASON_AUTHORITY_REQUEST",
        /// Asked by the subscriber manager.
        ManagerRequest => "REVOCATION_REASON_MANAGER_REQUEST",
        /// The holder's position changed.
        PositionChanged => "REVOCATION_REASON_POSITION_CHANGED",
        /// The holder retired, resigned or died.
        LeftService => "REVOCATION_REASON_LEFT_SERVICE",
        /// The holder's title changed.
        TitleChanged => "REVOCATION_REASON_TITLE_CHANGED",
        /// The organisation was dissolved, renamed or moved.
        OrganisationChanged => "REVOCATION_REASON_ORGANISATION_CHANGED",
        /// The rules were breached.
        RulesBreach => "REVOCATION_REASON_RULES_BREACH",
    }
}

stored_enum! {
    /// The legal form of a signature (D1-D6); stored as the protocol names them.
    Profile {
        /// The competent person's signature (P1).
        Approval => "PROFILE_APPROVAL",
        /// The organisation's seal over an approved document (P2, A6, W2).
        Issue => "PROFILE_ISSUE",
        /// The seal over a scanned paper original (D3).
        ScannedIssue => "PROFILE_SCANNED_ISSUE",
        /// A copy made by the organisation (P3).
        Copy => "PROFILE_COPY",
        /// A separate attachment (P4, D5).
        Appendix => "PROFILE_APPENDIX",
        /// The received stamp (D6).
        Received => "PROFILE_RECEIVED",
        /// A comment.
        Comment => "PROFILE_COMMENT",
        /// The seal over an edXML envelope of an outgoing document (N6, W1).
        Exchange => "PROFILE_EXCHANGE",
        /// The seal over an edXML status message (N6, W4).
        Status => "PROFILE_STATUS",
    }
}

stored_enum! {
    /// Which register a document is entered in (W1, W3).
    Direction {
        /// Sent by the organisation.
        Outgoing => "outgoing",
        /// Received by it.
        Incoming => "incoming",
    }
}

stored_enum! {
    /// Which way a message about a registered document went (W4, N6).
    StatusDirection {
        /// From the organisation to the counterparty.
        Sent => "sent",
        /// From the counterparty to the organisation.
        Received => "received",
    }
}

stored_enum! {
    /// Where an unlock request stands (I5).
    UnlockStatus {
        /// Open.
        Pending => "pending",
        /// Unlocked.
        Done => "done",
        /// Refused in writing.
        Refused => "refused",
    }
}

/// How a pending unlock request ends (I5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// Unlocked.
    Done,
    /// Refused, with the reason in writing.
    Refused,
}

impl UnlockOutcome {
    /// The status it leaves the request in.
    pub fn status(self) -> UnlockStatus {
        match self {
            Self::Done => UnlockStatus::Done,
            Self::Refused => UnlockStatus::Refused,
        }
    }
}

// ----- organisations and people ---------------------------------------------------------------

/// A new organisation (I1, I6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrganisation {
    /// Its name.
    pub name: String,
    /// Its mail domain, as given (I1).
    pub mail_domain: String,
    /// The body it is part of.
    pub parent_id: Option<String>,
    /// The agency that manages its subscribers (I6).
    pub managing_agency_id: Option<String>,
    /// Its organisation code (Decision 20/2020), as given.
    pub code: Option<String>,
}

/// A change of an organisation's status (I2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganisationStatusChange {
    /// The organisation.
    pub organisation_id: String,
    /// Its new status.
    pub status: OrganisationStatus,
    /// The decision making it.
    pub decision_ref: String,
}

/// Changes to an organisation; `None` leaves a field as it is, `Some(None)` clears an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganisationUpdate {
    /// The organisation.
    pub organisation_id: String,
    /// A new name.
    pub name: Option<String>,
    /// A new mail domain, as given (I1).
    pub mail_domain: Option<String>,
    /// A new managing agency, or none (it manages itself).
    pub managing_agency_id: Option<Option<String>>,
    /// A new parent, or none (a top-level body).
    pub parent_id: Option<Option<String>>,
    /// A new organisation code (Decision 20/2020) as given, or none.
    pub code: Option<Option<String>>,
}

/// A new person working in an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPerson {
    /// Full name.
    pub full_name: String,
    /// Mail address, as given.
    pub email: String,
    /// The organisation they work in.
    pub organisation_id: String,
    /// When their service ends (I2).
    pub service_end: Option<i64>,
}

/// Changes to a person; `None` leaves a field as it is, `Some(None)` clears the end of service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonUpdate {
    /// The person.
    pub person_id: String,
    /// A new name.
    pub full_name: Option<String>,
    /// A new mail address, as given.
    pub email: Option<String>,
    /// A new end of service, or none.
    pub service_end: Option<Option<i64>>,
}

// ----- titles, appointments, document types, grants -------------------------------------------

/// A person appointed to a title in an organisation for a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAppointment {
    /// Who.
    pub person_id: String,
    /// To which title.
    pub title_id: String,
    /// Where.
    pub organisation_id: String,
    /// From.
    pub valid_from: i64,
    /// Until (open-ended without).
    pub valid_to: Option<i64>,
    /// The decision.
    pub decision_ref: String,
}

/// The end of an appointment (A3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentEnd {
    /// The appointment.
    pub appointment_id: String,
    /// When it ends.
    pub valid_to: i64,
    /// The decision ending it.
    pub decision_ref: String,
}

/// A new document type (A7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocumentType {
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its secrecy.
    pub classification: Classification,
    /// D2, D3: the scanned paper form (SCANNED_ISSUE) is allowed even when the competent
    /// person holds a valid personal certificate.
    pub scanned_issue_allowed: bool,
}

/// A title's authority to sign a document type in an organisation (A3), as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TitleGrant {
    /// The organisation.
    pub organisation_id: String,
    /// The title.
    pub title_id: String,
    /// The document type.
    pub document_type: String,
}

/// An organisation certificate's permission for a profile on a document type (A4), as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileGrant {
    /// The organisation.
    pub organisation_id: String,
    /// The document type.
    pub document_type: String,
    /// The profile; None when the request named none (refused as required).
    pub profile: Option<Profile>,
}

/// Grants written all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Title authorities (A3).
    pub title_authorities: Vec<TitleGrant>,
    /// Organisation profiles (A4).
    pub organisation_profiles: Vec<ProfileGrant>,
}

// ----- certificates and custodians ------------------------------------------------------------

/// A certificate to register: new, or the renewal of another (I3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCertificate {
    /// The DER the CA issued.
    pub der: Vec<u8>,
    /// Whose key it is.
    pub kind: CertificateKind,
    /// The holder of a personal certificate, as given.
    pub person_id: String,
    /// The organisation, as given (a personal certificate defaults to the holder's).
    pub organisation_id: String,
    /// The fingerprint of the certificate it renews.
    pub renewal_of: Option<String>,
}

/// A change of a certificate's status (N7, V3, V4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// The certificate.
    pub fingerprint: String,
    /// The status it goes to.
    pub status: CertificateStatus,
    /// Why it is revoked (a revocation only, V4).
    pub reason: Option<RevocationReason>,
    /// From when (now without).
    pub effective_at: Option<i64>,
}

/// One entry of a certificate's status history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEntry {
    /// The status (None: a stored name this version does not know).
    pub status: Option<CertificateStatus>,
    /// The revocation reason.
    pub reason: Option<RevocationReason>,
    /// From when.
    pub effective_at: i64,
}

/// A certificate as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Registry id.
    pub id: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// Serial, uppercase hex.
    pub serial: String,
    /// Issuer name.
    pub issuer: String,
    /// Subject name.
    pub subject: String,
    /// Whose key it is.
    pub kind: Option<CertificateKind>,
    /// The holder of a personal certificate.
    pub person_id: Option<String>,
    /// Its organisation.
    pub organisation_id: String,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// The status at the time asked (None before its first entry).
    pub status: Option<CertificateStatus>,
    /// Every status change, oldest first.
    pub history: Vec<StatusEntry>,
    /// How many renewals led to it.
    pub renewal_count: i64,
    /// The fingerprint of the certificate it renews.
    pub renewal_of: Option<String>,
    /// The DER as registered.
    pub der: Vec<u8>,
}

/// The assignment of an organisation certificate's custodian (A5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodianAssignment {
    /// The organisation certificate.
    pub fingerprint: String,
    /// The new custodian.
    pub person_id: String,
    /// The written decision, as given.
    pub decision_ref: String,
    /// The decision's date.
    pub decision_date: i64,
    /// From when (now without).
    pub effective_at: Option<i64>,
    /// The handover record, as given (needed when replacing a custodian).
    pub handover_record: String,
}

// ----- delegations ------------------------------------------------------------------------------

/// A delegation for KT./TL./TUQ. (A2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelegation {
    /// The organisation.
    pub organisation_id: String,
    /// The delegator.
    pub from_person_id: String,
    /// The delegate.
    pub to_person_id: String,
    /// How the delegate signs.
    pub mode: DelegationMode,
    /// The document types, as given.
    pub document_types: Vec<String>,
    /// The decision, as given.
    pub decision_ref: String,
    /// From.
    pub valid_from: i64,
    /// Until.
    pub valid_to: i64,
}

/// The revocation of a delegation (A2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationRevocation {
    /// The delegation.
    pub delegation_id: String,
    /// The decision, as given.
    pub decision_ref: String,
    /// From when (now without).
    pub effective_at: Option<i64>,
}

// ----- unlock requests ----------------------------------------------------------------------------

/// A request to unlock a certificate's key device (I5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockFiling {
    /// The certificate.
    pub fingerprint: String,
    /// The organisation asking (the managing agency).
    pub requested_by: String,
    /// Why.
    pub reason: String,
}

/// How an unlock request was resolved (I5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockResolution {
    /// The request.
    pub id: String,
    /// Done or refused.
    pub outcome: UnlockOutcome,
    /// The written reason, as given (required for a refusal).
    pub reason: String,
}

/// An unlock request (I5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockRequest {
    /// Its id.
    pub id: String,
    /// The certificate.
    pub fingerprint: String,
    /// The organisation that asked.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub requested_at: i64,
    /// When it is due.
    pub due_at: i64,
    /// Where it stands (None: a stored name this version does not know).
    pub status: Option<UnlockStatus>,
    /// The written reason of the resolution.
    pub resolution_reason: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
}

// ----- usage, registers, reports, events, search --------------------------------------------------

/// One count of a signer's usage batch, as given (checked by the book, R2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEntry {
    /// The certificate.
    pub certificate_fingerprint: String,
    /// The organisation signing.
    pub organisation_id: String,
    /// The legal form.
    pub profile: String,
    /// Vietnam's day, `YYYY-MM-DD`.
    pub day: String,
    /// Signatures.
    pub count: i64,
}

/// A signer's batch of signature counts (R2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBatch {
    /// Names the audit records it covers, so a batch sent again counts once.
    pub batch_id: String,
    /// The counts.
    pub entries: Vec<UsageEntry>,
}

/// What a usage batch added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageRecorded {
    /// The batch had been recorded before; nothing was added.
    pub duplicate: bool,
    /// Signatures added.
    pub signatures: i64,
}

/// A document to enter in a register (W1, W3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRegisterEntry {
    /// The organisation.
    pub organisation_id: String,
    /// Outgoing or incoming.
    pub direction: Direction,
    /// SHA-256 of the stored original, as given.
    pub sha256: String,
    /// The document type.
    pub document_type: String,
    /// Số, ký hiệu, as given (required for an outgoing document, W1).
    pub number_and_symbol: String,
    /// The other party, as given.
    pub counterparty: String,
    /// An incoming document refused (W3).
    pub refused: bool,
    /// Why it was refused, as given.
    pub reason: String,
    /// When (now without).
    pub at: Option<i64>,
    /// Incoming: the authority outcome of each signature (A3, A4).
    pub signatures: Vec<SignatureOutcome>,
}

/// What came of one signer's authority on an incoming document (A3, A4): stored with the
/// register entry as JSON, so the clerk sees later why a signer was or was not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureOutcome {
    /// The signature field.
    pub field_name: String,
    /// `allowed`, `outside` (not checked) or `refused`.
    pub outcome: String,
    /// Refused: the rule.
    pub rule: String,
    /// Why, or who.
    pub message: String,
    /// The signer certificate's subject (RFC 4514).
    pub subject: String,
    /// Its SHA-256, hex.
    pub fingerprint: String,
    /// A known certificate's organisation here.
    pub organisation_id: String,
    /// Its name.
    pub organisation_name: String,
    /// Outside: the sender's organisation code, when given.
    pub sender_code: String,
}

/// An entry of a register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterEntry {
    /// Its id.
    pub id: String,
    /// The organisation.
    pub organisation_id: String,
    /// Outgoing or incoming.
    pub direction: Direction,
    /// The register's year (Vietnam's time).
    pub year: i32,
    /// The number in the register (0 for a refused document).
    pub number: i64,
    /// The document type.
    pub document_type: String,
    /// Số, ký hiệu.
    pub number_and_symbol: String,
    /// SHA-256 of the stored original.
    pub sha256: String,
    /// The other party.
    pub counterparty: String,
    /// Refused (W3).
    pub refused: bool,
    /// Why it was refused.
    pub reason: String,
    /// When.
    pub at: i64,
    /// Incoming: the authority outcome of each signature.
    pub signatures: Vec<SignatureOutcome>,
}

/// Which entries of a register to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterQuery {
    /// The organisation.
    pub organisation_id: String,
    /// One direction, or both.
    pub direction: Option<Direction>,
    /// One year, or every year (0).
    pub year: i32,
    /// One document by its SHA-256, as given, or every one ("").
    pub sha256: String,
    /// The documents with this number and symbol, or every one ("").
    pub number_and_symbol: String,
}

/// One document looked up in an organisation's registers (`Book::find_entry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryLookup {
    /// The organisation whose registers are searched.
    pub organisation_id: String,
    /// One direction, or both.
    pub direction: Option<Direction>,
    /// The stored original's SHA-256 (hex), or any ("").
    pub sha256: String,
    /// The document's number and symbol, or any ("").
    pub number_and_symbol: String,
}

/// The period a report counts by (R2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Three months.
    Quarter,
    /// Six months.
    HalfYear,
    /// Twelve months.
    Year,
}

impl Granularity {
    /// Its length in months.
    pub fn months(self) -> u8 {
        match self {
            Self::Quarter => 3,
            Self::HalfYear => 6,
            Self::Year => 12,
        }
    }
}

/// A report's question (R2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportQuery {
    /// From (inclusive).
    pub from: i64,
    /// To (exclusive).
    pub to: i64,
    /// The periods.
    pub granularity: Granularity,
}

/// One managing agency's counts for one period (R2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportRow {
    /// The period's label.
    pub period: String,
    /// Its first second.
    pub period_start: i64,
    /// Its end.
    pub period_end: i64,
    /// The managing agency.
    pub managing_agency_id: String,
    /// Its name.
    pub managing_agency_name: String,
    /// New certificates.
    pub issued: i64,
    /// Renewals.
    pub renewed: i64,
    /// Revocations.
    pub revoked: i64,
    /// Suspensions.
    pub suspended: i64,
    /// Signatures made, as reported.
    pub signatures: i64,
    /// Documents sent.
    pub sent: i64,
    /// Documents received.
    pub received: i64,
    /// Documents refused.
    pub refused: i64,
}

/// A report (R2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Per period and managing agency.
    pub rows: Vec<ReportRow>,
    /// Whether any signer has reported usage at all.
    pub signatures_counted: bool,
}

/// An entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LogEntry {
    /// Its sequence number.
    pub seq: i64,
    /// When.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// What kind of change.
    pub kind: String,
    /// The id of the thing changed.
    pub entity_id: String,
    /// The change, JSON.
    pub change_json: String,
    /// The caller's certificate fingerprint (empty without one).
    pub actor_fingerprint: String,
    /// The role that allowed the change.
    pub actor_role: String,
    /// The request's free actor text.
    pub note: String,
}

/// A person found by name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonMatch {
    /// Their id.
    pub id: String,
    /// Full name.
    pub full_name: String,
    /// Mail address.
    pub email: String,
    /// The organisation they work in.
    pub organisation_id: String,
    /// The whole name matches (not only a part of it).
    #[sqlx(skip)]
    pub exact: bool,
}

/// An organisation found by name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrganisationMatch {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its managing agency.
    pub managing_agency_id: Option<String>,
    /// Its organisation code (Decision 20/2020).
    pub code: Option<String>,
    /// The whole name matches (not only a part of it).
    #[sqlx(skip)]
    pub exact: bool,
}

/// A role to grant to a client certificate (access/).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRole {
    /// The certificate's SHA-256, lowercase hex.
    pub fingerprint: String,
    /// Its subject, for people reading the list.
    pub subject: String,
    /// The role.
    pub role: crate::access::Role,
    /// agency-admin: the managing agency (I6).
    pub agency_id: Option<String>,
    /// From when; now when absent.
    pub valid_from: Option<i64>,
    /// Until when; open when absent.
    pub valid_to: Option<i64>,
}

/// A grant as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRow {
    /// Its id.
    pub id: String,
    /// The certificate's fingerprint.
    pub fingerprint: String,
    /// The certificate's subject.
    pub subject: String,
    /// The role's name.
    pub role: String,
    /// agency-admin: the managing agency.
    pub agency_id: Option<String>,
    /// From when.
    pub valid_from: i64,
    /// Until when.
    pub valid_to: Option<i64>,
    /// When revoked.
    pub revoked_at: Option<i64>,
}

/// An audit anchor a signer records at a seal: the seal record at `sequence` of its log has
/// hash `head_hash` (the signer's audit log format, kyso-signer `audit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditAnchor {
    /// The log: the signer's configured log id.
    pub log_id: String,
    /// The seal record's sequence number.
    pub sequence: i64,
    /// The seal record's hash, lowercase hex.
    pub head_hash: String,
    /// The seal's algorithm OID, dotted.
    pub seal_algorithm: String,
    /// SHA-256 of the seal key's certificate, lowercase hex, or empty.
    pub seal_key_sha256: String,
    /// The seal's signature.
    pub seal_signature: Vec<u8>,
    /// The seal record's time (unix seconds).
    pub sealed_at: i64,
}

/// An anchor as recorded, with the certificate that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditAnchor {
    /// The log.
    pub log_id: String,
    /// The seal record's sequence number.
    pub sequence: i64,
    /// The seal record's hash.
    pub head_hash: String,
    /// The seal's algorithm OID.
    pub seal_algorithm: String,
    /// SHA-256 of the seal key's certificate, or empty.
    pub seal_key_sha256: String,
    /// The seal's signature, lowercase hex.
    pub seal_signature: String,
    /// The seal record's time.
    pub sealed_at: i64,
    /// The client certificate that wrote the anchor.
    pub writer_fingerprint: String,
    /// Its subject.
    pub writer_subject: String,
    /// When the registry wrote it.
    pub recorded_at: i64,
}

/// A message about a registered document to record (W4, N6): the document's envelope (code
/// '') or a status message, sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocumentStatus {
    /// The organisation whose register holds the entry.
    pub organisation_id: String,
    /// The entry.
    pub register_entry_id: String,
    /// The other organisation's code, as given.
    pub counterparty_code: String,
    /// Which way it went.
    pub direction: StatusDirection,
    /// '' or the N6 code, as given.
    pub code: String,
    /// Why (a refusal, a take-back), as given.
    pub description: String,
    /// SHA-256 of the envelope or status message as exchanged, as given ('' when none).
    pub envelope_sha256: String,
    /// SHA-256 of the copy of the document kept with it, as given ('' when none).
    pub document_sha256: String,
    /// When (now without).
    pub at: Option<i64>,
}

/// A recorded message about a registered document (W4, N6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentStatus {
    /// Registry id.
    pub id: String,
    /// The organisation.
    pub organisation_id: String,
    /// The register entry.
    pub register_entry_id: String,
    /// The other organisation's code (Decision 20/2020).
    pub counterparty_code: String,
    /// Which way it went.
    pub direction: Option<StatusDirection>,
    /// '' for the envelope, else the N6 code.
    pub code: String,
    /// Why.
    pub description: String,
    /// SHA-256 of what was exchanged, hex, or ''.
    pub envelope_sha256: String,
    /// SHA-256 of the copy of the document kept with it (a stamped copy), hex, or ''.
    pub document_sha256: String,
    /// When.
    pub at: i64,
    /// Who recorded it: the caller's certificate subject.
    pub actor: String,
}

/// An outgoing document a counterparty has not confirmed (W4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unconfirmed {
    /// The outgoing register entry.
    pub entry: RegisterEntry,
    /// The counterparty it was sent to.
    pub counterparty_code: String,
    /// The counterparty's last answer, '' for none.
    pub last_code: String,
    /// When it was first sent to it.
    pub sent_at: i64,
    /// The last message either way.
    pub last_at: i64,
}

/// What `FindCertificates` looks for (issue 15, item 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateLookup {
    /// Issuer (RFC 4514, as the registry renders it) and serial (normalised hex).
    IssuerSerial {
        /// The issuer.
        issuer: String,
        /// The serial.
        serial: String,
    },
    /// The subject key identifier (normalised hex).
    SubjectKeyIdentifier(String),
}

//! The flags and subcommands of `kyso registry`: one subcommand per call of
//! `kyso.registry.v1.Registry`, with the request as JSON, plus the report and the import.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::client::ServerArgs;

/// `kyso registry …`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub call: Call,
}

/// Where the request JSON comes from.
#[derive(Debug, Clone, Args)]
pub struct JsonIn {
    /// The request as JSON (proto field names; enums by name, with or without their prefix;
    /// times as RFC 3339 or unix seconds); `-` reads stdin.
    #[arg(long, default_value = "-")]
    pub json: PathBuf,
}

/// One registry call.
#[derive(Debug, Subcommand)]
pub enum Call {
    /// CreateOrganisation: {change, name, parent_id, managing_agency_id, mail_domain}.
    CreateOrganisation(JsonIn),
    /// SetOrganisationStatus: {change, organisation_id, status, decision_ref}.
    SetOrganisationStatus(JsonIn),
    /// CreatePerson: {change, full_name, email, organisation_id, service_end}.
    CreatePerson(JsonIn),
    /// CreateTitle: {change, name}.
    CreateTitle(JsonIn),
    /// CreateAppointment: {change, person_id, title_id, organisation_id, valid_from, valid_to, decision_ref}.
    CreateAppointment(JsonIn),
    /// CreateDocumentType: {change, code, name, classification, scanned_issue_allowed} (D2: the scanned paper form allowed even where the competent person holds a certificate; default false).
    CreateDocumentType(JsonIn),
    /// GrantAuthority: {change, title_authorities: [...], organisation_profiles: [...]}.
    GrantAuthority(JsonIn),
    /// RegisterCertificate: --cert FILE (PEM or DER) and {change, kind, person_id, organisation_id, renewal_of}.
    RegisterCertificate {
        /// The certificate, PEM or DER.
        #[arg(long)]
        cert: PathBuf,
        #[command(flatten)]
        input: JsonIn,
    },
    /// ChangeCertificateStatus: {change, fingerprint, status, reason, effective_at}.
    ChangeCertificateStatus(JsonIn),
    /// AssignCustodian: {change, fingerprint, person_id, decision_ref, decision_date, handover_record, effective_at}.
    AssignCustodian(JsonIn),
    /// CreateDelegation: {change, organisation_id, from_person_id, to_person_id, mode, document_types, decision_ref, valid_from, valid_to}.
    CreateDelegation(JsonIn),
    /// EndAppointment (A3): {change, appointment_id, valid_to, decision_ref}.
    EndAppointment(JsonIn),
    /// RevokeDelegation (A2): {change, delegation_id, decision_ref, effective_at}.
    RevokeDelegation(JsonIn),
    /// UpdateOrganisation (I1, I6): {change, organisation_id, name, mail_domain, managing_agency_id, parent_id}; fields left out are unchanged, "" clears an ID.
    UpdateOrganisation(JsonIn),
    /// UpdatePerson: {change, person_id, full_name, email, service_end, clear_service_end}; fields left out are unchanged.
    UpdatePerson(JsonIn),
    /// Authorize: {fingerprint, acting_person_id, organisation_id, document_type, profile, mode, at}; exit 1 when refused.
    Authorize(JsonIn),
    /// CheckAuthority: {fingerprint, document_type, at}; exit 1 when not authorised.
    CheckAuthority(JsonIn),
    /// CheckSeal (D2, D3, A6, P3, D5): {organisation_id, profile, document_type, competent_person_id, sha256, number_and_symbol, at}; exit 1 when refused.
    CheckSeal(JsonIn),
    /// GetCertificate: {fingerprint} or {issuer_serial: {issuer, serial}}.
    GetCertificate(JsonIn),
    /// ListExpiringCertificates: {within_days, at}.
    ListExpiring(JsonIn),
    /// ListEvents: {after_seq, limit}.
    ListEvents(JsonIn),
    /// RequestUnlock (I5): {change, fingerprint, requested_by, reason}.
    RequestUnlock(JsonIn),
    /// ResolveUnlock (I5): {change, id, outcome: DONE|REFUSED, reason}; a refusal needs the reason.
    ResolveUnlock(JsonIn),
    /// ListOverdueUnlocks (I5): {now}.
    ListOverdueUnlocks(JsonIn),
    /// SetHolidays (I5): {change, year, dates: ["YYYY-MM-DD", ...]}; replaces the year's holidays.
    SetHolidays(JsonIn),
    /// ListHolidays (I5): {year}; 0 or absent: every year.
    ListHolidays(JsonIn),
    /// FindPeople: {name, organisation_id}; case- and accent-insensitive.
    FindPeople(JsonIn),
    /// FindOrganisations: {name}; case- and accent-insensitive.
    FindOrganisations(JsonIn),
    /// Registers every .pem/.cer/.der/.crt file of a folder, holders guessed from the subject.
    ImportCertificates(ImportArgs),
    /// Report (R2): certificates issued, renewed, revoked, suspended, signatures, documents
    /// sent, received and refused per managing agency per period.
    Report(ReportArgs),
    /// RecordUsage (R2): {change, batch_id, entries: [{certificate_fingerprint,
    /// organisation_id, profile, day, count}]}; a batch id already counted changes nothing.
    RecordUsage(JsonIn),
    /// RegisterDocument (W1, W3): {change, organisation_id, direction: OUTGOING|INCOMING,
    /// document_type, number_and_symbol, sha256, counterparty, refused, reason, at}.
    RegisterDocument(JsonIn),
    /// ListRegister: {organisation_id, direction, year, sha256, number_and_symbol}.
    ListRegister(JsonIn),
    /// RecordDocumentStatus (N6, W4): {change, organisation_id, register_entry_id,
    /// counterparty_code, direction: SENT|RECEIVED, code ('' for the envelope, else 01-06,
    /// 13, 15, 16), description, envelope_sha256, at}.
    RecordDocumentStatus(JsonIn),
    /// ListDocumentStatus: {organisation_id, register_entry_id}; by time, then as recorded.
    ListDocumentStatus(JsonIn),
    /// ListUnconfirmed (W4): {organisation_id}; what it sent that a counterparty has not
    /// confirmed (no answer 02-06 or 15), oldest first.
    ListUnconfirmed(JsonIn),
    /// FindCertificates: {subject_key_identifier} or {issuer, serial}; the DER the registry
    /// holds (base64).
    FindCertificates(JsonIn),
    /// GrantRole (provincial-admin): {change, fingerprint, subject, role, agency_id,
    /// valid_from, valid_to}; roles: signer, verifier, reader, agency-admin (with agency_id),
    /// provincial-admin, auditor.
    GrantRole(JsonIn),
    /// RevokeRole (provincial-admin): {change, id}.
    RevokeRole(JsonIn),
    /// ListRoles (provincial-admin): {fingerprint}; empty: every grant.
    ListRoles(JsonIn),
    /// WhoAmI: the fingerprint, subject and roles of the client certificate given.
    WhoAmI(JsonIn),
    /// ListAuditAnchors: {log_id, after_sequence, limit}: the heads a signer's audit log
    /// was anchored at (signer or auditor role).
    ListAuditAnchors(JsonIn),
    /// GetLatestAuditAnchor: {log_id}: the last anchor of a signer's audit log.
    GetLatestAuditAnchor(JsonIn),
}

/// `kyso registry report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start of the report, inclusive (RFC 3339, e.g. 2026-01-01T00:00:00+07:00).
    #[arg(long)]
    pub from: String,
    /// End of the report, exclusive (RFC 3339).
    #[arg(long)]
    pub to: String,
    /// Periods: half-year, year or quarter (calendar periods in Vietnam's time).
    #[arg(long, value_parser = ["half-year", "year", "quarter"])]
    pub granularity: String,
    /// Output: json or csv.
    #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
    pub format: String,
}

/// `kyso registry import-certificates`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The folder of certificate files.
    pub dir: PathBuf,
    /// Known holders, JSON {"people": [{"id", "full_name", "organisation_id"}],
    /// "organisations": [{"id", "name"}]}; without it, holders are looked up in the
    /// registry by name (FindPeople, FindOrganisations).
    #[arg(long)]
    pub holders: Option<PathBuf>,
    /// Who makes the change (event log).
    #[arg(long, default_value = "kyso registry import-certificates")]
    pub actor: String,
    /// Why (event log).
    #[arg(long, default_value = "import of certificate files")]
    pub reason: String,
}

//! The service's edge: protobuf requests to the book's domain types (book/model.rs) and the
//! book's answers back to protobuf. What is about the wire is checked here, in the order
//! the fields are read: the change's actor and reason, required fields present, enum values
//! known, timestamps possible. Every error names the proto field. The rules about the data
//! (formats of mail addresses and hashes, the DOMAIN.md rules) are the book's.

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;
use prost_types::Timestamp;

use crate::book::model::{
    AppointmentEnd, AuditAnchor, Certificate, CertificateKind, CertificateLookup,
    CertificateStatus, Change, Classification, CustodianAssignment, DelegationMode,
    DelegationRevocation, Direction, DocumentStatus, Grants, Granularity, LogEntry, NewAppointment,
    NewAuditAnchor, NewCertificate, NewDelegation, NewDocumentStatus, NewDocumentType,
    NewOrganisation, NewPerson, NewRegisterEntry, NewRole, OrganisationMatch, OrganisationStatus,
    OrganisationStatusChange, OrganisationUpdate, PersonMatch, PersonUpdate, Profile, ProfileGrant,
    RegisterEntry, RegisterQuery, ReportQuery, ReportRow, RevocationReason, RoleRow,
    SignatureOutcome, StatusChange, StatusDirection, StatusEntry, TitleGrant, Unconfirmed,
    UnlockFiling, UnlockOutcome, UnlockRequest, UnlockResolution, UnlockStatus, UsageBatch,
    UsageEntry, UsageRecorded,
};
use crate::book::shared::need;
use crate::cert;
use crate::error::{Error, Result};

// ----- scalars ------------------------------------------------------------------------------------

/// A timestamp's unix seconds, if given; impossible ones are refused with the field named.
pub(crate) fn ts(field: &'static str, t: &Option<Timestamp>) -> Result<Option<i64>> {
    match t {
        None => Ok(None),
        Some(t) if t.nanos < 0 || t.nanos >= 1_000_000_000 => {
            Err(Error::field(field, "nanos out of range"))
        }
        // Years 1..9999, as RFC 3339 can write them.
        Some(t) if t.seconds < -62_135_596_800 || t.seconds > 253_402_300_799 => {
            Err(Error::field(field, "impossible date"))
        }
        Some(t) => Ok(Some(t.seconds)),
    }
}

/// A required timestamp's unix seconds.
pub(crate) fn ts_req(field: &'static str, t: &Option<Timestamp>) -> Result<i64> {
    ts(field, t)?.ok_or_else(|| Error::field(field, "required"))
}

/// Unix seconds as a timestamp.
fn stamp(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// An optional id: trimmed, blank is none.
fn optional(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Why, required on every change (the event log keeps it). Who is the caller's certificate,
/// stamped by the service; the request's `actor` is kept only as a note.
pub fn change(c: &Option<pb::Change>) -> Result<Change> {
    let c = c
        .as_ref()
        .ok_or_else(|| Error::field("change", "required: reason"))?;
    Ok(Change {
        by: None,
        reason: need("change.reason", &c.reason)?,
        note: c.actor.trim().to_owned(),
    })
}

// ----- enums --------------------------------------------------------------------------------------

fn organisation_status(v: i32) -> Option<OrganisationStatus> {
    use pb::OrganisationStatus as S;
    Some(match S::try_from(v).ok()? {
        S::Unspecified => return None,
        S::Active => OrganisationStatus::Active,
        S::PendingDissolution => OrganisationStatus::PendingDissolution,
        S::PendingMerger => OrganisationStatus::PendingMerger,
        S::PendingSplit => OrganisationStatus::PendingSplit,
        S::PendingRename => OrganisationStatus::PendingRename,
        S::Dissolved => OrganisationStatus::Dissolved,
    })
}

fn classification(v: i32) -> Option<Classification> {
    use spb::Classification as C;
    Some(match C::try_from(v).ok()? {
        C::Unspecified => return None,
        C::None => Classification::None,
        C::Secret => Classification::Secret,
        C::TopSecret => Classification::TopSecret,
        C::HighestSecret => Classification::HighestSecret,
    })
}

fn delegation_mode(v: i32) -> Option<DelegationMode> {
    use spb::SigningMode as M;
    match M::try_from(v).ok()? {
        M::Kt => Some(DelegationMode::Kt),
        M::Tl => Some(DelegationMode::Tl),
        M::Tuq => Some(DelegationMode::Tuq),
        M::Own | M::Unspecified => None,
    }
}

fn certificate_kind(v: i32) -> Option<CertificateKind> {
    match pb::CertificateKind::try_from(v).ok()? {
        pb::CertificateKind::Personal => Some(CertificateKind::Personal),
        pb::CertificateKind::Organisation => Some(CertificateKind::Organisation),
        pb::CertificateKind::Unspecified => None,
    }
}

fn certificate_kind_value(k: Option<CertificateKind>) -> pb::CertificateKind {
    match k {
        Some(CertificateKind::Personal) => pb::CertificateKind::Personal,
        Some(CertificateKind::Organisation) => pb::CertificateKind::Organisation,
        None => pb::CertificateKind::Unspecified,
    }
}

fn certificate_status(v: i32) -> Option<CertificateStatus> {
    match pb::CertificateStatus::try_from(v).ok()? {
        pb::CertificateStatus::Active => Some(CertificateStatus::Active),
        pb::CertificateStatus::Suspended => Some(CertificateStatus::Suspended),
        pb::CertificateStatus::Revoked => Some(CertificateStatus::Revoked),
        pb::CertificateStatus::Unspecified => None,
    }
}

fn certificate_status_value(s: Option<CertificateStatus>) -> pb::CertificateStatus {
    match s {
        Some(CertificateStatus::Active) => pb::CertificateStatus::Active,
        Some(CertificateStatus::Suspended) => pb::CertificateStatus::Suspended,
        Some(CertificateStatus::Revoked) => pb::CertificateStatus::Revoked,
        None => pb::CertificateStatus::Unspecified,
    }
}

/// The book stores revocation reasons and profiles by their protocol names, so these two
/// convert by name.
fn revocation_reason(v: i32) -> Option<RevocationReason> {
    RevocationReason::from_stored(pb::RevocationReason::try_from(v).ok()?.as_str_name())
}

fn revocation_reason_value(r: Option<RevocationReason>) -> pb::RevocationReason {
    r.and_then(|r| pb::RevocationReason::from_str_name(r.as_str()))
        .unwrap_or(pb::RevocationReason::Unspecified)
}

fn profile(v: i32) -> Option<Profile> {
    Profile::from_stored(spb::Profile::try_from(v).ok()?.as_str_name())
}

fn direction(v: i32) -> Option<Direction> {
    match pb::Direction::try_from(v).ok()? {
        pb::Direction::Outgoing => Some(Direction::Outgoing),
        pb::Direction::Incoming => Some(Direction::Incoming),
        pb::Direction::Unspecified => None,
    }
}

fn direction_value(d: Direction) -> pb::Direction {
    match d {
        Direction::Outgoing => pb::Direction::Outgoing,
        Direction::Incoming => pb::Direction::Incoming,
    }
}

fn unlock_status_value(s: Option<UnlockStatus>) -> pb::UnlockStatus {
    match s {
        Some(UnlockStatus::Pending) => pb::UnlockStatus::Pending,
        Some(UnlockStatus::Done) => pb::UnlockStatus::Done,
        Some(UnlockStatus::Refused) => pb::UnlockStatus::Refused,
        None => pb::UnlockStatus::Unspecified,
    }
}

// ----- requests -----------------------------------------------------------------------------------

/// `CreateOrganisation`.
pub fn new_organisation(r: &pb::CreateOrganisationRequest) -> Result<(Change, NewOrganisation)> {
    Ok((
        change(&r.change)?,
        NewOrganisation {
            name: need("name", &r.name)?,
            mail_domain: need("mail_domain", &r.mail_domain)?,
            parent_id: optional(&r.parent_id),
            managing_agency_id: optional(&r.managing_agency_id),
            code: optional(&r.code),
        },
    ))
}

/// `SetOrganisationStatus`.
pub fn organisation_status_change(
    r: &pb::SetOrganisationStatusRequest,
) -> Result<(Change, OrganisationStatusChange)> {
    Ok((
        change(&r.change)?,
        OrganisationStatusChange {
            organisation_id: need("organisation_id", &r.organisation_id)?,
            status: organisation_status(r.status).ok_or_else(|| {
                Error::field("status", "required: one of the organisation statuses")
            })?,
            decision_ref: need("decision_ref", &r.decision_ref)?,
        },
    ))
}

/// `UpdateOrganisation`: a blank managing agency or parent clears it.
pub fn organisation_update(
    r: &pb::UpdateOrganisationRequest,
) -> Result<(Change, OrganisationUpdate)> {
    let change = change(&r.change)?;
    let organisation_id = need("organisation_id", &r.organisation_id)?;
    let name = r.name.as_deref().map(|n| need("name", n)).transpose()?;
    let mail_domain = r
        .mail_domain
        .as_deref()
        .map(|d| need("mail_domain", d))
        .transpose()?;
    let managing_agency_id = r.managing_agency_id.as_deref().map(optional);
    let parent_id = r.parent_id.as_deref().map(optional);
    let code = r.code.as_deref().map(optional);
    if name.is_none()
        && mail_domain.is_none()
        && managing_agency_id.is_none()
        && parent_id.is_none()
        && code.is_none()
    {
        return Err(Error::field(
            "organisation_id",
            "nothing to change: give name, mail_domain, managing_agency_id, parent_id or code",
        ));
    }
    Ok((
        change,
        OrganisationUpdate {
            organisation_id,
            name,
            mail_domain,
            managing_agency_id,
            parent_id,
            code,
        },
    ))
}

/// `CreatePerson`.
pub fn new_person(r: &pb::CreatePersonRequest) -> Result<(Change, NewPerson)> {
    Ok((
        change(&r.change)?,
        NewPerson {
            full_name: need("full_name", &r.full_name)?,
            email: need("email", &r.email)?,
            organisation_id: need("organisation_id", &r.organisation_id)?,
            service_end: ts("service_end", &r.service_end)?,
        },
    ))
}

/// `UpdatePerson`.
pub fn person_update(r: &pb::UpdatePersonRequest) -> Result<(Change, PersonUpdate)> {
    let change = change(&r.change)?;
    let person_id = need("person_id", &r.person_id)?;
    let full_name = r
        .full_name
        .as_deref()
        .map(|n| need("full_name", n))
        .transpose()?;
    let email = r.email.as_deref().map(|e| need("email", e)).transpose()?;
    let service_end = ts("service_end", &r.service_end)?;
    if service_end.is_some() && r.clear_service_end {
        return Err(Error::field(
            "clear_service_end",
            "give service_end or clear_service_end, not both",
        ));
    }
    let service_end = match (service_end, r.clear_service_end) {
        (Some(t), _) => Some(Some(t)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if full_name.is_none() && email.is_none() && service_end.is_none() {
        return Err(Error::field(
            "person_id",
            "nothing to change: give full_name, email, service_end or clear_service_end",
        ));
    }
    Ok((
        change,
        PersonUpdate {
            person_id,
            full_name,
            email,
            service_end,
        },
    ))
}

/// `CreateTitle`: the title's name.
pub fn new_title(r: &pb::CreateTitleRequest) -> Result<(Change, String)> {
    Ok((change(&r.change)?, need("name", &r.name)?))
}

/// `CreateAppointment`.
pub fn new_appointment(r: &pb::CreateAppointmentRequest) -> Result<(Change, NewAppointment)> {
    Ok((
        change(&r.change)?,
        NewAppointment {
            person_id: need("person_id", &r.person_id)?,
            title_id: need("title_id", &r.title_id)?,
            organisation_id: need("organisation_id", &r.organisation_id)?,
            decision_ref: need("decision_ref", &r.decision_ref)?,
            valid_from: ts_req("valid_from", &r.valid_from)?,
            valid_to: ts("valid_to", &r.valid_to)?,
        },
    ))
}

/// `EndAppointment`.
pub fn appointment_end(r: &pb::EndAppointmentRequest) -> Result<(Change, AppointmentEnd)> {
    let change = change(&r.change)?;
    let appointment_id = need("appointment_id", &r.appointment_id)?;
    let valid_to = ts_req("valid_to", &r.valid_to)?;
    let decision_ref = r.decision_ref.trim().to_owned();
    if decision_ref.is_empty() {
        return Err(Error::field(
            "decision_ref",
            "required: the decision ending the appointment",
        ));
    }
    Ok((
        change,
        AppointmentEnd {
            appointment_id,
            valid_to,
            decision_ref,
        },
    ))
}

/// `CreateDocumentType`.
pub fn new_document_type(r: &pb::CreateDocumentTypeRequest) -> Result<(Change, NewDocumentType)> {
    Ok((
        change(&r.change)?,
        NewDocumentType {
            code: need("code", &r.code)?,
            name: need("name", &r.name)?,
            classification: classification(r.classification).ok_or_else(|| {
                Error::field("classification", "required: NONE or a secrecy level (A7)")
            })?,
            scanned_issue_allowed: r.scanned_issue_allowed,
        },
    ))
}

/// `GrantAuthority`: the grants as given; the book checks each as it writes it.
pub fn grants(r: &pb::GrantAuthorityRequest) -> Result<(Change, Grants)> {
    let change = change(&r.change)?;
    if r.title_authorities.is_empty() && r.organisation_profiles.is_empty() {
        return Err(Error::field("title_authorities", "nothing to grant"));
    }
    Ok((
        change,
        Grants {
            title_authorities: r
                .title_authorities
                .iter()
                .map(|g| TitleGrant {
                    organisation_id: g.organisation_id.clone(),
                    title_id: g.title_id.clone(),
                    document_type: g.document_type.clone(),
                })
                .collect(),
            organisation_profiles: r
                .organisation_profiles
                .iter()
                .map(|g| ProfileGrant {
                    organisation_id: g.organisation_id.clone(),
                    document_type: g.document_type.clone(),
                    profile: profile(g.profile),
                })
                .collect(),
        },
    ))
}

/// `RegisterCertificate`.
pub fn new_certificate(r: &pb::RegisterCertificateRequest) -> Result<(Change, NewCertificate)> {
    let change = change(&r.change)?;
    let kind = certificate_kind(r.kind)
        .ok_or_else(|| Error::field("kind", "required: PERSONAL or ORGANISATION"))?;
    let renewal_of = match r.renewal_of.trim() {
        "" => None,
        s => Some(cert::normalise_fingerprint(s, "renewal_of")?),
    };
    Ok((
        change,
        NewCertificate {
            der: r.der.clone(),
            kind,
            person_id: r.person_id.clone(),
            organisation_id: r.organisation_id.clone(),
            renewal_of,
        },
    ))
}

/// `ChangeCertificateStatus`.
pub fn status_change(r: &pb::ChangeCertificateStatusRequest) -> Result<(Change, StatusChange)> {
    Ok((
        change(&r.change)?,
        StatusChange {
            fingerprint: cert::normalise_fingerprint(&r.fingerprint, "fingerprint")?,
            status: certificate_status(r.status)
                .ok_or_else(|| Error::field("status", "required: ACTIVE, SUSPENDED or REVOKED"))?,
            reason: revocation_reason(r.reason),
            effective_at: ts("effective_at", &r.effective_at)?,
        },
    ))
}

/// `AssignCustodian`.
pub fn custodian_assignment(
    r: &pb::AssignCustodianRequest,
) -> Result<(Change, CustodianAssignment)> {
    Ok((
        change(&r.change)?,
        CustodianAssignment {
            fingerprint: cert::normalise_fingerprint(&r.fingerprint, "fingerprint")?,
            person_id: need("person_id", &r.person_id)?,
            decision_ref: r.decision_ref.clone(),
            decision_date: ts_req("decision_date", &r.decision_date)?,
            effective_at: ts("effective_at", &r.effective_at)?,
            handover_record: r.handover_record.clone(),
        },
    ))
}

/// `CreateDelegation`.
pub fn new_delegation(r: &pb::CreateDelegationRequest) -> Result<(Change, NewDelegation)> {
    let change = change(&r.change)?;
    let organisation_id = need("organisation_id", &r.organisation_id)?;
    let from_person_id = need("from_person_id", &r.from_person_id)?;
    let to_person_id = need("to_person_id", &r.to_person_id)?;
    let mode = delegation_mode(r.mode)
        .ok_or_else(|| Error::field("mode", "required: KT, TL or TUQ (A2)"))?;
    if r.document_types.is_empty() {
        return Err(Error::field("document_types", "at least one document type"));
    }
    Ok((
        change,
        NewDelegation {
            organisation_id,
            from_person_id,
            to_person_id,
            mode,
            document_types: r.document_types.clone(),
            decision_ref: r.decision_ref.clone(),
            valid_from: ts_req("valid_from", &r.valid_from)?,
            valid_to: ts_req("valid_to", &r.valid_to)?,
        },
    ))
}

/// `RevokeDelegation`.
pub fn delegation_revocation(
    r: &pb::RevokeDelegationRequest,
) -> Result<(Change, DelegationRevocation)> {
    Ok((
        change(&r.change)?,
        DelegationRevocation {
            delegation_id: need("delegation_id", &r.delegation_id)?,
            decision_ref: r.decision_ref.clone(),
            effective_at: ts("effective_at", &r.effective_at)?,
        },
    ))
}

/// `ReportRequest`.
pub fn report_query(r: &pb::ReportRequest) -> Result<ReportQuery> {
    let from = ts_req("from", &r.from)?;
    let to = ts_req("to", &r.to)?;
    if to <= from {
        return Err(Error::field("to", "must be after from"));
    }
    let granularity = match pb::Granularity::try_from(r.granularity) {
        Ok(pb::Granularity::Quarter) => Granularity::Quarter,
        Ok(pb::Granularity::HalfYear) => Granularity::HalfYear,
        Ok(pb::Granularity::Year) => Granularity::Year,
        _ => {
            return Err(Error::field(
                "granularity",
                "required: HALF_YEAR, YEAR or QUARTER",
            ));
        }
    };
    Ok(ReportQuery {
        from,
        to,
        granularity,
    })
}

/// `RecordUsage`: the entries as given; the book checks each before writing any.
pub fn usage_batch(r: &pb::RecordUsageRequest) -> Result<(Change, UsageBatch)> {
    Ok((
        change(&r.change)?,
        UsageBatch {
            batch_id: need("batch_id", &r.batch_id)?,
            entries: r
                .entries
                .iter()
                .map(|e| UsageEntry {
                    certificate_fingerprint: e.certificate_fingerprint.clone(),
                    organisation_id: e.organisation_id.clone(),
                    profile: e.profile.clone(),
                    day: e.day.clone(),
                    count: e.count,
                })
                .collect(),
        },
    ))
}

/// `RegisterDocument`.
pub fn new_register_entry(r: &pb::RegisterDocumentRequest) -> Result<(Change, NewRegisterEntry)> {
    Ok((
        change(&r.change)?,
        NewRegisterEntry {
            organisation_id: need("organisation_id", &r.organisation_id)?,
            direction: direction(r.direction)
                .ok_or_else(|| Error::field("direction", "required: OUTGOING or INCOMING"))?,
            document_type: need("document_type", &r.document_type)?,
            at: ts("at", &r.at)?,
            sha256: r.sha256.clone(),
            number_and_symbol: r.number_and_symbol.clone(),
            counterparty: r.counterparty.clone(),
            refused: r.refused,
            reason: r.reason.clone(),
            signatures: signature_outcomes(&r.signatures)?,
        },
    ))
}

/// At most this many signatures' outcomes on one register entry, each text at most
/// `MAX_OUTCOME_TEXT` bytes: bad input is bounded.
const MAX_OUTCOMES: usize = 64;
const MAX_OUTCOME_TEXT: usize = 4096;

/// The authority outcomes of an incoming document's signatures (A3, A4), checked.
fn signature_outcomes(v: &[pb::SignatureAuthority]) -> Result<Vec<SignatureOutcome>> {
    if v.len() > MAX_OUTCOMES {
        return Err(Error::field(
            "signatures",
            format!("at most {MAX_OUTCOMES} signatures"),
        ));
    }
    v.iter()
        .map(|a| {
            let outcome = match pb::AuthorityOutcome::try_from(a.outcome) {
                Ok(pb::AuthorityOutcome::Allowed) => "allowed",
                Ok(pb::AuthorityOutcome::Outside) => "outside",
                Ok(pb::AuthorityOutcome::Refused) => "refused",
                _ => {
                    return Err(Error::field(
                        "signatures.outcome",
                        "required: ALLOWED, OUTSIDE or REFUSED",
                    ));
                }
            };
            let texts = [
                &a.field_name,
                &a.rule,
                &a.message,
                &a.subject,
                &a.fingerprint,
                &a.organisation_id,
                &a.organisation_name,
                &a.sender_code,
            ];
            if texts.iter().any(|t| t.len() > MAX_OUTCOME_TEXT) {
                return Err(Error::field(
                    "signatures",
                    format!("a text longer than {MAX_OUTCOME_TEXT} bytes"),
                ));
            }
            if outcome == "refused" && a.rule.trim().is_empty() {
                return Err(Error::field(
                    "signatures.rule",
                    "required for a refused signature",
                ));
            }
            Ok(SignatureOutcome {
                field_name: a.field_name.clone(),
                outcome: outcome.into(),
                rule: a.rule.clone(),
                message: a.message.clone(),
                subject: a.subject.clone(),
                fingerprint: a.fingerprint.clone(),
                organisation_id: a.organisation_id.clone(),
                organisation_name: a.organisation_name.clone(),
                sender_code: a.sender_code.clone(),
            })
        })
        .collect()
}

/// A stored outcome on the wire.
fn signature_authority(o: SignatureOutcome) -> pb::SignatureAuthority {
    pb::SignatureAuthority {
        field_name: o.field_name,
        outcome: match o.outcome.as_str() {
            "allowed" => pb::AuthorityOutcome::Allowed,
            "outside" => pb::AuthorityOutcome::Outside,
            "refused" => pb::AuthorityOutcome::Refused,
            _ => pb::AuthorityOutcome::Unspecified,
        } as i32,
        rule: o.rule,
        message: o.message,
        subject: o.subject,
        fingerprint: o.fingerprint,
        organisation_id: o.organisation_id,
        organisation_name: o.organisation_name,
        sender_code: o.sender_code,
    }
}

/// `ListRegister`: without a direction, both.
pub fn register_query(r: &pb::ListRegisterRequest) -> Result<RegisterQuery> {
    Ok(RegisterQuery {
        organisation_id: need("organisation_id", &r.organisation_id)?,
        direction: direction(r.direction),
        year: r.year,
        sha256: r.sha256.clone(),
        number_and_symbol: r.number_and_symbol.clone(),
    })
}

/// `RecordDocumentStatus` (W4, N6).
pub fn new_document_status(
    r: &pb::RecordDocumentStatusRequest,
) -> Result<(Change, NewDocumentStatus)> {
    let direction = match pb::StatusDirection::try_from(r.direction) {
        Ok(pb::StatusDirection::Sent) => StatusDirection::Sent,
        Ok(pb::StatusDirection::Received) => StatusDirection::Received,
        _ => return Err(Error::field("direction", "required: SENT or RECEIVED")),
    };
    Ok((
        change(&r.change)?,
        NewDocumentStatus {
            organisation_id: need("organisation_id", &r.organisation_id)?,
            register_entry_id: need("register_entry_id", &r.register_entry_id)?,
            counterparty_code: need("counterparty_code", &r.counterparty_code)?,
            direction,
            code: r.code.clone(),
            description: r.description.clone(),
            envelope_sha256: r.envelope_sha256.clone(),
            document_sha256: r.document_sha256.clone(),
            at: ts("at", &r.at)?,
        },
    ))
}

/// `FindCertificates`: by subject key identifier, or by issuer and serial; not both.
pub fn certificate_lookup(r: &pb::FindCertificatesRequest) -> Result<CertificateLookup> {
    let by_name = !r.issuer.trim().is_empty() || !r.serial.trim().is_empty();
    if !r.subject_key_identifier.trim().is_empty() {
        if by_name {
            return Err(Error::field(
                "subject_key_identifier",
                "either subject_key_identifier or issuer and serial, not both",
            ));
        }
        return Ok(CertificateLookup::SubjectKeyIdentifier(
            cert::normalise_ski(&r.subject_key_identifier, "subject_key_identifier")?,
        ));
    }
    Ok(CertificateLookup::IssuerSerial {
        issuer: need("issuer", &r.issuer)?,
        serial: cert::normalise_serial(&r.serial, "serial")?,
    })
}

/// A recorded message about a document.
pub fn document_status(d: DocumentStatus) -> pb::DocumentStatus {
    pb::DocumentStatus {
        id: d.id,
        organisation_id: d.organisation_id,
        register_entry_id: d.register_entry_id,
        counterparty_code: d.counterparty_code,
        direction: match d.direction {
            Some(StatusDirection::Sent) => pb::StatusDirection::Sent,
            Some(StatusDirection::Received) => pb::StatusDirection::Received,
            None => pb::StatusDirection::Unspecified,
        } as i32,
        code: d.code,
        description: d.description,
        envelope_sha256: d.envelope_sha256,
        document_sha256: d.document_sha256,
        at: stamp(d.at),
        actor: d.actor,
    }
}

/// An outgoing document not yet confirmed (W4).
pub fn unconfirmed(u: Unconfirmed) -> pb::Unconfirmed {
    pb::Unconfirmed {
        entry: Some(register_entry(u.entry)),
        counterparty_code: u.counterparty_code,
        last_code: u.last_code,
        sent_at: stamp(u.sent_at),
        last_at: stamp(u.last_at),
    }
}

/// `RequestUnlock`.
pub fn unlock_filing(r: &pb::RequestUnlockRequest) -> Result<(Change, UnlockFiling)> {
    Ok((
        change(&r.change)?,
        UnlockFiling {
            fingerprint: cert::normalise_fingerprint(&r.fingerprint, "fingerprint")?,
            requested_by: need("requested_by", &r.requested_by)?,
            reason: need("reason", &r.reason)?,
        },
    ))
}

/// `ResolveUnlock`.
pub fn unlock_resolution(r: &pb::ResolveUnlockRequest) -> Result<(Change, UnlockResolution)> {
    let change = change(&r.change)?;
    let id = need("id", &r.id)?;
    let outcome = match pb::UnlockStatus::try_from(r.outcome) {
        Ok(pb::UnlockStatus::Done) => UnlockOutcome::Done,
        Ok(pb::UnlockStatus::Refused) => UnlockOutcome::Refused,
        _ => return Err(Error::field("outcome", "required: DONE or REFUSED")),
    };
    Ok((
        change,
        UnlockResolution {
            id,
            outcome,
            reason: r.reason.clone(),
        },
    ))
}

// ----- answers ------------------------------------------------------------------------------------

/// A certificate with its status and history.
pub fn certificate(c: Certificate) -> pb::Certificate {
    pb::Certificate {
        id: c.id,
        fingerprint: c.fingerprint,
        serial: c.serial,
        issuer: c.issuer,
        subject: c.subject,
        kind: certificate_kind_value(c.kind) as i32,
        person_id: c.person_id.unwrap_or_default(),
        organisation_id: c.organisation_id,
        not_before: stamp(c.not_before),
        not_after: stamp(c.not_after),
        status: certificate_status_value(c.status) as i32,
        history: c.history.into_iter().map(status_entry).collect(),
        renewal_count: c.renewal_count,
        renewal_of: c.renewal_of.unwrap_or_default(),
        der: c.der,
    }
}

fn status_entry(e: StatusEntry) -> pb::StatusChange {
    pb::StatusChange {
        status: certificate_status_value(e.status) as i32,
        reason: revocation_reason_value(e.reason) as i32,
        effective_at: stamp(e.effective_at),
    }
}

/// An unlock request.
pub fn unlock_request(u: UnlockRequest) -> pb::UnlockRequest {
    pb::UnlockRequest {
        id: u.id,
        fingerprint: u.fingerprint,
        requested_by: u.requested_by,
        reason: u.reason,
        requested_at: stamp(u.requested_at),
        due_at: stamp(u.due_at),
        status: unlock_status_value(u.status) as i32,
        resolution_reason: u.resolution_reason.unwrap_or_default(),
        resolved_at: u.resolved_at.and_then(stamp),
    }
}

/// A register entry.
pub fn register_entry(e: RegisterEntry) -> pb::RegisterEntry {
    pb::RegisterEntry {
        id: e.id,
        organisation_id: e.organisation_id,
        direction: direction_value(e.direction) as i32,
        year: e.year,
        number: e.number,
        document_type: e.document_type,
        number_and_symbol: e.number_and_symbol,
        sha256: e.sha256,
        counterparty: e.counterparty,
        refused: e.refused,
        reason: e.reason,
        at: stamp(e.at),
        signatures: e.signatures.into_iter().map(signature_authority).collect(),
    }
}

/// A row of a report.
pub fn report_row(r: ReportRow) -> pb::ReportRow {
    pb::ReportRow {
        period: r.period,
        period_start: stamp(r.period_start),
        period_end: stamp(r.period_end),
        managing_agency_id: r.managing_agency_id,
        managing_agency_name: r.managing_agency_name,
        issued: r.issued,
        renewed: r.renewed,
        revoked: r.revoked,
        suspended: r.suspended,
        signatures: r.signatures,
        sent: r.sent,
        received: r.received,
        refused: r.refused,
    }
}

/// What a usage batch added.
pub fn usage_recorded(u: UsageRecorded) -> pb::RecordUsageResponse {
    pb::RecordUsageResponse {
        duplicate: u.duplicate,
        signatures: u.signatures,
    }
}

/// An entry of the event log.
pub fn event(e: LogEntry) -> pb::Event {
    pb::Event {
        seq: e.seq,
        at: stamp(e.at),
        actor: e.actor,
        reason: e.reason,
        kind: e.kind,
        entity_id: e.entity_id,
        change_json: e.change_json,
        actor_fingerprint: e.actor_fingerprint,
        actor_role: e.actor_role,
        note: e.note,
    }
}

/// A person found by name.
pub fn person_match(m: PersonMatch) -> pb::PersonMatch {
    pb::PersonMatch {
        id: m.id,
        full_name: m.full_name,
        email: m.email,
        organisation_id: m.organisation_id,
        exact: m.exact,
    }
}

/// An organisation found by name.
pub fn organisation_match(m: OrganisationMatch) -> pb::OrganisationMatch {
    pb::OrganisationMatch {
        id: m.id,
        name: m.name,
        managing_agency_id: m.managing_agency_id.unwrap_or_default(),
        exact: m.exact,
        code: m.code.unwrap_or_default(),
    }
}

/// A role to grant (access/): the fingerprint normalised, the role known, the dates possible.
pub fn new_role(r: &pb::GrantRoleRequest) -> Result<(Change, NewRole)> {
    let change = change(&r.change)?;
    let fingerprint = cert::normalise_fingerprint(&r.fingerprint, "fingerprint")?;
    let role = crate::access::Role::parse(r.role.trim()).ok_or_else(|| {
        Error::field(
            "role",
            "one of signer, verifier, reader, agency-admin, provincial-admin, auditor",
        )
    })?;
    Ok((
        change,
        NewRole {
            fingerprint,
            subject: r.subject.trim().to_owned(),
            role,
            agency_id: optional(&r.agency_id),
            valid_from: ts("valid_from", &r.valid_from)?,
            valid_to: ts("valid_to", &r.valid_to)?,
        },
    ))
}

/// A stored grant.
pub fn role_grant(r: RoleRow) -> pb::RoleGrant {
    pb::RoleGrant {
        id: r.id,
        fingerprint: r.fingerprint,
        subject: r.subject,
        role: r.role,
        agency_id: r.agency_id.unwrap_or_default(),
        valid_from: stamp(r.valid_from),
        valid_to: r.valid_to.and_then(stamp),
        revoked_at: r.revoked_at.and_then(stamp),
    }
}

// ----- audit anchors ------------------------------------------------------------------------------

/// `RecordAuditAnchor`: the anchor as given; who writes it is the caller (stamped by the
/// service), never the request's `writer_*`, which are ignored.
pub fn new_audit_anchor(r: &pb::RecordAuditAnchorRequest) -> Result<(Change, NewAuditAnchor)> {
    let change = change(&r.change)?;
    let a = r
        .anchor
        .as_ref()
        .ok_or_else(|| Error::field("anchor", "required"))?;
    let sequence =
        i64::try_from(a.sequence).map_err(|_| Error::field("anchor.sequence", "too large"))?;
    Ok((
        change,
        NewAuditAnchor {
            log_id: crate::book::log_id("anchor.log_id", &a.log_id)?,
            sequence,
            head_hash: a.head_hash.trim().to_owned(),
            seal_algorithm: a.seal_algorithm.trim().to_owned(),
            seal_key_sha256: a.seal_key_sha256.trim().to_owned(),
            seal_signature: a.seal_signature.clone(),
            sealed_at: ts_req("anchor.sealed_at", &a.sealed_at)?,
        },
    ))
}

/// An anchor as recorded.
pub fn audit_anchor(a: AuditAnchor) -> pb::AuditAnchor {
    pb::AuditAnchor {
        log_id: a.log_id,
        sequence: u64::try_from(a.sequence).unwrap_or_default(),
        head_hash: a.head_hash,
        seal_algorithm: a.seal_algorithm,
        seal_key_sha256: a.seal_key_sha256,
        // Written by the book as hex; a row that is not (edited by hand) shows empty.
        seal_signature: hex::decode(&a.seal_signature).unwrap_or_default(),
        sealed_at: stamp(a.sealed_at),
        recorded_at: stamp(a.recorded_at),
        writer_fingerprint: a.writer_fingerprint,
        writer_subject: a.writer_subject,
    }
}

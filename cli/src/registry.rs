//! `kyso registry`: every management and lookup call of `kyso.registry.v1`,
//! JSON in (proto field names, snake_case) and JSON out, plus an import of a
//! folder of certificate files.
//!
//! Exit codes: 0 on success, 1 when the registry refuses (PermissionDenied,
//! FailedPrecondition, or an `authorize`/`check-authority` answer that is not
//! allowed), 2 for invalid input or any other error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1 as spb;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::client::ServerArgs;
use crate::json::{Obj, ts_out};
use crate::{CliError, read_file};

/// `kyso registry …`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    call: Call,
}

/// Where the request JSON comes from.
#[derive(Debug, Clone, Args)]
pub struct JsonIn {
    /// The request as JSON (proto field names); `-` reads stdin.
    #[arg(long, default_value = "-")]
    json: PathBuf,
}

/// One registry call.
#[derive(Debug, Subcommand)]
enum Call {
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
    /// CreateDocumentType: {change, code, name, classification}.
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
    /// ListRegister: {organisation_id, direction, year, sha256}.
    ListRegister(JsonIn),
}

/// `kyso registry report`.
#[derive(Debug, Args)]
struct ReportArgs {
    /// Start of the report, inclusive (RFC 3339, e.g. 2026-01-01T00:00:00+07:00).
    #[arg(long)]
    from: String,
    /// End of the report, exclusive (RFC 3339).
    #[arg(long)]
    to: String,
    /// Periods: half-year, year or quarter (calendar periods in Vietnam's time).
    #[arg(long, value_parser = ["half-year", "year", "quarter"])]
    granularity: String,
    /// Output: json or csv.
    #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
    format: String,
}

/// `kyso registry import-certificates`.
#[derive(Debug, Args)]
struct ImportArgs {
    /// The folder of certificate files.
    dir: PathBuf,
    /// Known holders, JSON {"people": [{"id", "full_name", "organisation_id"}],
    /// "organisations": [{"id", "name"}]}; without it, holders are looked up in the
    /// registry by name (FindPeople, FindOrganisations).
    #[arg(long)]
    holders: Option<PathBuf>,
    /// Who makes the change (event log).
    #[arg(long, default_value = "kyso registry import-certificates")]
    actor: String,
    /// Why (event log).
    #[arg(long, default_value = "import of certificate files")]
    reason: String,
}

macro_rules! en {
    ($o:expr, $key:literal, $ty:ty, $prefix:literal) => {
        $o.enumeration(
            $key,
            $prefix,
            |s| <$ty>::from_str_name(s).map(|e| e as i32),
            |n| <$ty>::try_from(n).is_ok(),
        )
    };
}

macro_rules! name {
    ($ty:ty, $v:expr) => {{
        let v: i32 = $v;
        match <$ty>::try_from(v) {
            Ok(e) => Value::String(e.as_str_name().to_owned()),
            Err(_) => Value::from(v),
        }
    }};
}

/// Runs one registry call.
pub async fn run(args: RegistryArgs) -> Result<ExitCode, CliError> {
    let url = args
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server is required".into()))?;
    // Input is checked before the server is contacted.
    let prepared = prepare(&args.call)?;
    let channel = args.server.connect(&url).await?;
    let mut c = RegistryClient::new(channel);
    let outcome = match prepared {
        Prepared::Import(a) => return import(&mut c, a).await,
        Prepared::Report(r, a) => {
            return match c.report(r).await {
                Ok(r) => {
                    print_report(&r.into_inner(), &a.format);
                    Ok(ExitCode::SUCCESS)
                }
                Err(s) => Ok(report_status(&s)),
            };
        }
        Prepared::Request(r) => call(&mut c, r).await,
    };
    match outcome {
        Ok((out, ok)) => {
            print_json(&out);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(status) => Ok(report_status(&status)),
    }
}

/// Prints a report (R2) as JSON or CSV (RFC 4180, header first).
fn print_report(r: &pb::ReportResponse, format: &str) {
    use std::io::Write;
    if format == "json" {
        let rows: Vec<Value> = r
            .rows
            .iter()
            .map(|x| {
                json!({
                    "period": x.period,
                    "period_start": ts_out(&x.period_start),
                    "period_end": ts_out(&x.period_end),
                    "managing_agency_id": x.managing_agency_id,
                    "managing_agency_name": x.managing_agency_name,
                    "issued": x.issued,
                    "renewed": x.renewed,
                    "revoked": x.revoked,
                    "suspended": x.suspended,
                    "signatures": x.signatures,
                    "sent": x.sent,
                    "received": x.received,
                    "refused": x.refused,
                })
            })
            .collect();
        print_json(&json!({"rows": rows, "signatures_counted": r.signatures_counted}));
        return;
    }
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from(
        "period,period_start,period_end,managing_agency_id,managing_agency_name,\
         issued,renewed,revoked,suspended,signatures,sent,received,refused\r\n",
    );
    for x in &r.rows {
        let t =
            |v: &Option<prost_types::Timestamp>| ts_out(v).as_str().unwrap_or_default().to_owned();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            field(&x.period),
            t(&x.period_start),
            t(&x.period_end),
            field(&x.managing_agency_id),
            field(&x.managing_agency_name),
            x.issued,
            x.renewed,
            x.revoked,
            x.suspended,
            x.signatures,
            x.sent,
            x.received,
            x.refused
        ));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// Prints JSON on stdout; a closed pipe (`| head`) is not an error.
fn print_json(v: &Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints a gRPC error (code, message, rule IDs, field violations) and picks the exit code.
pub fn report_status(s: &tonic::Status) -> ExitCode {
    let rules: Vec<Value> = s
        .get_details_precondition_failure()
        .map(|p| {
            p.violations
                .iter()
                .map(|v| json!({"rule": v.r#type, "field": v.subject, "reason": v.description}))
                .collect()
        })
        .unwrap_or_default();
    let fields: Vec<Value> = s
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect()
        })
        .unwrap_or_default();
    let resource = s.get_details_resource_info().map(
        |r| json!({"type": r.resource_type, "name": r.resource_name, "description": r.description}),
    );
    let out = json!({"error": {
        "code": format!("{:?}", s.code()),
        "message": s.message(),
        "rules": rules,
        "field_violations": fields,
        "resource": resource,
    }});
    eprintln!("kyso: registry: {:?}: {}", s.code(), s.message());
    for r in &rules {
        eprintln!(
            "  rule {}: {} ({})",
            r["rule"].as_str().unwrap_or(""),
            r["reason"].as_str().unwrap_or(""),
            r["field"].as_str().unwrap_or("")
        );
    }
    for f in &fields {
        eprintln!(
            "  field {}: {}",
            f["field"].as_str().unwrap_or(""),
            f["description"].as_str().unwrap_or("")
        );
    }
    print_json(&out);
    match s.code() {
        Code::PermissionDenied | Code::FailedPrecondition => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

fn read_json(input: &JsonIn) -> Result<Obj, CliError> {
    Obj::root(read_value(input)?)
}

/// A boolean field taken out of the request before it is read as an [`Obj`]; absent or
/// null is false.
fn take_bool(v: &mut Value, key: &str) -> Result<bool, CliError> {
    match v.as_object_mut().and_then(|m| m.remove(key)) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(CliError::Usage(format!(
            "field {key}: must be true or false"
        ))),
    }
}

/// The request as an object, and the names of the fields it sets (not null): proto3
/// `optional` fields are left unchanged when absent.
fn with_present(v: Value) -> Result<(Obj, Vec<String>), CliError> {
    let present = v
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    Ok((Obj::root(v)?, present))
}

/// An optional string field: None when absent or null.
fn opt_str(o: &mut Obj, present: &[String], key: &str) -> Result<Option<String>, CliError> {
    let v = o.str(key)?;
    Ok(present.iter().any(|k| k == key).then_some(v))
}

/// A signed 32-bit number (a year).
fn i32_field(o: &mut Obj, key: &str) -> Result<i32, CliError> {
    let v = o.i64(key)?;
    i32::try_from(v).map_err(|_| CliError::Usage(format!("field {key}: must be a 32-bit integer")))
}

fn read_value(input: &JsonIn) -> Result<Value, CliError> {
    let text = if input.json.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| CliError::File {
                path: "stdin".into(),
                source,
            })?;
        s
    } else {
        String::from_utf8(read_file(&input.json)?)
            .map_err(|_| CliError::Usage(format!("{}: not UTF-8 JSON", input.json.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the request is not JSON: {e}")))
}

fn change(o: &mut Obj) -> Result<Option<pb::Change>, CliError> {
    match o.obj("change")? {
        None => Ok(None),
        Some(mut c) => {
            let ch = pb::Change {
                actor: c.str("actor")?,
                reason: c.str("reason")?,
            };
            c.finish()?;
            Ok(Some(ch))
        }
    }
}

/// Reads a certificate file, PEM or DER, as DER.
pub fn cert_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(trimmed).map_err(|e| format!("bad PEM: {e}"))?;
        if label != "CERTIFICATE" && label != "X509 CERTIFICATE" {
            return Err(format!("PEM label {label:?} is not a certificate"));
        }
        Ok(der)
    } else {
        Ok(bytes.to_vec())
    }
}

#[derive(Debug)]
enum Request {
    CreateOrganisation(pb::CreateOrganisationRequest),
    SetOrganisationStatus(pb::SetOrganisationStatusRequest),
    CreatePerson(pb::CreatePersonRequest),
    CreateTitle(pb::CreateTitleRequest),
    CreateAppointment(pb::CreateAppointmentRequest),
    CreateDocumentType(pb::CreateDocumentTypeRequest),
    GrantAuthority(pb::GrantAuthorityRequest),
    RegisterCertificate(pb::RegisterCertificateRequest),
    ChangeCertificateStatus(pb::ChangeCertificateStatusRequest),
    AssignCustodian(pb::AssignCustodianRequest),
    CreateDelegation(pb::CreateDelegationRequest),
    EndAppointment(pb::EndAppointmentRequest),
    RevokeDelegation(pb::RevokeDelegationRequest),
    UpdateOrganisation(pb::UpdateOrganisationRequest),
    UpdatePerson(pb::UpdatePersonRequest),
    SetHolidays(pb::SetHolidaysRequest),
    ListHolidays(pb::ListHolidaysRequest),
    RecordUsage(pb::RecordUsageRequest),
    RegisterDocument(pb::RegisterDocumentRequest),
    ListRegister(pb::ListRegisterRequest),
    Authorize(pb::AuthorizeRequest),
    CheckAuthority(pb::CheckAuthorityRequest),
    GetCertificate(pb::GetCertificateRequest),
    ListExpiring(pb::ListExpiringCertificatesRequest),
    ListEvents(pb::ListEventsRequest),
    FileUnlock(pb::RequestUnlockRequest),
    ResolveUnlock(pb::ResolveUnlockRequest),
    ListOverdueUnlocks(pb::ListOverdueUnlocksRequest),
    FindPeople(pb::FindPeopleRequest),
    FindOrganisations(pb::FindOrganisationsRequest),
}

enum Prepared<'a> {
    Request(Box<Request>),
    Import(&'a ImportArgs),
    Report(pb::ReportRequest, &'a ReportArgs),
}

fn prepare(call: &Call) -> Result<Prepared<'_>, CliError> {
    let r = match call {
        Call::ImportCertificates(a) => return Ok(Prepared::Import(a)),
        Call::Report(a) => {
            let t = |flag: &str, v: &str| {
                time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                    .map(|t| prost_types::Timestamp {
                        seconds: t.unix_timestamp(),
                        nanos: 0,
                    })
                    .map_err(|e| {
                        CliError::Usage(format!("--{flag} {v}: not an RFC 3339 time: {e}"))
                    })
            };
            let granularity = match a.granularity.as_str() {
                "half-year" => pb::Granularity::HalfYear,
                "year" => pb::Granularity::Year,
                _ => pb::Granularity::Quarter,
            };
            let r = pb::ReportRequest {
                from: Some(t("from", &a.from)?),
                to: Some(t("to", &a.to)?),
                granularity: granularity as i32,
            };
            return Ok(Prepared::Report(r, a));
        }
        Call::CreateOrganisation(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreateOrganisationRequest {
                change: change(&mut o)?,
                name: o.str("name")?,
                parent_id: o.str("parent_id")?,
                managing_agency_id: o.str("managing_agency_id")?,
                mail_domain: o.str("mail_domain")?,
            };
            o.finish()?;
            Request::CreateOrganisation(r)
        }
        Call::SetOrganisationStatus(i) => {
            let mut o = read_json(i)?;
            let r = pb::SetOrganisationStatusRequest {
                change: change(&mut o)?,
                organisation_id: o.str("organisation_id")?,
                status: en!(o, "status", pb::OrganisationStatus, "ORGANISATION_STATUS_")?,
                decision_ref: o.str("decision_ref")?,
            };
            o.finish()?;
            Request::SetOrganisationStatus(r)
        }
        Call::CreatePerson(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreatePersonRequest {
                change: change(&mut o)?,
                full_name: o.str("full_name")?,
                email: o.str("email")?,
                organisation_id: o.str("organisation_id")?,
                service_end: o.ts("service_end")?,
            };
            o.finish()?;
            Request::CreatePerson(r)
        }
        Call::CreateTitle(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreateTitleRequest {
                change: change(&mut o)?,
                name: o.str("name")?,
            };
            o.finish()?;
            Request::CreateTitle(r)
        }
        Call::CreateAppointment(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreateAppointmentRequest {
                change: change(&mut o)?,
                person_id: o.str("person_id")?,
                title_id: o.str("title_id")?,
                organisation_id: o.str("organisation_id")?,
                valid_from: o.ts("valid_from")?,
                valid_to: o.ts("valid_to")?,
                decision_ref: o.str("decision_ref")?,
            };
            o.finish()?;
            Request::CreateAppointment(r)
        }
        Call::CreateDocumentType(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreateDocumentTypeRequest {
                change: change(&mut o)?,
                code: o.str("code")?,
                name: o.str("name")?,
                classification: en!(o, "classification", spb::Classification, "CLASSIFICATION_")?,
            };
            o.finish()?;
            Request::CreateDocumentType(r)
        }
        Call::GrantAuthority(i) => {
            let mut o = read_json(i)?;
            let ch = change(&mut o)?;
            let mut title_authorities = Vec::new();
            for mut t in o.objs("title_authorities")? {
                title_authorities.push(pb::TitleAuthority {
                    organisation_id: t.str("organisation_id")?,
                    title_id: t.str("title_id")?,
                    document_type: t.str("document_type")?,
                });
                t.finish()?;
            }
            let mut organisation_profiles = Vec::new();
            for mut p in o.objs("organisation_profiles")? {
                organisation_profiles.push(pb::OrganisationProfile {
                    organisation_id: p.str("organisation_id")?,
                    document_type: p.str("document_type")?,
                    profile: en!(p, "profile", spb::Profile, "PROFILE_")?,
                });
                p.finish()?;
            }
            o.finish()?;
            Request::GrantAuthority(pb::GrantAuthorityRequest {
                change: ch,
                title_authorities,
                organisation_profiles,
            })
        }
        Call::RegisterCertificate { cert, input } => {
            let bytes = read_file(cert)?;
            let der = cert_der(&bytes)
                .map_err(|e| CliError::Usage(format!("--cert {}: {e}", cert.display())))?;
            let mut o = read_json(input)?;
            let r = pb::RegisterCertificateRequest {
                change: change(&mut o)?,
                der,
                kind: en!(o, "kind", pb::CertificateKind, "CERTIFICATE_KIND_")?,
                person_id: o.str("person_id")?,
                organisation_id: o.str("organisation_id")?,
                renewal_of: o.str("renewal_of")?,
            };
            o.finish()?;
            Request::RegisterCertificate(r)
        }
        Call::ChangeCertificateStatus(i) => {
            let mut o = read_json(i)?;
            let r = pb::ChangeCertificateStatusRequest {
                change: change(&mut o)?,
                fingerprint: o.str("fingerprint")?,
                status: en!(o, "status", pb::CertificateStatus, "CERTIFICATE_STATUS_")?,
                reason: en!(o, "reason", pb::RevocationReason, "REVOCATION_REASON_")?,
                effective_at: o.ts("effective_at")?,
            };
            o.finish()?;
            Request::ChangeCertificateStatus(r)
        }
        Call::AssignCustodian(i) => {
            let mut o = read_json(i)?;
            let r = pb::AssignCustodianRequest {
                change: change(&mut o)?,
                fingerprint: o.str("fingerprint")?,
                person_id: o.str("person_id")?,
                decision_ref: o.str("decision_ref")?,
                decision_date: o.ts("decision_date")?,
                handover_record: o.str("handover_record")?,
                effective_at: o.ts("effective_at")?,
            };
            o.finish()?;
            Request::AssignCustodian(r)
        }
        Call::CreateDelegation(i) => {
            let mut o = read_json(i)?;
            let r = pb::CreateDelegationRequest {
                change: change(&mut o)?,
                organisation_id: o.str("organisation_id")?,
                from_person_id: o.str("from_person_id")?,
                to_person_id: o.str("to_person_id")?,
                mode: en!(o, "mode", spb::SigningMode, "SIGNING_MODE_")?,
                document_types: o.strs("document_types")?,
                decision_ref: o.str("decision_ref")?,
                valid_from: o.ts("valid_from")?,
                valid_to: o.ts("valid_to")?,
            };
            o.finish()?;
            Request::CreateDelegation(r)
        }
        Call::EndAppointment(i) => {
            let mut o = read_json(i)?;
            let r = pb::EndAppointmentRequest {
                change: change(&mut o)?,
                appointment_id: o.str("appointment_id")?,
                valid_to: o.ts("valid_to")?,
                decision_ref: o.str("decision_ref")?,
            };
            o.finish()?;
            Request::EndAppointment(r)
        }
        Call::RevokeDelegation(i) => {
            let mut o = read_json(i)?;
            let r = pb::RevokeDelegationRequest {
                change: change(&mut o)?,
                delegation_id: o.str("delegation_id")?,
                decision_ref: o.str("decision_ref")?,
                effective_at: o.ts("effective_at")?,
            };
            o.finish()?;
            Request::RevokeDelegation(r)
        }
        Call::UpdateOrganisation(i) => {
            let (mut o, present) = with_present(read_value(i)?)?;
            let r = pb::UpdateOrganisationRequest {
                change: change(&mut o)?,
                organisation_id: o.str("organisation_id")?,
                name: opt_str(&mut o, &present, "name")?,
                mail_domain: opt_str(&mut o, &present, "mail_domain")?,
                managing_agency_id: opt_str(&mut o, &present, "managing_agency_id")?,
                parent_id: opt_str(&mut o, &present, "parent_id")?,
            };
            o.finish()?;
            Request::UpdateOrganisation(r)
        }
        Call::UpdatePerson(i) => {
            let mut v = read_value(i)?;
            let clear_service_end = take_bool(&mut v, "clear_service_end")?;
            let (mut o, present) = with_present(v)?;
            let r = pb::UpdatePersonRequest {
                change: change(&mut o)?,
                person_id: o.str("person_id")?,
                full_name: opt_str(&mut o, &present, "full_name")?,
                email: opt_str(&mut o, &present, "email")?,
                service_end: o.ts("service_end")?,
                clear_service_end,
            };
            o.finish()?;
            Request::UpdatePerson(r)
        }
        Call::SetHolidays(i) => {
            let mut o = read_json(i)?;
            let r = pb::SetHolidaysRequest {
                change: change(&mut o)?,
                year: i32_field(&mut o, "year")?,
                dates: o.strs("dates")?,
            };
            o.finish()?;
            Request::SetHolidays(r)
        }
        Call::ListHolidays(i) => {
            let mut o = read_json(i)?;
            let r = pb::ListHolidaysRequest {
                year: i32_field(&mut o, "year")?,
            };
            o.finish()?;
            Request::ListHolidays(r)
        }
        Call::RecordUsage(i) => {
            let mut o = read_json(i)?;
            let mut entries = Vec::new();
            for mut e in o.objs("entries")? {
                entries.push(pb::UsageEntry {
                    certificate_fingerprint: e.str("certificate_fingerprint")?,
                    organisation_id: e.str("organisation_id")?,
                    profile: e.str("profile")?,
                    day: e.str("day")?,
                    count: e.i64("count")?,
                });
                e.finish()?;
            }
            let r = pb::RecordUsageRequest {
                change: change(&mut o)?,
                batch_id: o.str("batch_id")?,
                entries,
            };
            o.finish()?;
            Request::RecordUsage(r)
        }
        Call::RegisterDocument(i) => {
            let mut v = read_value(i)?;
            let refused = take_bool(&mut v, "refused")?;
            let mut o = Obj::root(v)?;
            let r = pb::RegisterDocumentRequest {
                change: change(&mut o)?,
                organisation_id: o.str("organisation_id")?,
                direction: en!(o, "direction", pb::Direction, "DIRECTION_")?,
                document_type: o.str("document_type")?,
                number_and_symbol: o.str("number_and_symbol")?,
                sha256: o.str("sha256")?,
                counterparty: o.str("counterparty")?,
                refused,
                reason: o.str("reason")?,
                at: o.ts("at")?,
            };
            o.finish()?;
            Request::RegisterDocument(r)
        }
        Call::ListRegister(i) => {
            let mut o = read_json(i)?;
            let r = pb::ListRegisterRequest {
                organisation_id: o.str("organisation_id")?,
                direction: en!(o, "direction", pb::Direction, "DIRECTION_")?,
                year: i32_field(&mut o, "year")?,
                sha256: o.str("sha256")?,
            };
            o.finish()?;
            Request::ListRegister(r)
        }
        Call::Authorize(i) => {
            let mut o = read_json(i)?;
            let r = pb::AuthorizeRequest {
                fingerprint: o.str("fingerprint")?,
                acting_person_id: o.str("acting_person_id")?,
                organisation_id: o.str("organisation_id")?,
                document_type: o.str("document_type")?,
                profile: en!(o, "profile", spb::Profile, "PROFILE_")?,
                mode: en!(o, "mode", spb::SigningMode, "SIGNING_MODE_")?,
                at: o.ts("at")?,
            };
            o.finish()?;
            Request::Authorize(r)
        }
        Call::CheckAuthority(i) => {
            let mut o = read_json(i)?;
            let r = pb::CheckAuthorityRequest {
                fingerprint: o.str("fingerprint")?,
                document_type: o.str("document_type")?,
                at: o.ts("at")?,
            };
            o.finish()?;
            Request::CheckAuthority(r)
        }
        Call::GetCertificate(i) => {
            let mut o = read_json(i)?;
            let fingerprint = o.str("fingerprint")?;
            let by = match o.obj("issuer_serial")? {
                Some(mut is) => {
                    if !fingerprint.is_empty() {
                        return Err(CliError::Usage(
                            "give fingerprint or issuer_serial, not both".into(),
                        ));
                    }
                    let v = pb::IssuerSerial {
                        issuer: is.str("issuer")?,
                        serial: is.str("serial")?,
                    };
                    is.finish()?;
                    Some(pb::get_certificate_request::By::IssuerSerial(v))
                }
                None if fingerprint.is_empty() => None,
                None => Some(pb::get_certificate_request::By::Fingerprint(fingerprint)),
            };
            o.finish()?;
            Request::GetCertificate(pb::GetCertificateRequest { by })
        }
        Call::ListExpiring(i) => {
            let mut o = read_json(i)?;
            let r = pb::ListExpiringCertificatesRequest {
                within_days: o.u32("within_days")?,
                at: o.ts("at")?,
            };
            o.finish()?;
            Request::ListExpiring(r)
        }
        Call::ListEvents(i) => {
            let mut o = read_json(i)?;
            let r = pb::ListEventsRequest {
                after_seq: o.i64("after_seq")?,
                limit: o.u32("limit")?,
            };
            o.finish()?;
            Request::ListEvents(r)
        }
        Call::RequestUnlock(i) => {
            let mut o = read_json(i)?;
            let r = pb::RequestUnlockRequest {
                change: change(&mut o)?,
                fingerprint: o.str("fingerprint")?,
                requested_by: o.str("requested_by")?,
                reason: o.str("reason")?,
            };
            o.finish()?;
            Request::FileUnlock(r)
        }
        Call::ResolveUnlock(i) => {
            let mut o = read_json(i)?;
            let r = pb::ResolveUnlockRequest {
                change: change(&mut o)?,
                id: o.str("id")?,
                outcome: en!(o, "outcome", pb::UnlockStatus, "UNLOCK_STATUS_")?,
                reason: o.str("reason")?,
            };
            o.finish()?;
            Request::ResolveUnlock(r)
        }
        Call::ListOverdueUnlocks(i) => {
            let mut o = read_json(i)?;
            let r = pb::ListOverdueUnlocksRequest { now: o.ts("now")? };
            o.finish()?;
            Request::ListOverdueUnlocks(r)
        }
        Call::FindPeople(i) => {
            let mut o = read_json(i)?;
            let r = pb::FindPeopleRequest {
                name: o.str("name")?,
                organisation_id: o.str("organisation_id")?,
            };
            o.finish()?;
            Request::FindPeople(r)
        }
        Call::FindOrganisations(i) => {
            let mut o = read_json(i)?;
            let r = pb::FindOrganisationsRequest {
                name: o.str("name")?,
            };
            o.finish()?;
            Request::FindOrganisations(r)
        }
    };
    Ok(Prepared::Request(Box::new(r)))
}

/// Sends a request; the answer as JSON and whether it is a success (not a refusal).
async fn call(
    c: &mut RegistryClient<Channel>,
    r: Box<Request>,
) -> Result<(Value, bool), tonic::Status> {
    Ok(match *r {
        Request::CreateOrganisation(r) => (
            json!({"id": c.create_organisation(r).await?.into_inner().id}),
            true,
        ),
        Request::SetOrganisationStatus(r) => {
            c.set_organisation_status(r).await?;
            (json!({}), true)
        }
        Request::CreatePerson(r) => (
            json!({"id": c.create_person(r).await?.into_inner().id}),
            true,
        ),
        Request::CreateTitle(r) => (
            json!({"id": c.create_title(r).await?.into_inner().id}),
            true,
        ),
        Request::CreateAppointment(r) => (
            json!({"id": c.create_appointment(r).await?.into_inner().id}),
            true,
        ),
        Request::CreateDocumentType(r) => {
            c.create_document_type(r).await?;
            (json!({}), true)
        }
        Request::GrantAuthority(r) => {
            c.grant_authority(r).await?;
            (json!({}), true)
        }
        Request::RegisterCertificate(r) => {
            let cert = c.register_certificate(r).await?.into_inner().certificate;
            (json!({"certificate": cert.as_ref().map(certificate)}), true)
        }
        Request::ChangeCertificateStatus(r) => {
            let cert = c
                .change_certificate_status(r)
                .await?
                .into_inner()
                .certificate;
            (json!({"certificate": cert.as_ref().map(certificate)}), true)
        }
        Request::AssignCustodian(r) => (
            json!({"id": c.assign_custodian(r).await?.into_inner().id}),
            true,
        ),
        Request::CreateDelegation(r) => (
            json!({"id": c.create_delegation(r).await?.into_inner().id}),
            true,
        ),
        Request::EndAppointment(r) => {
            c.end_appointment(r).await?;
            (json!({}), true)
        }
        Request::RevokeDelegation(r) => {
            c.revoke_delegation(r).await?;
            (json!({}), true)
        }
        Request::UpdateOrganisation(r) => {
            c.update_organisation(r).await?;
            (json!({}), true)
        }
        Request::UpdatePerson(r) => {
            c.update_person(r).await?;
            (json!({}), true)
        }
        Request::SetHolidays(r) => (
            json!({"dates": c.set_holidays(r).await?.into_inner().dates}),
            true,
        ),
        Request::ListHolidays(r) => (
            json!({"dates": c.list_holidays(r).await?.into_inner().dates}),
            true,
        ),
        Request::RecordUsage(r) => {
            let u = c.record_usage(r).await?.into_inner();
            (
                json!({"duplicate": u.duplicate, "signatures": u.signatures}),
                true,
            )
        }
        Request::RegisterDocument(r) => (
            register_entry(c.register_document(r).await?.into_inner().entry.as_ref()),
            true,
        ),
        Request::ListRegister(r) => {
            let list: Vec<Value> = c
                .list_register(r)
                .await?
                .into_inner()
                .entries
                .iter()
                .map(|e| register_entry(Some(e)))
                .collect();
            (json!({"entries": list}), true)
        }
        Request::Authorize(r) => {
            let a = c.authorize(r).await?.into_inner();
            (
                json!({
                    "allowed": a.allowed,
                    "refusals": refusals(&a.refusals),
                    "holder_name": a.holder_name,
                    "title": a.title,
                    "on_behalf_of": a.on_behalf_of,
                }),
                a.allowed,
            )
        }
        Request::CheckAuthority(r) => {
            let a = c.check_authority(r).await?.into_inner();
            (
                json!({
                    "authorised": a.authorised,
                    "refusals": refusals(&a.refusals),
                    "kind": name!(pb::CertificateKind, a.kind),
                    "holder_name": a.holder_name,
                    "title": a.title,
                    "organisation_name": a.organisation_name,
                    "status": name!(pb::CertificateStatus, a.status),
                }),
                a.authorised,
            )
        }
        Request::GetCertificate(r) => {
            let cert = c.get_certificate(r).await?.into_inner().certificate;
            (json!({"certificate": cert.as_ref().map(certificate)}), true)
        }
        Request::ListExpiring(r) => {
            let certs = c.list_expiring_certificates(r).await?.into_inner();
            let list: Vec<Value> = certs.certificates.iter().map(certificate).collect();
            (json!({"certificates": list}), true)
        }
        Request::ListEvents(r) => {
            let events = c.list_events(r).await?.into_inner();
            let list: Vec<Value> = events
                .events
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq,
                        "at": ts_out(&e.at),
                        "actor": e.actor,
                        "reason": e.reason,
                        "kind": e.kind,
                        "entity_id": e.entity_id,
                        "change": serde_json::from_str::<Value>(&e.change_json)
                            .unwrap_or_else(|_| Value::String(e.change_json.clone())),
                    })
                })
                .collect();
            (json!({"events": list}), true)
        }
        Request::FileUnlock(r) => (
            unlock(c.request_unlock(r).await?.into_inner().request.as_ref()),
            true,
        ),
        Request::ResolveUnlock(r) => (
            unlock(c.resolve_unlock(r).await?.into_inner().request.as_ref()),
            true,
        ),
        Request::ListOverdueUnlocks(r) => {
            let list: Vec<Value> = c
                .list_overdue_unlocks(r)
                .await?
                .into_inner()
                .requests
                .iter()
                .map(|u| unlock(Some(u)))
                .collect();
            (json!({"requests": list}), true)
        }
        Request::FindPeople(r) => {
            let people: Vec<Value> = c
                .find_people(r)
                .await?
                .into_inner()
                .people
                .iter()
                .map(|p| {
                    json!({"id": p.id, "full_name": p.full_name, "email": p.email,
                        "organisation_id": p.organisation_id, "exact": p.exact})
                })
                .collect();
            (json!({"people": people}), true)
        }
        Request::FindOrganisations(r) => {
            let orgs: Vec<Value> = c
                .find_organisations(r)
                .await?
                .into_inner()
                .organisations
                .iter()
                .map(|o| {
                    json!({"id": o.id, "name": o.name,
                        "managing_agency_id": o.managing_agency_id, "exact": o.exact})
                })
                .collect();
            (json!({"organisations": orgs}), true)
        }
    })
}

/// An unlock request (I5) as JSON.
fn register_entry(e: Option<&pb::RegisterEntry>) -> Value {
    let Some(e) = e else {
        return Value::Null;
    };
    json!({
        "id": e.id,
        "organisation_id": e.organisation_id,
        "direction": name!(pb::Direction, e.direction),
        "year": e.year,
        "number": e.number,
        "document_type": e.document_type,
        "number_and_symbol": e.number_and_symbol,
        "sha256": e.sha256,
        "counterparty": e.counterparty,
        "refused": e.refused,
        "reason": e.reason,
        "at": ts_out(&e.at),
    })
}

fn unlock(u: Option<&pb::UnlockRequest>) -> Value {
    let Some(u) = u else {
        return Value::Null;
    };
    json!({
        "id": u.id,
        "fingerprint": u.fingerprint,
        "requested_by": u.requested_by,
        "reason": u.reason,
        "requested_at": ts_out(&u.requested_at),
        "due_at": ts_out(&u.due_at),
        "status": name!(pb::UnlockStatus, u.status),
        "resolution_reason": u.resolution_reason,
        "resolved_at": ts_out(&u.resolved_at),
    })
}

fn refusals(r: &[pb::Refusal]) -> Value {
    r.iter()
        .map(|r| json!({"rule": r.rule, "reason": r.reason}))
        .collect()
}

fn certificate(c: &pb::Certificate) -> Value {
    let history: Vec<Value> = c
        .history
        .iter()
        .map(|h| {
            json!({
                "status": name!(pb::CertificateStatus, h.status),
                "reason": name!(pb::RevocationReason, h.reason),
                "effective_at": ts_out(&h.effective_at),
            })
        })
        .collect();
    json!({
        "id": c.id,
        "fingerprint": c.fingerprint,
        "serial": c.serial,
        "issuer": c.issuer,
        "subject": c.subject,
        "kind": name!(pb::CertificateKind, c.kind),
        "person_id": c.person_id,
        "organisation_id": c.organisation_id,
        "not_before": ts_out(&c.not_before),
        "not_after": ts_out(&c.not_after),
        "status": name!(pb::CertificateStatus, c.status),
        "history": history,
        "renewal_count": c.renewal_count,
        "renewal_of": c.renewal_of,
    })
}

// ---------------------------------------------------------------------------------------------
// import-certificates
// ---------------------------------------------------------------------------------------------

/// What a subject says about its holder.
#[derive(Debug, Default)]
struct Subject {
    rfc4514: String,
    cn: Option<String>,
    title: Option<String>,
    o: Option<String>,
}

const OID_CN: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_O: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_TITLE: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.12");

fn subject_of(der_bytes: &[u8]) -> Result<Subject, String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der_bytes)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let name = &cert.tbs_certificate.subject;
    let mut s = Subject {
        rfc4514: kyso_pki::name::rfc4514(name),
        ..Subject::default()
    };
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let value = kyso_pki::name::directory_string(&atv.value);
            if atv.oid == OID_CN {
                s.cn = value;
            } else if atv.oid == OID_O {
                s.o = value;
            } else if atv.oid == OID_TITLE {
                s.title = value;
            }
        }
    }
    Ok(s)
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[derive(Debug, Default)]
struct Holders {
    /// (normalised full name, id, organisation id)
    people: Vec<(String, String, String)>,
    /// (normalised name, id)
    organisations: Vec<(String, String)>,
}

fn load_holders(path: &Path) -> Result<Holders, CliError> {
    let v: Value = serde_json::from_slice(&read_file(path)?)
        .map_err(|e| CliError::Usage(format!("--holders {}: {e}", path.display())))?;
    let mut root = Obj::root(v)?;
    let mut h = Holders::default();
    for mut p in root.objs("people")? {
        let id = p.str("id")?;
        let name = p.str("full_name")?;
        let org = p.str("organisation_id")?;
        p.finish()?;
        h.people.push((norm(&name), id, org));
    }
    for mut o in root.objs("organisations")? {
        let id = o.str("id")?;
        let name = o.str("name")?;
        o.finish()?;
        h.organisations.push((norm(&name), id));
    }
    root.finish()?;
    Ok(h)
}

/// A guessed holder: kind, person ID, organisation ID; or why there is none.
type Guess = Result<(pb::CertificateKind, String, String), String>;

/// The holder from a --holders list: CN is a person's full name (O then names the
/// organisation), or an organisation's name when the subject has no title.
fn from_holders(h: &Holders, subject: &Subject) -> Guess {
    let cn = subject.cn.as_deref().map(norm);
    let o = subject.o.as_deref().map(norm);
    let org_match = o
        .as_ref()
        .and_then(|o| h.organisations.iter().find(|(n, _)| n == o))
        .map(|(_, id)| id.clone());
    let person = cn
        .as_ref()
        .and_then(|cn| h.people.iter().find(|(n, _, _)| n == cn));
    let org_holder = cn
        .as_ref()
        .and_then(|cn| h.organisations.iter().find(|(n, _)| n == cn))
        .map(|(_, id)| id.clone());
    match (person, org_holder) {
        (Some((_, pid, home)), _) => Ok((
            pb::CertificateKind::Personal,
            pid.clone(),
            org_match.unwrap_or_else(|| home.clone()),
        )),
        (None, Some(oid)) if subject.title.is_none() => {
            Ok((pb::CertificateKind::Organisation, String::new(), oid))
        }
        _ => Err(format!(
            "no known person named CN {:?}, and no known organisation named by the CN (O is {:?})",
            subject.cn.as_deref().unwrap_or(""),
            subject.o.as_deref().unwrap_or("")
        )),
    }
}

/// The one match to use: the only whole-name match, else the only match; none when there
/// is no match or more than one (ambiguous).
fn pick<T>(found: Vec<T>, exact: impl Fn(&T) -> bool) -> Result<T, usize> {
    let n = found.len();
    let (mut whole, mut rest): (Vec<T>, Vec<T>) = found.into_iter().partition(|x| exact(x));
    match (whole.len(), rest.len()) {
        (1, _) => Ok(whole.remove(0)),
        (0, 1) => Ok(rest.remove(0)),
        _ => Err(n),
    }
}

/// The holder looked up in the registry by name (FindOrganisations, FindPeople): O names the
/// organisation, CN the person (within O's organisation first), or else an organisation
/// when the subject has no title (2.5.4.12).
async fn from_registry(
    c: &mut RegistryClient<Channel>,
    subject: &Subject,
) -> Result<Guess, tonic::Status> {
    let Some(cn) = subject.cn.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Ok(Err("the subject has no CN to match a holder by".into()));
    };
    let mut org = None;
    if let Some(o) = subject.o.as_deref().filter(|s| !s.trim().is_empty()) {
        let found = c
            .find_organisations(pb::FindOrganisationsRequest { name: o.into() })
            .await?
            .into_inner()
            .organisations;
        org = pick(found, |m| m.exact).ok();
    }
    let org_id = org.as_ref().map(|o| o.id.clone()).unwrap_or_default();
    let mut people = c
        .find_people(pb::FindPeopleRequest {
            name: cn.into(),
            organisation_id: org_id.clone(),
        })
        .await?
        .into_inner()
        .people;
    if people.is_empty() && !org_id.is_empty() {
        people = c
            .find_people(pb::FindPeopleRequest {
                name: cn.into(),
                organisation_id: String::new(),
            })
            .await?
            .into_inner()
            .people;
    }
    // A person matches by the whole name only (a part of a name is not a holder).
    let people: Vec<pb::PersonMatch> = people
        .into_iter()
        .filter(|p| norm_key(&p.full_name) == norm_key(cn))
        .collect();
    match pick(people, |p| p.exact) {
        Ok(p) => {
            let org = if org_id.is_empty() {
                p.organisation_id
            } else {
                org_id
            };
            return Ok(Ok((pb::CertificateKind::Personal, p.id, org)));
        }
        Err(n) if n > 1 => {
            return Ok(Err(format!(
                "{n} people in the registry are named CN {cn:?}; give --holders"
            )));
        }
        Err(_) => {}
    }
    if subject.title.is_none() {
        let found: Vec<pb::OrganisationMatch> = c
            .find_organisations(pb::FindOrganisationsRequest { name: cn.into() })
            .await?
            .into_inner()
            .organisations
            .into_iter()
            .filter(|o| norm_key(&o.name) == norm_key(cn))
            .collect();
        match pick(found, |o| o.exact) {
            Ok(o) => return Ok(Ok((pb::CertificateKind::Organisation, String::new(), o.id))),
            Err(n) if n > 1 => {
                return Ok(Err(format!(
                    "{n} organisations in the registry are named CN {cn:?}; give --holders"
                )));
            }
            Err(_) => {}
        }
    }
    Ok(Err(format!(
        "no person in the registry named CN {cn:?}{}, and no organisation by that name{}",
        subject
            .o
            .as_deref()
            .map(|o| format!(" (O {o:?})"))
            .unwrap_or_default(),
        subject
            .title
            .as_deref()
            .map(|t| format!(" (title {t:?}: a personal certificate)"))
            .unwrap_or_default(),
    )))
}

/// A name compared without case, accents (đ as d) or extra spaces, as the registry's
/// search key does.
fn norm_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let folded: String = s
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| if c == 'đ' || c == 'Đ' { 'd' } else { c })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn import(c: &mut RegistryClient<Channel>, a: &ImportArgs) -> Result<ExitCode, CliError> {
    let holders = match &a.holders {
        Some(p) => Some(load_holders(p)?),
        None => None,
    };
    let entries = std::fs::read_dir(&a.dir).map_err(|source| CliError::File {
        path: a.dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "pem" | "cer" | "der" | "crt"
                    )
                })
                .unwrap_or(false)
        })
        .collect();
    files.sort();

    let mut imported = Vec::new();
    let mut duplicates = Vec::new();
    let mut unmatched = Vec::new();
    let mut failed = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let der_bytes = match read_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| cert_der(&b))
        {
            Ok(d) => d,
            Err(reason) => {
                unmatched.push(json!({"file": file, "subject": Value::Null, "reason": reason}));
                continue;
            }
        };
        let subject = match subject_of(&der_bytes) {
            Ok(s) => s,
            Err(reason) => {
                unmatched.push(json!({"file": file, "subject": Value::Null, "reason": reason}));
                continue;
            }
        };
        let fp =
            hex_lower(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der_bytes).as_ref());
        match c
            .get_certificate(pb::GetCertificateRequest {
                by: Some(pb::get_certificate_request::By::Fingerprint(fp.clone())),
            })
            .await
        {
            Ok(_) => {
                duplicates.push(json!({"file": file, "fingerprint": fp}));
                continue;
            }
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Ok(report_status(&s)),
        }
        let guessed = match &holders {
            Some(h) => from_holders(h, &subject),
            None => match from_registry(c, &subject).await {
                Ok(g) => g,
                Err(s) => return Ok(report_status(&s)),
            },
        };
        let (kind, person_id, organisation_id) = match guessed {
            Ok(g) => g,
            Err(reason) => {
                unmatched.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "reason": reason,
                }));
                continue;
            }
        };
        let req = pb::RegisterCertificateRequest {
            change: Some(pb::Change {
                actor: a.actor.clone(),
                reason: a.reason.clone(),
            }),
            der: der_bytes,
            kind: kind as i32,
            person_id,
            organisation_id,
            renewal_of: String::new(),
        };
        match c.register_certificate(req).await {
            Ok(r) => imported.push(json!({
                "file": file,
                "subject": subject.rfc4514,
                "title": subject.title,
                "certificate": r.into_inner().certificate.as_ref().map(certificate),
            })),
            Err(s) if s.code() == Code::AlreadyExists => {
                duplicates.push(json!({"file": file, "fingerprint": fp}));
            }
            Err(s) => {
                let rules: Vec<String> = s
                    .get_details_precondition_failure()
                    .map(|p| p.violations.iter().map(|v| v.r#type.clone()).collect())
                    .unwrap_or_default();
                failed.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "code": format!("{:?}", s.code()),
                    "message": s.message(),
                    "rules": rules,
                }));
            }
        }
    }
    let ok = failed.is_empty();
    print_json(&json!({
        "imported": imported.len(),
        "duplicates": duplicates.len(),
        "unmatched": unmatched,
        "refused": failed,
        "certificates": imported,
        "duplicate_files": duplicates,
    }));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Lowercase hex.
pub fn hex_lower(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

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
    /// Registers every .pem/.cer/.der/.crt file of a folder, holders guessed from the subject.
    ImportCertificates(ImportArgs),
}

/// `kyso registry import-certificates`.
#[derive(Debug, Args)]
struct ImportArgs {
    /// The folder of certificate files.
    dir: PathBuf,
    /// Known holders, JSON {"people": [{"id", "full_name", "organisation_id"}],
    /// "organisations": [{"id", "name"}]}: the registry has no lookup of people or
    /// organisations by name, so matching uses this list.
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
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the request is not JSON: {e}")))?;
    Obj::root(v)
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
    Authorize(pb::AuthorizeRequest),
    CheckAuthority(pb::CheckAuthorityRequest),
    GetCertificate(pb::GetCertificateRequest),
    ListExpiring(pb::ListExpiringCertificatesRequest),
    ListEvents(pb::ListEventsRequest),
}

enum Prepared<'a> {
    Request(Box<Request>),
    Import(&'a ImportArgs),
}

fn prepare(call: &Call) -> Result<Prepared<'_>, CliError> {
    let r = match call {
        Call::ImportCertificates(a) => return Ok(Prepared::Import(a)),
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

fn directory_string(v: &der::Any) -> Option<String> {
    use der::{Tag, Tagged};
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn subject_of(der_bytes: &[u8]) -> Result<Subject, String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der_bytes)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let name = &cert.tbs_certificate.subject;
    let mut s = Subject {
        rfc4514: name.to_string(),
        ..Subject::default()
    };
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let value = directory_string(&atv.value);
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
        let Some(h) = &holders else {
            unmatched.push(json!({
                "file": file,
                "subject": subject.rfc4514,
                "reason": "the registry has no call to find people or organisations by name; \
                           give --holders with their IDs",
            }));
            continue;
        };
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
        let (kind, person_id, organisation_id) = match (person, org_holder) {
            (Some((_, pid, home)), _) => (
                pb::CertificateKind::Personal,
                pid.clone(),
                org_match.clone().unwrap_or_else(|| home.clone()),
            ),
            (None, Some(oid)) if subject.title.is_none() => {
                (pb::CertificateKind::Organisation, String::new(), oid)
            }
            _ => {
                unmatched.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "reason": format!(
                        "no known person named CN {:?}, and no known organisation named by the CN (O is {:?})",
                        subject.cn.as_deref().unwrap_or(""),
                        subject.o.as_deref().unwrap_or("")
                    ),
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

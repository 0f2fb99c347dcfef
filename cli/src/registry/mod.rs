//! `kyso registry`: every management and lookup call of `kyso.registry.v1`,
//! JSON in (proto field names, snake_case) and JSON out, plus an import of a
//! folder of certificate files.
//!
//! The JSON commands have no code of their own: each names its method, the request is read
//! through the method's input descriptor ([`input`]), sent on one call path ([`calls`]) and
//! the answer printed through its output descriptor ([`output`]).
//!
//! Exit codes: 0 on success, 1 when the registry refuses (PermissionDenied,
//! FailedPrecondition, or an `authorize`/`check-authority` answer that is not
//! allowed), 2 for invalid input or any other error.

mod args;
mod calls;
mod import;
mod input;
mod output;

use std::process::ExitCode;

use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use self::args::RegistryArgs;
use self::args::{Call, JsonIn, ReportArgs};
pub use self::output::report_status;
use self::output::{print_csv, print_json, to_json};
use crate::{CliError, read_file};

/// How a command calls the registry and prints the answer.
#[derive(Debug, Clone, Copy, Default)]
struct Rpc {
    /// The method of `kyso.registry.v1.Registry`.
    method: &'static str,
    /// The field of the answer printed alone: `register-document` prints the entry,
    /// `record-document-status` the status, `request-unlock` and `resolve-unlock` the request.
    unwrap: Option<&'static str>,
    /// The boolean of the answer that, false, is a refusal (exit 1).
    verdict: Option<&'static str>,
}

const fn plain(method: &'static str) -> Rpc {
    Rpc {
        method,
        unwrap: None,
        verdict: None,
    }
}

/// The JSON commands: their method and request; None for the others.
fn rpc(call: &Call) -> Option<(Rpc, &JsonIn)> {
    let unwrap = |method, field| Rpc {
        unwrap: Some(field),
        ..plain(method)
    };
    let verdict = |method, field| Rpc {
        verdict: Some(field),
        ..plain(method)
    };
    Some(match call {
        Call::CreateOrganisation(i) => (plain("CreateOrganisation"), i),
        Call::SetOrganisationStatus(i) => (plain("SetOrganisationStatus"), i),
        Call::CreatePerson(i) => (plain("CreatePerson"), i),
        Call::CreateTitle(i) => (plain("CreateTitle"), i),
        Call::CreateAppointment(i) => (plain("CreateAppointment"), i),
        Call::CreateDocumentType(i) => (plain("CreateDocumentType"), i),
        Call::GrantAuthority(i) => (plain("GrantAuthority"), i),
        Call::RegisterCertificate { input, .. } => (plain("RegisterCertificate"), input),
        Call::ChangeCertificateStatus(i) => (plain("ChangeCertificateStatus"), i),
        Call::AssignCustodian(i) => (plain("AssignCustodian"), i),
        Call::CreateDelegation(i) => (plain("CreateDelegation"), i),
        Call::EndAppointment(i) => (plain("EndAppointment"), i),
        Call::RevokeDelegation(i) => (plain("RevokeDelegation"), i),
        Call::UpdateOrganisation(i) => (plain("UpdateOrganisation"), i),
        Call::UpdatePerson(i) => (plain("UpdatePerson"), i),
        Call::Authorize(i) => (verdict("Authorize", "allowed"), i),
        Call::CheckAuthority(i) => (verdict("CheckAuthority", "authorised"), i),
        Call::CheckSeal(i) => (verdict("CheckSeal", "allowed"), i),
        Call::GetCertificate(i) => (plain("GetCertificate"), i),
        Call::ListExpiring(i) => (plain("ListExpiringCertificates"), i),
        Call::ListEvents(i) => (plain("ListEvents"), i),
        Call::RequestUnlock(i) => (unwrap("RequestUnlock", "request"), i),
        Call::ResolveUnlock(i) => (unwrap("ResolveUnlock", "request"), i),
        Call::ListOverdueUnlocks(i) => (plain("ListOverdueUnlocks"), i),
        Call::SetHolidays(i) => (plain("SetHolidays"), i),
        Call::ListHolidays(i) => (plain("ListHolidays"), i),
        Call::FindPeople(i) => (plain("FindPeople"), i),
        Call::FindOrganisations(i) => (plain("FindOrganisations"), i),
        Call::RecordUsage(i) => (plain("RecordUsage"), i),
        Call::RegisterDocument(i) => (unwrap("RegisterDocument", "entry"), i),
        Call::ListRegister(i) => (plain("ListRegister"), i),
        Call::RecordDocumentStatus(i) => (unwrap("RecordDocumentStatus", "status"), i),
        Call::ListDocumentStatus(i) => (plain("ListDocumentStatus"), i),
        Call::ListUnconfirmed(i) => (plain("ListUnconfirmed"), i),
        Call::FindCertificates(i) => (plain("FindCertificates"), i),
        Call::GrantRole(i) => (plain("GrantRole"), i),
        Call::RevokeRole(i) => (plain("RevokeRole"), i),
        Call::ListRoles(i) => (plain("ListRoles"), i),
        Call::WhoAmI(i) => (plain("WhoAmI"), i),
        Call::ListAuditAnchors(i) => (plain("ListAuditAnchors"), i),
        Call::GetLatestAuditAnchor(i) => (plain("GetLatestAuditAnchor"), i),
        Call::ImportCertificates(_) | Call::Report(_) => return None,
    })
}

/// A call ready to send: everything read and checked before the server is contacted.
struct Prepared {
    rpc: Rpc,
    method: MethodDescriptor,
    request: DynamicMessage,
    /// Print the report's rows as CSV.
    csv: bool,
}

/// Runs one registry call.
pub async fn run(args: RegistryArgs) -> Result<ExitCode, CliError> {
    let url = args
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server is required".into()))?;
    let prepared = match &args.call {
        Call::ImportCertificates(a) => {
            let channel = args.server.connect(&url).await?;
            return import::import(channel, a).await;
        }
        Call::Report(a) => report_request(a)?,
        call => json_request(call)?,
    };
    let channel = args.server.connect(&url).await?;
    let answer = match calls::unary(channel, &prepared.method, prepared.request).await {
        Ok(a) => a,
        Err(status) => return Ok(report_status(&status)),
    };
    let mut out = to_json(&answer)?;
    if prepared.csv {
        let row = calls::message_type("ReportRow")?;
        let columns: Vec<String> = row.fields().map(|f| f.name().to_owned()).collect();
        let rows = out["rows"].as_array().cloned().unwrap_or_default();
        print_csv(&columns, &rows);
        return Ok(ExitCode::SUCCESS);
    }
    let refused = prepared
        .rpc
        .verdict
        .is_some_and(|field| out[field] != json!(true));
    if let Some(field) = prepared.rpc.unwrap {
        out = out[field].take();
    }
    print_json(&out);
    Ok(if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A JSON command's request, read through its method's input type.
fn json_request(call: &Call) -> Result<Prepared, CliError> {
    let Some((rpc, input)) = rpc(call) else {
        return Err(CliError::Usage("not a JSON command".into()));
    };
    let method = calls::method(rpc.method)?;
    let json = calls::read_json(&input.json)?;
    let der = match call {
        Call::RegisterCertificate { cert, .. } => {
            if json.get("der").is_some() {
                return Err(CliError::Usage(
                    "field der: the certificate is given with --cert".into(),
                ));
            }
            let bytes = read_file(cert)?;
            let der = cert_der(&bytes)
                .map_err(|e| CliError::Usage(format!("--cert {}: {e}", cert.display())))?;
            Some(der)
        }
        _ => None,
    };
    let mut request = input::message(&method.input(), json)?;
    if let Some(der) = der {
        request
            .try_set_field_by_name("der", prost_reflect::Value::Bytes(der.into()))
            .map_err(|e| CliError::Usage(format!("the certificate: {e}")))?;
    }
    Ok(Prepared {
        rpc,
        method,
        request,
        csv: false,
    })
}

/// The report's request (R2), from its flags.
fn report_request(a: &ReportArgs) -> Result<Prepared, CliError> {
    // Whole seconds, in UTC: the registry counts by the second.
    let t = |flag: &str, v: &str| {
        OffsetDateTime::parse(v, &Rfc3339)
            .map(|t| Value::from(t.unix_timestamp()))
            .map_err(|e| CliError::Usage(format!("--{flag} {v}: not an RFC 3339 time: {e}")))
    };
    let granularity = match a.granularity.as_str() {
        "half-year" => "GRANULARITY_HALF_YEAR",
        "year" => "GRANULARITY_YEAR",
        _ => "GRANULARITY_QUARTER",
    };
    let json = json!({
        "from": t("from", &a.from)?,
        "to": t("to", &a.to)?,
        "granularity": granularity,
    });
    let rpc = plain("Report");
    let method = calls::method(rpc.method)?;
    let request = input::message(&method.input(), json)?;
    Ok(Prepared {
        rpc,
        method,
        request,
        csv: a.format == "csv",
    })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RegistryArgs,
    }

    #[test]
    fn every_json_command_names_a_method_of_the_service() {
        let service = calls::pool()
            .unwrap()
            .get_service_by_name(calls::SERVICE)
            .unwrap();
        let mut named = 0;
        for sub in <Cli as clap::CommandFactory>::command().get_subcommands() {
            let mut argv = vec!["kyso", sub.get_name()];
            match sub.get_name() {
                "register-certificate" => argv.extend(["--cert", "c.pem"]),
                "import-certificates" => argv.push("dir"),
                "report" => argv.extend(["--from", "x", "--to", "y", "--granularity", "year"]),
                _ => {}
            }
            let cli = Cli::try_parse_from(&argv).unwrap();
            if let Some((rpc, _)) = rpc(&cli.args.call) {
                assert!(
                    service.methods().any(|m| m.name() == rpc.method),
                    "{}",
                    rpc.method
                );
                named += 1;
            }
        }
        assert_eq!(named, 41);
    }
}

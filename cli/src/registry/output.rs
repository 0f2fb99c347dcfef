//! Answers as JSON (and the report as CSV), errors with their rule IDs, and exit codes.
//!
//! A message is printed as proto3 JSON with proto field names, every field (defaults too),
//! enums by name, and 64-bit numbers as JSON numbers. Two things keep the shape the CLI has
//! always printed: an absent message field (a timestamp, a certificate) is `null`, not left
//! out; and a string field holding JSON (`change_json`) is printed parsed, under its name
//! without the `_json`.

use std::io::Write;
use std::process::ExitCode;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::CliError;

/// The message as JSON.
pub fn to_json(m: &DynamicMessage) -> Result<Value, CliError> {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    let mut v = m
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| CliError::Usage(format!("printing the answer: {e}")))?;
    shape(&m.descriptor(), &mut v);
    Ok(v)
}

/// Absent message fields as null, JSON-in-a-string fields parsed; then the same inside.
fn shape(desc: &MessageDescriptor, v: &mut Value) {
    let Value::Object(map) = v else {
        return;
    };
    for field in desc.fields() {
        let name = field.name();
        let Some(value) = map.get_mut(name) else {
            if field.supports_presence() {
                map.insert(name.to_owned(), Value::Null);
            }
            continue;
        };
        match field.kind() {
            Kind::Message(m) if field.is_list() => {
                if let Value::Array(items) = value {
                    items.iter_mut().for_each(|i| shape(&m, i));
                }
            }
            Kind::Message(m) if !field.is_map() => shape(&m, value),
            Kind::String if !field.is_list() => {
                if let Some(short) = name.strip_suffix("_json") {
                    let text = value.as_str().unwrap_or_default().to_owned();
                    let parsed = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    map.remove(name);
                    map.insert(short.to_owned(), parsed);
                }
            }
            _ => {}
        }
    }
}

/// Prints JSON on stdout; a closed pipe (`| head`) is not an error.
pub fn print_json(v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints rows (JSON objects) as CSV (RFC 4180, header first) with the given columns.
pub fn print_csv(columns: &[String], rows: &[Value]) {
    let field = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) if s.contains([',', '"', '\n', '\r']) => {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|c| field(&row[c.as_str()])).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::calls::{dynamic, message_type};
    use kyso_proto::registry::v1 as pb;

    fn json_of<M: prost::Message>(name: &str, m: &M) -> Value {
        to_json(&dynamic(message_type(name).unwrap(), m).unwrap()).unwrap()
    }

    #[test]
    fn a_certificate_prints_as_the_cli_always_printed_it() {
        let c = pb::Certificate {
            fingerprint: "ab".into(),
            kind: pb::CertificateKind::Personal as i32,
            not_before: Some(prost_types::Timestamp {
                seconds: 1_767_323_045,
                nanos: 0,
            }),
            status: 7,
            history: vec![pb::StatusChange {
                status: pb::CertificateStatus::Revoked as i32,
                reason: pb::RevocationReason::DeviceLost as i32,
                effective_at: None,
            }],
            renewal_count: 2,
            ..Default::default()
        };
        let v = json_of(
            "GetCertificateResponse",
            &pb::GetCertificateResponse {
                certificate: Some(c),
            },
        );
        let c = &v["certificate"];
        assert_eq!(c["fingerprint"], json!("ab"));
        assert_eq!(c["id"], json!(""));
        assert_eq!(c["kind"], json!("CERTIFICATE_KIND_PERSONAL"));
        assert_eq!(c["not_before"], json!("2026-01-02T03:04:05Z"));
        assert_eq!(c["not_after"], Value::Null);
        assert_eq!(c["status"], json!(7), "an unknown enum value as its number");
        assert_eq!(c["renewal_count"], json!(2), "int64 as a JSON number");
        assert_eq!(
            c["history"][0]["reason"],
            json!("REVOCATION_REASON_DEVICE_LOST")
        );
        assert_eq!(c["history"][0]["effective_at"], Value::Null);
        let v = json_of(
            "GetCertificateResponse",
            &pb::GetCertificateResponse::default(),
        );
        assert_eq!(v, json!({"certificate": null}));
    }

    #[test]
    fn an_event_prints_its_change_parsed() {
        let e = pb::Event {
            seq: 3,
            change_json: r#"{"name":"x"}"#.into(),
            ..Default::default()
        };
        let v = json_of(
            "ListEventsResponse",
            &pb::ListEventsResponse { events: vec![e] },
        );
        let e = &v["events"][0];
        assert_eq!(e["change"], json!({"name": "x"}));
        assert_eq!(e["seq"], json!(3));
        assert_eq!(e["at"], Value::Null);
        assert!(e.get("change_json").is_none(), "{e}");
    }
}

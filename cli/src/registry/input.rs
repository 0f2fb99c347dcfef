//! Request JSON into a protobuf message through its descriptor.
//!
//! The CLI has always accepted more than canonical proto3 JSON, and scripts rely on it:
//! enum values without their prefix and in any case (`"kind": "personal"` for
//! `CERTIFICATE_KIND_PERSONAL`), timestamps as unix seconds or with any UTC offset, and
//! `null` for an absent field. [`canonical`] rewrites such a request into canonical
//! proto3 JSON, walking it against the message descriptor, and names the field (with its
//! path, `change.why`) of anything it refuses: an unknown field, a wrong type, a value out
//! of range. prost-reflect then reads the canonical JSON into a [`DynamicMessage`].

use prost_reflect::{DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::CliError;

/// The message `desc` read from request JSON (proto field names).
pub fn message(desc: &MessageDescriptor, mut v: Value) -> Result<DynamicMessage, CliError> {
    if !v.is_object() {
        return Err(CliError::Usage("the request JSON must be an object".into()));
    }
    canonical(desc, &mut v, "")?;
    DynamicMessage::deserialize(desc.clone(), v)
        .map_err(|e| CliError::Usage(format!("the request: {e}")))
}

fn bad(path: &str, what: &str) -> CliError {
    CliError::Usage(format!("field {path}: {what}"))
}

/// Rewrites the object `v` into canonical proto3 JSON for `desc`; `prefix` is the path of
/// the object (`""`, `change.`, `entries[2].`).
pub fn canonical(desc: &MessageDescriptor, v: &mut Value, prefix: &str) -> Result<(), CliError> {
    let Value::Object(map) = v else {
        return Err(bad(prefix.trim_end_matches('.'), "must be an object"));
    };
    // proto3 JSON reads null as absent; so did the CLI.
    map.retain(|_, v| !v.is_null());
    let mut out = Map::new();
    for (key, mut value) in std::mem::take(map) {
        let path = format!("{prefix}{key}");
        let field = desc
            .get_field_by_name(&key)
            .or_else(|| desc.get_field_by_json_name(&key))
            .ok_or_else(|| {
                CliError::Usage(format!("unknown field {path}: not in the request message"))
            })?;
        // A oneof (GetCertificate's `by`) takes one of its fields.
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
            && oneof.fields().any(|f| out.contains_key(f.name()))
        {
            let names: Vec<String> = oneof
                .fields()
                .map(|f| format!("{prefix}{}", f.name()))
                .collect();
            return Err(CliError::Usage(format!(
                "give only one of {}",
                names.join(", ")
            )));
        }
        if field.is_list() {
            let Value::Array(items) = &mut value else {
                return Err(bad(&path, "must be a list"));
            };
            for (i, item) in items.iter_mut().enumerate() {
                one(&field, item, &format!("{path}[{i}]"))?;
            }
        } else if !field.is_map() {
            one(&field, &mut value, &path)?;
        }
        out.insert(field.name().to_owned(), value);
    }
    *map = out;
    Ok(())
}

/// One value of `field` (an element, for a list).
fn one(field: &FieldDescriptor, v: &mut Value, path: &str) -> Result<(), CliError> {
    match field.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            *v = Value::String(timestamp(v, path)?.to_string());
        }
        Kind::Message(m) => canonical(&m, v, &format!("{path}."))?,
        Kind::Enum(e) => *v = Value::String(enumeration(&e, v, path)?),
        Kind::String => {
            if !v.is_string() {
                return Err(bad(path, "must be a string"));
            }
        }
        Kind::Bool => {
            if !v.is_boolean() {
                return Err(bad(path, "must be true or false"));
            }
        }
        Kind::Bytes => {
            if !v.is_string() {
                return Err(bad(path, "must be base64 text"));
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            *v = integer(v, path, "a 32-bit integer", |n| i32::try_from(n).is_ok())?;
        }
        Kind::Uint32 | Kind::Fixed32 => {
            *v = integer(v, path, "an unsigned 32-bit integer", |n| {
                u32::try_from(n).is_ok()
            })?;
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            *v = integer(v, path, "a 64-bit integer", |n| i64::try_from(n).is_ok())?;
        }
        Kind::Uint64 | Kind::Fixed64 => {
            *v = integer(v, path, "an unsigned 64-bit integer", |n| {
                u64::try_from(n).is_ok()
            })?;
        }
        Kind::Double | Kind::Float => {
            if !v.is_number() && !v.is_string() {
                return Err(bad(path, "must be a number"));
            }
        }
    }
    Ok(())
}

/// A whole number, given as a number or as decimal text (proto3 JSON writes 64-bit numbers
/// as text), in the range `fits` allows.
fn integer(v: &Value, path: &str, what: &str, fits: fn(i128) -> bool) -> Result<Value, CliError> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => return Err(bad(path, "must be a number")),
    };
    match n.filter(|n| fits(*n)) {
        Some(n) => Ok(i64::try_from(n)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(n.to_string()))),
        None => Err(bad(path, &format!("must be {what}"))),
    }
}

/// A timestamp: RFC 3339 text (`2026-01-01T00:00:00Z`, any offset) or unix seconds.
fn timestamp(v: &Value, path: &str) -> Result<prost_types::Timestamp, CliError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 })
            .ok_or_else(|| bad(path, "must be unix seconds or RFC 3339")),
        Value::String(s) => {
            let t = OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|e| bad(path, &format!("not an RFC 3339 time ({s}): {e}")))?;
            Ok(prost_types::Timestamp {
                seconds: t.unix_timestamp(),
                nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
            })
        }
        _ => Err(bad(path, "must be unix seconds or RFC 3339")),
    }
}

/// The name of an enum value given by name (`PROFILE_APPROVAL`), by name without the
/// enum's prefix and in any case (`approval`), or by number.
fn enumeration(e: &EnumDescriptor, v: &Value, path: &str) -> Result<String, CliError> {
    let prefix = enum_prefix(e.name());
    let found = match v {
        Value::String(s) => {
            let upper = s.to_ascii_uppercase();
            e.get_value_by_name(&upper)
                .or_else(|| e.get_value_by_name(&format!("{prefix}{upper}")))
                .ok_or_else(|| bad(path, &format!("{s:?} is not a value of {prefix}*")))?
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(|n| e.get_value(n))
            .ok_or_else(|| bad(path, &format!("not a value of {prefix}*")))?,
        _ => return Err(bad(path, "must be an enum name or number")),
    };
    Ok(found.name().to_owned())
}

/// The prefix of an enum's value names by the protobuf style: `SigningMode` gives
/// `SIGNING_MODE_`.
fn enum_prefix(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push('_');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::calls::pool;
    use prost_reflect::Value as Field;
    use serde_json::json;

    fn desc(name: &str) -> MessageDescriptor {
        pool()
            .unwrap()
            .get_message_by_name(&format!("kyso.registry.v1.{name}"))
            .unwrap()
    }

    fn err(name: &str, v: Value) -> String {
        message(&desc(name), v).unwrap_err().to_string()
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let e = err(
            "CreateTitleRequest",
            json!({"change": {"actor": "a", "why": "x"}, "name": "n"}),
        );
        assert!(e.contains("change.why"), "{e}");
        let e = err("RecordUsageRequest", json!({"entries": [{}, {"cuont": 1}]}));
        assert!(e.contains("entries[1].cuont"), "{e}");
        assert!(err("CreateTitleRequest", json!([1])).contains("object"));
    }

    #[test]
    fn enums_by_full_name_short_name_or_number() {
        for v in [json!("PROFILE_APPROVAL"), json!("approval"), json!(1)] {
            let m = message(&desc("AuthorizeRequest"), json!({ "profile": v })).unwrap();
            assert_eq!(
                m.get_field_by_name("profile").unwrap().as_ref(),
                &Field::EnumNumber(1)
            );
        }
        for v in [json!("SEAL"), json!(99), json!(true)] {
            let e = err("AuthorizeRequest", json!({ "profile": v }));
            assert!(e.contains("profile"), "{e}");
        }
        assert_eq!(enum_prefix("CertificateKind"), "CERTIFICATE_KIND_");
    }

    #[test]
    fn timestamps_from_rfc3339_with_any_offset_or_unix_seconds() {
        let at = |v: Value| {
            let m = message(&desc("CheckAuthorityRequest"), json!({ "at": v })).unwrap();
            m.transcode_to::<kyso_proto::registry::v1::CheckAuthorityRequest>()
                .unwrap()
                .at
                .unwrap()
                .seconds
        };
        assert_eq!(at(json!("2026-01-02T03:04:05Z")), 1_767_323_045);
        assert_eq!(at(json!("2026-01-02T10:04:05+07:00")), 1_767_323_045);
        assert_eq!(at(json!(1_767_323_045)), 1_767_323_045);
        assert!(err("CheckAuthorityRequest", json!({"at": "soon"})).contains("at"));
    }

    #[test]
    fn wrong_types_and_ranges_are_refused_naming_the_field() {
        assert!(err("CreateTitleRequest", json!({"name": 3})).contains("field name"));
        let e = err("ListEventsRequest", json!({"limit": -1}));
        assert!(e.contains("field limit"), "{e}");
        let e = err("ListHolidaysRequest", json!({"year": 1u64 << 40}));
        assert!(e.contains("field year"), "{e}");
        let m = message(
            &desc("ListEventsRequest"),
            json!({"after_seq": "9007199254740993", "limit": null}),
        )
        .unwrap();
        assert_eq!(
            m.get_field_by_name("after_seq").unwrap().as_ref(),
            &Field::I64(9_007_199_254_740_993)
        );
    }

    #[test]
    fn optional_fields_keep_presence_and_oneofs_take_one() {
        let m = message(
            &desc("UpdateOrganisationRequest"),
            json!({"organisation_id": "o", "managing_agency_id": "", "name": null}),
        )
        .unwrap();
        let r: kyso_proto::registry::v1::UpdateOrganisationRequest = m.transcode_to().unwrap();
        assert_eq!(r.managing_agency_id.as_deref(), Some(""));
        assert_eq!(r.name, None);
        let e = err(
            "GetCertificateRequest",
            json!({"fingerprint": "ab", "issuer_serial": {"issuer": "CN=x", "serial": "01"}}),
        );
        assert!(e.contains("only one of fingerprint, issuer_serial"), "{e}");
    }
}

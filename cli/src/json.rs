//! Typed reading of request JSON (proto field names, snake_case) with every
//! field accounted for: a field the request does not have is an error naming it.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::CliError;

/// A JSON object being read field by field; [`Obj::finish`] refuses what is left.
#[derive(Debug)]
pub struct Obj {
    map: Map<String, Value>,
    path: String,
}

fn bad(path: &str, key: &str, what: &str) -> CliError {
    CliError::Usage(format!("field {path}{key}: {what}"))
}

impl Obj {
    /// The top-level object of a request.
    pub fn root(v: Value) -> Result<Self, CliError> {
        match v {
            Value::Object(map) => Ok(Self {
                map,
                path: String::new(),
            }),
            _ => Err(CliError::Usage("the request JSON must be an object".into())),
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    /// A string field; absent is empty, as in proto3.
    pub fn str(&mut self, key: &str) -> Result<String, CliError> {
        match self.take(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(bad(&self.path, key, "must be a string")),
        }
    }

    /// A list of strings.
    pub fn strs(&mut self, key: &str) -> Result<Vec<String>, CliError> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad(&self.path, key, "must be a list of strings")),
                })
                .collect(),
            Some(_) => Err(bad(&self.path, key, "must be a list of strings")),
        }
    }

    /// An unsigned 32-bit number.
    pub fn u32(&mut self, key: &str) -> Result<u32, CliError> {
        match self.take(key) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(&self.path, key, "must be an unsigned 32-bit integer")),
            Some(_) => Err(bad(&self.path, key, "must be a number")),
        }
    }

    /// A signed 64-bit number (a number or a decimal string, as proto3 JSON allows).
    pub fn i64(&mut self, key: &str) -> Result<i64, CliError> {
        match self.take(key) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| bad(&self.path, key, "must be a 64-bit integer")),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| bad(&self.path, key, "must be a 64-bit integer")),
            Some(_) => Err(bad(&self.path, key, "must be a number")),
        }
    }

    /// A timestamp: RFC 3339 text (`2026-01-01T00:00:00Z`) or unix seconds.
    pub fn ts(&mut self, key: &str) -> Result<Option<prost_types::Timestamp>, CliError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|seconds| Some(prost_types::Timestamp { seconds, nanos: 0 }))
                .ok_or_else(|| bad(&self.path, key, "must be unix seconds or RFC 3339")),
            Some(Value::String(s)) => {
                let t = OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| {
                    bad(&self.path, key, &format!("not an RFC 3339 time ({s}): {e}"))
                })?;
                Ok(Some(prost_types::Timestamp {
                    seconds: t.unix_timestamp(),
                    nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
                }))
            }
            Some(_) => Err(bad(&self.path, key, "must be unix seconds or RFC 3339")),
        }
    }

    /// An enum by name (`PROFILE_APPROVAL`, or without the prefix: `APPROVAL`) or number.
    pub fn enumeration(
        &mut self,
        key: &str,
        prefix: &str,
        from_name: fn(&str) -> Option<i32>,
        valid: fn(i32) -> bool,
    ) -> Result<i32, CliError> {
        match self.take(key) {
            None => Ok(0),
            Some(Value::String(s)) => {
                let upper = s.to_ascii_uppercase();
                from_name(&upper)
                    .or_else(|| from_name(&format!("{prefix}{upper}")))
                    .ok_or_else(|| {
                        bad(
                            &self.path,
                            key,
                            &format!("{s:?} is not a value of {prefix}*"),
                        )
                    })
            }
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| valid(*n))
                .ok_or_else(|| bad(&self.path, key, &format!("not a value of {prefix}*"))),
            Some(_) => Err(bad(&self.path, key, "must be an enum name or number")),
        }
    }

    /// A nested message.
    pub fn obj(&mut self, key: &str) -> Result<Option<Obj>, CliError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: format!("{}{key}.", self.path),
            })),
            Some(_) => Err(bad(&self.path, key, "must be an object")),
        }
    }

    /// A list of nested messages.
    pub fn objs(&mut self, key: &str) -> Result<Vec<Obj>, CliError> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(map) => Ok(Obj {
                        map,
                        path: format!("{}{key}[{i}].", self.path),
                    }),
                    _ => Err(bad(&self.path, key, "must be a list of objects")),
                })
                .collect(),
            Some(_) => Err(bad(&self.path, key, "must be a list of objects")),
        }
    }

    /// Refuses any field that was not read.
    pub fn finish(self) -> Result<(), CliError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(CliError::Usage(format!(
                "unknown field {}{k}: not in the request message",
                self.path
            ))),
        }
    }
}

/// A timestamp as RFC 3339, or null.
pub fn ts_out(t: &Option<prost_types::Timestamp>) -> Value {
    t.as_ref()
        .and_then(|t| {
            OffsetDateTime::from_unix_timestamp(t.seconds)
                .ok()
                .and_then(|d| d.format(&Rfc3339).ok())
        })
        .map(Value::String)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kyso_proto::signer::v1::Profile;
    use serde_json::json;

    fn profile(o: &mut Obj) -> Result<i32, CliError> {
        o.enumeration(
            "profile",
            "PROFILE_",
            |s| Profile::from_str_name(s).map(|e| e as i32),
            |n| Profile::try_from(n).is_ok(),
        )
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let mut o = Obj::root(json!({"change": {"actor": "a", "why": "x"}})).unwrap();
        let mut c = o.obj("change").unwrap().unwrap();
        assert_eq!(c.str("actor").unwrap(), "a");
        let e = c.finish().unwrap_err().to_string();
        assert!(e.contains("change.why"), "{e}");
        o.finish().unwrap();
    }

    #[test]
    fn enums_by_full_name_short_name_or_number() {
        for v in [json!("PROFILE_APPROVAL"), json!("approval"), json!(1)] {
            let mut o = Obj::root(json!({ "profile": v })).unwrap();
            assert_eq!(profile(&mut o).unwrap(), Profile::Approval as i32);
        }
        for v in [json!("SEAL"), json!(99), json!(true)] {
            let mut o = Obj::root(json!({ "profile": v })).unwrap();
            assert!(profile(&mut o).is_err());
        }
    }

    #[test]
    fn timestamps_from_rfc3339_or_unix_seconds_and_back() {
        let mut o =
            Obj::root(json!({"a": "2026-01-02T03:04:05Z", "b": 1_767_323_045, "c": "soon"}))
                .unwrap();
        let a = o.ts("a").unwrap();
        assert_eq!(a, o.ts("b").unwrap());
        assert_eq!(ts_out(&a), json!("2026-01-02T03:04:05Z"));
        assert!(o.ts("c").is_err());
        assert_eq!(o.ts("absent").unwrap(), None);
    }

    #[test]
    fn wrong_types_are_refused_naming_the_field() {
        let mut o = Obj::root(json!({"name": 3, "limit": -1})).unwrap();
        assert!(o.str("name").unwrap_err().to_string().contains("name"));
        assert!(o.u32("limit").unwrap_err().to_string().contains("limit"));
        assert!(Obj::root(json!([1])).is_err());
    }
}

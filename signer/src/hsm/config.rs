//! The HSM configuration, in memory ([`HsmConfig`]) and as TOML ([`RawHsmConfig`]).
//!
//! ```toml
//! [retry]                      # optional
//! initial_backoff_ms = 200
//! max_backoff_ms = 30000
//!
//! [[modules]]
//! name = "netHSM"
//! path = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
//!
//! [[slots]]
//! name = "hsm-a"
//! module = "netHSM"
//! token_label = "kyso-a"
//! pin_file = "/run/secrets/pin-a"   # or pin_env = "KYSO_PIN_A"
//! sessions = 4                      # optional, default 4
//!
//! [[keys]]
//! name = "org-rsa"
//! id = "01a2"                       # CKA_ID in hex; and/or label = "org-rsa"
//! slots = ["hsm-a", "hsm-b"]        # an HA group: the same key in each slot
//! certificate = "org-rsa.pem"       # certificate or public key, PEM or DER
//! ```
//!
//! Relative paths are relative to the directory of the TOML file.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use der::{Decode, Encode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::HsmError;
use super::policy::RetryConfig;

/// Everything [`super::Hsm::open`] needs.
#[derive(Clone, Debug, Default)]
pub struct HsmConfig {
    /// PKCS#11 libraries; each is loaded once.
    pub modules: Vec<ModuleConfig>,
    /// Tokens (partitions) on those modules.
    pub slots: Vec<SlotConfig>,
    /// Signing keys, each in one or more slots.
    pub keys: Vec<KeyConfig>,
    /// Retry of failed slots.
    pub retry: RetryConfig,
}

/// A PKCS#11 library.
#[derive(Clone, Debug)]
pub struct ModuleConfig {
    /// Name the slots refer to.
    pub name: String,
    /// Path of the shared library.
    pub path: PathBuf,
}

/// A token (an HSM partition) and how to log in to it.
#[derive(Clone)]
pub struct SlotConfig {
    /// Name the keys refer to (and logs and metrics use).
    pub name: String,
    /// The module's [`ModuleConfig::name`].
    pub module: String,
    /// The token label (`CKA_LABEL` of the token, as `pkcs11:token=`).
    pub token_label: String,
    /// The user PIN. Never logged, never in `Debug`.
    pub pin: SecretString,
    /// Number of signing sessions (the slot's concurrency).
    pub sessions: usize,
}

impl fmt::Debug for SlotConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotConfig")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"[redacted]")
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// A private key and the public key it must match.
#[derive(Clone, Debug)]
pub struct KeyConfig {
    /// Name callers sign with.
    pub name: String,
    /// `CKA_ID` of the private key.
    pub id: Option<Vec<u8>>,
    /// `CKA_LABEL` of the private key.
    pub label: Option<String>,
    /// The slots holding the key (an HA group).
    pub slots: Vec<String>,
    /// DER SubjectPublicKeyInfo of the key's certificate: the HSM key must match it.
    pub spki_der: Vec<u8>,
}

impl HsmConfig {
    /// Reads and checks a TOML file (see the module documentation); all problems are reported
    /// at once.
    pub fn from_toml_file(path: &Path) -> Result<HsmConfig, HsmError> {
        RawHsmConfig::from_file(path)?.load(path.parent().unwrap_or(Path::new(".")))
    }

    /// Consistency checks: names unique, references resolve, keys have an id or label.
    pub fn validate(&self) -> Result<(), HsmError> {
        let problems = self.problems(true);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HsmError::Config(problems.join("; ")))
        }
    }

    fn problems(&self, check_spki: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        for m in &self.modules {
            if !names.insert(("module", m.name.as_str())) {
                problems.push(format!("module {:?} is defined twice", m.name));
            }
        }
        for s in &self.slots {
            if !names.insert(("slot", s.name.as_str())) {
                problems.push(format!("slot {:?} is defined twice", s.name));
            }
            if !self.modules.iter().any(|m| m.name == s.module) {
                problems.push(format!("slot {:?}: no module named {:?}", s.name, s.module));
            }
            if s.sessions == 0 {
                problems.push(format!("slot {:?}: sessions must be at least 1", s.name));
            }
            if s.token_label.is_empty() || s.token_label.len() > 32 {
                problems.push(format!(
                    "slot {:?}: a token label has 1 to 32 bytes",
                    s.name
                ));
            }
        }
        for k in &self.keys {
            if !names.insert(("key", k.name.as_str())) {
                problems.push(format!("key {:?} is defined twice", k.name));
            }
            if k.id.is_none() && k.label.is_none() {
                problems.push(format!("key {:?}: give an id or a label", k.name));
            }
            if k.slots.is_empty() {
                problems.push(format!("key {:?}: no slots", k.name));
            }
            for s in &k.slots {
                if !self.slots.iter().any(|c| &c.name == s) {
                    problems.push(format!("key {:?}: no slot named {s:?}", k.name));
                }
            }
            if !check_spki {
                continue;
            }
            if let Err(e) = SubjectPublicKeyInfoOwned::from_der(&k.spki_der) {
                problems.push(format!(
                    "key {:?}: the public key is not a SubjectPublicKeyInfo: {e}",
                    k.name
                ));
            }
        }
        if self.keys.is_empty() {
            problems.push("no keys configured".to_owned());
        }
        if self.retry.initial_backoff.is_zero()
            || self.retry.max_backoff < self.retry.initial_backoff
        {
            problems.push("retry: need 0 < initial_backoff <= max_backoff".to_owned());
        }
        problems
    }
}

/// The TOML form of [`HsmConfig`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHsmConfig {
    /// `[[modules]]`.
    #[serde(default)]
    pub modules: Vec<RawModule>,
    /// `[[slots]]`.
    #[serde(default)]
    pub slots: Vec<RawSlot>,
    /// `[[keys]]`.
    #[serde(default)]
    pub keys: Vec<RawKey>,
    /// `[retry]`.
    #[serde(default)]
    pub retry: Option<RawRetry>,
}

/// `[[modules]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawModule {
    pub name: String,
    pub path: PathBuf,
}

/// `[[slots]]`: the PIN comes from `pin_file` or `pin_env`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawSlot {
    pub name: String,
    pub module: String,
    pub token_label: String,
    pub pin_file: Option<PathBuf>,
    pub pin_env: Option<String>,
    pub sessions: Option<usize>,
}

/// `[[keys]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawKey {
    pub name: String,
    /// Hex.
    pub id: Option<String>,
    pub label: Option<String>,
    pub slots: Vec<String>,
    /// A certificate or a public key, PEM or DER.
    pub certificate: PathBuf,
}

/// `[retry]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawRetry {
    pub initial_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
}

/// Default number of sessions per slot.
pub const DEFAULT_SESSIONS: usize = 4;

impl RawHsmConfig {
    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<RawHsmConfig, HsmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HsmError::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| HsmError::Config(format!("{}: {e}", path.display())))
    }

    /// Reads the PINs and public keys (relative paths against `base`) and checks the result;
    /// reports every problem found, not just the first.
    pub fn load(self, base: &Path) -> Result<HsmConfig, HsmError> {
        let mut problems = Vec::new();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let modules = self
            .modules
            .into_iter()
            .map(|m| ModuleConfig {
                name: m.name,
                path: m.path,
            })
            .collect();
        let mut slots = Vec::new();
        for s in self.slots {
            let pin = match (&s.pin_file, &s.pin_env) {
                (Some(f), None) => match read_pin_file(&resolve(f)) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        problems.push(format!("slot {:?}: {e}", s.name));
                        None
                    }
                },
                (None, Some(v)) => match read_pin_env(v) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        problems.push(format!("slot {:?}: {e}", s.name));
                        None
                    }
                },
                _ => {
                    problems.push(format!(
                        "slot {:?}: give exactly one of pin_file and pin_env",
                        s.name
                    ));
                    None
                }
            };
            slots.push(SlotConfig {
                name: s.name,
                module: s.module,
                token_label: s.token_label,
                pin: pin.unwrap_or_else(|| SecretString::from(String::new())),
                sessions: s.sessions.unwrap_or(DEFAULT_SESSIONS),
            });
        }
        let mut keys = Vec::new();
        for k in self.keys {
            let id = match k.id.as_deref().map(parse_hex_id) {
                Some(Ok(id)) => Some(id),
                Some(Err(e)) => {
                    problems.push(format!("key {:?}: id: {e}", k.name));
                    None
                }
                None => None,
            };
            let path = resolve(&k.certificate);
            let spki_der = match std::fs::read(&path) {
                Ok(bytes) => match spki_from_cert_or_key(&bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(format!("key {:?}: {}: {e}", k.name, path.display()));
                        Vec::new()
                    }
                },
                Err(e) => {
                    problems.push(format!("key {:?}: {}: {e}", k.name, path.display()));
                    Vec::new()
                }
            };
            keys.push(KeyConfig {
                name: k.name,
                id,
                label: k.label,
                slots: k.slots,
                spki_der,
            });
        }
        let defaults = RetryConfig::default();
        let retry = match self.retry {
            Some(r) => RetryConfig {
                initial_backoff: r
                    .initial_backoff_ms
                    .map(Duration::from_millis)
                    .unwrap_or(defaults.initial_backoff),
                max_backoff: r
                    .max_backoff_ms
                    .map(Duration::from_millis)
                    .unwrap_or(defaults.max_backoff),
            },
            None => defaults,
        };
        let config = HsmConfig {
            modules,
            slots,
            keys,
            retry,
        };
        // The public keys were checked as they were read.
        problems.extend(config.problems(false));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(HsmError::Config(problems.join("; ")))
        }
    }
}

/// Parses a hex `CKA_ID` (`01a2`, `01:a2` and `0x01a2` are accepted).
pub fn parse_hex_id(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t.strip_prefix("0x").unwrap_or(t).replace(':', "");
    if t.is_empty() {
        return Err("empty".to_owned());
    }
    hex::decode(&t).map_err(|e| format!("{s:?} is not hex: {e}"))
}

/// Reads a PIN file: the first line, without the line end.
pub fn read_pin_file(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = SecretString::from(text);
    let line = text
        .expose_secret()
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!("{}: the PIN file is empty", path.display()));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// Reads a PIN from an environment variable.
pub fn read_pin_env(var: &str) -> Result<SecretString, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(format!("the environment variable {var} is not set")),
    }
}

/// The DER SubjectPublicKeyInfo of a certificate or public key, PEM (`CERTIFICATE`,
/// `PUBLIC KEY`) or DER.
pub fn spki_from_cert_or_key(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let der_bytes;
    let trimmed = bytes.trim_ascii_start();
    let input: &[u8] = if trimmed.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).map_err(|_| "not PEM or DER".to_owned())?;
        let (label, doc) =
            der::Document::from_pem(text.trim_start()).map_err(|e| format!("PEM: {e}"))?;
        if label != "CERTIFICATE" && label != "PUBLIC KEY" {
            return Err(format!(
                "PEM label {label:?}: want CERTIFICATE or PUBLIC KEY"
            ));
        }
        der_bytes = doc.as_bytes().to_vec();
        &der_bytes
    } else {
        bytes
    };
    if let Ok(cert) = Certificate::from_der(input) {
        return cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string());
    }
    SubjectPublicKeyInfoOwned::from_der(input)
        .map_err(|e| format!("neither a certificate nor a public key: {e}"))?;
    Ok(input.to_vec())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        assert_eq!(parse_hex_id("01a2"), Ok(vec![1, 0xa2]));
        assert_eq!(parse_hex_id("01:A2"), Ok(vec![1, 0xa2]));
        assert_eq!(parse_hex_id("0x01a2"), Ok(vec![1, 0xa2]));
        assert!(parse_hex_id("xyz").is_err());
        assert!(parse_hex_id("").is_err());
    }

    #[test]
    fn all_problems_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pin"), "1234\n").expect("pin");
        let toml = r#"
            [[modules]]
            name = "m"
            path = "/nonexistent.so"

            [[slots]]
            name = "a"
            module = "m"
            token_label = "t"
            pin_file = "pin"

            [[slots]]
            name = "b"
            module = "nomodule"
            token_label = "t"
            pin_env = "KYSO_TEST_SURELY_UNSET_PIN_VAR"
            sessions = 0

            [[keys]]
            name = "k"
            id = "zz"
            slots = ["a", "c"]
            certificate = "missing.pem"
        "#;
        let raw: RawHsmConfig = toml::from_str(toml).expect("parses");
        let err = raw.load(dir.path()).expect_err("invalid").to_string();
        for want in [
            "KYSO_TEST_SURELY_UNSET_PIN_VAR",
            "no module named \"nomodule\"",
            "sessions must be at least 1",
            "id: \"zz\" is not hex",
            "no slot named \"c\"",
            "missing.pem",
        ] {
            assert!(err.contains(want), "{want:?} missing from {err}");
        }
        assert!(!err.contains("1234"), "no PIN in errors");
    }

    #[test]
    fn pin_is_not_in_debug_output() {
        let s = SlotConfig {
            name: "a".into(),
            module: "m".into(),
            token_label: "t".into(),
            pin: SecretString::from("s3cret-pin".to_owned()),
            sessions: 1,
        };
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<RawHsmConfig>("[[modules]]\nname='m'\npath='x'\npin='1'\n");
        assert!(e.is_err());
    }
}

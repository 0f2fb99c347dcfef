//! Configuration: a TOML file, overridden by flags and environment variables.
//! Every problem is collected and reported at once, before anything binds or
//! any HSM module is loaded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_validation::config::TrustConfig;
use kyso_validation::verify::VerifierConfig;
use secrecy::SecretString;
use serde::Deserialize;

pub use kyso_server::TlsSection;

use crate::error::{Error, Result};
use crate::hsm;

/// The signer's configuration, as written in its TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address.
    pub metrics_listen: Option<SocketAddr>,
    /// How far a caller's requested signing time may be from the signer's clock, seconds.
    pub max_clock_skew_secs: u64,
    /// W5: how far the receipt time an exchange caller (`[[callers]] exchange = true`) gives
    /// to `ReceiveIncoming` may be from the signer's clock, seconds; further is refused.
    pub receipt_time_bound_secs: u64,
    /// Largest document accepted in `SignCms`, bytes.
    pub max_content_bytes: usize,
    /// Largest PDF accepted in `SignPdf`, bytes; the gRPC message limit is
    /// raised to fit it (with room for the images and the context).
    pub max_pdf_bytes: usize,
    /// Where the document flow keeps signed originals, by SHA-256 (D7, R1).
    pub documents_dir: PathBuf,
    /// The registry that answers `Authorize` before every signature.
    pub registry: RegistrySection,
    /// The audit log.
    pub audit: AuditSection,
    /// Trust material and revocation for the check of the signer's own
    /// certificates (N1): the verifier's trust keys (`trust_anchors`,
    /// `intermediates`, `legacy_sha1_roots`, `[trust.revocation]`, ...) and
    /// nothing else (a `listen` or `[trust.limits]` here is refused).
    pub trust: TrustConfig,
    /// How long a passed own-certificate check is reused, seconds.
    pub own_check_ttl_secs: u64,
    /// PKCS#11 modules (`[[modules]]`).
    pub modules: Vec<ModuleSection>,
    /// Token slots (`[[slots]]`).
    pub slots: Vec<SlotSection>,
    /// Keys with their certificates (`[[keys]]`).
    pub keys: Vec<KeySection>,
    /// Callers (mTLS client certificates) and the organisations they act for.
    pub callers: Vec<CallerSection>,
    /// Accept callers without a client certificate (plaintext dev clusters only).
    pub allow_anonymous: bool,
    /// With `allow_anonymous` (plaintext dev and test clusters only): organisation IDs for
    /// which an anonymous caller signs with personal keys WITHOUT the holder's one-time code,
    /// as `[[callers]] sign_on_behalf` does for a named caller (marked `on_behalf` in the
    /// audit log).
    pub anonymous_sign_on_behalf: Vec<String>,
    /// Holder consent for personal keys (A1, I5).
    pub consent: crate::consent::ConsentConfig,
    /// Request bounds.
    pub limits: Limits,
    /// TLS; absent means plaintext (only for loopback and tests).
    pub tls: Option<TlsSection>,
    /// The timestamp authority for B-T and above (N1); absent: B-B only.
    pub tsa: Option<crate::levels::TsaSection>,
    /// The level each profile signs at when a request names none.
    pub levels: crate::levels::LevelsSection,
}

/// `[registry]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// Deadline of one `Authorize` call, milliseconds.
    pub timeout_ms: u64,
    /// CA bundle for the registry's server certificate (https).
    pub ca: Option<PathBuf>,
    /// Client certificate and key for mTLS to the registry.
    pub cert: Option<PathBuf>,
    /// Client key, PEM.
    pub key: Option<PathBuf>,
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// The log file (JSON lines, hash-chained).
    pub path: PathBuf,
    /// No longer accepted: it named a `[[keys]]` entry, which callers may sign with, so a
    /// caller could forge a seal. Kept only to refuse it with the way out (`[audit.seal]`).
    pub seal_key: Option<String>,
    /// `[audit.seal]`: the audit-seal key, an HSM key of its own that no RPC signs with; none:
    /// the log is chained but neither sealed nor anchored.
    pub seal: Option<SealKeySection>,
    /// The name of this log in the registry's audit anchors, unique in the deployment and
    /// stable across restarts; default: `instance` (below).
    pub log_id: Option<String>,
    /// Refuse new signatures (and report not serving) once this many seals are not anchored
    /// in the registry.
    pub max_unanchored_seals: u64,
    /// At start, how long to keep asking an unreachable registry for the log's last anchor
    /// before refusing to start, seconds.
    pub anchor_startup_wait_secs: u64,
    /// Seal after this many records.
    pub seal_every_records: u64,
    /// Seal at least this often while records arrive, seconds.
    pub seal_every_secs: u64,
    /// Report the signatures of the log to the registry (R2) this often, seconds; 0: never.
    pub report_usage_every_secs: u64,
    /// Where the usage reporter keeps its place in the log; default: the log's path with
    /// `.usage` appended.
    pub usage_cursor: Option<PathBuf>,
    /// This signer's name in usage batch ids, unique in the deployment (a StatefulSet
    /// pod's name); default: the `HOSTNAME` environment variable, else `signer`.
    pub instance: Option<String>,
}

/// `[audit.seal]`: the key that seals the audit log. It is found in the HSM like a `[[keys]]`
/// entry, but it is not one: no RPC can name it, and the configuration refuses a seal key
/// that is also a callable key (same name, HSM label or id, certificate or public key), since
/// a caller signing the seal message with it would forge a seal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealKeySection {
    /// The name written in seal records (and used in logs and metrics).
    #[serde(default = "default_seal_name")]
    pub name: String,
    /// A certificate for its key (issued for its HSM-made CSR by the CA or by the operators'
    /// internal CA: it only names the key, it is not validated), PEM or DER; the key must
    /// match it.
    pub certificate: PathBuf,
    /// CKA_ID in hex.
    pub id: Option<String>,
    /// CKA_LABEL.
    pub label: Option<String>,
    /// Slots holding the key.
    pub slots: Vec<String>,
    /// `rsa-pkcs1` (default for RSA) or `ecdsa` (EC keys); seals are not made with RSA-PSS.
    pub scheme: Option<String>,
}

fn default_seal_name() -> String {
    "audit-seal".into()
}

/// `[[modules]]`: one PKCS#11 library.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSection {
    /// Name the slots refer to.
    pub name: String,
    /// The vendor's library (in tests: p11-kit-client.so).
    pub path: PathBuf,
}

/// `[[slots]]`: one token, chosen by label.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSection {
    /// Name the keys refer to.
    pub name: String,
    /// A `[[modules]]` name.
    pub module: String,
    /// CKA_LABEL of the token.
    pub token_label: String,
    /// File holding the user PIN (trailing newline ignored).
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// Sessions in this slot's pool: how many signatures it makes at once.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

fn default_sessions() -> usize {
    2
}

/// `[[keys]]`: a key in one or more slots (an HA group) and its certificate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    /// Name callers use.
    pub name: String,
    /// Certificate, PEM or DER; the key must match it.
    pub certificate: PathBuf,
    /// Issuer certificates to embed, PEM (issuer first).
    #[serde(default)]
    pub chain: Vec<PathBuf>,
    /// CKA_ID in hex.
    pub id: Option<String>,
    /// CKA_LABEL.
    pub label: Option<String>,
    /// Slots holding the key.
    pub slots: Vec<String>,
    /// `rsa-pkcs1` (default for RSA), `rsa-pss`, or `ecdsa` (EC keys).
    pub scheme: Option<String>,
}

/// `[[callers]]`: a client certificate and the organisations it may act for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSection {
    /// Name written in the audit log.
    pub name: String,
    /// SHA-256 of the client certificate, hex (colons allowed).
    pub fingerprint: String,
    /// Organisation IDs (registry) it may request signatures for; empty: any.
    #[serde(default)]
    pub organisations: Vec<String>,
    /// Organisation IDs for which this caller (a trusted document system) signs with the
    /// personal keys of their leaders WITHOUT the holder's one-time code (A1): the
    /// deployment's explicit choice, and every such signature is marked `on_behalf` in the
    /// audit log. Empty (the default): every personal signature needs the holder's consent.
    #[serde(default)]
    pub sign_on_behalf: Vec<String>,
    /// W5: the province's document exchange system. Its receipt time (`ReceiveIncoming`
    /// `received_at`) is used as the reference time when within `receipt_time_bound_secs` of
    /// the clock; any other caller's is only reported as claimed. Default: false.
    #[serde(default)]
    pub exchange: bool,
    /// R1, D7: the archive operator (`kyso ltv extend --store`): may list the stored
    /// originals of every organisation and extend them (`ListStored`, `ExtendStored`).
    /// Default: false; no other caller may.
    #[serde(default)]
    pub archive: bool,
}

/// `[limits]`.
pub type Limits = kyso_server::config::Limits<SignerDefaults>;

/// The signer's defaults of `[limits]`.
#[derive(Clone, Copy, Debug)]
pub struct SignerDefaults;

impl kyso_server::config::Defaults for SignerDefaults {
    const MAX_MESSAGE_BYTES: usize = 20 << 20;
    const MAX_CONCURRENT_REQUESTS: usize = 256;
    const REQUEST_TIMEOUT_MS: u64 = 30_000;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50063)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9463))),
            max_clock_skew_secs: 300,
            receipt_time_bound_secs: 300,
            max_content_bytes: 16 << 20,
            max_pdf_bytes: 32 << 20,
            documents_dir: PathBuf::from("kyso-documents"),
            registry: RegistrySection::default(),
            audit: AuditSection::default(),
            trust: TrustConfig::default(),
            own_check_ttl_secs: 300,
            modules: Vec::new(),
            slots: Vec::new(),
            keys: Vec::new(),
            callers: Vec::new(),
            allow_anonymous: false,
            anonymous_sign_on_behalf: Vec::new(),
            consent: crate::consent::ConsentConfig::default(),
            limits: Limits::default(),
            tls: None,
            tsa: None,
            levels: crate::levels::LevelsSection::default(),
        }
    }
}

impl Default for RegistrySection {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:50062".into(),
            timeout_ms: 2_000,
            ca: None,
            cert: None,
            key: None,
        }
    }
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            path: PathBuf::from("kyso-audit.log"),
            seal_key: None,
            seal: None,
            log_id: None,
            max_unanchored_seals: 3,
            anchor_startup_wait_secs: 30,
            seal_every_records: 1_000,
            seal_every_secs: 60,
            report_usage_every_secs: 60,
            usage_cursor: None,
            instance: None,
        }
    }
}

/// A key as the service uses it: certificate, chain and scheme, checked.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// Name callers use.
    pub name: String,
    /// The certificate, parsed.
    pub certificate: Cert,
    /// Issuer certificates, issuer first.
    pub chain: Vec<Cert>,
    /// What the HSM does.
    pub scheme: Scheme,
}

/// Signature scheme of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5: what most tools verify (DESIGN.md).
    RsaPkcs1,
    /// RSASSA-PSS, salt = hash length.
    RsaPss,
    /// ECDSA.
    Ecdsa,
}

impl Scheme {
    /// The HSM mechanism for a digest algorithm.
    pub fn mechanism(self, digest: DigestAlgorithm) -> hsm::SignMechanism {
        match self {
            Self::RsaPkcs1 => hsm::SignMechanism::RsaPkcs1(digest),
            Self::RsaPss => hsm::SignMechanism::RsaPss(digest),
            Self::Ecdsa => hsm::SignMechanism::Ecdsa,
        }
    }

    /// Name as reported (`rsa-pkcs1-sha256`).
    pub fn name(self, digest: DigestAlgorithm) -> String {
        let d = digest.name().to_ascii_lowercase().replace('-', "");
        match self {
            Self::RsaPkcs1 => format!("rsa-pkcs1-{d}"),
            Self::RsaPss => format!("rsa-pss-{d}"),
            Self::Ecdsa => format!("ecdsa-{d}"),
        }
    }
}

/// A caller, as the service matches it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Name for the audit log.
    pub name: String,
    /// Organisations it may act for; empty: any.
    pub organisations: Vec<String>,
    /// Organisations whose leaders' personal keys it uses without their one-time code.
    pub sign_on_behalf: Vec<String>,
    /// The document exchange system (W5): its receipt time is trusted within the bound.
    pub exchange: bool,
    /// The archive operator (R1, D7): lists and extends the stored originals.
    pub archive: bool,
}

impl Caller {
    /// Whether it may act for `organisation_id` (a caller with none listed acts for any).
    pub fn acts_for(&self, organisation_id: &str) -> bool {
        self.organisations.is_empty() || self.organisations.iter().any(|o| o == organisation_id)
    }
}

/// A configuration with its files read and checked.
#[derive(Debug)]
pub struct Loaded {
    /// For the own-certificate check.
    pub pki: VerifierConfig,
    /// TLS material, when configured.
    pub tls: Option<kyso_server::Tls>,
    /// The HSM layout, PINs read.
    pub hsm: hsm::HsmConfig,
    /// Keys by name.
    pub keys: Vec<KeySpec>,
    /// Callers by client-certificate fingerprint.
    pub callers: Vec<([u8; 32], Caller)>,
    /// Client TLS for the registry.
    pub registry_tls: Option<tonic::transport::ClientTlsConfig>,
    /// The audit-seal key (in `hsm` too, never in `keys`).
    pub seal: Option<KeySpec>,
    /// `[tsa]`, read.
    pub tsa: Option<crate::levels::LoadedTsa>,
    /// `[levels]`, read.
    pub levels: crate::levels::Levels,
}

impl Config {
    /// This signer's instance name (`audit.instance`, else `HOSTNAME`, else `signer`).
    pub fn audit_instance(&self) -> String {
        self.audit
            .instance
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "signer".to_owned())
    }

    /// The audit log's name in the registry's anchors (`audit.log_id`, else the instance).
    pub fn audit_log_id(&self) -> String {
        self.audit
            .log_id
            .as_ref()
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| self.audit_instance())
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        kyso_server::config::read_toml(path).map_err(|p| Error::Config(vec![p]))
    }

    /// Checks everything that can be checked without binding or loading a
    /// PKCS#11 module, reads PINs and certificates. All problems together.
    pub fn load(&self) -> Result<Loaded> {
        let mut problems = Vec::new();
        // The verifier's checks of the trust keys (anchors, pins, revocation)
        // apply unchanged.
        let pki = match self.trust.load() {
            Ok(pki) => Some(pki),
            Err(list) => {
                problems.extend(list.into_iter().map(|p| format!("trust.{p}")));
                None
            }
        };
        if !(self.registry.url.starts_with("http://") || self.registry.url.starts_with("https://"))
        {
            problems.push(format!(
                "registry.url: {:?} is not an http(s) URL",
                self.registry.url
            ));
        }
        if self.registry.timeout_ms == 0 {
            problems.push("registry.timeout_ms: must be above 0".into());
        }
        // W5: the exchange's clock may drift a little from ours, not by an hour: a wider
        // bound would let a backdated receipt judge a revoked signature as valid again.
        if self.receipt_time_bound_secs > 3600 {
            problems.push("receipt_time_bound_secs: at most 3600".into());
        }
        let registry_tls = self.registry_tls(&mut problems);
        if self.audit.path.as_os_str().is_empty() {
            problems.push("audit.path: must name a file".into());
        }
        if self.audit.seal_every_records == 0 {
            problems.push("audit.seal_every_records: must be above 0".into());
        }
        if let Some(k) = &self.audit.seal_key {
            problems.push(format!(
                "audit.seal_key: {k:?} names a [[keys]] entry, which callers may sign with, so \
                 a caller could forge a seal; give the audit-seal key its own HSM key in \
                 [audit.seal] (certificate, id or label, slots) instead"
            ));
        }
        if self.audit.max_unanchored_seals == 0 {
            problems.push("audit.max_unanchored_seals: must be above 0".into());
        }
        if let Some(id) = &self.audit.log_id
            && (id.trim().is_empty() || id.len() > 200 || id.chars().any(char::is_control))
        {
            problems.push(format!(
                "audit.log_id: {id:?} must be 1 to 200 bytes without control characters"
            ));
        }

        let mut modules = Vec::new();
        for (i, m) in self.modules.iter().enumerate() {
            if self.modules[..i].iter().any(|x| x.name == m.name) {
                problems.push(format!("modules[{i}].name: {:?} is used twice", m.name));
            }
            if !m.path.exists() {
                problems.push(format!(
                    "modules[{i}].path: {} does not exist",
                    m.path.display()
                ));
            }
            modules.push(hsm::ModuleConfig {
                name: m.name.clone(),
                path: m.path.clone(),
            });
        }
        let mut slots = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if self.slots[..i].iter().any(|x| x.name == s.name) {
                problems.push(format!("slots[{i}].name: {:?} is used twice", s.name));
            }
            if !self.modules.iter().any(|m| m.name == s.module) {
                problems.push(format!(
                    "slots[{i}].module: {:?} is not a [[modules]] name",
                    s.module
                ));
            }
            if s.sessions == 0 {
                problems.push(format!("slots[{i}].sessions: must be above 0"));
            }
            let pin = read_pin(s, i, &mut problems);
            slots.push(hsm::SlotConfig {
                name: s.name.clone(),
                module: s.module.clone(),
                token_label: s.token_label.clone(),
                pin: pin.unwrap_or_else(|| SecretString::from(String::new())),
                sessions: s.sessions.max(1),
            });
        }
        if self.keys.is_empty() {
            problems.push("keys: at least one [[keys]] entry is needed".into());
        }
        let mut keys = Vec::new();
        let mut hsm_keys = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|x| x.name == k.name) {
                problems.push(format!("keys[{i}].name: {:?} is used twice", k.name));
            }
            if k.slots.is_empty() {
                problems.push(format!("keys[{i}].slots: name at least one slot"));
            }
            for s in &k.slots {
                if !self.slots.iter().any(|x| &x.name == s) {
                    problems.push(format!("keys[{i}].slots: {s:?} is not a [[slots]] name"));
                }
            }
            if let Some((hsm_key, spec)) = load_key(&format!("keys[{i}]"), k, &mut problems) {
                hsm_keys.push(hsm_key);
                keys.push(spec);
            }
        }
        let seal = self.load_seal_key(&hsm_keys, &mut problems);
        if let Some((hsm_key, _)) = &seal {
            hsm_keys.push(hsm_key.clone());
        }

        let mut callers = Vec::new();
        for (i, c) in self.callers.iter().enumerate() {
            let clean: String = c
                .fingerprint
                .chars()
                .filter(|c| *c != ':' && !c.is_whitespace())
                .collect();
            match hex::decode(&clean)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
            {
                Some(fp) => callers.push((
                    fp,
                    Caller {
                        name: c.name.clone(),
                        organisations: c.organisations.clone(),
                        sign_on_behalf: c.sign_on_behalf.clone(),
                        exchange: c.exchange,
                        archive: c.archive,
                    },
                )),
                None => problems.push(format!(
                    "callers[{i}].fingerprint: {:?} is not a SHA-256 fingerprint in hex",
                    c.fingerprint
                )),
            }
        }
        for (i, c) in self.callers.iter().enumerate() {
            for o in &c.sign_on_behalf {
                if o.trim().is_empty() {
                    problems.push(format!(
                        "callers[{i}].sign_on_behalf: an empty organisation ID"
                    ));
                } else if !c.organisations.is_empty() && !c.organisations.contains(o) {
                    problems.push(format!(
                        "callers[{i}].sign_on_behalf: {o:?} is not one of its organisations"
                    ));
                }
            }
        }
        if !self.anonymous_sign_on_behalf.is_empty() && !self.allow_anonymous {
            problems.push(
                "anonymous_sign_on_behalf: only with allow_anonymous = true (dev clusters); name the caller in [[callers]] sign_on_behalf instead".into(),
            );
        }
        self.consent.check(&mut problems);
        self.limits.check(&mut problems);
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                if t.client_ca.is_none() && !self.allow_anonymous {
                    problems.push(
                        "tls.client_ca: callers are identified by client certificates; set it (or allow_anonymous = true)".into(),
                    );
                }
                t.load(&mut problems)
            }
        };
        if self.tls.is_none() && !self.allow_anonymous {
            problems.push(
                "tls: without TLS no caller can be identified; configure [tls] with client_ca, or allow_anonymous = true for a loopback dev cluster".into(),
            );
        }
        let (tsa, levels) = crate::levels::load(
            self.tsa.as_ref(),
            &self.levels,
            &self.trust.trust_anchors,
            &mut problems,
        );
        let (Some(pki), true) = (pki, problems.is_empty()) else {
            return Err(Error::Config(problems));
        };
        Ok(Loaded {
            pki,
            tls,
            hsm: hsm::HsmConfig {
                modules,
                slots,
                keys: hsm_keys,
                ..hsm::HsmConfig::default()
            },
            keys,
            callers,
            registry_tls,
            seal: seal.map(|(_, spec)| spec),
            tsa,
            levels,
        })
    }

    /// The audit-seal key, checked against every callable key: none may share its name, its
    /// HSM object (label or id) or its public key.
    fn load_seal_key(
        &self,
        callable: &[hsm::KeyConfig],
        problems: &mut Vec<String>,
    ) -> Option<(hsm::KeyConfig, KeySpec)> {
        let s = self.audit.seal.as_ref()?;
        for slot in &s.slots {
            if !self.slots.iter().any(|x| &x.name == slot) {
                problems.push(format!(
                    "audit.seal.slots: {slot:?} is not a [[slots]] name"
                ));
            }
        }
        if s.slots.is_empty() {
            problems.push("audit.seal.slots: name at least one slot".into());
        }
        if s.scheme.as_deref() == Some("rsa-pss") {
            problems.push(
                "audit.seal.scheme: seals are RSA PKCS#1 v1.5 or ECDSA (a PSS seal would need its parameters recorded)".into(),
            );
            return None;
        }
        let as_key = KeySection {
            name: s.name.clone(),
            certificate: s.certificate.clone(),
            chain: Vec::new(),
            id: s.id.clone(),
            label: s.label.clone(),
            slots: s.slots.clone(),
            scheme: s.scheme.clone(),
        };
        let loaded = load_key("audit.seal", &as_key, problems);
        let seal_id = parse_id("audit.seal", &s.id, &mut Vec::new());
        for (i, k) in self.keys.iter().enumerate() {
            if k.name == s.name {
                problems.push(format!(
                    "audit.seal.name: {:?} is also the name of keys[{i}], a key callers may sign with",
                    s.name
                ));
            }
            if s.label.is_some() && k.label == s.label {
                problems.push(format!(
                    "audit.seal.label: {:?} is also the HSM label of keys[{i}] ({:?}): the seal key must be an HSM object no caller can use",
                    s.label.as_deref().unwrap_or_default(),
                    k.name
                ));
            }
            let k_id = parse_id("", &k.id, &mut Vec::new());
            if seal_id.is_some() && k_id == seal_id {
                problems.push(format!(
                    "audit.seal.id: {:?} is also the HSM id of keys[{i}] ({:?}): the seal key must be an HSM object no caller can use",
                    s.id.as_deref().unwrap_or_default(),
                    k.name
                ));
            }
        }
        if let Some((seal_hsm, _)) = &loaded {
            for c in callable {
                if c.spki_der == seal_hsm.spki_der {
                    problems.push(format!(
                        "audit.seal.certificate: {} holds the public key of keys {:?}, a key callers may sign with: a caller could forge a seal",
                        s.certificate.display(),
                        c.name
                    ));
                }
            }
        }
        loaded
    }

    fn registry_tls(
        &self,
        problems: &mut Vec<String>,
    ) -> Option<tonic::transport::ClientTlsConfig> {
        let r = &self.registry;
        if !r.url.starts_with("https://") {
            if r.ca.is_some() || r.cert.is_some() {
                problems.push("registry: ca/cert/key are set but the URL is not https".into());
            }
            return None;
        }
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &r.ca {
            match std::fs::read(ca) {
                Ok(b) => tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(b)),
                Err(e) => problems.push(format!("registry.ca: {}: {e}", ca.display())),
            }
        }
        match (&r.cert, &r.key) {
            (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
                (Ok(c), Ok(k)) => tls = tls.identity(tonic::transport::Identity::from_pem(c, k)),
                (Err(e), _) => problems.push(format!("registry.cert: {}: {e}", c.display())),
                (_, Err(e)) => problems.push(format!("registry.key: {}: {e}", k.display())),
            },
            (None, None) => {}
            _ => problems.push("registry: give both cert and key for mTLS".into()),
        }
        Some(tls)
    }
}

fn parse_id(prefix: &str, id: &Option<String>, problems: &mut Vec<String>) -> Option<Vec<u8>> {
    match id {
        Some(h) => match hex::decode(h.replace(':', "")) {
            Ok(v) => Some(v),
            Err(_) => {
                problems.push(format!("{prefix}.id: {h:?} is not hex"));
                None
            }
        },
        None => None,
    }
}

/// One HSM key with its certificate, checked (`prefix` names it in problems).
fn load_key(
    prefix: &str,
    k: &KeySection,
    problems: &mut Vec<String>,
) -> Option<(hsm::KeyConfig, KeySpec)> {
    let i = prefix;
    let id = parse_id(prefix, &k.id, problems);
    if k.id.is_none() && k.label.is_none() {
        problems.push(format!(
            "{i}: give id or label to find the key in its slots"
        ));
    }
    let cert = match std::fs::read(&k.certificate) {
        Ok(b) => match Cert::parse_many(&b) {
            Ok(mut v) if !v.is_empty() => Some(v.remove(0)),
            Ok(_) => {
                problems.push(format!(
                    "{i}.certificate: {} holds no certificate",
                    k.certificate.display()
                ));
                None
            }
            Err(e) => {
                problems.push(format!("{i}.certificate: {}: {e}", k.certificate.display()));
                None
            }
        },
        Err(e) => {
            problems.push(format!("{i}.certificate: {}: {e}", k.certificate.display()));
            None
        }
    };
    let mut chain = Vec::new();
    for p in &k.chain {
        match std::fs::read(p)
            .map_err(|e| e.to_string())
            .and_then(|b| Cert::parse_many(&b).map_err(|e| e.to_string()))
        {
            Ok(c) => chain.extend(c),
            Err(e) => problems.push(format!("{i}.chain: {}: {e}", p.display())),
        }
    }
    let cert = cert?;
    let spki = &cert.x509().tbs_certificate.subject_public_key_info;
    let is_ec = spki.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
    let spki_der = match der::Encode::to_der(spki) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("{i}.certificate: public key: {e}"));
            return None;
        }
    };
    let scheme = match (k.scheme.as_deref(), is_ec) {
        (None, false) | (Some("rsa-pkcs1"), false) => Scheme::RsaPkcs1,
        (Some("rsa-pss"), false) => Scheme::RsaPss,
        (None, true) | (Some("ecdsa"), true) => Scheme::Ecdsa,
        (Some(other), _) => {
            problems.push(format!(
                        "{i}.scheme: {other:?} does not fit the certificate's {} key (rsa-pkcs1, rsa-pss for RSA; ecdsa for EC)",
                        if is_ec { "EC" } else { "RSA" }
                    ));
            return None;
        }
    };
    let hsm_key = hsm::KeyConfig {
        name: k.name.clone(),
        id,
        label: k.label.clone(),
        slots: k.slots.clone(),
        spki_der,
    };
    Some((
        hsm_key,
        KeySpec {
            name: k.name.clone(),
            certificate: cert,
            chain,
            scheme,
        },
    ))
}

fn read_pin(s: &SlotSection, i: usize, problems: &mut Vec<String>) -> Option<SecretString> {
    match (&s.pin_file, &s.pin_env) {
        (Some(f), None) => match std::fs::read_to_string(f) {
            Ok(t) => Some(SecretString::from(
                t.trim_end_matches(['\r', '\n']).to_owned(),
            )),
            Err(e) => {
                problems.push(format!("slots[{i}].pin_file: {}: {e}", f.display()));
                None
            }
        },
        (None, Some(v)) => match std::env::var(v) {
            Ok(t) => Some(SecretString::from(t)),
            Err(_) => {
                problems.push(format!("slots[{i}].pin_env: ${v} is not set"));
                None
            }
        },
        _ => {
            problems.push(format!(
                "slots[{i}]: give exactly one of pin_file and pin_env"
            ));
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn trust_section_takes_trust_keys_only() {
        let ok: Config = toml::from_str(
            "[trust]\ntrust_anchors = [\"/r.pem\"]\nlegacy_sha1_roots = []\n\
             [trust.revocation]\npolicy = \"soft-fail\"\n",
        )
        .unwrap();
        assert_eq!(ok.trust.trust_anchors.len(), 1);
        // The verifier service's own keys were once accepted here and ignored.
        for bad in [
            "[trust]\nlisten = \"127.0.0.1:1\"\n",
            "[trust]\nmetrics_listen = \"127.0.0.1:2\"\n",
            "[trust.limits]\nmax_message_bytes = 4096\n",
            "[trust.tls]\ncert = \"/c.pem\"\n",
        ] {
            let e = toml::from_str::<Config>(bad).expect_err(bad);
            assert!(e.to_string().contains("unknown field"), "{bad}: {e}");
        }
    }
}

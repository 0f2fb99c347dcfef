//! The HSM layer: organisation keys on PKCS#11 tokens (network HSM partitions), with session
//! pools, HA groups (the same key in several slots), failover and background recovery.
//!
//! - One [`cryptoki::context::Pkcs11`] per module per process (a new one only when a dead
//!   module must be finalised and initialised again, see below).
//! - Per slot: one long-lived logged-in session for the life of the connection (the login and
//!   the key handles live as long as one session is open), and a pool of up to
//!   [`SlotConfig::sessions`] signing sessions used from `spawn_blocking` (a `Session` is Send,
//!   not Sync); a semaphore bounds the slot's concurrency.
//! - Key handles are looked up once per connection, and each key is checked against its
//!   certificate's public key by a test signature (a mismatch is a loud error naming key and
//!   slot).
//! - [`Hsm::sign`] spreads requests over the healthy slots of the key's group (fewest in flight,
//!   ties round robin). A device or session error (`CKR_DEVICE_ERROR`, `CKR_DEVICE_REMOVED`,
//!   `CKR_SESSION_HANDLE_INVALID`, `CKR_TOKEN_NOT_PRESENT`, `CKR_GENERAL_ERROR`, ...) marks the
//!   slot down and the request is retried on another slot; when no slot is up, `sign` fails at
//!   once with [`HsmError::Unavailable`].
//! - A recovery thread retries down slots with exponential backoff: it closes the old sessions,
//!   reconnects (open session, log in, look the keys up again, check them), and when every slot
//!   of a module is down it finalises the module and initialises it again first. That is what
//!   `p11-kit-client.so` needs after its server died and came back: its RPC connection is made
//!   in `C_Initialize` and never re-established, and every `C_GetFunctionList` (a new
//!   `Pkcs11`) is a new client instance that reads `P11_KIT_SERVER_ADDRESS` again. Sessions of
//!   a finalised module are forgotten, not closed (their handle numbers may be reused).
//! - A wrong PIN (`CKR_PIN_INCORRECT`) or a locked PIN stops the retries of that slot: retrying
//!   would lock the token.

mod config;
mod mechanism;
mod policy;
mod token;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use der::Decode;
use spki::SubjectPublicKeyInfoOwned;
use tokio::sync::Semaphore;

pub use config::{
    DEFAULT_SESSIONS, HsmConfig, KeyConfig, ModuleConfig, RawHsmConfig, RawKey, RawModule,
    RawRetry, RawSlot, SlotConfig, parse_hex_id, read_pin_env, read_pin_file,
    spki_from_cert_or_key,
};
pub use mechanism::{SignMechanism, digest_info, digest_info_prefix, ecdsa_raw_to_der};
pub use policy::RetryConfig;
pub use token::{KeyAlgorithm, KeyInfo, KeyKind, KeySelector, Token};

use policy::{Backoff, Candidate, FailureKind, classify, pick_slot};
use token::{SignFailure, check_key_matches, find_private_key, find_slot, load_module, login, p11};

/// Errors of the HSM layer. PINs never appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// No key of that name is configured.
    #[error("unknown key {key:?}")]
    UnknownKey {
        /// The name asked for.
        key: String,
    },
    /// No healthy slot holds the key.
    #[error("key {key:?} is unavailable: {reason}")]
    Unavailable {
        /// The key.
        key: String,
        /// Why its slots are down.
        reason: String,
    },
    /// The digest does not have the length of the mechanism's hash.
    #[error("the digest has {got} bytes, the mechanism needs {expected}")]
    BadDigest {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The mechanism does not fit the key (RSA mechanism on an EC key, ...).
    #[error("key {key:?} cannot sign with {mechanism}: {reason}")]
    BadMechanism {
        /// The key.
        key: String,
        /// The mechanism asked for.
        mechanism: String,
        /// Why not.
        reason: String,
    },
    /// `CKR_PIN_INCORRECT`.
    #[error("slot {slot:?}: wrong PIN (CKR_PIN_INCORRECT)")]
    Pin {
        /// The slot (or token label).
        slot: String,
    },
    /// `CKR_PIN_LOCKED`.
    #[error("slot {slot:?}: the user PIN is locked (CKR_PIN_LOCKED)")]
    PinLocked {
        /// The slot (or token label).
        slot: String,
    },
    /// The HSM key is not the certificate's key.
    #[error(
        "key {key:?} in slot {slot:?} does not match the public key of its certificate: {reason}"
    )]
    KeyMismatch {
        /// The key.
        key: String,
        /// The slot.
        slot: String,
        /// What did not match.
        reason: String,
    },
    /// No private key with the configured id/label on the token.
    #[error("key {key:?} not found in slot {slot:?}")]
    KeyNotFound {
        /// The key.
        key: String,
        /// The slot.
        slot: String,
    },
    /// Key generation refused: the id or label is taken.
    #[error("slot {slot:?}: {what} already exists; choose another id and label")]
    KeyExists {
        /// The slot (or token label).
        slot: String,
        /// What exists.
        what: String,
    },
    /// The PKCS#11 library could not be loaded or initialised.
    #[error("module {module:?} ({}): {reason}", path.display())]
    Module {
        /// The module's name.
        module: String,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No token with the label.
    #[error("slot {slot:?}: no token labelled {label:?} (tokens present: {present:?})")]
    TokenNotFound {
        /// The slot (or token label).
        slot: String,
        /// The label looked for.
        label: String,
        /// Labels of the tokens that are present.
        present: Vec<String>,
    },
    /// The configuration is unusable (every problem, `; `-separated).
    #[error("HSM configuration: {0}")]
    Config(String),
    /// A PKCS#11 call failed.
    #[error("slot {slot:?}: {operation}: {reason}")]
    Pkcs11 {
        /// The slot (or token label).
        slot: String,
        /// The call.
        operation: String,
        /// The PKCS#11 error.
        reason: String,
    },
    /// A bug or a runtime failure (a panicked blocking task).
    #[error("internal: {0}")]
    Internal(String),
}

impl HsmError {
    /// Errors that a retry cannot fix by itself (configuration, PIN, wrong key).
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            HsmError::Pin { .. }
                | HsmError::PinLocked { .. }
                | HsmError::KeyMismatch { .. }
                | HsmError::KeyNotFound { .. }
                | HsmError::Config(_)
        )
    }

    /// Errors after which the slot must not be retried automatically.
    fn stops_retries(&self) -> bool {
        matches!(self, HsmError::Pin { .. } | HsmError::PinLocked { .. })
    }
}

/// What happened to one signing attempt on one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOutcome {
    /// Signed.
    Ok,
    /// A device or session error: the slot was marked down and the request moved on.
    Failover,
    /// The slot refused the request (not a device problem); the caller gets the error.
    Error,
}

impl SignOutcome {
    /// `ok`, `failover`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignOutcome::Ok => "ok",
            SignOutcome::Failover => "failover",
            SignOutcome::Error => "error",
        }
    }
}

/// One signing attempt on one slot, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct SignEvent<'a> {
    /// The key.
    pub key: &'a str,
    /// The slot.
    pub slot: &'a str,
    /// The mechanism.
    pub mechanism: SignMechanism,
    /// Time spent waiting for a free session of the slot.
    pub pool_wait: Duration,
    /// Time in the HSM (session open if needed, `C_Sign`).
    pub latency: Duration,
    /// How it ended.
    pub outcome: SignOutcome,
}

/// Receives every [`SignEvent`]; must be cheap (it runs on the request path).
pub type SignObserver = Arc<dyn Fn(&SignEvent<'_>) + Send + Sync>;

/// The health of one key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyHealth {
    /// The key.
    pub key: String,
    /// At least one slot is up.
    pub servable: bool,
    /// The slots of its group.
    pub slots: Vec<SlotHealth>,
}

/// The health of one slot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotHealth {
    /// The slot.
    pub slot: String,
    /// Connected, logged in, keys found.
    pub up: bool,
    /// Requests waiting for or holding a session.
    pub in_flight: usize,
    /// Pool size.
    pub sessions: usize,
    /// The last error (why it is down).
    pub last_error: Option<String>,
    /// How long it has been down.
    pub down_for_ms: Option<u64>,
    /// Failed reconnection attempts since it went down.
    pub reconnect_failures: u32,
    /// No more automatic retries (wrong or locked PIN).
    pub retries_stopped: bool,
    /// Times the slot went down since start.
    pub outages: u64,
}

struct ModuleRt {
    name: String,
    path: PathBuf,
    ctx: Mutex<Option<Pkcs11>>,
    /// Bumped on every finalise + initialise: sessions of older generations are dead.
    generation: AtomicU64,
}

struct KeyRt {
    name: String,
    selector: KeySelector,
    spki_der: Vec<u8>,
    spki: SubjectPublicKeyInfoOwned,
    kind: KeyKind,
    slots: Vec<usize>,
}

/// A live connection to a slot.
struct Conn {
    ctx: Pkcs11,
    module_generation: u64,
    slot: cryptoki::slot::Slot,
    /// Held for the life of the connection: keeps the login and the key handles valid.
    login: Session,
    idle: Vec<Session>,
    handles: HashMap<usize, ObjectHandle>,
}

struct SlotState {
    /// Bumped whenever the slot goes down or comes up; sessions remember theirs.
    epoch: u64,
    conn: Option<Conn>,
    /// A connection taken down, for the recovery thread to close.
    dead: Option<Conn>,
    last_error: Option<String>,
    down_since: Option<Instant>,
    backoff: Backoff,
    next_attempt: Instant,
    retries_stopped: bool,
    outages: u64,
}

struct SlotRt {
    name: String,
    module: usize,
    token_label: String,
    pin: secrecy::SecretString,
    sessions: usize,
    keys: Vec<usize>,
    permits: Arc<Semaphore>,
    in_flight: AtomicUsize,
    up: AtomicBool,
    state: Mutex<SlotState>,
}

struct Inner {
    modules: Vec<ModuleRt>,
    slots: Vec<SlotRt>,
    keys: Vec<KeyRt>,
    key_index: HashMap<String, usize>,
    observer: RwLock<Option<SignObserver>>,
    rr: AtomicUsize,
    /// PKCS#11 calls running in blocking tasks (possibly detached by a cancelled caller).
    active_calls: AtomicUsize,
    shutdown: Mutex<bool>,
    wake: Condvar,
}

/// Organisation keys on PKCS#11 slots. See the module documentation.
pub struct Hsm {
    inner: Arc<Inner>,
    recovery: Option<JoinHandle<()>>,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hsm")
            .field("keys", &self.key_names())
            .field(
                "slots",
                &self.inner.slots.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The result of one attempt on one slot.
enum Attempt {
    Signed(Vec<u8>),
    /// The slot is down or failed with a device error: try another.
    Failover(String),
    /// Give the caller this error.
    Fail(HsmError),
}

impl Hsm {
    /// Loads the modules, logs in to every slot, finds every key and checks it against its
    /// certificate, then starts the recovery thread. Blocking (call it before serving, or in
    /// `spawn_blocking`).
    ///
    /// Fails on configuration errors, a wrong PIN, a key missing from a reachable slot or not
    /// matching its certificate, an unloadable module, or when some key has no reachable slot
    /// at all. A slot that is only unreachable (device error, token absent) starts down and is
    /// retried in the background when its keys are served by another slot.
    pub fn open(config: HsmConfig) -> Result<Hsm, HsmError> {
        config.validate()?;
        let mut modules = Vec::new();
        for m in &config.modules {
            let ctx = load_module(&m.name, &m.path)?;
            modules.push(ModuleRt {
                name: m.name.clone(),
                path: m.path.clone(),
                ctx: Mutex::new(Some(ctx)),
                generation: AtomicU64::new(0),
            });
        }
        let mut keys = Vec::new();
        let mut key_index = HashMap::new();
        for (ki, k) in config.keys.iter().enumerate() {
            let spki = SubjectPublicKeyInfoOwned::from_der(&k.spki_der)
                .map_err(|e| HsmError::Config(format!("key {:?}: {e}", k.name)))?;
            let kind = KeyKind::of(&spki)
                .map_err(|e| HsmError::Config(format!("key {:?}: {e}", k.name)))?;
            let slots = k
                .slots
                .iter()
                .filter_map(|s| config.slots.iter().position(|c| &c.name == s))
                .collect();
            key_index.insert(k.name.clone(), ki);
            keys.push(KeyRt {
                name: k.name.clone(),
                selector: KeySelector {
                    id: k.id.clone(),
                    label: k.label.clone(),
                },
                spki_der: k.spki_der.clone(),
                spki,
                kind,
                slots,
            });
        }
        let now = Instant::now();
        let slots = config
            .slots
            .iter()
            .enumerate()
            .map(|(si, s)| SlotRt {
                name: s.name.clone(),
                module: config
                    .modules
                    .iter()
                    .position(|m| m.name == s.module)
                    .unwrap_or(0),
                token_label: s.token_label.clone(),
                pin: s.pin.clone(),
                sessions: s.sessions,
                keys: keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.slots.contains(&si))
                    .map(|(ki, _)| ki)
                    .collect(),
                permits: Arc::new(Semaphore::new(s.sessions)),
                in_flight: AtomicUsize::new(0),
                up: AtomicBool::new(false),
                state: Mutex::new(SlotState {
                    epoch: 0,
                    conn: None,
                    dead: None,
                    last_error: Some("not connected yet".to_owned()),
                    down_since: Some(now),
                    backoff: Backoff::new(config.retry),
                    next_attempt: now,
                    retries_stopped: false,
                    outages: 0,
                }),
            })
            .collect();
        let inner = Arc::new(Inner {
            modules,
            slots,
            keys,
            key_index,
            observer: RwLock::new(None),
            rr: AtomicUsize::new(0),
            active_calls: AtomicUsize::new(0),
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
        });
        let mut hsm = Hsm {
            inner: inner.clone(),
            recovery: None,
        };
        // Connect every slot; permanent problems fail the start.
        for si in 0..inner.slots.len() {
            if let Err(e) = inner.try_connect(si) {
                if e.is_permanent() {
                    return Err(e);
                }
                tracing::warn!(slot = %inner.slots[si].name, error = %e, "HSM slot unreachable at start; retrying in the background");
            }
        }
        for k in &inner.keys {
            if !inner.key_servable(k) {
                return Err(HsmError::Unavailable {
                    key: k.name.clone(),
                    reason: inner.down_reason(k),
                });
            }
        }
        let thread_inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name("kyso-hsm-recovery".to_owned())
            .spawn(move || thread_inner.recovery_loop())
            .map_err(|e| HsmError::Internal(format!("cannot start the recovery thread: {e}")))?;
        hsm.recovery = Some(handle);
        Ok(hsm)
    }

    /// Installs the observer of signing attempts (replaces any previous one).
    pub fn set_observer(&self, observer: SignObserver) {
        *self
            .inner
            .observer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(observer);
    }

    /// Signs a prehashed `digest` with `key`. RSA PKCS#1 v1.5 signs `DigestInfo(digest)`;
    /// PSS uses MGF1 with the same hash and a salt as long as the hash; ECDSA returns the DER
    /// `Ecdsa-Sig-Value`. Fails over to another slot of the key's group on device errors;
    /// fails at once with [`HsmError::Unavailable`] when no slot is up. Waiting for a free
    /// session is unbounded here: wrap the call in the caller's deadline.
    pub async fn sign(
        &self,
        key: &str,
        mechanism: SignMechanism,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let inner = &self.inner;
        let ki = *inner
            .key_index
            .get(key)
            .ok_or_else(|| HsmError::UnknownKey {
                key: key.to_owned(),
            })?;
        let k = &inner.keys[ki];
        if !k.kind.allows(mechanism) {
            return Err(HsmError::BadMechanism {
                key: key.to_owned(),
                mechanism: mechanism.name().to_owned(),
                reason: match k.kind {
                    KeyKind::Rsa { .. } => "it is an RSA key".to_owned(),
                    KeyKind::Ec { .. } => "it is an EC key".to_owned(),
                },
            });
        }
        mechanism.check_digest(digest)?;
        let mut tried = Vec::new();
        let mut reasons = Vec::new();
        loop {
            let candidates: Vec<Candidate> = k
                .slots
                .iter()
                .map(|&si| Candidate {
                    index: si,
                    up: inner.slots[si].up.load(Ordering::Acquire),
                    in_flight: inner.slots[si].in_flight.load(Ordering::Relaxed),
                })
                .collect();
            let rr = inner.rr.fetch_add(1, Ordering::Relaxed);
            let Some(si) = pick_slot(&candidates, &tried, rr) else {
                let mut reason = reasons.join("; ");
                if reason.is_empty() {
                    reason = inner.down_reason(k);
                }
                return Err(HsmError::Unavailable {
                    key: key.to_owned(),
                    reason,
                });
            };
            tried.push(si);
            match self.sign_on(si, ki, mechanism, digest).await {
                Attempt::Signed(sig) => return Ok(sig),
                Attempt::Failover(reason) => {
                    reasons.push(format!("slot {:?}: {reason}", inner.slots[si].name));
                }
                Attempt::Fail(e) => return Err(e),
            }
        }
    }

    async fn sign_on(
        &self,
        si: usize,
        ki: usize,
        mechanism: SignMechanism,
        digest: &[u8],
    ) -> Attempt {
        let inner = &self.inner;
        let slot = &inner.slots[si];
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&slot.in_flight);
        let wait_start = Instant::now();
        let Ok(permit) = slot.permits.clone().acquire_owned().await else {
            return Attempt::Failover("shutting down".to_owned());
        };
        let pool_wait = wait_start.elapsed();
        // Check a session out.
        let checkout = {
            let mut st = lock(&slot.state);
            let epoch = st.epoch;
            match st.conn.as_mut() {
                None => Err(st.last_error.clone().unwrap_or_else(|| "down".to_owned())),
                Some(conn) => match conn.handles.get(&ki) {
                    None => Err("the key is not in this slot".to_owned()),
                    Some(&handle) => Ok((
                        epoch,
                        conn.ctx.clone(),
                        conn.slot,
                        conn.module_generation,
                        handle,
                        conn.idle.pop(),
                    )),
                },
            }
        };
        let (epoch, ctx, slot_id, generation, handle, session) = match checkout {
            Ok(c) => c,
            Err(reason) => return Attempt::Failover(reason),
        };
        let kind = inner.keys[ki].kind;
        let digest = digest.to_vec();
        let task_inner = inner.clone();
        inner.active_calls.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let inner = task_inner;
            let _active = ActiveCall(&inner.active_calls);
            let session = match session {
                Some(s) => s,
                None => match ctx.open_ro_session(slot_id) {
                    Ok(s) => s,
                    Err(e) => {
                        let reason = format!("C_OpenSession: {e}");
                        return match classify(&e) {
                            FailureKind::Device => {
                                inner.mark_down(si, epoch, &reason);
                                (Attempt::Failover(reason), SignOutcome::Failover)
                            }
                            FailureKind::Request => (
                                Attempt::Fail(p11(&inner.slots[si].name, "C_OpenSession", &e)),
                                SignOutcome::Error,
                            ),
                        };
                    }
                },
            };
            match token::sign_digest(&session, handle, kind, mechanism, &digest) {
                Ok(sig) => {
                    inner.return_session(si, epoch, generation, session);
                    (Attempt::Signed(sig), SignOutcome::Ok)
                }
                Err(SignFailure::P11(e)) if classify(&e) == FailureKind::Device => {
                    let reason = format!("C_Sign: {e}");
                    inner.mark_down(si, epoch, &reason);
                    inner.return_session(si, epoch, generation, session);
                    (Attempt::Failover(reason), SignOutcome::Failover)
                }
                Err(e) => {
                    inner.return_session(si, epoch, generation, session);
                    (
                        Attempt::Fail(HsmError::Pkcs11 {
                            slot: inner.slots[si].name.clone(),
                            operation: "C_Sign".to_owned(),
                            reason: e.to_string(),
                        }),
                        SignOutcome::Error,
                    )
                }
            }
        })
        .await;
        let latency = started.elapsed();
        let (attempt, outcome) = match joined {
            Ok(r) => r,
            Err(e) => (
                Attempt::Fail(HsmError::Internal(format!("signing task: {e}"))),
                SignOutcome::Error,
            ),
        };
        let observer = inner
            .observer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(obs) = observer {
            obs(&SignEvent {
                key: &inner.keys[ki].name,
                slot: &slot.name,
                mechanism,
                pool_wait,
                latency,
                outcome,
            });
        }
        attempt
    }

    /// Per key: its slots, up or down, and why.
    pub fn health(&self) -> Vec<KeyHealth> {
        self.inner
            .keys
            .iter()
            .map(|k| {
                let slots: Vec<SlotHealth> = k
                    .slots
                    .iter()
                    .map(|&si| self.inner.slot_health(si))
                    .collect();
                KeyHealth {
                    key: k.name.clone(),
                    servable: slots.iter().any(|s| s.up),
                    slots,
                }
            })
            .collect()
    }

    /// Every slot's health.
    pub fn slot_health(&self) -> Vec<SlotHealth> {
        (0..self.inner.slots.len())
            .map(|si| self.inner.slot_health(si))
            .collect()
    }

    /// Whether some slot holding `key` is up.
    pub fn key_servable(&self, key: &str) -> bool {
        self.inner
            .key_index
            .get(key)
            .is_some_and(|&ki| self.inner.key_servable(&self.inner.keys[ki]))
    }

    /// The configured key names.
    pub fn key_names(&self) -> Vec<String> {
        self.inner.keys.iter().map(|k| k.name.clone()).collect()
    }

    /// The DER SubjectPublicKeyInfo of `key` (its certificate's).
    pub fn spki(&self, key: &str) -> Option<&[u8]> {
        self.inner
            .key_index
            .get(key)
            .map(|&ki| self.inner.keys[ki].spki_der.as_slice())
    }

    /// The kind of `key` (RSA size, EC curve).
    pub fn key_kind(&self, key: &str) -> Option<KeyKind> {
        self.inner
            .key_index
            .get(key)
            .map(|&ki| self.inner.keys[ki].kind)
    }

    /// Stops the recovery thread, waits (up to 5 s) for PKCS#11 calls still running, closes
    /// every session and finalises the modules. Dropping the `Hsm` does the same.
    pub async fn shutdown(mut self) {
        let inner = self.inner.clone();
        let recovery = self.recovery.take();
        // Drop runs again on `self` but finds nothing left to do.
        let _ = tokio::task::spawn_blocking(move || inner.close(recovery)).await;
    }
}

impl Drop for Hsm {
    fn drop(&mut self) {
        let recovery = self.recovery.take();
        self.inner.close(recovery);
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct ActiveCall<'a>(&'a AtomicUsize);

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    fn key_servable(&self, k: &KeyRt) -> bool {
        k.slots
            .iter()
            .any(|&si| self.slots[si].up.load(Ordering::Acquire))
    }

    fn down_reason(&self, k: &KeyRt) -> String {
        let parts: Vec<String> = k
            .slots
            .iter()
            .map(|&si| {
                let st = lock(&self.slots[si].state);
                format!(
                    "slot {:?}: {}",
                    self.slots[si].name,
                    st.last_error.as_deref().unwrap_or("busy")
                )
            })
            .collect();
        parts.join("; ")
    }

    fn slot_health(&self, si: usize) -> SlotHealth {
        let slot = &self.slots[si];
        let st = lock(&slot.state);
        let up = st.conn.is_some();
        SlotHealth {
            slot: slot.name.clone(),
            up,
            in_flight: slot.in_flight.load(Ordering::Relaxed),
            sessions: slot.sessions,
            last_error: if up { None } else { st.last_error.clone() },
            down_for_ms: st
                .down_since
                .filter(|_| !up)
                .map(|t| t.elapsed().as_millis() as u64),
            reconnect_failures: st.backoff.failures(),
            retries_stopped: st.retries_stopped,
            outages: st.outages,
        }
    }

    /// Puts a session back in its slot's pool, or disposes of it if the slot reconnected since.
    fn return_session(&self, si: usize, epoch: u64, generation: u64, session: Session) {
        let slot = &self.slots[si];
        let leftover = {
            let mut st = lock(&slot.state);
            let current = st.epoch == epoch;
            match st.conn.as_mut() {
                Some(conn) if current => {
                    conn.idle.push(session);
                    None
                }
                _ => Some(session),
            }
        };
        if let Some(s) = leftover {
            self.dispose_session(slot.module, generation, s);
        }
    }

    /// Closes a session, unless its module was finalised since it was opened: then its handle
    /// may belong to a new session, and it is forgotten instead.
    fn dispose_session(&self, module: usize, generation: u64, session: Session) {
        if self.modules[module].generation.load(Ordering::Acquire) == generation {
            drop(session);
        } else {
            std::mem::forget(session);
        }
    }

    fn dispose_conn(&self, module: usize, conn: Conn) {
        let Conn {
            login,
            idle,
            module_generation,
            ..
        } = conn;
        // When the device or the connection is gone, closing would only fail (noisily): the
        // sessions died with it.
        let gone = match login.get_session_info() {
            Ok(_) => false,
            Err(e) => classify(&e) == FailureKind::Device,
        };
        if gone {
            for s in idle {
                std::mem::forget(s);
            }
            std::mem::forget(login);
            return;
        }
        for s in idle {
            self.dispose_session(module, module_generation, s);
        }
        // The login session last: closing it logs the token out.
        self.dispose_session(module, module_generation, login);
    }

    /// Marks the slot down (if it is still at `epoch`) and wakes the recovery thread.
    fn mark_down(&self, si: usize, epoch: u64, reason: &str) {
        let slot = &self.slots[si];
        {
            let mut st = lock(&slot.state);
            if st.epoch != epoch || st.conn.is_none() {
                return;
            }
            let conn = st.conn.take();
            st.dead = conn;
            st.epoch += 1;
            st.last_error = Some(reason.to_owned());
            st.down_since = Some(Instant::now());
            st.outages += 1;
            st.backoff.reset();
            st.next_attempt = Instant::now();
            slot.up.store(false, Ordering::Release);
        }
        tracing::error!(slot = %slot.name, error = %reason, "HSM slot down; failing over and retrying in the background");
        self.wake.notify_all();
    }

    /// Connects slot `si` with its module's current context.
    fn try_connect(&self, si: usize) -> Result<(), HsmError> {
        let slot = &self.slots[si];
        let module = &self.modules[slot.module];
        let (ctx, generation) = {
            let guard = lock(&module.ctx);
            (guard.clone(), module.generation.load(Ordering::Acquire))
        };
        let Some(ctx) = ctx else {
            return Err(HsmError::Module {
                module: module.name.clone(),
                path: module.path.clone(),
                reason: "not initialised".to_owned(),
            });
        };
        let conn = self.connect(si, ctx, generation)?;
        {
            let mut st = lock(&slot.state);
            st.conn = Some(conn);
            st.epoch += 1;
            st.last_error = None;
            st.down_since = None;
            st.backoff.reset();
            slot.up.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn connect(&self, si: usize, ctx: Pkcs11, generation: u64) -> Result<Conn, HsmError> {
        let slot = &self.slots[si];
        let slot_id = find_slot(&ctx, &slot.name, &slot.token_label)?;
        let session = ctx
            .open_ro_session(slot_id)
            .map_err(|e| p11(&slot.name, "C_OpenSession", &e))?;
        login(&session, &slot.pin, &slot.name)?;
        let mut handles = HashMap::new();
        for &ki in &slot.keys {
            let k = &self.keys[ki];
            let h = find_private_key(&session, &k.selector, &k.name, &slot.name)?;
            check_key_matches(&session, h, k.kind, &k.spki).map_err(|reason| {
                HsmError::KeyMismatch {
                    key: k.name.clone(),
                    slot: slot.name.clone(),
                    reason,
                }
            })?;
            handles.insert(ki, h);
        }
        tracing::info!(slot = %slot.name, token = %slot.token_label, keys = handles.len(), "HSM slot up");
        Ok(Conn {
            ctx,
            module_generation: generation,
            slot: slot_id,
            login: session,
            idle: Vec::new(),
            handles,
        })
    }

    /// Finalises the module and initialises it again (a new client instance for p11-kit).
    fn reinit_module(&self, mi: usize) -> Result<(), HsmError> {
        let module = &self.modules[mi];
        let mut guard = lock(&module.ctx);
        module.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = guard.take()
            && let Err(e) = old.finalize()
        {
            tracing::debug!(module = %module.name, error = %e, "C_Finalize of a failed module");
        }
        let ctx = load_module(&module.name, &module.path)?;
        *guard = Some(ctx);
        tracing::info!(module = %module.name, "PKCS#11 module initialised again");
        Ok(())
    }

    /// One recovery attempt of a down slot.
    fn recover(&self, si: usize) {
        let slot = &self.slots[si];
        let dead = lock(&slot.state).dead.take();
        if let Some(conn) = dead {
            self.dispose_conn(slot.module, conn);
        }
        let mut result = self.try_connect(si);
        if result.is_err() {
            let module_down = self
                .slots
                .iter()
                .filter(|s| s.module == slot.module)
                .all(|s| !s.up.load(Ordering::Acquire));
            if module_down {
                result = self
                    .reinit_module(slot.module)
                    .and_then(|()| self.try_connect(si));
            }
        }
        match result {
            Ok(()) => {
                tracing::warn!(slot = %slot.name, "HSM slot recovered");
            }
            Err(e) => {
                let mut st = lock(&slot.state);
                let delay = st.backoff.next_delay();
                st.next_attempt = Instant::now() + delay;
                st.last_error = Some(e.to_string());
                if e.stops_retries() {
                    st.retries_stopped = true;
                    tracing::error!(slot = %slot.name, error = %e, "HSM slot: no more retries (fix the PIN and restart)");
                } else {
                    tracing::warn!(slot = %slot.name, error = %e, retry_in_ms = delay.as_millis() as u64, "HSM slot still down");
                }
            }
        }
    }

    fn recovery_loop(&self) {
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            let mut next: Option<Instant> = None;
            for (si, slot) in self.slots.iter().enumerate() {
                if slot.up.load(Ordering::Acquire) {
                    continue;
                }
                let st = lock(&slot.state);
                if st.retries_stopped || st.conn.is_some() {
                    continue;
                }
                if st.next_attempt <= now {
                    due.push(si);
                } else {
                    next = Some(next.map_or(st.next_attempt, |n| n.min(st.next_attempt)));
                }
            }
            if !due.is_empty() {
                for si in due {
                    if *lock(&self.shutdown) {
                        return;
                    }
                    self.recover(si);
                }
                // The attempts moved the deadlines: look again.
                continue;
            }
            let guard = lock(&self.shutdown);
            if *guard {
                return;
            }
            let wait = next
                .map(|n| n.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            let (guard, _) = self
                .wake
                .wait_timeout(guard, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *guard {
                return;
            }
        }
    }

    fn close(&self, recovery: Option<JoinHandle<()>>) {
        {
            let mut guard = lock(&self.shutdown);
            if *guard && recovery.is_none() {
                return;
            }
            *guard = true;
        }
        self.wake.notify_all();
        if let Some(h) = recovery {
            let _ = h.join();
        }
        for slot in &self.slots {
            slot.permits.close();
            slot.up.store(false, Ordering::Release);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.active_calls.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let idle = self.active_calls.load(Ordering::Acquire) == 0;
        for slot in &self.slots {
            let (conn, dead) = {
                let mut st = lock(&slot.state);
                st.epoch += 1;
                st.last_error = Some("shut down".to_owned());
                (st.conn.take(), st.dead.take())
            };
            for c in [conn, dead].into_iter().flatten() {
                self.dispose_conn(slot.module, c);
            }
        }
        if idle {
            for m in &self.modules {
                m.generation.fetch_add(1, Ordering::AcqRel);
                if let Some(ctx) = lock(&m.ctx).take() {
                    let _ = ctx.finalize();
                }
            }
        }
    }
}

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
//!
//! Here: the runtime state (modules, keys, slots and their connections), [`Hsm::open`] and
//! the key lookups. The concerns have modules of their own: `sign` (the HA group: slot
//! choice, session checkout, failover), `connection` (a slot's connection, its key binding and
//! its session pool), `recovery` (down slots retried, module re-initialised, shutdown),
//! `health` (what is up and why not), `error`; below them `config`, `mechanism`, `policy`
//! (slot choice and backoff, pure) and `token` (the PKCS#11 calls).

mod config;
mod connection;
mod credential;
mod error;
mod health;
mod mechanism;
pub mod otp;
mod policy;
mod recovery;
mod sign;
mod token;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

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

pub use error::HsmError;
pub use health::{KeyHealth, SlotHealth};
pub use sign::{SignEvent, SignObserver, SignOutcome};

use policy::Backoff;
use token::load_module;

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

impl Inner {
    /// The index and state of a configured key; an unknown name is refused.
    fn key(&self, key: &str) -> Result<(usize, &KeyRt), HsmError> {
        let ki = *self
            .key_index
            .get(key)
            .ok_or_else(|| HsmError::UnknownKey {
                key: key.to_owned(),
            })?;
        Ok((ki, &self.keys[ki]))
    }
}

impl Drop for Hsm {
    fn drop(&mut self) {
        let recovery = self.recovery.take();
        self.inner.close(recovery);
    }
}

//! The HSM layer's errors, and which of them a retry cannot fix (configuration, PIN, wrong
//! key) or must not try (a wrong or locked PIN: retrying would lock the token).

use std::path::PathBuf;

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
    pub(super) fn is_permanent(&self) -> bool {
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
    pub(super) fn stops_retries(&self) -> bool {
        matches!(self, HsmError::Pin { .. } | HsmError::PinLocked { .. })
    }
}

//! The signer's tamper-evident audit log.
//!
//! Every signature and every refusal is appended, before the signature is
//! returned, to a hash-chained log of JSON lines. Every N records (and when
//! the signer asks, e.g. every T seconds and at clean shutdown) a *seal*
//! record is appended: a signature over the chain head made with an HSM key,
//! so that rewriting the whole chain needs that key.
//!
//! * [`AuditLog`] writes: [`AuditLog::open`] verifies the existing file and
//!   recovers the head, [`AuditLog::append`] returns an [`AuditReceipt`] only
//!   once the record is on disk (write + `fdatasync`, group commit by a single
//!   writer task), [`AuditLog::seal`] and [`AuditLog::close`] seal.
//! * [`verify_log`] checks a log file (streamed line by line), with the seal
//!   public keys ([`SealKey`]) if given, and reports the first problem.
//! * [`Sealer`] is what the signer implements with its HSM.
//!
//! # Record format (version 2; version 1 still read)
//!
//! The file is UTF-8 text, one record per line, every line ending in `\n`.
//! A record is a JSON object whose members appear in exactly this order,
//! without any whitespace outside strings:
//!
//! ```text
//! {"v":2,"seq":S,"prev":P,"time":T,"entry":{…},"hash":H}
//! {"v":2,"seq":S,"prev":P,"time":T,"seal":{…},"hash":H}
//! ```
//!
//! * `v`: the format version: `2` in every record written now; `1` in records
//!   written before holder consent existed, which verify unchanged (a log may
//!   hold both: version 1 records, then version 2). The only differences: a
//!   version 2 entry ends with `factor`, and may have the decision
//!   `authorised`; a version 1 entry has neither.
//! * `seq`: `1` for the first record of the file, then one more for every
//!   record, entries and seals alike.
//! * `prev`: the `hash` of the previous record; 64 zeros for `seq` 1.
//! * `time`: RFC 3339 in UTC with a `Z` suffix (given by the signer; fractional
//!   seconds only when not zero).
//! * `hash`: see *Hash rule* below.
//! * `entry` (a signature, a refusal or a failure), members in this order:
//!   * `caller`: the mTLS client identity;
//!   * `key`: the signer key name;
//!   * `cert_sha256`: SHA-256 of the key's certificate (DER), or `""` when
//!     the request was refused before a key was resolved;
//!   * `digest_alg`: `sha256`, `sha384`, `sha512`; `digest`: the document
//!     digest (empty when none was computed);
//!   * `acting_person_id`, `organisation_id`, `document_type`,
//!     `number_and_symbol`, `profile`, `mode` (the proto enum names, e.g.
//!     `PROFILE_ISSUE`, `SIGNING_MODE_KT`);
//!   * `decision`: `signed`, `refused`, `failed`, `not_returned` (the HSM
//!     signed but the CMS/PDF could not be built) or, version 2 only,
//!     `authorised` (AuthorizeSignature: the holder's one-time code accepted
//!     for these digests, an activation token issued; `digest_alg` is then
//!     `sha256` for one digest or `sha256xN` for a batch of N, and `digest` the
//!     N digests one after another), or `evidence` (N3, D7: the verification
//!     of a received document kept in the document store; no key: `key` and
//!     `cert_sha256` are `""`, `digest_alg` is `sha256` and `digest` the SHA-256
//!     of the kept report, `reason` names the documents it is about);
//!   * `rules`: the rule IDs that refused (an array of strings, empty unless
//!     `refused`); `reason`: free text (empty when `signed`);
//!   * `factor` (version 2 only, always present): what made a personal
//!     signature the holder's (A1): `totp` (the holder's one-time code, through
//!     an activation token), `on_behalf` (the caller signs on behalf of the
//!     organisation's leaders, as the signer's config allows for that
//!     organisation), or `""` (an organisation key, or refused before consent).
//! * `seal`, members in this order:
//!   * `through`: the `seq` of the last record sealed (always `seq − 1`);
//!   * `head`: the `hash` of that record (always equal to `prev`);
//!   * `alg`, `alg_oid`: the signature algorithm, name and dotted OID
//!     (`sha256WithRSAEncryption` `1.2.840.113549.1.1.11`,
//!     `ecdsa-with-SHA256` `1.2.840.10045.4.3.2`, …);
//!   * `key`: the HSM key name; `cert_sha256`: SHA-256 of its certificate, or
//!     `""`;
//!   * `sig`: the signature (for ECDSA the DER `Ecdsa-Sig-Value`).
//!
//! All hashes, digests and signatures are lowercase hex. Strings are written
//! as `serde_json` writes them: `"` and `\` escaped with a backslash, control
//! characters as `\b \f \n \r \t` or `\u00XX` (lowercase hex), everything
//! else (non-ASCII included) as literal UTF-8; `/` is not escaped. Integers
//! are plain decimal.
//!
//! ## Hash rule
//!
//! A record's `hash` is the SHA-256 of its canonical serialisation *without
//! the `hash` member*. Since `hash` is always the last member, this is: take
//! the line without its `\n`, drop its last 75 bytes
//! (`,"hash":"` + 64 hex digits + `"}`), append `}`, and hash the bytes.
//! The verifier also re-serialises every record it parses and requires the
//! line to be byte-for-byte canonical, so a record has exactly one encoding.
//!
//! ## Seal signature
//!
//! The HSM signs the ASCII string `kyso-audit-seal-v1:<through>:<head>`
//! (decimal `through`, hex `head`; no newline) with the algorithm named in
//! the record ([`seal_message`]). With OpenSSL:
//!
//! ```text
//! printf 'kyso-audit-seal-v1:%s:%s' "$through" "$head" > msg
//! echo -n "$sig" | xxd -r -p > sig.bin
//! openssl dgst -sha256 -verify seal-pub.pem -signature sig.bin msg
//! ```
//!
//! # What the verifier checks, line by line
//!
//! 1. the line ends with `\n` and parses as a record (otherwise, on the last
//!    line, a *torn tail*: a crash mid-write, never acknowledged);
//! 2. it is canonical and its `hash` matches its content (*edited record*);
//! 3. its `seq` is the previous one plus one (a higher `seq` is a *removed
//!    record*, or a *reordered record* when the missing one appears later; a
//!    lower `seq` is a *reordered record*);
//! 4. its `prev` is the previous record's `hash` (*chain broken*: a record
//!    before it was replaced);
//! 5. its fields are well-formed (*malformed*);
//! 6. for a seal, `through`/`head` name the previous record and, when keys
//!    are given, the signature verifies with one of them (*bad seal*).
//!
//! The first problem stops the check (a gap is classified by looking ahead
//! for the missing `seq`); its 1-based line number is reported.
//!
//! [`AuditLog::open`] runs the same checks (without seal signatures): a torn
//! last line is cut away with a warning (it was never acknowledged, since
//! `append` answers only after the fsync), any other problem refuses to
//! open. An exclusive lock (`flock`) keeps a second writer out.
//!
//! Records after the last seal are reported as a warning (*unsealed tail*),
//! not an error. Removing records from the very end of the file cannot be
//! detected from the file alone: the signer records the head after every seal
//! in the registry (an *anchor*: the seal record's `seq` and `hash`, see
//! `crate::anchor`), and [`check_anchors`] finds a file that does not hold an
//! anchored head (cut back, deleted, an older copy restored).
//!
//! The seal key is the audit-seal key alone: a key no RPC can name (the
//! configuration refuses one that overlaps a callable key), so no caller can
//! have the seal message signed.

mod anchor;
mod log;
mod record;
mod seal;
mod verify;

pub use anchor::{Anchor, AnchorMismatch, AnchorMismatchKind, SealedHead, check_anchors};
pub use log::{AuditConfig, AuditLog, AuditReceipt, OpenInfo};
pub use record::{AuditEntry, AuditRecord, Decision, EntryRecord, GENESIS, LevelNote, SealRecord};
pub use seal::{SealError, SealSignature, Sealer, seal_message};
pub use verify::{
    Problem, ProblemKind, SealKey, SealKeyError, VerifyReport, verify_log, verify_reader,
};

use std::path::PathBuf;

/// Why the audit log refused to open or to record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log file could not be opened, read, locked or repaired.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the log open for writing.
    #[error("audit log {path} is locked by another process")]
    Locked {
        /// The log file.
        path: PathBuf,
    },
    /// The existing log does not verify before its last line: tamper
    /// evidence, the signer must not start on it.
    #[error("audit log {path} is broken at line {line} ({kind}): {detail}; refusing to open it")]
    Broken {
        /// The log file.
        path: PathBuf,
        /// 1-based line number of the first problem.
        line: u64,
        /// What is wrong.
        kind: ProblemKind,
        /// Details.
        detail: String,
    },
    /// Writing or syncing the record failed: it is not durable, so the
    /// signature must not be returned. The log refuses every later record.
    #[error("audit log write failed: {0}; the record is not durable")]
    WriteFailed(String),
    /// An earlier write failed; the log refuses records until the signer is
    /// restarted (reopening repairs or refuses the file).
    #[error("audit log unavailable after an earlier write failure: {0}")]
    Unavailable(String),
    /// The log was closed (or its writer stopped).
    #[error("the audit log is closed")]
    Closed,
    /// The entry cannot be recorded as given (bad fingerprint, time out of range…).
    #[error("invalid audit entry: {0}")]
    InvalidEntry(String),
    /// [`AuditLog::seal`] was called but no [`Sealer`] is configured.
    #[error("the audit log has no sealer")]
    NoSealer,
    /// Too many seals are not anchored outside the signer: no new signature until the
    /// registry holds the log's head again.
    #[error(
        "{seals} audit seals are not anchored in the registry: refusing to sign until the log's head is anchored"
    )]
    Unanchored {
        /// Seals not anchored.
        seals: u64,
    },
    /// The HSM did not produce a seal signature.
    #[error("sealing the audit log failed: {0}")]
    Seal(#[from] SealError),
}

impl AuditError {
    /// Whether the error means records can no longer be made durable (the
    /// signer must stop returning signatures), as opposed to a bad entry or
    /// a failed seal.
    pub fn is_durability_failure(&self) -> bool {
        matches!(
            self,
            Self::WriteFailed(_) | Self::Unavailable(_) | Self::Closed | Self::Io { .. }
        )
    }
}

#[cfg(test)]
mod tests;

//! The per-request journal that makes the document flow safe to retry (docs/FLOWS.md,
//! "Retries").
//!
//! A request with an idempotency key gets one journal file, named by the SHA-256 of
//! (operation, caller, organisation, key), under `<documents_dir>/.journal/`. Each step of the
//! flow (a signature, storing the original, the register entry, the verification verdict)
//! writes its result there before the next step starts; the PDFs between steps (the approved
//! PDF before the seal, a signed document before it is stored) are kept content-addressed
//! under `.journal/blobs/`. A retry (after an error, or after the signer was killed at any
//! point) reads the journal and resumes after the last step recorded, so a step that is
//! recorded is never done twice; a finished request returns its first answer.
//!
//! Every write is atomic and durable: a temporary file, written and `fsync`ed, renamed over
//! the journal, then the directory `fsync`ed. A crash leaves the previous state or the new
//! one, never a mix.
//!
//! Requests of one key are serialised within the process: a second request arriving while
//! the first is still running is refused (ABORTED, retry later) instead of racing it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{DocumentStore, StoreError, write_atomic};

/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file system refused.
    #[error("request journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A journal file does not parse (it was edited: the signer only writes whole files).
    #[error("request journal {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
    /// An intermediate document could not be kept or read back.
    #[error("request journal: {0}")]
    Blob(#[from] StoreError),
    /// The key was used before for a different request.
    #[error(
        "idempotency key {key:?} was used before for a different request (request SHA-256 {first}, \
         this one {this}): use a new key for a new request"
    )]
    Mismatch {
        /// The key.
        key: String,
        /// The first request's hash.
        first: String,
        /// This request's hash.
        this: String,
    },
    /// Another request with the same key is running now.
    #[error("a request with idempotency key {0:?} is still running: retry when it has answered")]
    InFlight(String),
    /// The key is not 1 to 128 printable ASCII characters.
    #[error("idempotency_key: {0}")]
    BadKey(String),
}

/// What one step left: a signature's output, a stored original, a register entry, a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// False while the step has begun and its result is not known (an intent).
    pub done: bool,
    /// The key a signature step signs with.
    pub key: String,
    /// SHA-256 of the step's input document, hex.
    pub input_sha256: String,
    /// SHA-256 of its output (the signed PDF, the stored original), hex.
    pub output_sha256: String,
    /// Before a signature: the audit log's last sequence number, so that after a crash the
    /// records this step may have made are the ones after it.
    pub audit_from: u64,
    /// The audit record of a signature: sequence number and hash.
    pub audit_seq: u64,
    /// The record's hash, hex.
    pub audit_hash: String,
    /// A register entry: its id, number and year.
    pub entry_id: String,
    /// The number given (0 for a refused incoming document).
    pub number: i64,
    /// The register year.
    pub year: i32,
    /// Before a register entry is asked: the ids of the entries the register already held for
    /// the same SHA-256, so that after a crash the entry this request made is told apart.
    pub entries_before: Vec<String>,
    /// Anything else, protobuf-encoded, hex (the verification verdict).
    pub data: String,
}

/// The journal file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entry {
    /// Format version (1).
    pub version: u32,
    /// `IssueOutgoing`, `ReceiveIncoming`, `SignAttachments`.
    pub operation: String,
    /// The caller's name (from its certificate).
    pub caller: String,
    /// The organisation acted for.
    pub organisation_id: String,
    /// The key as given.
    pub idempotency_key: String,
    /// SHA-256 of the request (protobuf, the key left out), hex.
    pub request_sha256: String,
    /// When the first attempt began, unix seconds.
    pub started: i64,
    /// The steps by name.
    pub steps: BTreeMap<String, Step>,
    /// The answer, once given (protobuf without the PDFs, hex; the PDFs are in the store).
    pub response: String,
}

/// The journals of one document store.
#[derive(Debug, Clone)]
pub struct Journals {
    dir: PathBuf,
    blobs: DocumentStore,
    running: Arc<Mutex<HashSet<String>>>,
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters (it names a file only
/// through its hash, but it is written in messages and the journal).
pub fn check_key(key: &str) -> Result<(), JournalError> {
    if key.len() > MAX_KEY_LEN {
        return Err(JournalError::BadKey(format!(
            "{} characters is over the limit of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(JournalError::BadKey(
            "printable ASCII only (letters, digits, punctuation; no spaces)".into(),
        ));
    }
    Ok(())
}

impl Journals {
    /// The journals under `documents_dir/.journal` (created if needed).
    pub fn open(documents_dir: &Path) -> Result<Self, JournalError> {
        let dir = documents_dir.join(".journal");
        std::fs::create_dir_all(&dir).map_err(|source| JournalError::Io {
            path: dir.clone(),
            source,
        })?;
        let blobs = DocumentStore::open(dir.join("blobs"))?;
        Ok(Self {
            dir,
            blobs,
            running: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The journal of a request: the one begun by an earlier attempt with the same key, or a
    /// new one (not yet written: the first [`Run::save`] writes it). `key` empty: a journal
    /// kept in memory only (the request is not retry-safe, as before keys existed).
    pub fn begin(
        &self,
        operation: &str,
        caller: &str,
        organisation_id: &str,
        key: &str,
        request_sha256: &str,
        now: i64,
    ) -> Result<Run, JournalError> {
        let fresh = Entry {
            version: 1,
            operation: operation.to_owned(),
            caller: caller.to_owned(),
            organisation_id: organisation_id.to_owned(),
            idempotency_key: key.to_owned(),
            request_sha256: request_sha256.to_owned(),
            started: now,
            ..Entry::default()
        };
        if key.is_empty() {
            return Ok(Run {
                entry: fresh,
                path: None,
                journals: self.clone(),
                name: String::new(),
            });
        }
        check_key(key)?;
        let mut id = Vec::new();
        for part in [operation, caller, organisation_id, key] {
            id.extend_from_slice(part.as_bytes());
            id.push(0);
        }
        let name = hex::encode(kyso_pki::crypto::sha256(&id));
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(name.clone()) {
                return Err(JournalError::InFlight(key.to_owned()));
            }
        }
        // From here the name is held: `Run`'s drop releases it, whatever happens.
        let mut run = Run {
            entry: fresh,
            path: Some(self.dir.join(format!("{name}.json"))),
            journals: self.clone(),
            name,
        };
        if let Some(path) = run.path.clone() {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let entry: Entry =
                        serde_json::from_slice(&bytes).map_err(|e| JournalError::Damaged {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                    if entry.request_sha256 != request_sha256 {
                        return Err(JournalError::Mismatch {
                            key: key.to_owned(),
                            first: entry.request_sha256,
                            this: request_sha256.to_owned(),
                        });
                    }
                    run.entry = entry;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(JournalError::Io { path, source }),
            }
        }
        Ok(run)
    }
}

/// One request's journal while it runs (holds its key against a concurrent request).
#[derive(Debug)]
pub struct Run {
    entry: Entry,
    /// `None`: no key, nothing written.
    path: Option<PathBuf>,
    journals: Journals,
    name: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.path.is_some() {
            let mut running = self
                .journals
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            running.remove(&self.name);
        }
    }
}

impl Run {
    /// The journal as it stands.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Whether this request is journaled (it has a key).
    pub fn durable(&self) -> bool {
        self.path.is_some()
    }

    /// A step, begun or done.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.entry.steps.get(name)
    }

    /// A step that is done.
    pub fn done(&self, name: &str) -> Option<&Step> {
        self.step(name).filter(|s| s.done)
    }

    /// Records a step (begun or done) durably before the flow goes on.
    pub fn save(&mut self, name: &str, step: Step) -> Result<(), JournalError> {
        self.entry.steps.insert(name.to_owned(), step);
        self.write()
    }

    /// Records the answer, then drops the documents kept between steps (the answer's own
    /// documents are originals in the store, where a retry reads them).
    pub fn finish(&mut self, response: &[u8]) -> Result<(), JournalError> {
        self.entry.response = hex::encode(response);
        self.write()?;
        if self.durable() {
            for step in self.entry.steps.values() {
                if !step.key.is_empty() && !step.output_sha256.is_empty() {
                    // Best effort: a blob left behind costs space, not correctness.
                    let _ = self.journals.blobs.remove(&step.output_sha256);
                }
            }
        }
        Ok(())
    }

    /// The answer of a finished request, protobuf-encoded.
    pub fn response(&self) -> Option<Vec<u8>> {
        (!self.entry.response.is_empty())
            .then(|| hex::decode(&self.entry.response).ok())
            .flatten()
    }

    /// Keeps a document between steps (journaled requests only); returns its SHA-256.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, JournalError> {
        if self.durable() {
            Ok(self.journals.blobs.put(bytes)?)
        } else {
            Ok(hex::encode(kyso_pki::crypto::sha256(bytes)))
        }
    }

    /// A document kept by [`Run::put_blob`].
    pub fn blob(&self, sha256: &str) -> Result<Vec<u8>, JournalError> {
        Ok(self.journals.blobs.get(sha256)?)
    }

    fn write(&self) -> Result<(), JournalError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&self.entry).map_err(|e| JournalError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &bytes).map_err(|(path, source)| JournalError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_step_survives_reopening_and_another_request_under_the_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journals::open(dir.path()).unwrap();
        {
            let mut run = j
                .begin("IssueOutgoing", "dms", "org", "k-1", "aa", 7)
                .unwrap();
            assert!(matches!(
                j.begin("IssueOutgoing", "dms", "org", "k-1", "aa", 7),
                Err(JournalError::InFlight(_))
            ));
            let sha = run.put_blob(b"%PDF approved").unwrap();
            run.save(
                "approval",
                Step {
                    done: true,
                    output_sha256: sha,
                    ..Step::default()
                },
            )
            .unwrap();
        }
        let reopened = Journals::open(dir.path()).unwrap();
        let run = reopened
            .begin("IssueOutgoing", "dms", "org", "k-1", "aa", 9)
            .unwrap();
        assert_eq!(run.entry().started, 7);
        let step = run.done("approval").unwrap();
        assert_eq!(run.blob(&step.output_sha256).unwrap(), b"%PDF approved");
        drop(run);
        assert!(matches!(
            reopened.begin("IssueOutgoing", "dms", "org", "k-1", "bb", 9),
            Err(JournalError::Mismatch { .. })
        ));
        // Another caller, organisation or operation has its own journal under the same key.
        assert!(
            reopened
                .begin("IssueOutgoing", "other", "org", "k-1", "bb", 9)
                .unwrap()
                .step("approval")
                .is_none()
        );
        assert!(matches!(
            reopened.begin("IssueOutgoing", "dms", "org", "a key", "aa", 9),
            Err(JournalError::BadKey(_))
        ));
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join(".journal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

//! The resume state of `kyso ltv extend`: the SHA-256 of every file this command
//! wrote, so a second run, or a run after an interruption,
//! skips what is finished and continues with the rest. A file whose bytes changed
//! since (a new signature) has another hash and is extended again.
//!
//! One JSON document, rewritten through a temporary file and a rename after each
//! finished file: a crash loses at most the file being worked on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CliError;

/// What the state file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// SHA-256 (hex) of a finished file → what was done.
    pub finished: BTreeMap<String, Finished>,
}

/// One finished file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Finished {
    /// The path, as given.
    pub file: String,
    /// RFC 3339.
    pub at: String,
    /// `extended`.
    pub outcome: String,
}

/// The state file, loaded.
pub(crate) struct StateFile {
    path: PathBuf,
    pub state: State,
}

impl StateFile {
    /// Loads `path`, or starts empty when it does not exist.
    pub(crate) fn load(path: &Path) -> Result<Self, CliError> {
        let state = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| CliError::Usage(format!("the state file {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(CliError::File {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            state,
        })
    }

    /// Whether a file with this SHA-256 is finished.
    pub(crate) fn is_finished(&self, sha256: &str) -> bool {
        self.state.finished.contains_key(sha256)
    }

    /// Records a finished file and saves.
    pub(crate) fn finish(&mut self, sha256: String, done: Finished) -> Result<(), CliError> {
        self.state.finished.insert(sha256, done);
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| CliError::Usage(format!("the state file: {e}")))?;
        super::write_atomically(&self.path, &bytes)
    }
}

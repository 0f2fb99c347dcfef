//! Whether the signer can keep what it promises to keep: the audit log and the document store
//! must be writable, or the signer is not ready (gRPC health NOT_SERVING, `/readyz` 503) and
//! the load balancer sends requests elsewhere instead of to a signer where each one fails.
//!
//! Two sources: a write probe every second (a small file written, `fsync`ed and removed in
//! the audit log's directory and in the document store; a full or read-only volume fails
//! it), and the failures real writes see (a store write that fails marks the store not
//! ready at once; the audit log's own write-failure state). When the probe passes again, a
//! failed audit log is asked to recover (`AuditLog::recover`: the file re-checked against
//! the last durable record) and a failed store is cleared: the signer is ready again
//! without a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::AuditLog;

/// How often the write probe runs.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The writability of the audit log's and the store's volumes (cheap to clone).
#[derive(Debug, Clone)]
pub struct Storage {
    dirs: Arc<Vec<PathBuf>>,
    /// The last failure seen (by the probe or by a real write) and not yet cleared.
    failure: Arc<Mutex<Option<String>>>,
}

impl Storage {
    /// Watches `dirs` (duplicates removed).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut v: Vec<PathBuf> = Vec::new();
        for d in dirs {
            if !v.contains(&d) {
                v.push(d);
            }
        }
        Self {
            dirs: Arc::new(v),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// No failure seen since the last probe that passed.
    pub fn ready(&self) -> bool {
        self.lock().is_none()
    }

    /// The failure that makes it not ready, if any.
    pub fn failure(&self) -> Option<String> {
        self.lock().clone()
    }

    /// A real write failed: not ready until the probe passes again.
    pub fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let mut f = self.lock();
        if f.is_none() {
            tracing::error!(%error, "{what} cannot write: not ready");
        }
        *f = Some(format!("{what}: {error}"));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One probe of every directory (blocking).
    pub fn probe_blocking(dirs: &[PathBuf]) -> Result<(), String> {
        for d in dirs {
            probe_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Probes every [`PROBE_EVERY`]; on success asks a failed audit log to recover and
    /// clears the failure, on failure records it.
    pub fn spawn(&self, audit: AuditLog) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let dirs = this.dirs.clone();
                let probed = tokio::task::spawn_blocking(move || Self::probe_blocking(&dirs))
                    .await
                    .unwrap_or_else(|e| Err(format!("the probe thread failed: {e}")));
                match probed {
                    Err(e) => this.failed("storage write probe", &e),
                    Ok(()) => {
                        let recovered = if audit.writable() {
                            Ok(())
                        } else {
                            audit.recover().await
                        };
                        match recovered {
                            Ok(()) => {
                                if this.lock().take().is_some() {
                                    tracing::info!(
                                        "the audit log and the store write again: ready"
                                    );
                                }
                            }
                            Err(e) => this.failed("audit log", &e),
                        }
                    }
                }
            }
        })
    }
}

const PROBE_FILE: &str = ".kyso-write-probe";

/// Writes a page into `dir`, syncs it and removes it: what a record or an original needs.
fn probe_dir(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let r = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let removed = std::fs::remove_file(&path);
    r?;
    removed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_probe_passes_on_a_writable_directory_and_fails_on_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Storage::probe_blocking(&[dir.path().to_path_buf()]).is_ok());
        assert!(!dir.path().join(PROBE_FILE).exists());
        let gone = dir.path().join("gone");
        assert!(Storage::probe_blocking(&[gone]).is_err());
        let s = Storage::new([dir.path().to_path_buf(), dir.path().to_path_buf()]);
        assert_eq!(s.dirs.len(), 1);
        assert!(s.ready());
        s.failed("document store", &"No space left on device");
        assert!(!s.ready());
        assert!(s.failure().unwrap().contains("No space"));
    }
}

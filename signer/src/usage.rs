//! Reports the signatures this signer made to the registry (R2: certificate use per
//! agency, reported every 6 months and every year).
//!
//! The audit log is the source: every signature already has its durable record there, so
//! counting from the log cannot miss one that was returned, and the hot path gains no
//! call. A task reads the records after its cursor, counts the signed ones by
//! (organisation, certificate, profile, Vietnam's day) and sends them in one
//! `RecordUsage` batch.
//!
//! Exactly once: the batch id names the log (its first record's hash, so a new log never
//! reuses an old log's ids) and the sequence numbers it covers. Before sending, the batch's
//! range is written to the cursor file as pending; after a crash the same range is sent
//! again under the same id, and the registry counts an id once. Only an acknowledged batch
//! moves the cursor.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kyso_proto::registry::v1 as reg;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::AuditRecord;
use crate::authority::Registry;

/// Vietnam's offset (UTC+07:00): the registry counts signatures by Vietnam's day.
const VIETNAM: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

/// At most this many records in one batch, so one batch stays a small request.
const MAX_RECORDS_PER_BATCH: u64 = 50_000;

/// Where the reporter is in the log, as kept in the cursor file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Hash of the log's first record: a cursor of another log is not used.
    log: String,
    /// Every record up to this sequence number has been reported.
    reported_seq: u64,
    /// The byte offset just after that record.
    reported_offset: u64,
    /// A batch written down before it was sent: resent as is until acknowledged.
    pending: Option<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    first_seq: u64,
    last_seq: u64,
    end_offset: u64,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    organisation_id: String,
    certificate_fingerprint: String,
    profile: String,
    day: String,
    count: i64,
}

/// Why a round of reporting did not finish; the next round tries again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// Reading the log or writing the cursor failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A complete line of the log is not a record (the log is checked when it opens, so
    /// this is a log changed underneath the signer).
    #[error("{path}: the line at byte {offset} is not an audit record: {reason}")]
    BadRecord {
        /// The log.
        path: PathBuf,
        /// Where the line starts.
        offset: u64,
        /// The parser's complaint.
        reason: String,
    },
    /// The registry did not take the batch.
    #[error("the registry did not record the batch {batch_id}: {reason}")]
    Registry {
        /// The batch.
        batch_id: String,
        /// Its answer.
        reason: String,
    },
}

/// Reads the audit log and reports its signatures in batches.
#[derive(Debug)]
pub struct UsageReporter {
    log: PathBuf,
    cursor_path: PathBuf,
    instance: String,
    registry: Registry,
}

impl UsageReporter {
    /// A reporter for the log at `log`, keeping its cursor in `cursor_path`, naming its
    /// batches after `instance` (the signer's name, unique in the deployment).
    pub fn new(log: PathBuf, cursor_path: PathBuf, instance: String, registry: Registry) -> Self {
        Self {
            log,
            cursor_path,
            instance,
            registry,
        }
    }

    /// Reports until `stop` fires, every `period`, with one last round at the end so a
    /// graceful shutdown leaves nothing behind.
    pub async fn run(self, period: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(period) => false,
                _ = stop.changed() => true,
            };
            loop {
                match self.round().await {
                    Ok(true) => continue, // more to send (the batch was capped)
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "usage report (R2) not sent; retrying later");
                        break;
                    }
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// One batch: the pending one, or a new one from the records after the cursor.
    /// `Ok(true)` when more records wait.
    pub async fn round(&self) -> Result<bool, UsageError> {
        let log = self.log.clone();
        let cursor_path = self.cursor_path.clone();
        let (cursor, more) =
            tokio::task::spawn_blocking(move || prepare(&log, &cursor_path, MAX_RECORDS_PER_BATCH))
                .await
                .map_err(|e| UsageError::Io {
                    path: self.cursor_path.clone(),
                    source: std::io::Error::other(e),
                })??;
        let Some(pending) = cursor.pending.clone() else {
            return Ok(false);
        };
        let batch_id = format!(
            "{}/{}:{}-{}",
            self.instance,
            &cursor.log[..cursor.log.len().min(16)],
            pending.first_seq,
            pending.last_seq
        );
        if !pending.entries.is_empty() {
            let req = reg::RecordUsageRequest {
                batch_id: batch_id.clone(),
                entries: pending
                    .entries
                    .iter()
                    .map(|e| reg::UsageEntry {
                        certificate_fingerprint: e.certificate_fingerprint.clone(),
                        organisation_id: e.organisation_id.clone(),
                        profile: e.profile.clone(),
                        day: e.day.clone(),
                        count: e.count,
                    })
                    .collect(),
                change: Some(reg::Change {
                    actor: self.instance.clone(),
                    reason: "R2: signatures counted from the signer's audit log".into(),
                }),
            };
            let answer =
                self.registry
                    .record_usage(req)
                    .await
                    .map_err(|s| UsageError::Registry {
                        batch_id: batch_id.clone(),
                        reason: format!("{:?}: {}", s.code(), s.message()),
                    })?;
            tracing::info!(
                batch = %batch_id,
                signatures = answer.signatures,
                duplicate = answer.duplicate,
                "usage reported (R2)"
            );
        }
        let done = Cursor {
            log: cursor.log,
            reported_seq: pending.last_seq,
            reported_offset: pending.end_offset,
            pending: None,
        };
        let path = self.cursor_path.clone();
        tokio::task::spawn_blocking(move || write_cursor(&path, &done))
            .await
            .map_err(|e| UsageError::Io {
                path: self.cursor_path.clone(),
                source: std::io::Error::other(e),
            })??;
        Ok(more)
    }
}

/// Loads the cursor; when nothing is pending, reads the records after it and writes the
/// next batch down as pending (durably, before anything is sent).
fn prepare(log: &Path, cursor_path: &Path, max_records: u64) -> Result<(Cursor, bool), UsageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UsageError::Io { path, source }
    };
    let mut file = std::fs::File::open(log).map_err(io(log))?;
    let log_id = first_hash(&mut file, log)?;
    let mut cursor = match read_cursor(cursor_path)? {
        Some(c) if c.log == log_id => c,
        Some(c) => {
            tracing::warn!(
                old = %c.log,
                new = %log_id,
                "the usage cursor belongs to another audit log; reporting this log from its start"
            );
            Cursor {
                log: log_id,
                ..Cursor::default()
            }
        }
        None => Cursor {
            log: log_id,
            ..Cursor::default()
        },
    };
    if cursor.pending.is_some() {
        return Ok((cursor, false));
    }
    file.seek(SeekFrom::Start(cursor.reported_offset))
        .map_err(io(log))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).map_err(io(log))?;
    let mut counts = BTreeMap::<(String, String, String, String), i64>::new();
    let mut offset = cursor.reported_offset;
    let (mut first, mut last) = (0u64, 0u64);
    let mut more = false;
    // Only complete lines: the writer may be half-way through the next one.
    for line in rest.split_inclusive(|b| *b == b'\n') {
        if line.last() != Some(&b'\n') {
            break;
        }
        if last != 0 && last - first + 1 >= max_records {
            more = true;
            break;
        }
        let record = AuditRecord::parse(line).map_err(|e| UsageError::BadRecord {
            path: log.to_path_buf(),
            offset,
            reason: e.to_string(),
        })?;
        offset += line.len() as u64;
        if record.seq <= cursor.reported_seq {
            continue;
        }
        if first == 0 {
            first = record.seq;
        }
        last = record.seq;
        let Some(entry) = record.entry else { continue };
        if entry.decision != "signed" {
            continue;
        }
        let day = OffsetDateTime::parse(&record.time, &Rfc3339)
            .map(|t| t.to_offset(VIETNAM).date())
            .map_err(|e| UsageError::BadRecord {
                path: log.to_path_buf(),
                offset,
                reason: format!("time {:?}: {e}", record.time),
            })?;
        let day = format!(
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        *counts
            .entry((entry.organisation_id, entry.cert_sha256, entry.profile, day))
            .or_default() += 1;
    }
    if last == 0 {
        return Ok((cursor, false));
    }
    cursor.pending = Some(Pending {
        first_seq: first,
        last_seq: last,
        end_offset: offset,
        entries: counts
            .into_iter()
            .map(
                |((organisation_id, certificate_fingerprint, profile, day), count)| Entry {
                    organisation_id,
                    certificate_fingerprint,
                    profile,
                    day,
                    count,
                },
            )
            .collect(),
    });
    write_cursor(cursor_path, &cursor)?;
    Ok((cursor, more))
}

/// The hash of the log's first record, or empty for an empty log.
fn first_hash(file: &mut std::fs::File, log: &Path) -> Result<String, UsageError> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file.read(&mut buf).map_err(|source| UsageError::Io {
            path: log.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Ok(String::new());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.iter().position(|b| *b == b'\n') {
            let record = AuditRecord::parse(&head[..=end]).map_err(|e| UsageError::BadRecord {
                path: log.to_path_buf(),
                offset: 0,
                reason: e.to_string(),
            })?;
            return Ok(record.hash);
        }
    }
}

fn read_cursor(path: &Path) -> Result<Option<Cursor>, UsageError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| UsageError::BadRecord {
                path: path.to_path_buf(),
                offset: 0,
                reason: format!("not a usage cursor: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UsageError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the cursor atomically and durably: a temporary file, fsync, rename, fsync of
/// the directory. A crash leaves the old cursor or the new one, never half of one.
fn write_cursor(path: &Path, cursor: &Cursor) -> Result<(), UsageError> {
    let io = |source| UsageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = serde_json::to_vec(cursor).map_err(|e| io(std::io::Error::other(e)))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

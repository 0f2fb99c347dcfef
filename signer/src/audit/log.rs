//! The writer: open and recover, group commit, seals.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use tokio::sync::{mpsc, oneshot, watch};

use super::AuditError;
use super::anchor::{Anchor, SealedHead};
use super::record::{AuditEntry, AuditRecord, EntryRecord, SealRecord, format_time};
use super::seal::{Sealer, algorithm_supported, seal_message};
use super::verify::{ProblemKind, scan};

/// How the log seals and batches.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Seal after this many records since the last seal (checked after every
    /// group commit); `None`: only when asked ([`AuditLog::seal`],
    /// [`AuditLog::close`], [`AuditLog::spawn_periodic_seal`]).
    pub seal_every_records: Option<u64>,
    /// How long the HSM may take to sign a seal.
    pub seal_timeout: Duration,
    /// Records that may wait for the writer before `append` waits for room.
    pub queue_capacity: usize,
    /// Most records written and synced together.
    pub max_batch: usize,
    /// Refuse to sign ([`AuditLog::ready_to_sign`]) once this many seals are not anchored
    /// outside the signer ([`AuditLog::mark_anchored`]); `None`: seals are not anchored.
    pub max_unanchored_seals: Option<u64>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            seal_every_records: Some(1000),
            seal_timeout: Duration::from_secs(10),
            queue_capacity: 65_536,
            max_batch: 4096,
            max_unanchored_seals: None,
        }
    }
}

/// Proof that a record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The record's sequence number.
    pub seq: u64,
    /// The record's hash.
    pub hash: [u8; 32],
    /// From the call to `append` to the end of the fsync.
    pub latency: Duration,
}

impl AuditReceipt {
    /// The hash in lowercase hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// What [`AuditLog::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    /// Records in the file (after any repair).
    pub records: u64,
    /// The head: last sequence number (0 when empty) and its hash.
    pub head_seq: u64,
    /// The head hash.
    pub head_hash: [u8; 32],
    /// Records after the last seal.
    pub unsealed_records: u64,
    /// Bytes of a torn last line cut away (0 when none).
    pub truncated_bytes: u64,
    /// Whether the file was created.
    pub created: bool,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

#[derive(Debug)]
enum Msg {
    Append {
        record: Box<EntryRecord>,
        time: String,
        started: Instant,
        reply: Reply<AuditReceipt>,
    },
    Seal {
        time: String,
        reply: Reply<Option<AuditReceipt>>,
    },
    Close {
        time: String,
        reply: Reply<Option<AuditReceipt>>,
    },
    Recover {
        reply: Reply<()>,
    },
}

/// The append-only, hash-chained, sealed audit log (cheap to clone).
///
/// Shut down with [`AuditLog::close`]: it seals, releases the file lock and
/// then answers. Dropping every handle instead stops the writer without a
/// seal, and the lock is released a moment later (when the writer task sees
/// it).
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    path: Arc<PathBuf>,
    opened: Arc<OpenInfo>,
    /// Set while a write failure refuses records (readiness reads it).
    failed: Arc<AtomicBool>,
    /// The sequence number of the last durable record.
    head_seq: Arc<AtomicU64>,
    sealed: watch::Receiver<Option<SealedHead>>,
    anchoring: Arc<Anchoring>,
}

/// How far the seals are anchored: the writer counts the seals it makes, the anchorer the
/// ones the registry holds.
#[derive(Debug)]
struct Anchoring {
    seals_made: AtomicU64,
    seals_anchored: AtomicU64,
    max_unanchored: Option<u64>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`: takes an exclusive lock,
    /// verifies the whole chain, cuts a torn last line away (with a
    /// warning), and starts the writer task on the current runtime.
    ///
    /// Any other problem refuses to open ([`AuditError::Broken`]).
    pub async fn open(
        path: impl AsRef<Path>,
        config: AuditConfig,
        sealer: Option<Arc<dyn Sealer>>,
    ) -> Result<Self, AuditError> {
        Self::open_inner(path, config, sealer, Fault::default()).await
    }

    /// [`AuditLog::open`] with writes that fail while `fault` is set.
    #[cfg(test)]
    pub(crate) async fn open_with_fault(
        path: impl AsRef<Path>,
        config: AuditConfig,
        sealer: Option<Arc<dyn Sealer>>,
        fault: Arc<AtomicBool>,
    ) -> Result<Self, AuditError> {
        Self::open_inner(path, config, sealer, Fault(Some(fault))).await
    }

    async fn open_inner(
        path: impl AsRef<Path>,
        config: AuditConfig,
        sealer: Option<Arc<dyn Sealer>>,
        fault: Fault,
    ) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let (file, info) = tokio::task::spawn_blocking(move || open_blocking(&p))
            .await
            .map_err(|e| AuditError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })??;
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let failed = Arc::new(AtomicBool::new(false));
        let head_seq = Arc::new(AtomicU64::new(info.head_seq));
        let (sealed_tx, sealed) = watch::channel(None);
        let anchoring = Arc::new(Anchoring {
            seals_made: AtomicU64::new(0),
            seals_anchored: AtomicU64::new(0),
            max_unanchored: config.max_unanchored_seals,
        });
        let writer = Writer {
            file: Some(file),
            path: path.clone(),
            next_seq: info.head_seq + 1,
            head: info.head_hash,
            unsealed: info.unsealed_records,
            next_auto_seal: config.seal_every_records.map(|n| n.max(1)),
            last_time: None,
            sealer,
            config,
            failed: None,
            failed_flag: failed.clone(),
            head_seq: head_seq.clone(),
            durable: Durable {
                next_seq: info.head_seq + 1,
                head: info.head_hash,
                unsealed: info.unsealed_records,
            },
            fault,
            sealed: sealed_tx,
            anchoring: anchoring.clone(),
        };
        tokio::spawn(writer.run(rx));
        Ok(Self {
            tx,
            path: Arc::new(path),
            opened: Arc::new(info),
            failed,
            head_seq,
            sealed,
            anchoring,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening found.
    pub fn opened(&self) -> &OpenInfo {
        &self.opened
    }

    /// The sequence number of the last durable record (0: none): a later record has a higher
    /// one.
    pub fn head_seq(&self) -> u64 {
        self.head_seq.load(Ordering::SeqCst)
    }

    /// Whether the log takes records: false from a write failure until [`AuditLog::recover`]
    /// succeeds (readiness follows it).
    pub fn writable(&self) -> bool {
        !self.failed.load(Ordering::SeqCst)
    }

    /// After a write failure (a full disk), once writing works again: checks the file
    /// against the last durable record (the chain re-verified, a torn tail of the failed
    /// write cut away) and takes records again. Refuses, staying failed, when the file is
    /// not exactly the records acknowledged so far; then only a restart (which re-verifies
    /// the whole file) can reopen it. `Ok` when the log was not failed.
    pub async fn recover(&self) -> Result<(), AuditError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Recover { reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// The seals as they are made (durable before they are published): the latest one, for
    /// the anchorer.
    pub fn subscribe_seals(&self) -> watch::Receiver<Option<SealedHead>> {
        self.sealed.clone()
    }

    /// Notes that the seal numbered `seals_made` (see [`SealedHead::seals_made`]) and every
    /// seal before it are anchored.
    pub fn mark_anchored(&self, seals_made: u64) {
        self.anchoring
            .seals_anchored
            .fetch_max(seals_made, Ordering::AcqRel);
    }

    /// Seals made since the log was opened and not anchored yet.
    pub fn unanchored_seals(&self) -> u64 {
        let made = self.anchoring.seals_made.load(Ordering::Acquire);
        made.saturating_sub(self.anchoring.seals_anchored.load(Ordering::Acquire))
    }

    /// Whether a signature may be made now: refused once
    /// [`AuditConfig::max_unanchored_seals`] seals are not anchored (fail closed: a log
    /// whose head nobody outside holds could be rolled back unnoticed).
    pub fn ready_to_sign(&self) -> Result<(), AuditError> {
        match self.anchoring.max_unanchored {
            Some(max) if self.unanchored_seals() >= max.max(1) => Err(AuditError::Unanchored {
                seals: self.unanchored_seals(),
            }),
            _ => Ok(()),
        }
    }

    /// Appends an entry; returns once it is written and synced to disk
    /// (group commit with the entries queued at the same time).
    ///
    /// On an error the record is not durable: the signer must not return
    /// the signature.
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditReceipt, AuditError> {
        let started = Instant::now();
        let (record, time) = entry.to_record()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                record: Box::new(record),
                time,
                started,
                reply,
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Appends a seal over the current head, signed by the sealer, unless
    /// nothing was appended since the last seal (`Ok(None)`).
    pub async fn seal(&self, now: OffsetDateTime) -> Result<Option<AuditReceipt>, AuditError> {
        let time = format_time(now)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Seal { time, reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Clean shutdown: writes what is queued, seals the head (when a sealer
    /// is configured and records are unsealed), and stops the writer; later
    /// appends fail with [`AuditError::Closed`].
    pub async fn close(&self, now: OffsetDateTime) -> Result<Option<AuditReceipt>, AuditError> {
        let time = format_time(now)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close { time, reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Seals every `period` (the first after one period) with the time
    /// `now()` gives, until the log is closed. Seal failures are logged.
    pub fn spawn_periodic_seal<F>(&self, period: Duration, now: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> OffsetDateTime + Send + 'static,
    {
        let log = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match log.seal(now()).await {
                    Ok(_) => {}
                    Err(AuditError::Closed | AuditError::NoSealer) => break,
                    Err(e) => tracing::warn!(error = %e, "periodic audit seal failed"),
                }
            }
        })
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open_blocking(path: &Path) -> Result<(File, OpenInfo), AuditError> {
    let err = io_err(path);
    let created = !path.try_exists().map_err(&err)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(&err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(AuditError::Locked {
                path: path.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    if created {
        // Make the new directory entry durable too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(&err)?;
        }
    }
    let s = scan(BufReader::with_capacity(1 << 20, &file), None).map_err(&err)?;
    let len = file.metadata().map_err(&err)?.len();
    let mut truncated_bytes = 0;
    if let Some(p) = &s.report.problem {
        if p.kind != ProblemKind::TornTail {
            return Err(AuditError::Broken {
                path: path.to_path_buf(),
                line: p.line,
                kind: p.kind,
                detail: p.detail.clone(),
            });
        }
        truncated_bytes = len - s.good_len;
        tracing::warn!(
            path = %path.display(),
            line = p.line,
            bytes = truncated_bytes,
            detail = %p.detail,
            "audit log: cutting away a torn last line (a write interrupted before it was acknowledged)"
        );
        file.set_len(s.good_len).map_err(&err)?;
        file.sync_all().map_err(&err)?;
    }
    file.seek(SeekFrom::End(0)).map_err(&err)?;
    let info = OpenInfo {
        records: s.report.records,
        head_seq: s.report.head_seq,
        head_hash: s.head,
        unsealed_records: s.report.unsealed_records,
        truncated_bytes,
        created,
    };
    tracing::info!(
        path = %path.display(),
        records = info.records,
        head_seq = info.head_seq,
        unsealed = info.unsealed_records,
        "audit log opened"
    );
    Ok((file, info))
}

struct Pending {
    seq: u64,
    hash: [u8; 32],
    started: Instant,
    reply: Reply<AuditReceipt>,
}

struct Writer {
    /// `None` only while a blocking write holds it, or after that failed.
    file: Option<File>,
    path: PathBuf,
    next_seq: u64,
    head: [u8; 32],
    /// Records since the last seal.
    unsealed: u64,
    /// Seal automatically when `unsealed` reaches this.
    next_auto_seal: Option<u64>,
    /// Time of the last entry (automatic seals are stamped with it).
    last_time: Option<String>,
    sealer: Option<Arc<dyn Sealer>>,
    config: AuditConfig,
    /// Set by the first write failure: every later record is refused until
    /// [`Writer::recover`] finds the file as the last durable record left it.
    failed: Option<String>,
    /// `failed.is_some()`, for readiness.
    failed_flag: Arc<AtomicBool>,
    /// `durable.next_seq - 1`, for [`AuditLog::head_seq`].
    head_seq: Arc<AtomicU64>,
    /// The state after the last durable write: a failed write goes back to it.
    durable: Durable,
    fault: Fault,
    /// Publishes every durable seal to the anchorer.
    sealed: watch::Sender<Option<SealedHead>>,
    anchoring: Arc<Anchoring>,
}

/// The chain's head as the file holds it after the last successful write.
#[derive(Debug, Clone, Copy)]
struct Durable {
    next_seq: u64,
    head: [u8; 32],
    unsealed: u64,
}

/// Test hook: writes fail while the flag is set (always `None` outside
/// unit tests).
#[derive(Debug, Clone, Default)]
struct Fault(Option<Arc<AtomicBool>>);

impl Fault {
    fn check(&self) -> Result<(), String> {
        match &self.0 {
            Some(f) if f.load(Ordering::SeqCst) => {
                Err("write: injected failure (No space left on device)".into())
            }
            _ => Ok(()),
        }
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(self.config.max_batch);
        loop {
            msgs.clear();
            if rx.recv_many(&mut msgs, self.config.max_batch.max(1)).await == 0 {
                break;
            }
            let mut pending = Vec::with_capacity(msgs.len());
            let mut lines = Vec::new();
            let mut closing = false;
            for msg in msgs.drain(..) {
                if closing {
                    refuse_closed(msg);
                    continue;
                }
                match msg {
                    Msg::Append {
                        record,
                        time,
                        started,
                        reply,
                    } => {
                        if let Some(f) = &self.failed {
                            let _ = reply.send(Err(AuditError::Unavailable(f.clone())));
                            continue;
                        }
                        let mut rec =
                            AuditRecord::for_entry(self.next_seq, &self.head, *record, time);
                        let (line, hash) = rec.hashed_line();
                        lines.extend_from_slice(&line);
                        pending.push(Pending {
                            seq: self.next_seq,
                            hash,
                            started,
                            reply,
                        });
                        self.next_seq += 1;
                        self.head = hash;
                        self.unsealed += 1;
                        self.last_time = Some(rec.time);
                    }
                    Msg::Seal { time, reply } => {
                        self.commit(&mut lines, &mut pending).await;
                        let _ = reply.send(self.seal(time).await);
                    }
                    Msg::Recover { reply } => {
                        self.commit(&mut lines, &mut pending).await;
                        let _ = reply.send(self.recover().await);
                    }
                    Msg::Close { time, reply } => {
                        self.commit(&mut lines, &mut pending).await;
                        let r = match self.seal(time).await {
                            Err(AuditError::NoSealer) => Ok(None),
                            r => r,
                        };
                        // Release the file and its lock before answering,
                        // so that the log can be reopened at once.
                        self.file = None;
                        let _ = reply.send(r);
                        closing = true;
                    }
                }
            }
            self.commit(&mut lines, &mut pending).await;
            if closing {
                break;
            }
            self.auto_seal().await;
        }
        rx.close();
        while let Some(msg) = rx.recv().await {
            refuse_closed(msg);
        }
        // Dropping the file releases the lock.
    }

    /// Writes and syncs `lines`, then answers `pending`.
    async fn commit(&mut self, lines: &mut Vec<u8>, pending: &mut Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        let buf = std::mem::take(lines);
        let result = self.write_durable(buf).await;
        if result.is_err() {
            // The batch is not in the file: the head goes back to the last durable record,
            // so that a recovered log chains on from what is on disk.
            self.next_seq = self.durable.next_seq;
            self.head = self.durable.head;
            self.unsealed = self.durable.unsealed;
        } else {
            self.mark_durable();
        }
        for p in pending.drain(..) {
            let r = match &result {
                Ok(()) => Ok(AuditReceipt {
                    seq: p.seq,
                    hash: p.hash,
                    latency: p.started.elapsed(),
                }),
                Err(e) => Err(AuditError::WriteFailed(e.clone())),
            };
            let _ = p.reply.send(r);
        }
    }

    /// Appends `buf` to the file and `fdatasync`s; on failure cuts the file
    /// back to where it was (best effort) and refuses every later record.
    async fn write_durable(&mut self, buf: Vec<u8>) -> Result<(), String> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let Some(file) = self.file.take() else {
            let f = "the log file is gone after an earlier failure".to_owned();
            self.failed = Some(f.clone());
            return Err(f);
        };
        let fault = self.fault.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = fault.check().and_then(|()| write_sync(&file, &buf));
            (file, r)
        })
        .await;
        let failure = match joined {
            Ok((file, Ok(()))) => {
                self.file = Some(file);
                return Ok(());
            }
            Ok((file, Err(e))) => {
                self.file = Some(file);
                e
            }
            Err(e) => format!("the writer thread failed: {e}"),
        };
        tracing::error!(path = %self.path.display(), error = %failure,
            "audit log write failed: refusing every further record until writing works again");
        self.failed = Some(failure.clone());
        self.failed_flag.store(true, Ordering::SeqCst);
        Err(failure)
    }

    fn mark_durable(&mut self) {
        self.durable = Durable {
            next_seq: self.next_seq,
            head: self.head,
            unsealed: self.unsealed,
        };
        self.head_seq
            .store(self.next_seq.saturating_sub(1), Ordering::SeqCst);
    }

    /// Takes records again after a write failure if the file ends exactly at the last
    /// durable record (after cutting a torn tail the failed write may have left).
    async fn recover(&mut self) -> Result<(), AuditError> {
        let Some(failure) = self.failed.clone() else {
            return Ok(());
        };
        let Some(file) = self.file.take() else {
            return Err(AuditError::Unavailable(format!(
                "{failure}; the log file was lost with the failed write: restart the signer"
            )));
        };
        let want = self.durable;
        let path = self.path.clone();
        let fault = self.fault.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = fault.check().and_then(|()| check_tail(&file, &path, want));
            (file, r)
        })
        .await;
        match joined {
            Ok((file, Ok(()))) => {
                self.file = Some(file);
                self.failed = None;
                self.failed_flag.store(false, Ordering::SeqCst);
                tracing::info!(path = %self.path.display(), "audit log writable again");
                Ok(())
            }
            Ok((file, Err(e))) => {
                self.file = Some(file);
                Err(AuditError::Unavailable(format!("{failure}; recovery: {e}")))
            }
            Err(e) => Err(AuditError::Unavailable(format!(
                "{failure}; recovery: the thread failed: {e}; restart the signer"
            ))),
        }
    }

    /// Seals when the automatic threshold is reached.
    async fn auto_seal(&mut self) {
        let Some(at) = self.next_auto_seal else {
            return;
        };
        if self.unsealed < at || self.sealer.is_none() || self.failed.is_some() {
            return;
        }
        let Some(time) = self.last_time.clone() else {
            return;
        };
        match self.seal(time).await {
            Ok(_) => {
                self.next_auto_seal = self.config.seal_every_records.map(|n| n.max(1));
            }
            Err(e) => {
                // Try again after another N records rather than after every batch.
                self.next_auto_seal =
                    Some(self.unsealed + self.config.seal_every_records.unwrap_or(1).max(1));
                tracing::warn!(path = %self.path.display(), error = %e, "automatic audit seal failed");
            }
        }
    }

    /// Signs the head and appends the seal record (durably).
    async fn seal(&mut self, time: String) -> Result<Option<AuditReceipt>, AuditError> {
        let started = Instant::now();
        if let Some(f) = &self.failed {
            return Err(AuditError::Unavailable(f.clone()));
        }
        let Some(sealer) = self.sealer.clone() else {
            return Err(AuditError::NoSealer);
        };
        if self.unsealed == 0 {
            return Ok(None);
        }
        let through = self.next_seq - 1;
        let message = seal_message(through, &self.head);
        let sig = tokio::time::timeout(self.config.seal_timeout, sealer.seal(&message))
            .await
            .map_err(|_| {
                super::SealError(format!(
                    "the HSM did not sign within {:?}",
                    self.config.seal_timeout
                ))
            })??;
        if !algorithm_supported(&sig.algorithm) {
            return Err(AuditError::Seal(super::SealError(format!(
                "seal algorithm {} is not supported (RSA PKCS#1 v1.5 or ECDSA with SHA-2)",
                sig.algorithm
            ))));
        }
        let seal = SealRecord {
            through,
            head: hex::encode(self.head),
            alg: kyso_pki::crypto::algorithm_name(&sig.algorithm),
            alg_oid: sig.algorithm.to_string(),
            key: sig.key_name.clone(),
            cert_sha256: sig.certificate_fingerprint.to_ascii_lowercase(),
            sig: hex::encode(&sig.signature),
        };
        let time_parsed =
            OffsetDateTime::parse(&time, &time::format_description::well_known::Rfc3339)
                .map_err(|e| AuditError::InvalidEntry(format!("seal time {time:?}: {e}")))?;
        let mut rec = AuditRecord::for_seal(self.next_seq, &self.head, seal, time);
        let (line, hash) = rec.hashed_line();
        self.write_durable(line)
            .await
            .map_err(AuditError::WriteFailed)?;
        // Durable: now it may be anchored.
        let seals_made = self.anchoring.seals_made.fetch_add(1, Ordering::AcqRel) + 1;
        self.sealed.send_replace(Some(SealedHead {
            anchor: Anchor {
                sequence: self.next_seq,
                head_hash: hex::encode(hash),
            },
            seal: super::SealSignature {
                certificate_fingerprint: sig.certificate_fingerprint.to_ascii_lowercase(),
                ..sig
            },
            time: time_parsed,
            seals_made,
        }));
        let receipt = AuditReceipt {
            seq: self.next_seq,
            hash,
            latency: started.elapsed(),
        };
        self.next_seq += 1;
        self.head = hash;
        self.unsealed = 0;
        self.mark_durable();
        Ok(Some(receipt))
    }
}

fn write_sync(mut file: &File, buf: &[u8]) -> Result<(), String> {
    let start = file
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("seek: {e}"))?;
    let r = file
        .write_all(buf)
        .map_err(|e| format!("write: {e}"))
        .and_then(|()| file.sync_data().map_err(|e| format!("fsync: {e}")));
    if r.is_err() {
        // Leave no record that was refused (best effort).
        let _ = file.set_len(start).and_then(|()| file.sync_data());
    }
    r
}

/// Re-verifies the file and cuts a torn tail; the head must be the last durable record.
fn check_tail(mut file: &File, path: &Path, want: Durable) -> Result<(), String> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("seek: {e}"))?;
    let s = scan(BufReader::with_capacity(1 << 20, file), None)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if let Some(p) = &s.report.problem
        && p.kind != ProblemKind::TornTail
    {
        return Err(format!(
            "{} is broken at line {} ({}): {}",
            path.display(),
            p.line,
            p.kind,
            p.detail
        ));
    }
    if s.report.head_seq + 1 != want.next_seq || s.head != want.head {
        return Err(format!(
            "{} ends at record {} but the last durable record is {}",
            path.display(),
            s.report.head_seq,
            want.next_seq.saturating_sub(1)
        ));
    }
    file.set_len(s.good_len)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cutting the failed write away: {e}"))?;
    file.seek(SeekFrom::End(0))
        .map_err(|e| format!("seek: {e}"))?;
    Ok(())
}

fn refuse_closed(msg: Msg) {
    match msg {
        Msg::Append { reply, .. } => {
            let _ = reply.send(Err(AuditError::Closed));
        }
        Msg::Seal { reply, .. } | Msg::Close { reply, .. } => {
            let _ = reply.send(Err(AuditError::Closed));
        }
        Msg::Recover { reply } => {
            let _ = reply.send(Err(AuditError::Closed));
        }
    }
}

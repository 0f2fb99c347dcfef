//! The store of signed originals (D7, R1): a signed file is the original, kept unaltered
//! and found by its SHA-256.
//!
//! Content-addressed files under one directory (`ab/abcdef….pdf`, two hex digits of
//! fan-out so no directory grows past a few thousand entries). A file is written to a
//! temporary name, fsynced and renamed, then the directory is fsynced: a crash leaves the
//! whole file or none of it. A file is never rewritten; storing the same bytes again is a
//! no-op. Reads check the hash, so a file changed on disk is reported, never served as the
//! original. Searching (by number, organisation, period) is the registry's registers'
//! job; they hold the SHA-256.
//!
//! Beside each original, `ab/abcdef….orgs` lists the organisations it belongs to, one per
//! line (the issuing, receiving or appending one; the same bytes kept for two organisations
//! list both): `GetDocument` gives an original only to a caller acting for one of them (R1).
//! It is rewritten whole (temporary file, fsync, rename) when an organisation is added.
//!
//! N3: the verification of a received document is kept too: the report, content-addressed
//! like the originals (`ab/abcdef….evidence`), and beside each document it is about an
//! index (`ab/abcdef….evidence-index`, one line per report: its SHA-256 and the sequence
//! number and hash of its audit record), rewritten whole when a report is added.
//!
//! An original raised to a higher signature level later (a CAdES signature timestamp added
//! by the background upgrade, N1) is a new file; `ab/abcdef….next` beside the old one names
//! the new one's SHA-256, so `GetDocument` by the hash handed out first gives the current
//! original ([`DocumentStore::current`]). The old file stays: nothing stored is rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the store could not keep or give back a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file system refused.
    #[error("document store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No document with that hash.
    #[error("no stored document has SHA-256 {0}")]
    NotFound(String),
    /// Not 64 hex digits.
    #[error("{0:?} is not a SHA-256 (64 hex digits)")]
    BadHash(String),
    /// The stored bytes no longer hash to their name: the original was altered on disk.
    #[error("the stored document {expected} was altered on disk (its bytes hash to {actual})")]
    Altered {
        /// The name (the hash when stored).
        expected: String,
        /// The hash of what is there now.
        actual: String,
    },
}

/// The directory of signed originals.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    root: PathBuf,
}

impl DocumentStore {
    /// Opens (creating it if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.file_of(sha256, "pdf")
    }

    fn file_of(&self, sha256: &str, extension: &str) -> PathBuf {
        self.root
            .join(&sha256[..2])
            .join(format!("{sha256}.{extension}"))
    }

    fn orgs_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(format!("{sha256}.orgs"))
    }

    /// Keeps `bytes` durably as an original of `organisation_id` and returns their SHA-256
    /// (hex). The same bytes stored twice are one file; each organisation is listed once.
    pub fn put_for(&self, bytes: &[u8], organisation_id: &str) -> Result<String, StoreError> {
        let sha = self.put(bytes)?;
        let mut orgs = self.organisations(&sha)?;
        if !orgs.iter().any(|o| o == organisation_id) {
            orgs.push(organisation_id.to_owned());
            let mut text = orgs.join("\n");
            text.push('\n');
            write_atomic(&self.orgs_of(&sha), text.as_bytes()).map_err(io_error)?;
        }
        Ok(sha)
    }

    /// The organisations an original belongs to (empty: none recorded, e.g. stored before
    /// organisations were recorded, or not an original of the document flow).
    pub fn organisations(&self, sha256: &str) -> Result<Vec<String>, StoreError> {
        let sha = checked(sha256)?;
        let path = self.orgs_of(&sha);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Keeps `bytes` durably and returns their SHA-256 (hex). The same bytes stored twice
    /// are one file.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        self.put_as(bytes, "pdf")
    }

    /// N3: keeps a verification report (content-addressed like the originals) and returns
    /// its SHA-256; [`DocumentStore::link_evidence`] ties it to the documents it is about.
    pub fn put_evidence(&self, bytes: &[u8]) -> Result<String, StoreError> {
        self.put_as(bytes, EVIDENCE)
    }

    /// Adds a kept report to a document's evidence index (once).
    pub fn link_evidence(
        &self,
        document_sha256: &str,
        evidence: &EvidenceRef,
    ) -> Result<(), StoreError> {
        let doc = checked(document_sha256)?;
        let mut kept = self.evidence_index(&doc)?;
        if kept.iter().any(|k| k.sha256 == evidence.sha256) {
            return Ok(());
        }
        kept.push(evidence.clone());
        let text: String = kept
            .iter()
            .map(|k| format!("{} {} {}\n", k.sha256, k.sequence, k.record_hash))
            .collect();
        write_atomic(&self.file_of(&doc, EVIDENCE_INDEX), text.as_bytes()).map_err(io_error)
    }

    /// The reports kept about a document, in the order they were kept, each read back and
    /// checked against its hash (an altered report is an error, never served).
    pub fn evidence_of(
        &self,
        document_sha256: &str,
    ) -> Result<Vec<(EvidenceRef, Vec<u8>)>, StoreError> {
        let doc = checked(document_sha256)?;
        self.evidence_index(&doc)?
            .into_iter()
            .map(|k| {
                let bytes = self.read_checked(&k.sha256, EVIDENCE)?;
                Ok((k, bytes))
            })
            .collect()
    }

    fn evidence_index(&self, doc: &str) -> Result<Vec<EvidenceRef>, StoreError> {
        let path = self.file_of(doc, EVIDENCE_INDEX);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut parts = line.split(' ');
                let parsed = (|| {
                    let sha256 = checked(parts.next()?).ok()?;
                    let sequence = parts.next()?.parse().ok()?;
                    let record_hash = checked(parts.next()?).ok()?;
                    Some(EvidenceRef {
                        sha256,
                        sequence,
                        record_hash,
                    })
                })();
                parsed.ok_or_else(|| StoreError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not an evidence line: {line:?}"),
                    ),
                })
            })
            .collect()
    }

    fn put_as(&self, bytes: &[u8], extension: &str) -> Result<String, StoreError> {
        let sha = hex::encode(kyso_pki::crypto::sha256(bytes));
        let path = self.file_of(&sha, extension);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.len() == bytes.len() as u64
        {
            return Ok(sha);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        write_atomic(&path, bytes).map_err(io_error)?;
        Ok(sha)
    }

    /// Removes a file kept here (the journal's documents between steps, once the request
    /// is answered; never an original of the store itself).
    pub fn remove(&self, sha256: &str) -> Result<(), StoreError> {
        let sha = checked(sha256)?;
        let path = self.path_of(&sha);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn next_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(format!("{sha256}.next"))
    }

    /// Keeps `after` as the successor of the original `before` (the same original at a
    /// higher signature level), for every organisation `before` belongs to; returns the
    /// successor's SHA-256.
    pub fn supersede(&self, before: &str, after: &[u8]) -> Result<String, StoreError> {
        let before = checked(before)?;
        let orgs = self.organisations(&before)?;
        let sha = self.put(after)?;
        for o in &orgs {
            self.put_for(after, o)?;
        }
        write_atomic(&self.next_of(&before), sha.as_bytes()).map_err(io_error)?;
        Ok(sha)
    }

    /// The current original for `sha256`: its latest successor ([`Self::supersede`]), or
    /// itself; checked against its name as [`Self::get`].
    pub fn current(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let sha = self.current_sha256(sha256)?;
        self.get(&sha)
    }

    /// The latest successor's SHA-256 of `sha256` ([`Self::supersede`]), or itself.
    pub fn current_sha256(&self, sha256: &str) -> Result<String, StoreError> {
        let mut sha = checked(sha256)?;
        for _ in 0..MAX_SUCCESSORS {
            match std::fs::read_to_string(self.next_of(&sha)) {
                Ok(next) => sha = checked(next.trim())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(source) => {
                    return Err(StoreError::Io {
                        path: self.next_of(&sha),
                        source,
                    });
                }
            }
        }
        Ok(sha)
    }

    /// R1 (archive care): the originals of the document flow (those kept for an
    /// organisation), each by the SHA-256 it was first stored under (a successor is not
    /// listed: it is a version of its first), in hash order after `after`, at most `limit`;
    /// and whether more follow. Every call reads the store's index files (the `.orgs` and
    /// `.next` names and successors), not the documents: one page costs a directory walk.
    pub fn originals(&self, after: &str, limit: usize) -> Result<(Vec<String>, bool), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let mut firsts = Vec::new();
        let mut successors = std::collections::HashSet::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
            Err(e) => return Err(io(&self.root)(e)),
        };
        for dir in rd {
            let dir = dir.map_err(io(&self.root))?.path();
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // The two-hex-digit fan-out folders only (not `upgrades/`, the journals, ...).
            if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) || !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = f.map_err(io(&dir))?.path();
                let Some((stem, ext)) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('.'))
                else {
                    continue;
                };
                match ext {
                    "orgs" => {
                        if let Ok(sha) = checked(stem) {
                            firsts.push(sha);
                        }
                    }
                    "next" => {
                        let next = std::fs::read_to_string(&path).map_err(io(&path))?;
                        if let Ok(sha) = checked(next.trim()) {
                            successors.insert(sha);
                        }
                    }
                    _ => {}
                }
            }
        }
        firsts.retain(|s| !successors.contains(s) && s.as_str() > after);
        firsts.sort();
        let more = firsts.len() > limit;
        firsts.truncate(limit);
        Ok((firsts, more))
    }

    /// The original with this SHA-256, checked against its name.
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let sha = checked(sha256)?;
        self.read_checked(&sha, "pdf")
    }

    fn read_checked(&self, sha: &str, extension: &str) -> Result<Vec<u8>, StoreError> {
        let sha = sha.to_owned();
        let path = self.file_of(&sha, extension);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(sha));
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let actual = hex::encode(kyso_pki::crypto::sha256(&bytes));
        if actual != sha {
            return Err(StoreError::Altered {
                expected: sha,
                actual,
            });
        }
        Ok(bytes)
    }
}

/// Most successors followed: the upgrade (B-B → B-T → B-LT → B-LTA) and, after it, one
/// archive extension (a fresh document timestamp) every year or so for decades; a longer
/// chain is a loop.
const MAX_SUCCESSORS: usize = 128;

/// The extension of a kept verification report (N3).
const EVIDENCE: &str = "evidence";
/// The extension of a document's list of kept reports (N3).
const EVIDENCE_INDEX: &str = "evidence-index";

/// A kept verification report (N3): its SHA-256 and its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRef {
    /// SHA-256 of the report's bytes, hex.
    pub sha256: String,
    /// The audit record's sequence number.
    pub sequence: u64,
    /// The audit record's hash, hex.
    pub record_hash: String,
}

/// A SHA-256 as given, lower-cased, or why it is not one.
fn checked(sha256: &str) -> Result<String, StoreError> {
    let sha = sha256.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::BadHash(sha256.to_owned()));
    }
    Ok(sha)
}

fn io_error((path, source): (PathBuf, std::io::Error)) -> StoreError {
    StoreError::Io { path, source }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file written and fsynced,
/// renamed, then the directory fsynced. A failed write leaves no temporary file behind
/// (a full disk must not fill up further with half files). The error names the file or
/// directory the file system refused (each caller reports it in its own error).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, source));
    }
    std::fs::rename(&tmp, path).map_err(|e| (path.to_path_buf(), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (dir.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stores_once_reads_back_and_detects_an_altered_original_d7() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path().join("docs")).unwrap();
        let a = store.put(b"%PDF-1.7 signed original").unwrap();
        assert_eq!(store.put(b"%PDF-1.7 signed original").unwrap(), a);
        assert_eq!(store.get(&a).unwrap(), b"%PDF-1.7 signed original");
        assert_eq!(store.get(&a.to_ascii_uppercase()).unwrap().len(), 24);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("docs").join(&a[..2]))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        std::fs::write(store.path_of(&a), b"%PDF-1.7 signed 0riginal").unwrap();
        assert!(matches!(store.get(&a), Err(StoreError::Altered { .. })));
        assert!(matches!(
            store.get(&"00".repeat(32)),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.get("../etc/passwd"),
            Err(StoreError::BadHash(_))
        ));
    }

    #[test]
    fn each_original_lists_its_organisations_once_r1() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path()).unwrap();
        let a = store.put_for(b"%PDF-1.7 a", "ubnd").unwrap();
        assert_eq!(store.put_for(b"%PDF-1.7 a", "ubnd").unwrap(), a);
        assert_eq!(store.organisations(&a).unwrap(), ["ubnd"]);
        store.put_for(b"%PDF-1.7 a", "so-tc").unwrap();
        assert_eq!(store.organisations(&a).unwrap(), ["ubnd", "so-tc"]);
        let b = store.put(b"%PDF-1.7 b").unwrap();
        assert!(store.organisations(&b).unwrap().is_empty());
    }

    #[test]
    fn originals_lists_first_hashes_not_successors_nor_loose_files_paged_r1() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path()).unwrap();
        let a = store.put_for(b"%PDF-1.7 a", "ubnd").unwrap();
        let b = store.put_for(b"%PDF-1.7 b", "so-tc").unwrap();
        store.put(b"%PDF-1.7 journal copy").unwrap();
        std::fs::create_dir_all(dir.path().join("upgrades").join("pdf")).unwrap();
        let a2 = store.supersede(&a, b"%PDF-1.7 a + DSS").unwrap();
        let a3 = store
            .supersede(&a2, b"%PDF-1.7 a + DSS + timestamp")
            .unwrap();
        assert_eq!(store.current_sha256(&a).unwrap(), a3);
        assert_eq!(store.current_sha256(&b).unwrap(), b);
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(store.originals("", 10).unwrap(), (want.clone(), false));
        let (first, more) = store.originals("", 1).unwrap();
        assert_eq!((first.as_slice(), more), (&want[..1], true));
        assert_eq!(
            store.originals(&first[0], 1).unwrap(),
            (want[1..].to_vec(), false)
        );
    }

    #[test]
    fn verification_evidence_is_kept_once_per_document_and_checked_n3() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path()).unwrap();
        let doc = store.put_for(b"%PDF-1.7 received", "ubnd").unwrap();
        assert!(store.evidence_of(&doc).unwrap().is_empty());
        let ev = store.put_evidence(b"report one").unwrap();
        let kept = EvidenceRef {
            sha256: ev.clone(),
            sequence: 7,
            record_hash: "ab".repeat(32),
        };
        store.link_evidence(&doc, &kept).unwrap();
        store.link_evidence(&doc, &kept).unwrap();
        let got = store.evidence_of(&doc).unwrap();
        assert_eq!(got, vec![(kept.clone(), b"report one".to_vec())]);
        // A report is not an original: GetDocument's read does not find it.
        assert!(matches!(store.get(&ev), Err(StoreError::NotFound(_))));
        std::fs::write(store.file_of(&ev, EVIDENCE), b"report 0ne").unwrap();
        assert!(matches!(
            store.evidence_of(&doc),
            Err(StoreError::Altered { .. })
        ));
    }
}

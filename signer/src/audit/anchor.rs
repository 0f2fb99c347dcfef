//! Anchors: the head of the log recorded outside the signer (in the registry) at every
//! seal, so that what the file alone cannot show — records removed from its end, the whole
//! file deleted, an older copy restored — is found by comparing the file with its anchors.
//!
//! An anchor names a seal record: its `seq` and its `hash`. The file passes an anchor when
//! the record at that `seq` is in it and has that hash; since every hash covers the whole
//! chain before it, that record's presence proves the file holds everything up to the
//! anchor unchanged.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;

use super::record::{AuditRecord, MAX_LINE};
use super::seal::SealSignature;

/// A log head to anchor (the signer sends it at every seal) or an anchor read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// The seal record's `seq`.
    pub sequence: u64,
    /// The seal record's `hash`, lowercase hex.
    pub head_hash: String,
}

/// A seal made by the log, with what an anchor records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHead {
    /// The seal record's `seq` and `hash`.
    pub anchor: Anchor,
    /// The seal's signature and key.
    pub seal: SealSignature,
    /// The seal record's time.
    pub time: time::OffsetDateTime,
    /// Seals the log made since it was opened, this one included (the anchorer counts the
    /// seals not yet anchored with it).
    pub seals_made: u64,
}

/// Why the file does not hold an anchored head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorMismatchKind {
    /// The file is not there.
    FileMissing,
    /// The file ends before the anchored sequence: records were removed from its end, or an
    /// older copy was restored.
    Behind,
    /// The record at the anchored sequence has another hash: the file was replaced from
    /// that point (an older copy restored and written on, or a rewritten log).
    HashDiffers,
}

impl AnchorMismatchKind {
    /// "file missing", …
    pub fn name(self) -> &'static str {
        match self {
            Self::FileMissing => "file missing",
            Self::Behind => "log behind its anchor",
            Self::HashDiffers => "anchored record differs",
        }
    }
}

impl std::fmt::Display for AnchorMismatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The first anchor the file does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorMismatch {
    /// The anchor.
    pub anchor: Anchor,
    /// What is wrong.
    pub kind: AnchorMismatchKind,
    /// Details for a human.
    pub detail: String,
}

/// Checks that the file at `path` holds every anchor (any order); the first one it does not
/// hold, by sequence. A missing file fails the first anchor (and passes when there is
/// none). Only an I/O error other than "not found" is an `Err`.
///
/// The file is streamed; the records are only parsed far enough to read `seq` and `hash`
/// (the chain itself is [`super::verify_log`]'s and [`super::AuditLog::open`]'s check).
pub fn check_anchors(path: &Path, anchors: &[Anchor]) -> io::Result<Option<AnchorMismatch>> {
    let mut sorted: Vec<&Anchor> = anchors.iter().collect();
    sorted.sort_by_key(|a| a.sequence);
    let Some(first) = sorted.first() else {
        return Ok(None);
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Some(AnchorMismatch {
                anchor: (*first).clone(),
                kind: AnchorMismatchKind::FileMissing,
                detail: format!(
                    "{} does not exist, but the log was anchored at sequence {}",
                    path.display(),
                    first.sequence
                ),
            }));
        }
        Err(e) => return Err(e),
    };
    let wanted: HashMap<u64, &str> = sorted
        .iter()
        .map(|a| (a.sequence, a.head_hash.as_str()))
        .collect();
    let mut found: HashMap<u64, String> = HashMap::with_capacity(wanted.len());
    let mut last_seq = 0u64;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        if (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?
            == 0
        {
            break;
        }
        let Ok(rec) = AuditRecord::parse(&buf) else {
            // A line that is not a record ends what can be matched; the chain check names it.
            break;
        };
        last_seq = last_seq.max(rec.seq);
        if wanted.contains_key(&rec.seq) {
            // The hash the record has, recomputed: a record edited in place cannot keep the
            // anchored hash by stating it.
            found.insert(rec.seq, hex::encode(rec.computed_hash()));
        }
    }
    for a in sorted {
        match found.get(&a.sequence) {
            Some(h) if *h == a.head_hash => {}
            Some(h) => {
                return Ok(Some(AnchorMismatch {
                    anchor: a.clone(),
                    kind: AnchorMismatchKind::HashDiffers,
                    detail: format!(
                        "the record at sequence {} has hash {h}, the anchor {}: the file is not \
                         the log that was anchored (an older copy restored and written on?)",
                        a.sequence, a.head_hash
                    ),
                }));
            }
            None => {
                return Ok(Some(AnchorMismatch {
                    anchor: a.clone(),
                    kind: AnchorMismatchKind::Behind,
                    detail: format!(
                        "the file ends at sequence {last_seq}, but the log was anchored at \
                         sequence {} (hash {}): records were removed from its end or an older \
                         copy was restored",
                        a.sequence, a.head_hash
                    ),
                }));
            }
        }
    }
    Ok(None)
}

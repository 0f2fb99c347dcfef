//! Verification of a log file, streamed line by line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use const_oid::ObjectIdentifier;
use der::Decode;
use serde::Serialize;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::record::{AuditRecord, GENESIS, LineError, MAX_LINE, check_fields, decode_line};
use super::seal::{algorithm_supported, seal_message};

/// What is wrong with a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A record's content does not match its hash, or is not canonical.
    EditedRecord,
    /// A sequence gap: records are missing.
    RemovedRecord,
    /// Records out of order (or repeated).
    ReorderedRecord,
    /// A record's `prev` is not the previous record's hash: a record before
    /// it was replaced (its hash recomputed) or records were spliced.
    ChainBroken,
    /// A line is not a record, or a field is malformed.
    Malformed,
    /// A seal names the wrong head, or its signature does not verify.
    BadSeal,
    /// The last line is incomplete or unparseable: a write cut by a crash
    /// (never acknowledged), or a damaged end of file.
    TornTail,
}

impl ProblemKind {
    /// "edited record", …
    pub fn name(self) -> &'static str {
        match self {
            Self::EditedRecord => "edited record",
            Self::RemovedRecord => "removed record",
            Self::ReorderedRecord => "reordered records",
            Self::ChainBroken => "chain broken",
            Self::Malformed => "malformed record",
            Self::BadSeal => "bad seal",
            Self::TornTail => "torn tail",
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line number.
    pub line: u64,
    /// The sequence number the line states, when it parses.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Details for a human.
    pub detail: String,
}

/// The result of checking a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records that passed every check (up to the first problem).
    pub records: u64,
    /// Of which entries.
    pub entries: u64,
    /// Of which seals.
    pub seals: u64,
    /// Seals whose signature was verified with a given key.
    pub seals_verified: u64,
    /// The `seq` of the last good record (0 for an empty log).
    pub head_seq: u64,
    /// The hash of the last good record, hex (zeros for an empty log).
    pub head_hash: String,
    /// The `seq` of the last good seal.
    pub last_seal_seq: Option<u64>,
    /// Good records after the last seal (a warning, not an error).
    pub unsealed_records: u64,
    /// The first problem; `None` when the log is intact.
    pub problem: Option<Problem>,
    /// Warnings (unsealed tail, seals not checked, no seal).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found (warnings aside).
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Why a seal key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seal key: {0}")]
pub struct SealKeyError(pub String);

/// A public key that may have made seals.
#[derive(Debug, Clone)]
pub struct SealKey {
    spki: SubjectPublicKeyInfoOwned,
    certificate_fingerprint: Option<String>,
}

impl SealKey {
    /// A DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SealKeyError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| SealKeyError(format!("not a SubjectPublicKeyInfo: {e}")))?;
        Ok(Self {
            spki,
            certificate_fingerprint: None,
        })
    }

    /// The key of a certificate (the first of a PEM bundle, or DER); seals
    /// naming this certificate's fingerprint are checked with it first.
    pub fn from_certificate(input: &[u8]) -> Result<Self, SealKeyError> {
        let certs = kyso_pki::cert::Cert::parse_many(input)
            .map_err(|e| SealKeyError(format!("certificate: {e}")))?;
        let cert = certs
            .first()
            .ok_or_else(|| SealKeyError("no certificate".into()))?;
        Ok(Self {
            spki: cert.x509().tbs_certificate.subject_public_key_info.clone(),
            certificate_fingerprint: Some(cert.fingerprint_hex()),
        })
    }

    /// A `PUBLIC KEY` PEM block, or a DER SubjectPublicKeyInfo.
    pub fn from_public_key(input: &[u8]) -> Result<Self, SealKeyError> {
        if !input.trim_ascii_start().starts_with(b"-----") {
            return Self::from_spki_der(input);
        }
        let (label, der) = der::pem::decode_vec(input.trim_ascii())
            .map_err(|e| SealKeyError(format!("PEM: {e}")))?;
        if label != "PUBLIC KEY" {
            return Err(SealKeyError(format!(
                "expected a PUBLIC KEY PEM block, found {label}"
            )));
        }
        Self::from_spki_der(&der)
    }

    /// The certificate fingerprint, when built from a certificate.
    pub fn certificate_fingerprint(&self) -> Option<&str> {
        self.certificate_fingerprint.as_deref()
    }

    fn verifies(&self, alg: ObjectIdentifier, message: &[u8], signature: &[u8]) -> bool {
        let alg = AlgorithmIdentifierOwned {
            oid: alg,
            parameters: None,
        };
        kyso_pki::crypto::verify_signature(
            &self.spki,
            &alg,
            None,
            message,
            signature,
            kyso_pki::crypto::AlgorithmPolicy::default(),
        )
        .is_ok()
    }
}

/// Checks the log at `path`; `seal_keys` are the keys seals may be made
/// with (empty: seal signatures are not checked, with a warning).
///
/// An error is returned only when the file cannot be read; problems in the
/// log are in the report.
pub fn verify_log(path: &Path, seal_keys: &[SealKey]) -> io::Result<VerifyReport> {
    let file = File::open(path)?;
    verify_reader(BufReader::with_capacity(1 << 20, file), seal_keys)
}

/// [`verify_log`] over any reader.
pub fn verify_reader<R: BufRead>(reader: R, seal_keys: &[SealKey]) -> io::Result<VerifyReport> {
    Ok(scan(reader, Some(seal_keys))?.report)
}

/// A scan's result with what the writer needs to continue the chain.
#[derive(Debug)]
pub(crate) struct Scan {
    pub report: VerifyReport,
    /// Hash of the last good record.
    pub head: [u8; 32],
    /// Bytes of the good prefix (up to the end of the last good line).
    pub good_len: u64,
}

/// Reads one line of at most [`MAX_LINE`] bytes (plus its `\n`).
fn next_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    reader.take(MAX_LINE as u64 + 1).read_until(b'\n', buf)
}

/// Scans a log. `keys`: `None` skips signature checks silently (opening for
/// writing), `Some(&[])` skips them with a warning.
pub(crate) fn scan<R: BufRead>(mut reader: R, keys: Option<&[SealKey]>) -> io::Result<Scan> {
    let mut report = VerifyReport {
        records: 0,
        entries: 0,
        seals: 0,
        seals_verified: 0,
        head_seq: 0,
        head_hash: String::new(),
        last_seal_seq: None,
        unsealed_records: 0,
        problem: None,
        warnings: Vec::new(),
    };
    let mut head = GENESIS;
    let mut good_len = 0u64;
    let mut line_no = 0u64;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if next_line(&mut reader, &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let expected = report.head_seq + 1;
        let problem = |seq, kind, detail: String| Problem {
            line: line_no,
            seq,
            kind,
            detail,
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            let at_eof = reader.fill_buf()?.is_empty();
            report.problem = Some(if at_eof {
                problem(
                    None,
                    ProblemKind::TornTail,
                    format!(
                        "the last line ({} bytes) has no newline: a write cut short",
                        buf.len()
                    ),
                )
            } else {
                problem(
                    None,
                    ProblemKind::Malformed,
                    format!("the line is longer than {MAX_LINE} bytes"),
                )
            });
            break;
        };
        let (rec, hash) = match decode_line(line) {
            Ok(r) => r,
            Err(e) => {
                let seq = AuditRecord::parse(line).ok().map(|r| r.seq);
                let at_eof = reader.fill_buf()?.is_empty();
                report.problem = Some(match e {
                    // A write cut short has no newline (the newline is the record's last
                    // byte); a complete last line that is not a record was damaged after it
                    // was written, and is not cut away silently.
                    LineError::Unparseable(e) if at_eof => problem(
                        None,
                        ProblemKind::Malformed,
                        format!(
                            "the last line ends in a newline but is not a record (damaged, not a write cut short): {e}"
                        ),
                    ),
                    LineError::Unparseable(e) => problem(
                        None,
                        ProblemKind::Malformed,
                        format!("the line is not a record: {e}"),
                    ),
                    LineError::NonCanonical => problem(
                        seq,
                        ProblemKind::EditedRecord,
                        "the record is not in canonical form (edited by hand?)".into(),
                    ),
                    LineError::HashMismatch => problem(
                        seq,
                        ProblemKind::EditedRecord,
                        "the record's content does not match its hash".into(),
                    ),
                });
                break;
            }
        };
        if rec.seq != expected {
            report.problem = Some(if rec.seq > expected {
                match find_seq(&mut reader, line_no, expected, rec.seq)? {
                    Some(at) => problem(
                        Some(rec.seq),
                        ProblemKind::ReorderedRecord,
                        format!(
                            "seq {} where seq {expected} was expected; seq {expected} is at line {at}",
                            rec.seq
                        ),
                    ),
                    None if rec.seq == expected + 1 => problem(
                        Some(rec.seq),
                        ProblemKind::RemovedRecord,
                        format!(
                            "seq {} follows seq {}: record {expected} is missing",
                            rec.seq,
                            expected - 1
                        ),
                    ),
                    None => problem(
                        Some(rec.seq),
                        ProblemKind::RemovedRecord,
                        format!(
                            "seq {} follows seq {}: records {expected} to {} are missing",
                            rec.seq,
                            expected - 1,
                            rec.seq - 1
                        ),
                    ),
                }
            } else {
                problem(
                    Some(rec.seq),
                    ProblemKind::ReorderedRecord,
                    format!(
                        "seq {} follows seq {}: records out of order or repeated",
                        rec.seq,
                        expected - 1
                    ),
                )
            });
            break;
        }
        if rec.prev != hex::encode(head) {
            report.problem = Some(problem(
                Some(rec.seq),
                ProblemKind::ChainBroken,
                format!(
                    "prev {} is not the hash of record {} ({}): a record before it was replaced",
                    rec.prev,
                    expected - 1,
                    hex::encode(head)
                ),
            ));
            break;
        }
        if let Err(e) = check_fields(&rec) {
            report.problem = Some(problem(Some(rec.seq), ProblemKind::Malformed, e));
            break;
        }
        if let Some(seal) = &rec.seal {
            if let Err(e) = check_seal(seal, rec.seq, &head, keys) {
                report.problem = Some(problem(Some(rec.seq), ProblemKind::BadSeal, e));
                break;
            }
            if keys.is_some_and(|k| !k.is_empty()) {
                report.seals_verified += 1;
            }
            report.seals += 1;
            report.last_seal_seq = Some(rec.seq);
            report.unsealed_records = 0;
        } else {
            report.entries += 1;
            report.unsealed_records += 1;
        }
        report.records += 1;
        report.head_seq = rec.seq;
        head = hash;
        good_len += buf.len() as u64;
    }
    report.head_hash = hex::encode(head);
    if report.unsealed_records > 0 {
        report.warnings.push(match report.last_seal_seq {
            Some(s) => format!(
                "unsealed tail: {} records after the last seal (seq {s})",
                report.unsealed_records
            ),
            None => format!(
                "unsealed tail: no seal record; none of the {} records is sealed",
                report.unsealed_records
            ),
        });
    }
    if keys.is_some_and(<[SealKey]>::is_empty) && report.seals > 0 {
        report.warnings.push(format!(
            "{} seal signatures not checked: no public key or certificate given",
            report.seals
        ));
    }
    Ok(Scan {
        report,
        head,
        good_len,
    })
}

/// Looks in the rest of the file for a record with `seq` in `from..to`;
/// returns its line number.
fn find_seq<R: BufRead>(
    reader: &mut R,
    mut line_no: u64,
    from: u64,
    to: u64,
) -> io::Result<Option<u64>> {
    let mut buf = Vec::with_capacity(1024);
    while next_line(reader, &mut buf)? > 0 {
        line_no += 1;
        if let Ok(r) = AuditRecord::parse(&buf)
            && (from..to).contains(&r.seq)
        {
            return Ok(Some(line_no));
        }
    }
    Ok(None)
}

fn check_seal(
    seal: &super::record::SealRecord,
    seq: u64,
    head: &[u8; 32],
    keys: Option<&[SealKey]>,
) -> Result<(), String> {
    if seal.through + 1 != seq || seal.head != hex::encode(head) {
        return Err(format!(
            "the seal is for seq {} head {}, but the record before it is seq {} with hash {}",
            seal.through,
            seal.head,
            seq - 1,
            hex::encode(head)
        ));
    }
    let Some(keys) = keys.filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    let alg = ObjectIdentifier::new(&seal.alg_oid)
        .map_err(|e| format!("alg_oid {:?}: {e}", seal.alg_oid))?;
    if !algorithm_supported(&alg) {
        return Err(format!("unsupported seal algorithm {}", seal.alg_oid));
    }
    let sig = hex::decode(&seal.sig).map_err(|e| format!("sig: {e}"))?;
    let message = seal_message(seal.through, head);
    let named: Vec<&SealKey> = keys
        .iter()
        .filter(|k| k.certificate_fingerprint() == Some(seal.cert_sha256.as_str()))
        .collect();
    let candidates: Vec<&SealKey> = if named.is_empty() {
        keys.iter().collect()
    } else {
        named
    };
    if candidates.iter().any(|k| k.verifies(alg, &message, &sig)) {
        Ok(())
    } else {
        Err(format!(
            "the seal signature ({}, key {:?}) does not verify with the given key{}",
            seal.alg,
            seal.key,
            if keys.len() > 1 { "s" } else { "" }
        ))
    }
}

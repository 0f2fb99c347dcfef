//! Records: the public entry type, the wire form, canonical lines and hashes.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::AuditError;

/// The format version written in every new record (`"v"`): 2, whose entries name the
/// holder's consent factor (`factor`). Records of version 1 (no `factor`) still verify.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The first version, still read.
pub(crate) const FORMAT_VERSION_1: u32 = 1;

/// The `prev` of the first record: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// Longest line accepted when reading (a record is a few hundred bytes).
pub(crate) const MAX_LINE: usize = 1 << 20;

/// The suffix length after the hash preimage: `,"hash":"` + 64 + `"}`.
const HASH_SUFFIX_LEN: usize = 75;

/// What the signer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The signature was made (and is returned once the record is durable).
    Signed,
    /// The authority check refused the request.
    Refused {
        /// The rule IDs that refused (e.g. `A7`).
        rules: Vec<String>,
        /// A human-readable explanation.
        reason: String,
    },
    /// The request was allowed but signing failed (HSM error, …).
    Failed {
        /// Why.
        reason: String,
    },
    /// The HSM made the signature, but the CMS or PDF around it could not be built, so it
    /// was never returned: the key was used, and the record says so.
    NotReturned {
        /// Why the document could not be built.
        reason: String,
    },
    /// The holder authorised these digests with a personal key (AuthorizeSignature, A1):
    /// an activation token was issued (format version 2).
    Authorised,
    /// N3, D7: the verification of a received document was kept (no key used); the entry's
    /// digest is the SHA-256 of the kept report, the reason names the documents it is about
    /// (format version 2).
    Evidence {
        /// What the report is about.
        reason: String,
    },
    /// A signature returned below its requested level was raised later (N1, D7): the stored
    /// original `before` (SHA-256, hex) became `after`; `digest` is the signed content's.
    Upgraded {
        /// SHA-256 (hex) of the original before.
        before_sha256: String,
        /// SHA-256 (hex) of the original after.
        after_sha256: String,
    },
    /// Archive care (R1, D7; `ExtendStored`): the stored original's current version `before`
    /// got its missing validation data and a fresh timestamp and became `after`; `digest`
    /// is `after`'s SHA-256.
    Extended {
        /// SHA-256 (hex) of the current version before.
        before_sha256: String,
        /// SHA-256 (hex) of the new current version.
        after_sha256: String,
    },
}

/// The signature level asked for and the level returned (`B_B`, `B_T`, ...): an entry of a
/// request that named or defaulted to a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelNote {
    /// The level the request asked for (or its profile's).
    pub requested: String,
    /// The level the returned signature reaches.
    pub reached: String,
}

/// One signature, refusal or failure to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When the signer decided ("now", given by the caller); written in UTC.
    pub time: OffsetDateTime,
    /// The mTLS client identity.
    pub caller: String,
    /// The signer key name.
    pub key: String,
    /// SHA-256 of the key's certificate, hex (any case), or empty.
    pub certificate_fingerprint: String,
    /// The document digest algorithm (`sha256`, …); empty if none.
    pub digest_algorithm: String,
    /// The document digest; empty if none.
    pub digest: Vec<u8>,
    /// The person who ordered the signature.
    pub acting_person_id: String,
    /// The organisation the document belongs to.
    pub organisation_id: String,
    /// The document type code.
    pub document_type: String,
    /// The document's number and symbol (so ky hieu).
    pub number_and_symbol: String,
    /// The signing profile (proto enum name).
    pub profile: String,
    /// The signing mode (proto enum name).
    pub mode: String,
    /// What was decided.
    pub decision: Decision,
    /// The holder's consent factor (A1): `totp`, `on_behalf`, or empty.
    pub factor: String,
    /// The signature level asked for and reached; `None` for entries without one.
    pub level: Option<LevelNote>,
}

/// The `entry` member of a record, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct EntryRecord {
    pub caller: String,
    pub key: String,
    pub cert_sha256: String,
    pub digest_alg: String,
    pub digest: String,
    pub acting_person_id: String,
    pub organisation_id: String,
    pub document_type: String,
    pub number_and_symbol: String,
    pub profile: String,
    pub mode: String,
    pub decision: String,
    pub rules: Vec<String>,
    pub reason: String,
    /// Version 2 only (always there): the holder's consent factor, `totp`, `on_behalf` or
    /// `""` (no personal key, or refused before consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<String>,
    /// The signature level asked for (`B_B`, `B_T`, ...), when the entry has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_requested: Option<String>,
    /// The level the returned (or upgraded) signature reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_reached: Option<String>,
    /// `upgraded`: SHA-256 (hex) of the stored original before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_sha256: Option<String>,
    /// `upgraded`: SHA-256 (hex) of the stored original after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_sha256: Option<String>,
}

/// The `seal` member of a record, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SealRecord {
    pub through: u64,
    pub head: String,
    pub alg: String,
    pub alg_oid: String,
    pub key: String,
    pub cert_sha256: String,
    pub sig: String,
}

/// One record of the log, as written (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Format version (1).
    pub v: u32,
    /// Sequence number, from 1.
    pub seq: u64,
    /// Hex hash of the previous record.
    pub prev: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// An entry record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryRecord>,
    /// A seal record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealRecord>,
    /// Hex hash of this record (see the hash rule).
    pub hash: String,
}

/// The record without its hash: the hash preimage.
#[derive(Serialize)]
struct Body<'a> {
    v: u32,
    seq: u64,
    prev: &'a str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<&'a EntryRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seal: Option<&'a SealRecord>,
}

/// Why a line is not a good record (before chain checks).
#[derive(Debug)]
pub(crate) enum LineError {
    /// Not JSON, not a record.
    Unparseable(String),
    /// Parses but is not byte-for-byte canonical.
    NonCanonical,
    /// The `hash` member does not match the content.
    HashMismatch,
}

impl AuditRecord {
    fn body(&self) -> Body<'_> {
        Body {
            v: self.v,
            seq: self.seq,
            prev: &self.prev,
            time: &self.time,
            entry: self.entry.as_ref(),
            seal: self.seal.as_ref(),
        }
    }

    /// The hash preimage: the canonical serialisation without `hash`.
    pub fn preimage(&self) -> Vec<u8> {
        // Serialising plain strings, integers and vectors cannot fail.
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }

    /// The SHA-256 of [`AuditRecord::preimage`] (what `hash` must be).
    pub fn computed_hash(&self) -> [u8; 32] {
        kyso_pki::crypto::sha256(&self.preimage())
    }

    /// Sets `hash` to the computed hash and returns the canonical line,
    /// with its `\n`.
    pub fn rehash_line(&mut self) -> Vec<u8> {
        self.hashed_line().0
    }

    /// [`AuditRecord::rehash_line`], with the hash.
    pub(crate) fn hashed_line(&mut self) -> (Vec<u8>, [u8; 32]) {
        let pre = self.preimage();
        let hash = kyso_pki::crypto::sha256(&pre);
        self.hash = hex::encode(hash);
        (splice(pre, &self.hash), hash)
    }

    /// The canonical line for this record as it stands (its `hash` as is),
    /// with its `\n`.
    pub fn to_line(&self) -> Vec<u8> {
        splice(self.preimage(), &self.hash)
    }

    /// Parses one line (with or without its `\n`), without any check.
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(line))
    }

    /// Builds the (unhashed) record of an entry.
    pub(crate) fn for_entry(seq: u64, prev: &[u8; 32], entry: EntryRecord, time: String) -> Self {
        Self {
            v: FORMAT_VERSION,
            seq,
            prev: hex::encode(prev),
            time,
            entry: Some(entry),
            seal: None,
            hash: String::new(),
        }
    }

    /// Builds the (unhashed) record of a seal.
    pub(crate) fn for_seal(seq: u64, prev: &[u8; 32], seal: SealRecord, time: String) -> Self {
        Self {
            v: FORMAT_VERSION,
            seq,
            prev: hex::encode(prev),
            time,
            entry: None,
            seal: Some(seal),
            hash: String::new(),
        }
    }
}

fn splice(mut pre: Vec<u8>, hash_hex: &str) -> Vec<u8> {
    // `pre` ends with the object's closing brace.
    pre.pop();
    pre.extend_from_slice(b",\"hash\":\"");
    pre.extend_from_slice(hash_hex.as_bytes());
    pre.extend_from_slice(b"\"}\n");
    pre
}

/// Parses a line (without `\n`), requires it canonical and its hash right;
/// returns the record and its hash.
pub(crate) fn decode_line(line: &[u8]) -> Result<(AuditRecord, [u8; 32]), LineError> {
    let rec: AuditRecord =
        serde_json::from_slice(line).map_err(|e| LineError::Unparseable(e.to_string()))?;
    // The external hash rule works on the raw bytes; apply it literally so
    // that it is exercised, then insist the bytes are canonical.
    let canonical = rec.to_line();
    if canonical.get(..canonical.len() - 1) != Some(line) || line.len() < HASH_SUFFIX_LEN {
        return Err(LineError::NonCanonical);
    }
    let mut pre = line[..line.len() - HASH_SUFFIX_LEN].to_vec();
    pre.push(b'}');
    let hash = kyso_pki::crypto::sha256(&pre);
    if hex::encode(hash) != rec.hash {
        return Err(LineError::HashMismatch);
    }
    Ok((rec, hash))
}

/// Formats "now" for a record: RFC 3339, UTC, `Z`.
pub(crate) fn format_time(t: OffsetDateTime) -> Result<String, AuditError> {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| AuditError::InvalidEntry(format!("time {t}: {e}")))
}

/// Whether `s` is `n` bytes of lowercase hex (any even length when `n` is 0).
pub(crate) fn is_hex(s: &str, n: usize) -> bool {
    ((n == 0 && s.len().is_multiple_of(2)) || s.len() == n)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks the fields of a parsed record (chain checks aside); the message
/// names the first bad field.
pub(crate) fn check_fields(rec: &AuditRecord) -> Result<(), String> {
    if rec.v != FORMAT_VERSION && rec.v != FORMAT_VERSION_1 {
        return Err(format!("unknown format version {}", rec.v));
    }
    if !is_hex(&rec.prev, 64) {
        return Err("prev is not 64 lowercase hex digits".into());
    }
    match OffsetDateTime::parse(&rec.time, &Rfc3339) {
        Ok(t) if t.offset() == UtcOffset::UTC && rec.time.ends_with('Z') => {}
        Ok(_) => return Err(format!("time {:?} is not in UTC (Z)", rec.time)),
        Err(e) => return Err(format!("time {:?}: {e}", rec.time)),
    }
    match (&rec.entry, &rec.seal) {
        (Some(e), None) => {
            match (rec.v, &e.factor) {
                (FORMAT_VERSION_1, None) => {}
                (FORMAT_VERSION_1, Some(_)) => {
                    return Err("entry.factor in a version 1 record".into());
                }
                (_, None) => return Err("entry.factor missing in a version 2 record".into()),
                (_, Some(f)) if !matches!(f.as_str(), "" | "totp" | "on_behalf") => {
                    return Err(format!("entry.factor {f:?} is not totp/on_behalf/empty"));
                }
                (_, Some(_)) => {}
            }
            if rec.v == FORMAT_VERSION_1 && matches!(e.decision.as_str(), "authorised" | "evidence")
            {
                return Err(format!(
                    "entry.decision {} in a version 1 record",
                    e.decision
                ));
            }
            if !(e.cert_sha256.is_empty() || is_hex(&e.cert_sha256, 64)) {
                return Err("entry.cert_sha256 is not 64 lowercase hex digits".into());
            }
            if !is_hex(&e.digest, 0) {
                return Err("entry.digest is not lowercase hex".into());
            }
            let upgraded = matches!(e.decision.as_str(), "upgraded" | "extended");
            let hashes = [&e.before_sha256, &e.after_sha256];
            if upgraded
                && (rec.v == FORMAT_VERSION_1
                    || !hashes
                        .iter()
                        .all(|h| h.as_deref().is_some_and(|h| is_hex(h, 64))))
            {
                return Err(format!(
                    "entry.decision {} needs before_sha256 and after_sha256",
                    e.decision
                ));
            }
            if !upgraded && hashes.iter().any(|h| h.is_some()) {
                return Err(
                    "entry.before_sha256/after_sha256 only for decision upgraded or extended"
                        .into(),
                );
            }
            match e.decision.as_str() {
                "signed" | "failed" | "not_returned" | "authorised" | "evidence" | "upgraded"
                | "extended"
                    if !e.rules.is_empty() =>
                {
                    Err(format!("entry.rules given for decision {}", e.decision))
                }
                "evidence" if !is_hex(&e.digest, 64) || e.digest_alg != "sha256" => {
                    Err("entry.digest of an evidence record is not a SHA-256".into())
                }
                "signed" | "refused" | "failed" | "not_returned" | "authorised" | "evidence"
                | "upgraded" | "extended" => Ok(()),
                other => Err(format!(
                    "entry.decision {other:?} is not signed/refused/failed/not_returned/authorised/evidence/upgraded/extended"
                )),
            }
        }
        (None, Some(s)) => {
            if !is_hex(&s.head, 64) {
                return Err("seal.head is not 64 lowercase hex digits".into());
            }
            if !(s.cert_sha256.is_empty() || is_hex(&s.cert_sha256, 64)) {
                return Err("seal.cert_sha256 is not 64 lowercase hex digits".into());
            }
            if s.sig.is_empty() || !is_hex(&s.sig, 0) {
                return Err("seal.sig is not lowercase hex".into());
            }
            Ok(())
        }
        (Some(_), Some(_)) => Err("a record has both entry and seal".into()),
        (None, None) => Err("a record has neither entry nor seal".into()),
    }
}

impl AuditEntry {
    /// The wire form; refuses a malformed fingerprint.
    pub(crate) fn to_record(&self) -> Result<(EntryRecord, String), AuditError> {
        let fp = self.certificate_fingerprint.to_ascii_lowercase();
        if !(fp.is_empty() || is_hex(&fp, 64)) {
            return Err(AuditError::InvalidEntry(format!(
                "certificate fingerprint {:?} is not a hex SHA-256",
                self.certificate_fingerprint
            )));
        }
        let (decision, rules, reason) = match &self.decision {
            Decision::Signed => ("signed", Vec::new(), String::new()),
            Decision::Refused { rules, reason } => ("refused", rules.clone(), reason.clone()),
            Decision::Failed { reason } => ("failed", Vec::new(), reason.clone()),
            Decision::NotReturned { reason } => ("not_returned", Vec::new(), reason.clone()),
            Decision::Authorised => ("authorised", Vec::new(), String::new()),
            Decision::Evidence { reason } => ("evidence", Vec::new(), reason.clone()),
            Decision::Upgraded { .. } => ("upgraded", Vec::new(), String::new()),
            Decision::Extended { .. } => ("extended", Vec::new(), String::new()),
        };
        let (before_sha256, after_sha256) = match &self.decision {
            Decision::Upgraded {
                before_sha256,
                after_sha256,
            }
            | Decision::Extended {
                before_sha256,
                after_sha256,
            } => (
                Some(before_sha256.to_ascii_lowercase()),
                Some(after_sha256.to_ascii_lowercase()),
            ),
            _ => (None, None),
        };
        let rec = EntryRecord {
            caller: self.caller.clone(),
            key: self.key.clone(),
            cert_sha256: fp,
            digest_alg: self.digest_algorithm.clone(),
            digest: hex::encode(&self.digest),
            acting_person_id: self.acting_person_id.clone(),
            organisation_id: self.organisation_id.clone(),
            document_type: self.document_type.clone(),
            number_and_symbol: self.number_and_symbol.clone(),
            profile: self.profile.clone(),
            mode: self.mode.clone(),
            decision: decision.to_owned(),
            rules,
            reason,
            factor: Some(self.factor.clone()),
            level_requested: self.level.as_ref().map(|l| l.requested.clone()),
            level_reached: self.level.as_ref().map(|l| l.reached.clone()),
            before_sha256,
            after_sha256,
        };
        Ok((rec, format_time(self.time)?))
    }
}

//! `kyso-pdf`: PDF (PAdES) signatures as a file holds them: a strict reader,
//! the signatures it finds, the checks of their `/ByteRange`, and what changed
//! after each of them (V5: an altered document is refused).
//!
//! - [`parse_signatures`]: every signature of a PDF, in order, with the
//!   revision it covers and the later incremental updates analysed.
//! - [`parse_signatures_with_dss`]: the same and the DSS ([`read_dss`]) from one reading.
//! - [`RangeDigests`]: the digests of all their byte ranges, each byte hashed once.
//!
//! It does not verify the CMS inside `/Contents` nor judge certificates: that is
//! `kyso-validation` (`Verifier::verify_pdf`), which folds these checks with the
//! CMS verdicts. It writes nothing (signing is `kyso-pades`) and does no I/O; it
//! depends on `kyso-pki` only for digests and the BER length of `/Contents`.
//!
//! Input is untrusted: every size, count and depth is bounded by
//! [`PdfLimits`]; nothing is repaired; no `unwrap` on input data.

mod diff;
mod digests;
pub mod dss;
mod file;
pub mod syntax;

use std::collections::HashSet;
use std::rc::Rc;

use serde::Serialize;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use file::PdfFile;
use kyso_pki::crypto::{DigestAlgorithm, Digester};
use syntax::{DictExt, ObjRef, Object};

pub use diff::{Modification, ModificationKind};
pub use digests::RangeDigests;
pub use dss::{DssContents, VriCounts, read_dss};

/// Everything that makes a PDF unreadable for verification. A signature that
/// can be read and fails is not an error: it is a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    /// Not a PDF at all (no header, no end marker).
    #[error("not a PDF: {0}")]
    NotPdf(String),
    /// Larger, deeper or more numerous than [`PdfLimits`] allow.
    #[error("the PDF exceeds a limit: {what} (limit {limit})")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The trailer has `/Encrypt`: the signed bytes cannot be checked without
    /// the password, and kyso does not decrypt.
    #[error("the PDF is encrypted (/Encrypt in the trailer); encrypted PDFs are not verified")]
    Encrypted,
    /// The cross-reference is broken; kyso does not reconstruct it.
    #[error("broken cross-reference at byte {offset}: {reason}")]
    BrokenXref {
        /// Byte offset in the file.
        offset: usize,
        /// Why.
        reason: String,
    },
    /// A token or object is malformed.
    #[error("PDF syntax error at byte {offset}: {reason}")]
    Syntax {
        /// Byte offset in the file (or in a decoded object stream).
        offset: usize,
        /// Why.
        reason: String,
    },
    /// An indirect object is malformed.
    #[error("PDF object {object} {generation}: {reason}")]
    Object {
        /// Object number.
        object: u32,
        /// Generation.
        generation: u16,
        /// Why.
        reason: String,
    },
    /// A feature kyso does not read (a filter on a structural stream, ...).
    #[error("unsupported PDF feature at byte {offset}: {what}")]
    Unsupported {
        /// Byte offset.
        offset: usize,
        /// What.
        what: String,
    },
}

/// Bounds on the work one PDF may cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdfLimits {
    /// Largest file.
    pub max_bytes: usize,
    /// Most cross-reference entries and objects read.
    pub max_objects: usize,
    /// Deepest nesting of arrays and dictionaries (and of form field trees).
    pub max_depth: usize,
    /// Most cross-reference sections in the `/Prev` chain.
    pub max_xref_chain: usize,
    /// Most bytes decoded from structural streams (object and xref streams), all of them
    /// together (64 MiB: structure, not page content, is decoded; a 1,000-page report's
    /// object streams are a few MiB). With one parse per pool thread at a time, this
    /// bounds the decoding memory of a verifier at threads x 64 MiB.
    pub max_decoded_bytes: usize,
    /// Most signatures.
    pub max_signatures: usize,
    /// Most elements of one array or entries of one dictionary read.
    pub max_array_len: usize,
    /// Most form fields (nodes of the `/Fields` and `/Kids` trees) walked in a document.
    pub max_form_fields: usize,
    /// Longest fully qualified form field name (the dotted name), in bytes.
    pub max_field_name_bytes: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_objects: 500_000,
            max_depth: 64,
            max_xref_chain: 256,
            max_decoded_bytes: 64 << 20,
            max_signatures: 64,
            max_array_len: 262_144,
            max_form_fields: 250_000,
            max_field_name_bytes: 8_192,
        }
    }
}

/// One revision: the file from its start up to a `%%EOF`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// 0 is the original document.
    pub index: usize,
    /// Where this revision's bytes start (the end of the previous one).
    pub start: usize,
    /// Where it ends: after `%%EOF` and its end-of-line.
    pub end: usize,
    /// Right after `%%EOF`.
    pub eof_end: usize,
    /// Offset of its cross-reference section.
    pub xref_offset: usize,
    /// Whether that section is a cross-reference stream.
    pub xref_stream: bool,
    /// Objects its cross-reference defines (or frees).
    pub objects: usize,
}

/// A `/ByteRange` that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ByteRange {
    /// `[0, a, b, c]` as written.
    pub ranges: [u64; 4],
    /// The revision whose `%%EOF` the second range ends at.
    pub revision: usize,
    /// Whether the revision is the last and nothing follows it.
    pub whole_document: bool,
}

impl ByteRange {
    /// The two signed ranges as `[start, end)` pairs.
    pub fn spans(&self) -> [(usize, usize); 2] {
        let [a0, a1, b0, b1] = self
            .ranges
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        [(a0, a0.saturating_add(a1)), (b0, b0.saturating_add(b1))]
    }
}

/// Why a `/ByteRange` is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct ByteRangeError(pub String);

/// The kind of signature dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignatureKind {
    /// `/Type /Sig` (or no type): an approval or certification signature.
    Signature,
    /// `/Type /DocTimeStamp` (PAdES document time-stamp).
    DocTimeStamp,
}

/// One signature found in the PDF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmbeddedSignature {
    /// Fully qualified field name (`parent.child`).
    pub field_name: String,
    /// The signature dictionary, when it is an indirect object.
    pub object: Option<(u32, u16)>,
    /// Signature or document time-stamp.
    pub kind: SignatureKind,
    /// `/Filter`.
    pub filter: String,
    /// `/SubFilter` (`ETSI.CAdES.detached`, `adbe.pkcs7.detached`, ...).
    pub sub_filter: String,
    /// `/ByteRange` as written, when it is four non-negative integers.
    pub byte_range: Option<[u64; 4]>,
    /// The outcome of the byte range checks.
    pub coverage: Result<ByteRange, ByteRangeError>,
    /// The CMS from `/Contents`, without its zero padding.
    #[serde(skip)]
    pub contents: Vec<u8>,
    /// `/M`: the claimed signing time of PAdES (no CMS signing-time).
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// `/M` as written, when it is not a valid PDF date.
    pub signing_time_raw: Option<String>,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// `/Name`.
    pub name: Option<String>,
    /// `/ContactInfo`.
    pub contact_info: Option<String>,
    /// The revision whose bytes hold the signature dictionary: the one it
    /// must cover.
    pub revision: usize,
    /// Everything changed by later revisions (or bytes after the last one).
    pub modifications: Vec<Modification>,
    /// Oddities that do not fail the signature by themselves.
    pub warnings: Vec<String>,
}

impl EmbeddedSignature {
    /// Whether a later change is not allowed (V5: an altered document).
    pub fn has_disallowed_modifications(&self) -> bool {
        self.modifications.iter().any(|m| !m.allowed)
    }

    /// The digest of the signed bytes (both ranges), without copying them.
    /// `None` when the byte range failed its checks. For several signatures of one file,
    /// [`RangeDigests`] hashes their shared prefix once.
    pub fn digest(&self, pdf: &[u8], algorithm: DigestAlgorithm) -> Option<Vec<u8>> {
        let br = self.coverage.as_ref().ok()?;
        let mut d = Digester::new(algorithm);
        for (s, e) in br.spans() {
            d.update(pdf.get(s..e)?);
        }
        Some(d.finish())
    }

    /// The signed bytes, both ranges concatenated (a copy; see [`Self::digest`]).
    pub fn signed_bytes(&self, pdf: &[u8]) -> Option<Vec<u8>> {
        let br = self.coverage.as_ref().ok()?;
        let mut out = Vec::new();
        for (s, e) in br.spans() {
            out.extend_from_slice(pdf.get(s..e)?);
        }
        Some(out)
    }
}

/// A PDF's revisions and signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignedPdf {
    /// Oldest first.
    pub revisions: Vec<Revision>,
    /// In the order they were applied (by the revision they cover).
    pub signatures: Vec<EmbeddedSignature>,
    /// Offset of bytes after the last `%%EOF` that are no revision.
    pub trailing_data: Option<usize>,
    /// Total size.
    pub len: usize,
}

/// Reads `pdf` strictly and returns its signatures, each with its byte range
/// checked and the later modifications classified.
pub fn parse_signatures(pdf: &[u8], limits: &PdfLimits) -> Result<SignedPdf, PdfError> {
    let file = PdfFile::parse(pdf, limits)?;
    signatures_of(&file)
}

/// [`parse_signatures`] and then [`read_dss`] over one reading of the file: the revision
/// scan, the cross-reference sections and the objects both need are read once, not twice.
/// The DSS's own result is separate: an unreadable DSS does not make the signatures
/// unreadable. One [`PdfLimits::max_decoded_bytes`] budget covers both.
#[allow(clippy::type_complexity)]
pub fn parse_signatures_with_dss(
    pdf: &[u8],
    limits: &PdfLimits,
) -> Result<(SignedPdf, Result<Option<DssContents>, PdfError>), PdfError> {
    let file = PdfFile::parse(pdf, limits)?;
    let signed = signatures_of(&file)?;
    Ok((signed, dss::read(&file)))
}

fn signatures_of(file: &PdfFile<'_>) -> Result<SignedPdf, PdfError> {
    let pdf = file.data;
    let found = collect_signatures(file)?;
    let updates = diff::analyse_updates(file)?;
    let last = file.revs.len() - 1;
    let mut signatures = Vec::with_capacity(found.len());
    for f in found {
        let mut sig = build_signature(file, f);
        let covered = sig
            .coverage
            .as_ref()
            .map(|b| b.revision)
            .unwrap_or(sig.revision);
        for (rev, mods) in updates.iter().enumerate() {
            if rev > covered {
                sig.modifications.extend(mods.iter().cloned());
            }
        }
        if let Some(off) = file.trailing {
            sig.modifications.push(Modification {
                revision: last + 1,
                kind: ModificationKind::TrailingData,
                object: None,
                allowed: false,
                description: format!(
                    "{} bytes after the last %%EOF (from byte {off}) belong to no revision and are covered by no signature",
                    pdf.len() - off
                ),
            });
        }
        signatures.push(sig);
    }
    signatures.sort_by_key(|s| {
        (
            s.coverage
                .as_ref()
                .map(|b| b.revision)
                .unwrap_or(s.revision),
            s.byte_range.map(|b| b[1]).unwrap_or(0),
        )
    });
    Ok(SignedPdf {
        revisions: file.revs.iter().map(|r| r.info.clone()).collect(),
        signatures,
        trailing_data: file.trailing,
        len: pdf.len(),
    })
}

/// A signature field with its value, as found in some revision.
struct Found {
    field_name: String,
    object: Option<ObjRef>,
    dict: syntax::Dict,
}

/// Every signature value reachable from `/AcroForm /Fields` in any revision
/// (a signature removed by a later update is still reported, with that
/// removal among its modifications).
fn collect_signatures(file: &PdfFile<'_>) -> Result<Vec<Found>, PdfError> {
    let mut out: Vec<Found> = Vec::new();
    let mut seen_spans: HashSet<(usize, usize)> = HashSet::new();
    let mut seen_objects: HashSet<ObjRef> = HashSet::new();
    let limits = &file.limits;
    let mut walked = 0usize;
    for rev in (0..file.revs.len()).rev() {
        let trailer = &file.revs[rev].trailer;
        let Some(root) = trailer.get_key("Root") else {
            continue;
        };
        let Some(catalog) = file.resolve(rev, root)? else {
            continue;
        };
        let Some(af) = catalog.dict().and_then(|d| d.get_key("AcroForm")) else {
            continue;
        };
        let Some(af) = file.resolve(rev, af)? else {
            continue;
        };
        let Some(fields) = af.dict().and_then(|d| d.get_key("Fields")) else {
            continue;
        };
        let Some(fields) = file.resolve(rev, fields)? else {
            continue;
        };
        let Some(fields) = fields.array() else {
            continue;
        };
        // The walk is bounded by construction: a reference is walked once
        // (cycles and shared kids), nodes are counted when pushed, and names
        // are kept as (parent node, partial name), never copied per child.
        let mut nodes: Vec<FieldNode> = Vec::new();
        let mut stack: Vec<(Object, Option<usize>, usize)> = Vec::new();
        let mut visited: HashSet<ObjRef> = HashSet::new();
        for f in fields.iter().rev() {
            push_field(f, None, 0, &mut stack, &mut visited, &mut walked, limits)?;
        }
        while let Some((fo, parent, depth)) = stack.pop() {
            let Some(field) = file.resolve(rev, &fo)? else {
                continue;
            };
            let Some(fd) = field.dict() else {
                continue;
            };
            let partial = fd
                .get_key("T")
                .and_then(Object::string)
                .map(|s| text(&s.bytes));
            let parent_node = parent.and_then(|i| nodes.get(i));
            let parent_len = parent_node.map_or(0, |n| n.name_len);
            let name_len = match &partial {
                Some(p) if parent_len == 0 => p.len(),
                Some(p) => parent_len + 1 + p.len(),
                None => parent_len,
            };
            if name_len > limits.max_field_name_bytes {
                return Err(PdfError::TooLarge {
                    what: "form field name length",
                    limit: limits.max_field_name_bytes,
                });
            }
            let ft: Option<Rc<[u8]>> = fd
                .name_of("FT")
                .map(Rc::from)
                .or_else(|| parent_node.and_then(|n| n.ft.clone()));
            let index = nodes.len();
            nodes.push(FieldNode {
                parent,
                partial,
                name_len,
                ft: ft.clone(),
            });
            if let Some(Object::Array(kids)) = fd
                .get_key("Kids")
                .map(|k| file.resolve(rev, k))
                .transpose()?
                .flatten()
                .as_deref()
            {
                for k in kids.iter().rev() {
                    push_field(
                        k,
                        Some(index),
                        depth + 1,
                        &mut stack,
                        &mut visited,
                        &mut walked,
                        limits,
                    )?;
                }
            }
            if ft.as_deref() != Some(b"Sig") {
                continue;
            }
            let Some(v) = fd.get_key("V") else {
                continue;
            };
            let vref = v.reference();
            let Some(vo) = file.resolve(rev, v)? else {
                continue;
            };
            let Some(vd) = vo.dict() else {
                continue;
            };
            let span = vd
                .get_key("Contents")
                .and_then(Object::string)
                .and_then(|s| s.span);
            let new = match (span, vref) {
                (Some(sp), _) => seen_spans.insert(sp),
                (None, Some(r)) => seen_objects.insert(r),
                (None, None) => true,
            };
            if !new {
                continue;
            }
            if out.len() >= limits.max_signatures {
                return Err(PdfError::TooLarge {
                    what: "signatures",
                    limit: limits.max_signatures,
                });
            }
            out.push(Found {
                field_name: full_name(&nodes, index),
                object: vref,
                dict: vd.clone(),
            });
        }
    }
    Ok(out)
}

/// One form field walked: its partial name under its parent's.
struct FieldNode {
    parent: Option<usize>,
    partial: Option<String>,
    /// Length of the fully qualified name, in bytes.
    name_len: usize,
    /// `/FT`, inherited.
    ft: Option<Rc<[u8]>>,
}

/// Queues one field for the walk: a reference already queued is not queued
/// again, and the count of fields and the depth are checked here, so neither
/// a fan-out of references nor a cycle can grow the stack.
fn push_field(
    f: &Object,
    parent: Option<usize>,
    depth: usize,
    stack: &mut Vec<(Object, Option<usize>, usize)>,
    visited: &mut HashSet<ObjRef>,
    walked: &mut usize,
    limits: &PdfLimits,
) -> Result<(), PdfError> {
    if let Some(r) = f.reference()
        && !visited.insert(r)
    {
        return Ok(());
    }
    if depth > limits.max_depth {
        return Err(PdfError::TooLarge {
            what: "form field tree depth",
            limit: limits.max_depth,
        });
    }
    *walked += 1;
    if *walked > limits.max_form_fields {
        return Err(PdfError::TooLarge {
            what: "form fields",
            limit: limits.max_form_fields,
        });
    }
    stack.push((f.clone(), parent, depth));
    Ok(())
}

/// The fully qualified name of a walked field: its ancestors' partial names
/// joined by dots (bounded by `max_field_name_bytes` when the node was made).
fn full_name(nodes: &[FieldNode], index: usize) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut at = Some(index);
    while let Some(n) = at.and_then(|i| nodes.get(i)) {
        if let Some(p) = &n.partial {
            parts.push(p);
        }
        at = n.parent;
    }
    let mut name = String::new();
    for p in parts.iter().rev() {
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(p);
    }
    name
}

fn build_signature(file: &PdfFile<'_>, f: Found) -> EmbeddedSignature {
    let d = &f.dict;
    let name_str = |k: &str| {
        d.name_of(k)
            .map(|n| String::from_utf8_lossy(n).into_owned())
    };
    let text_of = |k: &str| {
        d.get_key(k)
            .and_then(Object::string)
            .map(|s| text(&s.bytes))
    };
    let kind = if d.name_of("Type") == Some(b"DocTimeStamp") {
        SignatureKind::DocTimeStamp
    } else {
        SignatureKind::Signature
    };
    let mut warnings = Vec::new();
    let contents_obj = d.get_key("Contents").and_then(Object::string);
    let span = contents_obj.and_then(|s| s.span);
    let raw = contents_obj.map(|s| s.bytes.as_slice()).unwrap_or_default();
    let contents = match kyso_pki::ber::element_len(raw, kyso_pki::ber::Limits::default()) {
        Ok(n) => {
            let (cms, pad) = raw.split_at(n.min(raw.len()));
            if pad.iter().any(|b| *b != 0) {
                warnings.push(format!(
                    "/Contents has {} non-zero bytes after the CMS (outside the signed bytes)",
                    pad.iter().filter(|b| **b != 0).count()
                ));
            }
            cms.to_vec()
        }
        // Left to the CMS parser to say what is wrong with it.
        Err(_) => {
            let n = raw.len() - raw.iter().rev().take_while(|b| **b == 0).count();
            raw[..n].to_vec()
        }
    };
    // The revision whose bytes hold /Contents is the one the signature must cover.
    let revision = span
        .and_then(|(s, _)| {
            file.revs
                .iter()
                .position(|r| s >= r.info.start && s < r.info.end)
        })
        .unwrap_or(file.revs.len() - 1);
    let byte_range: Option<[u64; 4]> = d
        .get_key("ByteRange")
        .and_then(Object::array)
        .filter(|a| a.len() == 4)
        .and_then(|a| {
            let v: Option<Vec<u64>> = a
                .iter()
                .map(|x| x.int().and_then(|i| u64::try_from(i).ok()))
                .collect();
            v.and_then(|v| <[u64; 4]>::try_from(v).ok())
        });
    let coverage = check_byte_range(file, d, byte_range, span);
    let (signing_time, signing_time_raw) = match d.get_key("M").and_then(Object::string) {
        None => (None, None),
        Some(s) => match parse_pdf_date(&s.bytes) {
            Some(t) => (Some(t), None),
            None => {
                let raw = String::from_utf8_lossy(&s.bytes).into_owned();
                warnings.push(format!("/M {raw:?} is not a valid PDF date; it is ignored"));
                (None, Some(raw))
            }
        },
    };
    EmbeddedSignature {
        field_name: f.field_name,
        object: f.object.map(|r| (r.num, r.generation)),
        kind,
        filter: name_str("Filter").unwrap_or_default(),
        sub_filter: name_str("SubFilter").unwrap_or_default(),
        byte_range,
        coverage,
        contents,
        signing_time,
        signing_time_raw,
        reason: text_of("Reason"),
        location: text_of("Location"),
        name: text_of("Name"),
        contact_info: text_of("ContactInfo"),
        revision,
        modifications: Vec::new(),
        warnings,
    }
}

/// The byte range rules: exactly two ranges, the first from 0, the gap
/// exactly the `/Contents` string of this dictionary (delimiters included),
/// the second ending at the `%%EOF` of a revision, no overlap, inside the file.
fn check_byte_range(
    file: &PdfFile<'_>,
    d: &syntax::Dict,
    br: Option<[u64; 4]>,
    span: Option<(usize, usize)>,
) -> Result<ByteRange, ByteRangeError> {
    let err = |s: String| Err(ByteRangeError(s));
    let Some(raw) = d.get_key("ByteRange") else {
        return err("the signature dictionary has no /ByteRange".into());
    };
    let Some(arr) = raw.array() else {
        return err("/ByteRange is not a direct array".into());
    };
    if arr.len() != 4 {
        return err(format!(
            "/ByteRange has {} numbers; exactly two ranges (four numbers) are allowed",
            arr.len()
        ));
    }
    let Some(ranges) = br else {
        return err("/ByteRange holds a value that is not a non-negative integer".into());
    };
    let Some((cs, ce)) = span else {
        return err(
            "/Contents is not a string at a known place in the file (an object stream or missing)"
                .into(),
        );
    };
    let Some(c) = d.get_key("Contents").and_then(Object::string) else {
        return err("/Contents is missing".into());
    };
    if !c.hex {
        return err("/Contents is a literal string; it must be a hexadecimal string".into());
    }
    let [a0, a1, b0, b1] = ranges.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
    let len = file.data.len();
    if a0 != 0 {
        return err(format!("the first range starts at {a0}, not at 0"));
    }
    let Some(first_end) = a0.checked_add(a1) else {
        return err("the first range overflows".into());
    };
    let Some(second_end) = b0.checked_add(b1) else {
        return err("the second range overflows".into());
    };
    if b0 < first_end {
        return err(format!(
            "the ranges overlap or are out of order: the second starts at {b0}, before the first ends at {first_end}"
        ));
    }
    if second_end > len {
        return err(format!(
            "the second range ends at {second_end}, past the end of the file ({len})"
        ));
    }
    if first_end != cs || b0 != ce {
        return err(format!(
            "the unsigned gap {first_end}..{b0} is not exactly this signature's /Contents string at {cs}..{ce}"
        ));
    }
    let Some(rev) = file
        .revs
        .iter()
        .find(|r| second_end == r.info.end || second_end == r.info.eof_end)
    else {
        return err(format!(
            "the second range ends at {second_end}, which is not the end (%%EOF) of any revision"
        ));
    };
    if cs < rev.info.start {
        return err(format!(
            "the signature dictionary lies in an earlier revision than the one its range ends at (revision {})",
            rev.info.index
        ));
    }
    let last = file.revs.len() - 1;
    Ok(ByteRange {
        ranges,
        revision: rev.info.index,
        whole_document: rev.info.index == last && file.trailing.is_none(),
    })
}

/// A PDF text string: UTF-16BE with a BOM, UTF-8 with a BOM, or
/// PDFDocEncoding (read as Latin-1, which it equals for the printable range).
pub(crate) fn text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = b.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    b.iter().map(|c| char::from(*c)).collect()
}

/// A PDF date `D:YYYYMMDDHHmmSSOHH'mm'` (ISO 32000-1 §7.9.4; every part
/// after the year optional, `'` after the minutes optional).
pub fn parse_pdf_date(b: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits < 4 || digits % 2 != 0 || digits > 14 {
        return None;
    }
    let num = |from: usize, default: u32| -> Option<u32> {
        if from + 2 <= digits {
            s.get(from..from + 2)?.parse().ok()
        } else {
            Some(default)
        }
    };
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month = Month::try_from(u8::try_from(num(4, 1)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(num(6, 1)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(8, 0)?).ok()?,
        u8::try_from(num(10, 0)?).ok()?,
        u8::try_from(num(12, 0)?).ok()?,
    )
    .ok()?;
    let rest = s.get(digits..)?;
    let offset = match rest.as_bytes().first() {
        None => UtcOffset::UTC,
        Some(b'Z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let t: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let h: i8 = t.get(0..2)?.parse().ok()?;
            let m: i8 = t.get(2..4).map(str::parse).transpose().ok()?.unwrap_or(0);
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        Some(_) => return None,
    };
    let tail = rest.trim_start_matches(['Z', '+', '-']);
    if !tail.chars().all(|c| c.is_ascii_digit() || c == '\'') {
        return None;
    }
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn pdf_dates() {
        assert_eq!(
            parse_pdf_date(b"D:20250314093000+07'00'"),
            Some(datetime!(2025-03-14 09:30:00 +07:00))
        );
        assert_eq!(
            parse_pdf_date(b"D:20250314023000Z"),
            Some(datetime!(2025-03-14 02:30:00 UTC))
        );
        assert_eq!(
            parse_pdf_date(b"D:2025"),
            Some(datetime!(2025-01-01 00:00:00 UTC))
        );
        assert_eq!(parse_pdf_date(b"D:20251399"), None);
        assert_eq!(parse_pdf_date(b"yesterday"), None);
    }

    #[test]
    fn not_a_pdf_and_truncated_are_clear_errors() {
        let l = PdfLimits::default();
        assert!(matches!(
            parse_signatures(b"hello", &l),
            Err(PdfError::NotPdf(_))
        ));
        assert!(matches!(
            parse_signatures(b"%PDF-1.7\n1 0 obj", &l),
            Err(PdfError::NotPdf(_))
        ));
    }
}

//! The file layer: revisions, cross-reference sections and object lookup.
//!
//! A signed PDF is a stack of revisions, each ending with
//! `startxref N %%EOF`. Their boundaries are found from the bytes and the
//! `/Prev` chain together, never guessed: a signature's `/ByteRange` must end
//! exactly at one of them, and every later revision is analysed as an
//! incremental update. A broken cross-reference is refused, not rebuilt,
//! because a rebuilt table is a reader's opinion of the file, and readers
//! differing in opinion is what shadow attacks exploit.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use super::syntax::{Dict, DictExt, Lexer, ObjRef, Object, Stream, is_white};
use super::{PdfError, PdfLimits, Revision};

/// Where the current revision says an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Entry {
    /// Free (deleted).
    Free,
    /// At a byte offset of the file.
    InFile {
        /// Offset of `num gen obj`.
        offset: usize,
        /// Generation.
        generation: u16,
    },
    /// Inside an object stream.
    InStream {
        /// The object stream's number.
        stream: u32,
        /// Index inside it.
        index: u32,
    },
}

/// One cross-reference section with its trailer.
#[derive(Debug)]
struct Section {
    offset: usize,
    trailer: Dict,
    entries: BTreeMap<u32, Entry>,
    is_stream: bool,
}

/// A revision with its cross-reference entries.
#[derive(Debug)]
pub(crate) struct RevData {
    pub(crate) info: Revision,
    pub(crate) trailer: Dict,
    pub(crate) entries: BTreeMap<u32, Entry>,
    /// Offsets of every cross-reference section of this revision.
    pub(crate) sections: Vec<usize>,
}

/// A decoded object stream.
#[derive(Debug)]
struct ObjStm {
    data: Vec<u8>,
    /// `(object number, offset in data)`.
    index: Vec<(u32, usize)>,
}

/// A parsed PDF file: revisions and lazy object access.
#[derive(Debug)]
pub(crate) struct PdfFile<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) limits: PdfLimits,
    pub(crate) revs: Vec<RevData>,
    /// Offset of non-white bytes after the last `%%EOF`, if any.
    pub(crate) trailing: Option<usize>,
    objstms: RefCell<HashMap<usize, Rc<ObjStm>>>,
    objects: RefCell<HashMap<Entry, Rc<Object>>>,
    decoded: Cell<usize>,
}

/// `startxref N %%EOF` found in the bytes.
#[derive(Clone, Copy, Debug)]
struct Marker {
    startxref: usize,
    eof_end: usize,
    end: usize,
}

fn broken(offset: usize, reason: impl Into<String>) -> PdfError {
    PdfError::BrokenXref {
        offset,
        reason: reason.into(),
    }
}

/// Every offset where `needle` starts (overlapping ones too). The one pass over the whole
/// file the reader makes: a vectorised substring search (memchr's), not a window compare at
/// every byte, which cost ~12 instructions per byte of the file.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = hay.get(i..).and_then(|h| finder.find(h)) {
        out.push(i + p);
        i += p + 1;
    }
    out
}

/// The `startxref N` right before a `%%EOF` at `eof`, if there is one.
fn marker_at(data: &[u8], eof: usize) -> Option<Marker> {
    let before = data.get(..eof)?;
    let trimmed = before.len() - before.iter().rev().take_while(|b| is_white(**b)).count();
    let digits = before[..trimmed]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let num_start = trimmed - digits;
    let value: usize = std::str::from_utf8(&before[num_start..trimmed])
        .ok()?
        .parse()
        .ok()?;
    let ws = before[..num_start]
        .iter()
        .rev()
        .take_while(|b| is_white(**b))
        .count();
    if ws == 0 || !before[..num_start - ws].ends_with(b"startxref") {
        return None;
    }
    let eof_end = eof + 5;
    let end = match data.get(eof_end..eof_end + 2) {
        Some(b"\r\n") => eof_end + 2,
        _ => match data.get(eof_end) {
            Some(b'\n' | b'\r') => eof_end + 1,
            _ => eof_end,
        },
    };
    Some(Marker {
        startxref: value,
        eof_end,
        end,
    })
}

impl<'a> PdfFile<'a> {
    /// Reads the structure of `data`: header, revisions, cross-references.
    pub(crate) fn parse(data: &'a [u8], limits: &PdfLimits) -> Result<Self, PdfError> {
        if data.len() > limits.max_bytes {
            return Err(PdfError::TooLarge {
                what: "PDF document (bytes)",
                limit: limits.max_bytes,
            });
        }
        if !data.starts_with(b"%PDF-") {
            return Err(PdfError::NotPdf(
                "the file does not start with the `%PDF-` header".into(),
            ));
        }
        let mut file = PdfFile {
            data,
            limits: limits.clone(),
            revs: Vec::new(),
            trailing: None,
            objstms: RefCell::new(HashMap::new()),
            objects: RefCell::new(HashMap::new()),
            decoded: Cell::new(0),
        };
        let markers: Vec<Marker> = find_all(data, b"%%EOF")
            .into_iter()
            .filter_map(|p| marker_at(data, p))
            .collect();
        let Some(last) = markers.last().copied() else {
            return Err(PdfError::NotPdf(
                "no `startxref … %%EOF` end marker: truncated or not a PDF".into(),
            ));
        };
        let rest = data.get(last.end..).unwrap_or_default();
        if let Some(p) = rest.iter().position(|b| !is_white(*b)) {
            file.trailing = Some(last.end + p);
        }

        // The /Prev chain, newest first.
        let mut chain: Vec<Section> = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(last.startxref);
        let mut total_entries = 0usize;
        while let Some(off) = next {
            if chain.len() >= limits.max_xref_chain {
                return Err(PdfError::TooLarge {
                    what: "cross-reference chain (/Prev sections)",
                    limit: limits.max_xref_chain,
                });
            }
            if !seen.insert(off) {
                return Err(broken(off, "the /Prev chain loops back to this section"));
            }
            let mut section = file.read_section(off)?;
            if let Some(x) = section.trailer.get_key("XRefStm") {
                // Hybrid file: the table wins, the stream fills in the rest.
                let xo = x
                    .int()
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| broken(off, "/XRefStm is not an offset"))?;
                let extra = file.read_section(xo)?;
                if !extra.is_stream {
                    return Err(broken(
                        xo,
                        "/XRefStm does not point to a cross-reference stream",
                    ));
                }
                for (k, v) in extra.entries {
                    section.entries.entry(k).or_insert(v);
                }
            }
            total_entries += section.entries.len();
            if total_entries > limits.max_objects {
                return Err(PdfError::TooLarge {
                    what: "objects in the cross-reference",
                    limit: limits.max_objects,
                });
            }
            if section.trailer.get_key("Encrypt").is_some() {
                return Err(PdfError::Encrypted);
            }
            next = match section.trailer.get_key("Prev") {
                None => None,
                Some(p) => Some(
                    p.int()
                        .and_then(|v| usize::try_from(v).ok())
                        .ok_or_else(|| broken(off, "/Prev is not an offset"))?,
                ),
            };
            chain.push(section);
        }

        // Group the chain into revisions. A /Prev pointing forward is the
        // linearised first-page section and its main section: one revision.
        let mut groups: Vec<Vec<Section>> = Vec::new();
        for s in chain {
            match groups.last_mut() {
                Some(g) if g.last().is_some_and(|l| s.offset > l.offset) => g.push(s),
                _ => groups.push(vec![s]),
            }
        }
        let n = groups.len();
        let mut revs_newest_first: Vec<(Marker, Vec<Section>)> = Vec::new();
        for (gi, g) in groups.into_iter().enumerate() {
            let anchor = g.first().map_or(0, |s| s.offset);
            let max_off = g.iter().map(|s| s.offset).max().unwrap_or(0);
            let marker = if gi == 0 {
                last
            } else {
                markers
                    .iter()
                    .copied()
                    .find(|m| m.startxref == anchor && m.eof_end > max_off)
                    .ok_or_else(|| {
                        broken(
                            anchor,
                            "no `startxref` of a revision points to this cross-reference section",
                        )
                    })?
            };
            revs_newest_first.push((marker, g));
        }
        let _ = n;
        let mut prev_end = 0usize;
        for (i, (marker, sections)) in revs_newest_first.into_iter().rev().enumerate() {
            if marker.end <= prev_end && i > 0 {
                return Err(broken(
                    marker.eof_end,
                    format!("revision {i} does not end after revision {}", i - 1),
                ));
            }
            for s in &sections {
                // An update's cross-reference lives in the update; one inside
                // signed bytes would re-interpret them (a hidden second xref).
                if s.offset < prev_end || s.offset >= marker.eof_end {
                    return Err(broken(
                        s.offset,
                        format!(
                            "the cross-reference section of revision {i} lies outside its bytes {prev_end}..{}",
                            marker.end
                        ),
                    ));
                }
            }
            let mut entries = BTreeMap::new();
            // Oldest section of the group first so that newer entries win.
            for s in sections.iter().rev() {
                for (k, v) in &s.entries {
                    entries.insert(*k, *v);
                }
            }
            let trailer = sections
                .first()
                .map(|s| s.trailer.clone())
                .unwrap_or_default();
            let info = Revision {
                index: i,
                start: prev_end,
                end: marker.end,
                eof_end: marker.eof_end,
                xref_offset: sections.first().map_or(0, |s| s.offset),
                xref_stream: sections.first().is_some_and(|s| s.is_stream),
                objects: entries.len(),
            };
            file.revs.push(RevData {
                info,
                trailer,
                entries,
                sections: sections.iter().map(|s| s.offset).collect(),
            });
            prev_end = marker.end;
        }
        if file.revs.is_empty() {
            return Err(broken(last.startxref, "no revision"));
        }
        Ok(file)
    }

    fn read_section(&self, off: usize) -> Result<Section, PdfError> {
        if off >= self.data.len() {
            return Err(broken(
                off,
                "the cross-reference offset is past the end of the file",
            ));
        }
        let mut lx = Lexer::new(self.data, off, Some(0), self.limits.max_depth)
            .max_len(self.limits.max_array_len);
        if lx.eat_keyword(b"xref") {
            if lx.pos != off + 4 {
                return Err(broken(off, "`startxref` does not point exactly at `xref`"));
            }
            return self.read_table(lx, off);
        }
        // `startxref` must point exactly at the section: a reader that skips
        // ahead to the next object would read a different file.
        if !self.data.get(off).is_some_and(u8::is_ascii_digit) {
            return Err(broken(
                off,
                "`startxref` points neither at `xref` nor at a cross-reference stream object",
            ));
        }
        self.read_xref_stream(off)
    }

    fn read_table(&self, mut lx: Lexer<'_>, off: usize) -> Result<Section, PdfError> {
        let mut entries = BTreeMap::new();
        loop {
            lx.skip_ws();
            if lx.eat_keyword(b"trailer") {
                break;
            }
            let start = lx.unsigned().map_err(|_| {
                broken(
                    lx.offset(),
                    "expected a subsection `start count` or `trailer`",
                )
            })?;
            let count = lx.unsigned()?;
            if count > self.limits.max_objects as u64 {
                return Err(PdfError::TooLarge {
                    what: "objects in a cross-reference subsection",
                    limit: self.limits.max_objects,
                });
            }
            for i in 0..count {
                lx.skip_ws();
                let p = lx.pos;
                let e = self
                    .data
                    .get(p..p + 18)
                    .ok_or_else(|| broken(p, "truncated cross-reference entry"))?;
                let ok = e[..10].iter().all(u8::is_ascii_digit)
                    && e[10] == b' '
                    && e[11..16].iter().all(u8::is_ascii_digit)
                    && e[16] == b' '
                    && matches!(e[17], b'n' | b'f')
                    && self.data.get(p + 18).is_some_and(|b| is_white(*b));
                if !ok {
                    return Err(broken(
                        p,
                        "malformed cross-reference entry (expected `nnnnnnnnnn ggggg n`)",
                    ));
                }
                let num = u32::try_from(start + i)
                    .map_err(|_| broken(p, "object number out of range"))?;
                let offset: usize = parse_digits(&e[..10]);
                let generation = u16::try_from(parse_digits(&e[11..16]))
                    .map_err(|_| broken(p, "generation out of range"))?;
                let entry = if e[17] == b'n' {
                    Entry::InFile { offset, generation }
                } else {
                    Entry::Free
                };
                if num != 0 {
                    entries.insert(num, entry);
                }
                lx.pos = p + 18;
            }
        }
        let trailer = match lx.object()? {
            Object::Dict(d) => d,
            _ => return Err(broken(lx.offset(), "the trailer is not a dictionary")),
        };
        Ok(Section {
            offset: off,
            trailer,
            entries,
            is_stream: false,
        })
    }

    fn read_xref_stream(&self, off: usize) -> Result<Section, PdfError> {
        let mut lx = Lexer::new(self.data, off, Some(0), self.limits.max_depth)
            .max_len(self.limits.max_array_len);
        let r = lx.object_header().map_err(|_| {
            broken(
                off,
                "`startxref` points neither at `xref` nor at a cross-reference stream",
            )
        })?;
        let obj = self.finish_indirect(lx, r, None)?;
        let Object::Stream(s) = obj else {
            return Err(broken(off, "the cross-reference object is not a stream"));
        };
        if s.dict.name_of("Type") != Some(b"XRef") {
            return Err(broken(off, "the object at `startxref` is not /Type /XRef"));
        }
        let w: Vec<usize> = s
            .dict
            .get_key("W")
            .and_then(Object::array)
            .and_then(|a| {
                a.iter()
                    .map(|x| x.int().and_then(|v| usize::try_from(v).ok()))
                    .collect::<Option<Vec<_>>>()
            })
            .filter(|w| w.len() == 3 && w.iter().all(|x| *x <= 8))
            .ok_or_else(|| broken(off, "/W must be three widths of at most 8 bytes"))?;
        let width: usize = w.iter().sum();
        if width == 0 {
            return Err(broken(off, "/W widths are all zero"));
        }
        let size = s
            .dict
            .get_key("Size")
            .and_then(Object::int)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| broken(off, "/Size missing"))?;
        let index: Vec<(u64, u64)> = match s.dict.get_key("Index") {
            None => vec![(0, size)],
            Some(Object::Array(a)) if a.len() % 2 == 0 => a
                .chunks(2)
                .map(|c| {
                    Some((
                        u64::try_from(c[0].int()?).ok()?,
                        u64::try_from(c[1].int()?).ok()?,
                    ))
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| broken(off, "/Index holds a negative or non-integer value"))?,
            Some(_) => return Err(broken(off, "/Index is not an array of pairs")),
        };
        let data = self.decode_stream(&s, off)?;
        let total: u64 = index.iter().map(|(_, c)| *c).sum();
        if total > self.limits.max_objects as u64 {
            return Err(PdfError::TooLarge {
                what: "objects in a cross-reference stream",
                limit: self.limits.max_objects,
            });
        }
        if (data.len() as u64) < total * width as u64 {
            return Err(broken(
                off,
                "the cross-reference stream is shorter than /Index and /W say",
            ));
        }
        let field = |row: &[u8], i: usize| -> u64 {
            let start: usize = w[..i].iter().sum();
            row[start..start + w[i]]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        };
        let mut entries = BTreeMap::new();
        let mut rows = data.chunks_exact(width);
        for (start, count) in index {
            for i in 0..count {
                let row = rows
                    .next()
                    .ok_or_else(|| broken(off, "truncated cross-reference stream"))?;
                let num = u32::try_from(start + i)
                    .map_err(|_| broken(off, "object number out of range"))?;
                let kind = if w[0] == 0 { 1 } else { field(row, 0) };
                let entry = match kind {
                    0 => Entry::Free,
                    1 => Entry::InFile {
                        offset: usize::try_from(field(row, 1))
                            .map_err(|_| broken(off, "offset out of range"))?,
                        generation: u16::try_from(field(row, 2))
                            .map_err(|_| broken(off, "generation out of range"))?,
                    },
                    2 => Entry::InStream {
                        stream: u32::try_from(field(row, 1))
                            .map_err(|_| broken(off, "object stream number out of range"))?,
                        index: u32::try_from(field(row, 2))
                            .map_err(|_| broken(off, "object stream index out of range"))?,
                    },
                    // ISO 32000-1 §7.5.8.3: unknown types are references to null.
                    _ => Entry::Free,
                };
                if num != 0 {
                    entries.insert(num, entry);
                }
            }
        }
        Ok(Section {
            offset: off,
            trailer: s.dict,
            entries,
            is_stream: true,
        })
    }

    /// After `num gen obj`: the value, the stream data if any, `endobj`.
    /// `rev` resolves an indirect `/Length`; `None` requires a direct one.
    fn finish_indirect(
        &self,
        mut lx: Lexer<'_>,
        r: ObjRef,
        rev: Option<usize>,
    ) -> Result<Object, PdfError> {
        let value = lx.object()?;
        let value = match value {
            Object::Dict(dict) if lx.eat_keyword(b"stream") => {
                let mut p = lx.pos;
                match self.data.get(p..p + 2) {
                    Some(b"\r\n") => p += 2,
                    _ if self.data.get(p) == Some(&b'\n') => p += 1,
                    _ => {
                        return Err(PdfError::Syntax {
                            offset: p,
                            reason: "`stream` must be followed by CRLF or LF".into(),
                        });
                    }
                }
                let len = match dict.get_key("Length") {
                    Some(Object::Int(n)) => *n,
                    Some(Object::Ref(lr)) if rev.is_some() && *lr != r => {
                        let rev = rev.unwrap_or(0);
                        match self.resolve_plain(rev, *lr)? {
                            Some(Object::Int(n)) => n,
                            _ => -1,
                        }
                    }
                    _ => -1,
                };
                let len = usize::try_from(len).map_err(|_| PdfError::Object {
                    object: r.num,
                    generation: r.generation,
                    reason: "the stream /Length is missing or not a non-negative integer".into(),
                })?;
                let end = p
                    .checked_add(len)
                    .filter(|e| *e <= self.data.len())
                    .ok_or_else(|| PdfError::Object {
                        object: r.num,
                        generation: r.generation,
                        reason: "the stream runs past the end of the file".into(),
                    })?;
                lx.pos = end;
                if !lx.eat_keyword(b"endstream") {
                    return Err(PdfError::Object {
                        object: r.num,
                        generation: r.generation,
                        reason: "no `endstream` where /Length says the data ends".into(),
                    });
                }
                Object::Stream(Stream {
                    dict,
                    data: (p, end),
                })
            }
            v => v,
        };
        lx.expect_keyword("endobj").map_err(|_| PdfError::Object {
            object: r.num,
            generation: r.generation,
            reason: "no `endobj` after the value".into(),
        })?;
        Ok(value)
    }

    /// The `/Length` object: an integer at a file offset, no further indirection.
    fn resolve_plain(&self, rev: usize, r: ObjRef) -> Result<Option<Object>, PdfError> {
        match self.entry(rev, r.num) {
            Some(Entry::InFile { offset, .. }) => {
                let mut lx = Lexer::new(self.data, offset, Some(0), 2);
                let found = lx.object_header()?;
                if found != r {
                    return Err(broken(
                        offset,
                        format!("the cross-reference says {r} but the file has {found}"),
                    ));
                }
                let v = lx.object()?;
                lx.expect_keyword("endobj")?;
                Ok(Some(v))
            }
            Some(Entry::InStream { .. }) => Ok(self.get(rev, r)?.map(|o| (*o).clone())),
            _ => Ok(None),
        }
    }

    /// The cross-reference entry of `num` as of revision `rev`.
    pub(crate) fn entry(&self, rev: usize, num: u32) -> Option<Entry> {
        self.revs
            .get(..=rev)?
            .iter()
            .rev()
            .find_map(|r| r.entries.get(&num).copied())
    }

    /// The object `r` as of revision `rev` (`None`: free or absent, which
    /// PDF reads as null).
    pub(crate) fn get(&self, rev: usize, r: ObjRef) -> Result<Option<Rc<Object>>, PdfError> {
        let Some(entry) = self.entry(rev, r.num) else {
            return Ok(None);
        };
        match entry {
            Entry::Free => return Ok(None),
            Entry::InFile { generation, .. } if generation != r.generation => return Ok(None),
            Entry::InStream { .. } if r.generation != 0 => return Ok(None),
            _ => {}
        }
        if let Some(o) = self.objects.borrow().get(&entry) {
            return Ok(Some(o.clone()));
        }
        let obj = match entry {
            Entry::Free => return Ok(None),
            Entry::InFile { offset, .. } => {
                if offset >= self.data.len() {
                    return Err(broken(
                        offset,
                        format!("object {r} points past the end of the file"),
                    ));
                }
                let mut lx = Lexer::new(self.data, offset, Some(0), self.limits.max_depth)
                    .max_len(self.limits.max_array_len);
                let found = lx.object_header().map_err(|_| {
                    broken(offset, format!("the cross-reference says object {r} is here, but there is no object header"))
                })?;
                if found != r {
                    return Err(broken(
                        offset,
                        format!("the cross-reference says {r} but the file has {found}"),
                    ));
                }
                self.finish_indirect(lx, r, Some(rev))?
            }
            Entry::InStream { stream, index } => self.read_from_objstm(rev, r, stream, index)?,
        };
        if self.objects.borrow().len() >= self.limits.max_objects {
            return Err(PdfError::TooLarge {
                what: "objects read",
                limit: self.limits.max_objects,
            });
        }
        let obj = Rc::new(obj);
        self.objects.borrow_mut().insert(entry, obj.clone());
        Ok(Some(obj))
    }

    /// Follows a reference (one level: a reference to a reference is not
    /// followed further, which also ends reference cycles).
    pub(crate) fn resolve(&self, rev: usize, o: &Object) -> Result<Option<Rc<Object>>, PdfError> {
        match o {
            Object::Ref(r) => self.get(rev, *r),
            other => Ok(Some(Rc::new(other.clone()))),
        }
    }

    fn read_from_objstm(
        &self,
        rev: usize,
        r: ObjRef,
        stream: u32,
        index: u32,
    ) -> Result<Object, PdfError> {
        let Some(Entry::InFile { offset, generation }) = self.entry(rev, stream) else {
            return Err(PdfError::Object {
                object: r.num,
                generation: r.generation,
                reason: format!("its object stream {stream} is not a plain object of the file"),
            });
        };
        let cached = self.objstms.borrow().get(&offset).cloned();
        let stm = match cached {
            Some(s) => s,
            None => {
                let sref = ObjRef {
                    num: stream,
                    generation,
                };
                let so = self.get(rev, sref)?;
                let Some(Object::Stream(s)) = so.as_deref() else {
                    return Err(PdfError::Object {
                        object: stream,
                        generation,
                        reason: "an object stream is not a stream".into(),
                    });
                };
                let s = self.parse_objstm(s, sref)?;
                let s = Rc::new(s);
                self.objstms.borrow_mut().insert(offset, s.clone());
                s
            }
        };
        let (num, at) = stm
            .index
            .get(index as usize)
            .copied()
            .ok_or_else(|| PdfError::Object {
                object: r.num,
                generation: 0,
                reason: format!("index {index} is past the end of object stream {stream}"),
            })?;
        if num != r.num {
            return Err(PdfError::Object {
                object: r.num,
                generation: 0,
                reason: format!("object stream {stream} holds object {num} at index {index}"),
            });
        }
        let mut lx = Lexer::new(&stm.data, at, None, self.limits.max_depth)
            .max_len(self.limits.max_array_len);
        let v = lx.object()?;
        Ok(v)
    }

    fn parse_objstm(&self, s: &Stream, r: ObjRef) -> Result<ObjStm, PdfError> {
        let err = |reason: &str| PdfError::Object {
            object: r.num,
            generation: r.generation,
            reason: reason.into(),
        };
        if s.dict.name_of("Type") != Some(b"ObjStm") {
            return Err(err("not /Type /ObjStm"));
        }
        let n = s
            .dict
            .get_key("N")
            .and_then(Object::int)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| err("/N missing"))?;
        let first = s
            .dict
            .get_key("First")
            .and_then(Object::int)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| err("/First missing"))?;
        if n > self.limits.max_objects {
            return Err(PdfError::TooLarge {
                what: "objects in an object stream",
                limit: self.limits.max_objects,
            });
        }
        let data = self.decode_stream(s, s.data.0)?;
        let mut lx = Lexer::new(&data, 0, None, 1);
        let mut index = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let num =
                u32::try_from(lx.unsigned()?).map_err(|_| err("object number out of range"))?;
            let off = usize::try_from(lx.unsigned()?).map_err(|_| err("offset out of range"))?;
            let at = first
                .checked_add(off)
                .filter(|a| *a < data.len())
                .ok_or_else(|| err("an offset points past the end of the object stream"))?;
            index.push((num, at));
        }
        Ok(ObjStm { data, index })
    }

    /// Decodes a stream's data (FlateDecode with PNG or TIFF predictors, or
    /// none), bounded by the limits (a small stream can inflate to gigabytes).
    pub(crate) fn decode_stream(&self, s: &Stream, off: usize) -> Result<Vec<u8>, PdfError> {
        let raw = self.data.get(s.data.0..s.data.1).unwrap_or_default();
        let filters: Vec<&[u8]> = match s.dict.get_key("Filter") {
            None => Vec::new(),
            Some(Object::Name(n)) => vec![n.as_slice()],
            Some(Object::Array(a)) => a.iter().filter_map(Object::name).collect(),
            Some(_) => {
                return Err(PdfError::Unsupported {
                    offset: off,
                    what: "a /Filter that is not a name".into(),
                });
            }
        };
        let parms = match s.dict.get_key("DecodeParms") {
            Some(Object::Dict(d)) => Some(d),
            Some(Object::Array(a)) => a.first().and_then(Object::dict),
            _ => None,
        };
        let budget = self
            .limits
            .max_decoded_bytes
            .saturating_sub(self.decoded.get());
        let out = match filters.as_slice() {
            [] => raw.to_vec(),
            [b"FlateDecode"] => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(raw)
                    .take(budget as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| PdfError::Syntax {
                        offset: off,
                        reason: format!("FlateDecode: {e}"),
                    })?;
                out
            }
            other => {
                return Err(PdfError::Unsupported {
                    offset: off,
                    what: format!(
                        "filter {:?} on a structural stream",
                        other
                            .iter()
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect::<Vec<_>>()
                    ),
                });
            }
        };
        if out.len() > budget {
            return Err(PdfError::TooLarge {
                what: "decoded stream bytes",
                limit: self.limits.max_decoded_bytes,
            });
        }
        self.decoded.set(self.decoded.get() + out.len());
        match parms {
            Some(p) => unpredict(out, p, off),
            None => Ok(out),
        }
    }
}

fn parse_digits(d: &[u8]) -> usize {
    d.iter().fold(0usize, |a, b| {
        a.saturating_mul(10).saturating_add(usize::from(b - b'0'))
    })
}

/// Undoes a PNG (10–15) or TIFF (2) predictor (ISO 32000-1 §7.4.4.4).
fn unpredict(data: Vec<u8>, p: &Dict, off: usize) -> Result<Vec<u8>, PdfError> {
    let get = |k: &str, d: i64| p.get_key(k).and_then(Object::int).unwrap_or(d);
    let predictor = get("Predictor", 1);
    if predictor == 1 {
        return Ok(data);
    }
    let colors = get("Colors", 1);
    let bpc = get("BitsPerComponent", 8);
    let columns = get("Columns", 1);
    let bad = || PdfError::Unsupported {
        offset: off,
        what: "predictor parameters out of range".into(),
    };
    if !(1..=32).contains(&colors)
        || ![1, 2, 4, 8, 16].contains(&bpc)
        || !(1..=1 << 20).contains(&columns)
    {
        return Err(bad());
    }
    let bpp = usize::try_from((colors * bpc + 7) / 8).map_err(|_| bad())?;
    let row = usize::try_from((colors * bpc * columns + 7) / 8).map_err(|_| bad())?;
    if predictor == 2 {
        if bpc != 8 {
            return Err(bad());
        }
        let mut out = data;
        for r in out.chunks_mut(row) {
            for i in bpp..r.len() {
                r[i] = r[i].wrapping_add(r[i - bpp]);
            }
        }
        return Ok(out);
    }
    if !(10..=15).contains(&predictor) {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        let (&ft, line) = chunk.split_first().ok_or_else(bad)?;
        let mut cur = line.to_vec();
        cur.resize(row, 0);
        for i in 0..row {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let b = prev[i];
            let c = if i >= bpp { prev[i - bpp] } else { 0 };
            cur[i] = match ft {
                0 => cur[i],
                1 => cur[i].wrapping_add(a),
                2 => cur[i].wrapping_add(b),
                3 => cur[i].wrapping_add(((u16::from(a) + u16::from(b)) / 2) as u8),
                4 => {
                    let pa = (i16::from(b) - i16::from(c)).abs();
                    let pb = (i16::from(a) - i16::from(c)).abs();
                    let pc = (i16::from(a) + i16::from(b) - 2 * i16::from(c)).abs();
                    let pr = if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    };
                    cur[i].wrapping_add(pr)
                }
                _ => {
                    return Err(PdfError::Syntax {
                        offset: off,
                        reason: format!("unknown PNG filter type {ft}"),
                    });
                }
            };
        }
        out.extend_from_slice(&cur[..line.len().min(row)]);
        prev = cur;
    }
    Ok(out)
}

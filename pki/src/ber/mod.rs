//! BER to DER normalisation, and a small borrowed DER element reader.
//!
//! `openssl cms -sign -stream` writes BER: indefinite lengths and the
//! encapsulated content as a constructed OCTET STRING. `der` 0.7 only decodes
//! DER, so [`to_der`] rewrites the length and string encodings and nothing
//! else: SET OF order and every other byte stay as the signer wrote them,
//! because the signed attributes must be verified as encoded.
//!
//! The walk is two linear passes (measure, then emit) bounded by [`Limits`];
//! all input is treated as hostile.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Bounds applied while walking BER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting accepted (the outermost element is depth 1).
    pub max_depth: usize,
    /// Largest input, and largest declared element length, accepted.
    pub max_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_len: 64 * 1024 * 1024,
        }
    }
}

/// Longest tag accepted: the first byte plus four bytes of tag number.
const MAX_TAG_BYTES: usize = 5;
/// Longest long-form length accepted, in bytes after the first.
const MAX_LENGTH_BYTES: usize = 8;

/// Re-encodes BER as DER lengths and primitive strings.
///
/// - indefinite lengths become definite;
/// - constructed universal strings (OCTET STRING, BIT STRING, the character
///   strings and times) become primitive with their segments concatenated;
/// - non-minimal length encodings become minimal.
///
/// Everything else (tags, SET OF order, BOOLEAN and INTEGER contents) is kept
/// byte for byte. Input that needs no change is returned borrowed. The input
/// must hold exactly one element.
pub fn to_der(input: &[u8], limits: Limits) -> Result<Cow<'_, [u8]>> {
    to_der_inner(input, limits, None)
}

/// [`to_der`] and [`check_set_sizes`] (with `max_set` and `limits.max_depth`) in one walk:
/// the SET sizes are counted while the input is measured, so input that is already DER
/// (most of it) is walked once instead of twice. Accepts and refuses what the two calls
/// in a row do (a SET over the limit is refused whether it is found in the BER or in the
/// DER: flattening strings does not change a SET's element count).
pub fn to_der_set_limited(input: &[u8], limits: Limits, max_set: usize) -> Result<Cow<'_, [u8]>> {
    to_der_inner(input, limits, Some(max_set))
}

fn to_der_inner(input: &[u8], limits: Limits, max_set: Option<usize>) -> Result<Cow<'_, [u8]>> {
    if input.len() > limits.max_len {
        return Err(Error::TooLarge {
            what: "BER input",
            limit: limits.max_len,
        });
    }
    if input.is_empty() {
        return Err(Error::malformed("BER", "empty input"));
    }
    let mut walker = Walker::new(input, limits);
    walker.max_set = max_set;
    let (next, total) = walker.measure(0, input.len(), 1)?;
    if next != input.len() {
        return Err(Error::malformed(
            "BER",
            format!(
                "{} bytes of trailing data after the element",
                input.len().saturating_sub(next)
            ),
        ));
    }
    if !walker.changed {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(total);
    walker.emit(0, input.len(), 1, &mut out)?;
    Ok(Cow::Owned(out))
}

/// The length in bytes of the first BER element of `input`, trailing data
/// ignored (e.g. the zero padding after a CMS in a PDF `/Contents`).
pub fn element_len(input: &[u8], limits: Limits) -> Result<usize> {
    let end = input.len().min(limits.max_len);
    let mut walker = Walker::new(input, limits);
    let (next, _) = walker.measure(0, end, 1)?;
    Ok(next)
}

/// One DER element, borrowed from its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The first identifier octet (class, constructed bit, short tag number).
    pub tag: u8,
    /// Whether the constructed bit is set.
    pub constructed: bool,
    /// The whole element: identifier, length and contents.
    pub raw: &'a [u8],
    /// The contents octets.
    pub content: &'a [u8],
}

/// Reads one definite-length element at the start of `input`; returns it and
/// the rest of the input.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let h = parse_header(input, 0, input.len(), usize::MAX)?;
    let len = h
        .len
        .ok_or_else(|| Error::malformed("DER", "indefinite length"))?;
    let end = h
        .content_start
        .checked_add(len)
        .filter(|end| *end <= input.len())
        .ok_or_else(|| Error::malformed("DER", "length past the end of the input"))?;
    let raw = input
        .get(..end)
        .ok_or_else(|| Error::malformed("DER", "length past the end of the input"))?;
    let content = raw
        .get(h.content_start..)
        .ok_or_else(|| Error::malformed("DER", "truncated header"))?;
    let rest = input.get(end..).unwrap_or_default();
    Ok((
        Tlv {
            tag: h.first,
            constructed: h.constructed,
            raw,
            content,
        },
        rest,
    ))
}

/// Iterates the elements of a DER contents (the children of a constructed
/// element); yields an error once, then stops, on malformed input.
pub fn children(content: &[u8]) -> Children<'_> {
    Children {
        rest: content,
        failed: false,
    }
}

/// Iterator returned by [`children`].
#[derive(Debug, Clone)]
pub struct Children<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match read_tlv(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The most elements of one SET OF that any structure kyso decodes may hold: names,
/// attributes, CMS certificate and signer sets all stay far below it.
pub const MAX_SET_ELEMENTS: usize = 256;

/// Rejects DER in which a SET (universal or context-tagged, the tags used by
/// IMPLICIT SET OF in CMS) has more than `max` elements.
///
/// `der` sorts every SET OF it decodes with an insertion sort, quadratic in
/// the element count; this keeps a hostile message from turning that into a
/// denial of service. `der` must already be DER (see [`to_der`]).
pub fn check_set_sizes(der: &[u8], max: usize, max_depth: usize) -> Result<()> {
    fn walk(content: &[u8], set_like: bool, max: usize, depth: usize) -> Result<()> {
        if depth == 0 {
            return Err(Error::TooLarge {
                what: "DER nesting depth",
                limit: 0,
            });
        }
        let mut count = 0usize;
        for child in children(content) {
            let child = child?;
            count = count.saturating_add(1);
            if set_like && count > max {
                return Err(Error::TooLarge {
                    what: "SET OF element count",
                    limit: max,
                });
            }
            if child.constructed {
                let child_set_like = child.tag == 0x31 || child.tag & 0xC0 == 0x80;
                walk(child.content, child_set_like, max, depth - 1)?;
            }
        }
        Ok(())
    }
    walk(der, false, max, max_depth.saturating_add(1))
}

/// A parsed identifier and length.
#[derive(Clone, Copy, Debug)]
struct Header {
    /// First identifier octet.
    first: u8,
    constructed: bool,
    /// Bytes of the identifier.
    tag_len: usize,
    /// `None` for the indefinite form.
    len: Option<usize>,
    /// Whether the length was encoded in its shortest form.
    len_minimal: bool,
    content_start: usize,
}

impl Header {
    fn universal(&self) -> bool {
        self.first & 0xC0 == 0
    }

    /// Universal string types that BER allows in constructed form: their
    /// segments are concatenated in DER.
    fn flattenable_string(&self) -> bool {
        self.universal()
            && self.constructed
            && matches!(
                self.first & 0x1F,
                3 | 4 | 12 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28 | 30
            )
    }

    fn is_bit_string(&self) -> bool {
        self.first & 0x1F == 3
    }
}

/// Parses the identifier and length at `pos`, reading no further than `end`.
fn parse_header(input: &[u8], pos: usize, end: usize, max_len: usize) -> Result<Header> {
    let byte = |i: usize| -> Result<u8> {
        if i >= end {
            return Err(Error::malformed(
                "BER",
                format!("truncated header at offset {pos}"),
            ));
        }
        input
            .get(i)
            .copied()
            .ok_or_else(|| Error::malformed("BER", format!("truncated header at offset {pos}")))
    };
    let first = byte(pos)?;
    let mut i = pos + 1;
    if first & 0x1F == 0x1F {
        // High tag number form: base-128 continuation bytes.
        loop {
            let b = byte(i)?;
            i += 1;
            if i - pos > MAX_TAG_BYTES {
                return Err(Error::malformed(
                    "BER",
                    format!("tag number longer than 4 bytes at offset {pos}"),
                ));
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag_len = i - pos;
    let lb = byte(i)?;
    i += 1;
    let (len, len_minimal) = match lb {
        0x00..=0x7F => (Some(usize::from(lb)), true),
        0x80 => (None, true),
        0xFF => {
            return Err(Error::malformed(
                "BER",
                format!("reserved length octet 0xFF at offset {pos}"),
            ));
        }
        _ => {
            let n = usize::from(lb & 0x7F);
            if n > MAX_LENGTH_BYTES {
                return Err(Error::malformed(
                    "BER",
                    format!("length of {n} bytes at offset {pos}"),
                ));
            }
            let mut value: u64 = 0;
            let mut first_len_byte = 0u8;
            for k in 0..n {
                let b = byte(i)?;
                i += 1;
                if k == 0 {
                    first_len_byte = b;
                }
                value = (value << 8) | u64::from(b);
            }
            let value = usize::try_from(value)
                .ok()
                .filter(|v| *v <= max_len)
                .ok_or(Error::TooLarge {
                    what: "BER element length",
                    limit: max_len,
                })?;
            let minimal = first_len_byte != 0 && value >= 0x80;
            (Some(value), minimal)
        }
    };
    if len.is_some_and(|l| l > max_len) {
        return Err(Error::TooLarge {
            what: "BER element length",
            limit: max_len,
        });
    }
    if first == 0 {
        // Tag 0 (universal, primitive) is reserved for end-of-contents, which
        // only the indefinite-length loops may consume.
        return Err(Error::malformed(
            "BER",
            format!("unexpected end-of-contents at offset {pos}"),
        ));
    }
    let constructed = first & 0x20 != 0;
    if len.is_none() && !constructed {
        return Err(Error::malformed(
            "BER",
            format!("indefinite length on a primitive element at offset {pos}"),
        ));
    }
    Ok(Header {
        first,
        constructed,
        tag_len,
        len,
        len_minimal,
        content_start: i,
    })
}

/// Bytes needed by a DER length of `len`.
fn der_len_size(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        let bytes = (usize::BITS - len.leading_zeros()).div_ceil(8);
        1 + bytes as usize
    }
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// The contents of a constructed element: up to a definite end, or up to
/// an end-of-contents that must appear before `limit`.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Definite(usize),
    Indefinite(usize),
}

impl Bound {
    fn limit(self) -> usize {
        match self {
            Self::Definite(end) | Self::Indefinite(end) => end,
        }
    }
}

/// Segments of a constructed string being concatenated.
#[derive(Clone, Copy, Debug, Default)]
struct StringAcc {
    /// Contents bytes of the DER string.
    len: usize,
    /// Unused bits of the previous BIT STRING segment; only the last segment
    /// may have any.
    last_unused: u8,
    segments: usize,
}

struct Walker<'a> {
    input: &'a [u8],
    limits: Limits,
    /// Output contents length of every constructed element, in pre-order:
    /// recorded while measuring, consumed while emitting.
    lens: Vec<u32>,
    cursor: usize,
    changed: bool,
    /// Most elements of a SET (universal, or context-tagged as IMPLICIT SET OF): the
    /// [`check_set_sizes`] bound, counted during the walk; `None`: not counted.
    max_set: Option<usize>,
}

impl<'a> Walker<'a> {
    fn new(input: &'a [u8], limits: Limits) -> Self {
        Self {
            input,
            limits,
            lens: Vec::new(),
            cursor: 0,
            changed: false,
            max_set: None,
        }
    }

    fn header(&self, pos: usize, limit: usize, depth: usize) -> Result<Header> {
        if depth > self.limits.max_depth {
            return Err(Error::TooLarge {
                what: "BER nesting depth",
                limit: self.limits.max_depth,
            });
        }
        parse_header(self.input, pos, limit, self.limits.max_len)
    }

    fn bound(&self, h: &Header, limit: usize, pos: usize) -> Result<Bound> {
        match h.len {
            None => Ok(Bound::Indefinite(limit)),
            Some(len) => h
                .content_start
                .checked_add(len)
                .filter(|end| *end <= limit)
                .map(Bound::Definite)
                .ok_or_else(|| {
                    Error::malformed(
                        "BER",
                        format!("length {len} at offset {pos} goes past the end of its container"),
                    )
                }),
        }
    }

    /// At a child position: `Some(next)` if the contents end here (`next`
    /// being the offset after the end-of-contents, if any).
    fn at_end(&self, p: usize, bound: Bound) -> Result<Option<usize>> {
        match bound {
            Bound::Definite(end) => Ok((p >= end).then_some(end)),
            Bound::Indefinite(limit) => {
                if p >= limit {
                    return Err(Error::malformed(
                        "BER",
                        "indefinite length without end-of-contents",
                    ));
                }
                if self.input.get(p) != Some(&0) {
                    return Ok(None);
                }
                if p + 1 < limit && self.input.get(p + 1) == Some(&0) {
                    Ok(Some(p + 2))
                } else {
                    Err(Error::malformed(
                        "BER",
                        format!("malformed end-of-contents at offset {p}"),
                    ))
                }
            }
        }
    }

    fn record(&mut self, len: usize) -> Result<usize> {
        let len = u32::try_from(len).map_err(|_| Error::TooLarge {
            what: "BER element length",
            limit: u32::MAX as usize,
        })?;
        self.lens.push(len);
        Ok(self.lens.len() - 1)
    }

    fn set_recorded(&mut self, slot: usize, len: usize) -> Result<()> {
        let len = u32::try_from(len).map_err(|_| Error::TooLarge {
            what: "BER element length",
            limit: u32::MAX as usize,
        })?;
        if let Some(s) = self.lens.get_mut(slot) {
            *s = len;
        }
        Ok(())
    }

    fn next_recorded(&mut self) -> Result<usize> {
        let len = self
            .lens
            .get(self.cursor)
            .copied()
            .ok_or_else(|| Error::malformed("BER", "internal: measure and emit disagree"))?;
        self.cursor += 1;
        Ok(len as usize)
    }

    /// Measures the element at `pos` (which must end by `limit`): returns the
    /// offset after it and its DER size.
    fn measure(&mut self, pos: usize, limit: usize, depth: usize) -> Result<(usize, usize)> {
        let h = self.header(pos, limit, depth)?;
        let bound = self.bound(&h, limit, pos)?;
        if !h.len_minimal || h.len.is_none() {
            self.changed = true;
        }
        let (next, content_len) = if !h.constructed {
            let end = bound.limit();
            (end, end - h.content_start)
        } else if h.flattenable_string() {
            self.changed = true;
            let slot = self.record(0)?;
            let mut acc = StringAcc::default();
            let next = self.measure_segments(&h, bound, depth, &mut acc)?;
            let len = if h.is_bit_string() {
                acc.len.saturating_add(1)
            } else {
                acc.len
            };
            self.set_recorded(slot, len)?;
            (next, len)
        } else {
            let slot = self.record(0)?;
            let mut p = h.content_start;
            let mut sum = 0usize;
            // As check_set_sizes: a universal SET or a constructed context-tagged element.
            let set_max = self
                .max_set
                .filter(|_| h.first == 0x31 || h.first & 0xC0 == 0x80);
            let mut count = 0usize;
            let next = loop {
                if let Some(next) = self.at_end(p, bound)? {
                    break next;
                }
                count += 1;
                if let Some(max) = set_max.filter(|max| count > *max) {
                    return Err(Error::TooLarge {
                        what: "SET OF element count",
                        limit: max,
                    });
                }
                let (np, size) = self.measure(p, bound.limit(), depth + 1)?;
                p = np;
                sum = sum.saturating_add(size);
            };
            self.set_recorded(slot, sum)?;
            (next, sum)
        };
        let total = h
            .tag_len
            .saturating_add(der_len_size(content_len))
            .saturating_add(content_len);
        Ok((next, total))
    }

    /// Walks the segments of a constructed string, accumulating their sizes.
    fn measure_segments(
        &mut self,
        parent: &Header,
        bound: Bound,
        depth: usize,
        acc: &mut StringAcc,
    ) -> Result<usize> {
        let mut p = parent.content_start;
        loop {
            if let Some(next) = self.at_end(p, bound)? {
                return Ok(next);
            }
            let h = self.header(p, bound.limit(), depth + 1)?;
            check_segment_tag(parent, &h, p)?;
            let seg_bound = self.bound(&h, bound.limit(), p)?;
            if h.constructed {
                p = self.measure_segments(&h, seg_bound, depth + 1, acc)?;
                continue;
            }
            let end = seg_bound.limit();
            let seg = self
                .input
                .get(h.content_start..end)
                .ok_or_else(|| Error::malformed("BER", "segment past the end"))?;
            if parent.is_bit_string() {
                let (&unused, bits) = seg.split_first().ok_or_else(|| {
                    Error::malformed("BER", format!("empty BIT STRING segment at offset {p}"))
                })?;
                if unused > 7 || (bits.is_empty() && unused != 0) {
                    return Err(Error::malformed(
                        "BER",
                        format!("bad unused-bits count {unused} at offset {p}"),
                    ));
                }
                if acc.segments > 0 && acc.last_unused != 0 {
                    return Err(Error::malformed(
                        "BER",
                        "only the last BIT STRING segment may have unused bits",
                    ));
                }
                acc.last_unused = unused;
                acc.len = acc.len.saturating_add(bits.len());
            } else {
                acc.len = acc.len.saturating_add(seg.len());
            }
            acc.segments += 1;
            p = end;
        }
    }

    /// Writes the DER of the element at `pos`; mirrors [`Self::measure`].
    fn emit(&mut self, pos: usize, limit: usize, depth: usize, out: &mut Vec<u8>) -> Result<usize> {
        let h = self.header(pos, limit, depth)?;
        let bound = self.bound(&h, limit, pos)?;
        let tag = self
            .input
            .get(pos..pos + h.tag_len)
            .ok_or_else(|| Error::malformed("BER", "truncated tag"))?;
        if !h.constructed {
            let end = bound.limit();
            let content = self
                .input
                .get(h.content_start..end)
                .ok_or_else(|| Error::malformed("BER", "truncated contents"))?;
            out.extend_from_slice(tag);
            push_der_len(out, content.len());
            out.extend_from_slice(content);
            return Ok(end);
        }
        let len = self.next_recorded()?;
        if h.flattenable_string() {
            // Single-byte tag (number < 31), constructed bit cleared.
            out.push(h.first & !0x20);
            push_der_len(out, len);
            let start = out.len();
            let mut last_unused = 0u8;
            if h.is_bit_string() {
                out.push(0);
            }
            let next = self.emit_segments(&h, bound, depth, out, &mut last_unused)?;
            if h.is_bit_string()
                && let Some(b) = out.get_mut(start)
            {
                *b = last_unused;
            }
            return Ok(next);
        }
        out.extend_from_slice(tag);
        push_der_len(out, len);
        let mut p = h.content_start;
        loop {
            if let Some(next) = self.at_end(p, bound)? {
                return Ok(next);
            }
            p = self.emit(p, bound.limit(), depth + 1, out)?;
        }
    }

    fn emit_segments(
        &mut self,
        parent: &Header,
        bound: Bound,
        depth: usize,
        out: &mut Vec<u8>,
        last_unused: &mut u8,
    ) -> Result<usize> {
        let mut p = parent.content_start;
        loop {
            if let Some(next) = self.at_end(p, bound)? {
                return Ok(next);
            }
            let h = self.header(p, bound.limit(), depth + 1)?;
            let seg_bound = self.bound(&h, bound.limit(), p)?;
            if h.constructed {
                p = self.emit_segments(&h, seg_bound, depth + 1, out, last_unused)?;
                continue;
            }
            let end = seg_bound.limit();
            let seg = self
                .input
                .get(h.content_start..end)
                .ok_or_else(|| Error::malformed("BER", "segment past the end"))?;
            if parent.is_bit_string() {
                if let Some((&unused, bits)) = seg.split_first() {
                    *last_unused = unused;
                    out.extend_from_slice(bits);
                }
            } else {
                out.extend_from_slice(seg);
            }
            p = end;
        }
    }
}

/// X.690 8.7.3.2 / 8.6.3: the segments of a constructed string carry the
/// string's own universal tag.
fn check_segment_tag(parent: &Header, seg: &Header, pos: usize) -> Result<()> {
    if seg.universal() && seg.first & 0x1F == parent.first & 0x1F && seg.tag_len == 1 {
        Ok(())
    } else {
        Err(Error::malformed(
            "BER",
            format!(
                "segment with tag 0x{:02x} inside a constructed string with tag 0x{:02x} at offset {pos}",
                seg.first, parent.first
            ),
        ))
    }
}

#[cfg(test)]
mod tests;

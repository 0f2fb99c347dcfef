//! PDF objects and a strict parser that keeps byte offsets.
//!
//! lopdf is lenient by design (it repairs what it can); a verifier must not
//! be: a repaired file is not the file that was signed. The parser here
//! refuses what ISO 32000-1 §7.3 does not allow, bounds nesting without
//! relying on the stack, and records where every string lies in the file so
//! that `/ByteRange` can be checked against the exact `/Contents` bytes.

use std::collections::BTreeMap;

use super::PdfError;

/// An indirect reference `num gen R`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    /// Object number.
    pub num: u32,
    /// Generation.
    pub generation: u16,
}

impl std::fmt::Display for ObjRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} R", self.num, self.generation)
    }
}

/// A string object with where it was in the file (`None` inside an object
/// stream, whose offsets are not file offsets).
#[derive(Clone, Debug)]
pub struct PdfString {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// `[start, end)` in the file, delimiters included.
    pub span: Option<(usize, usize)>,
    /// Written as `<hex>` rather than `(literal)`.
    pub hex: bool,
}

impl PartialEq for PdfString {
    // The same value written elsewhere is the same string.
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

/// A dictionary; keys without the leading slash.
pub type Dict = BTreeMap<Vec<u8>, Object>;

/// A stream: its dictionary and where its raw (still encoded) data lies.
#[derive(Clone, Debug)]
pub struct Stream {
    /// The stream dictionary.
    pub dict: Dict,
    /// `[start, end)` of the data in the file.
    pub data: (usize, usize),
}

/// A PDF object (ISO 32000-1 §7.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real, kept as written (no float equality surprises).
    Real(Vec<u8>),
    /// A name without its slash, `#xx` decoded.
    Name(Vec<u8>),
    /// A string.
    String(PdfString),
    /// An array.
    Array(Vec<Object>),
    /// A dictionary.
    Dict(Dict),
    /// A stream (only as the value of an indirect object).
    Stream(Stream),
    /// An indirect reference.
    Ref(ObjRef),
}

impl PartialEq for Stream {
    // Data equality needs the file; see `diff::same_object`.
    fn eq(&self, other: &Self) -> bool {
        self.dict == other.dict && self.data.1 - self.data.0 == other.data.1 - other.data.0
    }
}

impl Object {
    /// The dictionary of a dictionary or a stream.
    pub fn dict(&self) -> Option<&Dict> {
        match self {
            Self::Dict(d) => Some(d),
            Self::Stream(s) => Some(&s.dict),
            _ => None,
        }
    }
    /// An integer.
    pub fn int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// A name.
    pub fn name(&self) -> Option<&[u8]> {
        match self {
            Self::Name(n) => Some(n),
            _ => None,
        }
    }
    /// A reference.
    pub fn reference(&self) -> Option<ObjRef> {
        match self {
            Self::Ref(r) => Some(*r),
            _ => None,
        }
    }
    /// An array.
    pub fn array(&self) -> Option<&[Object]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
    /// A string.
    pub fn string(&self) -> Option<&PdfString> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Dictionary lookups by `&str` key.
pub trait DictExt {
    /// The value of `key`.
    fn get_key(&self, key: &str) -> Option<&Object>;
    /// The name value of `key`.
    fn name_of(&self, key: &str) -> Option<&[u8]> {
        self.get_key(key).and_then(Object::name)
    }
}

impl DictExt for Dict {
    fn get_key(&self, key: &str) -> Option<&Object> {
        self.get(key.as_bytes())
    }
}

pub(crate) fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delim(b)
}

/// A cursor over some bytes. `base` is the file offset of `data[0]`, or
/// `None` when the bytes are not the file (a decoded object stream).
#[derive(Debug)]
pub struct Lexer<'a> {
    data: &'a [u8],
    /// Current position in `data`.
    pub pos: usize,
    base: Option<usize>,
    max_depth: usize,
    max_len: usize,
}

/// Most elements of one array or entries of one dictionary, unless the
/// lexer is given another bound ([`Lexer::max_len`]).
pub const DEFAULT_MAX_ARRAY_LEN: usize = 262_144;

fn syntax(offset: usize, reason: impl Into<String>) -> PdfError {
    PdfError::Syntax {
        offset,
        reason: reason.into(),
    }
}

/// One step of building a nested value without recursion.
enum Frame {
    Array(Vec<Object>),
    Dict(Dict, Option<Vec<u8>>),
}

impl<'a> Lexer<'a> {
    /// A lexer over `data` starting at `pos`.
    pub fn new(data: &'a [u8], pos: usize, base: Option<usize>, max_depth: usize) -> Self {
        Self {
            data,
            pos,
            base,
            max_depth,
            max_len: DEFAULT_MAX_ARRAY_LEN,
        }
    }

    /// The same lexer with another bound on array and dictionary sizes.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The offset for messages: a file offset when known.
    pub fn offset(&self) -> usize {
        self.base.map_or(self.pos, |b| b + self.pos)
    }

    fn err(&self, reason: impl Into<String>) -> PdfError {
        syntax(self.offset(), reason)
    }

    /// Skips white space and comments.
    pub fn skip_ws(&mut self) {
        while let Some(&b) = self.data.get(self.pos) {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(&c) = self.data.get(self.pos) {
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// The regular characters at the cursor (a keyword or number), not consumed.
    fn peek_word(&self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest.iter().take_while(|b| is_regular(**b)).count();
        &rest[..n]
    }

    /// Consumes `kw` if it is the next token.
    pub fn eat_keyword(&mut self, kw: &[u8]) -> bool {
        self.skip_ws();
        if self.peek_word() == kw {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// Requires keyword `kw`.
    pub fn expect_keyword(&mut self, kw: &str) -> Result<(), PdfError> {
        if self.eat_keyword(kw.as_bytes()) {
            Ok(())
        } else {
            Err(self.err(format!(
                "expected `{kw}`, found `{}`",
                String::from_utf8_lossy(self.peek_word())
            )))
        }
    }

    /// A non-negative integer token.
    pub fn unsigned(&mut self) -> Result<u64, PdfError> {
        self.skip_ws();
        let w = self.peek_word();
        if w.is_empty() || !w.iter().all(u8::is_ascii_digit) || w.len() > 19 {
            return Err(self.err(format!(
                "expected an unsigned integer, found `{}`",
                String::from_utf8_lossy(w)
            )));
        }
        self.pos += w.len();
        std::str::from_utf8(w)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.err("integer out of range"))
    }

    /// Parses `num gen obj`, returning the reference.
    pub fn object_header(&mut self) -> Result<ObjRef, PdfError> {
        let num = self.unsigned()?;
        let generation = self.unsigned()?;
        self.expect_keyword("obj")?;
        Ok(ObjRef {
            num: u32::try_from(num).map_err(|_| self.err("object number out of range"))?,
            generation: u16::try_from(generation)
                .map_err(|_| self.err("generation out of range"))?,
        })
    }

    /// Parses one direct object (arrays and dictionaries iteratively, at most
    /// `max_depth` deep).
    pub fn object(&mut self) -> Result<Object, PdfError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            let Some(b) = self.peek() else {
                return Err(self.err("unexpected end of data inside an object"));
            };
            // Closing delimiters finish the innermost frame.
            let value = match b {
                b']' => {
                    self.pos += 1;
                    match stack.pop() {
                        Some(Frame::Array(a)) => Object::Array(a),
                        _ => return Err(syntax(self.offset() - 1, "unbalanced `]`")),
                    }
                }
                b'>' if self.data.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    match stack.pop() {
                        Some(Frame::Dict(d, None)) => Object::Dict(d),
                        Some(Frame::Dict(_, Some(k))) => {
                            return Err(self.err(format!(
                                "dictionary key /{} has no value",
                                String::from_utf8_lossy(&k)
                            )));
                        }
                        _ => return Err(syntax(self.offset() - 2, "unbalanced `>>`")),
                    }
                }
                b'[' | b'<' if b == b'[' || self.data.get(self.pos + 1) == Some(&b'<') => {
                    if stack.len() >= self.max_depth {
                        return Err(PdfError::TooLarge {
                            what: "object nesting depth",
                            limit: self.max_depth,
                        });
                    }
                    if b == b'[' {
                        self.pos += 1;
                        stack.push(Frame::Array(Vec::new()));
                    } else {
                        self.pos += 2;
                        stack.push(Frame::Dict(Dict::new(), None));
                    }
                    continue;
                }
                _ => self.scalar()?,
            };
            let full = match stack.last() {
                Some(Frame::Array(a)) => a.len() >= self.max_len,
                Some(Frame::Dict(d, None)) => d.len() >= self.max_len,
                _ => false,
            };
            if full {
                return Err(PdfError::TooLarge {
                    what: "array or dictionary size",
                    limit: self.max_len,
                });
            }
            match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::Array(a)) => a.push(value),
                Some(Frame::Dict(d, key)) => match key.take() {
                    None => match value {
                        Object::Name(n) => *key = Some(n),
                        _ => {
                            return Err(syntax(
                                self.base.unwrap_or(0) + start,
                                "dictionary key is not a name",
                            ));
                        }
                    },
                    Some(k) => {
                        // Two values for one key: readers disagree on which
                        // wins, which is exactly what a shadow attack wants.
                        if d.contains_key(&k) {
                            return Err(syntax(
                                self.base.unwrap_or(0) + start,
                                format!(
                                    "duplicate dictionary key /{}",
                                    String::from_utf8_lossy(&k)
                                ),
                            ));
                        }
                        d.insert(k, value);
                    }
                },
            }
        }
    }

    fn scalar(&mut self) -> Result<Object, PdfError> {
        let start = self.pos;
        let b = self
            .peek()
            .ok_or_else(|| self.err("unexpected end of data"))?;
        match b {
            b'/' => {
                self.pos += 1;
                let raw = self.peek_word();
                self.pos += raw.len();
                Ok(Object::Name(self.decode_name(raw)?))
            }
            b'(' => self.literal_string(),
            b'<' => self.hex_string(),
            b'+' | b'-' | b'.' | b'0'..=b'9' => self.number_or_ref(),
            _ => {
                let w = self.peek_word();
                let v = match w {
                    b"true" => Object::Bool(true),
                    b"false" => Object::Bool(false),
                    b"null" => Object::Null,
                    _ => {
                        return Err(syntax(
                            self.base.unwrap_or(0) + start,
                            format!(
                                "unexpected token `{}`",
                                String::from_utf8_lossy(&w[..w.len().min(32)])
                            ),
                        ));
                    }
                };
                self.pos += w.len();
                Ok(v)
            }
        }
    }

    fn decode_name(&self, raw: &[u8]) -> Result<Vec<u8>, PdfError> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(&c) = raw.get(i) {
            if c == b'#' {
                let h = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.err("bad #xx escape in a name"))?;
                out.push(h);
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        }
        Ok(out)
    }

    fn number_or_ref(&mut self) -> Result<Object, PdfError> {
        let w = self.peek_word();
        let start = self.pos;
        self.pos += w.len();
        let is_int = {
            let digits = w
                .strip_prefix(b"+")
                .or_else(|| w.strip_prefix(b"-"))
                .unwrap_or(w);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        };
        if !is_int {
            let body = w
                .strip_prefix(b"+")
                .or_else(|| w.strip_prefix(b"-"))
                .unwrap_or(w);
            let dots = body.iter().filter(|c| **c == b'.').count();
            if dots != 1 || body.len() < 2 || !body.iter().all(|c| c.is_ascii_digit() || *c == b'.')
            {
                return Err(syntax(
                    self.base.unwrap_or(0) + start,
                    format!(
                        "bad number `{}`",
                        String::from_utf8_lossy(&w[..w.len().min(32)])
                    ),
                ));
            }
            return Ok(Object::Real(w.to_vec()));
        }
        let value: i64 = std::str::from_utf8(w)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| syntax(self.base.unwrap_or(0) + start, "integer out of range"))?;
        // `num gen R` needs two more tokens of lookahead.
        if value >= 0 && w.iter().all(u8::is_ascii_digit) {
            let save = self.pos;
            self.skip_ws();
            let g = self.peek_word();
            if !g.is_empty() && g.iter().all(u8::is_ascii_digit) && g.len() <= 5 {
                self.pos += g.len();
                self.skip_ws();
                if self.peek_word() == b"R" {
                    self.pos += 1;
                    let generation = std::str::from_utf8(g)
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok());
                    if let (Ok(num), Some(generation)) = (u32::try_from(value), generation) {
                        return Ok(Object::Ref(ObjRef { num, generation }));
                    }
                    return Err(syntax(
                        self.base.unwrap_or(0) + start,
                        "reference out of range",
                    ));
                }
            }
            self.pos = save;
        }
        Ok(Object::Int(value))
    }

    fn literal_string(&mut self) -> Result<Object, PdfError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| syntax(self.base.unwrap_or(0) + start, "unterminated string"))?;
            self.pos += 1;
            match c {
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    out.push(c);
                }
                b'\\' => {
                    let e = self.peek().ok_or_else(|| {
                        syntax(self.base.unwrap_or(0) + start, "unterminated string")
                    })?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        Ok(Object::String(PdfString {
            bytes: out,
            span: self.base.map(|b| (b + start, b + self.pos)),
            hex: false,
        }))
    }

    fn hex_string(&mut self) -> Result<Object, PdfError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        let mut hi: Option<u8> = None;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| syntax(self.base.unwrap_or(0) + start, "unterminated hex string"))?;
            self.pos += 1;
            let v = match c {
                b'>' => break,
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                c if is_white(c) => continue,
                _ => return Err(syntax(self.offset() - 1, "bad character in a hex string")),
            };
            match hi.take() {
                None => hi = Some(v),
                Some(h) => out.push(h << 4 | v),
            }
        }
        if let Some(h) = hi {
            out.push(h << 4);
        }
        Ok(Object::String(PdfString {
            bytes: out,
            span: self.base.map(|b| (b + start, b + self.pos)),
            hex: true,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Object, PdfError> {
        Lexer::new(s.as_bytes(), 0, Some(0), 16).object()
    }

    #[test]
    fn parses_nested_values_and_references() {
        let o = parse("<< /A [1 2 0 R (x\\)y) <414> /N#41] /B << /C -1.5 >> >>").expect("parses");
        let d = o.dict().expect("dict");
        let a = d.get_key("A").and_then(Object::array).expect("array");
        assert_eq!(a[0], Object::Int(1));
        assert_eq!(
            a[1].reference(),
            Some(ObjRef {
                num: 2,
                generation: 0
            })
        );
        assert_eq!(
            a[2].string().map(|s| s.bytes.clone()),
            Some(b"x)y".to_vec())
        );
        assert_eq!(
            a[3].string().map(|s| s.bytes.clone()),
            Some(vec![0x41, 0x40])
        );
        assert_eq!(a[4].name(), Some(&b"NA"[..]));
    }

    #[test]
    fn refuses_deep_nesting_and_duplicate_keys() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(&deep), Err(PdfError::TooLarge { .. })));
        assert!(matches!(
            parse("<< /A 1 /A 2 >>"),
            Err(PdfError::Syntax { .. })
        ));
        assert!(parse("<< /A >>").is_err());
        assert!(parse("[1 2").is_err());
    }

    #[test]
    fn hex_string_span_includes_delimiters() {
        let o = parse("  <00ff>").expect("parses");
        assert_eq!(o.string().and_then(|s| s.span), Some((2, 8)));
    }
}

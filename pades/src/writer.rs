//! The incremental update: new and rewritten objects appended after the
//! original bytes, then a cross-reference section of the original's kind
//! (a classic table, or an xref stream) whose `/Prev` is the original's.

use std::collections::BTreeMap;

use super::PadesError;

/// Object bodies (what goes between `N G obj` and `endobj`) by number.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    next: u32,
    bodies: BTreeMap<u32, (u16, Vec<u8>)>,
}

impl Objects {
    pub(crate) fn new(first_free: u32) -> Self {
        Self {
            next: first_free,
            bodies: BTreeMap::new(),
        }
    }

    /// A new object number whose body is given later with [`Self::set`].
    pub(crate) fn reserve(&mut self) -> u32 {
        let id = self.next;
        self.next += 1;
        id
    }

    /// A new object.
    pub(crate) fn add(&mut self, body: Vec<u8>) -> u32 {
        let id = self.reserve();
        self.bodies.insert(id, (0, body));
        id
    }

    /// The body of a reserved object, or a new version of an existing one.
    pub(crate) fn set(&mut self, id: u32, generation: u16, body: Vec<u8>) {
        self.bodies.insert(id, (generation, body));
    }
}

/// What the trailer of the update repeats from the original's.
#[derive(Debug, Clone)]
pub(crate) struct Trailer {
    /// `/Root`, `/Info` and `/ID` as written in the original trailer.
    pub entries: String,
    /// Offset of the original's last cross-reference section.
    pub prev: usize,
    /// The original's `/Size`.
    pub size: u32,
    /// Write an xref stream (the original's last section is one).
    pub xref_stream: bool,
}

/// The original followed by the update, and where each object of the
/// update begins.
pub(crate) fn write_update(
    original: &[u8],
    objs: Objects,
    trailer: &Trailer,
) -> Result<(Vec<u8>, BTreeMap<u32, usize>), PadesError> {
    let mut out = Vec::with_capacity(original.len() + 64 * 1024);
    out.extend_from_slice(original);
    // Appending a line end leaves every earlier byte where it was.
    if !matches!(out.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let mut offsets: BTreeMap<u32, (usize, u16)> = BTreeMap::new();
    let mut next = objs.next;
    for (id, (generation, body)) in objs.bodies {
        offsets.insert(id, (out.len(), generation));
        out.extend_from_slice(format!("{id} {generation} obj\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    if trailer.xref_stream {
        let xref_id = next;
        next += 1;
        offsets.insert(xref_id, (xref_at, 0));
        let size = trailer.size.max(next);
        let (index, data) = xref_stream_rows(&offsets)?;
        out.extend_from_slice(
            format!(
                "{xref_id} 0 obj\n<</Type /XRef /Size {size} /W [1 4 2] /Index [{index}] {} /Prev {} /Length {}>>\nstream\n",
                trailer.entries,
                trailer.prev,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    } else {
        let size = trailer.size.max(next);
        out.extend_from_slice(b"xref\n");
        for run in runs(&offsets) {
            let first = run.first().map_or(0, |(id, _)| *id);
            out.extend_from_slice(format!("{first} {}\n", run.len()).as_bytes());
            for (_, (offset, generation)) in run {
                // Each entry is exactly 20 bytes (PDF 32000 §7.5.4).
                out.extend_from_slice(format!("{offset:010} {generation:05} n\r\n").as_bytes());
            }
        }
        out.extend_from_slice(
            format!(
                "trailer\n<</Size {size} {} /Prev {}>>\n",
                trailer.entries, trailer.prev
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
    let starts = offsets.into_iter().map(|(id, (o, _))| (id, o)).collect();
    Ok((out, starts))
}

/// Consecutive object numbers grouped into subsections.
fn runs(offsets: &BTreeMap<u32, (usize, u16)>) -> Vec<Vec<(u32, (usize, u16))>> {
    let mut out: Vec<Vec<(u32, (usize, u16))>> = Vec::new();
    for (id, v) in offsets {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|(last, _)| last + 1 == *id) => {
                run.push((*id, *v));
            }
            _ => out.push(vec![(*id, *v)]),
        }
    }
    out
}

fn xref_stream_rows(
    offsets: &BTreeMap<u32, (usize, u16)>,
) -> Result<(String, Vec<u8>), PadesError> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for run in runs(offsets) {
        let first = run.first().map_or(0, |(id, _)| *id);
        index.push(format!("{first} {}", run.len()));
        for (_, (offset, generation)) in run {
            let offset = u32::try_from(offset)
                .map_err(|_| PadesError::Unsupported("an xref stream offset over 4 GiB".into()))?;
            data.push(1u8);
            data.extend_from_slice(&offset.to_be_bytes());
            data.extend_from_slice(&generation.to_be_bytes());
        }
    }
    Ok((index.join(" "), data))
}

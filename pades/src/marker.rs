//! Finding a text marker (for example `{{chu_ky}}`) in a page's content, to
//! centre the signature on it. Only strings shown with `Tj`, `'`, `"` and
//! `TJ` in a simple (one byte a character) encoding are read; the position
//! follows `cm`, `q`/`Q`, `Tm`, `Td`, `TD`, `T*` and `TL`, and the width of
//! the text before the marker is estimated at half the font size a
//! character (no font metrics): good enough to centre an image, not to
//! typeset. Markers in form XObjects or in CID-keyed fonts are not found:
//! use an empty signature field or a rectangle then.

use lopdf::Object;
use lopdf::content::Content;

use super::{PadesError, Source};

/// Where a marker was found: its page and its centre in default user space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub page: u32,
    pub x: f64,
    pub y: f64,
}

/// Most bytes of decoded page content searched.
const MAX_CONTENT: usize = 16 << 20;

type Matrix = [f64; 6];
const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `a × b` (PDF row-vector convention: apply `a` first).
fn mul(a: Matrix, b: Matrix) -> Matrix {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]
}

fn apply(m: Matrix, x: f64, y: f64) -> (f64, f64) {
    (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
}

fn num(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

fn nums<const N: usize>(ops: &[Object]) -> Option<[f64; N]> {
    if ops.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (o, v) in out.iter_mut().zip(ops) {
        *o = num(v)?;
    }
    Some(out)
}

/// Finds `marker` on `page`, or on the first page that has it.
pub(crate) fn find(src: &Source<'_>, marker: &str, page: Option<u32>) -> Result<Found, PadesError> {
    if marker.is_empty() || !marker.is_ascii() {
        return Err(PadesError::Placement(
            "a marker is a non-empty ASCII text (simple font encodings only)".into(),
        ));
    }
    let pages: Vec<u32> = match page {
        Some(p) => {
            src.page(p)?;
            vec![p]
        }
        None => src.pages.keys().copied().collect(),
    };
    for n in pages {
        let id = src.page(n)?;
        let Ok(content) = src.doc.get_page_content(id) else {
            continue;
        };
        if content.len() > MAX_CONTENT {
            return Err(PadesError::TooMany {
                what: "bytes of page content",
                count: content.len(),
                limit: MAX_CONTENT,
            });
        }
        let Ok(ops) = Content::decode(&content) else {
            return Err(PadesError::Malformed(format!(
                "the content of page {n} cannot be parsed"
            )));
        };
        if let Some((x, y)) = search(&ops.operations, marker.as_bytes()) {
            return Ok(Found { page: n, x, y });
        }
    }
    Err(PadesError::Placement(format!(
        "the marker {marker:?} is not in the page content"
    )))
}

fn search(ops: &[lopdf::content::Operation], marker: &[u8]) -> Option<(f64, f64)> {
    let mut ctm = IDENTITY;
    let mut stack: Vec<Matrix> = Vec::new();
    let (mut tm, mut tlm) = (IDENTITY, IDENTITY);
    let (mut size, mut leading) = (12.0f64, 0.0f64);
    for op in ops {
        let o = &op.operands;
        match op.operator.as_str() {
            "q" if stack.len() < 64 => stack.push(ctm),
            "q" => {}
            "Q" => ctm = stack.pop().unwrap_or(IDENTITY),
            "cm" => {
                if let Some(m) = nums::<6>(o) {
                    ctm = mul(m, ctm);
                }
            }
            "BT" => {
                tm = IDENTITY;
                tlm = IDENTITY;
            }
            "Tf" => {
                if let Some(s) = o.get(1).and_then(num) {
                    size = s;
                }
            }
            "TL" => {
                if let Some([l]) = nums::<1>(o) {
                    leading = l;
                }
            }
            "Td" | "TD" => {
                if let Some([tx, ty]) = nums::<2>(o) {
                    if op.operator == "TD" {
                        leading = -ty;
                    }
                    tlm = mul([1.0, 0.0, 0.0, 1.0, tx, ty], tlm);
                    tm = tlm;
                }
            }
            "Tm" => {
                if let Some(m) = nums::<6>(o) {
                    tlm = m;
                    tm = m;
                }
            }
            "T*" => {
                tlm = mul([1.0, 0.0, 0.0, 1.0, 0.0, -leading], tlm);
                tm = tlm;
            }
            "Tj" | "'" | "\"" | "TJ" => {
                if op.operator != "Tj" && op.operator != "TJ" {
                    tlm = mul([1.0, 0.0, 0.0, 1.0, 0.0, -leading], tlm);
                    tm = tlm;
                }
                let mut text = Vec::new();
                for x in o {
                    match x {
                        Object::String(s, _) => text.extend_from_slice(s),
                        Object::Array(a) => {
                            for e in a {
                                if let Object::String(s, _) = e {
                                    text.extend_from_slice(s);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let advance = size * 0.5;
                if let Some(i) = text.windows(marker.len()).position(|w| w == marker) {
                    let cx = advance * (i as f64 + marker.len() as f64 / 2.0);
                    let cy = size * 0.3;
                    return Some(apply(mul(tm, ctm), cx, cy));
                }
                tm = mul([1.0, 0.0, 0.0, 1.0, advance * text.len() as f64, 0.0], tm);
            }
            _ => {}
        }
    }
    None
}

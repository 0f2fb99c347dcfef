//! PDF object syntax written by hand: the incremental update must put the
//! `/ByteRange` and `/Contents` placeholders at offsets it knows, and must
//! write the objects it rewrites exactly as read (strings as hex, so no
//! escaping question arises).

use lopdf::{Dictionary, Object};

use super::PadesError;

/// Appends `o` in PDF syntax. Streams cannot be rewritten here: the update
/// only rewrites dictionaries and arrays (pages, AcroForm, fields).
pub(super) fn write_object(out: &mut Vec<u8>, o: &Object) -> Result<(), PadesError> {
    match o {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Object::Real(r) => out.extend_from_slice(real(f64::from(*r)).as_bytes()),
        Object::Name(n) => write_name(out, n),
        Object::String(s, _) => write_hex_string(out, s),
        Object::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_object(out, e)?;
            }
            out.push(b']');
        }
        Object::Dictionary(d) => write_dict(out, d)?,
        Object::Stream(_) => {
            return Err(PadesError::Unsupported(
                "a stream where a dictionary or array was expected".into(),
            ));
        }
        Object::Reference((id, generation)) => {
            out.extend_from_slice(format!("{id} {generation} R").as_bytes());
        }
    }
    Ok(())
}

pub(super) fn write_dict(out: &mut Vec<u8>, d: &Dictionary) -> Result<(), PadesError> {
    out.extend_from_slice(b"<<");
    for (k, v) in d.iter() {
        write_name(out, k);
        out.push(b' ');
        write_object(out, v)?;
    }
    out.extend_from_slice(b">>");
    Ok(())
}

/// A name, with `#xx` for anything outside the regular characters (PDF 32000 §7.3.5).
pub(super) fn write_name(out: &mut Vec<u8>, n: &[u8]) {
    out.push(b'/');
    for &b in n {
        let delimiter = b"()<>[]{}/%#".contains(&b);
        if (0x21..=0x7e).contains(&b) && !delimiter {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
}

pub(super) fn write_hex_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'<');
    out.extend_from_slice(hex::encode_upper(s).as_bytes());
    out.push(b'>');
}

/// A text string (PDF 32000 §7.9.2.2): UTF-16BE with a byte order mark, so
/// Vietnamese names and reasons survive whatever the reader's PDFDocEncoding.
pub(super) fn text_string(s: &str) -> String {
    let mut bytes = vec![0xFE, 0xFF];
    for u in s.encode_utf16() {
        bytes.extend_from_slice(&u.to_be_bytes());
    }
    format!("<{}>", hex::encode_upper(bytes))
}

/// A real number without exponent, at most 4 decimals, trailing zeros dropped.
pub(super) fn real(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// `[x0 y0 x1 y1]`.
pub(super) fn rect(r: [f64; 4]) -> String {
    format!(
        "[{} {} {} {}]",
        real(r[0]),
        real(r[1]),
        real(r[2]),
        real(r[3])
    )
}

/// A stream object body, compressed with Flate (its dictionary entries
/// without `/Length` and `/Filter`, which are added here).
pub(super) fn flate_stream(dict_entries: &str, data: &[u8]) -> Result<Vec<u8>, PadesError> {
    let packed = deflate(data)?;
    let mut out = format!(
        "<<{dict_entries} /Filter /FlateDecode /Length {}>>\nstream\n",
        packed.len()
    )
    .into_bytes();
    out.extend_from_slice(&packed);
    out.extend_from_slice(b"\nendstream");
    Ok(out)
}

pub(super) fn deflate(data: &[u8]) -> Result<Vec<u8>, PadesError> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data)
        .and_then(|()| z.finish())
        .map_err(|e| PadesError::Encoding(format!("deflate: {e}")))
}

//! The `/ByteRange` and `/Contents` placeholders of a signature dictionary written
//! by [`crate::writer::write_update`]: found again at the offsets the update gave,
//! the byte range patched in place (same width), and the digest of everything but
//! `/Contents` computed (PDF 32000-1 §12.8.1).

use kyso_pki::crypto::DigestAlgorithm;

use crate::PadesError;

/// What the signature dictionary starts its placeholders with.
pub(crate) const BYTE_RANGE_PLACEHOLDER: &str = "/ByteRange [0 0000000000 0000000000 0000000000]";

/// Where `/Contents` sits (offsets of `<` and just after `>`), and the digest of
/// the two byte ranges around it.
pub(crate) struct Patched {
    pub contents: (usize, usize),
    pub digest: Vec<u8>,
}

/// Patches `/ByteRange` of the signature dictionary that starts at `sig_at`, whose
/// `/Contents` holds `hex_len` hex digits, and digests the signed ranges.
pub(crate) fn patch(
    out: &mut [u8],
    sig_at: usize,
    hex_len: usize,
    algorithm: DigestAlgorithm,
) -> Result<Patched, PadesError> {
    let find = |out: &[u8], needle: &[u8]| -> Result<usize, PadesError> {
        out.get(sig_at..)
            .and_then(|s| s.windows(needle.len()).position(|w| w == needle))
            .map(|p| sig_at + p)
            .ok_or_else(|| PadesError::Encoding("placeholder not found".into()))
    };
    let br_at = find(out, BYTE_RANGE_PLACEHOLDER.as_bytes())?;
    let contents_at = find(out, b"/Contents <")? + b"/Contents ".len();
    let contents_end = contents_at + hex_len + 2;
    if contents_end > out.len() {
        return Err(PadesError::Encoding(
            "the /Contents placeholder is cut".into(),
        ));
    }
    let range = [0, contents_at, contents_end, out.len() - contents_end];
    let written = format!("[{} {} {} {}", range[0], range[1], range[2], range[3]);
    let width = BYTE_RANGE_PLACEHOLDER.len() - "/ByteRange ".len() - 1;
    if written.len() > width {
        return Err(PadesError::Encoding("the byte range does not fit".into()));
    }
    let patched = format!("/ByteRange {written:<width$}]");
    out.get_mut(br_at..br_at + patched.len())
        .ok_or_else(|| PadesError::Encoding("the byte range placeholder moved".into()))?
        .copy_from_slice(patched.as_bytes());
    let mut d = algorithm.digester();
    d.update(&out[..contents_at]);
    d.update(&out[contents_end..]);
    Ok(Patched {
        contents: (contents_at, contents_end),
        digest: d.finish(),
    })
}

/// Writes `value` (hex, upper case) into the zero-filled `/Contents` at `contents`.
pub(crate) fn fill(
    pdf: &mut [u8],
    contents: (usize, usize),
    value: &[u8],
) -> Result<(), PadesError> {
    let available = (contents.1 - contents.0 - 2) / 2;
    if value.is_empty() || value.len() > available {
        return Err(PadesError::Placeholder {
            needed: value.len(),
            available,
        });
    }
    let hex = hex::encode_upper(value);
    let start = contents.0 + 1;
    pdf.get_mut(start..start + hex.len())
        .ok_or_else(|| PadesError::Encoding("the placeholder moved".into()))?
        .copy_from_slice(hex.as_bytes());
    Ok(())
}

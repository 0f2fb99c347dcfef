//! The `/ByteRange` and `/Contents` placeholders of a signature dictionary written
//! by [`crate::writer::write_update`]: found again at the offsets the update gave,
//! the byte range patched in place (same width), and the digest of everything but
//! `/Contents` computed (PDF 32000-1 §12.8.1). A signature ([`crate::PreparedPdf`]) and
//! a document time-stamp ([`crate::ltv::PreparedDocTimestamp`]) are both a [`Prepared`]
//! document: the same two phases, digest out, value in.

use kyso_pki::crypto::DigestAlgorithm;

use crate::PadesError;

/// What the signature dictionary starts its placeholders with.
pub(crate) const BYTE_RANGE_PLACEHOLDER: &str = "/ByteRange [0 0000000000 0000000000 0000000000]";

/// A document with its update appended, `/ByteRange` written and `/Contents` still
/// zeros: the digest to sign or time-stamp, and the room for the value.
#[derive(Clone)]
pub struct Prepared {
    pdf: Vec<u8>,
    /// Offsets of `<` and just after `>` of `/Contents`.
    contents: (usize, usize),
    digest_algorithm: DigestAlgorithm,
    digest: Vec<u8>,
    field_name: String,
    original_len: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("len", &self.pdf.len())
            .field("byte_range", &self.byte_range())
            .field("field_name", &self.field_name)
            .field("digest", &hex::encode(&self.digest))
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The digest of the byte ranges (a CMS's message digest, a time-stamp's imprint).
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The digest algorithm.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }

    /// `/ByteRange`: `[0, a, b, len - b]`, everything but `/Contents`.
    pub fn byte_range(&self) -> [usize; 4] {
        let (a, b) = self.contents;
        [0, a, b, self.pdf.len() - b]
    }

    /// The name of the field.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// How many value bytes fit in `/Contents`.
    pub fn capacity(&self) -> usize {
        (self.contents.1 - self.contents.0 - 2) / 2
    }

    /// The length of the document before the update (the update starts there, or one
    /// line end later).
    pub fn original_len(&self) -> usize {
        self.original_len
    }

    /// The prepared bytes, `/Contents` still zeros (for checks before the value).
    pub fn into_prepared_bytes(self) -> Vec<u8> {
        self.pdf
    }

    /// Writes `value` (hex, upper case, zero padded) into `/Contents`.
    pub(crate) fn fill(self, value: &[u8]) -> Result<Vec<u8>, PadesError> {
        let mut pdf = self.pdf;
        fill(&mut pdf, self.contents, value)?;
        Ok(pdf)
    }
}

/// Patches `/ByteRange` of the signature dictionary that starts at `sig_at` in the
/// update `out` appended to a document of `original_len` bytes, whose `/Contents` holds
/// `hex_len` hex digits, and digests the signed ranges.
pub(crate) fn patch(
    mut out: Vec<u8>,
    sig_at: usize,
    hex_len: usize,
    algorithm: DigestAlgorithm,
    field_name: String,
    original_len: usize,
) -> Result<Prepared, PadesError> {
    let find = |out: &[u8], needle: &[u8]| -> Result<usize, PadesError> {
        out.get(sig_at..)
            .and_then(|s| s.windows(needle.len()).position(|w| w == needle))
            .map(|p| sig_at + p)
            .ok_or_else(|| PadesError::Encoding("placeholder not found".into()))
    };
    let br_at = find(&out, BYTE_RANGE_PLACEHOLDER.as_bytes())?;
    let contents_at = find(&out, b"/Contents <")? + b"/Contents ".len();
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
    Ok(Prepared {
        digest: d.finish(),
        pdf: out,
        contents: (contents_at, contents_end),
        digest_algorithm: algorithm,
        field_name,
        original_len,
    })
}

/// Writes `value` (hex, upper case) into the zero-filled `/Contents` at `contents`.
fn fill(pdf: &mut [u8], contents: (usize, usize), value: &[u8]) -> Result<(), PadesError> {
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

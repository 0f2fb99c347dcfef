//! The strict PDF reader and the analysis of later updates (kyso-pdf:
//! revisions, cross-reference tables and streams, object streams, the form
//! field walk, signature extraction, byte range checks and `diff.rs`'s
//! classification of every later revision), on arbitrary bytes.

use kyso_pdf::{PdfLimits, parse_signatures};
use kyso_pki::crypto::DigestAlgorithm;

/// The verifier's limits, with the sizes scaled down so one run stays fast
/// (a fuzz input is kilobytes; the structural limits are the real ones).
fn limits() -> PdfLimits {
    PdfLimits {
        max_bytes: 1 << 20,
        max_objects: 10_000,
        max_decoded_bytes: 4 << 20,
        ..PdfLimits::default()
    }
}

/// Reads the PDF and every signature as the verifier does; must not panic.
pub fn pdf(data: &[u8]) {
    let Ok(pdf) = parse_signatures(data, &limits()) else {
        return;
    };
    for s in &pdf.signatures {
        let _ = s.has_disallowed_modifications();
        let _ = s.digest(data, DigestAlgorithm::Sha256);
        let _ = s.signed_bytes(data);
    }
}

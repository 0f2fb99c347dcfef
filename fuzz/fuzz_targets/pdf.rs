//! The strict PDF reader: revisions, cross-references (tables and streams),
//! object streams, signature extraction, byte range checks and the analysis
//! of later updates, on arbitrary bytes. Small limits keep each run fast.
#![no_main]
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pdf::{PdfLimits, parse_signatures};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PdfLimits {
        max_bytes: 1 << 20,
        max_objects: 10_000,
        max_decoded_bytes: 4 << 20,
        ..PdfLimits::default()
    };
    if let Ok(pdf) = parse_signatures(data, &limits) {
        for s in &pdf.signatures {
            let _ = s.digest(data, DigestAlgorithm::Sha256);
        }
    }
});

//! BER→DER normalisation and CMS SignedData parsing with every signer's
//! checks (kyso-pki `ber` and `cms`): what a detached or enveloping
//! signature from anywhere goes through before any path or revocation work.

use kyso_pki::ber::{Limits, to_der};
use kyso_pki::cms::{Detached, check_signer, parse};
use kyso_pki::crypto::{DigestAlgorithm, sha256};

/// Content the detached checks bind to (a wrong digest is the common case).
const CONTENT: &[u8] = b"content";

/// BER normalisation must be a fixed point (its DER output parses again to
/// itself); CMS parsing and the per-signer checks must not panic, with no
/// content, with content and with a digest.
pub fn cms(data: &[u8]) {
    if let Ok(once) = to_der(data, Limits::default()) {
        match to_der(&once, Limits::default()) {
            Ok(twice) => assert_eq!(&*once, &*twice, "to_der is not idempotent"),
            Err(e) => panic!("to_der's output does not parse again: {e}"),
        }
    }
    let Ok(msg) = parse(data) else { return };
    let _ = (msg.econtent_type(), msg.content(), msg.digest_algorithms());
    let digest = sha256(CONTENT);
    for i in 0..msg.signer_count() {
        let _ = check_signer(&msg, i, &Detached::None, &[]);
        let _ = check_signer(&msg, i, &Detached::Content(CONTENT), &[]);
        let _ = check_signer(
            &msg,
            i,
            &Detached::Digest {
                algorithm: DigestAlgorithm::Sha256,
                value: &digest,
            },
            msg.certificates(),
        );
    }
}

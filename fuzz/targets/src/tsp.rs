//! RFC 3161 `TimeStampResp` bodies as the TSA client reads them
//! (`kyso_pki::tsp`): the status, the token (CMS SignedData), the TSTInfo
//! and the token checks. The answer comes from the network, so every byte
//! is untrusted until the signature verified; the checks run anyway (the
//! signature fails on mutated inputs, the decoders before it do not).

use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::{Expected, TimeStampResp, TstInfo, verify_token};

/// Parses the input as a `TimeStampResp`, then verifies its token; also decodes
/// it as a bare TSTInfo. Must not panic.
pub fn tsp(data: &[u8]) {
    let _ = TstInfo::from_der(data);
    let Ok(resp) = TimeStampResp::parse(data) else {
        return;
    };
    let _ = resp.status.fail_info_names();
    let Ok(token) = resp.into_token() else {
        return;
    };
    let digest = [0u8; 32];
    let expected = Expected {
        algorithm: DigestAlgorithm::Sha256,
        digest: &digest,
        nonce: Some(&[1]),
        policy: None,
    };
    let _ = verify_token(&token, &expected, &[]);
    if let Ok(msg) = kyso_pki::cms::parse(&token)
        && let Some(content) = msg.content()
    {
        let _ = TstInfo::from_der(content);
    }
}

//! What OCSP responses and CRLs have in common: a signed SEQUENCE whose first
//! element is what the issuer (or its responder) signed, and serials to compare.

use der::{Decode, Reader, SliceReader};
use kyso_pki::crypto::{self, AlgorithmPolicy, DigestAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// How signatures of OCSP responses and CRLs are judged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SigCheck {
    pub clock_skew: time::Duration,
    pub allow_sha1: bool,
}

/// A serial as a map key: big-endian magnitude without leading zero octets
/// (DER adds one when the high bit is set; some CAs pad further).
pub(crate) fn normalise_serial(serial: &[u8]) -> Box<[u8]> {
    let start = serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    serial[start..].into()
}

/// The exact bytes of the first element of a signed SEQUENCE (tbsCertList,
/// tbsResponseData): signatures cover the bytes as sent, which a re-encoding
/// of the decoded structure need not reproduce.
pub(crate) fn tbs_bytes(der: &[u8]) -> der::Result<&[u8]> {
    let mut r = SliceReader::new(der)?;
    let header = der::Header::decode(&mut r)?;
    header.tag.assert_eq(der::Tag::Sequence)?;
    r.tlv_bytes()
}

/// Verifies a signature made by the key of `spki` with the algorithm `alg`.
pub(crate) fn verify_signed(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    check: &SigCheck,
) -> Result<(), String> {
    crypto::verify_signature(
        spki,
        alg,
        None::<DigestAlgorithm>,
        message,
        signature,
        AlgorithmPolicy {
            allow_sha1: check.allow_sha1,
            ..AlgorithmPolicy::default()
        },
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

//! The two encodings of an ECDSA signature and the RSASSA-PSS identifier kyso signs with.
//!
//! PKCS#11 and XML-DSig carry ECDSA as the fixed-size concatenation `r || s`; X.509, CMS
//! and the HSM layer's output carry the DER `Ecdsa-Sig-Value`. Both directions live here so
//! the signer and the XML signature agree on one implementation.

use der::asn1::UintRef;
use der::{Any, Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;

use super::{Curve, DigestAlgorithm, PssParams, SigError, SubjectPublicKeyInfoOwned, oid};

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3).
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts an ECDSA signature `r || s` (each half the length) into the DER
/// `Ecdsa-Sig-Value`; `None` for an empty, odd or oversized input.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 264 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = der_uint(r);
    let s = der_uint(s);
    let mut body = Vec::with_capacity(r.len() + s.len());
    body.extend_from_slice(&r);
    body.extend_from_slice(&s);
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

/// Converts a DER `Ecdsa-Sig-Value` into `r || s`, each left-padded to the curve's field
/// size (what XML-DSig's ECDSA SignatureValue holds); `None` when the DER is malformed or
/// an integer does not fit the curve.
pub fn ecdsa_der_to_raw(der: &[u8], curve: Curve) -> Option<Vec<u8>> {
    let sig = EcdsaSig::from_der(der).ok()?;
    let n = curve.field_bytes();
    let mut out = vec![0u8; 2 * n];
    for (i, v) in [sig.r.as_bytes(), sig.s.as_bytes()].into_iter().enumerate() {
        if v.len() > n {
            return None;
        }
        out[i * n + n - v.len()..(i + 1) * n].copy_from_slice(v);
    }
    Some(out)
}

/// The curve of an EC public key (P-256, P-384), `None` for any other key.
pub fn ec_curve_of(spki: &SubjectPublicKeyInfoOwned) -> Option<Curve> {
    super::ec_curve(spki).ok()
}

/// The RSASSA-PSS AlgorithmIdentifier with MGF1 of the same hash and a salt as long as the
/// hash (RFC 4055; what XML-DSig's `…xmldsig-more#sha256-rsa-MGF1` means, RFC 9231 §2.3.10).
pub fn pss_algorithm_identifier(d: DigestAlgorithm) -> Result<AlgorithmIdentifierOwned, SigError> {
    let enc = |e: der::Error| SigError::Unsupported(format!("RSASSA-PSS parameters: {e}"));
    let hash = AlgorithmIdentifierOwned {
        oid: d.oid(),
        parameters: Some(Any::null()),
    };
    let mgf = AlgorithmIdentifierOwned {
        oid: oid::MGF1,
        parameters: Some(Any::encode_from(&hash).map_err(enc)?),
    };
    let salt = u32::try_from(d.output_len()).map_err(|e| SigError::Unsupported(e.to_string()))?;
    let params = PssParams {
        hash: Some(hash),
        mask_gen: Some(mgf),
        salt_len: Some(salt),
        trailer: None,
    };
    let der = params.to_der().map_err(enc)?;
    Ok(AlgorithmIdentifierOwned {
        oid: oid::RSASSA_PSS,
        parameters: Some(Any::from_der(&der).map_err(enc)?),
    })
}

/// A DER INTEGER holding the unsigned big-endian `v`.
fn der_uint(v: &[u8]) -> Vec<u8> {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    let v = &v[first..];
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(v);
    let mut out = vec![0x02];
    push_len(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_der_round_trip() {
        let mut raw = vec![0x80; 32];
        raw.extend_from_slice(&[0x00; 31]);
        raw.push(0x05);
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let sig = EcdsaSig::from_der(&der).unwrap();
        assert_eq!(sig.r.as_bytes(), &[0x80; 32][..]);
        assert_eq!(sig.s.as_bytes(), &[0x05][..]);
        assert_eq!(ecdsa_der_to_raw(&der, Curve::P256).unwrap(), raw);
        // r does not fit P-256's 32 bytes.
        let big = ecdsa_raw_to_der(&[0x11; 96]).unwrap();
        assert!(ecdsa_der_to_raw(&big, Curve::P256).is_none());
        assert_eq!(ecdsa_der_to_raw(&big, Curve::P384).unwrap().len(), 96);
        assert!(ecdsa_der_to_raw(b"\x30\x00junk", Curve::P256).is_none());
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_none());
        assert!(ecdsa_raw_to_der(&[]).is_none());
    }

    #[test]
    fn pss_identifier_is_what_the_verifier_reads() {
        let ai = pss_algorithm_identifier(DigestAlgorithm::Sha256).unwrap();
        assert_eq!(
            super::super::pss_params(&ai).unwrap(),
            (DigestAlgorithm::Sha256, 32)
        );
    }
}

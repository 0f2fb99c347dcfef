//! Unsigned attributes added to one SignerInfo of a built SignedData: the levels above
//! CAdES B-B (ETSI EN 319 122-1 §5.3, §5.5; RFC 5126 §5.11, §6.3).
//!
//! - B-T: `id-aa-signatureTimeStampToken` (1.2.840.113549.1.9.16.2.14). Its value is an
//!   RFC 3161 `TimeStampToken` whose message imprint is the hash of the SignerInfo's
//!   `signature` field value (the OCTET STRING's contents, not its tag and length: RFC 3161
//!   Appendix A, ETSI EN 319 122-1 §5.3). [`signature_value`] gives those bytes.
//! - B-LT: `id-aa-ets-certValues` (…2.23, `SEQUENCE OF Certificate`) and
//!   `id-aa-ets-revocationValues` (…2.24, `RevocationValues { crlVals [0] SEQUENCE OF
//!   CertificateList, ocspVals [1] SEQUENCE OF BasicOCSPResponse }`).
//!
//! Why the B-LT data goes into the signer's unsigned attributes rather than into
//! `SignedData.certificates` / `SignedData.crls` (which EN 319 122-1 also permits): an OCSP
//! response in `crls` is an `other` RevocationInfoChoice (`id-ri-ocsp-response`), which forces
//! SignedData version 5 and which common CMS libraries do not model correctly; the attributes
//! keep the validation data beside the signer it belongs to when a SignedData carries a
//! co-signature; and `certificate-values` / `revocation-values` are what validators look for
//! first for CAdES B-LT. The certificates are ALSO in `SignedData.certificates` already (the
//! builder writes the chain there), so path building works either way.
//!
//! Nothing signed changes: the eContent, the signed attributes and the signature value are
//! kept byte for byte (checked after re-encoding, since the SignerInfo is rebuilt). The input
//! must be DER (what [`super::PreparedSignature::finish`] and [`super::add_signers`] write):
//! a BER input is refused rather than silently re-encoded.

use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence, Tagged};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::crl::CertificateList;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};

use super::BuildError;
use crate::cms::oid as cms_oid;

/// Object identifiers of the unsigned attributes (RFC 5126, ETSI EN 319 122-1).
pub mod oid {
    use const_oid::ObjectIdentifier as Oid;

    /// id-aa-signatureTimeStampToken (RFC 3161 Appendix A).
    pub const SIGNATURE_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
    /// id-aa-ets-certValues.
    pub const CERT_VALUES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.23");
    /// id-aa-ets-revocationValues.
    pub const REVOCATION_VALUES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.24");
}

/// The most unsigned attributes one SignerInfo may carry after an addition: bounds the work
/// of a CMS passed around and extended repeatedly.
const MAX_UNSIGNED_ATTRIBUTES: usize = 64;

/// `RevocationValues` (RFC 5126 §6.3.4), without `otherRevVals`.
#[derive(Clone, Debug, Sequence)]
struct RevocationValues {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_vals: Option<Vec<CertificateList>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    ocsp_vals: Option<Vec<Any>>,
}

/// The validation data of a B-LT signature (DER each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationData {
    /// The certificates of the signer's path (the signer's own included or not: any order).
    pub certificates: Vec<Vec<u8>>,
    /// CRLs (`CertificateList`).
    pub crls: Vec<Vec<u8>>,
    /// OCSP answers: a full `OCSPResponse` or its `BasicOCSPResponse` (the attribute carries
    /// the latter; a full response is unwrapped).
    pub ocsp: Vec<Vec<u8>>,
}

/// The bytes a signature timestamp is over: the value of signer `index`'s `signature` field
/// (ETSI EN 319 122-1 §5.3). Hash them with the TSA request's algorithm.
pub fn signature_value(cms_der: &[u8], index: usize) -> Result<Vec<u8>, BuildError> {
    let (_, sd) = decode(cms_der)?;
    let signer = sd
        .signer_infos
        .0
        .get(index)
        .ok_or_else(|| no_signer(index, sd.signer_infos.0.len()))?;
    Ok(signer.signature.as_bytes().to_vec())
}

/// Adds `token` (an RFC 3161 `TimeStampToken`, DER `ContentInfo`) as an
/// `id-aa-signatureTimeStampToken` unsigned attribute of signer `index`: CAdES B-T.
/// The token is not checked here (the caller verified it against [`signature_value`]); only
/// that it is one DER `ContentInfo`.
pub fn add_signature_timestamp(
    cms_der: &[u8],
    index: usize,
    token: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let ci = ContentInfo::from_der(token)
        .map_err(|e| BuildError::Encoding(format!("the timestamp token: {e}")))?;
    if ci.content_type != cms_oid::SIGNED_DATA {
        return Err(BuildError::Encoding(format!(
            "the timestamp token is a {} ContentInfo, not SignedData",
            ci.content_type
        )));
    }
    let value = Any::from_der(token).map_err(|e| BuildError::Encoding(e.to_string()))?;
    add_attributes(
        cms_der,
        index,
        vec![attribute(oid::SIGNATURE_TIME_STAMP_TOKEN, value)?],
    )
}

/// Adds `certificate-values` and `revocation-values` unsigned attributes to signer `index`:
/// the validation data of CAdES B-LT. An empty list leaves its attribute out (a signer whose
/// path needs no revocation data, e.g. with an OCSP no-check responder, has no CRL).
pub fn add_validation_data(
    cms_der: &[u8],
    index: usize,
    data: &ValidationData,
) -> Result<Vec<u8>, BuildError> {
    let mut attrs = Vec::new();
    if !data.certificates.is_empty() {
        let certs = data
            .certificates
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Certificate::from_der(d).map_err(|e| BuildError::ChainCertificate {
                    index: i,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        attrs.push(attribute(
            oid::CERT_VALUES,
            Any::encode_from(&certs).map_err(enc)?,
        )?);
    }
    if !data.crls.is_empty() || !data.ocsp.is_empty() {
        let crls = data
            .crls
            .iter()
            .map(|d| {
                CertificateList::from_der(d)
                    .map_err(|e| BuildError::Encoding(format!("a CRL: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ocsp = data
            .ocsp
            .iter()
            .map(|d| basic_ocsp(d).and_then(|b| Any::from_der(&b).map_err(enc)))
            .collect::<Result<Vec<_>, _>>()?;
        let values = RevocationValues {
            crl_vals: (!crls.is_empty()).then_some(crls),
            ocsp_vals: (!ocsp.is_empty()).then_some(ocsp),
        };
        attrs.push(attribute(
            oid::REVOCATION_VALUES,
            Any::encode_from(&values).map_err(enc)?,
        )?);
    }
    if attrs.is_empty() {
        return Ok(cms_der.to_vec());
    }
    add_attributes(cms_der, index, attrs)
}

/// `OCSPResponse` → its `BasicOCSPResponse` (RFC 6960 §4.2.1); a `BasicOCSPResponse` as is.
fn basic_ocsp(der: &[u8]) -> Result<Vec<u8>, BuildError> {
    #[derive(Sequence)]
    struct ResponseBytes {
        response_type: ObjectIdentifier,
        response: OctetString,
    }
    #[derive(Sequence)]
    struct OcspResponse {
        status: Any,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        bytes: Option<ResponseBytes>,
    }
    const BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
    let bad = |e: &dyn std::fmt::Display| BuildError::Encoding(format!("an OCSP response: {e}"));
    // An OCSPResponse starts with the ENUMERATED status; a BasicOCSPResponse with tbs SEQUENCE.
    let first = Any::from_der(der).map_err(|e| bad(&e))?;
    if first.tag() != der::Tag::Sequence {
        return Err(bad(&"not a SEQUENCE"));
    }
    let starts_enumerated = first.value().first() == Some(&0x0A);
    if !starts_enumerated {
        return Ok(der.to_vec());
    }
    let r = OcspResponse::from_der(der).map_err(|e| bad(&e))?;
    let bytes = r.bytes.ok_or_else(|| bad(&"no responseBytes"))?;
    if bytes.response_type != BASIC {
        return Err(bad(&format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    Ok(bytes.response.as_bytes().to_vec())
}

/// Decodes a DER ContentInfo holding a SignedData, refusing anything that does not
/// re-encode to the same bytes.
fn decode(cms_der: &[u8]) -> Result<(ContentInfo, SignedData), BuildError> {
    let invalid = |reason: String| BuildError::InvalidCms {
        which: "existing",
        reason,
    };
    if cms_der.len() > crate::cms::MAX_CMS_LEN {
        return Err(invalid(format!(
            "{} bytes is over the limit of {}",
            cms_der.len(),
            crate::cms::MAX_CMS_LEN
        )));
    }
    let ci = ContentInfo::from_der(cms_der).map_err(|e| invalid(e.to_string()))?;
    if ci.content_type != cms_oid::SIGNED_DATA {
        return Err(invalid(format!(
            "content type {}, not id-signedData",
            ci.content_type
        )));
    }
    if ci.to_der().map_err(enc)? != cms_der {
        return Err(invalid(
            "it is not DER; unsigned attributes are added to DER only, so nothing signed moves"
                .into(),
        ));
    }
    let sd: SignedData = ci.content.decode_as().map_err(|e| invalid(e.to_string()))?;
    if sd.to_der().map_err(enc)? != ci.content.to_der().map_err(enc)? {
        return Err(invalid("the SignedData is not DER".into()));
    }
    Ok((ci, sd))
}

fn add_attributes(
    cms_der: &[u8],
    index: usize,
    new: Vec<Attribute>,
) -> Result<Vec<u8>, BuildError> {
    let (_, mut sd) = decode(cms_der)?;
    let mut signers: Vec<_> = sd.signer_infos.0.clone().into_vec();
    let count = signers.len();
    let signer = signers
        .get_mut(index)
        .ok_or_else(|| no_signer(index, count))?;
    let before_signed = signer.signed_attrs.to_der().map_err(enc)?;
    let before_signature = signer.signature.clone();
    let mut attrs: Vec<Attribute> = signer
        .unsigned_attrs
        .take()
        .map(|a| a.into_vec())
        .unwrap_or_default();
    attrs.extend(new);
    if attrs.len() > MAX_UNSIGNED_ATTRIBUTES {
        return Err(BuildError::Encoding(format!(
            "signer #{index} would carry {} unsigned attributes, more than {MAX_UNSIGNED_ATTRIBUTES}",
            attrs.len()
        )));
    }
    signer.unsigned_attrs = Some(SetOfVec::try_from(attrs).map_err(enc)?);
    // Nothing signed may move: the signed attributes and the value, as they were.
    if signer.signed_attrs.to_der().map_err(enc)? != before_signed
        || signer.signature != before_signature
    {
        return Err(BuildError::Encoding(
            "adding an unsigned attribute changed the signed part".into(),
        ));
    }
    sd.signer_infos = SignerInfos::try_from(signers).map_err(enc)?;
    ContentInfo {
        content_type: cms_oid::SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, BuildError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(enc)?,
    })
}

fn no_signer(index: usize, count: usize) -> BuildError {
    BuildError::InvalidCms {
        which: "existing",
        reason: format!("there is no signer #{index} ({count} signer(s))"),
    }
}

fn enc(e: der::Error) -> BuildError {
    BuildError::Encoding(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_non_signed_data_are_refused() {
        for input in [&b""[..], b"\x30\x00", b"garbage"] {
            assert!(matches!(
                add_signature_timestamp(input, 0, b"\x30\x00"),
                Err(BuildError::Encoding(_) | BuildError::InvalidCms { .. })
            ));
            assert!(signature_value(input, 0).is_err());
        }
        // ContentInfo with id-data.
        let data_ci = [
            0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x04, 0x04, 0x02, 0x68, 0x69,
        ];
        match signature_value(&data_ci, 0) {
            Err(BuildError::InvalidCms { reason, .. }) => {
                assert!(reason.contains("not id-signedData"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // A token that is a ContentInfo but not a SignedData is refused before the CMS is read.
        match add_signature_timestamp(b"garbage", 0, &data_ci) {
            Err(BuildError::Encoding(r)) => assert!(r.contains("not SignedData"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ocsp_response_is_unwrapped_to_its_basic_response() {
        // OCSPResponse { successful, [0] { id-pkix-ocsp-basic, OCTET STRING { 30 00 } } }
        let basic = [0x30, 0x00];
        let mut rb = vec![
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01, 0x04, 0x02,
        ];
        rb.extend_from_slice(&basic);
        let mut seq = vec![0x30, rb.len() as u8];
        seq.extend(rb);
        let mut tagged = vec![0xA0, seq.len() as u8];
        tagged.extend(seq);
        let mut body = vec![0x0A, 0x01, 0x00];
        body.extend(tagged);
        let mut resp = vec![0x30, body.len() as u8];
        resp.extend(body);
        assert_eq!(basic_ocsp(&resp).unwrap(), basic);
        // A BasicOCSPResponse (tbsResponseData first) is kept.
        let b = [0x30, 0x04, 0x30, 0x02, 0x05, 0x00];
        assert_eq!(basic_ocsp(&b).unwrap(), b);
        // An unsuccessful response has no BasicOCSPResponse.
        let failed = [0x30, 0x03, 0x0A, 0x01, 0x06];
        assert!(basic_ocsp(&failed).is_err());
    }
}

//! What a signer carries beyond B-B, as embedded (ETSI EN 319 122-1 §5.3, §5.5): the
//! signature timestamps (`id-aa-signatureTimeStampToken`), the certificate values and the
//! revocation values of B-LT, and CRLs of `SignedData.crls`. Raw DER only: judging them
//! (the token's imprint against the signature value, paths, freshness) is the validation's.
//!
//! An attribute that does not decode is reported in [`Embedded::warnings`] and skipped, so a
//! damaged unsigned attribute (which the signature does not cover) never hides the others.

use der::{Any, Encode, Sequence};

use crate::cms::SignedDataMessage;
use crate::cms_build::unsigned::oid;

/// The raw evidence embedded for one signer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Embedded {
    /// Signature timestamp tokens (DER `ContentInfo`), in attribute order.
    pub timestamp_tokens: Vec<Vec<u8>>,
    /// `certificate-values` (DER certificates).
    pub certificates: Vec<Vec<u8>>,
    /// `revocation-values` crlVals, then the CRLs of `SignedData.crls` (DER `CertificateList`).
    pub crls: Vec<Vec<u8>>,
    /// `revocation-values` ocspVals (DER `BasicOCSPResponse`).
    pub ocsp: Vec<Vec<u8>>,
    /// Unsigned attributes that could not be read.
    pub warnings: Vec<String>,
}

impl Embedded {
    /// Whether a signature timestamp is embedded (a B-T candidate, not yet verified).
    pub fn has_timestamp(&self) -> bool {
        !self.timestamp_tokens.is_empty()
    }
}

#[derive(Sequence)]
struct RevocationValuesRaw {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_vals: Option<Vec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    ocsp_vals: Option<Vec<Any>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    other_rev_vals: Option<Any>,
}

/// The evidence embedded for signer `index` of `msg`; `None` when there is no such signer.
pub fn embedded(msg: &SignedDataMessage, index: usize) -> Option<Embedded> {
    let signer = msg.signer(index)?;
    let mut out = Embedded::default();
    let der_of = |a: &Any| a.to_der().map_err(|e| e.to_string());
    for attr in signer.unsigned_attrs.iter().flat_map(|s| s.iter()) {
        for value in attr.values.iter() {
            let r: Result<(), String> = match attr.oid {
                oid::SIGNATURE_TIME_STAMP_TOKEN => der_of(value).map(|d| {
                    out.timestamp_tokens.push(d);
                }),
                oid::CERT_VALUES => value
                    .decode_as::<Vec<Any>>()
                    .map_err(|e| e.to_string())
                    .and_then(|certs| {
                        for c in &certs {
                            out.certificates.push(der_of(c)?);
                        }
                        Ok(())
                    }),
                oid::REVOCATION_VALUES => value
                    .decode_as::<RevocationValuesRaw>()
                    .map_err(|e| e.to_string())
                    .and_then(|rv| {
                        for c in rv.crl_vals.iter().flatten() {
                            out.crls.push(der_of(c)?);
                        }
                        for o in rv.ocsp_vals.iter().flatten() {
                            out.ocsp.push(der_of(o)?);
                        }
                        Ok(())
                    }),
                _ => Ok(()),
            };
            if let Err(e) = r {
                out.warnings
                    .push(format!("unsigned attribute {} unreadable: {e}", attr.oid));
            }
        }
    }
    if let Some(crls) = &msg.signed_data().crls {
        for c in crls.0.iter() {
            if let cms::revocation::RevocationInfoChoice::Crl(crl) = c {
                match crl.to_der() {
                    Ok(d) => out.crls.push(d),
                    Err(e) => out.warnings.push(format!("a CRL of SignedData.crls: {e}")),
                }
            }
        }
    }
    Some(out)
}

/// The value of signer `index`'s `signature` field: what its signature timestamps are over.
pub fn signature_value(msg: &SignedDataMessage, index: usize) -> Option<&[u8]> {
    msg.signer(index).map(|s| s.signature.as_bytes())
}

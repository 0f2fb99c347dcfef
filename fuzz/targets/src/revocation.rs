//! OCSP responses and CRLs, decoded as kyso-revocation decodes them
//! (`ocsp.rs` `verify_response`, `crl.rs` `parse_and_verify`): the bodies
//! come from responders and distribution points named in certificates.
//!
//! kyso-revocation's own functions verify the response's signature before
//! reading further (and pull in the HTTP client), so a fuzzer could not get
//! past it; this target runs the same decoders (x509-ocsp, x509-cert) over
//! the whole structure instead, signed or not, including the extension
//! values the revocation checker decodes after the signature check.

use der::{Decode, Encode};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_ocsp::{BasicOcspResponse, OcspResponse};

/// Decodes the input as a CRL (DER or PEM) and as an OCSP response; must not panic.
pub fn revocation(data: &[u8]) {
    if data.starts_with(b"-----BEGIN") {
        if let Ok((_, der)) = der::pem::decode_vec(data) {
            crl(&der);
        }
    } else {
        crl(data);
    }
    ocsp(data);
}

fn crl(der: &[u8]) {
    let Ok(crl) = CertificateList::from_der(der) else {
        return;
    };
    // The signed part is re-encoded for the signature check.
    let _ = crl.tbs_cert_list.to_der();
    for ext in crl.tbs_cert_list.crl_extensions.iter().flatten() {
        let v = ext.extn_value.as_bytes();
        let _ = IssuingDistributionPoint::from_der(v);
        let _ = der::asn1::Uint::from_der(v);
    }
    for entry in crl.tbs_cert_list.revoked_certificates.iter().flatten() {
        for ext in entry.crl_entry_extensions.iter().flatten() {
            let _ = CrlReason::from_der(ext.extn_value.as_bytes());
        }
    }
}

fn ocsp(der: &[u8]) {
    let Ok(resp) = OcspResponse::from_der(der) else {
        return;
    };
    let Some(bytes) = resp.response_bytes else {
        return;
    };
    let Ok(basic) = BasicOcspResponse::from_der(bytes.response.as_bytes()) else {
        return;
    };
    let _ = basic.tbs_response_data.to_der();
    for single in &basic.tbs_response_data.responses {
        let _ = single.cert_id.to_der();
    }
    for cert in basic.certs.iter().flatten() {
        let _ = cert.to_der();
    }
}

//! The OCSP response decoders the revocation checker relies on.
#![no_main]
use der::Decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = x509_ocsp::OcspResponse::from_der(data)
        && let Some(b) = r.response_bytes
    {
        let _ = x509_ocsp::BasicOcspResponse::from_der(b.response.as_bytes());
    }
});

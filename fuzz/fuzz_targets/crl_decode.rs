//! The CRL decoder the revocation checker relies on.
#![no_main]
use der::Decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = x509_cert::crl::CertificateList::from_der(data);
});

//! Certificates and everything the report reads from them.
#![no_main]
use kyso_pki::cert::{Cert, SignerIdentity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Cert::from_der(data) {
        let _ = SignerIdentity::from_cert(&c);
        let _ = c.basic_constraints();
        let _ = c.key_usage();
        let _ = kyso_pki::path::ca_issuers_urls(&c);
        let _ = kyso_pki::name::rfc4514(c.issuer());
    }
    let _ = Cert::parse_many(data);
});

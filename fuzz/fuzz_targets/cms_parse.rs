//! CMS parsing and every signer's checks, with and without detached content.
#![no_main]
use kyso_pki::cms::{Detached, check_signer, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = parse(data) {
        for i in 0..msg.signer_count() {
            let _ = check_signer(&msg, i, &Detached::None, &[]);
            let _ = check_signer(&msg, i, &Detached::Content(b"content"), &[]);
        }
    }
});

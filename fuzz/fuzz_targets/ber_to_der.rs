//! BER normalisation: never panics, and its output is a fixed point.
#![no_main]
use kyso_pki::ber::{Limits, to_der};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(once) = to_der(data, Limits::default()) {
        let twice = to_der(&once, Limits::default()).expect("DER output must parse again");
        assert_eq!(&*once, &*twice);
    }
});

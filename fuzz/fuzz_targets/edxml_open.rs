//! See `kyso_fuzz_targets::edxml_open`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::edxml_open(data));

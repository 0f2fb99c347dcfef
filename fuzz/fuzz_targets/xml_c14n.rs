//! See `kyso_fuzz_targets::xml_c14n`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::xml_c14n(data));

//! See `kyso_fuzz_targets::cms`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::cms(data));

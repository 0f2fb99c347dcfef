//! See `kyso_fuzz_targets::png`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::png(data));

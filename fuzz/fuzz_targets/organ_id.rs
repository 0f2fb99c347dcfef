//! See `kyso_fuzz_targets::organ_id`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::organ_id(data));

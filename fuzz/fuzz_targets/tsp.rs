//! See `kyso_fuzz_targets::tsp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kyso_fuzz_targets::tsp(data));

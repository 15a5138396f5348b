#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realstat_fuzz::callback_body(data));

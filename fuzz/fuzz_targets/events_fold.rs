#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realstat_fuzz::events_fold(data));

#![no_main]
//! See `onelaunch_server::fuzz_targets::upload_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onelaunch_server::fuzz_targets::upload_file(data);
});

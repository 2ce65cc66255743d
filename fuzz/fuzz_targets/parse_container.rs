#![no_main]
//! See `onelaunch_server::fuzz_targets::parse_container`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onelaunch_server::fuzz_targets::parse_container(data);
});

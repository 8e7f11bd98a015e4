//! The state document of the file backend.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::state_document(data);
});

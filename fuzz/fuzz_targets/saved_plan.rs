//! The plan file `preview --save-plan` writes and `up --plan` reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::saved_plan(data);
});

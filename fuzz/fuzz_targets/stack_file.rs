//! A stack file's generic keys, read for a program with no section.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::stack_file::<echo_iac_runner::NoSettings>(data);
});

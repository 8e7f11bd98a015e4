//! A stack file of the echo program: the generic keys and its `echo:`
//! section.
#![no_main]

use echo_iac_runner::Program;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::stack_file::<<echo_iac::Echo as Program>::Config>(data);
});

//! A merged kubeconfig list: up to three files, separated by
//! `echo_iac_fuzz::SEPARATOR`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::kubeconfig_merge(&echo_iac_fuzz::split(data));
});

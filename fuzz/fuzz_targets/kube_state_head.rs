//! The Kubernetes backend's head Secret: its index, inline revisions and
//! part Secrets, separated by `echo_iac_fuzz::SEPARATOR`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    echo_iac_fuzz::kube_state_head(&echo_iac_fuzz::split(data));
});

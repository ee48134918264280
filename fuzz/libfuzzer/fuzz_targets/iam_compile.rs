//! libFuzzer entry for `mesh_auth_fuzz::iam_compile`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mesh_auth_fuzz::iam_compile(data));

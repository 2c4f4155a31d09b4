//! A POST body to /v1/publications or a decision route: the DSSE envelope, its payload
//! and every field check, then signature verification against an empty directory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::catalog::{KeyDirectory, Submission};

fuzz_target!(|data: &[u8]| {
    if let Ok(submission) = Submission::parse(data) {
        let keys = KeyDirectory::from_verifiers(Vec::new());
        let _ = submission.verify(&keys);
    }
});

//! Publication and grant request payloads (the JSON inside a DSSE envelope).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::catalog::{parse_grant_request, parse_publication_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_publication_request(data) {
        let _ = request.problems();
    }
    let _ = parse_grant_request(data);
});

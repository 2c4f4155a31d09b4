//! The C2SP tlog-witness add-checkpoint body, and the size body of a 409 answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::{parse_tlog_size_body, AddCheckpoint};

fuzz_target!(|data: &[u8]| {
    let _ = AddCheckpoint::parse(data);
    let _ = parse_tlog_size_body(data);
});

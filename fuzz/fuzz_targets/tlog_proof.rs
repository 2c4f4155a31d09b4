//! C2SP tlog-proof text: parsing is total and round-trips; opening it never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::{TlogProof, Verifier};

const LOG_VKEY: &str = include_str!("../../log-format/vectors/note/selfmade-test-log.vkey");

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = TlogProof::parse(data) {
        assert_eq!(
            proof.to_bytes(),
            data,
            "a parsed tlog-proof must re-encode to its input"
        );
        if let Ok(key) = Verifier::from_vkey(LOG_VKEY.trim()) {
            let _ = proof.open(&key);
        }
    }
});

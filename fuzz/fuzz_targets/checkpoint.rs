//! Checkpoint bodies and signed checkpoints: parsing is total, a parsed body re-encodes to
//! its input, and opening with a real key never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::{open_checkpoint, Checkpoint, Verifier};

const LOG_VKEY: &str = include_str!("../../log-format/vectors/note/selfmade-test-log.vkey");

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(
                cp.to_text(),
                text,
                "a parsed checkpoint must re-encode to its input"
            );
        }
    }
    if let Ok(key) = Verifier::from_vkey(LOG_VKEY.trim()) {
        let _ = open_checkpoint(data, &key);
    }
});

//! C2SP signed notes from anyone: parsing is total, and what parses re-encodes to the
//! same bytes (the format has one encoding per note).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::Note;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(
            note.to_bytes(),
            data,
            "a parsed note must re-encode to its input"
        );
        let _ = note.verify(&[]);
    }
});

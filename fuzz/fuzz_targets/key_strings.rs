//! Verifier and private key strings (x/mod formats) and cosignature lines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::{NoteSignature, Signer, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Verifier::from_vkey(text) {
        assert_eq!(
            v.to_vkey(),
            text,
            "a parsed verifier key must re-encode to its input"
        );
    }
    let _ = Signer::from_private_key_string(text);
    if let Ok(sig) = NoteSignature::parse_line(text) {
        // parse_line accepts the line with or without its final newline; to_line adds it.
        let canonical = format!("{}\n", text.strip_suffix('\n').unwrap_or(text));
        assert_eq!(
            sig.to_line(),
            canonical,
            "a parsed signature line must re-encode"
        );
    }
});

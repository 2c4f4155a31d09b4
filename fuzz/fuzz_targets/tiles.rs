//! tlog-tiles paths and tile contents as a mirror or a client sends them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::tiles::{decode_bundle, encode_bundle, hashes_of, TileId};

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        if let Some(tile) = TileId::parse_path(path) {
            assert_eq!(
                tile.path(),
                path,
                "a parsed tile path must re-encode to its input"
            );
            let _ = tile.first_leaf();
            let _ = tile.full();
        }
    }
    if let Some(entries) = decode_bundle(data) {
        let again = encode_bundle(entries.iter().copied());
        assert_eq!(
            again.as_deref(),
            Some(data),
            "a decoded bundle must re-encode to its input"
        );
    }
    let _ = hashes_of(data);
});

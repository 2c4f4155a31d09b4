//! Log entries as a monitor reads them from a mirror: the leaf parse and the stateless
//! half of apply (strict parse, canonical form, payload validation).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::catalog::{leaf_dedup_key, Leaf, PreparedLeaf};

fuzz_target!(|data: &[u8]| {
    let _ = Leaf::parse(data);
    let _ = leaf_dedup_key(data);
    let _ = PreparedLeaf::parse(1, data);
});

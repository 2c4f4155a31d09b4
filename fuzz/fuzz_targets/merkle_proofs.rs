//! Inclusion and consistency proofs from outside: sizes, indices and hashes chosen by
//! the input; verification is total (an error, never a panic or a huge allocation).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::merkle::{verify_consistency, verify_inclusion};

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (a, b) = (u64_at(data, 0), u64_at(data, 8));
    let rest = &data[16..];
    let hashes: Vec<&[u8]> = rest.chunks(32).collect();
    let (first, proof) = match hashes.split_first() {
        Some((h, p)) => (*h, p),
        None => (&[][..], &[][..]),
    };
    let _ = verify_inclusion(a, b, first, proof, first);
    let _ = verify_consistency(a, b, first, first, proof);
});

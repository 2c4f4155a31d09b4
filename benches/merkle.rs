//! Merkle module benchmarks: hashing, proof generation from an in-memory store
//! of 1e6 leaves, and verification.
//!
//! Run with `cargo bench --bench merkle`; `cargo bench --bench merkle -- --test`
//! runs each benchmark once as a smoke check.

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{criterion_group, criterion_main, Criterion};
use srcos_catalog::merkle::*;

const LEAVES: u64 = 1_000_000;

/// A log of 1e6 leaves with every complete subtree stored (about 64 MB),
/// built once and shared by the proof benchmarks.
fn log() -> &'static MemoryHashSource {
    static LOG: OnceLock<MemoryHashSource> = OnceLock::new();
    LOG.get_or_init(|| {
        let mut log = MemoryHashSource::new();
        for i in 0..LEAVES {
            log.push(leaf_hash(&i.to_be_bytes()));
        }
        log
    })
}

fn hashing(c: &mut Criterion) {
    let entry = [0x5au8; 256];
    c.bench_function("leaf_hash 256 B", |b| {
        b.iter(|| leaf_hash(black_box(&entry)))
    });
    let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
    c.bench_function("node_hash", |b| {
        b.iter(|| node_hash(black_box(&l), black_box(&r)))
    });
}

fn proofs(c: &mut Criterion) {
    let log = log();
    let index: u64 = 123_457;
    c.bench_function("inclusion_proof 1e6", |b| {
        b.iter(|| inclusion_proof(black_box(index), black_box(LEAVES), log))
    });
    c.bench_function("inclusion_proof at old size 999_999", |b| {
        b.iter(|| inclusion_proof(black_box(index), black_box(LEAVES - 1), log))
    });
    c.bench_function("consistency_proof 500_001 -> 1e6", |b| {
        b.iter(|| consistency_proof(black_box(500_001), black_box(LEAVES), log))
    });
    c.bench_function("tree_root 999_999", |b| {
        b.iter(|| tree_root(black_box(LEAVES - 1), log))
    });
}

fn verification(c: &mut Criterion) {
    let log = log();
    let index: u64 = 123_457;
    let root = log.root();
    let leaf = leaf_hash(&index.to_be_bytes());
    let Ok(incl) = inclusion_proof(index, LEAVES, log) else {
        return;
    };
    c.bench_function("verify_inclusion 1e6", |b| {
        b.iter(|| verify_inclusion(black_box(index), LEAVES, &leaf, black_box(&incl), &root))
    });
    c.bench_function("verify_inclusion_rs_merkle 1e6", |b| {
        b.iter(|| {
            verify_inclusion_rs_merkle(black_box(index), LEAVES, &leaf, black_box(&incl), &root)
        })
    });
    let first = 500_001;
    let (Ok(old_root), Ok(cons)) = (tree_root(first, log), consistency_proof(first, LEAVES, log))
    else {
        return;
    };
    c.bench_function("verify_consistency 500_001 -> 1e6", |b| {
        b.iter(|| verify_consistency(black_box(first), LEAVES, &old_root, &root, black_box(&cons)))
    });
}

fn appending(c: &mut Criterion) {
    let leaf = leaf_hash(b"x");
    c.bench_function("CompactRange::append (amortised)", |b| {
        let mut range = CompactRange::new();
        b.iter(|| range.append(black_box(leaf), |_, _| {}))
    });
}

criterion_group!(benches, hashing, proofs, verification, appending);
criterion_main!(benches);

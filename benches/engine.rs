//! Engine paths behind the issue-5 targets, with the machine's limits measured in the
//! same run so every figure can be read as a ratio:
//! - proofs served from a real tile store (inclusion proof + receipt assembly);
//! - offline receipt verification on one core;
//! - replay: entries through the integrator (tree) and `Catalog::apply` (catalog);
//! - raw Ed25519 verification and raw SHA-256, the per-core limits.
//!
//! Under `cargo bench` the log has 1,000,000 entries; under `cargo test` (CI smoke
//! check) a small one, so CI stays fast.

mod common;

use common::{bench_mode, data_dir, Committer, Leaves};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sha2::Digest;
use srcos_catalog::catalog::Catalog;
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::log::reader::{TileCache, TreeView};
use srcos_catalog::log::replay;
use srcos_catalog::merkle;
use srcos_catalog::note::{batch, KeyType, Signer};
use srcos_catalog::receipt::Receipt;
use srcos_catalog::storage::posix::{PosixLock, PosixTiles};

/// A real catalog log: genesis, one grant, then `count` publications, all admitted by
/// the catalog; returns the leaves and the log's signer.
fn catalog_leaves(count: usize) -> (Vec<Vec<u8>>, Signer) {
    let log_key = Signer::generate("bench.srcos.local/log", KeyType::Ed25519).unwrap();
    let admin = Signer::generate("admin", KeyType::Ed25519).unwrap();
    let (mut generator, first) = Leaves::begin(&log_key, &admin);
    let mut leaves = first.to_vec();
    leaves.extend((0..count as u64).map(|n| generator.publication(n)));
    (leaves, log_key)
}

/// Writes `size` synthetic entries to a tile store in batches of 4096.
fn build_store(store: &PosixTiles, lock: &PosixLock, size: u64, signer: &Signer) -> Vec<u8> {
    let mut integrator = Integrator::new();
    let mut committer = Committer::default();
    let mut signed = Vec::new();
    let mut n = 0u64;
    while n < size {
        let mut tiles = BatchTiles::default();
        let end = (n + 4096).min(size);
        while n < end {
            let entry = format!("{{\"entry\":{n},\"pad\":\"{:0>64}\"}}", n);
            integrator.append(entry.as_bytes(), &mut tiles).unwrap();
            n += 1;
        }
        signed = committer
            .commit(store, lock, &mut integrator, tiles, signer)
            .to_vec();
    }
    signed
}

fn proofs_from_tiles(c: &mut Criterion) {
    let size: u64 = if bench_mode() { 1_000_000 } else { 10_000 };
    let dir = data_dir();
    let store = PosixTiles::open(dir.path()).unwrap();
    let lock = PosixLock::open(dir.path()).unwrap();
    let signer = Signer::generate("bench.srcos.local/log", KeyType::Ed25519).unwrap();
    let checkpoint = build_store(&store, &lock, size, &signer);
    let cache = TileCache::default();
    let view = TreeView::new(&store, &cache, size);
    let mut group = c.benchmark_group("served");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function(format!("inclusion_proof_from_tiles/{size}"), |b| {
        b.iter(|| {
            i = (i + 7919) % size;
            merkle::inclusion_proof(i, size, &view).unwrap()
        })
    });
    group.bench_function(format!("receipt_from_tiles/{size}"), |b| {
        b.iter(|| {
            i = (i + 7919) % size;
            let proof = merkle::inclusion_proof(i, size, &view).unwrap();
            let entry = view.entry(i).unwrap();
            Receipt::new(signer.name(), i, &entry, size, &proof, &checkpoint)
        })
    });
    group.finish();

    let receipt = {
        let proof = merkle::inclusion_proof(size / 3, size, &view).unwrap();
        let entry = view.entry(size / 3).unwrap();
        Receipt::new(signer.name(), size / 3, &entry, size, &proof, &checkpoint)
    };
    let key = signer.verifier();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("receipt_verify_one_core", |b| {
        b.iter(|| receipt.verify(&key).unwrap())
    });
    group.finish();
}

fn limits(c: &mut Criterion) {
    let signer = Signer::generate("k", KeyType::Ed25519).unwrap();
    let message = vec![0x5au8; 600];
    let signature = signer.sign_bytes(&message);
    let verifier = signer.verifier();
    let mut group = c.benchmark_group("limits");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519_verify", |b| {
        b.iter(|| assert!(verifier.verify_bytes(&message, &signature)))
    });
    // Batch verification behind the strict-equivalence guard (note::batch, ADR 0010),
    // per signature: 64 signatures by 4 keys per call.
    let signers: Vec<Signer> = (0..4)
        .map(|i| Signer::generate(&format!("k{i}"), KeyType::Ed25519).unwrap())
        .collect();
    let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 600]).collect();
    let signatures: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| signers[i % 4].sign_bytes(m).to_vec())
        .collect();
    let verifiers: Vec<_> = signers.iter().map(Signer::verifier).collect();
    let items: Vec<(&_, &[u8], &[u8])> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (&verifiers[i % 4], m.as_slice(), signatures[i].as_slice()))
        .collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("ed25519_verify_batch64_guarded", |b| {
        b.iter(|| assert!(batch::verify_many(&items).iter().all(|v| *v)))
    });
    // The same without the guard (NOT strict-equivalent): what batching alone saves.
    let dalek: Vec<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature)> = items
        .iter()
        .map(|(k, _, s)| {
            (
                ed25519_dalek::VerifyingKey::from_bytes(k.public_key()).unwrap(),
                ed25519_dalek::Signature::from_slice(s).unwrap(),
            )
        })
        .collect();
    let (keys, sigs): (Vec<_>, Vec<_>) = dalek.into_iter().unzip();
    let msgs: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
    group.bench_function("ed25519_verify_batch64_unguarded", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&msgs, &sigs, &keys).unwrap())
    });
    group.bench_function("ed25519_verify_strict_x64", |b| {
        b.iter(|| assert!(items.iter().all(|(k, m, s)| k.verify_bytes(m, s))))
    });
    group.throughput(Throughput::Elements(1));
    let node = [7u8; 65];
    group.bench_function("sha256_node_65B", |b| b.iter(|| sha2::Sha256::digest(node)));
    group.finish();
}

fn replay(c: &mut Criterion) {
    let count = if bench_mode() { 20_000 } else { 200 };
    let (leaves, log_key) = catalog_leaves(count);
    // The log as a tiles server would hold it: entry bundles and a signed checkpoint.
    let (integrator, writes) = Integrator::from_entries(&leaves).unwrap();
    let bundles: std::collections::HashMap<String, Vec<u8>> = writes
        .into_iter()
        .map(|w| (w.tile.path(), w.data))
        .collect();
    let signed = integrator
        .checkpoint(log_key.name())
        .sign(&log_key)
        .unwrap()
        .to_bytes();
    let key = log_key.verifier();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(leaves.len() as u64));
    group.sample_size(10);
    group.bench_function(format!("tree_and_catalog/{}", leaves.len()), |b| {
        b.iter(|| {
            let replayed = replay::replay(Catalog::new(), &signed, &key, |tile| {
                bundles
                    .get(&tile.path())
                    .cloned()
                    .ok_or_else(|| replay::ReplayError::Fetch(tile.path().into()))
            })
            .unwrap();
            replayed.state_digest
        })
    });
    // The same leaves applied one by one on one core, without the state digest: what
    // the parallel preparation saves.
    group.bench_function(format!("apply_one_core/{}", leaves.len()), |b| {
        b.iter_batched(
            Catalog::new,
            |mut catalog| {
                for (i, leaf) in leaves.iter().enumerate() {
                    catalog.apply(i as u64, leaf).unwrap();
                }
                catalog
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A new submission's payload parse (`parse_outside_payload`): a valid publication request
/// takes the strict typed parse alone; `value_tree` is the duplicate-checking `Value`
/// parse it used to run first (and still runs for anything else), the part it saves.
fn payload_parse(c: &mut Criterion) {
    let payload = serde_json::to_vec(&common::publication_request(7)).unwrap();
    let mut group = c.benchmark_group("payload");
    group.throughput(Throughput::Elements(1));
    group.bench_function("outside_publication", |b| {
        b.iter(|| srcos_catalog::catalog::parse_outside_payload(&payload).unwrap())
    });
    group.bench_function("value_tree", |b| {
        b.iter(|| srcos_catalog::catalog::parse_value(&payload).unwrap())
    });
    group.finish();
}

criterion_group!(benches, limits, payload_parse, proofs_from_tiles, replay);
criterion_main!(benches);

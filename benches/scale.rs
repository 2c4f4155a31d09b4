//! Scale: does a big log slow the engine down? Durable appends (batches of 1024) and
//! inclusion proofs from tiles on a fresh log and on a log of `SRCOS_SCALE_ENTRIES`
//! entries (default 10,000,000 under `cargo bench`, 20,000 under `cargo test`), in one
//! run, so the two can be compared as a ratio. Memory of the engine is O(log n): the
//! integrator holds the compact range and one partial tile per level.
//!
//! Every append also records the leaf in the lookup index (leaf hash and a dedup key),
//! as the server does, and the bench prints the storage the engine uses per leaf beyond
//! the entries themselves (hash tiles, checkpoint and index), in hashes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::Digest;
use srcos_catalog::log::commit;
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::log::reader::{TileCache, TreeView};
use srcos_catalog::merkle;
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::index::Index;
use srcos_catalog::storage::posix::{PosixLock, PosixTiles};
use srcos_catalog::storage::{IndexedLeaf, LockedCheckpoint, LookupIndex};

fn target_size() -> u64 {
    if let Some(n) = std::env::var("SRCOS_SCALE_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        10_000_000
    } else {
        20_000
    }
}

struct Log {
    dir: tempfile::TempDir,
    store: PosixTiles,
    lock: PosixLock,
    /// The installed checkpoint.
    signed: Vec<u8>,
    index: Index,
    integrator: Integrator,
    signer: Signer,
    counter: u64,
}

impl Log {
    fn new() -> Log {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        let store = PosixTiles::open(&dir.path().join("log")).unwrap();
        let lock = PosixLock::open(&dir.path().join("log")).unwrap();
        let index = Index::open(&dir.path().join("lookup")).unwrap();
        Log {
            dir,
            store,
            lock,
            signed: Vec::new(),
            index,
            integrator: Integrator::new(),
            signer: Signer::generate("scale.srcos.local/log", KeyType::Ed25519).unwrap(),
            counter: 0,
        }
    }

    /// Appends one durable batch of `n` 200-byte entries.
    fn append_batch(&mut self, n: usize) {
        let old_size = self.integrator.size();
        let mut tiles = BatchTiles::default();
        let mut entry = vec![b'x'; 200];
        let mut indexed = Vec::with_capacity(n);
        for _ in 0..n {
            self.counter += 1;
            entry[..8].copy_from_slice(&self.counter.to_be_bytes());
            let index = self.integrator.size();
            let leaf_hash = self.integrator.append(&entry, &mut tiles).unwrap();
            indexed.push(IndexedLeaf {
                index,
                leaf_hash,
                dedup_key: Some(sha2::Sha256::digest(&entry[..8]).into()),
            });
        }
        let writes = self.integrator.finish(tiles);
        let checkpoint = self.integrator.checkpoint(self.signer.name());
        let signed = checkpoint.sign(&self.signer).unwrap().to_bytes();
        let old = (old_size > 0).then_some(LockedCheckpoint {
            size: old_size,
            signed: &self.signed,
        });
        let new = LockedCheckpoint {
            size: checkpoint.size,
            signed: &signed,
        };
        commit(&self.store, &self.lock, &writes, &[], old, new).unwrap();
        self.signed = signed;
        self.index.record(&indexed, self.integrator.size()).unwrap();
        self.index.persist_if_full().unwrap();
    }

    /// Bytes per leaf the engine stores beyond the entry bundles: hash tiles, the
    /// checkpoint and the lookup index.
    fn overhead_per_leaf(&self) -> (f64, f64) {
        fn walk(dir: &std::path::Path, entries: &mut u64, other: &mut u64) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let path = e.path();
                if e.file_type().unwrap().is_dir() {
                    walk(&path, entries, other);
                } else if path.to_string_lossy().contains("/tile/entries/") {
                    *entries += e.metadata().unwrap().len();
                } else {
                    *other += e.metadata().unwrap().len();
                }
            }
        }
        self.index.flush().unwrap();
        let (mut entries, mut tiles, mut index) = (0, 0, 0);
        walk(&self.dir.path().join("log"), &mut entries, &mut tiles);
        walk(&self.dir.path().join("lookup"), &mut entries, &mut index);
        let n = self.integrator.size() as f64;
        (tiles as f64 / n, index as f64 / n)
    }
}

fn scale(c: &mut Criterion) {
    let big_size = target_size();
    let mut fresh = Log::new();
    let mut big = Log::new();
    let started = std::time::Instant::now();
    while big.integrator.size() < big_size {
        big.append_batch(4096);
    }
    eprintln!(
        "built a {}-entry log in {:.1}s",
        big.integrator.size(),
        started.elapsed().as_secs_f64()
    );
    let (tiles, index) = big.overhead_per_leaf();
    eprintln!(
        "storage beyond the entries: {:.1} B/leaf = {:.2} hashes (hash tiles + checkpoint {tiles:.1} B, lookup index {index:.1} B)",
        tiles + index,
        (tiles + index) / 32.0
    );
    let mut group = c.benchmark_group("scale_append_1024");
    group.throughput(Throughput::Elements(1024));
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter("fresh"), |b| {
        b.iter(|| fresh.append_batch(1024))
    });
    group.bench_function(BenchmarkId::from_parameter(big_size), |b| {
        b.iter(|| big.append_batch(1024))
    });
    group.finish();

    let mut group = c.benchmark_group("scale_inclusion_proof");
    for log in [&fresh, &big] {
        let size = log.integrator.size();
        let cache = TileCache::default();
        let view = TreeView::new(&log.store, &cache, size);
        let mut i = 0u64;
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                i = (i + 104_729) % size;
                merkle::inclusion_proof(i, size, &view).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);

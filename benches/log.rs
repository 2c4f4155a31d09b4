//! Durable, sequenced appends through the engine (integrator + tile store + signed
//! checkpoint, one fsync'd commit per batch through `log::commit`) at batch sizes 1, 64 and 1024, next to the
//! raw fsync rate of the same disk, measured in the same run so the figures can be read
//! as ratios to the machine's limit.

use std::io::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use srcos_catalog::log::commit;
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::posix::{PosixLock, PosixTiles};
use srcos_catalog::storage::LockedCheckpoint;

fn data_dir() -> tempfile::TempDir {
    // Under target/ so the bench measures the project's disk, not a tmpfs.
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn raw_fsync(c: &mut Criterion) {
    let dir = data_dir();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("fsync-probe"))
        .unwrap();
    let record = [0x5au8; 132];
    let mut group = c.benchmark_group("disk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_append_fsync", |b| {
        b.iter(|| {
            file.write_all(&record).unwrap();
            file.sync_all().unwrap();
        })
    });
    group.finish();
}

fn durable_appends(c: &mut Criterion) {
    let signer = Signer::generate("bench.srcos.local/log", KeyType::Ed25519).unwrap();
    let entry = vec![0x42u8; 700];
    let mut group = c.benchmark_group("log_durable_append");
    group.sample_size(20);
    for batch in [1usize, 64, 1024] {
        let dir = data_dir();
        let store = PosixTiles::open(dir.path()).unwrap();
        let lock = PosixLock::open(dir.path()).unwrap();
        let mut integrator = Integrator::new();
        let mut counter = 0u64;
        let mut installed: Option<(u64, Vec<u8>)> = None;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                let mut tiles = BatchTiles::default();
                for _ in 0..batch {
                    counter += 1;
                    let mut e = entry.clone();
                    e[..8].copy_from_slice(&counter.to_be_bytes());
                    integrator.append(&e, &mut tiles).unwrap();
                }
                let writes = integrator.finish(tiles);
                let checkpoint = integrator.checkpoint(signer.name());
                let signed = checkpoint.sign(&signer).unwrap().to_bytes();
                let old = installed.as_ref().map(|(size, signed)| LockedCheckpoint {
                    size: *size,
                    signed,
                });
                let new = LockedCheckpoint {
                    size: checkpoint.size,
                    signed: &signed,
                };
                commit(&store, &lock, &writes, &[], old, new).unwrap();
                installed = Some((checkpoint.size, signed));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, raw_fsync, durable_appends);
criterion_main!(benches);

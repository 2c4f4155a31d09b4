//! Restart: how long `Log::open` takes on a log of real catalog leaves, replaying the
//! whole log into the on-disk projection (`SnapshotCheck::Off`, as before snapshots)
//! and restoring a catalog snapshot instead (ADR 0008), side by side in one run.
//!
//! `SRCOS_RESTART_ENTRIES` publications (default 1,000,000 under `cargo bench`, 2,000
//! under `cargo test`), admitted by the catalog and written to a POSIX data directory
//! with the log's real key files. Printed: the full-replay restart, the snapshot write,
//! the restart from the snapshot (hash check, and with the digest check), and, as the
//! limit measured in the same run, reading and hashing the snapshot file alone. Then
//! the delta snapshots of ADR 0019: `SRCOS_RESTART_TAIL` more publications (default
//! 65,536, the default snapshot interval; 300 under `cargo test`) through the log in
//! parts, a delta after each, beside the whole one's write time; the restart with the
//! chain beside the restart that replays that tail (what a `kill -9` left before
//! deltas); reads of old entries through the chain beside one whole snapshot.
//! Plain `main` (no criterion): each figure is one run of a seconds-long operation.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{Committer, Leaves, NewLog};
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::log::snapshot::{self, SnapshotCheck};
use srcos_catalog::log::{Log, LogOptions};
use srcos_catalog::storage::{Backends, RecordsIn};

fn entries() -> u64 {
    common::size_from_env("SRCOS_RESTART_ENTRIES", 1_000_000, 2_000)
}

/// Writes a log of genesis, one grant and `count` admitted publications into `data`
/// (tiles, checkpoint, log and admin keys), committing every 4,096 leaves. Returns the
/// granted publisher.
fn build(data: &Path, count: u64) -> srcos_catalog::note::Signer {
    let NewLog {
        log_key,
        admin,
        tiles,
        lock,
    } = common::new_log_dir(data, "restart.srcos.local/log");
    let mut integrator = Integrator::new();
    let mut batch = BatchTiles::default();
    let mut committer = Committer::default();
    let (mut leaves, first) = Leaves::begin(&log_key, &admin);
    let mut append = |leaf: &[u8], integrator: &mut Integrator, batch: &mut BatchTiles| {
        integrator.append(leaf, batch).unwrap();
        if integrator.size() % 4096 == 0 {
            committer.commit(&tiles, &lock, integrator, std::mem::take(batch), &log_key);
        }
    };
    for leaf in &first {
        append(leaf, &mut integrator, &mut batch);
    }
    for n in 0..count {
        let leaf = leaves.publication(n);
        append(&leaf, &mut integrator, &mut batch);
    }
    if integrator.size() % 4096 != 0 {
        committer.commit(&tiles, &lock, &mut integrator, batch, &log_key);
    }
    leaves.publisher().clone()
}

/// Publishes `count` more publications (from request number `first`) through `log`,
/// many in flight at once so that batches fill.
fn publish(
    log: &std::sync::Arc<Log>,
    publisher: &srcos_catalog::note::Signer,
    first: u64,
    count: u64,
) {
    use srcos_catalog::catalog::{sign_envelope, Submission};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = log.keys();
    rt.block_on(async {
        let handles: Vec<_> = (first..first + count)
            .map(|n| {
                let payload = serde_jcs::to_vec(&common::publication_request(n)).unwrap();
                let envelope = sign_envelope(&payload, publisher).to_json();
                let submission = Submission::parse(envelope.as_bytes()).unwrap();
                let key = submission.dedup_key();
                let verified = submission.verify(&keys).unwrap();
                let log = log.clone();
                tokio::spawn(async move { log.submit(verified, key).await })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
    });
}

/// The delta phase (ADR 0019): `SRCOS_RESTART_TAIL` more publications in
/// `SRCOS_RESTART_DELTAS` parts (default 8; 3 under `cargo test`), a delta after each
/// on the whole snapshot at `size` (written in `whole_write` s); the restart with the
/// chain beside the one replaying the tail, and reads of old entries through the chain
/// beside the same reads over one whole snapshot.
fn deltas(data: &Path, publisher: &srcos_catalog::note::Signer, size: u64, whole_write: f64) {
    let tail = common::size_from_env("SRCOS_RESTART_TAIL", 65_536, 300);
    let parts = common::size_from_env("SRCOS_RESTART_DELTAS", 8, 3).max(1);
    let (log, _, _, _) = open(data, SnapshotCheck::Index, RecordsIn::Disk);
    let log = std::sync::Arc::new(log);
    let (mut delta_write, mut bytes, mut first) = (0.0, 0, size);
    for part in 0..parts {
        let count = tail / parts + u64::from(part < tail % parts);
        publish(&log, publisher, first, count);
        first += count;
        let started = Instant::now();
        let written = log.write_delta_snapshot().unwrap().unwrap();
        delta_write += started.elapsed().as_secs_f64();
        let path = snapshot::dir(data).join(snapshot::delta::file_name(written));
        bytes += std::fs::metadata(&path).unwrap().len();
    }
    let end = log.head().checkpoint.size;
    println!(
        "restart/delta_write/{parts}x{}_on_{size}: {:.3} s each, {:.1} MB each = {:.4} of the whole snapshot's write ({whole_write:.2} s)",
        tail / parts,
        delta_write / parts as f64,
        bytes as f64 / 1e6 / parts as f64,
        delta_write / parts as f64 / whole_write
    );
    drop(std::sync::Arc::into_inner(log).unwrap());

    let sdir = snapshot::dir(data);
    let aside = data.join("deltas-aside");
    std::fs::create_dir_all(&aside).unwrap();
    let moved: Vec<_> = snapshot::delta::list(&sdir)
        .into_iter()
        .map(|(_, p)| {
            let to = aside.join(p.file_name().unwrap());
            std::fs::rename(&p, &to).unwrap();
            (to, p)
        })
        .collect();
    let (log, with_tail, replayed, _) = open(data, SnapshotCheck::Index, RecordsIn::Disk);
    assert_eq!(replayed, end - size);
    drop(log);
    for (from, to) in moved {
        std::fs::rename(from, to).unwrap();
    }
    let (log, with_chain, replayed, restored) = open(data, SnapshotCheck::Index, RecordsIn::Disk);
    assert_eq!((replayed, restored), (0, Some(end)));
    println!(
        "restart/with_{parts}_deltas/{end}: {with_chain:.2} s = {:.4} of the restart replaying the {}-leaf tail ({with_tail:.2} s)",
        with_chain / with_tail,
        end - size
    );
    let through_chain = old_entry_reads(&log, size);
    log.write_snapshot().unwrap();
    drop(log);
    let (log, _, _, _) = open(data, SnapshotCheck::Index, RecordsIn::Disk);
    let over_whole = old_entry_reads(&log, size);
    println!(
        "restart/old_entry_read_by_id/{end}: {:.1} us through {parts} deltas = {:.2} x over one whole snapshot ({:.1} us)",
        through_chain * 1e6,
        through_chain / over_whole,
        over_whole * 1e6
    );
}

/// Seconds per read of a random entry older than `below` by its id (the id lookup and
/// the entry and publication, as `GET /v1/entries/{id}` reads them).
fn old_entry_reads(log: &Log, below: u64) -> f64 {
    use srcos_catalog::catalog::entry_local_id;
    let reads = 2_000u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let ids: Vec<String> = (0..reads)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x % (below - 2);
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(n.to_be_bytes()));
            entry_local_id(
                "sourceos://catalog/images/bench",
                &format!("sha256:{digest}"),
            )
        })
        .collect();
    let started = Instant::now();
    log.read_catalog(|catalog, at| {
        for id in &ids {
            let index = catalog.entry_index(id).unwrap().unwrap();
            assert!(catalog.entry_view(index, at).unwrap().is_some());
        }
    });
    started.elapsed().as_secs_f64() / reads as f64
}

fn open(data: &Path, check: SnapshotCheck, records: RecordsIn) -> (Log, f64, u64, Option<u64>) {
    let mut options = LogOptions::new(data);
    options.snapshot_check = check;
    // Snapshots only when the bench asks for one.
    options.snapshot_every = Some(u64::MAX);
    let started = Instant::now();
    let backends = Backends::posix(data, records).unwrap();
    let (log, report) = Log::open_with(backends, options).unwrap();
    let took = started.elapsed().as_secs_f64();
    assert!(report.snapshots_refused.is_empty(), "{report:?}");
    (log, took, report.replayed, report.snapshot)
}

/// With `SRCOS_RESTART_FULL_REPLAY=memory` the full replay that writes the snapshot
/// keeps the records in memory (about three times faster than into sled, for large
/// logs on a busy machine); the default replays into the on-disk projection as
/// `serve` does.
fn full_replay_records() -> (RecordsIn, &'static str) {
    match std::env::var("SRCOS_RESTART_FULL_REPLAY").as_deref() {
        Ok("memory") => (RecordsIn::Memory, "records in memory"),
        _ => (RecordsIn::Disk, "records on disk"),
    }
}

fn main() {
    let count = entries();
    let dir = common::data_dir();
    let data = dir.path().join("data");
    let started = Instant::now();
    let publisher = build(&data, count);
    let size = count + 2;
    println!(
        "restart/build: {size} entries admitted and written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (records, how) = full_replay_records();
    let (log, full, replayed, _) = open(&data, SnapshotCheck::Off, records);
    assert_eq!(replayed, size);
    println!(
        "restart/full_replay/{size}: {full:.2} s ({:.0} entries/s; {how})",
        size as f64 / full
    );
    let (write, path, bytes) = common::timed_snapshot(&log, &data, size);
    let (header, _) = snapshot::read_header(&path).unwrap();
    let index = header.index.as_ref().map_or(0, |i| i.length);
    println!(
        "restart/snapshot_write/{size}: {write:.2} s, {:.1} MB ({:.0} B per entry), block index {:.2} MB",
        bytes as f64 / 1e6,
        bytes as f64 / size as f64,
        index as f64 / 1e6
    );
    drop(log);

    let started = Instant::now();
    snapshot::verify_hash(&path).unwrap();
    let limit = started.elapsed().as_secs_f64();
    println!(
        "restart/limit_read_and_hash_snapshot/{size}: {limit:.2} s ({:.0} MB/s)",
        bytes as f64 / 1e6 / limit
    );

    for (check, name) in [
        (SnapshotCheck::Index, "from_snapshot_in_place"),
        (SnapshotCheck::Hash, "from_snapshot_hash_checked"),
    ] {
        let (log, took, replayed, restored) = open(&data, check, RecordsIn::Disk);
        assert_eq!((replayed, restored), (0, Some(size)));
        println!(
            "restart/{name}/{size}: {took:.2} s = {:.4} of the full replay, {:.2} x the read-and-hash limit",
            took / full,
            took / limit
        );
        if check == SnapshotCheck::Index {
            // What the first reads cost: one publication's records, then the state digest
            // (every record, each block's hash checked once).
            let started = Instant::now();
            let found = log.read_catalog(|catalog, at| {
                catalog
                    .query_entries(
                        &srcos_catalog::catalog::EntryQuery {
                            limit: 100,
                            ..Default::default()
                        },
                        at,
                    )
                    .map(|page| page.items.len())
            });
            println!(
                "restart/first_query_after_in_place_open/{size}: {:.1} ms ({found:?} entries on the first page)",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        drop(log);
    }
    if std::env::var("SRCOS_RESTART_DIGEST").as_deref() != Ok("0") {
        let (log, with_digest, replayed, _) = open(&data, SnapshotCheck::Digest, RecordsIn::Disk);
        assert_eq!(replayed, 0);
        println!(
            "restart/from_snapshot_digest_checked/{size}: {with_digest:.2} s = {:.3} of the full replay",
            with_digest / full
        );
        drop(log);
    }
    deltas(&data, &publisher, size, write);
}

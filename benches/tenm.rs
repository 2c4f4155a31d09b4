//! Populate: a data directory that `srcos-catalog serve` opens, holding a log of
//! `SRCOS_TENM_ENTRIES` real admitted publications (default 10,000,000 under `cargo
//! bench`, 2,000 under `cargo test`) after genesis and a grant, and a catalog snapshot
//! at its head. `benches/tenm.sh` then measures a real server on it (issue 12: restart,
//! RSS, read and write load, fsck at 10 M entries).
//!
//! `SRCOS_TENM_DATA` names the data directory (created; a log already in it, of the same
//! size, is reused: only the replay and the snapshot are redone); without it, a scratch
//! directory under `target/` that is deleted at the end.
//!
//! The leaves are the ones `benches/restart.rs` writes (same requests, same admission),
//! but admitted on every core: a publication's leaf depends only on its request, the
//! grant and the admission time, so each thread admits distinct publications against
//! its own copy of the state after the grant, and the main thread integrates them in
//! order. Nothing is trusted from that shortcut: the first `Log::open` replays the whole
//! log (every signature verified, every rule applied, records into the on-disk
//! projection as `serve` does) and only then writes the snapshot.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Instant;

use common::{Admitter, Committer, Leaves};
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::log::snapshot::SnapshotCheck;
use srcos_catalog::log::{Log, LogOptions};
use srcos_catalog::storage::{Backends, RecordsIn};

/// Leaves per commit, and per chunk a thread admits.
const CHUNK: u64 = 4096;

fn entries() -> u64 {
    common::size_from_env("SRCOS_TENM_ENTRIES", 10_000_000, 2_000)
}

/// Starts `threads` admitters; thread `t` sends the chunks `t`, `t + threads`, … of
/// publications `0..count` on its own bounded channel, so reading the channels in turn
/// yields the chunks in order.
fn admit_in_parallel(admitters: Vec<Admitter>, count: u64) -> Vec<Receiver<Vec<Vec<u8>>>> {
    let threads = admitters.len() as u64;
    admitters
        .into_iter()
        .enumerate()
        .map(|(t, admitter)| {
            let (send, receive) = sync_channel(4);
            std::thread::spawn(move || {
                let mut chunk = t as u64;
                while chunk * CHUNK < count {
                    let end = ((chunk + 1) * CHUNK).min(count);
                    let leaves = (chunk * CHUNK..end)
                        .map(|n| admitter.publication(n))
                        .collect();
                    if send.send(leaves).is_err() {
                        return;
                    }
                    chunk += threads;
                }
            });
            receive
        })
        .collect()
}

/// Writes genesis, one grant and `count` admitted publications into `data` (tiles,
/// checkpoint, log and admin keys), committing every [`CHUNK`] leaves.
fn build(data: &Path, count: u64) {
    let dir = common::new_log_dir(data, "tenm.srcos.local/log");
    let (leaves, first) = Leaves::begin(&dir.log_key, &dir.admin);
    let (mut integrator, mut batch) = (Integrator::new(), BatchTiles::default());
    let mut committer = Committer::default();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let channels = admit_in_parallel(
        (0..threads).map(|_| leaves.admitter(&first)).collect(),
        count,
    );
    for leaf in &first {
        integrator.append(leaf, &mut batch).unwrap();
    }
    let started = Instant::now();
    let mut reported = 0;
    for chunk in 0.. {
        let Ok(leaves) = channels[chunk % threads].recv() else {
            break;
        };
        for leaf in &leaves {
            integrator.append(leaf, &mut batch).unwrap();
            if integrator.size() % CHUNK == 0 {
                committer.commit(
                    &dir.tiles,
                    &dir.lock,
                    &mut integrator,
                    std::mem::take(&mut batch),
                    &dir.log_key,
                );
            }
        }
        let done = integrator.size() - 2;
        if done / 1_000_000 > reported {
            reported = done / 1_000_000;
            println!(
                "tenm/build: {done} publications in {:.0} s ({:.0} /s)",
                started.elapsed().as_secs_f64(),
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if integrator.size() % CHUNK != 0 {
        committer.commit(&dir.tiles, &dir.lock, &mut integrator, batch, &dir.log_key);
    }
    assert_eq!(integrator.size(), count + 2);
}

fn main() {
    let count = entries();
    let scratch = common::data_dir();
    let data =
        std::env::var_os("SRCOS_TENM_DATA").map_or_else(|| scratch.path().join("data"), Into::into);
    let mut size = count + 2;
    let started = Instant::now();
    let reused = data.join("log/checkpoint").exists();
    if reused {
        // A log built before (a run stopped after its build): it is replayed and checked
        // like a fresh one; what was derived from it is rebuilt.
        for derived in ["projection", "snapshot"] {
            let _ = std::fs::remove_dir_all(data.join(derived));
        }
        println!("tenm/build/{size}: reused the log in {}", data.display());
    } else {
        build(&data, count);
        let built = started.elapsed().as_secs_f64();
        println!(
            "tenm/build/{size}: {built:.1} s ({:.0} entries/s, admitted on every core)",
            size as f64 / built
        );
    }

    // The first open replays everything into the on-disk projection, as `serve
    // --snapshot-check off` would; the snapshot is written after it, on request.
    let mut options = LogOptions::new(&data);
    options.snapshot_check = SnapshotCheck::Off;
    options.snapshot_every = Some(u64::MAX);
    let started = Instant::now();
    let step = AtomicU64::new(0);
    srcos_catalog::progress::install(Box::new(move |task, done, total| {
        if done / 500_000 > step.load(Ordering::Relaxed) {
            step.store(done / 500_000, Ordering::Relaxed);
            println!(
                "tenm/{task}: {done} of {total} in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }));
    let backends = Backends::posix(&data, RecordsIn::Disk).unwrap();
    let (log, report) = Log::open_with(backends, options).unwrap();
    let replay = started.elapsed().as_secs_f64();
    match reused {
        // A kept log may have grown since it was built (the server bench publishes).
        true => size = report.replayed,
        false => assert_eq!(report.replayed, size),
    }
    println!(
        "tenm/full_replay/{size}: {replay:.1} s ({:.0} entries/s, records on disk)",
        size as f64 / replay
    );
    let (write, _, bytes) = common::timed_snapshot(&log, &data, size);
    println!(
        "tenm/snapshot_write/{size}: {write:.1} s, {:.1} MB ({:.0} B per entry)",
        bytes as f64 / 1e6,
        bytes as f64 / size as f64
    );
    drop(log);
}

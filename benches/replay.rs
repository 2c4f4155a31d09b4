//! Replay (issue 12, target ≥ 300,000 entries/s on 2 cores): `log::replay::replay` over a
//! realistic log of real catalog leaves held as entry bundles in memory (what a tiles
//! server would serve), so the figure is the replay's own CPU, not a disk's.
//!
//! The log (`SRCOS_REPLAY_ENTRIES` leaves, default 210,000 under `cargo bench`, 2,000
//! under `cargo test`) is `common::MixedLog`: publications with four evidence items,
//! reviews, promotions, status changes, grants and revocations, every leaf admitted by the
//! catalog under rules version 2. Building it takes minutes, so it is cached in
//! `target/replay-bench/` (bundles, signed checkpoint, verifier key) and reused.
//!
//! Printed, for the same log in the same run: the limits (SHA-256 of every entry, and a
//! bare `serde_json` parse of every entry that builds nothing, on one core), the two
//! halves of replay alone (`prepare_in_parallel` on every core, and `apply_prepared` in
//! order on one), and the whole replay (tree root checked, state digest computed),
//! `SRCOS_REPLAY_RUNS` times (default 5), as entries/s.
//! Plain `main` (no criterion): each figure is a run of about a second.

mod common;

/// The allocator of the `srcos-catalog` binary (ADR 0017), so the bench measures the
/// replay `serve` runs at start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::MixedLog;
use srcos_catalog::catalog::{Catalog, Effect};
use srcos_catalog::log::integrator::Integrator;
use srcos_catalog::log::replay;
use srcos_catalog::note::{KeyType, Signer, Verifier};
use srcos_catalog::tiles;

fn entries() -> u64 {
    common::size_from_env("SRCOS_REPLAY_ENTRIES", 210_000, 2_000)
}

fn runs() -> usize {
    std::env::var("SRCOS_REPLAY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if common::bench_mode() { 5 } else { 1 })
}

/// The log as a tiles server holds it.
struct Log {
    vkey: String,
    signed: Vec<u8>,
    bundles: HashMap<String, Vec<u8>>,
}

fn build(count: u64) -> Log {
    let log_key = Signer::generate("bench.srcos.local/log", KeyType::Ed25519).unwrap();
    let mut log = MixedLog::begin(&log_key);
    while (log.leaves().len() as u64) < count {
        log.cycle();
    }
    let mut leaves = log.into_leaves();
    leaves.truncate(count as usize);
    let (integrator, writes) = Integrator::from_entries(&leaves).unwrap();
    let bundles = writes
        .into_iter()
        .filter(|w| w.tile.path().contains("/entries/"))
        .map(|w| (w.tile.path(), w.data))
        .collect();
    let signed = integrator
        .checkpoint(log_key.name())
        .sign(&log_key)
        .unwrap()
        .to_bytes();
    Log {
        vkey: log_key.verifier().to_vkey(),
        signed,
        bundles,
    }
}

fn cache_path(count: u64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/replay-bench/mixed-{count}.bin"))
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let (len, rest) = data.split_at(8);
    let len = u64::from_le_bytes(len.try_into().unwrap()) as usize;
    let (bytes, rest) = rest.split_at(len);
    *data = rest;
    bytes
}

/// The cached log of `count` leaves, built (and cached) if absent.
fn load(count: u64) -> Log {
    let path = cache_path(count);
    if let Ok(data) = std::fs::read(&path) {
        let mut rest = &data[..];
        let vkey = String::from_utf8(take(&mut rest).to_vec()).unwrap();
        let signed = take(&mut rest).to_vec();
        let mut bundles = HashMap::new();
        while !rest.is_empty() {
            let name = String::from_utf8(take(&mut rest).to_vec()).unwrap();
            bundles.insert(name, take(&mut rest).to_vec());
        }
        return Log {
            vkey,
            signed,
            bundles,
        };
    }
    let started = Instant::now();
    let log = build(count);
    eprintln!(
        "built the log of {count} leaves in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut out = Vec::new();
    put(&mut out, log.vkey.as_bytes());
    put(&mut out, &log.signed);
    for (name, data) in &log.bundles {
        put(&mut out, name.as_bytes());
        put(&mut out, data);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, out).unwrap();
    log
}

fn rate(count: u64, seconds: f64) -> String {
    format!("{seconds:.3} s = {:.0} entries/s", count as f64 / seconds)
}

fn main() {
    let count = entries();
    let log = load(count);
    let key = Verifier::from_vkey(&log.vkey).unwrap();
    let size = count;
    // Every entry, in order, as borrowed slices of the bundles.
    let mut entries: Vec<&[u8]> = Vec::with_capacity(size as usize);
    for tile in tiles::entry_bundles(size) {
        entries.extend(tiles::decode_bundle(&log.bundles[&tile.path()]).unwrap());
    }
    let bytes: usize = entries.iter().map(|e| e.len()).sum();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "replay bench: {size} leaves, {:.0} B per leaf on average; load average {}",
        bytes as f64 / size as f64,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // The limits: hashing, and the cheapest possible JSON parse, of every entry.
    let started = Instant::now();
    let mut x = 0u8;
    for e in &entries {
        x ^= srcos_catalog::merkle::leaf_hash(e)[0];
    }
    std::hint::black_box(x);
    println!(
        "limit/leaf_hash_one_core: {}",
        rate(size, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for e in &entries {
        serde_json::from_slice::<serde::de::IgnoredAny>(e).unwrap();
    }
    println!(
        "limit/json_skim_one_core (serde_json, builds nothing): {}",
        rate(size, started.elapsed().as_secs_f64())
    );

    // The two halves alone.
    let started = Instant::now();
    let mut prepared = Vec::with_capacity(entries.len());
    for (n, chunk) in entries.chunks(4096).enumerate() {
        prepared.extend(replay::prepare_in_parallel((n * 4096) as u64, chunk));
    }
    println!(
        "replay/prepare_all_cores: {}",
        rate(size, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    let mut catalog = Catalog::new();
    // Time and count by what the leaf did, to show where the sequential half goes.
    let mut by_kind: std::collections::BTreeMap<String, (f64, u64)> = Default::default();
    for p in prepared {
        let one = Instant::now();
        let effect = catalog.apply_prepared(p.leaf.unwrap()).unwrap();
        let kind = match effect {
            Effect::Decided { kind, .. } => kind.as_str().to_string(),
            Effect::Published { .. } => "Publication".into(),
            Effect::GrantAdded { .. } => "PublisherGrant".into(),
            other => format!("{other:?}").chars().take(16).collect(),
        };
        let slot = by_kind.entry(kind).or_default();
        slot.0 += one.elapsed().as_secs_f64();
        slot.1 += 1;
    }
    println!(
        "replay/apply_one_core: {}",
        rate(size, started.elapsed().as_secs_f64())
    );
    for (kind, (seconds, n)) in by_kind {
        println!(
            "  apply {kind}: {n} leaves, {:.1} us each, {:.0} % of the apply time",
            seconds * 1e6 / n as f64,
            seconds * 100.0 / started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let digest = catalog.state_digest();
    println!(
        "replay/state_digest: {:.3} s",
        started.elapsed().as_secs_f64()
    );
    drop(catalog);

    // The whole replay, as `audit` and `replay` run it.
    let mut times = Vec::new();
    for _ in 0..runs() {
        let started = Instant::now();
        let replayed = replay::replay(Catalog::new(), &log.signed, &key, |tile| {
            log.bundles
                .get(&tile.path())
                .ok_or_else(|| replay::ReplayError::Fetch(tile.path().into()))
        })
        .unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert_eq!(replayed.state_digest, digest);
        assert_eq!(replayed.checkpoint.size, size);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "replay/tree_and_catalog/{size}: median {}; best {}",
        rate(size, times[times.len() / 2]),
        rate(size, times[0])
    );
    println!("state digest {}", hex::encode(digest));
}

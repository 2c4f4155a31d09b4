//! The state map's costs (issue 13): proof generation, verification and size on a map
//! of 1,000,000 keys with values of a real entry's size, the cost of one update, the
//! memory per key, and the sequencer's publication throughput with state commitments
//! off and after every batch (memory backends, so the map's share is not hidden behind
//! fsync: the worst case).
//!
//! Run with `cargo bench --bench state`; `-- --test` runs each once as a smoke check.
//! `SRCOS_STATE_KEYS` sets the map size (default 1,000,000).

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use sha2::Digest;
use srcos_catalog::catalog::{format_rfc3339_ms, sign_envelope, Submission, Verified};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::{now_ms, Log, LogOptions};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::state::{key_hash, Proof, Tree};
use srcos_catalog::storage::memory::MemoryLog;
use srcos_catalog::storage::Backends;

fn keys() -> u64 {
    std::env::var("SRCOS_STATE_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// An entry value of the size the catalog writes (~230 bytes).
fn value(i: u64) -> Arc<[u8]> {
    Arc::from(
        format!(
            "{{\"channel\":\"stable\",\"evidenceBundle\":{{\"sha256\":\"{:064x}\"}},\"leafIndices\":[{i},{},{}],\"status\":\"published\",\"subjectName\":\"quay.io/socios/sourceos-smoke-runner\"}}",
            i,
            i + 1,
            i + 2
        )
        .into_bytes(),
    )
}

fn key(i: u64) -> [u8; 32] {
    key_hash(
        format!(
            "[\"entry\",\"sourceos://catalog/images/t{}\",\"sha256:{i:064x}\"]",
            i % 1000
        )
        .as_bytes(),
    )
}

/// The map, built once; prints its memory per key and proof sizes.
fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let n = keys();
        let before = rss_kib();
        let started = Instant::now();
        let mut t = Tree::new();
        for i in 0..n {
            t.set(key(i), Some(value(i)));
        }
        let built = started.elapsed();
        let after = rss_kib();
        let (mut total, mut max, mut siblings) = (0usize, 0usize, 0usize);
        let samples = 10_000u64;
        for i in 0..samples {
            let p = t.prove(&key(i * 7919 % n));
            let len = p.encode().len();
            total += len;
            max = max.max(len);
            siblings += p.siblings.len();
        }
        eprintln!(
            "state map: {n} keys built in {:.1} s ({:.2} µs/insert); resident memory {:.0} B/key \
             (values {} B); proofs over {samples} keys: mean {} B, max {} B, mean {:.1} siblings",
            built.as_secs_f64(),
            built.as_secs_f64() * 1e6 / n as f64,
            (after.saturating_sub(before) * 1024) as f64 / n as f64,
            value(0).len(),
            total / samples as usize,
            max,
            siblings as f64 / samples as f64
        );
        t
    })
}

fn map(c: &mut Criterion) {
    let n = keys();
    let mut group = c.benchmark_group("state_map");
    // The 1,000,000-key map is built inside the closures, so a filter that skips this
    // group (`state_sequencer`, `paired`) does not pay for it.
    let mut i = 0u64;
    group.bench_function(format!("prove/{n}"), |b| {
        let t = tree();
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(t.prove(&key(i)).encode())
        })
    });
    group.bench_function(format!("verify/{n}"), |b| {
        let t = tree();
        let (root, present) = (t.root(), key(4242));
        let bytes = t.prove(&present).encode();
        let v = value(4242);
        b.iter(|| {
            let p = Proof::decode(black_box(&bytes)).unwrap();
            p.verify(&root, &present, Some(&v)).unwrap()
        })
    });
    group.bench_function(format!("verify_absent/{n}"), |b| {
        let t = tree();
        let (root, absent) = (t.root(), key_hash(b"absent"));
        let absent_bytes = t.prove(&absent).encode();
        b.iter(|| {
            let p = Proof::decode(black_box(&absent_bytes)).unwrap();
            p.verify(&root, &absent, None).unwrap()
        })
    });
    let mut j = 0u64;
    group.bench_function(format!("update/{n}"), |b| {
        let mut copy = tree().clone();
        b.iter(|| {
            j = (j + 104_729) % n;
            copy.set(key(j), Some(value(j + 1)));
        })
    });
    // A batch of 256 updates as one `set_many` (what the map thread does per batch),
    // per update: compare with `update`.
    let mut k = 0u64;
    group.bench_function(format!("update_batched_256/{n}"), |b| {
        let mut copy = tree().clone();
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters.div_ceil(256) {
                let batch: Vec<_> = (0..256)
                    .map(|_| {
                        k = (k + 104_729) % n;
                        (key(k), Some(value(k + 1)))
                    })
                    .collect();
                copy.set_many(batch);
            }
            started.elapsed() * iters as u32 / (iters.div_ceil(256) * 256) as u32
        })
    });
    group.bench_function("limits/sha256_node_65B", |b| {
        let node = [7u8; 65];
        b.iter(|| sha2::Sha256::digest(black_box(node)))
    });
    group.finish();
}

/// Pre-signed publications ready for `Log::submit`, and the open log.
type Jobs = Vec<(Verified, [u8; 32])>;

fn open_log(every: u64, count: usize) -> (tempfile::TempDir, Arc<Log>, Jobs) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(dir.path());
    options.state_commit_every = every;
    let (log, _) = Log::open_with(Backends::memory(&MemoryLog::new()), options).unwrap();
    let log = Arc::new(log);
    let admin = read_signer(&dir.path().join("admin.key")).unwrap();
    let publisher = Signer::from_seed("pipeline", KeyType::Ed25519, &[9; 32]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let submit = |payload: serde_json::Value, signer: &Signer| {
        let env = sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), signer).to_json();
        let sub = Submission::parse(env.as_bytes()).unwrap();
        let key = sub.dedup_key();
        (sub.verify(&log.keys()).unwrap(), key)
    };
    let grant = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/images/"], "channels": ["dev"]});
    let policy = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
        "channels": {"dev": {"requiredEvidence": [], "approvals": 0, "requiresHumanReview": false}},
        "issuedAt": format_rfc3339_ms(now_ms() - 1000).unwrap(), "nonce": "0".repeat(32)});
    for (p, s) in [(grant, &admin), (policy, &admin)] {
        let (v, k) = submit(p, s);
        rt.block_on(log.submit(v, k)).unwrap();
    }
    let jobs = (0..count)
        .map(|i| {
            submit(
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
                    "subject": {"name": "quay.io/x", "digest": {"sha256": format!("{i:064x}")}},
                    "targetCatalogRef": format!("sourceos://catalog/images/t{}", i % 50), "channel": "dev",
                    "requesterRef": "socios://pipeline/x", "evidence": [],
                    "agentplaneRefs": {"replayArtifactRef": null, "runArtifactRef": null, "validationArtifactRef": null}}),
                &publisher,
            )
        })
        .collect();
    (dir, log, jobs)
}

/// CPU time (ns) each live thread of this process has run, by thread name
/// (`/proc/self/task/*/schedstat`; threads of one name summed). Read before and after a
/// run, it says where the run's CPU went, whatever else the machine is doing.
fn thread_cpu() -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        *out.entry(name.trim().to_string()).or_insert(0) += ns;
    }
    out
}

/// What one run cost: wall time, and CPU time of the log's threads (sequencer,
/// committer, state map, runtime workers), the map thread's share on its own.
struct RunCost {
    wall: Duration,
    cpu_ms: f64,
    map_cpu_ms: f64,
}

/// One run of `count` publications on a fresh log: the time until every publication
/// is answered and, when `wait`, until the map thread has caught up with them too.
fn publish_run(every: u64, count: usize, wait: bool) -> Duration {
    publish_run_cost(every, count, wait).wall
}

fn publish_run_cost(every: u64, count: usize, wait: bool) -> RunCost {
    let (_dir, log, jobs) = open_log(every, count);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu_before = thread_cpu();
    let started = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(v, k)| {
                let log = log.clone();
                tokio::spawn(async move { log.submit(v, k).await })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
    });
    // Sustained throughput: the map thread must have caught up too (it runs behind the
    // sequencer, at most a few batches).
    while wait
        && log
            .state_map_size()
            .is_some_and(|size| size < log.head().checkpoint.size)
    {
        std::thread::sleep(Duration::from_micros(200));
    }
    let wall = started.elapsed();
    let cpu_after = thread_cpu();
    log.shutdown();
    // The bench's own thread only spawns and waits; the log's threads do the work.
    let spent = |name: &str| {
        cpu_after
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(cpu_before.get(name).copied().unwrap_or(0)) as f64
            / 1e6
    };
    let cpu_ms = cpu_after
        .keys()
        .filter(|name| !name.starts_with("state-"))
        .map(|name| spent(name))
        .sum::<f64>()
        + spent("state-map");
    RunCost {
        wall,
        cpu_ms,
        map_cpu_ms: spent("state-map"),
    }
}

fn sequencer(c: &mut Criterion) {
    let count = 4096;
    let mut group = c.benchmark_group("state_sequencer");
    group.sample_size(10);
    // (commit every, wait for the map thread to catch up): the last case shows what the
    // sequencer alone costs, the others the sustained throughput.
    for (every, wait) in [(0u64, true), (1, true), (1, false), (16, true)] {
        let name = if wait {
            format!("publications_{count}/commit_every_{every}")
        } else {
            format!("publications_{count}/commit_every_{every}_answers_only")
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| publish_run(every, count, wait)).sum())
        });
    }
    group.finish();
}

/// The throughput ratio the 20 % budget is about, measured so that a shared
/// machine's load falls on both sides alike: runs with commitments off and after every
/// batch, alternating, `SRCOS_STATE_PAIRS` pairs (default 0: skipped), and the median of
/// the per-pair ratios (on / off time for 4,096 publications, the map caught up).
fn paired(_c: &mut Criterion) {
    let pairs: usize = std::env::var("SRCOS_STATE_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if pairs == 0 {
        return;
    }
    let count = 4096;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut off, mut on, mut ratios, mut cpu_ratios, mut map_shares) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        // Alternate which side goes first, so a load change mid-pair favours neither.
        let (a, b) = if pair % 2 == 0 {
            let a = publish_run_cost(0, count, true);
            (a, publish_run_cost(1, count, true))
        } else {
            let b = publish_run_cost(1, count, true);
            (publish_run_cost(0, count, true), b)
        };
        let (wa, wb) = (a.wall.as_secs_f64() * 1e3, b.wall.as_secs_f64() * 1e3);
        eprintln!(
            "state_sequencer paired {pair}: off {wa:.1} ms ({:.1} ms CPU), every batch {wb:.1} ms \
             ({:.1} ms CPU, map thread {:.1} ms), wall ratio {:.2}, CPU ratio {:.2}",
            a.cpu_ms,
            b.cpu_ms,
            b.map_cpu_ms,
            wb / wa,
            b.cpu_ms / a.cpu_ms
        );
        off.push(wa);
        on.push(wb);
        ratios.push(wb / wa);
        cpu_ratios.push(b.cpu_ms / a.cpu_ms);
        map_shares.push(b.map_cpu_ms * 1e3 / count as f64);
    }
    println!(
        "state_sequencer/paired publications_{count}: {pairs} pairs, off median {:.1} ms, \
         commit every batch median {:.1} ms, wall ratio median {:.2} (min {:.2}, max {:.2}); \
         CPU ratio median {:.2}; map thread {:.1} µs CPU per publication (median)",
        median(off),
        median(on),
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        median(cpu_ratios),
        median(map_shares),
    );
}

criterion_group!(benches, paired, map, sequencer);
criterion_main!(benches);

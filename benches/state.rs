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
    let t = tree();
    let n = keys();
    let root = t.root();
    let mut group = c.benchmark_group("state_map");
    let mut i = 0u64;
    group.bench_function(format!("prove/{n}"), |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(t.prove(&key(i)).encode())
        })
    });
    let present = key(4242);
    let bytes = t.prove(&present).encode();
    let v = value(4242);
    group.bench_function(format!("verify/{n}"), |b| {
        b.iter(|| {
            let p = Proof::decode(black_box(&bytes)).unwrap();
            p.verify(&root, &present, Some(&v)).unwrap()
        })
    });
    let absent = key_hash(b"absent");
    let absent_bytes = t.prove(&absent).encode();
    group.bench_function(format!("verify_absent/{n}"), |b| {
        b.iter(|| {
            let p = Proof::decode(black_box(&absent_bytes)).unwrap();
            p.verify(&root, &absent, None).unwrap()
        })
    });
    let mut copy = t.clone();
    let mut j = 0u64;
    group.bench_function(format!("update/{n}"), |b| {
        b.iter(|| {
            j = (j + 104_729) % n;
            copy.set(key(j), Some(value(j + 1)));
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

fn sequencer(c: &mut Criterion) {
    let count = 4096;
    let mut group = c.benchmark_group("state_sequencer");
    group.sample_size(10);
    for every in [0u64, 1] {
        group.bench_function(format!("publications_{count}/commit_every_{every}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_dir, log, jobs) = open_log(every, count);
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .unwrap();
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
                    // Sustained throughput: the map thread must have caught up too (it
                    // runs behind the sequencer, at most a few batches).
                    while log
                        .state_map_size()
                        .is_some_and(|size| size < log.head().checkpoint.size)
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    total += started.elapsed();
                    log.shutdown();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, map, sequencer);
criterion_main!(benches);

//! Partial tiles at any width (issue 10 §7): every tree size up to the committed one is
//! served (tiles, entry bundles, inclusion and consistency proofs, receipts), including
//! sizes inside the current partial tile that fall between two batch ends, which no
//! batch ever wrote a tile for. Contents must match the Merkle tree of the entries.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use srcos_catalog::catalog::{sign_envelope, Submission};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::{Log, LogOptions};
use srcos_catalog::merkle::{self, Hash};
use srcos_catalog::note::{self, KeyType, Signer};
use srcos_catalog::storage::memory::MemoryLog;
use srcos_catalog::storage::Backends;
use srcos_catalog::tiles::{decode_bundle, hashes_of, TileId, TileKind};

fn envelope(payload: &serde_json::Value, signer: &Signer) -> Submission {
    let bytes = serde_jcs::to_vec(payload).unwrap();
    let json = sign_envelope(&bytes, signer).to_json();
    Submission::parse(json.as_bytes()).unwrap()
}

/// Submits `batch` requests at once, so that they share one batch.
async fn submit_together(log: &Arc<Log>, publisher: &Signer, first: u64, batch: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for n in first..first + batch {
        let request = common::request_json("quay.io/partial/s", n, "sourceos://catalog/p", "dev");
        let value: serde_json::Value = serde_json::from_str(&request).unwrap();
        let submission = envelope(&value, publisher);
        let key = submission.dedup_key();
        let verified = submission.verify(&log.keys()).unwrap();
        let log = log.clone();
        tasks.spawn(async move { log.submit(verified, key).await.unwrap() });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

fn open(dir: &Path, memory: &MemoryLog) -> Arc<Log> {
    let mut options = LogOptions::new(dir);
    options.batch_delay = Duration::from_millis(100);
    Arc::new(Log::open_with(Backends::memory(memory), options).unwrap().0)
}

#[test]
fn every_size_inside_a_partial_tile_is_served_whatever_the_batch_ends() {
    let dir = common::tempdir();
    let memory = MemoryLog::new();
    let log = open(dir.path(), &memory);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = read_signer(&dir.path().join("admin.key")).unwrap();
    let publisher = Signer::generate("partial.example/publisher", KeyType::Ed25519).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["dev"],
    });
    let grant = envelope(&grant, &admin);
    let key = grant.dedup_key();
    rt.block_on(log.submit(grant.verify(&log.keys()).unwrap(), key))
        .unwrap();
    let mut first = 0;
    for batch in [3, 5, 1, 7, 4, 6] {
        rt.block_on(submit_together(&log, &publisher, first, batch));
        first += batch;
    }

    let size = log.head().checkpoint.size;
    assert!(size < 256, "the test wants one partial level-0 tile");
    let ends: Vec<u64> = memory
        .lock
        .installed()
        .iter()
        .map(|signed| {
            note::open_checkpoint(signed, log.verifier())
                .unwrap()
                .0
                .size
        })
        .collect();
    assert!(
        (1..=size).any(|s| !ends.contains(&s)),
        "some sizes must fall between batch ends: {ends:?}"
    );

    let entries: Vec<Vec<u8>> = (0..size).map(|i| log.entry(i).unwrap()).collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    for width in 1..=size {
        let at = |kind| TileId {
            kind,
            index: 0,
            width: width as u16,
        };
        let hashes = log
            .tile(at(TileKind::Hash(0)))
            .unwrap_or_else(|e| panic!("tile/0/000.p/{width} (batch ends {ends:?}): {e}"));
        assert_eq!(
            hashes_of(&hashes),
            leaves[..width as usize],
            "hashes at {width}"
        );
        let bundle = log
            .tile(at(TileKind::Entries))
            .unwrap_or_else(|e| panic!("tile/entries/000.p/{width}: {e}"));
        let bundle = decode_bundle(&bundle).unwrap();
        assert_eq!(bundle, entries[..width as usize], "bundle at {width}");
    }

    for s in 1..=size {
        let signed = log
            .checkpoint_at(s)
            .unwrap_or_else(|e| panic!("checkpoint at {s}: {e}"));
        let (checkpoint, _) = note::open_checkpoint(&signed, log.verifier()).unwrap();
        assert_eq!(
            checkpoint.root,
            merkle::root_of_leaf_hashes(&leaves[..s as usize])
        );
        for index in 0..s {
            let proof = log
                .inclusion_proof(index, s)
                .unwrap_or_else(|e| panic!("inclusion of {index} at {s}: {e}"));
            merkle::verify_inclusion(index, s, &leaves[index as usize], &proof, &checkpoint.root)
                .unwrap();
            let receipt = log
                .receipt(index, Some(s))
                .unwrap_or_else(|e| panic!("receipt of {index} at {s}: {e}"));
            receipt.verify(log.verifier()).unwrap();
        }
        for later in s..=size {
            let proof = log
                .consistency_proof(s, later)
                .unwrap_or_else(|e| panic!("consistency {s} -> {later}: {e}"));
            let root = merkle::root_of_leaf_hashes(&leaves[..later as usize]);
            merkle::verify_consistency(s, later, &checkpoint.root, &root, &proof).unwrap();
        }
    }
}

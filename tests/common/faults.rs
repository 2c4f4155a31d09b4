//! The in-process log harness of the storage-fault and recovery tests: a real log on
//! chosen backends, its keys in a temporary directory, and everything it acknowledged and
//! served, with the checks every fault test ends on.

use std::path::Path;

use srcos_catalog::catalog::{sign_envelope, Catalog, Submission};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::{fsck, replay, Log, LogOptions, OpenReport, SubmitError, Submitted};
use srcos_catalog::merkle;
use srcos_catalog::note::{self, KeyType, Signer};
use srcos_catalog::storage::{Backends, LogBackends};

/// A log on chosen backends, its keys in a temporary directory, and what it acknowledged.
pub struct Harness {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    publisher: Signer,
    /// Names the publisher and the subjects it publishes.
    name: &'static str,
    /// Every acknowledged entry: its index and bytes.
    pub acked: Vec<(u64, Vec<u8>)>,
    /// Every head the log served, as signed bytes.
    pub served: Vec<Vec<u8>>,
}

impl Harness {
    /// A harness whose publisher is `<name>.example/publisher`.
    pub fn new(name: &'static str) -> Harness {
        Harness {
            dir: super::tempdir(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            publisher: Signer::generate(&format!("{name}.example/publisher"), KeyType::Ed25519)
                .unwrap(),
            name,
            acked: Vec::new(),
            served: Vec::new(),
        }
    }

    /// Where the log's keys are.
    pub fn keys(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the log on `backends` in batches of 8; for a new log, grants the publisher.
    pub fn open(&mut self, backends: Backends) -> (Log, OpenReport) {
        self.open_with(backends, |_| {})
    }

    /// [`Harness::open`], with `tweak` applied to the options.
    pub fn open_with(
        &mut self,
        backends: Backends,
        tweak: impl FnOnce(&mut LogOptions),
    ) -> (Log, OpenReport) {
        let mut options = LogOptions::new(self.keys());
        options.batch_max = 8;
        tweak(&mut options);
        let (log, report) = Log::open_with(backends, options).unwrap();
        if report.created {
            let admin = read_signer(&self.keys().join("admin.key")).unwrap();
            let grant = serde_json::json!({
                "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
                "publisherKey": self.publisher.verifier().to_vkey(), "role": "publisher",
                "targetPrefixes": ["sourceos://catalog/"], "channels": ["dev"],
            });
            self.submit(&log, &serde_jcs::to_vec(&grant).unwrap(), &admin)
                .unwrap();
        }
        self.served.push(log.head().signed.to_vec());
        (log, report)
    }

    /// Submits `payload` signed by `signer`; an acknowledged entry must be readable at
    /// once, and is remembered with the head served after it.
    pub fn submit(
        &mut self,
        log: &Log,
        payload: &[u8],
        signer: &Signer,
    ) -> Result<Submitted, SubmitError> {
        let envelope = sign_envelope(payload, signer).to_json();
        let submission = Submission::parse(envelope.as_bytes()).unwrap();
        let key = submission.dedup_key();
        let verified = submission.verify(&log.keys()).unwrap();
        let submitted = self.rt.block_on(log.submit(verified, key))?;
        self.acked
            .push((submitted.index, log.entry(submitted.index).unwrap()));
        self.served.push(log.head().signed.to_vec());
        Ok(submitted)
    }

    /// Publication request number `n` (the same `n` is the same request: a duplicate).
    pub fn publish(&mut self, log: &Log, n: u64) -> Result<Submitted, SubmitError> {
        let subject = format!("quay.io/{}/s", self.name);
        let target = format!("sourceos://catalog/{}", self.name);
        let request = super::request_json(&subject, n, &target, "dev");
        let value: serde_json::Value = serde_json::from_str(&request).unwrap();
        let publisher = self.publisher.clone();
        self.submit(log, &serde_jcs::to_vec(&value).unwrap(), &publisher)
    }

    /// Every acknowledged entry is there with the same bytes; every checkpoint in
    /// `checkpoints` and every head served is consistent with the current head; the
    /// tiles recompute to the checkpoint (fsck); the entries replay to the live state.
    pub fn check(&self, log: &Log, storage: &LogBackends, checkpoints: &[Vec<u8>]) {
        let head = log.head();
        let current = &head.checkpoint;
        for (index, bytes) in &self.acked {
            assert!(*index < current.size, "acknowledged entry {index} lost");
            assert_eq!(&log.entry(*index).unwrap(), bytes, "entry {index} changed");
        }
        for signed in checkpoints.iter().chain(&self.served) {
            let (old, _) = note::open_checkpoint(signed, log.verifier()).unwrap();
            assert!(old.size <= current.size, "rollback from {}", old.size);
            if old.size == current.size {
                assert_eq!(old.root, current.root, "two roots for size {}", old.size);
                continue;
            }
            let proof = log.consistency_proof(old.size, current.size).unwrap();
            merkle::verify_consistency(old.size, current.size, &old.root, &current.root, &proof)
                .unwrap_or_else(|e| {
                    panic!("{} is not consistent with {}: {e}", old.size, current.size)
                });
        }
        let report = fsck::check(storage, log.verifier()).unwrap().unwrap();
        assert!(report.problems.is_empty(), "fsck: {:?}", report.problems);
        assert_eq!(report.tree_size, current.size);
        let replayed = replay::replay_log(storage, log.verifier(), Catalog::new())
            .unwrap()
            .unwrap();
        let live = log.read_catalog(|catalog, size| catalog.state_digest_at(size));
        assert_eq!(replayed.state_digest, live);
    }
}

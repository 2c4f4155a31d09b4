//! What the benches share: the bench/test switch, a scratch directory under `target/`,
//! a generator of real catalog leaves (genesis, a grant, admitted publications), and the
//! commit of a batch of tiles under a newly signed checkpoint.
//!
//! Each bench includes this with `mod common;` and uses what it needs.
#![allow(dead_code)]

use sha2::Digest;
use srcos_catalog::catalog::{sign_envelope, Catalog, Submission};
use srcos_catalog::log::commit;
use srcos_catalog::log::integrator::{BatchTiles, Integrator};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::{CheckpointLock, LockedCheckpoint, TileStore};

/// True under `cargo bench` (full sizes), false under `cargo test` (CI smoke check).
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A fresh directory under `target/` (not `/tmp`, which may be a small tmpfs).
pub fn data_dir() -> tempfile::TempDir {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// Real catalog leaves, each admitted by the catalog and applied to it in order.
pub struct Leaves {
    catalog: Catalog,
    publisher: Signer,
}

/// The admission time every generated leaf records.
const NOW_MS: u64 = 1_700_000_000_000;

fn admit(catalog: &Catalog, payload: &serde_json::Value, signer: &Signer) -> Vec<u8> {
    let envelope = sign_envelope(&serde_jcs::to_vec(payload).unwrap(), signer).to_json();
    let verified = Submission::parse(envelope.as_bytes())
        .unwrap()
        .verify(&catalog.keys())
        .unwrap();
    catalog.admit(&verified, NOW_MS).unwrap()
}

impl Leaves {
    /// The genesis leaf of `log_key` with `admin` as the only admin, then `admin`'s grant
    /// to a new publisher (of every channel under `sourceos://catalog/`): the first two
    /// leaves, applied.
    pub fn begin(log_key: &Signer, admin: &Signer) -> (Leaves, [Vec<u8>; 2]) {
        let mut catalog = Catalog::new();
        let genesis =
            Catalog::genesis_leaf(log_key.name(), &log_key.verifier(), &[admin.verifier()], 0)
                .unwrap();
        catalog.apply(0, &genesis).unwrap();
        let publisher = Signer::generate("bench.example/publisher", KeyType::Ed25519).unwrap();
        let grant = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"PublisherGrant",
            "publisherKey": publisher.verifier().to_vkey(),"role":"publisher",
            "targetPrefixes":["sourceos://catalog/"],"channels":["*"]});
        let leaf = admit(&catalog, &grant, admin);
        catalog.apply(1, &leaf).unwrap();
        (Leaves { catalog, publisher }, [genesis, leaf])
    }

    /// Publication `n` (a distinct subject digest, four evidence items), admitted and
    /// applied as the next leaf.
    pub fn publication(&mut self, n: u64) -> Vec<u8> {
        let digest = hex::encode(sha2::Sha256::digest(n.to_be_bytes()));
        let request = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"CatalogPublicationRequest",
            "subject":{"name":"quay.io/bench/image","digest":{"sha256": digest}},
            "targetCatalogRef":"sourceos://catalog/images/bench","channel":"dev",
            "requesterRef":"socios://pipeline/bench",
            "evidence":[
                {"type":"build-receipt","mediaType":"application/json","digest":{"sha256": digest},"uri":"file:///build.json","size":1024},
                {"type":"sbom","mediaType":"application/spdx+json","digest":{"sha256": digest},"uri":"file:///sbom.json","size":1024},
                {"type":"vulnerability-scan","mediaType":"application/vnd.anchore.grype+json","digest":{"sha256": digest},"uri":"file:///scan.json","size":1024},
                {"type":"provenance","mediaType":"application/json","digest":{"sha256": digest},"uri":"file:///prov.json","size":1024}],
            "agentplaneRefs":{"validationArtifactRef":null,"runArtifactRef":null,"replayArtifactRef":null}});
        let leaf = admit(&self.catalog, &request, &self.publisher);
        let index = self.catalog.applied_size();
        self.catalog.apply(index, &leaf).unwrap();
        leaf
    }
}

/// Commits batches of tiles to a store under newly signed checkpoints, each replacing
/// the one before.
#[derive(Default)]
pub struct Committer {
    committed: u64,
    signed: Vec<u8>,
}

impl Committer {
    /// Finishes `batch`, signs the checkpoint of `integrator` with `signer` and commits
    /// both; returns the signed checkpoint.
    pub fn commit(
        &mut self,
        tiles: &dyn TileStore,
        lock: &dyn CheckpointLock,
        integrator: &mut Integrator,
        batch: BatchTiles,
        signer: &Signer,
    ) -> &[u8] {
        let writes = integrator.finish(batch);
        let checkpoint = integrator.checkpoint(signer.name());
        let next = checkpoint.sign(signer).unwrap().to_bytes();
        let old = (self.committed > 0).then_some(LockedCheckpoint {
            size: self.committed,
            signed: &self.signed,
        });
        let new = LockedCheckpoint {
            size: checkpoint.size,
            signed: &next,
        };
        commit(tiles, lock, &writes, &[], old, new).unwrap();
        self.committed = checkpoint.size;
        self.signed = next;
        &self.signed
    }
}

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

/// The size a bench runs at: the number in the environment variable `var`, else `bench`
/// under `cargo bench` and `test` under `cargo test`.
pub fn size_from_env(var: &str, bench: u64, test: u64) -> u64 {
    match std::env::var(var).ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if bench_mode() => bench,
        None => test,
    }
}

/// Writes the catalog snapshot of `log` (data directory `data`) at `size` now; returns
/// the seconds it took, the newest snapshot file and its length in bytes.
pub fn timed_snapshot(
    log: &srcos_catalog::log::Log,
    data: &std::path::Path,
    size: u64,
) -> (f64, std::path::PathBuf, u64) {
    use srcos_catalog::log::snapshot;
    let started = std::time::Instant::now();
    assert_eq!(log.write_snapshot().unwrap(), Some(size));
    let took = started.elapsed().as_secs_f64();
    let (_, path) = snapshot::list(&snapshot::dir(data))[0].clone();
    let bytes = std::fs::metadata(&path).unwrap().len();
    (took, path, bytes)
}

/// A new POSIX data directory for a log: its key files (log key named `origin`, an
/// admin key), tile store and checkpoint lock, as `serve` finds them.
pub struct NewLog {
    /// The log's signing key (`DATA/log.key`).
    pub log_key: Signer,
    /// The admin key (`DATA/admin.key`).
    pub admin: Signer,
    /// `DATA/log/`'s tiles.
    pub tiles: srcos_catalog::storage::posix::PosixTiles,
    /// `DATA/log/`'s checkpoint.
    pub lock: srcos_catalog::storage::posix::PosixLock,
}

/// Creates `data` and the keys and stores of [`NewLog`] in it.
pub fn new_log_dir(data: &std::path::Path, origin: &str) -> NewLog {
    use srcos_catalog::keyfile::generate_key_pair;
    std::fs::create_dir_all(data).unwrap();
    let (log_key, _) = generate_key_pair(&data.join("log"), origin, KeyType::Ed25519).unwrap();
    let (admin, _) = generate_key_pair(&data.join("admin"), "admin", KeyType::Ed25519).unwrap();
    NewLog {
        log_key,
        admin,
        tiles: srcos_catalog::storage::posix::PosixTiles::open(&data.join("log")).unwrap(),
        lock: srcos_catalog::storage::posix::PosixLock::open(&data.join("log")).unwrap(),
    }
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
        let leaf = admit(&self.catalog, &publication_request(n), &self.publisher);
        let index = self.catalog.applied_size();
        self.catalog.apply(index, &leaf).unwrap();
        leaf
    }

    /// The publisher the grant names.
    pub fn publisher(&self) -> &Signer {
        &self.publisher
    }

    /// An admitter of publications for another thread, on its own copy of the state
    /// after `first` (genesis and the grant, as [`Leaves::begin`] returned them).
    pub fn admitter(&self, first: &[Vec<u8>; 2]) -> Admitter {
        let mut catalog = Catalog::new();
        for (index, leaf) in first.iter().enumerate() {
            catalog.apply(index as u64, leaf).unwrap();
        }
        Admitter {
            catalog,
            publisher: self.publisher.clone(),
        }
    }
}

/// Admits publications against the state after genesis and the grant, without applying
/// them: a publication's leaf depends only on the request, the signer's grant and the
/// admission time, so threads can admit distinct publications in parallel and the log
/// gets the same bytes as from [`Leaves::publication`]. Replaying the log applies (and
/// checks) every one of them in order.
pub struct Admitter {
    catalog: Catalog,
    publisher: Signer,
}

impl Admitter {
    /// Publication `n`, admitted (signed, parsed, verified, admitted), not applied.
    pub fn publication(&self, n: u64) -> Vec<u8> {
        admit(&self.catalog, &publication_request(n), &self.publisher)
    }
}

/// The request of publication `n`: a distinct subject digest, four evidence items.
pub fn publication_request(n: u64) -> serde_json::Value {
    let digest = hex::encode(sha2::Sha256::digest(n.to_be_bytes()));
    serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"CatalogPublicationRequest",
        "subject":{"name":"quay.io/bench/image","digest":{"sha256": digest}},
        "targetCatalogRef":"sourceos://catalog/images/bench","channel":"dev",
        "requesterRef":"socios://pipeline/bench",
        "evidence":[
            {"type":"build-receipt","mediaType":"application/json","digest":{"sha256": digest},"uri":"file:///build.json","size":1024},
            {"type":"sbom","mediaType":"application/spdx+json","digest":{"sha256": digest},"uri":"file:///sbom.json","size":1024},
            {"type":"vulnerability-scan","mediaType":"application/vnd.anchore.grype+json","digest":{"sha256": digest},"uri":"file:///scan.json","size":1024},
            {"type":"provenance","mediaType":"application/json","digest":{"sha256": digest},"uri":"file:///prov.json","size":1024}],
        "agentplaneRefs":{"validationArtifactRef":null,"runArtifactRef":null,"replayArtifactRef":null}})
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

/// A realistic mixed log for the replay bench: genesis, grants to a publisher and a
/// reviewer, a `PolicySet` under which `dev → candidate` needs one approval, then cycles
/// of four publications (four evidence items each), the first one's reviews (for `dev`,
/// which publishes it, and `candidate`), promotion and status change, and every 64th cycle a grant to a throwaway key and its
/// revocation. Every leaf is admitted by the catalog (rules version 2) and applied.
pub struct MixedLog {
    catalog: Catalog,
    admin: Signer,
    publisher: Signer,
    reviewer: Signer,
    leaves: Vec<Vec<u8>>,
    cycle: u64,
}

/// RFC 3339 form of [`NOW_MS`], the `issuedAt` of every generated decision.
const NOW_RFC3339: &str = "2023-11-14T22:13:20.000Z";

impl MixedLog {
    /// The first four leaves (genesis, two grants, the policy) for `log_key`.
    pub fn begin(log_key: &Signer) -> MixedLog {
        let admin = Signer::generate("admin", KeyType::Ed25519).unwrap();
        let (leaves, first) = Leaves::begin(log_key, &admin);
        let reviewer = Signer::generate("bench.example/reviewer", KeyType::Ed25519).unwrap();
        let mut log = MixedLog {
            catalog: leaves.catalog,
            admin,
            publisher: leaves.publisher,
            reviewer,
            leaves: first.to_vec(),
            cycle: 0,
        };
        let grant = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"PublisherGrant",
            "publisherKey": log.reviewer.verifier().to_vkey(),"role":"reviewer",
            "targetPrefixes":["sourceos://catalog/"],"channels":["*"]});
        log.push(&grant, Who::Admin);
        let evidence = ["build-receipt", "sbom", "vulnerability-scan", "provenance"];
        let policy = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"PolicySet",
            "issuedAt": NOW_RFC3339, "nonce": "policy-nonce-0000000001",
            "channels": {
                "dev": {"requiredEvidence": evidence, "approvals": 1, "vulnerabilityThreshold": "high"},
                "candidate": {"requiredEvidence": evidence, "approvals": 1, "promoteFrom": "dev",
                    "vulnerabilityThreshold": "high"}}});
        log.push(&policy, Who::Admin);
        log
    }

    /// Appends one more cycle (8 leaves, 10 every 64th).
    pub fn cycle(&mut self) {
        let c = self.cycle;
        self.cycle += 1;
        let mut first = None;
        for k in 0..4 {
            let n = c * 4 + k;
            let digest = hex::encode(sha2::Sha256::digest(n.to_be_bytes()));
            let target = format!("sourceos://catalog/images/bench-{}", n % 97);
            let request = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"CatalogPublicationRequest",
                "subject":{"name": format!("quay.io/bench/image-{}", n % 97),"digest":{"sha256": digest}},
                "targetCatalogRef": target,"channel":"dev",
                "requesterRef":"socios://pipeline/bench",
                "evidence":[
                    {"type":"build-receipt","mediaType":"application/json","digest":{"sha256": digest},"uri":format!("https://evidence.example/{n}/build.json"),"size":1024},
                    {"type":"sbom","mediaType":"application/spdx+json","digest":{"sha256": digest},"uri":format!("https://evidence.example/{n}/sbom.json"),"size":48213},
                    {"type":"vulnerability-scan","mediaType":"application/vnd.anchore.grype+json","digest":{"sha256": digest},"uri":format!("https://evidence.example/{n}/scan.json"),"size":20311},
                    {"type":"provenance","mediaType":"application/json","digest":{"sha256": digest},"uri":format!("https://evidence.example/{n}/prov.json"),"size":3120}],
                "agentplaneRefs":{"validationArtifactRef":null,"runArtifactRef":null,"replayArtifactRef":null}});
            self.push(&request, Who::Publisher);
            first.get_or_insert((target, digest));
        }
        let (target, digest) = first.unwrap();
        let entry =
            serde_json::json!({"targetCatalogRef": target, "subjectDigest": {"sha256": digest}});
        for channel in ["dev", "candidate"] {
            let review = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"Review",
                "issuedAt": NOW_RFC3339, "nonce": format!("review-{channel}-{c:0>16}"),
                "entry": entry, "reviewer": self.reviewer.verifier().short_id(),
                "channel": channel, "verdict": "approve", "comment": "checked the SBOM"});
            self.push(&review, Who::Reviewer);
        }
        let promotion = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"Promotion",
            "issuedAt": NOW_RFC3339, "nonce": format!("promote-{c:0>16}"),
            "entry": entry, "fromChannel": "dev", "toChannel": "candidate"});
        self.push(&promotion, Who::Reviewer);
        let status = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"StatusChange",
            "issuedAt": NOW_RFC3339, "nonce": format!("status-{c:0>16}"),
            "entry": entry, "status": "superseded", "reason": "rebuilt"});
        self.push(&status, Who::Reviewer);
        if c % 64 == 63 {
            let victim =
                Signer::generate(&format!("bench.example/victim-{c}"), KeyType::Ed25519).unwrap();
            let grant = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"PublisherGrant",
                "publisherKey": victim.verifier().to_vkey(),"role":"publisher",
                "targetPrefixes":["sourceos://catalog/images/"],"channels":["dev"]});
            self.push(&grant, Who::Admin);
            let revoke = serde_json::json!({"apiVersion":"catalog.srcos.ai/v1","kind":"PublisherRevoke",
                "issuedAt": NOW_RFC3339, "nonce": format!("revoke-{c:0>16}"),
                "key": victim.verifier().to_vkey(), "reason": "key rotated"});
            self.push(&revoke, Who::Admin);
        }
    }

    /// The leaves so far.
    pub fn leaves(&self) -> &[Vec<u8>] {
        &self.leaves
    }

    /// The leaves.
    pub fn into_leaves(self) -> Vec<Vec<u8>> {
        self.leaves
    }

    fn push(&mut self, payload: &serde_json::Value, who: Who) {
        let signer = match who {
            Who::Admin => &self.admin,
            Who::Publisher => &self.publisher,
            Who::Reviewer => &self.reviewer,
        };
        let leaf = admit(&self.catalog, payload, signer);
        let index = self.catalog.applied_size();
        self.catalog.apply(index, &leaf).unwrap();
        self.leaves.push(leaf);
    }
}

enum Who {
    Admin,
    Publisher,
    Reviewer,
}

//! The state map as a projection of a real catalog: leaves are signed, admitted and
//! applied as the sequencer does; after every leaf the map kept up to date leaf by leaf
//! equals the map built from scratch, and so does the map kept the engine's way (from
//! changes recorded per leaf, applied per batch); its lookup proofs answer the consumer's
//! questions (which channel, which status, which head, which targets, which roles).

use serde_json::{json, Value};
use srcos_catalog::catalog::{format_rfc3339_ms, sign_envelope, Catalog, Submission};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::state::{
    entry_of, EntryValue, HeadValue, KeyRoles, MapChange, MapKey, StateMap, SubjectValue,
};

const ORIGIN: &str = "catalog.srcos.test/log";
const T0: u64 = 1_767_225_600_000;
const X: &str = "sourceos://catalog/images/x";
const Y: &str = "sourceos://catalog/images/y";
/// Leaves per batch of the recorded map: several, so that one batch can change an entry
/// twice (a publication and its promotion) and the keys' roles.
const BATCH: usize = 3;

fn key(name: &str, seed: u8) -> Signer {
    Signer::from_seed(name, KeyType::Ed25519, &[seed; 32]).unwrap()
}

struct World {
    catalog: Catalog,
    map: StateMap,
    /// The same map kept as the engine's map thread keeps it: changes recorded per leaf
    /// ([`StateMap::change_of`]), applied in batches of [`BATCH`] leaves as of the
    /// batch's end, each entry read once per batch.
    recorded: StateMap,
    changes: Vec<MapChange>,
    leaves_in_batch: usize,
    /// (size, the incremental map's root at that size) after every leaf.
    roots: Vec<(u64, [u8; 32])>,
    admin: Signer,
    publisher: Signer,
    t: u64,
    nonce: u8,
}

impl World {
    fn new() -> World {
        let log = key(ORIGIN, 1);
        let admin = key("admin", 2);
        let genesis =
            Catalog::genesis_leaf(ORIGIN, &log.verifier(), &[admin.verifier()], T0).unwrap();
        let mut catalog = Catalog::new();
        let effect = catalog.apply(0, &genesis).unwrap();
        let mut map = StateMap::new();
        map.apply(&catalog, &effect).unwrap();
        let changes = StateMap::change_of(&catalog, 0, &effect)
            .unwrap()
            .into_iter()
            .collect();
        let mut w = World {
            roots: vec![(1, map.root())],
            catalog,
            map,
            recorded: StateMap::new(),
            changes,
            leaves_in_batch: 1,
            admin,
            publisher: key("pipeline", 3),
            t: T0,
            nonce: 0,
        };
        w.check_against_rebuild();
        let grant = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
            "publisherKey": w.publisher.verifier().to_vkey(), "role": "publisher",
            "targetPrefixes": ["sourceos://catalog/images/"], "channels": ["dev"]});
        w.submit(&grant, true);
        let open = json!({"requiredEvidence": [], "approvals": 0, "requiresHumanReview": false});
        let mut candidate = open.clone();
        candidate["promoteFrom"] = json!("dev");
        let mut stable = open.clone();
        stable["promoteFrom"] = json!("candidate");
        let policy = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
            "channels": {"dev": open, "candidate": candidate, "stable": stable}});
        w.submit(&policy, true);
        w
    }

    /// Signs, admits and applies `payload`, then updates the map from the leaf's effect
    /// and checks it against a map built from scratch.
    fn submit(&mut self, payload: &Value, by_admin: bool) {
        let mut payload = payload.clone();
        if !["PublisherGrant", "CatalogPublicationRequest"]
            .contains(&payload["kind"].as_str().unwrap())
        {
            self.nonce += 1;
            payload["issuedAt"] = json!(format_rfc3339_ms(self.t).unwrap());
            payload["nonce"] = json!(format!("{:032x}", self.nonce));
        }
        self.t += 1000;
        let signer = if by_admin {
            &self.admin
        } else {
            &self.publisher
        };
        let envelope = sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), signer).to_json();
        let verified = Submission::parse(envelope.as_bytes())
            .unwrap()
            .verify(&self.catalog.keys())
            .unwrap();
        let leaf = self.catalog.admit(&verified, self.t).unwrap();
        let index = self.catalog.applied_size();
        let effect = self.catalog.apply(index, &leaf).unwrap();
        self.map.apply(&self.catalog, &effect).unwrap();
        self.roots
            .push((self.catalog.applied_size(), self.map.root()));
        self.check_against_rebuild();
        if let Some(change) = StateMap::change_of(&self.catalog, index, &effect).unwrap() {
            self.changes.push(change);
        }
        self.leaves_in_batch += 1;
        if self.leaves_in_batch == BATCH {
            self.end_batch();
        }
    }

    /// Applies the recorded changes as the map thread does (`log::state_commit`) and
    /// checks the result against the map kept leaf by leaf.
    fn end_batch(&mut self) {
        let at = self.catalog.applied_size();
        let mut seen = std::collections::HashSet::new();
        let mut keys = None;
        for change in std::mem::take(&mut self.changes) {
            match entry_of(&self.catalog, &change).unwrap() {
                None => keys = Some(change),
                Some(index) if seen.insert(index) => {
                    let read = StateMap::read_change(&self.catalog, &change, at).unwrap();
                    self.recorded.apply_read(read).unwrap();
                }
                Some(_) => {}
            }
        }
        if let Some(change) = keys {
            self.recorded
                .apply_change(&self.catalog, &change, at)
                .unwrap();
        }
        self.recorded.flush().unwrap();
        self.leaves_in_batch = 0;
        assert_eq!(
            self.recorded.root(),
            self.map.root(),
            "the map kept from recorded changes differs at size {at}"
        );
    }

    fn check_against_rebuild(&self) {
        let fresh = StateMap::build(&self.catalog).unwrap();
        assert_eq!(
            fresh.root(),
            self.map.root(),
            "incremental map differs from a rebuild"
        );
        assert_eq!(fresh.len(), self.map.len());
    }

    /// The value under `key`, after checking its proof (membership or non-membership)
    /// against the root.
    fn lookup<T: serde::de::DeserializeOwned>(&self, key: &MapKey) -> Option<T> {
        let tree = self.map.tree();
        let value = tree.get(&key.hash()).map(|v| v.to_vec());
        let proof = tree.prove(&key.hash());
        proof
            .verify(&self.map.root(), &key.hash(), value.as_deref())
            .unwrap();
        value.map(|v| serde_json::from_slice(&v).unwrap())
    }

    fn entry(&self, target: &str, hex: &str) -> Option<EntryValue> {
        self.lookup(&MapKey::Entry {
            target: target.into(),
            subject: format!("sha256:{hex}"),
        })
    }

    fn head(&self, target: &str, channel: &str) -> Option<HeadValue> {
        self.lookup(&MapKey::Head {
            target: target.into(),
            channel: channel.into(),
        })
    }

    fn publish(&mut self, target: &str, hex: &str) {
        let p = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
            "subject": {"name": "quay.io/x", "digest": {"sha256": hex}},
            "targetCatalogRef": target, "channel": "dev",
            "requesterRef": "socios://pipeline/x", "evidence": [],
            "agentplaneRefs": {"replayArtifactRef": null, "runArtifactRef": null, "validationArtifactRef": null}});
        self.submit(&p, false);
    }

    fn promote(&mut self, target: &str, hex: &str, from: &str, to: &str) {
        let p = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
            "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
            "fromChannel": from, "toChannel": to});
        self.submit(&p, true);
    }

    fn status(&mut self, target: &str, hex: &str, status: &str) {
        let p = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
            "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
            "status": status});
        self.submit(&p, true);
    }
}

fn hex(c: char) -> String {
    c.to_string().repeat(64)
}

#[test]
fn the_map_follows_the_catalog() {
    let mut w = World::new();
    let (a, b) = (hex('a'), hex('b'));
    assert!(w.entry(X, &a).is_none());
    assert!(w.head(X, "dev").is_none());

    w.publish(X, &a); // leaf 3
    let e = w.entry(X, &a).unwrap();
    assert_eq!(
        (e.channel.as_str(), e.status.as_str()),
        ("dev", "published")
    );
    assert_eq!(e.leaf_indices, vec![3]);
    assert_eq!(e.evidence_bundle.sha256.len(), 64);
    assert_eq!(w.head(X, "dev").unwrap().subject, format!("sha256:{a}"));
    let s: SubjectValue = w
        .lookup(&MapKey::Subject {
            subject: format!("sha256:{a}"),
        })
        .unwrap();
    assert_eq!(s.targets, vec![X.to_string()]);

    w.publish(X, &b); // leaf 4: the newer head of dev
    let h = w.head(X, "dev").unwrap();
    assert_eq!(
        (h.subject, h.since, h.publication_index),
        (format!("sha256:{b}"), 4, 4)
    );

    w.promote(X, &a, "dev", "candidate"); // leaf 5
    w.promote(X, &a, "candidate", "stable"); // leaf 6
    let e = w.entry(X, &a).unwrap();
    assert_eq!(
        (e.channel.as_str(), e.status.as_str()),
        ("stable", "published")
    );
    assert_eq!(e.leaf_indices, vec![3, 5, 6]);
    assert!(w.head(X, "candidate").is_none(), "a left candidate");
    let h = w.head(X, "stable").unwrap();
    assert_eq!(
        (h.subject, h.since, h.publication_index),
        (format!("sha256:{a}"), 6, 3)
    );
    assert_eq!(w.head(X, "dev").unwrap().subject, format!("sha256:{b}"));

    w.status(X, &a, "revoked"); // leaf 7
    let e = w.entry(X, &a).unwrap();
    assert_eq!(
        (e.channel.as_str(), e.status.as_str()),
        ("stable", "revoked")
    );
    assert_eq!(e.leaf_indices, vec![3, 5, 6, 7]);
    assert!(
        w.head(X, "stable").is_none(),
        "a revoked entry heads nothing"
    );

    w.publish(Y, &a); // the same subject on another target
    let s: SubjectValue = w
        .lookup(&MapKey::Subject {
            subject: format!("sha256:{a}"),
        })
        .unwrap();
    assert_eq!(s.targets, vec![X.to_string(), Y.to_string()]);

    let pk = MapKey::Key {
        vkey: w.publisher.verifier().to_vkey(),
    };
    let roles: KeyRoles = w.lookup(&pk).unwrap();
    assert_eq!(roles.grants.len(), 1);
    assert_eq!(roles.grants[0].role, "publisher");
    assert_eq!(roles.revoked, None);
    let revoke = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
        "key": w.publisher.verifier().to_vkey(), "reason": "compromised"});
    w.submit(&revoke, true);
    let roles: KeyRoles = w.lookup(&pk).unwrap();
    assert_eq!(roles.revoked, Some(w.catalog.applied_size() - 1));
    let admin: KeyRoles = w
        .lookup(&MapKey::Key {
            vkey: w.admin.verifier().to_vkey(),
        })
        .unwrap();
    assert!(admin.admin && !admin.log);
    let log: KeyRoles = w
        .lookup(&MapKey::Key {
            vkey: w.catalog.log_key().unwrap().to_vkey(),
        })
        .unwrap();
    assert!(log.log && !log.admin);
    // The last, partial batch of the recorded map.
    w.end_batch();

    // The maps of earlier sizes, rebuilt from the final catalog in one pass (what a
    // restarted server does for its past commitments), equal the incremental ones at
    // those sizes: every size at once, and a sparse choice of them.
    let sizes: Vec<u64> = w.roots.iter().map(|(size, _)| *size).collect();
    let (now, trees) = StateMap::build_at(&w.catalog, &sizes).unwrap();
    assert_eq!(now.root(), w.map.root());
    assert_eq!(trees.len(), w.roots.len());
    for ((size, root), tree) in w.roots.iter().zip(&trees) {
        assert_eq!(tree.root(), *root, "size {size}");
    }
    let sparse: Vec<(u64, [u8; 32])> = w.roots.iter().copied().step_by(3).collect();
    let sizes: Vec<u64> = sparse.iter().map(|(size, _)| *size).collect();
    let (_, trees) = StateMap::build_at(&w.catalog, &sizes).unwrap();
    for ((size, root), tree) in sparse.iter().zip(&trees) {
        assert_eq!(tree.root(), *root, "size {size} (sparse)");
    }
}

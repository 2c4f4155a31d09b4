//! The catalog's record store is an implementation detail: the same leaves applied to a
//! catalog on the in-memory store and to one on the server's sled store give the same
//! canonical state, byte for byte, at every size, and the same answers to every query.

mod common;

use std::collections::BTreeMap;

use common::authority::*;
use common::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use srcos_catalog::catalog::{
    analyze, parse_publication_request, sign_envelope, BlobSource, Catalog, EntryQuery,
    EntryStatus, Policy, Submission,
};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::records::DiskRecordStore;

const T0: u64 = 1_767_225_600_000;

struct Blobs(BTreeMap<String, Vec<u8>>);

impl BlobSource for Blobs {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        self.0.get(sha256_hex).cloned()
    }
}

/// Admits and applies `payload` signed by `signer`; the leaf, or `None` if refused.
fn submit(
    catalog: &mut Catalog,
    signer: &Signer,
    payload: &Value,
    blobs: &Blobs,
    at: u64,
) -> Option<Vec<u8>> {
    let body = sign_envelope(&serde_jcs::to_vec(&fresh(payload)).unwrap(), signer).to_json();
    let sub = Submission::parse(body.as_bytes()).unwrap();
    let mut verified = sub.verify(&catalog.keys()).ok()?;
    if let Some(req) = sub.publication() {
        let report = analyze(req, blobs);
        if !report.is_empty() {
            verified = verified.with_evidence(report);
        }
    }
    let leaf = catalog.admit(&verified, at).ok()?;
    let index = catalog.applied_size();
    catalog.apply(index, &leaf).unwrap();
    Some(leaf)
}

/// A log of a few hundred random operations: grants, publications with and without
/// blobs, reviews, promotions, status changes, policies, revocations.
fn random_leaves(rng: &mut Rng) -> (Catalog, Vec<Vec<u8>>) {
    let log = Signer::generate("catalog.srcos.test/log", KeyType::Ed25519).unwrap();
    let admin = Signer::generate("admin", KeyType::Ed25519).unwrap();
    let genesis =
        Catalog::genesis_leaf(log.name(), &log.verifier(), &[admin.verifier()], T0).unwrap();
    let mut catalog = Catalog::new();
    catalog.apply(0, &genesis).unwrap();
    let mut leaves = vec![genesis];
    let mut blobs = Blobs(BTreeMap::new());
    let mk = |n: &str| Signer::generate(n, KeyType::Ed25519).unwrap();
    let publishers = [mk("pub-a"), mk("pub-b")];
    let reviewers = [mk("rev-a"), mk("rev-b"), mk("rev-c")];
    for (keys, role) in [(&publishers[..], "publisher"), (&reviewers[..], "reviewer")] {
        for k in keys {
            let grant = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
                "publisherKey": k.verifier().to_vkey(), "role": role,
                "targetPrefixes": [PREFIX], "channels": ["*"]});
            leaves.extend(submit(&mut catalog, &admin, &grant, &blobs, T0));
        }
    }
    // One scripted promotion (random operations rarely line up its approvals).
    let hex = subject_hex("promoted");
    let files = release_evidence(&hex);
    for (_, _, b) in &files {
        blobs.0.insert(hex::encode(Sha256::digest(b)), b.clone());
    }
    let items = files.iter().map(|(t, m, b)| item(t, m, b)).collect();
    let req = request("quay.io/store/s0", &hex, "dev", items, agentplane_refs("r"));
    let target = req["targetCatalogRef"].as_str().unwrap().to_string();
    let about = json!({"targetCatalogRef": target, "subjectDigest": {"sha256": hex}});
    let review = |r: &Signer, channel: &str| {
        json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review", "entry": about,
            "reviewer": r.verifier().short_id(), "channel": channel, "verdict": "approve"})
    };
    let promotion = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
        "entry": about, "fromChannel": "dev", "toChannel": "candidate"});
    for (signer, payload) in [
        (&publishers[0], req.clone()),
        (&reviewers[0], review(&reviewers[0], "dev")),
        (&reviewers[1], review(&reviewers[1], "candidate")),
        (&reviewers[0], promotion),
    ] {
        leaves.push(submit(&mut catalog, signer, &payload, &blobs, T0).unwrap());
    }
    let mut entries: Vec<(String, String)> = vec![(target, hex)];
    for n in 0..400u64 {
        let at = T0 + n * 1000;
        // Mostly recent entries, so some gather the approvals a promotion needs.
        let pick = if rng.below(4) == 0 {
            rng.below(entries.len().max(1) as u64) as usize
        } else {
            entries.len().saturating_sub(1 + rng.below(3) as usize)
        };
        let entry = entries.get(pick).cloned();
        let reviewer = &reviewers[rng.below(3) as usize];
        let channel = ["dev", "candidate"][rng.below(2) as usize];
        let (signer, payload) = match (rng.below(100), entry) {
            (0..=39, _) | (_, None) => {
                let hex = subject_hex(&format!("store-{n}-{}", rng.next()));
                let files = release_evidence(&hex);
                let full = rng.below(2) == 0;
                if full {
                    for (_, _, b) in &files {
                        blobs.0.insert(hex::encode(Sha256::digest(b)), b.clone());
                    }
                }
                let take = if full { 7 } else { 4 };
                let items = files.iter().take(take).map(|(t, m, b)| item(t, m, b));
                let refs = if full {
                    agentplane_refs("r")
                } else {
                    no_refs()
                };
                let name = format!("quay.io/store/s{}", rng.below(5));
                let req = request(&name, &hex, "dev", items.collect(), refs);
                let publisher = &publishers[rng.below(2) as usize];
                if submit(&mut catalog, publisher, &req, &blobs, at)
                    .map(|leaf| leaves.push(leaf))
                    .is_some()
                {
                    let target = req["targetCatalogRef"].as_str().unwrap().to_string();
                    entries.push((target, hex));
                }
                continue;
            }
            (40..=74, Some((target, hex))) => (
                reviewer,
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
                    "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                    "reviewer": reviewer.verifier().short_id(), "channel": channel,
                    "verdict": if rng.below(6) == 0 { "deny" } else { "approve" }}),
            ),
            (75..=89, Some((target, hex))) => {
                let (from, to) =
                    [("dev", "candidate"), ("candidate", "stable")][rng.below(2) as usize];
                (
                    reviewer,
                    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
                        "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                        "fromChannel": from, "toChannel": to}),
                )
            }
            (90..=95, Some((target, hex))) => {
                let status =
                    ["superseded", "restricted", "archived", "revoked"][rng.below(4) as usize];
                (
                    &admin,
                    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
                        "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                        "status": status}),
                )
            }
            _ => {
                let mut policy = serde_json::to_value(Policy::defaults()).unwrap();
                policy["channels"]["dev"]["approvals"] = json!(1 + rng.below(2));
                (
                    &admin,
                    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
                        "channels": policy["channels"]}),
                )
            }
        };
        leaves.extend(submit(&mut catalog, signer, &payload, &blobs, at));
    }
    (catalog, leaves)
}

/// Every query answer of `c` at `at`, as comparable text.
fn answers(c: &Catalog, at: u64, leaves: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut subjects = vec![None];
    for i in 0..5 {
        subjects.push(Some(format!("quay.io/store/s{i}")));
    }
    for leaf in leaves {
        if let Ok(req) = parse_publication_request(
            &serde_json::from_slice::<Value>(leaf).unwrap()["envelope"]["payload"]
                .as_str()
                .map(|p| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(p).unwrap()
                })
                .unwrap_or_default(),
        ) {
            subjects.push(Some(req.subject_digest()));
        }
    }
    for subject in subjects {
        for channel in [None, Some("dev"), Some("candidate")] {
            for status in [None, Some(EntryStatus::Draft), Some(EntryStatus::Published)] {
                let mut after = None;
                loop {
                    let q = EntryQuery {
                        subject: subject.clone(),
                        target: None,
                        channel: channel.map(str::to_string),
                        status,
                        after,
                        limit: 7,
                    };
                    let page = c.query_entries(&q, at).unwrap();
                    out.push(format!("{q:?} -> {:?} next {:?}", page.items, page.next));
                    match page.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
        }
        if let Some(s) = subject.as_deref().filter(|s| s.starts_with("sha256:")) {
            out.push(format!("{:?}", c.publications(s).unwrap()));
        }
    }
    for i in 0..at {
        let view = c.entry_view(i, at).unwrap();
        if let Some((v, _)) = &view {
            out.push(format!("{:?}", c.entry_index(&v.id).unwrap()));
        }
        out.push(format!("{view:?}"));
    }
    out
}

#[test]
fn memory_and_sled_stores_give_the_same_state_and_answers() {
    let mut rng = Rng::from_clock("projection store test");
    let (live, leaves) = random_leaves(&mut rng);
    let dir = common::tempdir();
    let store = DiskRecordStore::open_fresh(&dir.path().join("projection")).unwrap();
    let mut on_disk = Catalog::with_store(Box::new(store));
    let mut in_memory = Catalog::new();
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(
            on_disk.apply(i as u64, leaf).unwrap(),
            in_memory.apply(i as u64, leaf).unwrap()
        );
    }
    let size = leaves.len() as u64;
    assert!(size > 200, "only {size} leaves");
    let state = String::from_utf8(in_memory.state_json().unwrap()).unwrap();
    for kind in ["Review", "Promotion", "StatusChange"] {
        assert!(
            state.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} was admitted"
        );
    }
    assert_eq!(live.state_json().unwrap(), in_memory.state_json().unwrap());
    for at in [0, 1, size / 3, size / 2, size - 1, size] {
        assert_eq!(
            on_disk.state_json_at(at).unwrap(),
            in_memory.state_json_at(at).unwrap(),
            "state at {at}"
        );
        assert_eq!(
            on_disk.try_state_digest_at(at).unwrap(),
            in_memory.state_digest_at(at)
        );
    }
    // The digest is hashed as the canonical JSON is streamed; it must hash the very bytes
    // of `state_json_at`, at every size.
    for at in 0..=size {
        let json = in_memory.state_json_at(at).unwrap();
        let streamed = in_memory.try_state_digest_at(at).unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&json)), streamed, "at {at}");
    }
    for at in [size / 2, size] {
        let a = answers(&on_disk, at, &leaves);
        let b = answers(&in_memory, at, &leaves);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y);
        }
    }
    // A clone is an independent copy in memory: applying to it leaves the original as is.
    let before = on_disk.state_digest();
    let copy = on_disk.clone();
    assert_eq!(copy.state_digest(), before);
}

/// A snapshot as the log writes one (ADR 0008), from `full` (which may have applied more
/// leaves) as of `at`, with the admin state of `exact` (which applied exactly `at`): its
/// digest, hashed as the chunks are read, and the catalog restored from it.
fn snapshot_of(full: &Catalog, exact: &Catalog, at: u64) -> ([u8; 32], Catalog) {
    use srcos_catalog::catalog::{MemoryStore, Put, RecordStore, Space, StateDigester};
    use srcos_catalog::log::subject_sort::SubjectSort;
    let admin = exact.admin_state();
    assert_eq!(admin.applied_size(), at);
    let admin_only = Catalog::restore(admin.clone(), Box::new(MemoryStore::default()))
        .map_err(|(e, _)| e)
        .unwrap();
    let mut digester = StateDigester::begin(&admin_only, at).unwrap();
    // The same digest as the whole snapshot hashes it: publications in leaf order,
    // sorted on disk in runs small enough to spill many and merge in cascades.
    let mut by_sort = StateDigester::begin(&admin_only, at).unwrap();
    let spill = tempfile::tempdir().unwrap();
    let mut sort = Some(SubjectSort::with_limits(spill.path(), 2_000, 3));
    let mut sorted = None;
    let mut store = MemoryStore::default();
    for space in Space::ALL {
        if space == Space::EntryIds {
            digester.admin(&admin_only).unwrap();
            by_sort.admin(&admin_only).unwrap();
        }
        if space == Space::Subjects {
            sorted = sort.take().map(|s| s.finish().unwrap());
        }
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            // Small chunks, so that resuming after a key is exercised.
            let chunk = full
                .snapshot_chunk(space, cursor.as_deref(), at, 7)
                .unwrap();
            for (key, value) in chunk.records {
                match space {
                    Space::Publications => sort.as_mut().unwrap().push(&value).unwrap(),
                    Space::Entries => {
                        digester.entry(&value).unwrap();
                        by_sort.entry(&value).unwrap();
                    }
                    Space::Subjects => {
                        digester.subject(full, &key).unwrap();
                        let (sorted_key, publication) =
                            sorted.as_mut().unwrap().next_item().unwrap().unwrap();
                        assert_eq!(sorted_key, key, "the sort follows the subject index");
                        let publication = serde_json::from_slice(&publication).unwrap();
                        by_sort.subject_publication(&key, &publication).unwrap();
                    }
                    _ => {}
                }
                store.write(vec![Put { space, key, value }]).unwrap();
            }
            match chunk.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let restored = Catalog::restore(admin, Box::new(store))
        .map_err(|(e, _)| e)
        .unwrap();
    assert!(sorted.unwrap().next_item().unwrap().is_none());
    let digest = digester.finish();
    assert_eq!(
        by_sort.finish(),
        digest,
        "sorted publications give the same digest"
    );
    (digest, restored)
}

#[test]
fn a_snapshot_at_any_size_restores_the_same_state_and_digest() {
    let mut rng = Rng::from_clock("snapshot restore test");
    let (_, leaves) = random_leaves(&mut rng);
    let size = leaves.len() as u64;
    let mut full = Catalog::new();
    for (i, leaf) in leaves.iter().enumerate() {
        full.apply(i as u64, leaf).unwrap();
    }
    let mut exact = Catalog::new();
    let middle = size / 2;
    for (i, leaf) in leaves.iter().enumerate() {
        let at = i as u64;
        if at % 23 == 0 || at == middle {
            let (digest, restored) = snapshot_of(&full, &exact, at);
            assert_eq!(digest, exact.state_digest(), "digest at {at}");
            assert_eq!(digest, full.state_digest_at(at), "digest at {at}");
            assert_eq!(restored.state_json().unwrap(), exact.state_json().unwrap());
            if at == middle {
                // Applying the rest to the restored catalog reaches the full state.
                let mut restored = restored;
                for (j, rest) in leaves.iter().enumerate().skip(i) {
                    restored.apply(j as u64, rest).unwrap();
                }
                assert_eq!(restored.state_digest(), full.state_digest());
            }
        }
        exact.apply(at, leaf).unwrap();
    }
    let (digest, _) = snapshot_of(&full, &exact, size);
    assert_eq!(digest, full.state_digest());
}

/// The server's state digest at a past size is read a chunk of records at a time (the
/// catalog's lock is released between chunks); at every size and chunk length it must
/// equal the digest of one read.
#[test]
fn the_chunked_state_digest_equals_one_read_at_every_size() {
    use srcos_catalog::log::state_digest::{sorted_state_digest_at, state_digest_at};
    let mut rng = Rng::from_clock("chunked digest test");
    let (_, leaves) = random_leaves(&mut rng);
    let mut catalog = Catalog::new();
    for (i, leaf) in leaves.iter().enumerate() {
        catalog.apply(i as u64, leaf).unwrap();
    }
    let size = leaves.len() as u64;
    let locked = std::sync::RwLock::new(catalog);
    let catalog = locked.read().unwrap();
    let expected: Vec<[u8; 32]> = (0..=size)
        .map(|at| catalog.try_state_digest_at(at).unwrap())
        .collect();
    drop(catalog);
    let spill = tempfile::tempdir().unwrap();
    for chunk in [1, 7, 4096] {
        for at in 0..=size {
            assert_eq!(
                state_digest_at(&locked, at, chunk, None).unwrap(),
                expected[at as usize],
                "at {at}, chunks of {chunk}"
            );
            assert_eq!(
                state_digest_at(&locked, at, chunk, Some(spill.path())).unwrap(),
                expected[at as usize],
                "sorted, at {at}, chunks of {chunk}"
            );
        }
    }
    // With the publications sorted on disk (ADR 0020; in memory below 32 MiB).
    let catalog = locked.read().unwrap();
    for at in 0..=size {
        assert_eq!(
            sorted_state_digest_at(&catalog, at, spill.path()).unwrap(),
            expected[at as usize],
            "sorted, at {at}"
        );
    }
}

#[test]
fn a_publication_hashed_under_another_subject_key_is_refused() {
    use srcos_catalog::catalog::{PublicationRecord, Space, StateDigester};
    let mut rng = Rng::from_clock("subject mismatch test");
    let (catalog, leaves) = random_leaves(&mut rng);
    let size = leaves.len() as u64;
    let keys = catalog
        .snapshot_chunk(Space::Subjects, None, size, usize::MAX)
        .unwrap()
        .records;
    let publications = catalog
        .snapshot_chunk(Space::Publications, None, size, usize::MAX)
        .unwrap()
        .records;
    let publication_of = |key: &[u8]| -> PublicationRecord {
        let index = &key[key.len() - 8..];
        let (_, value) = publications.iter().find(|(k, _)| k == index).unwrap();
        serde_json::from_slice(value).unwrap()
    };
    let (first, last) = (&keys[0].0, &keys[keys.len() - 1].0);
    assert_ne!(first, last, "the random log has two publications");
    let digester = || {
        let mut d = StateDigester::begin(&catalog, size).unwrap();
        d.admin(&catalog).unwrap();
        d
    };
    // Its own publication is hashed; another leaf's, of another subject or of the same
    // subject, is refused as corrupt.
    assert!(digester()
        .subject_publication(first, &publication_of(first))
        .is_ok());
    let mut other_leaf = publication_of(first);
    other_leaf.leaf_index += 1;
    for wrong in [publication_of(last), other_leaf] {
        let refused = digester().subject_publication(first, &wrong).unwrap_err();
        assert!(refused.to_string().contains("corrupt"), "{refused}");
    }
}

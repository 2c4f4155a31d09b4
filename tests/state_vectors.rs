//! The state map's test vectors (`log-format/vectors/state/map.json`, cited by
//! `log-format/state.md`): key and value encodings, the hashes, a small tree's root and
//! proofs of every shape (present, absent at an empty subtree, absent at another leaf),
//! each with its compressed encoding. The test recomputes every vector and compares it
//! with the committed file; `SRCOS_WRITE_VECTORS=1` rewrites the file instead.
//! `tests/state_verifier.py` checks the same file from the spec alone.

use std::sync::Arc;

use serde_json::{json, Value};
use srcos_catalog::catalog::Catalog;
use srcos_catalog::state::{
    empty_hash, encode_value, key_hash, leaf_hash, node_hash, value_hash, EntryValue, HeadValue,
    KeyRoles, MapKey, Proof, Sha256Digest, SubjectValue, Tree,
};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/log-format/vectors/state/map.json"
);

fn keys_and_values() -> Vec<(MapKey, Vec<u8>)> {
    let subject = format!(
        "sha256:{}",
        "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    let target = "sourceos://catalog/images/sourceos-smoke-runner".to_string();
    vec![
        (
            MapKey::Entry {
                target: target.clone(),
                subject: subject.clone(),
            },
            encode_value(&EntryValue {
                channel: "stable".into(),
                evidence_bundle: Sha256Digest {
                    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                        .into(),
                },
                leaf_indices: vec![2, 5, 6],
                status: "published".into(),
                subject_name: "quay.io/socios/sourceos-smoke-runner".into(),
            })
            .unwrap(),
        ),
        (
            MapKey::Head {
                target: target.clone(),
                channel: "stable".into(),
            },
            encode_value(&HeadValue {
                publication_index: 2,
                since: 6,
                subject: subject.clone(),
            })
            .unwrap(),
        ),
        (
            MapKey::Subject {
                subject: subject.clone(),
            },
            encode_value(&SubjectValue {
                targets: vec![target.clone()],
            })
            .unwrap(),
        ),
        (
            MapKey::Key {
                vkey: "smoke-runner-pipeline+48b37653+Ae1JKMYo0cLG6ukDOJBZlWEpWSc6XGP5NjbBRhSshzfR"
                    .into(),
            },
            encode_value(&KeyRoles {
                admin: false,
                grants: vec![srcos_catalog::state::GrantValue {
                    channels: vec!["dev".into()],
                    leaf_index: 1,
                    role: "publisher".into(),
                    target_prefixes: vec!["sourceos://catalog/images/".into()],
                }],
                log: false,
                revoked: Some(9),
            })
            .unwrap(),
        ),
    ]
}

fn proof_json(tree: &Tree, key: &[u8], note: &str) -> Value {
    let kh = key_hash(key);
    let proof = tree.prove(&kh);
    let value = tree
        .get(&kh)
        .map(|v| String::from_utf8(v.to_vec()).unwrap());
    proof
        .verify(&tree.root(), &kh, value.as_deref().map(str::as_bytes))
        .unwrap();
    json!({
        "note": note,
        "key": String::from_utf8(key.to_vec()).unwrap(),
        "keyHash": hex::encode(kh),
        "value": value,
        "siblings": proof.siblings.iter().map(hex::encode).collect::<Vec<_>>(),
        "terminal": proof.terminal.map(|(k, v)| json!({"keyHash": hex::encode(k), "valueHash": hex::encode(v)})),
        "encoded": hex::encode(proof.encode()),
    })
}

fn vectors() -> Value {
    let pairs = keys_and_values();
    let encodings: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| {
            json!({
                "key": String::from_utf8(k.encode()).unwrap(),
                "keyHash": hex::encode(k.hash()),
                "value": String::from_utf8(v.clone()).unwrap(),
                "valueHash": hex::encode(value_hash(v)),
                "leafHash": hex::encode(leaf_hash(&k.hash(), &value_hash(v))),
            })
        })
        .collect();
    // A tree of the four keys and 28 more entries, so proofs have several levels.
    let mut tree = Tree::new();
    let mut steps = Vec::new();
    for (k, v) in &pairs {
        tree.set(k.hash(), Some(Arc::from(v.clone())));
        steps.push(hex::encode(tree.root()));
    }
    let extra: Vec<(Vec<u8>, Vec<u8>)> = (0..28)
        .map(|i| {
            (
                format!("[\"subject\",\"sha256:{:064x}\"]", i).into_bytes(),
                format!("{{\"targets\":[\"sourceos://catalog/images/t{i}\"]}}").into_bytes(),
            )
        })
        .collect();
    for (k, v) in &extra {
        tree.set(key_hash(k), Some(Arc::from(v.clone())));
    }
    let first = pairs[0].0.encode();
    // An absent key whose path ends at an empty subtree, and one whose path ends at
    // another key's leaf: searched for deterministically.
    let absent = |want_leaf: bool| -> Vec<u8> {
        (0u32..)
            .map(|i| format!("[\"subject\",\"sha256:{:064x}\"]", 1_000_000 + i).into_bytes())
            .find(|k| tree.prove(&key_hash(k)).terminal.is_some() == want_leaf)
            .unwrap()
    };
    let single = {
        let mut t = Tree::new();
        t.set(pairs[0].0.hash(), Some(Arc::from(pairs[0].1.clone())));
        t
    };
    json!({
        "source": "generated by tests/state_vectors.rs; specified in log-format/state.md",
        "emptyHash": hex::encode(empty_hash()),
        "nodeHashOfEmpties": hex::encode(node_hash(&empty_hash(), &empty_hash())),
        "encodings": encodings,
        "rootsAfterEachOfTheFour": steps,
        "singleKeyTree": {
            "root": hex::encode(single.root()),
            "proof": proof_json(&single, &first, "the only key: no siblings, the root is its leaf hash"),
        },
        "tree": {
            "extraEntries": extra.iter().map(|(k, v)| json!([String::from_utf8(k.clone()).unwrap(), String::from_utf8(v.clone()).unwrap()])).collect::<Vec<_>>(),
            "root": hex::encode(tree.root()),
            "proofs": [
                proof_json(&tree, &first, "present"),
                proof_json(&tree, &absent(false), "absent: the path ends at an empty subtree"),
                proof_json(&tree, &absent(true), "absent: the path ends at another key's leaf"),
            ],
        },
        "commitmentLeaf": String::from_utf8(
            Catalog::state_commitment_leaf(7, &tree.root(), 1_767_225_607_000, None).unwrap()
        )
        .unwrap(),
        "emptyTree": {
            "root": hex::encode(Tree::new().root()),
            "proof": proof_json(&Tree::new(), &first, "absent from the empty map"),
        },
    })
}

#[test]
fn vectors_match_the_committed_file() {
    let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("SRCOS_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, &text).unwrap();
    }
    let committed = std::fs::read_to_string(PATH).expect("log-format/vectors/state/map.json");
    assert_eq!(
        committed, text,
        "regenerate with SRCOS_WRITE_VECTORS=1 and review the diff"
    );
    // The spec shows the commitment leaf byte for byte.
    let leaf = v_leaf(&committed);
    let spec = include_str!("../log-format/state.md");
    assert!(
        spec.contains(&format!("\n{leaf}\n")),
        "state.md lacks {leaf}"
    );
    // Every committed proof decodes to itself.
    let v: Value = serde_json::from_str(&committed).unwrap();
    for p in v["tree"]["proofs"].as_array().unwrap() {
        let bytes = hex::decode(p["encoded"].as_str().unwrap()).unwrap();
        assert_eq!(Proof::decode(&bytes).unwrap().encode(), bytes);
    }
}

fn v_leaf(committed: &str) -> String {
    let v: Value = serde_json::from_str(committed).unwrap();
    v["commitmentLeaf"].as_str().unwrap().to_string()
}

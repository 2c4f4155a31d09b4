//! Property tests of the state map's sparse Merkle tree and its proofs: for random
//! sequences of sets and removals, every lookup proof verifies and agrees with a plain
//! model map, survives its encoding, and a forged value, a dropped or altered sibling, a
//! proof for another key or another root is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use srcos_catalog::state::{key_hash, Proof, ProofError, Tree, MAX_SIBLINGS};

/// One update of a `set_many` batch.
type Update = ([u8; 32], Option<Arc<[u8]>>);

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8),
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..48, any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        1 => (0u8..48).prop_map(Op::Remove),
    ]
}

fn key(k: u8) -> [u8; 32] {
    key_hash(&[k])
}

fn value(v: u8) -> Vec<u8> {
    format!("{{\"v\":{v}}}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn proofs_agree_with_the_model(ops in proptest::collection::vec(op(), 0..120)) {
        let mut tree = Tree::new();
        let mut model: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        for o in &ops {
            match *o {
                Op::Set(k, v) => {
                    tree.set(key(k), Some(Arc::from(value(v))));
                    model.insert(k, value(v));
                }
                Op::Remove(k) => {
                    tree.set(key(k), None);
                    model.remove(&k);
                }
            }
        }
        prop_assert_eq!(tree.len(), model.len());
        // The same set built in another order has the same root (canonical tree).
        let mut fresh = Tree::new();
        for (k, v) in model.iter().rev() {
            fresh.set(key(*k), Some(Arc::from(v.clone())));
        }
        prop_assert_eq!(fresh.root(), tree.root());
        // The same operations as one batch (`set_many`), on an empty tree and on a
        // tree that already holds keys: the same tree as applying them one by one.
        for start in [Tree::new(), fresh.clone()] {
            let mut one = start.clone();
            let batch: Vec<Update> = ops
                .iter()
                .map(|o| match *o {
                    Op::Set(k, v) => (key(k), Some(Arc::from(value(v)))),
                    Op::Remove(k) => (key(k), None),
                })
                .collect();
            for (k, v) in batch.clone() {
                one.set(k, v);
            }
            let mut many = start.clone();
            many.set_many(batch);
            prop_assert_eq!(many.root(), one.root());
            prop_assert_eq!(many.len(), one.len());
        }

        let root = tree.root();
        let mut other = tree.clone();
        other.set(key(200), Some(Arc::from(value(0))));
        for k in 0u8..48 {
            let kh = key(k);
            let proof = tree.prove(&kh);
            let want = model.get(&k).map(|v| v.as_slice());
            prop_assert_eq!(tree.get(&kh).map(|v| v.to_vec()), want.map(|v| v.to_vec()));
            prop_assert!(proof.verify(&root, &kh, want).is_ok());
            // The encoding round-trips, exactly.
            let bytes = proof.encode();
            prop_assert_eq!(&Proof::decode(&bytes).unwrap(), &proof);
            prop_assert!(Proof::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Proof::decode(&longer).is_err());
            // Another root: refused.
            prop_assert_eq!(proof.verify(&other.root(), &kh, want), Err(ProofError::WrongRoot));
            // A forged value, or a claim of absence for a present key, or of presence
            // for an absent one: refused.
            let forged = b"{\"v\":\"forged\"}".to_vec();
            prop_assert!(proof.verify(&root, &kh, Some(&forged)).is_err());
            match want {
                Some(_) => prop_assert!(proof.verify(&root, &kh, None).is_err()),
                None => prop_assert!(proof.verify(&root, &kh, Some(&value(0))).is_err()),
            }
            // A dropped or altered sibling: refused.
            if !proof.siblings.is_empty() {
                for i in [0, proof.siblings.len() - 1] {
                    let mut dropped = proof.clone();
                    dropped.siblings.remove(i);
                    prop_assert!(dropped.verify(&root, &kh, want).is_err());
                    let mut altered = proof.clone();
                    altered.siblings[i][0] ^= 1;
                    prop_assert!(altered.verify(&root, &kh, want).is_err());
                }
            }
            // A membership proof does not answer for another key.
            if let Some(v) = want {
                for j in [k.wrapping_add(1) % 48, 47 - k] {
                    if j != k {
                        let jh = key(j);
                        prop_assert!(proof.verify(&root, &jh, Some(v)).is_err());
                        // (An absent key whose path ends at this leaf is rightly proved
                        // absent by it.)
                        if model.contains_key(&j) {
                            prop_assert!(proof.verify(&root, &jh, None).is_err());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn hostile_encodings_are_refused() {
    let mut tree = Tree::new();
    for i in 0..1000u32 {
        tree.set(key_hash(&i.to_be_bytes()), Some(Arc::from(&b"v"[..])));
    }
    let k = key_hash(b"absent");
    let bytes = tree.prove(&k).encode();
    // A count larger than any proof.
    let mut big = bytes.clone();
    big[..2].copy_from_slice(&((MAX_SIBLINGS + 1) as u16).to_be_bytes());
    assert!(Proof::decode(&big).is_err());
    // An unknown terminal tag.
    let mut tag = bytes.clone();
    let n = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    let ones: usize = bytes[2..2 + n.div_ceil(8)]
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum();
    let t = 2 + n.div_ceil(8) + 32 * ones;
    tag[t] = 7;
    assert!(Proof::decode(&tag).is_err());
    // A padding bit set in the bitmap.
    if n % 8 != 0 {
        let mut pad = bytes.clone();
        pad[2 + n / 8] |= 1;
        assert!(Proof::decode(&pad).is_err());
    }
    // Garbage and the empty string.
    assert!(Proof::decode(&[]).is_err());
    assert!(Proof::decode(&[0xff; 9000]).is_err());
}

/// Proof size grows with log n: at 200,000 keys the largest of 2,000 proofs stays far
/// under 4 KiB (at 10 M keys, 6 more levels: under 1.3 KiB; see docs/performance.md).
#[test]
fn proofs_are_logarithmic() {
    let mut tree = Tree::new();
    for i in 0..200_000u32 {
        tree.set(key_hash(&i.to_be_bytes()), Some(Arc::from(&b"v"[..])));
    }
    let root = tree.root();
    let mut max = 0;
    for i in 0..2_000u32 {
        let k = key_hash(&(i * 97).to_be_bytes());
        let p = tree.prove(&k);
        let present = (i * 97) < 200_000;
        p.verify(&root, &k, present.then_some(&b"v"[..])).unwrap();
        max = max.max(p.encode().len());
    }
    assert!(max < 1_200, "largest proof {max} bytes");
}

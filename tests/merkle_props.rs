//! Property tests for the Merkle module: proofs from stored hashes against the
//! naive RFC reference, verifier mutations, CompactRange, hostile sizes, and a
//! cross-check with rs_merkle.

use std::cell::Cell;
use std::sync::OnceLock;

use proptest::prelude::*;
use rs_merkle::{MerkleProof, MerkleTree};
use srcos_catalog::merkle::*;

/// Largest tree the property tests use.
const MAX: usize = 400;

/// Distinct leaf hashes, so that swapping two hashes always changes a root.
fn all_leaves() -> &'static [Hash] {
    static LEAVES: OnceLock<Vec<Hash>> = OnceLock::new();
    LEAVES.get_or_init(|| {
        (0..MAX)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    })
}

/// One store holding all MAX leaves: proofs for smaller sizes come from the
/// same store, as they do in the real log (old sizes from a grown tree).
fn source() -> &'static MemoryHashSource {
    static SOURCE: OnceLock<MemoryHashSource> = OnceLock::new();
    SOURCE.get_or_init(|| MemoryHashSource::from_leaf_hashes(all_leaves()))
}

/// Reference roots for every size 0..=MAX.
fn roots() -> &'static [Hash] {
    static ROOTS: OnceLock<Vec<Hash>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        (0..=MAX)
            .map(|n| reference::mth(&all_leaves()[..n]))
            .collect()
    })
}

fn root(n: u64) -> Hash {
    roots()[n as usize]
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

fn as_vecs(proof: &[Hash]) -> Vec<Vec<u8>> {
    proof.iter().map(|h| h.to_vec()).collect()
}

/// A (index, size) pair with 1 <= size <= MAX.
fn index_and_size() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX as u64).prop_flat_map(|size| (0..size, Just(size)))
}

/// A (first, second) pair with 1 <= first <= second <= MAX.
fn first_and_second() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX as u64).prop_flat_map(|second| (1..=second, Just(second)))
}

// ---------------------------------------------------------------------------
// Proof generation against the reference
// ---------------------------------------------------------------------------

#[test]
fn exhaustive_small_trees_match_reference() {
    // Every (index, size) and (first, second) up to 300 leaves.
    let leaves = all_leaves();
    for size in 1..=300u64 {
        let n = size as usize;
        assert_eq!(tree_root(size, source()), Ok(root(size)));
        for index in 0..size {
            let got = inclusion_proof(index, size, source()).expect("inclusion");
            assert_eq!(
                Some(got.clone()),
                reference::path(index as usize, &leaves[..n])
            );
            assert_eq!(
                verify_inclusion(index, size, &leaves[index as usize], &got, &root(size)),
                Ok(())
            );
        }
        for first in 1..=size {
            let got = consistency_proof(first, size, source()).expect("consistency");
            assert_eq!(
                Some(got.clone()),
                reference::proof(first as usize, &leaves[..n])
            );
            assert_eq!(
                verify_consistency(first, size, &root(first), &root(size), &got),
                Ok(())
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_proof_matches_reference_and_verifies((index, size) in index_and_size()) {
        let leaves = all_leaves();
        let proof = inclusion_proof(index, size, source()).expect("inclusion");
        prop_assert_eq!(Some(proof.clone()), reference::path(index as usize, &leaves[..size as usize]));
        let leaf = leaves[index as usize];
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root(size)), Ok(()));
        prop_assert_eq!(root_from_inclusion_proof(index, size, &leaf, &proof), Ok(root(size)));
        prop_assert_eq!(verify_inclusion_rs_merkle(index, size, &leaf, &proof, &root(size)), Ok(()));
        // The node lists name O(log n) nodes, each group folding to one element.
        let groups = inclusion_proof_nodes(index, size).expect("nodes");
        prop_assert_eq!(groups.len(), proof.len());
        prop_assert!(groups.iter().map(Vec::len).sum::<usize>() <= 2 * 64);
    }

    #[test]
    fn consistency_proof_matches_reference_and_verifies((first, second) in first_and_second()) {
        let leaves = all_leaves();
        let proof = consistency_proof(first, second, source()).expect("consistency");
        prop_assert_eq!(
            Some(proof.clone()),
            reference::proof(first as usize, &leaves[..second as usize])
        );
        prop_assert_eq!(verify_consistency(first, second, &root(first), &root(second), &proof), Ok(()));
        let groups = consistency_proof_nodes(first, second).expect("nodes");
        prop_assert_eq!(groups.len(), proof.len());
    }

    #[test]
    fn inclusion_verifier_rejects_mutations(
        (index, size) in index_and_size(),
        pick in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let leaves = all_leaves();
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(index, size, source()).expect("inclusion");
        let root_n = root(size);

        // Claimed at a neighbouring index, with the same leaf.
        prop_assert!(verify_inclusion(index + 1, size, &leaf, &proof, &root_n).is_err());
        if index > 0 {
            prop_assert!(verify_inclusion(index - 1, size, &leaf, &proof, &root_n).is_err());
        }
        // Claimed for a neighbouring tree size, against that tree's real root.
        if (size as usize) < MAX {
            prop_assert!(verify_inclusion(index, size + 1, &leaf, &proof, &root(size + 1)).is_err());
        }
        if size > 1 {
            prop_assert!(verify_inclusion(index, size - 1, &leaf, &proof, &root(size - 1)).is_err());
        }
        // A flipped bit in the leaf, the root or any proof hash.
        prop_assert_eq!(
            verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root_n),
            Err(VerifyError::RootMismatch)
        );
        prop_assert_eq!(
            verify_inclusion(index, size, &leaf, &proof, &flip(&root_n, bit)),
            Err(VerifyError::RootMismatch)
        );
        let expected = proof.len();
        if !proof.is_empty() {
            let at = pick.index(proof.len());
            let mut flipped = proof.clone();
            flipped[at] = flip(&flipped[at], bit);
            prop_assert_eq!(
                verify_inclusion(index, size, &leaf, &flipped, &root_n),
                Err(VerifyError::RootMismatch)
            );
            // A dropped hash.
            let mut dropped = proof.clone();
            dropped.remove(at);
            prop_assert_eq!(
                verify_inclusion(index, size, &leaf, &dropped, &root_n),
                Err(VerifyError::WrongProofLength { expected, got: expected - 1 })
            );
            // A 31- and a 33-byte proof hash.
            let mut short = as_vecs(&proof);
            short[at].pop();
            prop_assert_eq!(
                verify_inclusion(index, size, &leaf, &short, &root_n),
                Err(VerifyError::WrongProofHashLength { position: at, got: 31 })
            );
            let mut long = as_vecs(&proof);
            long[at].push(0);
            prop_assert_eq!(
                verify_inclusion(index, size, &leaf, &long, &root_n),
                Err(VerifyError::WrongProofHashLength { position: at, got: 33 })
            );
        }
        // An extra trailing hash (here the root itself).
        let mut extra = proof.clone();
        extra.push(root_n);
        prop_assert_eq!(
            verify_inclusion(index, size, &leaf, &extra, &root_n),
            Err(VerifyError::WrongProofLength { expected, got: expected + 1 })
        );
        // 31- and 33-byte leaf hash and root.
        prop_assert_eq!(
            verify_inclusion(index, size, &leaf[..31], &proof, &root_n),
            Err(VerifyError::WrongHashLength { what: "leaf hash", got: 31 })
        );
        let mut long_root = root_n.to_vec();
        long_root.push(0);
        prop_assert_eq!(
            verify_inclusion(index, size, &leaf, &proof, &long_root),
            Err(VerifyError::WrongHashLength { what: "root", got: 33 })
        );
    }

    #[test]
    fn consistency_verifier_rejects_mutations(
        (first, second) in first_and_second(),
        pick in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let proof = consistency_proof(first, second, source()).expect("consistency");
        let (r1, r2) = (root(first), root(second));
        if first == second {
            // Equal sizes: empty proof, roots must match exactly.
            prop_assert!(proof.is_empty());
            prop_assert_eq!(
                verify_consistency(first, second, &r1, &flip(&r2, bit), &proof),
                Err(VerifyError::RootMismatch)
            );
            prop_assert!(verify_consistency(first, second, &r1, &r2, &[r1]).is_err());
            return Ok(());
        }
        prop_assert!(!proof.is_empty());
        // Neighbouring sizes, each with that tree's real root.
        prop_assert!(verify_consistency(first + 1, second, &root(first + 1), &r2, &proof).is_err());
        // first - 1 may be 0: the size-0 policy still needs an empty proof.
        prop_assert!(verify_consistency(first - 1, second, &root(first - 1), &r2, &proof).is_err());
        if (second as usize) < MAX {
            prop_assert!(verify_consistency(first, second + 1, &r1, &root(second + 1), &proof).is_err());
        }
        prop_assert!(verify_consistency(first, second - 1, &r1, &root(second - 1), &proof).is_err());
        // Flipped bits in either root or in a proof hash.
        prop_assert!(verify_consistency(first, second, &flip(&r1, bit), &r2, &proof).is_err());
        prop_assert!(verify_consistency(first, second, &r1, &flip(&r2, bit), &proof).is_err());
        let at = pick.index(proof.len());
        let mut flipped = proof.clone();
        flipped[at] = flip(&flipped[at], bit);
        prop_assert!(verify_consistency(first, second, &r1, &r2, &flipped).is_err());
        // Dropped and extra hashes are length errors.
        let expected = proof.len();
        let mut dropped = proof.clone();
        dropped.remove(at);
        prop_assert_eq!(
            verify_consistency(first, second, &r1, &r2, &dropped),
            Err(VerifyError::WrongProofLength { expected, got: expected - 1 })
        );
        let mut extra = proof.clone();
        extra.push(r2);
        prop_assert_eq!(
            verify_consistency(first, second, &r1, &r2, &extra),
            Err(VerifyError::WrongProofLength { expected, got: expected + 1 })
        );
        // 31- and 33-byte hashes anywhere.
        let mut short = as_vecs(&proof);
        short[at].pop();
        prop_assert_eq!(
            verify_consistency(first, second, &r1, &r2, &short),
            Err(VerifyError::WrongProofHashLength { position: at, got: 31 })
        );
        let mut long = as_vecs(&proof);
        long[at].push(0);
        prop_assert_eq!(
            verify_consistency(first, second, &r1, &r2, &long),
            Err(VerifyError::WrongProofHashLength { position: at, got: 33 })
        );
        prop_assert_eq!(
            verify_consistency(first, second, &r1[..31], &r2, &proof),
            Err(VerifyError::WrongHashLength { what: "first root", got: 31 })
        );
    }
}

#[test]
fn proof_alone_does_not_fix_the_tree_size() {
    // Documented on verify_inclusion: leaf 0 has the same proof shape in trees
    // of 3 and 4 leaves, so a size-3 proof also "verifies" for size 4 against
    // the size-3 root. Only the signed (size, root) pair rules this out, and
    // against the real size-4 root the proof fails.
    let leaves = all_leaves();
    let proof = inclusion_proof(0, 3, source()).expect("inclusion");
    assert_eq!(verify_inclusion(0, 4, &leaves[0], &proof, &root(3)), Ok(()));
    assert_eq!(
        verify_inclusion(0, 4, &leaves[0], &proof, &root(4)),
        Err(VerifyError::RootMismatch)
    );
}

// ---------------------------------------------------------------------------
// Sources, node lists and hostile sizes
// ---------------------------------------------------------------------------

/// Counts `hashes()` calls and requested nodes.
struct Counting<'a> {
    inner: &'a MemoryHashSource,
    calls: Cell<usize>,
    nodes: Cell<usize>,
}

impl HashSource for Counting<'_> {
    type Error = MissingNode;
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MissingNode> {
        self.calls.set(self.calls.get() + 1);
        self.nodes.set(self.nodes.get() + ids.len());
        self.inner.hashes(ids)
    }
}

#[test]
fn proofs_make_one_batched_source_call() {
    for size in [1u64, 2, 7, 8, 255, 256, 257, MAX as u64] {
        for index in [0, size / 2, size - 1] {
            let counting = Counting {
                inner: source(),
                calls: Cell::new(0),
                nodes: Cell::new(0),
            };
            let proof = inclusion_proof(index, size, &counting).expect("inclusion");
            assert_eq!(counting.calls.get(), usize::from(!proof.is_empty()));
            assert!(
                counting.nodes.get() <= 2 * 9,
                "size {size}: {} nodes",
                counting.nodes.get()
            );
        }
        let counting = Counting {
            inner: source(),
            calls: Cell::new(0),
            nodes: Cell::new(0),
        };
        consistency_proof(1.max(size / 3), size, &counting).expect("consistency");
        assert!(counting.calls.get() <= 1);
    }
}

/// A source that answers with the wrong number of hashes.
struct Short;
impl HashSource for Short {
    type Error = std::convert::Infallible;
    fn hashes(&self, _ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        Ok(vec![[0u8; 32]])
    }
}

#[test]
fn errors_from_sources_and_sizes() {
    assert!(matches!(
        inclusion_proof(5, 8, &Short),
        Err(ProofError::SourceCount {
            expected: 3,
            got: 1
        })
    ));
    assert!(matches!(
        inclusion_proof(3, 3, source()),
        Err(ProofError::InvalidSize {
            first: 3,
            second: 3,
            ..
        })
    ));
    assert!(matches!(
        inclusion_proof(0, 0, source()),
        Err(ProofError::InvalidSize { .. })
    ));
    assert!(matches!(
        consistency_proof(0, 5, source()),
        Err(ProofError::InvalidSize { .. })
    ));
    assert!(matches!(
        consistency_proof(6, 5, source()),
        Err(ProofError::InvalidSize { .. })
    ));
    assert_eq!(consistency_proof(5, 5, source()), Ok(vec![]));
    let empty = MemoryHashSource::new();
    assert_eq!(
        tree_root(3, &empty),
        Err(ProofError::Source(MissingNode(NodeId::new(1, 0))))
    );
    let map: std::collections::HashMap<NodeId, Hash> =
        [(NodeId::new(0, 0), all_leaves()[0])].into_iter().collect();
    assert_eq!(tree_root(1, &map), Ok(all_leaves()[0]));
    assert!(tree_root(2, &map).is_err());
}

#[test]
fn node_ids_and_hostile_sizes_do_not_panic() {
    assert_eq!(NodeId::new(2, 3).first_leaf(), 12);
    assert_eq!(NodeId::new(2, 3).end_leaf(), 16);
    assert_eq!(NodeId::new(63, 1).first_leaf(), 1 << 63);
    assert_eq!(NodeId::new(63, 1).end_leaf(), u64::MAX);
    assert_eq!(NodeId::new(255, 7).first_leaf(), u64::MAX);
    assert_eq!(NodeId::new(0, u64::MAX).end_leaf(), u64::MAX);
    assert_eq!(NodeId::new(200, 0).first_leaf(), 0);

    let big = u64::MAX;
    // Last leaf of the largest tree: all 63 proof hashes come from the right border.
    let groups = inclusion_proof_nodes(big - 1, big).expect("nodes");
    assert_eq!(groups.len(), 63);
    assert_eq!(inclusion_proof_nodes(0, big).expect("nodes").len(), 64);
    assert!(inclusion_proof_nodes(big, big).is_err());
    assert!(!consistency_proof_nodes(big - 1, big)
        .expect("nodes")
        .is_empty());
    assert!(!consistency_proof_nodes(1, big).expect("nodes").is_empty());
    assert_eq!(range_nodes(0, big).len(), 64);
    assert_eq!(range_nodes(big - 1, big), vec![NodeId::new(0, big - 1)]);

    let junk = vec![[7u8; 32]; 64];
    let leaf = [1u8; 32];
    assert_eq!(
        verify_inclusion(big - 1, big, &leaf, &junk[..63], &leaf),
        Err(VerifyError::RootMismatch)
    );
    assert!(verify_inclusion(big, big, &leaf, &junk, &leaf).is_err());
    assert!(verify_consistency(big - 1, big, &leaf, &leaf, &junk).is_err());
    assert!(verify_consistency(big, big - 1, &leaf, &leaf, &junk).is_err());
    assert!(verify_inclusion_rs_merkle(big - 1, big, &leaf, &junk[..1], &leaf).is_err());

    let mut full = CompactRange::from_hashes(big, junk.clone()).expect("64 hashes");
    assert_eq!(
        full.try_append(leaf, |_, _| {}),
        Err(CompactRangeError::Full)
    );
    full.append(leaf, |_, _| {});
    assert_eq!(full.size(), big);
}

proptest! {
    #[test]
    fn range_nodes_tile_the_range_exactly(begin in any::<u64>(), len in any::<u64>()) {
        let end = begin.saturating_add(len);
        let nodes = range_nodes(begin, end);
        let mut at = begin;
        for node in &nodes {
            prop_assert!(node.level < 64);
            prop_assert_eq!(node.first_leaf(), at);
            let size = 1u64 << node.level;
            // Aligned and complete.
            prop_assert_eq!(node.first_leaf() % size, 0);
            at = at.checked_add(size).expect("inside the range");
        }
        prop_assert_eq!(at, end);
        prop_assert!(nodes.len() <= 128);
    }

    #[test]
    fn hostile_u64_inputs_never_panic(
        a in any::<u64>(),
        b in any::<u64>(),
        n in 0usize..70,
        len in 0usize..40,
    ) {
        let proof = vec![vec![3u8; len]; n];
        let hashes = vec![[3u8; 32]; n];
        let _ = inclusion_proof_nodes(a, b);
        let _ = consistency_proof_nodes(a, b);
        let _ = verify_inclusion(a, b, &[1u8; 32], &proof, &[2u8; 32]);
        let _ = verify_consistency(a, b, &[1u8; 32], &[2u8; 32], &proof);
        let _ = verify_consistency(a, b, &[1u8; 32], &[2u8; 32], &hashes);
        let _ = verify_inclusion_rs_merkle(a, b, &[1u8; 32], &hashes, &[2u8; 32]);
        if a < b {
            let len = inclusion_proof_nodes(a, b).expect("valid").len();
            // Exact proof lengths agree between generator and verifier.
            let right_len = vec![[0u8; 32]; len];
            prop_assert_eq!(
                verify_inclusion(a, b, &[1u8; 32], &right_len, &[2u8; 32]),
                Err(VerifyError::RootMismatch)
            );
            // rs_merkle is reached only with the exact length, and copes with huge sizes.
            prop_assert_eq!(
                verify_inclusion_rs_merkle(a, b, &[1u8; 32], &right_len, &[2u8; 32]),
                Err(VerifyError::RootMismatch)
            );
        }
        if 0 < a && a < b {
            let len = consistency_proof_nodes(a, b).expect("valid").len();
            let right_len = vec![[0u8; 32]; len];
            let result = verify_consistency(a, b, &[1u8; 32], &[2u8; 32], &right_len);
            prop_assert!(matches!(
                result,
                Err(VerifyError::RootMismatch | VerifyError::FirstRootMismatch)
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// CompactRange
// ---------------------------------------------------------------------------

#[test]
fn compact_range_root_and_round_trip_for_every_size() {
    let leaves = all_leaves();
    let mut compact = CompactRange::new();
    let mut reported: Vec<NodeId> = Vec::new();
    for size in 0..=MAX {
        assert_eq!(compact.size(), size as u64);
        assert_eq!(compact.root(), root(size as u64), "size {size}");
        assert_eq!(root_of_leaf_hashes(&leaves[..size]), root(size as u64));
        // The stored edge is exactly the hashes of range_nodes(0, size).
        assert_eq!(compact.nodes(), range_nodes(0, size as u64));
        let stored = source().hashes(&compact.nodes()).expect("stored");
        assert_eq!(compact.hashes(), stored.as_slice());
        let rebuilt = CompactRange::from_hashes(size as u64, stored.clone()).expect("count");
        assert_eq!(rebuilt, compact);
        let mut wrong = stored.clone();
        wrong.push([0u8; 32]);
        assert!(matches!(
            CompactRange::from_hashes(size as u64, wrong),
            Err(CompactRangeError::WrongHashCount { .. })
        ));
        if size == MAX {
            break;
        }
        let mut this_append = Vec::new();
        compact.append(leaves[size], |id, hash| {
            assert_eq!(source().get(id), Some(*hash));
            this_append.push(id);
        });
        // The leaf first, then each completed subtree, in increasing level order.
        assert_eq!(this_append[0], NodeId::new(0, size as u64));
        for pair in this_append.windows(2) {
            assert_eq!(pair[1].level, pair[0].level + 1);
            assert_eq!(pair[1].index, pair[0].index / 2);
        }
        assert_eq!(
            this_append.len(),
            1 + (size as u64).trailing_ones() as usize
        );
        reported.extend(this_append);
    }
    // Every complete subtree was reported exactly once: n - popcount(n) + n in total.
    let n = MAX as u64;
    assert_eq!(reported.len() as u64, 2 * n - u64::from(n.count_ones()));
    reported.sort();
    reported.dedup();
    assert_eq!(reported.len() as u64, 2 * n - u64::from(n.count_ones()));
}

// ---------------------------------------------------------------------------
// rs_merkle cross-check
// ---------------------------------------------------------------------------

#[test]
fn rs_merkle_agrees_for_sizes_up_to_300() {
    let leaves = all_leaves();
    for size in 1..=300usize {
        let tree = MerkleTree::<Rfc6962Hasher>::from_leaves(&leaves[..size]);
        assert_eq!(tree.root(), Some(root(size as u64)), "size {size}");
        for (index, leaf) in leaves[..size].iter().enumerate() {
            let ours = inclusion_proof(index as u64, size as u64, source()).expect("inclusion");
            let theirs = tree.proof(&[index]);
            assert_eq!(theirs.proof_hashes(), ours.as_slice(), "{index} of {size}");
            let r = root(size as u64);
            assert_eq!(
                verify_inclusion_rs_merkle(index as u64, size as u64, leaf, &ours, &r),
                Ok(())
            );
            // With one extra trailing hash our wrapper rejects the proof...
            let mut extra = ours.clone();
            extra.push(r);
            assert_eq!(
                verify_inclusion_rs_merkle(index as u64, size as u64, leaf, &extra, &r),
                Err(VerifyError::WrongProofLength {
                    expected: ours.len(),
                    got: ours.len() + 1
                })
            );
            // ...while plain rs_merkle accepts it: this is why it is never trusted alone.
            assert!(MerkleProof::<Rfc6962Hasher>::new(extra).verify(r, &[index], &[*leaf], size));
        }
    }
}

#[test]
fn plain_rs_merkle_accepts_a_forged_multi_leaf_proof() {
    // rs-merkle PR #52: duplicate indices let a fake leaf ride along. Our wrapper
    // only ever checks one index, so it cannot be fooled this way.
    let leaves = &all_leaves()[..4];
    let tree = MerkleTree::<Rfc6962Hasher>::from_leaves(leaves);
    let r = tree.root().expect("root");
    let proof = tree.proof(&[0, 1]);
    let fake = leaf_hash(b"not in the tree");
    assert!(proof.verify(r, &[0, 1, 1], &[leaves[0], leaves[1], fake], 4));
}

//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2), hardened.
//!
//! The RFC algorithms accept some malformed input, so before running them we
//! check what they leave open:
//! - every hash must be exactly 32 bytes (a literal RFC implementation accepts
//!   an empty leaf hash and root for a one-leaf tree);
//! - the proof must have exactly the expected length, computed up front as in
//!   transparency-dev/merkle (`inner + border`), so that extra or missing
//!   hashes are reported as such rather than as a root mismatch.
//!
//! Both verifiers climb the same path, so they share its helpers, with the
//! decomposition transparency-dev/merkle's `proof/verify.go` uses (the design,
//! not its code): a path from a node to the root is `inner` hashes below the
//! level where it meets the path of the tree's last node, then `border` hashes
//! of complete left subtrees along the right border ([`PathShape`]). The inner
//! part is chained by the node's index bits ([`chain_inner`]); keeping only its
//! left siblings gives the root of the older tree that ends at that node
//! ([`chain_inner_right`]); the border part always hangs on the left
//! ([`chain_border_right`]). A consistency proof from `first` is the inclusion
//! path of leaf `first - 1`, started at the largest complete subtree that ends
//! there, so inclusion and consistency run the same three chains.
//!
//! Owns the verifiers and [`VerifyError`]. May import only `super::hash`.

use super::hash::{hash_from_slice, node_hash, Hash};

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A leaf hash or root is not 32 bytes long.
    #[error("{what} is {got} bytes long, expected 32")]
    WrongHashLength {
        /// Which input: "leaf hash", "root", "first root" or "second root".
        what: &'static str,
        /// Its actual length.
        got: usize,
    },
    /// A proof element is not 32 bytes long.
    #[error("proof hash {position} is {got} bytes long, expected 32")]
    WrongProofHashLength {
        /// Zero-based position in the proof.
        position: usize,
        /// Its actual length.
        got: usize,
    },
    /// The leaf index is not below the tree size (this includes size 0).
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The first tree is larger than the second.
    #[error("first tree size {first} is larger than second tree size {second}")]
    SizeOrder {
        /// The older tree size.
        first: u64,
        /// The newer tree size.
        second: u64,
    },
    /// The proof does not have the length the sizes require.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength {
        /// Exact length required by the index and sizes.
        expected: usize,
        /// Length supplied.
        got: usize,
    },
    /// The root rebuilt from the proof differs from the expected (second) root,
    /// or two trees of equal size have different roots.
    #[error("root computed from the proof does not match the expected root")]
    RootMismatch,
    /// The old root rebuilt from a consistency proof differs from the given first root.
    #[error("first root computed from the consistency proof does not match the given first root")]
    FirstRootMismatch,
}

/// How the path from a node to the root splits: `inner` hashes below the level
/// where it meets the path to the tree's last node, then `border` hashes along the
/// tree's right border (one per set bit of the node's index above that level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PathShape {
    /// Hashes chained by the index bits.
    inner: usize,
    /// Hashes of complete left subtrees on the right border.
    border: usize,
}

impl PathShape {
    /// Total proof hashes.
    fn len(self) -> usize {
        self.inner + self.border
    }
}

/// Levels below the meeting point of the paths to node `index` and to the last
/// node `size - 1` (both at the same level): the bit length of their XOR.
/// `index < size` is the caller's rule; a size of 0 is taken as 1.
fn inner_proof_size(index: u64, size: u64) -> usize {
    let last = size.saturating_sub(1);
    (u64::BITS - (index ^ last).leading_zeros()) as usize
}

/// The [`PathShape`] of node `index` in a level of `size` nodes (`index < size`).
fn decompose_inclusion_proof(index: u64, size: u64) -> PathShape {
    let inner = inner_proof_size(index, size);
    let above = u32::try_from(inner)
        .ok()
        .and_then(|shift| index.checked_shr(shift))
        .unwrap_or(0);
    PathShape {
        inner,
        border: above.count_ones() as usize,
    }
}

/// Bit `level` of `index` (0 beyond 63).
fn bit(index: u64, level: usize) -> u64 {
    u32::try_from(level)
        .ok()
        .and_then(|shift| index.checked_shr(shift))
        .unwrap_or(0)
        & 1
}

/// Climbs from `seed`, the node at `index` on its level, through `proof` (lowest
/// level first): where the index bit is 0 the sibling is on the right, else on
/// the left. Valid below the meeting point with the right border.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof
        .iter()
        .enumerate()
        .fold(seed, |node, (level, sibling)| {
            if bit(index, level) == 0 {
                node_hash(&node, sibling)
            } else {
                node_hash(sibling, &node)
            }
        })
}

/// Like [`chain_inner`], but skips right siblings: the result is the hash of the
/// older tree whose last node is `index`, as the same path sees it.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof
        .iter()
        .enumerate()
        .filter(|(level, _)| bit(index, *level) == 1)
        .fold(seed, |node, (_, sibling)| node_hash(sibling, &node))
}

/// Climbs the tree's right border: every sibling there is a complete left subtree.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |node, sibling| node_hash(sibling, &node))
}

/// Splits an exactly-sized path into its inner and border parts.
fn split_path(path: &[Hash], shape: PathShape) -> Result<(&[Hash], &[Hash]), VerifyError> {
    match path.split_at_checked(shape.inner) {
        Some(parts) if path.len() == shape.len() => Ok(parts),
        _ => Err(VerifyError::WrongProofLength {
            expected: shape.len(),
            got: path.len(),
        }),
    }
}

/// Exact length of the inclusion proof for leaf `index` in a tree of `size`
/// leaves, or `None` if `index >= size`.
pub(crate) fn inclusion_proof_len(index: u64, size: u64) -> Option<usize> {
    if index >= size {
        return None;
    }
    Some(decompose_inclusion_proof(index, size).len())
}

/// Fails with [`VerifyError::WrongProofLength`] unless `got == expected`.
fn check_len(expected: usize, got: usize) -> Result<(), VerifyError> {
    if got == expected {
        Ok(())
    } else {
        Err(VerifyError::WrongProofLength { expected, got })
    }
}

/// Converts every proof element to a [`Hash`](type@Hash), rejecting any that is not 32 bytes.
fn proof_hashes(proof: &[impl AsRef<[u8]>]) -> Result<Vec<Hash>, VerifyError> {
    proof
        .iter()
        .enumerate()
        .map(|(position, p)| {
            let bytes = p.as_ref();
            hash_from_slice(bytes).ok_or(VerifyError::WrongProofHashLength {
                position,
                got: bytes.len(),
            })
        })
        .collect()
}

/// Converts a leaf hash or root to a [`Hash`](type@Hash), naming it in the error.
fn one_hash(what: &'static str, bytes: &[u8]) -> Result<Hash, VerifyError> {
    hash_from_slice(bytes).ok_or(VerifyError::WrongHashLength {
        what,
        got: bytes.len(),
    })
}

/// Rebuilds the root from an inclusion proof (RFC 9162 §2.1.3.2 steps 1–4) after
/// checking the index, the exact proof length and all hash lengths.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[impl AsRef<[u8]>],
) -> Result<Hash, VerifyError> {
    let leaf = one_hash("leaf hash", leaf_hash)?;
    let Some(expected) = inclusion_proof_len(index, size) else {
        return Err(VerifyError::IndexOutOfRange { index, size });
    };
    check_len(expected, proof.len())?;
    let proof = proof_hashes(proof)?;
    // RFC 9162 §2.1.3.2: climb the inner part by the index bits, then the border.
    let (inner, border) = split_path(&proof, decompose_inclusion_proof(index, size))?;
    Ok(chain_border_right(chain_inner(leaf, inner, index), border))
}

/// RFC 9162 §2.1.3.2 with exact proof length check (inner + border, as in
/// transparency-dev/merkle) and 32-byte checks on every hash.
///
/// Note that the proof and root alone do not pin down `size`: for some sizes
/// n and n + 1 the algorithm performs the same hashing steps. The size must
/// therefore come from a signed checkpoint together with the root.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[impl AsRef<[u8]>],
    root: &[u8],
) -> Result<(), VerifyError> {
    let root = one_hash("root", root)?;
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    if computed != root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Where a consistency proof from `first` to `second` leaves (`0 < first <
/// second`) starts, and the shape of the path after its seed.
///
/// The proof starts at the largest complete subtree on the right edge of the old
/// tree, at level `shift`, whose index on that level is `(first - 1) >> shift`;
/// from there it is the inclusion path of leaf `first - 1` with its lowest
/// `shift` levels cut off. A power-of-two old tree is itself that subtree: the
/// verifier seeds the walk with the first root instead of a proof hash.
fn consistency_shape(first: u64, second: u64) -> (u64, bool, PathShape) {
    let shift = first.trailing_zeros();
    let full = decompose_inclusion_proof(first - 1, second);
    let shape = PathShape {
        inner: full.inner.saturating_sub(shift as usize),
        border: full.border,
    };
    ((first - 1) >> shift, !first.is_power_of_two(), shape)
}

/// RFC 9162 §2.1.4.2 with exact length check and 32-byte checks on every hash
/// (both roots and every proof element, whatever the sizes).
///
/// Size policy, which follows C2SP tlog-witness rather than transparency-dev:
/// - `first > second`: error ([`VerifyError::SizeOrder`]).
/// - `first == 0`: Ok iff the proof is empty, because every tree extends the
///   empty tree. The roots are not compared; the caller must check that an
///   empty tree's root equals [`empty_root`](super::empty_root).
///   (transparency-dev/merkle rejects `first == 0` outright.)
/// - `first == second`: Ok iff the proof is empty and the roots are equal.
/// - otherwise the RFC algorithm, with the proof length checked first.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &[u8],
    second_root: &[u8],
    proof: &[impl AsRef<[u8]>],
) -> Result<(), VerifyError> {
    let first_root = one_hash("first root", first_root)?;
    let second_root = one_hash("second root", second_root)?;
    let proof = proof_hashes(proof)?;
    if first > second {
        return Err(VerifyError::SizeOrder { first, second });
    }
    if first == 0 || first == second {
        check_len(0, proof.len())?;
        if first == second && first_root != second_root {
            return Err(VerifyError::RootMismatch);
        }
        return Ok(());
    }
    let (index, seeded, shape) = consistency_shape(first, second);
    check_len(usize::from(seeded) + shape.len(), proof.len())?;

    // RFC 9162 §2.1.4.2. Step 2: a power-of-two old tree is the seed itself.
    let (seed, path) = match proof.split_first() {
        Some((seed, path)) if seeded => (*seed, path),
        _ => (first_root, proof.as_slice()),
    };
    // Steps 3–7: the same path yields the old root (left siblings only) and the
    // new root (every sibling).
    let (inner, border) = split_path(path, shape)?;
    let fr = chain_border_right(chain_inner_right(seed, inner, index), border);
    let sr = chain_border_right(chain_inner(seed, inner, index), border);
    if fr != first_root {
        return Err(VerifyError::FirstRootMismatch);
    }
    if sr != second_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::hash::leaf_hash;
    use super::super::proof::inclusion_proof_nodes;
    use super::super::reference::{mth, path};
    use super::*;

    #[test]
    fn path_shapes() {
        // (index, size) -> (inner, border), worked by hand from the tree pictures.
        let cases = [
            (0, 1, 0, 0),
            (0, 2, 1, 0),
            (1, 2, 0, 1),
            (0, 3, 2, 0),
            (2, 3, 0, 1),
            (3, 7, 3, 0),
            (6, 7, 0, 2),
            (4, 8, 2, 1),
            (7, 8, 0, 3),
            (0, u64::MAX, 64, 0),
            (u64::MAX - 1, u64::MAX, 0, 63),
        ];
        for (index, size, inner, border) in cases {
            assert_eq!(
                decompose_inclusion_proof(index, size),
                PathShape { inner, border },
                "leaf {index} of {size}"
            );
            assert_eq!(inner_proof_size(index, size), inner);
            assert_eq!(inclusion_proof_len(index, size), Some(inner + border));
        }
        assert_eq!(inclusion_proof_len(3, 3), None);
        assert_eq!(inclusion_proof_len(0, 0), None);
    }

    #[test]
    fn path_shapes_match_the_proof_builder() {
        for size in 1..=70u64 {
            for index in 0..size {
                let nodes = inclusion_proof_nodes(index, size).map(|n| n.len());
                assert_eq!(
                    inclusion_proof_len(index, size),
                    nodes.ok(),
                    "{index}/{size}"
                );
            }
        }
    }

    #[test]
    fn consistency_shapes() {
        // (first, second) -> (start index, seeded, inner, border); the proof length is
        // seeded + inner + border (in the RFC's example tree, 3 -> 7 takes 4 hashes, 4 -> 7 one).
        let cases = [
            (1, 2, 0, false, 1, 0),
            (2, 3, 0, false, 1, 0),
            (3, 7, 2, true, 3, 0),
            (4, 7, 0, false, 1, 0),
            (6, 8, 2, true, 1, 1),
            (7, 8, 6, true, 1, 2),
            (3, 4, 2, true, 1, 1),
        ];
        for (first, second, index, seeded, inner, border) in cases {
            assert_eq!(
                consistency_shape(first, second),
                (index, seeded, PathShape { inner, border }),
                "{first} -> {second}"
            );
        }
    }

    #[test]
    fn chains() {
        let (s, a, b) = ([0u8; 32], [1u8; 32], [2u8; 32]);
        let h = |l: &Hash, r: &Hash| node_hash(l, r);
        // (index bits, chain_inner, chain_inner_right) over the proof [a, b]
        let cases = [
            (0b00, h(&h(&s, &a), &b), s),
            (0b01, h(&h(&a, &s), &b), h(&a, &s)),
            (0b10, h(&b, &h(&s, &a)), h(&b, &s)),
            (0b11, h(&b, &h(&a, &s)), h(&b, &h(&a, &s))),
        ];
        for (index, inner, inner_right) in cases {
            assert_eq!(chain_inner(s, &[a, b], index), inner, "{index:b}");
            assert_eq!(
                chain_inner_right(s, &[a, b], index),
                inner_right,
                "{index:b}"
            );
        }
        assert_eq!(chain_border_right(s, &[a, b]), h(&b, &h(&a, &s)));
        assert_eq!(chain_inner(s, &[], 5), s);
        assert_eq!(chain_inner_right(s, &[], 5), s);
        assert_eq!(chain_border_right(s, &[]), s);
    }

    /// Against the RFC's definitions: the inclusion path of leaf `m` chains to the
    /// root, and its left siblings alone chain to the root of the first `m + 1`
    /// leaves, which is what consistency verification relies on.
    #[test]
    fn chains_rebuild_both_roots() {
        let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=leaves.len() {
            let tree = &leaves[..size];
            for m in 0..size {
                let proof = path(m, tree).unwrap_or_default();
                let (index, n) = (m as u64, size as u64);
                let (inner, border) = split_path(&proof, decompose_inclusion_proof(index, n))
                    .unwrap_or_else(|e| panic!("{m}/{size}: {e}"));
                let new = chain_border_right(chain_inner(tree[m], inner, index), border);
                let old = chain_border_right(chain_inner_right(tree[m], inner, index), border);
                assert_eq!(new, mth(tree), "root, leaf {m} of {size}");
                assert_eq!(old, mth(&tree[..=m]), "old root, leaf {m} of {size}");
            }
        }
    }

    #[test]
    fn split_path_needs_the_exact_length() {
        let shape = PathShape {
            inner: 1,
            border: 1,
        };
        let two = [[0u8; 32]; 2];
        assert!(split_path(&two, shape).is_ok());
        for got in [0, 1, 3] {
            let path = vec![[0u8; 32]; got];
            assert_eq!(
                split_path(&path, shape),
                Err(VerifyError::WrongProofLength { expected: 2, got })
            );
        }
    }
}

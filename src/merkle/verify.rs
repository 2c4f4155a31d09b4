//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2), hardened.
//!
//! The RFC algorithms accept some malformed input, so before running them we
//! check what they leave open:
//! - every hash must be exactly 32 bytes (a literal RFC implementation accepts
//!   an empty leaf hash and root for a one-leaf tree);
//! - the proof must have exactly the expected length, computed up front as in
//!   transparency-dev/merkle (`inner + border`), so that extra or missing
//!   hashes are reported as such rather than as a root mismatch.

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

/// Number of proof hashes needed to climb from node `index` to the root of a
/// tree whose last node index (at the same level) is `last`.
///
/// `inner` hashes sit below the point where the paths to `index` and to `last`
/// meet; above it, one hash per set bit of the remaining index comes from the
/// tree's right border. Returns (inner, border).
fn path_shape(index: u64, last: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// Exact length of the inclusion proof for leaf `index` in a tree of `size`
/// leaves, or `None` if `index >= size`.
pub(crate) fn inclusion_proof_len(index: u64, size: u64) -> Option<usize> {
    if index >= size {
        return None;
    }
    let (inner, border) = path_shape(index, size - 1);
    Some((inner + border) as usize)
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
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let proof = proof_hashes(proof)?;

    // RFC 9162 §2.1.3.2, step by step. `fnode` and `snode` are the RFC's fn/sn.
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = leaf;
    for p in &proof {
        if snode == 0 {
            // Cannot happen after the length check; kept as the RFC's guard.
            return Err(VerifyError::WrongProofLength {
                expected,
                got: proof.len(),
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                // Skip the levels where this node has no right sibling.
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    Ok(r)
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

/// Exact length of a consistency proof from `first` to `second` leaves, for
/// `0 < first < second`.
fn consistency_proof_len(first: u64, second: u64) -> usize {
    // The proof starts at the largest complete subtree on the right edge of the
    // old tree, at level `shift`; from there it is an inclusion path.
    let shift = first.trailing_zeros();
    let (inner, border) = path_shape((first - 1) >> shift, (second - 1) >> shift);
    // A power-of-two old tree is itself that subtree: the verifier seeds the
    // walk with the first root instead of a proof hash.
    let seed = usize::from(!first.is_power_of_two());
    seed + (inner + border) as usize
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
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if first == second && first_root != second_root {
            return Err(VerifyError::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(first, second);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }

    // RFC 9162 §2.1.4.2. Step 2: a power-of-two old tree is the seed itself.
    let mut path = proof.iter();
    let seed = if first.is_power_of_two() {
        first_root
    } else {
        match path.next() {
            Some(h) => *h,
            None => {
                return Err(VerifyError::WrongProofLength {
                    expected,
                    got: proof.len(),
                })
            }
        }
    };
    // Steps 3–4: fn/sn, then skip the levels where the old tree's right edge
    // is a complete left subtree.
    let mut fnode = first - 1;
    let mut snode = second - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    let mut fr = seed;
    let mut sr = seed;
    // Step 6.
    for c in path {
        if snode == 0 {
            return Err(VerifyError::WrongProofLength {
                expected,
                got: proof.len(),
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(VerifyError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    if fr != first_root {
        return Err(VerifyError::FirstRootMismatch);
    }
    if sr != second_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

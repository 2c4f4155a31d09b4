//! Inclusion and consistency proofs (RFC 9162 §2.1.3.1 and §2.1.4.1) from stored hashes.
//!
//! The RFC defines PATH and SUBPROOF recursively over the leaves. Here the same
//! recursion runs over leaf *ranges* only (at most 64 steps), and each proof
//! element is named by the complete subtrees that make up its range. The hashes
//! are then fetched in one batch and folded, so a proof costs O(log n) reads
//! and never rebuilds the tree.

use std::convert::Infallible;

use super::compact::CompactRange;
use super::hash::Hash;
use super::node::NodeId;
use super::range::{fold_range, range_nodes, split_point};
use super::source::HashSource;

/// Why a proof or root could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E = Infallible> {
    /// The sizes or index do not describe a valid request: index >= size,
    /// first > second, or a size of 0 where a proof needs leaves.
    /// For inclusion requests `first` is the leaf index and `second` the tree size.
    #[error("invalid size: {reason} (got {first} and {second})")]
    InvalidSize {
        /// Which rule was broken.
        reason: &'static str,
        /// Leaf index (inclusion) or first tree size (consistency).
        first: u64,
        /// Tree size (inclusion) or second tree size (consistency).
        second: u64,
    },
    /// The hash source answered with the wrong number of hashes.
    #[error("hash source returned {got} hashes for {expected} requested nodes")]
    SourceCount {
        /// Number of node ids requested.
        expected: usize,
        /// Number of hashes returned.
        got: usize,
    },
    /// The hash source failed.
    #[error("hash source: {0}")]
    Source(E),
}

impl ProofError<Infallible> {
    /// Converts an error from the node-list functions (which never touch a
    /// source) into the error type of a source-backed call.
    pub fn widen<E>(self) -> ProofError<E> {
        match self {
            ProofError::InvalidSize {
                reason,
                first,
                second,
            } => ProofError::InvalidSize {
                reason,
                first,
                second,
            },
            ProofError::SourceCount { expected, got } => ProofError::SourceCount { expected, got },
            ProofError::Source(never) => match never {},
        }
    }
}

/// Node lists for the inclusion proof (RFC 9162 PATH) of leaf `index` in the tree
/// of size `size`: one inner Vec per proof element, leaf level first. Fold each
/// inner Vec's hashes with [`fold_range`] to get the element.
///
/// Errors if `index >= size` (which includes `size == 0`).
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    if index >= size {
        return Err(ProofError::InvalidSize {
            reason: "leaf index must be below tree size",
            first: index,
            second: size,
        });
    }
    // Walk PATH(m, D[lo:hi]) from the root down. Each step splits the range at
    // the largest power of two below its length; the half without the leaf is
    // a proof element. Elements are found top-down and listed bottom-up.
    let (mut lo, mut hi) = (0u64, size);
    let mut elements = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            elements.push(range_nodes(mid, hi));
            hi = mid;
        } else {
            elements.push(range_nodes(lo, mid));
            lo = mid;
        }
    }
    elements.reverse();
    Ok(elements)
}

/// Node lists for the consistency proof (RFC 9162 PROOF(first, D_second)),
/// one inner Vec per proof element in proof order. Fold each with [`fold_range`].
///
/// Defined for `0 < first <= second`; `first == second` gives an empty list.
/// `first == 0` is an error: the RFC does not define it, and under C2SP the
/// proof from the empty tree is simply empty, which callers produce themselves.
pub fn consistency_proof_nodes(first: u64, second: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::InvalidSize {
            reason: "consistency proofs need 0 < first <= second",
            first,
            second,
        });
    }
    // SUBPROOF(m, D[lo:hi], b) with m kept absolute: the old tree covers
    // [lo, first) of the current range. `complete` is the RFC's flag b: true
    // while the current range is still the left spine of the old tree, whose
    // root the verifier already knows.
    let (mut lo, mut hi) = (0u64, second);
    let mut complete = true;
    let mut elements = Vec::new();
    while first != hi {
        let mid = lo + split_point(hi - lo);
        if first <= mid {
            elements.push(range_nodes(mid, hi));
            hi = mid;
        } else {
            elements.push(range_nodes(lo, mid));
            lo = mid;
            complete = false;
        }
    }
    // The old tree ends exactly at this range: its hash is needed unless the
    // verifier knows it already (it is the whole old tree).
    if !complete {
        elements.push(range_nodes(lo, hi));
    }
    elements.reverse();
    Ok(elements)
}

/// Inclusion proof (RFC 9162 PATH) of leaf `index` in the tree of size `size`,
/// computed from stored hashes: every needed [`NodeId`] is collected first, then
/// one `source.hashes()` call is made (none for a one-leaf tree), then the hashes
/// are folded. O(log n) node reads; the tree is never rebuilt.
pub fn inclusion_proof<S: HashSource>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    let groups = inclusion_proof_nodes(index, size).map_err(ProofError::widen)?;
    fetch_and_fold(&groups, source)
}

/// Consistency proof (RFC 9162 PROOF(m, D_n)) for `0 < first <= second`
/// (`first == second` gives an empty proof). Same one-batch rule as
/// [`inclusion_proof`].
pub fn consistency_proof<S: HashSource>(
    first: u64,
    second: u64,
    source: &S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    let groups = consistency_proof_nodes(first, second).map_err(ProofError::widen)?;
    fetch_and_fold(&groups, source)
}

/// Root of the tree of the given size from stored hashes (size 0 gives the
/// empty-tree hash without touching the source).
pub fn tree_root<S: HashSource>(size: u64, source: &S) -> Result<Hash, ProofError<S::Error>> {
    let nodes = range_nodes(0, size);
    if nodes.is_empty() {
        return Ok(fold_range(&[]));
    }
    let hashes = fetch(&nodes, source)?;
    Ok(fold_range(&hashes))
}

/// The compact range (right edge) of the tree of the given size from stored hashes:
/// what appending to it, or checking its root, starts from.
pub fn tree_edge<S: HashSource>(
    size: u64,
    source: &S,
) -> Result<CompactRange, ProofError<S::Error>> {
    let nodes = range_nodes(0, size);
    let hashes = match nodes.is_empty() {
        true => Vec::new(),
        false => fetch(&nodes, source)?,
    };
    // `fetch` returned one hash per node, which is what `from_hashes` counts.
    CompactRange::from_hashes(size, hashes).map_err(|_| ProofError::SourceCount {
        expected: nodes.len(),
        got: nodes.len(),
    })
}

/// Fetches all groups' hashes in one call and folds each group into one element.
fn fetch_and_fold<S: HashSource>(
    groups: &[Vec<NodeId>],
    source: &S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    let all: Vec<NodeId> = groups.iter().flatten().copied().collect();
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = fetch(&all, source)?;
    let mut rest = hashes.as_slice();
    let mut proof = Vec::with_capacity(groups.len());
    for group in groups {
        // `fetch` checked the total count, so every split fits.
        let (mine, tail) = rest.split_at(group.len().min(rest.len()));
        proof.push(fold_range(mine));
        rest = tail;
    }
    Ok(proof)
}

/// One `source.hashes()` call, with the answer's length checked so that a
/// misbehaving source cannot cause an out-of-bounds read.
fn fetch<S: HashSource>(ids: &[NodeId], source: &S) -> Result<Vec<Hash>, ProofError<S::Error>> {
    let hashes = source.hashes(ids).map_err(ProofError::Source)?;
    if hashes.len() != ids.len() {
        return Err(ProofError::SourceCount {
            expected: ids.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, MemoryHashSource, MissingNode};

    /// The edge rebuilt from stored hashes is the one appending the same leaves builds,
    /// at every size across the power-of-two boundaries; a source that lacks a node or
    /// answers with the wrong count is an error, not a wrong edge.
    #[test]
    fn the_tree_edge_from_stored_hashes_is_the_appended_one() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let source = MemoryHashSource::from_leaf_hashes(&leaves);
        let mut appended = CompactRange::new();
        for size in 0..=leaves.len() as u64 {
            let edge = tree_edge(size, &source).unwrap();
            assert_eq!(edge.size(), size);
            assert_eq!(edge.hashes(), appended.hashes(), "size {size}");
            assert_eq!(
                edge.root(),
                tree_root(size, &source).unwrap(),
                "size {size}"
            );
            if let Some(leaf) = leaves.get(size as usize) {
                appended.append(*leaf, |_, _| {});
            }
        }
        let short = MemoryHashSource::from_leaf_hashes(&leaves[..3]);
        assert!(matches!(
            tree_edge(5, &short),
            Err(ProofError::Source(MissingNode(_)))
        ));
        /// A source that always answers one hash.
        struct One;
        impl HashSource for One {
            type Error = Infallible;
            fn hashes(&self, _ids: &[NodeId]) -> Result<Vec<Hash>, Infallible> {
                Ok(vec![[0; 32]])
            }
        }
        assert!(matches!(
            tree_edge(3, &One),
            Err(ProofError::SourceCount {
                expected: 2,
                got: 1
            })
        ));
    }
}

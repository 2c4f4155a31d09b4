//! The right edge of a growing tree ("compact range").
//!
//! A tree of size n is a run of complete subtrees given by
//! `range_nodes(0, n)`, one per set bit of n. Keeping only their hashes is
//! enough to append the next leaf and to compute the root, so the sequencer
//! never needs the whole tree in memory.

use super::hash::{node_hash, Hash};
use super::node::NodeId;
use super::range::{fold_range, range_nodes};

/// Why a [`CompactRange`] could not be built or extended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactRangeError {
    /// `from_hashes` got a different number of hashes than `range_nodes(0, size)` has nodes.
    #[error("compact range of size {size} needs {expected} hashes, got {got}")]
    WrongHashCount {
        /// Tree size that was requested.
        size: u64,
        /// Number of complete subtrees in `range_nodes(0, size)` (the popcount of `size`).
        expected: usize,
        /// Number of hashes supplied.
        got: usize,
    },
    /// The tree already has `u64::MAX` leaves; one more cannot be counted.
    #[error("tree is full: it already holds u64::MAX leaves")]
    Full,
}

/// The right edge of a growing tree: at most 64 hashes, enough to append and compute the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    /// Number of leaves in the tree.
    size: u64,
    /// Hashes of `range_nodes(0, size)`, left to right (largest subtree first).
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuild from the stored hashes of `range_nodes(0, size)` (in that order);
    /// error if the count is wrong.
    ///
    /// The hashes themselves cannot be checked here; compare [`CompactRange::root`]
    /// with a trusted root to detect corrupted input.
    pub fn from_hashes(size: u64, hashes: Vec<Hash>) -> Result<Self, CompactRangeError> {
        // One complete subtree per set bit of `size`.
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(CompactRangeError::WrongHashCount {
                size,
                expected,
                got: hashes.len(),
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of `range_nodes(0, size)`, left to right: what to persist to
    /// rebuild this range later with [`CompactRange::from_hashes`].
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The node ids that [`CompactRange::hashes`] belong to.
    pub fn nodes(&self) -> Vec<NodeId> {
        range_nodes(0, self.size)
    }

    /// Append a leaf hash. `on_node` is called for the leaf (level 0) and for every
    /// complete subtree it completes, in increasing level order, so the caller can
    /// store them (e.g. level 0 and every 8th level into tiles).
    ///
    /// A tree that already holds `u64::MAX` leaves cannot grow: the call then does
    /// nothing. Use [`CompactRange::try_append`] to be told about it.
    pub fn append(&mut self, leaf: Hash, on_node: impl FnMut(NodeId, &Hash)) {
        // Ignoring `Full` is the documented behaviour; 2^64 - 1 appends cannot
        // happen in practice, and this keeps the signature panic-free.
        let _ = self.try_append(leaf, on_node);
    }

    /// Like [`CompactRange::append`], but reports a full tree instead of ignoring the leaf.
    pub fn try_append(
        &mut self,
        leaf: Hash,
        mut on_node: impl FnMut(NodeId, &Hash),
    ) -> Result<(), CompactRangeError> {
        let new_size = self.size.checked_add(1).ok_or(CompactRangeError::Full)?;
        let mut hash = leaf;
        let mut id = NodeId::new(0, self.size);
        on_node(id, &hash);
        // Each trailing 1 bit of the old size is a complete left sibling at the
        // right edge; the new node completes it into a subtree one level up.
        while id.index & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                // Unreachable while the invariant `hashes.len() == popcount(size)` holds.
                break;
            };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            on_node(id, &hash);
        }
        self.hashes.push(hash);
        self.size = new_size;
        Ok(())
    }

    /// Root of the tree (`MTH`); the empty-tree hash for size 0.
    pub fn root(&self) -> Hash {
        fold_range(&self.hashes)
    }
}

/// `MTH` of a list of leaf hashes (RFC recursion; an empty list gives
/// [`empty_root`](super::empty_root)).
///
/// Runs in O(n) time and O(log n) memory by appending to a [`CompactRange`],
/// which produces the same tree shape as the RFC's largest-power-of-two split.
pub fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for leaf in leaves {
        range.append(*leaf, |_, _| {});
    }
    range.root()
}

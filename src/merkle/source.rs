//! Where stored hashes of complete subtrees come from.
//!
//! Proof generation only reads hashes of complete subtrees, which never change
//! once written. The storage behind them (tiles, a database, memory) is hidden
//! behind [`HashSource`] so the proof code stays free of I/O.

use std::collections::HashMap;

use super::compact::CompactRange;
use super::hash::Hash;
use super::node::NodeId;

/// Where stored hashes of complete subtrees come from (a tile store, a map, a Vec...).
pub trait HashSource {
    /// Why a lookup failed (missing node, I/O error, ...).
    type Error;
    /// The hashes of the given complete subtrees, in the same order as `ids`.
    ///
    /// Proof functions call this at most once per proof, with every id they need,
    /// so an implementation can batch its reads.
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

impl<T: HashSource + ?Sized> HashSource for &T {
    type Error = T::Error;
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        (**self).hashes(ids)
    }
}

/// A requested node is not stored (the in-memory sources' error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no stored hash for node level {} index {}", .0.level, .0.index)]
pub struct MissingNode(pub NodeId);

/// Any map from node id to hash is a source; absent ids give [`MissingNode`].
impl<S: std::hash::BuildHasher> HashSource for HashMap<NodeId, Hash, S> {
    type Error = MissingNode;
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MissingNode> {
        ids.iter()
            .map(|id| self.get(id).copied().ok_or(MissingNode(*id)))
            .collect()
    }
}

/// An append-only, in-memory log of leaf hashes that stores every complete
/// subtree hash, for tests, benchmarks and tools.
///
/// Nodes are kept per level in append order, so node `(level, index)` is
/// `levels[level][index]`: about two hashes (64 bytes) per leaf, no map overhead.
#[derive(Clone, Debug, Default)]
pub struct MemoryHashSource {
    /// `levels[l][i]` is the hash of `NodeId::new(l, i)`.
    levels: Vec<Vec<Hash>>,
    /// Right edge of the tree, to know which subtrees an append completes.
    edge: CompactRange,
}

impl MemoryHashSource {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log holding `leaves` (leaf hashes, not entries) in order.
    pub fn from_leaf_hashes(leaves: &[Hash]) -> Self {
        let mut source = Self::new();
        for leaf in leaves {
            source.push(*leaf);
        }
        source
    }

    /// Appends one leaf hash and stores every subtree it completes.
    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.edge.append(leaf, |id, hash| {
            let level = usize::from(id.level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            // Appends complete subtrees strictly left to right, so the id's
            // index is always the next free slot of its level.
            if let Some(row) = levels.get_mut(level) {
                row.push(*hash);
            }
        });
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// Root of the whole log (the empty-tree hash for an empty log).
    pub fn root(&self) -> Hash {
        self.edge.root()
    }

    /// The stored hash of one complete subtree, if present.
    pub fn get(&self, id: NodeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(id.level))?;
        row.get(usize::try_from(id.index).ok()?).copied()
    }
}

impl HashSource for MemoryHashSource {
    type Error = MissingNode;
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MissingNode> {
        ids.iter()
            .map(|id| self.get(*id).ok_or(MissingNode(*id)))
            .collect()
    }
}

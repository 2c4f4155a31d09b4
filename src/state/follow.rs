//! Following a log's commitments ([`StateFollower`]): the map kept leaf by leaf, every
//! `StateCommitment` leaf checked against it, and snapshots of the map at the most
//! recent committed sizes, from which lookup proofs are served. The sequencer, replay
//! and `monitor --audit` all follow the log through this one type.

use std::collections::BTreeMap;

use thiserror::Error;

use super::project::{StateError, StateMap};
use super::tree::Tree;
use crate::catalog::{Catalog, Effect};
use crate::merkle::Hash;

/// How many committed snapshots a follower keeps by default. Snapshots share every
/// unchanged node, so each costs about the keys its batch changed.
pub const DEFAULT_KEPT_COMMITMENTS: usize = 4096;

/// Why following failed.
#[derive(Debug, Error)]
pub enum FollowError {
    /// A `StateCommitment` leaf commits to a root the map does not have: the log's
    /// operator committed to a state the leaves do not produce.
    #[error(
        "bad-state-commitment: leaf {index} commits to map root {} for size {index}, \
         but the leaves give {}",
        hex::encode(.committed),
        hex::encode(.computed)
    )]
    BadCommitment {
        /// The commitment leaf's index (= the size it commits to).
        index: u64,
        /// The root the leaf carries.
        committed: Hash,
        /// The root recomputed from the leaves.
        computed: Hash,
    },
    /// The map could not be computed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A committed snapshot: the map of the state after the first `tree_size` leaves,
/// committed by leaf `tree_size`.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The size the root is for (= the commitment leaf's index).
    pub tree_size: u64,
    /// The map as of that size.
    pub tree: Tree,
}

/// The map of a log being applied leaf by leaf, and its recent committed snapshots.
#[derive(Clone, Debug)]
pub struct StateFollower {
    map: StateMap,
    committed: BTreeMap<u64, Tree>,
    keep: usize,
}

impl StateFollower {
    /// A follower of a log from leaf 0 (nothing applied yet).
    pub fn new(keep: usize) -> StateFollower {
        StateFollower {
            map: StateMap::new(),
            committed: BTreeMap::new(),
            keep: keep.max(1),
        }
    }

    /// A follower of `catalog` as applied so far (start-up: the catalog was rebuilt
    /// without a follower). The last commitment's snapshot is kept when the map of its
    /// size is the current one (no leaf but commitments after it), which is the case
    /// whenever the sequencer committed at the end of its last batch.
    pub fn from_catalog(catalog: &Catalog, keep: usize) -> Result<StateFollower, StateError> {
        let mut follower = StateFollower {
            map: StateMap::build(catalog)?,
            committed: BTreeMap::new(),
            keep: keep.max(1),
        };
        if let Some(&last) = catalog.commitments().last() {
            if last + 1 == catalog.applied_size() {
                follower.committed.insert(last, follower.map.tree());
            }
        }
        Ok(follower)
    }

    /// Follows leaf `index` for a reader that keeps a map only once the log commits to
    /// one (replay, `monitor --audit`): nothing until the first `StateCommitment`, then
    /// the map is built from `catalog` (a commitment changes nothing in it) and followed
    /// from there on. Logs that never commit cost nothing.
    pub fn follow_lazily(
        slot: &mut Option<StateFollower>,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<(), FollowError> {
        if slot.is_none() && matches!(effect, Effect::StateCommitted { .. }) {
            *slot = Some(StateFollower {
                map: StateMap::build(catalog)?,
                committed: BTreeMap::new(),
                keep: DEFAULT_KEPT_COMMITMENTS,
            });
        }
        match slot {
            Some(follower) => follower.after_apply(catalog, index, effect),
            None => Ok(()),
        }
    }

    /// Updates the map for leaf `index` just applied to `catalog` with `effect`; a
    /// commitment is checked against the map and its snapshot kept. On a bad
    /// commitment the follower is unchanged and the error carries the evidence.
    pub fn after_apply(
        &mut self,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<(), FollowError> {
        if let Effect::StateCommitted { tree_size, root } = effect {
            let computed = self.map.root();
            if *root != computed || *tree_size != index {
                return Err(FollowError::BadCommitment {
                    index,
                    committed: *root,
                    computed,
                });
            }
            self.committed.insert(index, self.map.tree());
            while self.committed.len() > self.keep {
                self.committed.pop_first();
            }
            return Ok(());
        }
        self.map.apply(catalog, effect)?;
        Ok(())
    }

    /// The current map root (the state after every leaf applied).
    pub fn root(&self) -> Hash {
        self.map.root()
    }

    /// The current map.
    pub fn map(&self) -> &StateMap {
        &self.map
    }

    /// The newest kept commitment at a size below `below` (a tree size: commitment
    /// leaf `i` is in a tree of size `i + 1` or more).
    pub fn committed_below(&self, below: u64) -> Option<Committed> {
        self.committed
            .range(..below)
            .next_back()
            .map(|(size, tree)| Committed {
                tree_size: *size,
                tree: tree.clone(),
            })
    }

    /// The kept commitment of exactly `tree_size`.
    pub fn committed_at(&self, tree_size: u64) -> Option<Committed> {
        self.committed.get(&tree_size).map(|tree| Committed {
            tree_size,
            tree: tree.clone(),
        })
    }
}

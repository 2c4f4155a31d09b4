//! State commitments in the engine (`log-format/state.md` §5): the map of the catalog
//! state kept beside the catalog, and the `StateCommitment` leaf the sequencer appends
//! at the end of every `every`-th batch, carrying the map root for the tree size before
//! it. The map is updated leaf by leaf (only the keys a leaf changed), under the same
//! write hold as the catalog.
//!
//! At start-up the map is built from the rebuilt catalog; the log's own commitments are
//! not re-checked there (replay and `monitor --audit` do that, from the entries alone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::catalog::{Catalog, CatalogError, Effect};
use crate::state::{Committed, FollowError, StateError, StateFollower, DEFAULT_KEPT_COMMITMENTS};

/// The engine's state commitments: off, or a follower and its schedule.
pub(crate) struct StateCommits {
    /// Commit after every `every`-th batch that appended something (0: never).
    every: u64,
    /// Test hook: commit a wrong root (one bit flipped), to prove monitors catch it.
    wrong_root: bool,
    /// Batches since the last commitment.
    batches: AtomicU64,
    follower: RwLock<Option<StateFollower>>,
}

impl StateCommits {
    /// Starts committing every `every` batches (0: off) for a log whose catalog is
    /// `catalog`.
    pub fn start(
        every: u64,
        wrong_root: bool,
        catalog: &Catalog,
    ) -> Result<StateCommits, StateError> {
        let follower = if every > 0 {
            Some(StateFollower::from_catalog(
                catalog,
                DEFAULT_KEPT_COMMITMENTS,
            )?)
        } else {
            None
        };
        Ok(StateCommits {
            every,
            wrong_root,
            batches: AtomicU64::new(0),
            follower: RwLock::new(follower),
        })
    }

    /// Updates the map for leaf `index` just applied (the caller holds the catalog's
    /// write lock, so the map and the catalog move together).
    pub fn after_apply(
        &self,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<(), FollowError> {
        match self.write().as_mut() {
            Some(follower) => follower.after_apply(catalog, index, effect),
            None => Ok(()),
        }
    }

    /// Counts a batch that appended entries; true when it must end with a commitment.
    pub fn due(&self) -> bool {
        if self.every == 0 {
            return false;
        }
        let n = self.batches.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.every {
            self.batches.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Appends the commitment for the state after `index` leaves to `catalog` and the
    /// map; returns the leaf's bytes, or `None` when commitments are off.
    pub fn commit(
        &self,
        catalog: &mut Catalog,
        index: u64,
        at_ms: u64,
    ) -> Result<Option<Vec<u8>>, CommitStateError> {
        let mut guard = self.write();
        let Some(follower) = guard.as_mut() else {
            return Ok(None);
        };
        let mut root = follower.root();
        if self.wrong_root {
            root[0] ^= 1;
        }
        let leaf = Catalog::state_commitment_leaf(index, &root, at_ms)?;
        let effect = catalog.apply(index, &leaf)?;
        if !self.wrong_root {
            follower.after_apply(catalog, index, &effect)?;
        }
        Ok(Some(leaf))
    }

    /// The newest commitment in a tree of size `tree_size` that the map still has.
    pub fn committed_below(&self, tree_size: u64) -> Option<Committed> {
        self.read().as_ref()?.committed_below(tree_size)
    }

    /// The commitment of exactly `tree_size`, if the map still has it.
    pub fn committed_at(&self, tree_size: u64) -> Option<Committed> {
        self.read().as_ref()?.committed_at(tree_size)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<StateFollower>> {
        self.follower.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<StateFollower>> {
        self.follower.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a commitment could not be appended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitStateError {
    /// The leaf could not be built or applied.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The map could not follow it.
    #[error(transparent)]
    Follow(#[from] FollowError),
}

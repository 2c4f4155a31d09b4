//! Following a log's commitments ([`StateFollower`]): the map kept leaf by leaf and
//! every `StateCommitment` leaf checked against the map of the size it names. Replay
//! and `monitor --audit` follow the log through this one type; the sequencer keeps its
//! map on a thread of its own (`log::state_commit`) and commits earlier sizes.
//!
//! A commitment at leaf `c` names a size `N` with `P < N ≤ c` and `c − N <`
//! [`MAX_COMMIT_LAG`], where `P` is the previous commitment's leaf (`state.md` §5); the
//! first commitment of a log has `N = c`. So a follower keeps the roots of the sizes
//! since the last commitment, at most [`MAX_COMMIT_LAG`] of them (32 bytes each).

use std::collections::{BTreeMap, VecDeque};

use thiserror::Error;

use super::project::{StateError, StateMap};
use super::tree::Tree;
use crate::catalog::{Catalog, Effect};
use crate::merkle::Hash;

/// How many committed snapshots the server keeps by default. Snapshots share every
/// unchanged node, so each costs about the keys its batches changed.
pub const DEFAULT_KEPT_COMMITMENTS: usize = 4096;

/// How far behind its own leaf a commitment may name its size: `c − N` is below this.
pub const MAX_COMMIT_LAG: u64 = 1 << 16;

/// How many of the newest sizes a follower that keeps its commitments
/// ([`StateFollower::follow_lazily_keeping`]) keeps the map of: a commitment naming an
/// older size is not kept (nor are those before it). Commitments name the end of the
/// batch before, so this is far more than they need, and it bounds what the snapshots of
/// the sizes between two commitments hold on to.
pub const KEPT_SIZES: usize = 4096;

/// Why following failed.
#[derive(Debug, Error)]
pub enum FollowError {
    /// A `StateCommitment` leaf commits to a root the map does not have: the log's
    /// operator committed to a state the leaves do not produce.
    #[error(
        "bad-state-commitment: leaf {index} commits to map root {} for size {tree_size}, \
         but the leaves give {}",
        hex::encode(.committed),
        hex::encode(.computed)
    )]
    BadCommitment {
        /// The commitment leaf's index.
        index: u64,
        /// The size it commits to.
        tree_size: u64,
        /// The root the leaf carries.
        committed: Hash,
        /// The root recomputed from the leaves.
        computed: Hash,
    },
    /// A `StateCommitment` leaf names a size it may not name (not after the previous
    /// commitment, after itself, or too far behind it).
    #[error(
        "bad-state-commitment: leaf {index} commits to size {tree_size}, which a \
         commitment there may not name (allowed: {allowed})"
    )]
    BadSize {
        /// The commitment leaf's index.
        index: u64,
        /// The size it commits to.
        tree_size: u64,
        /// The sizes it could have named.
        allowed: String,
    },
    /// The map could not be computed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A committed snapshot: the map of the state after the first `tree_size` leaves,
/// committed by leaf `leaf_index` (`tree_size ≤ leaf_index`).
#[derive(Clone, Debug)]
pub struct Committed {
    /// The size the root is for.
    pub tree_size: u64,
    /// The commitment leaf's index (its receipt proves the commitment).
    pub leaf_index: u64,
    /// The map as of `tree_size`.
    pub tree: Tree,
}

/// The map of a log being applied leaf by leaf, and the roots of the sizes a next
/// commitment may name.
#[derive(Clone, Debug)]
pub struct StateFollower {
    map: StateMap,
    /// (first size, roots of that size and the following ones), contiguous.
    roots: VecDeque<Hash>,
    first: u64,
    /// The last commitment's leaf index.
    last_commitment: Option<u64>,
    /// Built at a leaf of a catalog restored from a snapshot, not followed from leaf 0:
    /// the first commitment it sees may name a size before its first root, which it
    /// cannot check (see [`StateFollower::follow_lazily_from`]).
    blind: bool,
    /// The committed snapshots kept to serve proofs from (a frontend's projection).
    kept: Kept,
}

/// What a follower keeps to serve lookup proofs as the sequencer does: the maps of the
/// newest sizes since the last commitment, and the commitments made from them.
#[derive(Clone, Debug, Default)]
struct Kept {
    /// How many commitments to keep (0: none, and no maps of sizes either).
    commitments: usize,
    /// The maps of the newest sizes (at most [`KEPT_SIZES`]), the last the current one.
    trees: VecDeque<Tree>,
    /// Commitment leaf index → the commitment, contiguous in log order: the newest
    /// `commitments` of them, none skipped.
    committed: BTreeMap<u64, Committed>,
}

impl StateFollower {
    /// A follower of a log from leaf 0 (nothing applied yet).
    pub fn new() -> StateFollower {
        StateFollower::at(StateMap::new(), 0, None)
    }

    fn at(map: StateMap, size: u64, last_commitment: Option<u64>) -> StateFollower {
        let mut roots = VecDeque::new();
        roots.push_back(map.root());
        StateFollower {
            map,
            roots,
            first: size,
            last_commitment,
            blind: false,
            kept: Kept::default(),
        }
    }

    /// Follows leaf `index` for a reader that keeps a map only once the log commits to
    /// one (replay, `monitor --audit`): nothing until the first `StateCommitment`, then
    /// the map is built from `catalog` (a commitment changes nothing in it) and followed
    /// from there on. Logs that never commit cost nothing. The first commitment of a log
    /// names its own index (`state.md` §5), so the map built there is the one to check.
    pub fn follow_lazily(
        slot: &mut Option<StateFollower>,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<(), FollowError> {
        StateFollower::follow_lazily_from(slot, catalog, index, effect, 0)
    }

    /// [`StateFollower::follow_lazily`] for a reader whose catalog was restored from a
    /// snapshot of the first `first` leaves and applied from there (a frontend's
    /// projection). Its map is built at the first commitment after the restore, so that
    /// commitment may name a size whose root it never had: it is taken unchecked (the
    /// sequencer checked it, and a full replay or `monitor --audit` checks every one).
    /// Every later commitment is checked as in a replay from leaf 0.
    pub fn follow_lazily_from(
        slot: &mut Option<StateFollower>,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
        first: u64,
    ) -> Result<(), FollowError> {
        StateFollower::follow_lazily_keeping(slot, catalog, index, effect, first, 0)
    }

    /// [`StateFollower::follow_lazily_from`], keeping the snapshots of the newest `keep`
    /// commitments it checked (or took, for the first after a restore) whose maps it
    /// has, so that lookup proofs can be served from them as the sequencer serves them
    /// ([`StateFollower::committed_at`]). A frontend's projection keeps them; replay
    /// and audits pass 0 and keep nothing more than before.
    pub fn follow_lazily_keeping(
        slot: &mut Option<StateFollower>,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
        first: u64,
        keep: usize,
    ) -> Result<(), FollowError> {
        if slot.is_none() && matches!(effect, Effect::StateCommitted { .. }) {
            let mut follower = StateFollower::at(StateMap::build(catalog)?, index, None);
            follower.blind = first > 0;
            if keep > 0 {
                follower.kept.commitments = keep;
                follower.kept.trees.push_back(follower.map.tree());
            }
            *slot = Some(follower);
        }
        match slot {
            Some(follower) => follower.after_apply(catalog, index, effect),
            None => Ok(()),
        }
    }

    /// Updates the map for leaf `index` just applied to `catalog` with `effect`; a
    /// commitment is checked against the root of the size it names. On a bad
    /// commitment the follower is unchanged and the error carries the evidence.
    pub fn after_apply(
        &mut self,
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<(), FollowError> {
        if let Effect::StateCommitted { tree_size, root } = effect {
            let n = *tree_size;
            if !self.before_its_roots(index, n) {
                let computed = self.root_at(index, n)?;
                if *root != computed {
                    return Err(FollowError::BadCommitment {
                        index,
                        tree_size: n,
                        committed: *root,
                        computed,
                    });
                }
            }
            self.keep_commitment(index, n);
            // A next commitment names a size after this leaf.
            self.roots.clear();
            self.first = index + 1;
            self.roots.push_back(self.map.root());
            self.last_commitment = Some(index);
            return Ok(());
        }
        self.map.apply(catalog, effect)?;
        self.roots.push_back(self.map.root());
        while self.roots.len() as u64 > MAX_COMMIT_LAG {
            self.roots.pop_front();
            self.first += 1;
        }
        if self.kept.commitments > 0 {
            self.kept.trees.push_back(self.map.tree());
            while self.kept.trees.len() > KEPT_SIZES {
                self.kept.trees.pop_front();
            }
        }
        Ok(())
    }

    /// Keeps the commitment at leaf `index` to size `n` (already checked), when this
    /// follower keeps commitments: with the map of size `n` if it still has it, else
    /// none before it either, so that the kept ones never skip one (a lookup or a
    /// history served from them is the sequencer's, or not served here at all).
    fn keep_commitment(&mut self, index: u64, n: u64) {
        let kept = &mut self.kept;
        if kept.commitments == 0 {
            return;
        }
        // The sizes run to `current`, whose map is the last kept.
        let current = self.first + self.roots.len() as u64 - 1;
        let tree = current
            .checked_sub(n)
            .and_then(|back| usize::try_from(back).ok())
            .and_then(|back| kept.trees.len().checked_sub(back + 1))
            .and_then(|at| kept.trees.get(at).cloned());
        match tree {
            Some(tree) => {
                kept.committed.insert(
                    index,
                    Committed {
                        tree_size: n,
                        leaf_index: index,
                        tree,
                    },
                );
                while kept.committed.len() > kept.commitments {
                    kept.committed.pop_first();
                }
            }
            None => kept.committed.clear(),
        }
        // The commitment leaf changes nothing: the current map is the next size's.
        let now = self.map.tree();
        kept.trees.clear();
        kept.trees.push_back(now);
    }

    /// The commitments kept ([`StateFollower::follow_lazily_keeping`]), as of the
    /// leaves applied so far: a copy, for readers that must not hold up the follower.
    pub fn kept_commitments(&self) -> KeptCommitments {
        let newest = self.kept.committed.last_key_value().map(|(&leaf, _)| leaf);
        KeptCommitments {
            committed: self.kept.committed.clone(),
            newest_is_last: newest.is_some() && newest == self.last_commitment,
        }
    }

    /// Whether the commitment at leaf `index` naming size `n` cannot be checked here: a
    /// blind follower's first, naming a size (not after `index`) before its first root.
    fn before_its_roots(&self, index: u64, n: u64) -> bool {
        self.blind && self.last_commitment.is_none() && n < self.first && n <= index
    }

    /// The root of size `n` for a commitment at leaf `index`, if it may name it.
    fn root_at(&self, index: u64, n: u64) -> Result<Hash, FollowError> {
        let lowest = match self.last_commitment {
            Some(p) => (p + 1).max(index.saturating_sub(MAX_COMMIT_LAG - 1)),
            None => index,
        };
        let bad = || FollowError::BadSize {
            index,
            tree_size: n,
            allowed: format!("{lowest} to {index}"),
        };
        if n < lowest || n > index || n < self.first {
            return Err(bad());
        }
        // The roots run from size `first` to `index` (the current map).
        self.roots
            .get((n - self.first) as usize)
            .copied()
            .ok_or_else(bad)
    }

    /// The current map root (the state after every leaf applied).
    pub fn root(&self) -> Hash {
        self.map.root()
    }

    /// The current map.
    pub fn map(&self) -> &StateMap {
        &self.map
    }
}

/// The commitments a follower kept, with their maps, to serve lookup proofs from
/// ([`StateFollower::kept_commitments`]): answers as the sequencer's `state_commits`
/// gives them, or none.
#[derive(Clone, Debug, Default)]
pub struct KeptCommitments {
    committed: BTreeMap<u64, Committed>,
    /// Whether the newest kept is the newest the follower followed.
    newest_is_last: bool,
}

impl KeptCommitments {
    /// The newest commitment, if it was kept (`None` when none was, or when the
    /// newest one followed could not be).
    pub fn newest(&self) -> Option<Committed> {
        if !self.newest_is_last {
            return None;
        }
        self.committed.last_key_value().map(|(_, c)| c.clone())
    }

    /// The kept commitment to exactly `tree_size` (the newest, if several name it).
    pub fn at(&self, tree_size: u64) -> Option<Committed> {
        self.committed
            .values()
            .rev()
            .find(|c| c.tree_size == tree_size)
            .cloned()
    }

    /// The kept commitments to sizes from `from` to `to`, oldest first, at most `limit`
    /// (as the sequencer lists them for a history).
    pub fn between(&self, from: u64, to: u64, limit: usize) -> Vec<Committed> {
        self.committed
            .range(from..)
            .map(|(_, c)| c)
            .filter(|c| c.tree_size >= from && c.tree_size <= to)
            .take(limit)
            .cloned()
            .collect()
    }
}

impl Default for StateFollower {
    fn default() -> Self {
        StateFollower::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DecisionKind;

    /// A leaf that changes nothing in the map (a policy), and a commitment.
    fn policy() -> Effect {
        Effect::Decided {
            kind: DecisionKind::PolicySet,
            entry: None,
        }
    }

    fn commitment(tree_size: u64, root: Hash) -> Effect {
        Effect::StateCommitted { tree_size, root }
    }

    /// What a keeping follower keeps: each checked commitment with the map of the size it
    /// names, the newest `keep` of them; a commitment naming a size whose map is no
    /// longer kept drops every earlier one too (so none is ever skipped), and the newest
    /// is answered only while it is the newest followed. A follower that keeps nothing
    /// (replay, audits) keeps nothing.
    #[test]
    fn a_keeping_follower_keeps_the_newest_commitments_and_never_skips_one() {
        let catalog = Catalog::new();
        let empty = StateMap::new().root();
        let follow = |slot: &mut Option<StateFollower>, from: u64, to: u64, keep: usize| {
            for i in from..to {
                StateFollower::follow_lazily_keeping(slot, &catalog, i, &policy(), 0, keep)
                    .unwrap();
            }
        };
        let commit = |slot: &mut Option<StateFollower>, index: u64, size: u64, keep: usize| {
            StateFollower::follow_lazily_keeping(
                slot,
                &catalog,
                index,
                &commitment(size, empty),
                0,
                keep,
            )
            .unwrap();
        };
        let sizes = |kept: &KeptCommitments| -> Vec<(u64, u64)> {
            kept.between(0, u64::MAX, usize::MAX)
                .iter()
                .map(|c| (c.leaf_index, c.tree_size))
                .collect()
        };
        // (keep, commitments as (leaf, size named), kept as (leaf, size), newest kept)
        let lag = KEPT_SIZES as u64;
        type Leaves = Vec<(u64, u64)>;
        let cases: Vec<(usize, Leaves, Leaves, Option<u64>)> = vec![
            (0, vec![(3, 3), (6, 5)], vec![], None),
            (2, vec![(3, 3), (6, 5)], vec![(3, 3), (6, 5)], Some(6)),
            (
                2,
                vec![(3, 3), (6, 5), (9, 9)],
                vec![(6, 5), (9, 9)],
                Some(9),
            ),
            // The map of size 5 is more than KEPT_SIZES sizes back at the second one.
            (4, vec![(3, 3), (lag + 6, 5)], vec![], None),
            (
                4,
                vec![(3, 3), (lag + 6, 5), (lag + 9, lag + 8)],
                vec![(lag + 9, lag + 8)],
                Some(lag + 9),
            ),
        ];
        for (keep, commitments, want, newest) in cases {
            let mut slot = None;
            let mut next = 0;
            for &(leaf, size) in &commitments {
                follow(&mut slot, next, leaf, keep);
                commit(&mut slot, leaf, size, keep);
                next = leaf + 1;
            }
            let kept = slot.as_ref().unwrap().kept_commitments();
            assert_eq!(sizes(&kept), want, "keep {keep}: {commitments:?}");
            assert_eq!(
                kept.newest().map(|c| c.leaf_index),
                newest,
                "{commitments:?}"
            );
            for c in kept.between(0, u64::MAX, usize::MAX) {
                assert_eq!(c.tree.root(), empty);
                assert_eq!(kept.at(c.tree_size).unwrap().leaf_index, c.leaf_index);
            }
        }
    }

    /// Which sizes a commitment may name: its own index for the first of the log,
    /// then any after the previous commitment leaf and up to its own index, and a wrong
    /// root is caught at any of them.
    #[test]
    fn the_sizes_a_commitment_may_name() {
        let catalog = Catalog::new();
        let empty = StateMap::new().root();
        let follow = |f: &mut StateFollower, from: u64, to: u64| {
            for i in from..to {
                f.after_apply(&catalog, i, &policy()).unwrap();
            }
        };
        let mut f = StateFollower::new();
        follow(&mut f, 0, 10);
        // (leaf, size named, accepted)
        // A commitment at `index` naming `size`, tried on a copy of the follower.
        let attempt = |f: &StateFollower, index: u64, size: u64, ok: bool, what: &str| {
            let got = f
                .clone()
                .after_apply(&catalog, index, &commitment(size, empty));
            assert_eq!(got.is_ok(), ok, "{what} at {index} naming {size}: {got:?}");
            got
        };
        let first = [(10, 9, false), (10, 11, false), (10, 10, true)];
        for (index, size, ok) in first {
            let _ = attempt(&f, index, size, ok, "first commitment");
        }
        f.after_apply(&catalog, 10, &commitment(10, empty)).unwrap();
        follow(&mut f, 11, 15);
        let later = [
            (15, 10, false), // the previous commitment's own size
            (15, 11, true),  // just after the previous commitment leaf
            (15, 14, true),
            (15, 15, true),
            (15, 16, false), // after itself
        ];
        for (index, size, ok) in later {
            let got = attempt(&f, index, size, ok, "commitment");
            if !ok {
                assert!(matches!(got, Err(FollowError::BadSize { .. })), "{got:?}");
            }
        }
        let mut wrong = empty;
        wrong[0] ^= 1;
        let got = f.clone().after_apply(&catalog, 15, &commitment(12, wrong));
        assert!(
            matches!(got, Err(FollowError::BadCommitment { tree_size: 12, .. })),
            "{got:?}"
        );
    }

    /// A follower built lazily on a catalog restored from a snapshot (`first` > 0): the
    /// first commitment it sees may name a size before its first root, taken unchecked
    /// (but never a size after its own leaf); from then on every commitment is checked
    /// as in a replay from leaf 0. Built on a catalog replayed from 0, the same
    /// commitments are refused.
    #[test]
    fn a_follower_restored_mid_log_takes_its_first_commitment_unchecked_only() {
        let catalog = Catalog::new();
        let empty = StateMap::new().root();
        let mut wrong = empty;
        wrong[0] ^= 1;
        // (restored from, first commitment's leaf, size it names, root, accepted)
        let cases = [
            (40, 50, 45, wrong, true),  // before its first root: unchecked
            (40, 50, 30, wrong, true),  // even before the restore
            (40, 50, 50, empty, true),  // its own index: checked, and right
            (40, 50, 50, wrong, false), // its own index: checked, and wrong
            (40, 50, 51, empty, false), // after itself: never
            (0, 50, 45, empty, false),  // replayed from 0: the first names its index
            (0, 50, 50, empty, true),
        ];
        for (first, index, size, root, ok) in cases {
            let mut slot = None;
            for i in first..index {
                StateFollower::follow_lazily_from(&mut slot, &catalog, i, &policy(), first)
                    .unwrap();
            }
            assert!(slot.is_none(), "no map before a commitment");
            let got = StateFollower::follow_lazily_from(
                &mut slot,
                &catalog,
                index,
                &commitment(size, root),
                first,
            );
            assert_eq!(
                got.is_ok(),
                ok,
                "from {first}, {index} naming {size}: {got:?}"
            );
            if !ok {
                continue;
            }
            // The next commitment is checked, whatever the first was.
            let mut f = slot.take().unwrap();
            for i in index + 1..index + 5 {
                f.after_apply(&catalog, i, &policy()).unwrap();
            }
            let before = f
                .clone()
                .after_apply(&catalog, index + 5, &commitment(size, empty));
            assert!(
                matches!(before, Err(FollowError::BadSize { .. })),
                "from {first}: a second commitment naming {size}: {before:?}"
            );
            let bad = f
                .clone()
                .after_apply(&catalog, index + 5, &commitment(index + 3, wrong));
            assert!(
                matches!(bad, Err(FollowError::BadCommitment { .. })),
                "{bad:?}"
            );
            f.after_apply(&catalog, index + 5, &commitment(index + 3, empty))
                .unwrap();
        }
    }
}

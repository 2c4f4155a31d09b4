//! State commitments in the engine (`log-format/state.md` §5): the map of the catalog
//! state, kept on a thread of its own, and the `StateCommitment` leaf the sequencer
//! appends at the end of every `every`-th batch.
//!
//! Why a thread: updating the map costs one to three times what admitting the leaf
//! does (the entry's fold, its EvidenceBundle digest, three tree paths), and doing it
//! under the sequencer's write hold cut publication throughput 2–4× (docs/performance.md).
//! So the sequencer only records, per leaf, *what* changed (a publication's index, the id
//! of the entry a decision is about, or the keys' roles after an admin leaf: the admin
//! state is not kept per size), and hands the batch's changes to the map thread, which
//! reads the catalog *as of* the batch's end (every entry read takes a size) and
//! publishes the map of that size. A commitment
//! then carries the root of the newest size the thread has finished, after the previous
//! commitment: usually the end of the batch before. The sequencer never waits for
//! hashing, except once per log, for its first commitment, which names its own index
//! so that a reader that starts following at the first commitment can check it.
//!
//! At start-up the map is built from the rebuilt catalog; the log's own commitments are
//! not re-checked there (replay and `monitor --audit` do that, from the entries alone).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use super::Shared;
use crate::catalog::{Catalog, CatalogError, Effect, Leaf};
use crate::state::{
    entry_of, Committed, MapChange, StateError, StateMap, Tree, DEFAULT_KEPT_COMMITMENTS,
    MAX_COMMIT_LAG,
};

/// How many of the commitments made before a restart get their maps rebuilt at start-up
/// (the newest ones), so that their proofs are served again. Each costs the entries that
/// changed after the oldest of them, read once more (`StateMap::build_at`).
pub(crate) const KEPT_AFTER_RESTART: usize = 256;

/// How many batches the map thread may be behind before the sequencer waits for it
/// (bounds the memory of the changes in flight and how stale a commitment can be).
const BATCHES_IN_FLIGHT: usize = 4;

/// The changes of one batch, for the map thread: read the catalog as of `at`.
struct MapBatch {
    at: u64,
    changes: Vec<MapChange>,
}

/// What the map thread has finished, and the commitments made from it.
struct Progress {
    /// The newest size whose map is finished, and that map.
    done: (u64, Tree),
    /// Commitment leaf index → the commitment (newest `DEFAULT_KEPT_COMMITMENTS`).
    committed: BTreeMap<u64, Committed>,
    /// Why the map thread stopped, if it did.
    failed: Option<String>,
}

/// The engine's state commitments: off, or a map thread and its schedule.
pub(crate) struct StateCommits {
    /// Commit after every `every`-th batch that appended something (0: never).
    every: u64,
    /// Test hook: commit a wrong root (one bit flipped), to prove monitors catch it.
    wrong_root: bool,
    /// Batches since the last commitment.
    batches: AtomicU64,
    /// The last commitment: (its leaf index, the size it names).
    last_commitment: Mutex<Option<(u64, u64)>>,
    /// The current batch's changes (the sequencer's).
    pending: Mutex<Vec<MapChange>>,
    sender: Mutex<Option<SyncSender<MapBatch>>>,
    /// The map and the receiver until the thread is spawned.
    start: Mutex<Option<(StateMap, Receiver<MapBatch>)>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    progress: Mutex<Progress>,
    finished: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StateCommits {
    /// Commitments every `every` batches (0: off) for a log whose catalog is `catalog`;
    /// the map is built now, with the maps of the newest [`KEPT_AFTER_RESTART`]
    /// commitments already in the log (`read_leaf` gives a leaf's bytes, to learn the
    /// size each names), so their proofs are served after a restart. The map thread is
    /// started by [`StateCommits::spawn`].
    pub fn start(
        every: u64,
        wrong_root: bool,
        catalog: &Catalog,
        read_leaf: &dyn Fn(u64) -> Option<Vec<u8>>,
    ) -> Result<StateCommits, StateError> {
        let size = catalog.applied_size();
        let mut committed = BTreeMap::new();
        let mut last_commitment = None;
        let map = if every > 0 {
            let past = past_commitments(catalog, read_leaf);
            let mut sizes: Vec<u64> = past.iter().map(|&(_, named)| named).collect();
            sizes.push(size);
            let (map, trees) = StateMap::build_at(catalog, &sizes)?;
            sizes.sort_unstable();
            sizes.dedup();
            for (leaf_index, tree_size) in past {
                if let Ok(i) = sizes.binary_search(&tree_size) {
                    let tree = trees[i].clone();
                    let c = Committed {
                        tree_size,
                        leaf_index,
                        tree,
                    };
                    committed.insert(leaf_index, c);
                }
            }
            last_commitment = committed
                .values()
                .next_back()
                .map(|c| (c.leaf_index, c.tree_size));
            map
        } else {
            StateMap::new()
        };
        // A commitment whose leaf could not be read is counted as naming nothing: an
        // idle server then commits to the state it restarted with (one leaf), so
        // proofs are served again within 50 ms.
        let newest = catalog.commitments().last().copied();
        if newest.is_some() && newest != last_commitment.map(|(leaf, _)| leaf) {
            last_commitment = newest.map(|c| (c, 0));
        }
        let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT);
        let tree = map.tree();
        Ok(StateCommits {
            every,
            wrong_root,
            batches: AtomicU64::new(0),
            last_commitment: Mutex::new(last_commitment),
            pending: Mutex::new(Vec::new()),
            sender: Mutex::new((every > 0).then_some(sender)),
            start: Mutex::new((every > 0).then_some((map, receiver))),
            thread: Mutex::new(None),
            progress: Mutex::new(Progress {
                done: (size, tree),
                committed,
                failed: None,
            }),
            finished: Condvar::new(),
        })
    }

    /// Starts the map thread (when commitments are on). It holds the engine weakly, so
    /// it ends when the engine is dropped or [`StateCommits::stop`] is called.
    pub fn spawn(&self, shared: Weak<Shared>) -> std::io::Result<()> {
        let Some((map, receiver)) = lock(&self.start).take() else {
            return Ok(());
        };
        let thread = std::thread::Builder::new()
            .name("state-map".into())
            .spawn(move || keep_map(map, receiver, shared))?;
        *lock(&self.thread) = Some(thread);
        Ok(())
    }

    /// Stops the map thread once it has finished the batches sent (shutdown).
    pub fn stop(&self) {
        lock(&self.sender).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }

    /// Records what leaf `index`, just applied with `effect`, changes in the map (the
    /// caller holds the catalog's write lock: key roles are read now).
    pub fn record(&self, catalog: &Catalog, index: u64, effect: &Effect) -> Result<(), StateError> {
        if self.every == 0 {
            return Ok(());
        }
        if let Some(change) = StateMap::change_of(catalog, index, effect)? {
            lock(&self.pending).push(change);
        }
        Ok(())
    }

    /// Hands the changes recorded since the last call to the map thread, to be read as
    /// of size `at` (the batch's end). Waits only when the thread is
    /// [`BATCHES_IN_FLIGHT`] batches behind.
    pub fn end_batch(&self, at: u64) -> Result<(), CommitStateError> {
        if self.every == 0 {
            return Ok(());
        }
        let changes = std::mem::take(&mut *lock(&self.pending));
        let sender = lock(&self.sender).clone();
        let sent = match sender {
            Some(sender) => sender.send(MapBatch { at, changes }).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.map_failed())
        }
    }

    fn map_failed(&self) -> CommitStateError {
        let reason = lock(&self.progress).failed.clone();
        CommitStateError::MapStopped(reason.unwrap_or_else(|| "stopped".to_string()))
    }

    /// Counts a batch that appended entries; true when it should end with a
    /// commitment (it stays true until one is made).
    pub fn due(&self) -> bool {
        self.every > 0 && self.batches.fetch_add(1, Ordering::Relaxed) + 1 >= self.every
    }

    /// The map a commitment at leaf `index` commits to: the newest the map thread has
    /// finished, if it is after the last commitment; `None` when there is none yet
    /// (the commitment waits for a later batch). The log's first commitment waits for
    /// the map of its own size. Call without holding the catalog lock.
    pub fn choose(&self, index: u64) -> Result<Option<(u64, Tree)>, CommitStateError> {
        let last = *lock(&self.last_commitment);
        let Some((last, _)) = last else {
            self.end_batch(index)?;
            let mut progress = lock(&self.progress);
            while progress.done.0 < index && progress.failed.is_none() {
                progress = self
                    .finished
                    .wait(progress)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if progress.failed.is_some() || progress.done.0 != index {
                drop(progress);
                return Err(self.map_failed());
            }
            return Ok(Some(progress.done.clone()));
        };
        let progress = lock(&self.progress);
        if let Some(reason) = &progress.failed {
            return Err(CommitStateError::MapStopped(reason.clone()));
        }
        let (size, tree) = &progress.done;
        let lowest = (last + 1).max(index.saturating_sub(MAX_COMMIT_LAG - 1));
        Ok((*size >= lowest && *size <= index).then(|| (*size, tree.clone())))
    }

    /// Appends the commitment at leaf `index` to the map `chosen` (from
    /// [`StateCommits::choose`]) to `catalog`; returns the leaf's bytes.
    pub fn commit(
        &self,
        catalog: &mut Catalog,
        index: u64,
        chosen: (u64, Tree),
        at_ms: u64,
    ) -> Result<Vec<u8>, CommitStateError> {
        let (tree_size, tree) = chosen;
        let mut root = tree.root();
        if self.wrong_root {
            root[0] ^= 1;
        }
        let previous = lock(&self.last_commitment).map(|(leaf, _)| leaf);
        let leaf = Catalog::state_commitment_leaf(tree_size, &root, at_ms, previous)?;
        catalog.apply(index, &leaf)?;
        *lock(&self.last_commitment) = Some((index, tree_size));
        self.batches.store(0, Ordering::Relaxed);
        let mut progress = lock(&self.progress);
        progress.committed.insert(
            index,
            Committed {
                tree_size,
                leaf_index: index,
                tree,
            },
        );
        while progress.committed.len() > DEFAULT_KEPT_COMMITMENTS {
            progress.committed.pop_first();
        }
        Ok(leaf)
    }

    /// Whether an idle log should append a commitment now: some leaf of the log of
    /// size `size` is covered by no commitment (the last one named an earlier size, or
    /// leaves followed it) and the map thread has finished them, so a commitment of
    /// `size` can be made at once. Without it, a log that goes quiet after a batch would
    /// never prove that batch's state. A log that never committed waits for a batch.
    pub fn idle_commit_wanted(&self, size: u64) -> bool {
        if self.every == 0 {
            return false;
        }
        let Some((leaf, named)) = *lock(&self.last_commitment) else {
            return false;
        };
        (named < leaf || leaf + 1 < size) && lock(&self.progress).done.0 == size
    }

    /// Makes the next [`StateCommits::due`] true (an idle commitment).
    pub fn force_due(&self) {
        self.batches
            .store(self.every.saturating_sub(1), Ordering::Relaxed);
    }

    /// The newest kept commitment whose leaf is in a tree of size `tree_size`.
    pub fn committed_below(&self, tree_size: u64) -> Option<Committed> {
        let progress = lock(&self.progress);
        let (_, c) = progress.committed.range(..tree_size).next_back()?;
        Some(c.clone())
    }

    /// The kept commitments to sizes from `from` to `to` whose leaves are below
    /// `tree_size`, oldest first, at most `limit`.
    pub fn committed_between(
        &self,
        from: u64,
        to: u64,
        tree_size: u64,
        limit: usize,
    ) -> Vec<Committed> {
        let progress = lock(&self.progress);
        progress
            .committed
            .range(from..tree_size)
            .map(|(_, c)| c)
            .filter(|c| c.tree_size >= from && c.tree_size <= to)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The kept commitment to exactly `tree_size`, if the map still has it.
    pub fn committed_at(&self, tree_size: u64) -> Option<Committed> {
        let progress = lock(&self.progress);
        let c = progress
            .committed
            .values()
            .rev()
            .find(|c| c.tree_size == tree_size)?;
        Some(c.clone())
    }

    /// The newest size whose map is finished (`None` when commitments are off).
    pub fn map_size(&self) -> Option<u64> {
        (self.every > 0).then(|| lock(&self.progress).done.0)
    }

    fn finish(&self, at: u64, tree: Tree) {
        lock(&self.progress).done = (at, tree);
        self.finished.notify_all();
    }

    fn give_up(&self, reason: String) {
        tracing::error!(reason, "the state map stopped; no more state commitments");
        lock(&self.progress).failed = Some(reason);
        self.finished.notify_all();
    }
}

/// The newest [`KEPT_AFTER_RESTART`] commitments of the log: (leaf index, size named),
/// oldest first. A leaf that cannot be read or parsed (it was checked when applied) is
/// left out, with a warning.
fn past_commitments(
    catalog: &Catalog,
    read_leaf: &dyn Fn(u64) -> Option<Vec<u8>>,
) -> Vec<(u64, u64)> {
    let all = catalog.commitments();
    let newest = &all[all.len().saturating_sub(KEPT_AFTER_RESTART)..];
    newest
        .iter()
        .filter_map(
            |&leaf| match read_leaf(leaf).map(|bytes| Leaf::parse(&bytes)) {
                Some(Ok(Leaf::StateCommitment(c))) => Some((leaf, c.tree_size)),
                _ => {
                    tracing::warn!(
                        leaf,
                        "state commitment leaf unreadable; its map is not rebuilt"
                    );
                    None
                }
            },
        )
        .collect()
}

/// The map thread: applies each batch's changes as of its end, one catalog read hold
/// per change (so the sequencer's write holds interleave), then publishes the map.
/// When it has fallen behind, it takes every batch waiting at once, as of the last
/// one's end: an entry changed in several of them is read and hashed once, and the
/// tree's upper nodes once for all, so the further behind, the less work per leaf.
/// The sizes in between get no map of their own; a commitment names the newest one.
fn keep_map(mut map: StateMap, batches: Receiver<MapBatch>, shared: Weak<Shared>) {
    while let Ok(mut batch) = batches.recv() {
        while let Ok(next) = batches.try_recv() {
            batch.changes.extend(next.changes);
            batch.at = next.at;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let commits = &shared.state_commits;
        if let Err(e) = apply_batch(&mut map, &batch, &shared) {
            commits.give_up(format!("state map as of size {}: {e}", batch.at));
            return;
        }
        commits.finish(batch.at, map.tree());
    }
}

/// Applies one (possibly merged) batch's changes to `map`, as of its end, and flushes.
fn apply_batch(map: &mut StateMap, batch: &MapBatch, shared: &Shared) -> Result<(), StateError> {
    // An entry changed twice is read once, as of the batch's end.
    let mut seen = std::collections::HashSet::new();
    let mut keys = None;
    for change in &batch.changes {
        if let MapChange::Keys(_) = change {
            keys = Some(change);
            continue;
        }
        // The catalog is held for the reads only; encoding and hashing the entry's
        // value happen after, so the sequencer's write holds are not delayed by them.
        let read = {
            let catalog = shared.catalog.read().unwrap_or_else(|p| p.into_inner());
            match entry_of(&catalog, change)? {
                Some(index) if seen.insert(index) => {
                    Some(StateMap::read_entry_change(&catalog, index, batch.at)?)
                }
                _ => None,
            }
        };
        if let Some(read) = read {
            map.apply_read(read)?;
        }
    }
    if let Some(change) = keys {
        // The last snapshot is the keys' roles at the batch's end.
        let catalog = shared.catalog.read().unwrap_or_else(|p| p.into_inner());
        map.apply_change(&catalog, change, batch.at)?;
    }
    // The batch's writes go into the tree together: each changed node hashed once.
    map.flush()
}

/// Why a commitment could not be appended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitStateError {
    /// The leaf could not be built or applied.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The map thread stopped.
    #[error("the state map stopped: {0}")]
    MapStopped(String),
}

//! Replay: rebuild the catalog from the entries alone, into a fresh state, and check the
//! tree they form against the signed checkpoint.
//!
//! The entries come from entry bundles, read from a tile store or fetched from any C2SP
//! tlog-tiles server; nothing else (no index, no server state) is trusted. Every entry
//! is hashed into a fresh tree (the root must equal the checkpoint's) and applied as
//! `Catalog::apply` would: its stateless half (`PreparedLeaf::parse`) on every core, 4,096
//! entries at a time, and the stateful half (`Catalog::apply_prepared`) in log order on
//! one thread, overlapped: while one step is applied, the next is prepared. The result is
//! the digest of the canonical state, which two replays of the same log reproduce byte
//! for byte.
//!
//! `steps_from` is the step iterator the engine's start-up (`open.rs`) uses: bundles
//! read, checked against their width, and prepared on every core.
//!
//! May import: the `storage` ports (and, for [`replay_dir`] only, the POSIX shorthand
//! [`LogBackends::posix`]), `keyfile`, `note`, `merkle`, `tiles`, the `catalog` root
//! re-exports, and the engine's reader.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::reader::{ReadError, TileCache, TreeView};
use super::state_digest::sorted_state_digest_at;
use crate::catalog::{Catalog, CatalogError, PreparedLeaf};
use crate::keyfile::KeyFileError;
use crate::merkle::{self, CompactRange, Hash};
use crate::note::{self, Checkpoint, NoteError, Verifier};
use crate::state::StateFollower;
use crate::storage::{LogBackends, StorageError};
use crate::tiles::{self, TileId, TILE_WIDTH};

/// What a replay established.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The verified checkpoint replayed up to.
    pub checkpoint: Checkpoint,
    /// The rebuilt catalog.
    pub catalog: Catalog,
    /// SHA-256 of its canonical state.
    pub state_digest: [u8; 32],
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The checkpoint is not signed by the log key.
    #[error("the checkpoint does not verify with the log key: {0}")]
    Checkpoint(#[source] NoteError),
    /// A tile could not be read from the store.
    #[error("{tile}: {source}")]
    Tile {
        /// The tile's path.
        tile: String,
        /// What the read said.
        source: ReadError,
    },
    /// A tile could not be fetched (from a server, or any other source of tiles).
    #[error("{0}")]
    Fetch(Box<dyn std::error::Error + Send + Sync>),
    /// An entry bundle is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// An entry does not apply.
    #[error("applying entry {index}: {source}")]
    Apply {
        /// The entry's index.
        index: u64,
        /// Why it does not apply.
        source: CatalogError,
    },
    /// A `StateCommitment` entry commits to another map root than its leaves give
    /// (`bad-state-commitment`), or the map could not be computed.
    #[error("entry {index}: {source}")]
    State {
        /// The entry's index.
        index: u64,
        /// What was wrong.
        source: crate::state::FollowError,
    },
    /// The entries build another tree than the checkpoint's.
    #[error("the entries do not rebuild the checkpoint root at size {0}")]
    Root(u64),
    /// The log's verifier key could not be read.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The data directory holds no log.
    #[error("{} holds no checkpoint", .0.display())]
    NoCheckpoint(PathBuf),
    /// The replayed state could not be read back to hash it.
    #[error("hashing the replayed state: {0}")]
    Digest(#[source] CatalogError),
}

/// An entry bundle that does not hold what its name says.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// It does not decode as an entry bundle.
    #[error("{0} is not an entry bundle")]
    Undecodable(String),
    /// It holds another number of entries than its width.
    #[error("{tile} holds {found} entries, not {width}")]
    Width {
        /// The bundle's path.
        tile: String,
        /// Entries it holds.
        found: usize,
        /// Entries its name says.
        width: u16,
    },
}

/// Entry bundles replayed per parallel step (16 × 256 entries): large enough that the
/// threads' start-up cost vanishes, small enough to keep memory flat.
const BUNDLES_PER_STEP: usize = 16;

/// Replays the tree of `signed_checkpoint` (verified with `log_key`), reading entry
/// bundles with `bundle`, into `catalog`, which must be empty. Its record store decides
/// the replay's memory: `Catalog::new()` keeps every record in memory (fine for tests
/// and small logs); a catalog over a scratch store on disk keeps it flat at any size.
pub fn replay<T>(
    catalog: Catalog,
    signed_checkpoint: &[u8],
    log_key: &Verifier,
    bundle: impl FnMut(TileId) -> Result<T, ReplayError>,
) -> Result<Replayed, ReplayError>
where
    T: Deref,
    T::Target: AsRef<[u8]>,
{
    replay_with(catalog, signed_checkpoint, log_key, bundle, |c| {
        Ok(c.state_digest())
    })
}

/// [`replay`], with the final state digest taken by `digest` (of the catalog and its
/// size): [`super::state_digest::sorted_state_digest_at`] for a replay into records on
/// disk far larger than the page cache.
fn replay_with<T>(
    catalog: Catalog,
    signed_checkpoint: &[u8],
    log_key: &Verifier,
    bundle: impl FnMut(TileId) -> Result<T, ReplayError>,
    digest: impl FnOnce(&Catalog) -> Result<[u8; 32], CatalogError>,
) -> Result<Replayed, ReplayError>
where
    T: Deref,
    T::Target: AsRef<[u8]>,
{
    let (checkpoint, _) =
        note::open_checkpoint(signed_checkpoint, log_key).map_err(ReplayError::Checkpoint)?;
    let size = checkpoint.size;
    let mut tree = CompactRange::new();
    let mut catalog = catalog;
    let mut state = None;
    let mut read = bundle;
    let mut bundles = tiles::entry_bundles(size);
    // Step k is applied in order on this thread while step k + 1 is hashed and parsed on
    // the others (and on this one once it is done applying), so the two halves overlap
    // instead of taking turns. The leaves are applied in exactly the order and with
    // exactly the checks of a step-by-step replay; only the preparation runs early.
    let mut current: Vec<PreparedEntry> = Vec::new();
    let mut first = 0u64;
    loop {
        let ids: Vec<TileId> = bundles.by_ref().take(BUNDLES_PER_STEP).collect();
        let mut data = Vec::with_capacity(ids.len());
        let mut read_error = None;
        for tile in &ids {
            match read(*tile) {
                Ok(d) => data.push(d),
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        let entries = match read_error {
            None => step_entries(&ids, data.iter().map(|d| d.deref().as_ref()))
                .map_err(ReplayError::from),
            Some(e) => Err(e),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                // The leaves before the unreadable step are applied first, so a replay
                // reports the same first error whether or not it runs ahead.
                apply_step(&mut tree, &mut catalog, &mut state, current, 0, 0)?;
                return Err(e);
            }
        };
        let next_first = first + current.len() as u64;
        let (next, applied) = prepare_while(next_first, &entries, || {
            apply_step(&mut tree, &mut catalog, &mut state, current, 0, 0)
        });
        applied?;
        if next_first > 0 {
            crate::progress::report("replay", next_first, size);
        }
        if next.is_empty() {
            break;
        }
        current = next;
        first = next_first;
    }
    if tree.size() != size || tree.root() != checkpoint.root {
        return Err(ReplayError::Root(size));
    }
    let state_digest = digest(&catalog).map_err(ReplayError::Digest)?;
    Ok(Replayed {
        checkpoint,
        catalog,
        state_digest,
    })
}

/// Applies `entries` (the next leaves of the log, in order) to the tree and the catalog
/// (and the state map, once the log commits to one). `first` is the first leaf the
/// catalog was applied from (0, or the size of the snapshot it was restored from: see
/// [`StateFollower::follow_lazily_from`]); `keep` is how many commitments the state map
/// keeps the snapshots of (0 in a replay: see [`StateFollower::follow_lazily_keeping`]).
pub(crate) fn apply_step(
    tree: &mut CompactRange,
    catalog: &mut Catalog,
    state: &mut Option<StateFollower>,
    entries: Vec<PreparedEntry>,
    first: u64,
    keep: usize,
) -> Result<(), ReplayError> {
    for prepared in entries {
        let index = tree.size();
        tree.append(prepared.leaf_hash, |_, _| {});
        let applying = |source| ReplayError::Apply { index, source };
        let leaf = prepared.leaf.map_err(applying)?;
        let effect = catalog.apply_prepared(leaf).map_err(applying)?;
        StateFollower::follow_lazily_keeping(state, catalog, index, &effect, first, keep)
            .map_err(|source| ReplayError::State { index, source })?;
    }
    Ok(())
}

/// One step of a replay: up to [`BUNDLES_PER_STEP`] consecutive entry bundles, their
/// entries hashed and parsed, in order.
pub(crate) struct Step {
    /// The index of the first entry.
    pub first: u64,
    /// The entries, from `first` on.
    pub entries: Vec<PreparedEntry>,
}

/// The steps of the tree of `size` entries, in order, reading each bundle with `read`,
/// from the bundle that holds entry `start` on. Each bundle must decode and hold exactly
/// as many entries as its width. Its first step may begin up to 255 entries before
/// `start`: callers skip those by index.
pub(crate) fn steps_from<T, E, R>(
    start: u64,
    size: u64,
    read: R,
) -> Steps<impl Iterator<Item = TileId>, R>
where
    T: Deref,
    T::Target: AsRef<[u8]>,
    E: From<BundleError>,
    R: FnMut(TileId) -> Result<T, E>,
{
    let skip = start.min(size) / TILE_WIDTH;
    Steps {
        bundles: tiles::entry_bundles(size).skip(usize::try_from(skip).unwrap_or(usize::MAX)),
        read,
        next: skip * TILE_WIDTH,
    }
}

/// The iterator [`steps`] returns.
pub(crate) struct Steps<B, R> {
    bundles: B,
    read: R,
    next: u64,
}

impl<B, R, T, E> Iterator for Steps<B, R>
where
    B: Iterator<Item = TileId>,
    T: Deref,
    T::Target: AsRef<[u8]>,
    E: From<BundleError>,
    R: FnMut(TileId) -> Result<T, E>,
{
    type Item = Result<Step, E>;

    fn next(&mut self) -> Option<Result<Step, E>> {
        let bundles: Vec<TileId> = self.bundles.by_ref().take(BUNDLES_PER_STEP).collect();
        if bundles.is_empty() {
            return None;
        }
        Some(self.step(&bundles))
    }
}

impl<B, R> Steps<B, R> {
    fn step<T, E>(&mut self, bundles: &[TileId]) -> Result<Step, E>
    where
        T: Deref,
        T::Target: AsRef<[u8]>,
        E: From<BundleError>,
        R: FnMut(TileId) -> Result<T, E>,
    {
        let (step, ()) = self.step_while(bundles, || ());
        step
    }

    /// Reads the step of `bundles` and prepares it on the other cores while `work` runs
    /// on this one (see [`prepare_while`]). `work` runs whatever happens, first if the
    /// step cannot be read, so that a caller applying the previous step reports errors in
    /// log order.
    fn step_while<T, E, W, Rw>(&mut self, bundles: &[TileId], work: W) -> (Result<Step, E>, Rw)
    where
        T: Deref,
        T::Target: AsRef<[u8]>,
        E: From<BundleError>,
        R: FnMut(TileId) -> Result<T, E>,
        W: FnOnce() -> Rw,
    {
        let mut data = Vec::with_capacity(bundles.len());
        for tile in bundles {
            match (self.read)(*tile) {
                Ok(d) => data.push(d),
                Err(e) => return (Err(e), work()),
            }
        }
        let entries = match step_entries(bundles, data.iter().map(|d| d.deref().as_ref())) {
            Ok(entries) => entries,
            Err(e) => return (Err(e.into()), work()),
        };
        let first = self.next;
        self.next += entries.len() as u64;
        let (entries, done) = prepare_while(first, &entries, work);
        (Ok(Step { first, entries }), done)
    }

    /// The next step (`None` after the last), read and prepared on the other cores while
    /// `work` (typically: applying the step before) runs on this one.
    pub(crate) fn next_while<T, E, W, Rw>(&mut self, work: W) -> (Option<Result<Step, E>>, Rw)
    where
        B: Iterator<Item = TileId>,
        T: Deref,
        T::Target: AsRef<[u8]>,
        E: From<BundleError>,
        R: FnMut(TileId) -> Result<T, E>,
        W: FnOnce() -> Rw,
    {
        let bundles: Vec<TileId> = self.bundles.by_ref().take(BUNDLES_PER_STEP).collect();
        if bundles.is_empty() {
            return (None, work());
        }
        let (step, done) = self.step_while(&bundles, work);
        (Some(step), done)
    }
}

/// The entries of a step of entry bundles, in order. Each bundle must decode and hold
/// exactly as many entries as its width.
fn step_entries<'a>(
    step: &[TileId],
    data: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<&'a [u8]>, BundleError> {
    let mut entries = Vec::with_capacity(step.len() * TILE_WIDTH as usize);
    for (tile, bytes) in step.iter().zip(data) {
        let decoded =
            tiles::decode_bundle(bytes).ok_or_else(|| BundleError::Undecodable(tile.path()))?;
        if decoded.len() != usize::from(tile.width) {
            return Err(BundleError::Width {
                tile: tile.path(),
                found: decoded.len(),
                width: tile.width,
            });
        }
        entries.extend(decoded);
    }
    Ok(entries)
}

/// One entry hashed and parsed, ready to be applied in order.
#[derive(Debug)]
pub struct PreparedEntry {
    /// Its RFC 6962 leaf hash.
    pub leaf_hash: Hash,
    /// The parsed leaf, or why it cannot be applied.
    pub leaf: Result<PreparedLeaf, CatalogError>,
}

/// Hashes and parses `entries` (leaf indices `first`, `first + 1`, ...) on every core,
/// returning them in order. This is the part of replay that needs no state; applying
/// the results in order is what stays sequential.
pub fn prepare_in_parallel(first: u64, entries: &[&[u8]]) -> Vec<PreparedEntry> {
    prepare_while(first, entries, || ()).0
}

/// Entries prepared per claim of a worker: small enough that the threads finish together,
/// large enough that claiming costs nothing.
const CHUNK: usize = 64;

/// Runs `work` on this thread while `entries` are hashed and parsed on the other cores;
/// when `work` is done this thread prepares what is left too. Returns the prepared
/// entries, in order, and what `work` returned. Chunks of [`CHUNK`] entries are claimed
/// from a shared counter, so a thread that is busy elsewhere (applying, or preempted on
/// a shared machine) does not hold the others back.
fn prepare_while<W: FnOnce() -> R, R>(
    first: u64,
    entries: &[&[u8]],
    work: W,
) -> (Vec<PreparedEntry>, R) {
    let prepare = |offset: usize, entry: &[u8]| PreparedEntry {
        leaf_hash: merkle::leaf_hash(entry),
        leaf: PreparedLeaf::parse(first + offset as u64, entry),
    };
    let chunks = entries.len().div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    // Claims chunks until none is left; returns them with their numbers.
    let claim = || {
        let mut done = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= chunks {
                return done;
            }
            let start = n * CHUNK;
            let part: Vec<PreparedEntry> = entries[start..(start + CHUNK).min(entries.len())]
                .iter()
                .enumerate()
                .map(|(i, e)| prepare(start + i, e))
                .collect();
            done.push((n, part));
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads <= 1 || chunks <= 1 {
        let result = work();
        let mut done = claim();
        done.sort_unstable_by_key(|(n, _)| *n);
        return (done.into_iter().flat_map(|(_, p)| p).collect(), result);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads.min(chunks))
            .map(|_| scope.spawn(claim))
            .collect();
        let result = work();
        let mut done = claim();
        for worker in workers {
            match worker.join() {
                Ok(part) => done.extend(part),
                // Parsing does not panic on any input; if it ever did, re-raise it here
                // rather than return a silently short list.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done.sort_unstable_by_key(|(n, _)| *n);
        let mut all = Vec::with_capacity(entries.len());
        for (_, part) in done {
            all.extend(part);
        }
        (all, result)
    })
}

/// Replays the log in `log` (its checkpoint and entry bundles), verified with `log_key`,
/// into `catalog` (empty; see [`replay`]). Read-only: it may run beside a live server.
pub fn replay_log(
    log: &LogBackends,
    log_key: &Verifier,
    catalog: Catalog,
) -> Result<Option<Replayed>, ReplayError> {
    replay_log_with(log, log_key, catalog, |c| Ok(c.state_digest()))
}

fn replay_log_with(
    log: &LogBackends,
    log_key: &Verifier,
    catalog: Catalog,
    digest: impl FnOnce(&Catalog) -> Result<[u8; 32], CatalogError>,
) -> Result<Option<Replayed>, ReplayError> {
    let Some(signed) = log.lock.read()? else {
        return Ok(None);
    };
    let cache = TileCache::default();
    let (checkpoint, _) =
        note::open_checkpoint(&signed, log_key).map_err(ReplayError::Checkpoint)?;
    let view = TreeView::new(log.tiles.as_ref(), &cache, checkpoint.size);
    let tile = |tile: TileId| {
        view.tile(tile).map_err(|source| ReplayError::Tile {
            tile: tile.path(),
            source,
        })
    };
    replay_with(catalog, &signed, log_key, tile, digest).map(Some)
}

/// Replays the log stored in the POSIX data directory `data_dir` (its `log/` tiles and,
/// without `log_key`, its `log.vkey`) into `catalog` (empty; see [`replay`]). The final
/// state digest sorts the publications in unnamed files in `spill` (an existing
/// directory, such as the scratch directory of `catalog`'s records; ADR 0020).
/// Read-only: it may run beside a live server, and on a data directory it cannot write.
pub fn replay_dir(
    data_dir: &Path,
    log_key: Option<&Verifier>,
    catalog: Catalog,
    spill: &Path,
) -> Result<Replayed, ReplayError> {
    let own;
    let log_key = match log_key {
        Some(k) => k,
        None => {
            own = crate::keyfile::read_verifier(&data_dir.join("log.vkey"))?;
            &own
        }
    };
    let log = LogBackends::posix(data_dir)?;
    let digest = |c: &Catalog| sorted_state_digest_at(c, c.applied_size(), spill);
    replay_log_with(&log, log_key, catalog, digest)?
        .ok_or_else(|| ReplayError::NoCheckpoint(data_dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::integrator::Integrator;
    use crate::note::{KeyType, Signer};

    /// Replay runs one step ahead, but reports the first error in log order: a leaf that
    /// does not apply in one step comes before an unreadable bundle in the next, and a
    /// replay of the readable part reports it, as a step-by-step replay did.
    #[test]
    fn the_first_error_in_log_order_wins_over_a_later_unreadable_bundle() {
        let log_key = Signer::generate("replay.test/log", KeyType::Ed25519).unwrap();
        let admin = Signer::generate("admin", KeyType::Ed25519).unwrap();
        let genesis =
            Catalog::genesis_leaf(log_key.name(), &log_key.verifier(), &[admin.verifier()], 0)
                .unwrap();
        // Leaf 1 and after are not leaves; two steps' worth of them.
        let size = 2 * BUNDLES_PER_STEP as u64 * TILE_WIDTH + 10;
        let leaves = std::iter::once(genesis.clone())
            .chain((1..size).map(|n| format!("{{\"n\":{n}}}").into_bytes()));
        let (bundles, signed) = signed_log(leaves, &log_key);
        let key = log_key.verifier();
        // Every bundle of the second step and after is missing.
        let readable = |tile: TileId| {
            let missing = tile.index >= BUNDLES_PER_STEP as u64;
            match bundles.get(&tile.path()) {
                Some(b) if !missing => Ok(b),
                _ => Err(ReplayError::Fetch(tile.path().into())),
            }
        };
        match replay(Catalog::new(), &signed, &key, readable) {
            Err(ReplayError::Apply { index: 1, .. }) => {}
            other => panic!(
                "expected leaf 1's error, got {:?}",
                other.map(|r| r.state_digest)
            ),
        }
        // With every bundle readable the same leaf is the first error.
        let all = |tile: TileId| {
            bundles
                .get(&tile.path())
                .ok_or_else(|| ReplayError::Fetch(tile.path().into()))
        };
        assert!(matches!(
            replay(Catalog::new(), &signed, &key, all),
            Err(ReplayError::Apply { index: 1, .. })
        ));
        // The genesis alone replays.
        let (one, signed) = signed_log([genesis], &log_key);
        let replayed = replay(Catalog::new(), &signed, &key, |tile| {
            one.get(&tile.path())
                .ok_or_else(|| ReplayError::Fetch(tile.path().into()))
        })
        .unwrap();
        assert_eq!(replayed.catalog.applied_size(), 1);
    }

    /// The tiles of a log holding `leaves`, by path, and its checkpoint signed by `key`.
    /// The start-up replay applies step k while step k + 1 is read and prepared: the
    /// work runs even when the next step cannot be read (so the caller sees step k's
    /// error first, in log order), and steps come in order, each entry once.
    #[test]
    fn next_while_runs_the_work_whatever_the_next_step_holds() {
        let size = BUNDLES_PER_STEP as u64 * TILE_WIDTH + 300;
        let leaves = (0..size).map(|n| format!("{{\"n\":{n}}}").into_bytes());
        let key = Signer::generate("replay.test/log", KeyType::Ed25519).unwrap();
        let (bundles, _) = signed_log(leaves, &key);
        let bundles = &bundles;
        let read = |missing: Option<u64>| {
            move |tile: TileId| match bundles.get(&tile.path()) {
                Some(b) if Some(tile.index) != missing => Ok(b.clone()),
                _ => Err(BundleError::Undecodable(tile.path())),
            }
        };
        // Every bundle there: steps of 16 bundles, then the rest, then none.
        let mut steps = steps_from(0, size, read(None));
        let mut seen = Vec::new();
        let mut ran = 0;
        loop {
            let (next, ()) = steps.next_while(|| ran += 1);
            match next {
                Some(step) => {
                    let step = step.unwrap();
                    assert_eq!(step.first, seen.len() as u64);
                    seen.extend(step.entries.iter().map(|e| e.leaf_hash));
                }
                None => break,
            }
        }
        assert_eq!(ran, 3, "the work runs once per call, the last one included");
        let hashes: Vec<Hash> = (0..size)
            .map(|n| merkle::leaf_hash(format!("{{\"n\":{n}}}").as_bytes()))
            .collect();
        assert_eq!(seen, hashes);
        // The second step's last bundle missing: the work still runs.
        let mut steps = steps_from(0, size, read(Some(BUNDLES_PER_STEP as u64)));
        assert!(matches!(steps.next_while(|| ()), (Some(Ok(_)), ())));
        let mut applied = false;
        let (next, ()) = steps.next_while(|| applied = true);
        assert!(matches!(next, Some(Err(BundleError::Undecodable(_)))));
        assert!(applied, "the step before an unreadable one was not applied");
    }

    fn signed_log(
        leaves: impl IntoIterator<Item = Vec<u8>>,
        key: &Signer,
    ) -> (std::collections::HashMap<String, Vec<u8>>, Vec<u8>) {
        let (integrator, writes) = Integrator::from_entries(leaves).unwrap();
        let tiles = writes
            .into_iter()
            .map(|w| (w.tile.path(), w.data))
            .collect();
        let signed = integrator
            .checkpoint(key.name())
            .sign(key)
            .unwrap()
            .to_bytes();
        (tiles, signed)
    }
}

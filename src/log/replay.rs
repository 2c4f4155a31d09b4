//! Replay: rebuild the catalog from the entries alone, into a fresh state, and check the
//! tree they form against the signed checkpoint.
//!
//! The entries come from entry bundles, read from a tiles directory or fetched from any
//! C2SP tlog-tiles server; nothing else (no index, no server state) is trusted. Every entry
//! is hashed into a fresh tree (the root must equal the checkpoint's) and applied as
//! `Catalog::apply` would: its stateless half (`PreparedLeaf::parse`) on every core, 4,096
//! entries at a time, then the stateful half (`Catalog::apply_prepared`) in log order. The
//! result is the digest of the canonical state, which two replays of the same log
//! reproduce byte for byte.

use std::path::Path;

use super::reader::{TileCache, TreeView};
use crate::catalog::{Catalog, CatalogError, PreparedLeaf};
use crate::merkle::{self, CompactRange, Hash};
use crate::note::{self, Checkpoint, Verifier};
use crate::storage::posix::PosixStore;
use crate::storage::LogStore;
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

/// Entry bundles replayed per parallel step (16 × 256 entries): large enough that the
/// threads' start-up cost vanishes, small enough to keep memory flat.
pub(crate) const BUNDLES_PER_STEP: usize = 16;

/// Replays the tree of `signed_checkpoint` (verified with `log_key`), reading entry
/// bundles with `bundle`.
pub fn replay(
    signed_checkpoint: &[u8],
    log_key: &Verifier,
    mut bundle: impl FnMut(TileId) -> Result<Vec<u8>, String>,
) -> Result<Replayed, String> {
    let (checkpoint, _) = note::open_checkpoint(signed_checkpoint, log_key)
        .map_err(|e| format!("the checkpoint does not verify with the log key: {e}"))?;
    let size = checkpoint.size;
    let mut tree = CompactRange::new();
    let mut catalog = Catalog::new();
    let bundles: Vec<TileId> = tiles::entry_bundles(size).collect();
    for step in bundles.chunks(BUNDLES_PER_STEP) {
        let mut data = Vec::with_capacity(step.len());
        for tile in step {
            data.push(bundle(*tile)?);
        }
        let entries = step_entries(step, data.iter().map(Vec::as_slice))?;
        for prepared in prepare_in_parallel(tree.size(), &entries) {
            let index = tree.size();
            tree.append(prepared.leaf_hash, |_, _| {});
            let leaf = prepared
                .leaf
                .map_err(|e| format!("applying entry {index}: {e}"))?;
            catalog
                .apply_prepared(leaf)
                .map_err(|e| format!("applying entry {index}: {e}"))?;
        }
    }
    if tree.size() != size || tree.root() != checkpoint.root {
        return Err(format!(
            "the entries do not rebuild the checkpoint root at size {size}"
        ));
    }
    let state_digest = catalog.state_digest();
    Ok(Replayed {
        checkpoint,
        catalog,
        state_digest,
    })
}

/// The entries of a step of entry bundles, in order. Each bundle must decode and hold
/// exactly as many entries as its width.
pub(crate) fn step_entries<'a>(
    step: &[TileId],
    data: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<&'a [u8]>, String> {
    let mut entries = Vec::with_capacity(step.len() * TILE_WIDTH as usize);
    for (tile, bytes) in step.iter().zip(data) {
        let decoded = tiles::decode_bundle(bytes)
            .ok_or_else(|| format!("{} is not an entry bundle", tile.path()))?;
        if decoded.len() != usize::from(tile.width) {
            return Err(format!(
                "{} holds {} entries, not {}",
                tile.path(),
                decoded.len(),
                tile.width
            ));
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
    let prepare = |offset: usize, entry: &[u8]| PreparedEntry {
        leaf_hash: merkle::leaf_hash(entry),
        leaf: PreparedLeaf::parse(first + offset as u64, entry),
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = entries.len().div_ceil(threads.max(1)).max(1);
    if threads <= 1 || entries.len() < 2 * TILE_WIDTH as usize {
        return entries
            .iter()
            .enumerate()
            .map(|(i, e)| prepare(i, e))
            .collect();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(per_thread)
            .enumerate()
            .map(|(n, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, e)| prepare(n * per_thread + i, e))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(entries.len());
        for worker in workers {
            match worker.join() {
                Ok(part) => all.extend(part),
                // Parsing does not panic on any input; if it ever did, re-raise it here
                // rather than return a silently short list.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

/// Replays the log stored in `data_dir` (its `log/` tiles and `log.vkey`). Read-only: it
/// may run beside a live server.
pub fn replay_dir(data_dir: &Path, log_key: Option<&Verifier>) -> Result<Replayed, String> {
    let own;
    let log_key = match log_key {
        Some(k) => k,
        None => {
            own = crate::keyfile::read_verifier(&data_dir.join("log.vkey"))
                .map_err(|e| e.to_string())?;
            &own
        }
    };
    let store = PosixStore::open(&data_dir.join("log")).map_err(|e| e.to_string())?;
    let signed = store
        .read_checkpoint()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} holds no checkpoint", data_dir.display()))?;
    let cache = TileCache::default();
    let (checkpoint, _) = note::open_checkpoint(&signed, log_key)
        .map_err(|e| format!("the checkpoint does not verify with the log key: {e}"))?;
    let view = TreeView::new(&store, &cache, checkpoint.size);
    replay(&signed, log_key, |tile| {
        view.tile(tile)
            .map(|d| d.as_ref().clone())
            .map_err(|e| format!("{}: {e}", tile.path()))
    })
}

//! Replay: rebuild the catalog from the entries alone, into a fresh state, and check the
//! tree they form against the signed checkpoint.
//!
//! The entries come from entry bundles, read from a tiles directory or fetched from any
//! C2SP tlog-tiles server; nothing else (no index, no server state) is trusted. Every entry
//! is hashed into a fresh tree (the root must equal the checkpoint's) and applied with
//! `Catalog::apply`, the same function the live sequencer uses. The result is the digest
//! of the canonical state, which two replays of the same log reproduce byte for byte.

use std::path::Path;

use super::integrator::{BatchTiles, Integrator};
use super::reader::{TileCache, TreeView};
use crate::catalog::Catalog;
use crate::note::{self, Checkpoint, Verifier};
use crate::storage::posix::PosixStore;
use crate::storage::LogStore;
use crate::tiles::{self, TileId};

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
    let mut integrator = Integrator::new();
    let mut catalog = Catalog::new();
    for tile in tiles::entry_bundles(size) {
        let data = bundle(tile)?;
        let entries = tiles::decode_bundle(&data)
            .ok_or_else(|| format!("{} is not an entry bundle", tile.path()))?;
        if entries.len() != usize::from(tile.width) {
            return Err(format!(
                "{} holds {} entries, not {}",
                tile.path(),
                entries.len(),
                tile.width
            ));
        }
        let mut batch = BatchTiles::default();
        for entry in entries {
            let index = integrator.size();
            integrator
                .append(entry, &mut batch)
                .map_err(|e| format!("entry {index}: {e}"))?;
            catalog
                .apply(index, entry)
                .map_err(|e| format!("applying entry {index}: {e}"))?;
        }
    }
    if integrator.size() != size || integrator.root() != checkpoint.root {
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

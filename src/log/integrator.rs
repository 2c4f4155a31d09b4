//! Turns appended entries into tile writes.
//!
//! The integrator holds the right edge of the tree: the compact range (at most 64
//! hashes) and the partial tile at every level plus the partial entry bundle. Appending
//! an entry updates them in memory; a batch ends with one write per tile it touched —
//! full tiles as they fill up, and the new partial tile at each level that changed.
//! Memory is O(log n), whatever the size of the log.
//!
//! May import: `merkle`, `note`, `tiles` and the tile store port's `TileWrite`.

use crate::merkle::{leaf_hash, CompactRange, Hash, NodeId};
use crate::note::Checkpoint;
use crate::storage::TileWrite;
use crate::tiles::{append_bundle_entry, TileId, TileKind, TILE_HEIGHT, TILE_WIDTH};

/// The in-memory right edge of the log.
#[derive(Clone, Debug)]
pub struct Integrator {
    compact: CompactRange,
    /// `partial_hashes[t]` holds the stored hashes of the partial tile at tile level t.
    partial_hashes: Vec<Vec<Hash>>,
    /// The partial entry bundle (framed as on disk).
    partial_bundle: Vec<u8>,
}

/// The tile writes one batch accumulates.
#[derive(Debug, Default)]
pub struct BatchTiles {
    writes: Vec<TileWrite>,
    dirty_levels: Vec<bool>,
    bundle_dirty: bool,
}

/// An entry could not be appended.
#[derive(Debug, thiserror::Error)]
#[error("entry of {0} bytes exceeds the 65535-byte limit of tlog-tiles entry bundles")]
pub struct EntryTooLarge(pub usize);

impl Integrator {
    /// The edge of an empty log.
    pub fn new() -> Integrator {
        Integrator {
            compact: CompactRange::new(),
            partial_hashes: Vec::new(),
            partial_bundle: Vec::new(),
        }
    }

    /// Rebuilds the edge of a log from what storage holds at its committed size.
    pub fn resume(
        compact: CompactRange,
        partial_hashes: Vec<Vec<Hash>>,
        partial_bundle: Vec<u8>,
    ) -> Integrator {
        Integrator {
            compact,
            partial_hashes,
            partial_bundle,
        }
    }

    /// Number of leaves integrated so far.
    pub fn size(&self) -> u64 {
        self.compact.size()
    }

    /// The Merkle root of everything integrated so far.
    pub fn root(&self) -> Hash {
        self.compact.root()
    }

    /// The (unsigned) checkpoint of everything integrated so far, for `origin`.
    pub fn checkpoint(&self, origin: &str) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size: self.size(),
            root: self.root(),
            extensions: Vec::new(),
        }
    }

    /// Appends one entry, recording the tiles it fills or changes in `batch`.
    /// Returns the entry's leaf hash.
    pub fn append(&mut self, entry: &[u8], batch: &mut BatchTiles) -> Result<Hash, EntryTooLarge> {
        append_bundle_entry(&mut self.partial_bundle, entry).ok_or(EntryTooLarge(entry.len()))?;
        batch.bundle_dirty = true;
        let hash = leaf_hash(entry);
        let partial_hashes = &mut self.partial_hashes;
        self.compact.append(hash, |node: NodeId, node_hash: &Hash| {
            if node.level % TILE_HEIGHT != 0 {
                return;
            }
            let tile_level = usize::from(node.level / TILE_HEIGHT);
            if partial_hashes.len() <= tile_level {
                partial_hashes.resize(tile_level + 1, Vec::new());
            }
            if batch.dirty_levels.len() <= tile_level {
                batch.dirty_levels.resize(tile_level + 1, false);
            }
            let tile = &mut partial_hashes[tile_level];
            tile.push(*node_hash);
            batch.dirty_levels[tile_level] = true;
            if tile.len() as u64 == TILE_WIDTH {
                batch.writes.push(TileWrite {
                    tile: TileId {
                        kind: TileKind::Hash(tile_level as u8),
                        index: node.index / TILE_WIDTH,
                        width: TILE_WIDTH as u16,
                    },
                    data: tile.concat(),
                });
                tile.clear();
            }
        });
        let size = self.compact.size();
        if size % TILE_WIDTH == 0 {
            batch.writes.push(TileWrite {
                tile: TileId {
                    kind: TileKind::Entries,
                    index: size / TILE_WIDTH - 1,
                    width: TILE_WIDTH as u16,
                },
                data: std::mem::take(&mut self.partial_bundle),
            });
        }
        Ok(hash)
    }

    /// Integrates `entries` into an empty log as one batch: the edge after them and every
    /// tile write. For tools, tests and benches that build a whole log in memory.
    pub fn from_entries<E: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = E>,
    ) -> Result<(Integrator, Vec<TileWrite>), EntryTooLarge> {
        let mut integrator = Integrator::new();
        let mut batch = BatchTiles::default();
        for entry in entries {
            integrator.append(entry.as_ref(), &mut batch)?;
        }
        let writes = integrator.finish(batch);
        Ok((integrator, writes))
    }

    /// Ends a batch: adds the partial tiles that changed and returns every write.
    pub fn finish(&self, mut batch: BatchTiles) -> Vec<TileWrite> {
        let size = self.size();
        if batch.bundle_dirty && !self.partial_bundle.is_empty() {
            let width = (size % TILE_WIDTH) as u16;
            batch.writes.push(TileWrite {
                tile: TileId {
                    kind: TileKind::Entries,
                    index: size / TILE_WIDTH,
                    width,
                },
                data: self.partial_bundle.clone(),
            });
        }
        for (level, dirty) in batch.dirty_levels.iter().enumerate() {
            let hashes = &self.partial_hashes[level];
            if *dirty && !hashes.is_empty() {
                let stored = crate::tiles::stored_hashes_at_level(size, level as u8);
                batch.writes.push(TileWrite {
                    tile: TileId {
                        kind: TileKind::Hash(level as u8),
                        index: stored / TILE_WIDTH,
                        width: hashes.len() as u16,
                    },
                    data: hashes.concat(),
                });
            }
        }
        batch.writes
    }
}

impl Default for Integrator {
    fn default() -> Self {
        Integrator::new()
    }
}

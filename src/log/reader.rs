//! Reads the committed log: tiles, entries and stored hashes, with a small cache.
//!
//! Every read is made against a tree size the caller already holds a checkpoint for,
//! and only tiles that size covers are read. That is what keeps leftovers of an
//! interrupted batch (tiles beyond the checkpoint) from ever being served.
//!
//! Owns [`ReadError`], which separates what the caller asked for wrongly (not found,
//! beyond the tree) from what the log itself failed at (storage, a proof or signature it
//! should always be able to make). May import `merkle`, `tiles` and the tile store port;
//! nothing above the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::merkle::{node_hash, Hash, HashSource, NodeId, ProofError};
use crate::storage::{StorageError, TileStore, TileWrite};
use crate::tiles::{
    decode_bundle, stored_hashes_at_level, TileId, TileKind, HASH_BYTES, TILE_HEIGHT, TILE_WIDTH,
};

/// Tiles are immutable once their name (with width) is committed, so a cache keyed by
/// [`TileId`] never goes stale. Bounded by bytes; each part is cleared wholesale when
/// full, which is crude but keeps the hot right edge and proof paths warm under steady
/// load, and keeps memory flat whatever the log size.
///
/// Hash tiles (8 KiB) and entry bundles (up to hundreds of KiB) are kept apart. A
/// receipt at a scattered index reads one whole bundle for one entry; in a shared cache
/// those bundles pushed the hash tiles out and kept tens of MiB of bundle-sized buffers
/// churning, which the allocator held on to (RSS past 256 MiB under scattered receipt
/// reads at 1 M entries). The bundle part is small: it serves the readers that walk
/// entries in order (start-up's tail, blob expiry, the follower) and the right edge a
/// batch just committed, and a scattered read costs one transient bundle.
#[derive(Default)]
pub struct TileCache {
    /// Hash tiles.
    tiles: Mutex<Bounded<Arc<Vec<u8>>>>,
    /// Entry bundles.
    bundles: Mutex<Bounded<Arc<Vec<u8>>>>,
    /// The interior levels of hash tiles (see [`TreeView::subtree_levels`]).
    subtrees: Mutex<Bounded<Arc<Vec<Vec<Hash>>>>>,
}

/// Bytes of hash tiles kept.
const CACHE_TILE_BYTES: usize = 48 << 20;
/// Bytes of entry bundles kept: a few full bundles, enough for a sequential reader and
/// the right edge.
const CACHE_BUNDLE_BYTES: usize = 4 << 20;
/// Bytes of tile interiors kept.
const CACHE_SUBTREE_BYTES: usize = 16 << 20;

/// A map whose values are charged by size and which empties itself past a budget.
struct Bounded<V> {
    map: HashMap<TileId, V>,
    bytes: usize,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

impl TileCache {
    /// Keeps the tiles a batch just made durable, so the receipts that batch's
    /// submitters wait for are assembled from memory rather than by re-reading the tiles
    /// the committer wrote a moment before. Call only after the batch is durable: a tile
    /// in the cache is served as committed.
    pub fn remember_committed(&self, writes: &[TileWrite]) {
        for write in writes {
            self.put(write.tile, Arc::new(write.data.clone()));
        }
    }

    /// The part of the cache that holds `tile`, and its budget in bytes.
    fn part(&self, tile: TileId) -> (&Mutex<Bounded<Arc<Vec<u8>>>>, usize) {
        match tile.kind {
            TileKind::Entries => (&self.bundles, CACHE_BUNDLE_BYTES),
            TileKind::Hash(_) => (&self.tiles, CACHE_TILE_BYTES),
        }
    }

    fn get(&self, tile: TileId) -> Option<Arc<Vec<u8>>> {
        cache_get(self.part(tile).0, tile)
    }

    fn put(&self, tile: TileId, data: Arc<Vec<u8>>) {
        let (part, budget) = self.part(tile);
        let bytes = data.len();
        cache_put(part, budget, tile, data, bytes);
    }
}

fn cache_get<V: Clone>(cache: &Mutex<Bounded<V>>, tile: TileId) -> Option<V> {
    cache.lock().ok()?.map.get(&tile).cloned()
}

fn cache_put<V>(cache: &Mutex<Bounded<V>>, budget: usize, tile: TileId, value: V, bytes: usize) {
    if let Ok(mut cache) = cache.lock() {
        if cache.bytes + bytes > budget {
            cache.map.clear();
            cache.bytes = 0;
        }
        if cache.map.insert(tile, value).is_none() {
            cache.bytes += bytes;
        }
    }
}

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The requested tile, entry or tree size is not covered by the log (404).
    #[error("{0}")]
    NotFound(String),
    /// The log failed to make a proof, root or signature it should always be able to
    /// make for a size it covers: a bug or an inconsistent store, never the caller's
    /// doing (500).
    #[error("{0}")]
    Internal(String),
}

impl From<ProofError<ReadError>> for ReadError {
    /// A source failure keeps its kind; an invalid index or size is the caller's (not
    /// found); a source answering with the wrong number of hashes is the log's own.
    fn from(error: ProofError<ReadError>) -> ReadError {
        match error {
            ProofError::Source(e) => e,
            ProofError::InvalidSize { .. } => ReadError::NotFound(error.to_string()),
            ProofError::SourceCount { .. } => ReadError::Internal(error.to_string()),
        }
    }
}

/// A view of the log at one committed tree size.
pub struct TreeView<'a> {
    store: &'a dyn TileStore,
    cache: &'a TileCache,
    size: u64,
    /// The committed size whose tiles are read (at least `size`): see [`TreeView::tile`].
    committed: u64,
}

impl<'a> TreeView<'a> {
    /// A view of the tree of `size` leaves; `size` must be the committed size (or one
    /// whose tiles are all stored, as a checkpoint's are).
    pub fn new(store: &'a dyn TileStore, cache: &'a TileCache, size: u64) -> TreeView<'a> {
        TreeView::within(store, cache, size, size)
    }

    /// A view of the tree of `size` leaves inside the log committed at `committed`
    /// (`size <= committed`). Any such size may be asked for, not only batch ends.
    pub fn within(
        store: &'a dyn TileStore,
        cache: &'a TileCache,
        size: u64,
        committed: u64,
    ) -> TreeView<'a> {
        TreeView {
            store,
            cache,
            size,
            committed: committed.max(size),
        }
    }

    /// The tree size this view reads at.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `tile` (with its width) is part of the tree at this size.
    pub fn covers(&self, tile: TileId) -> bool {
        let stored = stored_hashes_at_level(self.size, level_of(tile));
        match tile
            .index
            .checked_mul(TILE_WIDTH)
            .and_then(|start| start.checked_add(u64::from(tile.width)))
        {
            Some(end) => end <= stored,
            None => false,
        }
    }

    /// Reads a tile this size covers.
    ///
    /// A partial tile is always cut (its first W hashes or entries) from the version of
    /// its tile the committed size holds: the full tile, or the partial at the committed
    /// width. Only those were certainly written by a committed batch: a width between
    /// two batch ends was never written at all, and a width some failed batch wrote may
    /// hold another tree's leftovers. So every size up to the committed one is served,
    /// whichever batches built it.
    pub fn tile(&self, tile: TileId) -> Result<Arc<Vec<u8>>, ReadError> {
        if !self.covers(tile) {
            return Err(ReadError::NotFound(format!(
                "{} is not part of the tree of size {}",
                tile.path(),
                self.size
            )));
        }
        let source = self.committed_version(tile);
        if source == tile {
            return self.read_committed(tile);
        }
        if let Some(data) = self.cache.get(tile) {
            return Ok(data);
        }
        let data = cut_prefix(tile, &source, &self.read_committed(source)?)?;
        check_tile_shape(tile, &data)?;
        Ok(self.remember(tile, data))
    }

    /// The version of `tile`'s tile that the committed size holds.
    fn committed_version(&self, tile: TileId) -> TileId {
        let stored = stored_hashes_at_level(self.committed, level_of(tile));
        if tile.is_full() || tile.index < stored / TILE_WIDTH {
            return tile.full();
        }
        TileId {
            width: (stored % TILE_WIDTH) as u16,
            ..tile
        }
    }

    /// Reads a tile the committed size holds at exactly this width. A partial whose
    /// file was removed after its tile filled up is cut from the full tile.
    fn read_committed(&self, tile: TileId) -> Result<Arc<Vec<u8>>, ReadError> {
        if let Some(data) = self.cache.get(tile) {
            return Ok(data);
        }
        let data = match self.store.get(&tile.path())? {
            Some(data) => data,
            None if !tile.is_full() => {
                let full = tile.full();
                let data = self.store.get(&full.path())?.ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "{} and {} are missing",
                        tile.path(),
                        full.path()
                    ))
                })?;
                cut_prefix(tile, &full, &data)?
            }
            None => return Err(StorageError::Corrupt(format!("{} is missing", tile.path())).into()),
        };
        check_tile_shape(tile, &data)?;
        Ok(self.remember(tile, data))
    }

    fn remember(&self, tile: TileId, data: Vec<u8>) -> Arc<Vec<u8>> {
        let data = Arc::new(data);
        self.cache.put(tile, data.clone());
        data
    }

    /// Every complete node inside a hash tile: `levels[0]` are its stored hashes and
    /// `levels[k]` the roots of aligned runs of 2^k of them. Computed once per tile (tiles
    /// are immutable) so that a proof costs lookups, not up to 255 hashes per element.
    fn subtree_levels(&self, tile: TileId) -> Result<Arc<Vec<Vec<Hash>>>, ReadError> {
        if let Some(levels) = cache_get(&self.cache.subtrees, tile) {
            return Ok(levels);
        }
        let data = self.tile(tile)?;
        let mut levels: Vec<Vec<Hash>> = vec![crate::tiles::hashes_of(&data)];
        for _ in 1..TILE_HEIGHT {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(next);
        }
        let levels = Arc::new(levels);
        let bytes = levels.iter().map(Vec::len).sum::<usize>() * HASH_BYTES;
        cache_put(
            &self.cache.subtrees,
            CACHE_SUBTREE_BYTES,
            tile,
            levels.clone(),
            bytes,
        );
        Ok(levels)
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, ReadError> {
        let tile = crate::tiles::bundle_for_leaf(index, self.size).ok_or_else(|| {
            ReadError::NotFound(format!("entry {index} is beyond tree size {}", self.size))
        })?;
        let data = self.tile(tile)?;
        let entries = decode_bundle(&data)
            .ok_or_else(|| StorageError::Corrupt(format!("{} is not a bundle", tile.path())))?;
        entries
            .get((index % TILE_WIDTH) as usize)
            .map(|e| e.to_vec())
            .ok_or_else(|| StorageError::Corrupt(format!("{} is short", tile.path())).into())
    }

    /// The entry at `index`, read without keeping its bundle: from the cache if its
    /// bundle is there, else from the store, which reads only as far as that entry
    /// ([`TileStore::get_bundle_entry`]). For scattered reads (receipts, one entry);
    /// a reader that walks entries in order uses [`TreeView::entry`], which keeps each
    /// bundle for the entries after it.
    pub fn entry_once(&self, index: u64) -> Result<Vec<u8>, ReadError> {
        let tile = crate::tiles::bundle_for_leaf(index, self.size).ok_or_else(|| {
            ReadError::NotFound(format!("entry {index} is beyond tree size {}", self.size))
        })?;
        let position = (index % TILE_WIDTH) as usize;
        // The entry is the same in every version of its bundle that holds it: the one
        // the committed size holds, or the full one if that partial was removed.
        let source = self.committed_version(tile);
        for cached in [tile, source] {
            if let Some(data) = self.cache.get(cached) {
                let entries = decode_bundle(&data).ok_or_else(|| {
                    StorageError::Corrupt(format!("{} is not a bundle", cached.path()))
                })?;
                if let Some(entry) = entries.get(position) {
                    return Ok(entry.to_vec());
                }
            }
        }
        for stored in [source, source.full()] {
            if let Some(entry) = self.store.get_bundle_entry(&stored.path(), position)? {
                return Ok(entry);
            }
        }
        Err(StorageError::Corrupt(format!("{} is missing", source.path())).into())
    }
}

fn level_of(tile: TileId) -> u8 {
    match tile.kind {
        TileKind::Hash(level) => level,
        TileKind::Entries => 0,
    }
}

/// The first `tile.width` hashes or entries of `data`, the contents of `source` (a
/// wider version of the same tile).
fn cut_prefix(tile: TileId, source: &TileId, data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let width = usize::from(tile.width);
    match tile.kind {
        TileKind::Hash(_) => data
            .get(..width * HASH_BYTES)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StorageError::Corrupt(format!("{} is short", source.path()))),
        TileKind::Entries => {
            let entries = decode_bundle(data).ok_or_else(|| {
                StorageError::Corrupt(format!("{} is not a bundle", source.path()))
            })?;
            let mut out = Vec::new();
            for entry in entries.iter().take(width) {
                crate::tiles::append_bundle_entry(&mut out, entry).ok_or_else(|| {
                    StorageError::Corrupt(format!("{} has an oversized entry", source.path()))
                })?;
            }
            Ok(out)
        }
    }
}

fn check_tile_shape(tile: TileId, data: &[u8]) -> Result<(), StorageError> {
    let ok = match tile.kind {
        TileKind::Hash(_) => data.len() == usize::from(tile.width) * HASH_BYTES,
        TileKind::Entries => {
            decode_bundle(data).is_some_and(|e| e.len() == usize::from(tile.width))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StorageError::Corrupt(format!(
            "{} does not hold {} {}",
            tile.path(),
            tile.width,
            if matches!(tile.kind, TileKind::Entries) {
                "entries"
            } else {
                "hashes"
            }
        )))
    }
}

impl HashSource for TreeView<'_> {
    type Error = ReadError;

    /// A node at Merkle level L is either stored directly (L a multiple of 8) or is the
    /// root of 2^(L mod 8) consecutive stored hashes of tile level L / 8.
    ///
    /// The proof code asks only for nodes inside the tree it proves, so a node this
    /// size does not cover is an internal error, not a 404.
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        ids.iter()
            .map(|id| {
                let missing = || {
                    ReadError::Internal(format!(
                        "node {}/{} is not in the tree of size {}",
                        id.level, id.index, self.size
                    ))
                };
                let tile_level = id.level / TILE_HEIGHT;
                let within = id.level % TILE_HEIGHT;
                let first = id
                    .index
                    .checked_shl(u32::from(within))
                    .ok_or_else(missing)?;
                let last = first
                    .checked_add((1u64 << within) - 1)
                    .ok_or_else(missing)?;
                let tile =
                    crate::tiles::tile_for_hash(tile_level, last, self.size).ok_or_else(missing)?;
                let levels = self.subtree_levels(tile)?;
                let local = ((first % TILE_WIDTH) >> within) as usize;
                levels
                    .get(usize::from(within))
                    .and_then(|level| level.get(local))
                    .copied()
                    .ok_or_else(|| {
                        StorageError::Corrupt(format!("{} is short", tile.path())).into()
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryTiles;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A tile store that counts its reads.
    #[derive(Default)]
    struct Counting {
        inner: MemoryTiles,
        gets: AtomicUsize,
    }

    impl TileStore for Counting {
        fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
            self.inner.put(path, data)
        }
        fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(path)
        }
        fn delete(&self, path: &str) -> Result<(), StorageError> {
            self.inner.delete(path)
        }
    }

    impl Counting {
        fn reads(&self) -> usize {
            self.gets.swap(0, Ordering::SeqCst)
        }
    }

    /// A log of `bundles` full entry bundles of 2 KiB entries and its first hash tile.
    fn bundled_log(bundles: u64) -> Counting {
        let store = Counting::default();
        let entry = vec![7u8; 2048];
        let bundle = crate::tiles::encode_bundle((0..TILE_WIDTH).map(|_| entry.as_slice()))
            .expect("entries fit a bundle");
        for index in 0..bundles {
            let tile = TileId {
                kind: TileKind::Entries,
                index,
                width: TILE_WIDTH as u16,
            };
            store.put(&tile.path(), &bundle).unwrap();
        }
        store
            .put(&first_hash_tile().path(), &[1u8; HASH_BYTES * 256])
            .unwrap();
        store
    }

    fn first_hash_tile() -> TileId {
        TileId {
            kind: TileKind::Hash(0),
            index: 0,
            width: TILE_WIDTH as u16,
        }
    }

    /// Entries read at scattered indexes, far more bundle bytes than the whole cache
    /// holds, leave the hash tiles cached: bundles are kept apart, in a small part of
    /// their own, so a receipt's bundle never pushes out the tiles its proof needs.
    #[test]
    fn scattered_entry_reads_leave_the_hash_tiles_cached() {
        let bundles = (CACHE_TILE_BYTES / (TILE_WIDTH as usize * 2050)) as u64 + 8;
        let store = bundled_log(bundles);
        let cache = TileCache::default();
        let view = TreeView::new(&store, &cache, bundles * TILE_WIDTH);
        view.tile(first_hash_tile()).unwrap();
        assert_eq!(store.reads(), 1);
        for index in (0..bundles).rev() {
            assert_eq!(view.entry(index * TILE_WIDTH + 3).unwrap().len(), 2048);
        }
        assert_eq!(store.reads(), bundles as usize, "one read per bundle");
        view.tile(first_hash_tile()).unwrap();
        assert_eq!(store.reads(), 0, "the hash tile was pushed out by bundles");
    }

    /// A reader walking entries in order reads each bundle once, not once per entry
    /// (start-up's tail, blob expiry and the follower read this way).
    #[test]
    fn entries_read_in_order_read_each_bundle_once() {
        let store = bundled_log(3);
        let cache = TileCache::default();
        let view = TreeView::new(&store, &cache, 3 * TILE_WIDTH);
        for index in 0..3 * TILE_WIDTH {
            view.entry(index).unwrap();
        }
        assert_eq!(store.reads(), 3);
    }

    /// Entry `index`'s bytes: its index, repeated, so every entry differs.
    fn numbered(index: u64) -> Vec<u8> {
        index.to_be_bytes().repeat(1 + (index % 5) as usize)
    }

    /// Stores bundle `bundle` of numbered entries at `width`.
    fn put_bundle(store: &Counting, bundle: u64, width: u64) {
        let entries: Vec<Vec<u8>> = (0..width)
            .map(|i| numbered(bundle * TILE_WIDTH + i))
            .collect();
        let data = crate::tiles::encode_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        let tile = TileId {
            kind: TileKind::Entries,
            index: bundle,
            width: width as u16,
        };
        store.put(&tile.path(), &data).unwrap();
    }

    /// A scattered read gives what `entry` gives at every index, from a full bundle, from
    /// the committed partial, and from the full bundle once that partial is gone; it
    /// keeps no bundle, so reading again goes to the store again.
    #[test]
    fn an_entry_read_once_is_the_entry_and_keeps_no_bundle() {
        let store = Counting::default();
        put_bundle(&store, 0, TILE_WIDTH);
        put_bundle(&store, 1, 10);
        let size = TILE_WIDTH + 10;
        let cache = TileCache::default();
        let view = TreeView::new(&store, &cache, size);
        for index in 0..size {
            assert_eq!(view.entry_once(index).unwrap(), numbered(index), "{index}");
        }
        assert_eq!(store.reads(), size as usize, "one store read per entry");
        view.entry_once(3).unwrap();
        assert_eq!(store.reads(), 1, "no bundle was kept");
        // A view inside the committed size reads the committed partial.
        let inside = TreeView::within(&store, &cache, TILE_WIDTH + 4, size);
        assert_eq!(
            inside.entry_once(TILE_WIDTH + 3).unwrap(),
            numbered(TILE_WIDTH + 3)
        );
        assert!(
            inside.entry_once(TILE_WIDTH + 4).is_err(),
            "beyond the view"
        );
        // The tile filled up and its partial was removed: read from the full bundle.
        put_bundle(&store, 1, TILE_WIDTH);
        store
            .delete(
                &TileId {
                    kind: TileKind::Entries,
                    index: 1,
                    width: 10,
                }
                .path(),
            )
            .unwrap();
        assert_eq!(
            view.entry_once(TILE_WIDTH + 9).unwrap(),
            numbered(TILE_WIDTH + 9)
        );
        // A bundle `entry` cached is used without a store read.
        view.entry(5).unwrap();
        store.reads();
        assert_eq!(view.entry_once(7).unwrap(), numbered(7));
        assert_eq!(store.reads(), 0);
    }

    /// Which kind of read error a proof failure becomes: only a bad index or size is
    /// the caller's; a source that miscounts is the log's own fault.
    #[test]
    fn proof_failures_keep_not_found_for_the_callers_mistakes_only() {
        let kind = |e: &ReadError| match e {
            ReadError::NotFound(_) => "not found",
            ReadError::Internal(_) => "internal",
            ReadError::Storage(_) => "storage",
        };
        let cases: Vec<(ProofError<ReadError>, &str)> = vec![
            (
                ProofError::InvalidSize {
                    reason: "leaf index must be below tree size",
                    first: 5,
                    second: 5,
                },
                "not found",
            ),
            (
                ProofError::SourceCount {
                    expected: 3,
                    got: 2,
                },
                "internal",
            ),
            (
                ProofError::Source(ReadError::NotFound("beyond".into())),
                "not found",
            ),
            (
                ProofError::Source(ReadError::Internal("node".into())),
                "internal",
            ),
            (
                ProofError::Source(StorageError::Corrupt("short".into()).into()),
                "storage",
            ),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            assert_eq!(kind(&ReadError::from(error)), expected, "{shown}");
        }
    }
}

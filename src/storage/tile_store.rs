//! The tile store port: a dumb object store for the log's immutable objects (hash tiles
//! and entry bundles), addressed by their tlog-tiles path (`tile/0/x001/234.p/5`).
//!
//! Dumb on purpose, like Sunlight's `Backend`: no transactions, no listing, no knowledge
//! of checkpoints. The engine's commit protocol (`log`) makes every tile of a batch
//! durable through [`TileStore::put_batch`] before it swaps the checkpoint, so a store
//! only has to keep what it acknowledged. An object store (S3 through the object_store
//! crate, or a content-addressed blob store) fits the same three calls.
//!
//! May import: `tiles` (tile names) and the storage error.

use super::StorageError;
use crate::tiles::TileId;

/// A tile (hash tile or entry bundle) to write as part of a batch.
#[derive(Debug, Clone)]
pub struct TileWrite {
    /// Which tile, with its width.
    pub tile: TileId,
    /// Its complete contents.
    pub data: Vec<u8>,
}

/// Where the log's tiles live (see the module documentation).
///
/// Paths are relative, `/`-separated, and come from the engine ([`TileId::path`]).
pub trait TileStore: Send + Sync {
    /// Stores `data` at `path`.
    ///
    /// - MUST be durable when it returns `Ok`: a crash afterwards loses nothing.
    /// - When [`TileStore::create_only`] is `false`, MUST replace an object already at
    ///   `path`. The engine rewrites only paths that no installed checkpoint covers
    ///   (leftovers of a batch that was never committed), never a committed tile.
    /// - When it is `true`, MUST NOT replace an object: writing the bytes already stored
    ///   succeeds, other bytes fail with [`StorageError::Conflict`] and change nothing.
    ///   Such a store is used only with a lock that journals batches
    ///   ([`super::CheckpointLock::journals`]), so every rewrite carries the same bytes.
    /// - MAY leave a torn or stale object behind when it fails or the process dies; the
    ///   engine never reads a path that no installed checkpoint covers.
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError>;

    /// Stores every tile of one batch, with [`TileStore::put`]'s contract for each.
    /// Tiles need not become durable in order or atomically together: the checkpoint
    /// swap that follows is the commit point.
    ///
    /// SHOULD share the durability work between the tiles (one fsync per directory,
    /// uploads in parallel). The default puts them one after another.
    fn put_batch(&self, writes: &[TileWrite]) -> Result<(), StorageError> {
        for write in writes {
            self.put(&write.tile.path(), &write.data)?;
        }
        Ok(())
    }

    /// The object at `path`, or `None` if there is none.
    ///
    /// - MUST return exactly the bytes of the last successful `put` of `path`.
    /// - SHOULD be cheap to call concurrently: the read side calls it from every HTTP
    ///   handler (behind a cache keyed by tile name).
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// The entry at `position` of the entry bundle at `path`, or `None` if there is no
    /// object there; [`StorageError::Corrupt`] if the bundle has no such entry.
    ///
    /// - MUST return exactly the bytes [`crate::tiles::decode_bundle`] gives at
    ///   `position` of what [`TileStore::get`] returns.
    /// - SHOULD read no more of the object than it needs, and keep none of it: receipts
    ///   at scattered indexes call it, and a whole bundle per receipt is what kept the
    ///   server's memory over its budget. The default reads the whole object.
    fn get_bundle_entry(
        &self,
        path: &str,
        position: usize,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match self.get(path)? {
            Some(data) => bundle_entry(path, &mut data.as_slice(), position).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes the object at `path` and every object under `path/`. Nothing there is not
    /// an error.
    ///
    /// The engine deletes only the partial versions of a tile once its full version is
    /// committed (tlog-tiles allows it; readers cut old partials from the full tile). A
    /// store MAY keep them instead and do nothing.
    fn delete(&self, path: &str) -> Result<(), StorageError>;

    /// Whether `put` is create-only (never replaces an object; see [`TileStore::put`]).
    /// Default `false`.
    fn create_only(&self) -> bool {
        false
    }

    /// Stores `signed`, a checkpoint the lock has just installed, as the store's served
    /// copy (`checkpoint` beside the tiles), so that the store alone is a complete
    /// tlog-tiles log that a static server or CDN can serve.
    ///
    /// - The copy is not the commit point (the lock's swap is) and MAY lag: the engine
    ///   calls this after each swap and logs a failure instead of failing the batch.
    /// - MUST replace the served copy (the one object that changes), but SHOULD NOT
    ///   replace a larger checkpoint with a smaller one (a late writer).
    /// - A store whose checkpoint the lock itself keeps in place (POSIX: the lock's
    ///   `checkpoint` file is in the tiles directory) does nothing: the default.
    fn publish_checkpoint(&self, signed: &[u8], size: u64) -> Result<(), StorageError> {
        let _ = (signed, size);
        Ok(())
    }

    /// The served copy [`TileStore::publish_checkpoint`] wrote, or `None` (none yet, or
    /// the store keeps none: the default).
    fn published_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(None)
    }
}

/// The entry at `position` of the bundle at `path`, read from `bundle` (for
/// [`TileStore::get_bundle_entry`]).
pub(crate) fn bundle_entry(
    path: &str,
    bundle: &mut impl std::io::Read,
    position: usize,
) -> Result<Vec<u8>, StorageError> {
    match crate::tiles::read_bundle_entry(bundle, position) {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(StorageError::Corrupt(format!(
            "{path} has no entry at position {position}"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StorageError::Corrupt(
            format!("{path} is not a bundle: it ends inside an entry"),
        )),
        Err(e) => Err(StorageError::io(format!("reading {path}"), e)),
    }
}

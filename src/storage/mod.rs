//! Storage backends for the log, behind one trait.
//!
//! The log itself (tiles, entry bundles, checkpoints) lives behind [`LogStore`]; the
//! embedded default is [`posix::PosixStore`], a C2SP tlog-tiles directory. The
//! lookup indexes (leaf hash → index, dedup key → index) live in [`index::Index`]
//! (14-byte records in sorted runs), a projection that can always be rebuilt from the
//! tiles. The
//! catalog's per-publication records live in [`projection::ProjectionStore`]
//! (publication records in a [`slots::SlotFile`], the rest in sled), rebuilt from the
//! log at every start.

pub mod blobs;
pub mod durable;
pub mod index;
pub mod posix;
pub mod projection;
pub mod slots;

use crate::tiles::TileId;

/// An error from a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused an operation.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The embedded database (sled, holding the catalog projection) failed.
    #[error("database: {0}")]
    Database(String),
    /// Stored data does not have the shape it must have.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A tile (hash tile or entry bundle) to write as part of a batch.
#[derive(Debug, Clone)]
pub struct TileWrite {
    /// Which tile, with its width.
    pub tile: TileId,
    /// Its complete contents.
    pub data: Vec<u8>,
}

/// Where the log's tiles and checkpoint are kept.
///
/// Commit protocol: [`LogStore::commit`] makes every tile of a batch durable first and
/// only then makes the new checkpoint visible, atomically. A crash before that point
/// leaves the previous checkpoint in force; tiles beyond it are leftovers that are
/// never served (readers only read tiles their checkpoint covers) and are overwritten
/// by later batches.
pub trait LogStore: Send + Sync {
    /// Durably writes `tiles`, then atomically installs `checkpoint` as the current one.
    fn commit(&self, tiles: &[TileWrite], checkpoint: &[u8]) -> Result<(), StorageError>;
    /// The current (committed) signed checkpoint, if any.
    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError>;
    /// A checkpoint that was written durably but whose installation was interrupted.
    /// Recovery either promotes it (if its tiles check out) or discards it.
    fn read_pending_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError>;
    /// Installs the pending checkpoint as the current one.
    fn promote_pending_checkpoint(&self) -> Result<(), StorageError>;
    /// Deletes the pending checkpoint.
    fn discard_pending_checkpoint(&self) -> Result<(), StorageError>;
    /// Reads exactly the named tile file, or `None` if it does not exist.
    fn read_tile(&self, tile: TileId) -> Result<Option<Vec<u8>>, StorageError>;
    /// Deletes the partial versions of a tile once its full version is committed
    /// (tlog-tiles allows this; readers derive old partials from the full tile).
    fn remove_partials(&self, full: TileId) -> Result<(), StorageError>;
}

//! Storage: the ports the log engine writes through, and their drivers.
//!
//! Owns four ports, each a small trait with its contract written as MUST/SHOULD:
//! - [`TileStore`] (`tile_store.rs`): immutable objects (hash tiles, entry bundles) by
//!   tlog-tiles path: put, get, delete;
//! - [`CheckpointLock`] (`checkpoint_lock.rs`): the current signed checkpoint, replaced
//!   only by compare-and-swap;
//! - [`LookupIndex`] (`lookup_index.rs`): leaf hash → index and dedup key → index
//!   candidates, rebuildable from the tiles;
//! - the catalog's record store is [`crate::catalog::RecordStore`]; its on-disk driver is
//!   [`records::DiskRecordStore`].
//!
//! Drivers, one file per port: [`posix::PosixTiles`] and [`posix::PosixLock`] (the
//! tlog-tiles directory and its `checkpoint.pending` + rename), [`index::Index`] (sorted
//! run files), [`records::DiskRecordStore`] (slot file + LSM tree), and [`memory`] (tiles, lock
//! and index in memory, with fault injection), [`object::ObjectTiles`] (tiles on S3 or
//! any S3-compatible bucket, create-only) and [`postgres::PgLock`] (the checkpoint in
//! PostgreSQL, with the sequencer lease, its fencing epoch and the batch journal). [`Backends`] bundles one driver per port;
//! the command line chooses them ([`Backends::posix`]) and hands them to the engine.
//! The commit protocol itself (tiles durable, then the checkpoint swap) and recovery
//! belong to the engine (`log`), not to any driver.
//!
//! Also here: [`blobs`] (the content-addressed evidence store) and [`durable`] (fsync
//! helpers, also used by key files and the witness).
//!
//! May import: `tiles` (tile names) and the `catalog` root re-exports (the record store
//! port). Nothing from `log` or above.

mod backends;
pub mod blobs;
mod checkpoint_lock;
pub mod durable;
pub mod index;
mod lookup_index;
pub mod memory;
pub mod object;
pub mod posix;
pub mod postgres;
pub mod records;
mod remote;
mod tile_store;

pub use backends::{Backends, LogBackends, RecordsIn};
pub use checkpoint_lock::{CheckpointLock, LockedCheckpoint, StagedBatch};
pub use lookup_index::{IndexedLeaf, LookupIndex};
pub use tile_store::{TileStore, TileWrite};

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
    /// The embedded database (the LSM tree holding the catalog projection) failed.
    #[error("database: {0}")]
    Database(String),
    /// Stored data does not have the shape it must have.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
    /// Another process holds the data directory's lock (the message names it).
    #[error("{0}")]
    Locked(String),
    /// A compare-and-swap of the checkpoint found another checkpoint than the one it
    /// expected (another writer, or a lock out of step with the engine).
    #[error("checkpoint lock: {0}")]
    Conflict(String),
    /// A backend cannot be used as configured (a bad URL, a store that overwrites
    /// create-only writes, a combination of drivers that is not safe).
    #[error("{0}")]
    Refused(String),
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

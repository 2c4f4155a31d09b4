//! The lookup index port: which leaves may have a given leaf hash or dedup key.
//!
//! The index is a projection of the tiles, never needed to recover the log: the engine
//! confirms every candidate against the entry itself, and after a restart re-records
//! every leaf the index does not durably cover.
//!
//! May import: the storage error only.

use super::StorageError;

/// One indexed leaf.
#[derive(Debug, Clone, Copy)]
pub struct IndexedLeaf {
    /// Its position in the log.
    pub index: u64,
    /// RFC 6962 leaf hash.
    pub leaf_hash: [u8; 32],
    /// The submission's dedup key, if it has one (genesis has none).
    pub dedup_key: Option<[u8; 32]>,
}

/// Leaf hash → index and dedup key → index (see the module documentation).
pub trait LookupIndex: Send + Sync {
    /// The tree size the index covers durably: after a restart the engine records every
    /// leaf from this size on again.
    ///
    /// MUST NOT exceed a size whose leaves the index still finds after a crash.
    fn indexed_size(&self) -> Result<u64, StorageError>;

    /// Indices of leaves whose leaf hash may be `leaf_hash`.
    ///
    /// MUST include every recorded leaf with that hash; MAY include others (the engine
    /// confirms each candidate by hashing the entry), and any order or repeats.
    fn leaf_candidates(&self, leaf_hash: &[u8; 32]) -> Result<Vec<u64>, StorageError>;

    /// Indices of leaves whose dedup key may be `key`, with the same contract as
    /// [`LookupIndex::leaf_candidates`].
    fn dedup_candidates(&self, key: &[u8; 32]) -> Result<Vec<u64>, StorageError>;

    /// Records `leaves`, which bring the log to `new_size`.
    ///
    /// - MUST make them findable as soon as it returns.
    /// - SHOULD do no I/O: the committer calls it before it answers a batch.
    /// - MAY record a leaf twice (recovery re-records what was not durable).
    fn record(&self, leaves: &[IndexedLeaf], new_size: u64) -> Result<(), StorageError>;

    /// Makes records durable if enough have accumulated. The committer calls it after
    /// each batch's answers, so its I/O delays no request. The default does nothing.
    fn persist_if_full(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Makes every record durable (on shutdown). The default does nothing.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

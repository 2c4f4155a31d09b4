//! The checkpoint lock port: the log's current signed checkpoint, replaced only by a
//! compare-and-swap from the checkpoint the engine last installed.
//!
//! As Sunlight's `LockBackend`: the swap is the commit point of every batch (the engine
//! swaps only after every tile of the batch is durable, see `log::commit`), and the
//! compare stops a second writer from installing a tree the first never extended. A
//! database fits it in one statement (`UPDATE checkpoint SET size = $1, body = $2 WHERE
//! size = $3`); the POSIX driver writes `checkpoint.pending` and renames it.
//!
//! A lock MAY also journal batches ([`CheckpointLock::journals`]): the engine then
//! stages each batch (its tiles and its signed checkpoint) in the lock before it writes
//! any tile, and whoever opens the log next finishes a staged batch that extends the
//! installed checkpoint. A batch's tiles are then fixed once staged, so a tile store may
//! be create-only ([`super::TileStore::create_only`]): every rewrite carries the same
//! bytes. The PostgreSQL lock journals; the POSIX and memory locks do not.
//!
//! May import: the storage error and the other ports' value types.

use super::{IndexedLeaf, StorageError, TileWrite};

/// A batch staged in a journaling lock and not yet installed.
#[derive(Debug, Clone)]
pub struct StagedBatch {
    /// The size of the checkpoint it extends (`None`: genesis).
    pub old_size: Option<u64>,
    /// The size of its checkpoint.
    pub new_size: u64,
    /// Its signed checkpoint.
    pub signed: Vec<u8>,
    /// Every tile it writes.
    pub writes: Vec<TileWrite>,
}

/// A signed checkpoint as the lock stores it: its tree size and its exact bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedCheckpoint<'a> {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The signed note, byte for byte.
    pub signed: &'a [u8],
}

/// Holds the current checkpoint (see the module documentation).
pub trait CheckpointLock: Send + Sync {
    /// The current checkpoint's bytes, or `None` before the first swap.
    ///
    /// MUST return the `new` of the last swap that returned `Ok` (or a later one).
    fn read(&self) -> Result<Option<Vec<u8>>, StorageError>;

    /// Installs `new` if the current checkpoint is `old` (`None`: there is none yet).
    ///
    /// - MUST be atomic: a reader sees `old` or `new`, never anything else.
    /// - MUST be durable when it returns `Ok`: this is the commit point, after which
    ///   the batch's requests are answered.
    /// - MUST refuse with [`StorageError::Conflict`], changing nothing, if the current
    ///   checkpoint is not `old`. It MAY compare the sizes only: the engine swaps only to
    ///   larger sizes, so a stored size names one stored checkpoint.
    /// - MAY have installed `new` when it returns another error (a reply lost after the
    ///   write). The engine then stops taking writes, and recovery trusts whatever
    ///   [`CheckpointLock::read`] returns after a restart.
    fn swap(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
    ) -> Result<(), StorageError>;

    /// A swap a crash interrupted half-way, if the lock cannot know by itself whether
    /// it finished: the checkpoint it was installing. The engine decides (see
    /// [`CheckpointLock::settle`]) before anything else is signed.
    ///
    /// A lock whose swap is atomic has none (the default).
    fn interrupted(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(None)
    }

    /// Completes (`finish`) or abandons the interrupted swap. The engine finishes it
    /// only if the checkpoint verifies, is larger than the current one, and the stored
    /// tiles rebuild its root.
    ///
    /// MUST be durable when it returns `Ok`; afterwards `interrupted` returns `None`.
    fn settle(&self, finish: bool) -> Result<(), StorageError> {
        let _ = finish;
        Ok(())
    }

    /// Whether this lock journals batches ([`CheckpointLock::stage`]). Default `false`.
    fn journals(&self) -> bool {
        false
    }

    /// Makes the batch `old` → `new` durable before any of its tiles is written: its
    /// tiles, its signed checkpoint and its leaves' dedup keys.
    ///
    /// - A journaling lock MUST be durable when it returns `Ok`, and MUST refuse with
    ///   [`StorageError::Conflict`] when the caller may no longer write (fenced) or the
    ///   current checkpoint is not `old`.
    /// - MUST accept the same batch staged again (a retry) and MUST refuse another batch
    ///   from the same `old` with [`StorageError::Conflict`].
    /// - A lock that does not journal does nothing (the default).
    fn stage(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
        writes: &[TileWrite],
        leaves: &[IndexedLeaf],
    ) -> Result<(), StorageError> {
        let _ = (old, new, writes, leaves);
        Ok(())
    }

    /// The staged batch that extends the current checkpoint, if any: the engine writes
    /// its tiles and swaps to its checkpoint at open, before anything else is signed.
    /// A successful swap drops every staged batch it supersedes. Default: none.
    fn staged(&self) -> Result<Option<StagedBatch>, StorageError> {
        Ok(None)
    }
}

//! The committer: the second stage of the write pipeline. It makes each prepared batch
//! durable ([`commit`]: tiles, then the checkpoint swap, the commit point), publishes the
//! new head, updates the index, and only then answers the batch's requests.
//!
//! [`commit`] is the commit protocol (log-format/tiles.md §Commit protocol), written
//! once for every tile store and checkpoint lock; genesis goes through it too.
//!
//! May import: the `storage` ports, `note`, and the engine's shared state.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Head, Shared, SubmitError, Submitted};
use crate::note::Checkpoint;
use crate::storage::{
    CheckpointLock, IndexedLeaf, LockedCheckpoint, StorageError, TileStore, TileWrite,
};

/// A batch could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A tile of the batch could not be made durable; the checkpoint was not swapped.
    #[error("writing the batch's tiles: {0}")]
    Tiles(#[source] StorageError),
    /// The checkpoint swap failed. The lock may or may not hold the new checkpoint; a
    /// restart reads which.
    #[error("installing the checkpoint: {0}")]
    Checkpoint(#[source] StorageError),
    /// The batch is durable, but recording it in the lookup index failed.
    #[error("updating the index: {0}")]
    Index(#[source] StorageError),
}

/// The commit protocol: makes every tile in `writes` durable, then swaps the checkpoint
/// from `old` (the one installed now; `None` for genesis) to `new`. The swap is the
/// commit point: until it returns `Ok`, nothing of the batch may be served or answered.
/// On any error the caller must stop writing (later batches were built on this one).
pub fn commit(
    tiles: &dyn TileStore,
    lock: &dyn CheckpointLock,
    writes: &[TileWrite],
    old: Option<LockedCheckpoint<'_>>,
    new: LockedCheckpoint<'_>,
) -> Result<(), CommitError> {
    tiles.put_batch(writes).map_err(CommitError::Tiles)?;
    lock.swap(old, new).map_err(CommitError::Checkpoint)
}

/// Who to answer once a batch is durable.
pub(crate) struct Reply {
    pub sender: oneshot::Sender<Result<Submitted, SubmitError>>,
    pub index: u64,
    pub duplicate: bool,
}

impl Reply {
    pub fn appended(sender: oneshot::Sender<Result<Submitted, SubmitError>>, index: u64) -> Reply {
        Reply {
            sender,
            index,
            duplicate: false,
        }
    }

    pub fn duplicate(sender: oneshot::Sender<Result<Submitted, SubmitError>>, index: u64) -> Reply {
        Reply {
            sender,
            index,
            duplicate: true,
        }
    }
}

/// A batch admitted and integrated in memory, waiting to become durable.
pub(crate) struct PreparedBatch {
    pub writes: Vec<TileWrite>,
    pub checkpoint: Checkpoint,
    pub signed: Vec<u8>,
    pub indexed: Vec<IndexedLeaf>,
    pub replies: Vec<Reply>,
    pub prepared_in: Duration,
}

/// Commits batches in the order the sequencer prepared them.
pub(crate) fn run(shared: Arc<Shared>, batches: Receiver<PreparedBatch>) {
    while let Ok(batch) = batches.recv() {
        if shared.failed.load(Ordering::Acquire) {
            answer_failed(batch.replies);
            continue;
        }
        let started = Instant::now();
        let size = batch.checkpoint.size;
        if let Err(e) = commit_batch(&shared, &batch) {
            // Later batches were built on this one: none of them may be committed.
            tracing::error!(error = %e, "log failed; refusing writes until restarted");
            shared.failed.store(true, Ordering::Release);
            answer_failed(batch.replies);
            continue;
        }
        tracing::debug!(
            appended = batch.indexed.len(),
            answers = batch.replies.len(),
            prepare_us = batch.prepared_in.as_micros() as u64,
            commit_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        for reply in batch.replies {
            let _ = reply.sender.send(Ok(Submitted {
                index: reply.index,
                tree_size: size,
                duplicate: reply.duplicate,
            }));
        }
        // After the answers: writing a run (and merging) is I/O no request waits for.
        if let Err(e) = shared.index.persist_if_full() {
            tracing::warn!(error = %e, "writing the lookup index; it stays in memory");
        }
    }
    if let Err(e) = shared.index.flush() {
        tracing::warn!(error = %e, "flushing the index on shutdown");
    }
}

fn answer_failed(replies: Vec<Reply>) {
    for reply in replies {
        let _ = reply.sender.send(Err(SubmitError::failed()));
    }
}

/// Makes the batch durable and visible.
fn commit_batch(shared: &Shared, batch: &PreparedBatch) -> Result<(), CommitError> {
    if batch.indexed.is_empty() {
        // Only answers for duplicates of entries in earlier batches, which are durable
        // now: batches commit in order.
        return Ok(());
    }
    let head = shared.head();
    let old = LockedCheckpoint {
        size: head.checkpoint.size,
        signed: &head.signed,
    };
    let new = LockedCheckpoint {
        size: batch.checkpoint.size,
        signed: &batch.signed,
    };
    commit(
        shared.tiles.as_ref(),
        shared.lock.as_ref(),
        &batch.writes,
        Some(old),
        new,
    )?;
    shared.set_head(Head {
        checkpoint: batch.checkpoint.clone(),
        signed: Arc::new(batch.signed.clone()),
    });
    remove_partials(shared.tiles.as_ref(), &batch.writes);
    shared
        .index
        .record(&batch.indexed, batch.checkpoint.size)
        .map_err(CommitError::Index)?;
    shared.remove_uncommitted(&batch.indexed);
    Ok(())
}

/// Deletes the partial versions of every tile the batch completed (tlog-tiles allows
/// it; readers cut old partials from the full tile). A failure only leaves them behind.
fn remove_partials(tiles: &dyn TileStore, writes: &[TileWrite]) {
    for write in writes.iter().filter(|w| w.tile.is_full()) {
        if let Err(e) = tiles.delete(&format!("{}.p", write.tile.path())) {
            tracing::warn!(error = %e, tile = %write.tile, "removing partial tiles");
        }
    }
}

//! The committer: the second stage of the write pipeline. It makes each prepared batch
//! durable ([`commit`]: tiles, then the checkpoint swap, the commit point), publishes the
//! new head, updates the index, and only then answers the batch's requests.
//!
//! [`commit`] is the commit protocol (log-format/tiles.md §Commit protocol), written
//! once for every tile store and checkpoint lock; genesis goes through it too.
//!
//! A failed commit is retried, not fatal. The states ([`WriteState`]):
//! - **Healthy**: batches commit as they come.
//! - **Retrying**: a commit failed on a storage error (`ENOSPC`, `EMFILE`, `EIO`, a lost
//!   reply). The batch's requests are answered 503, new submissions are refused 503,
//!   and the committer retries the *same* batch (same tiles, same signed checkpoint,
//!   swapped from the same served head) with doubling back-off. Before each retry it
//!   asks the lock what the failed attempt did (an interrupted swap of this batch is
//!   finished, any other abandoned): the lock holds the batch's checkpoint (durable:
//!   done) or the served head (try again). When a retry succeeds: Healthy again, the
//!   batches queued behind it commit in order, nothing was re-signed.
//! - **Failed**: the lock holds a third checkpoint (another writer), the error is not
//!   the storage's, or the log is shutting down during a retry. Only a restart (which
//!   recovers from the storage, `open.rs`) takes writes again.
//!
//! No request is ever answered with success before its batch is durable; a request
//! answered 503 may still become durable (a resubmission is then a duplicate).
//!
//! May import: the `storage` ports, `note`, and the engine's shared state.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Head, Shared, SubmitError, Submitted, WriteState};
use crate::note::Checkpoint;
use crate::storage::{
    CheckpointLock, IndexedLeaf, LockedCheckpoint, StorageError, TileStore, TileWrite,
};

/// A batch could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A journaling lock did not stage the batch (fenced, or unreachable); nothing of it
    /// was written.
    #[error("staging the batch: {0}")]
    Stage(#[source] StorageError),
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

/// The commit protocol: stages the batch in a journaling lock (its tiles, checkpoint and
/// dedup keys made durable there first, so that whoever redoes it writes the same
/// bytes), makes every tile in `writes` durable, then swaps the checkpoint from `old`
/// (the one installed now; `None` for genesis) to `new`. The swap is the commit point:
/// until it returns `Ok`, nothing of the batch may be served or answered. On any error
/// the caller must stop writing (later batches were built on this one).
pub fn commit(
    tiles: &dyn TileStore,
    lock: &dyn CheckpointLock,
    writes: &[TileWrite],
    leaves: &[IndexedLeaf],
    old: Option<LockedCheckpoint<'_>>,
    new: LockedCheckpoint<'_>,
) -> Result<(), CommitError> {
    let started = Instant::now();
    lock.stage(old, new, writes, leaves)
        .map_err(CommitError::Stage)?;
    let staged = started.elapsed();
    tiles.put_batch(writes).map_err(CommitError::Tiles)?;
    let written = started.elapsed();
    lock.swap(old, new).map_err(CommitError::Checkpoint)?;
    // The served copy in the tile store (a bucket's `checkpoint` object) may lag: the
    // swap above is the commit point, and the next batch publishes again.
    if let Err(e) = tiles.publish_checkpoint(new.signed, new.size) {
        tracing::warn!(error = %e, size = new.size, "publishing the checkpoint copy");
    }
    tracing::trace!(
        tiles = writes.len(),
        bytes = writes.iter().map(|w| w.data.len()).sum::<usize>(),
        stage_us = staged.as_micros() as u64,
        tiles_us = (written - staged).as_micros() as u64,
        swap_us = (started.elapsed() - written).as_micros() as u64,
        "commit phases"
    );
    Ok(())
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

/// Commits batches in the order the sequencer prepared them, retrying a failed commit
/// (see the module documentation for the state machine).
pub(crate) fn run(shared: Arc<Shared>, batches: Receiver<PreparedBatch>) {
    // Batches taken from the channel while a commit was being retried (their requests
    // were already answered 503); they are committed, in order, after it.
    let mut backlog = VecDeque::new();
    while let Some(mut batch) = backlog.pop_front().or_else(|| batches.recv().ok()) {
        if shared.state() == WriteState::Failed {
            answer_failed(std::mem::take(&mut batch.replies));
            continue;
        }
        let started = Instant::now();
        if let Err(e) = commit_retrying(&shared, &mut batch, &batches, &mut backlog) {
            // Later batches were built on this one: none of them may be committed.
            tracing::error!(error = %e, "log failed; refusing writes until restarted");
            crate::telemetry::log().commit_failures.increment(1);
            shared.set_state(WriteState::Failed);
            answer_failed(std::mem::take(&mut batch.replies));
            continue;
        }
        tracing::debug!(
            appended = batch.indexed.len(),
            prepare_us = batch.prepared_in.as_micros() as u64,
            commit_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        crate::telemetry::batch_committed(
            batch.indexed.len(),
            batch.prepared_in,
            started.elapsed(),
        );
        answer_committed(&mut batch);
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

fn answer_retrying(replies: Vec<Reply>) {
    for reply in replies {
        let _ = reply.sender.send(Err(SubmitError::retrying()));
    }
}

/// Answers the batch's requests; only ever called once the batch is durable.
fn answer_committed(batch: &mut PreparedBatch) {
    let size = batch.checkpoint.size;
    for reply in std::mem::take(&mut batch.replies) {
        let _ = reply.sender.send(Ok(Submitted {
            index: reply.index,
            tree_size: size,
            duplicate: reply.duplicate,
        }));
    }
}

/// Whether a failed commit may succeed if tried again unchanged: the storage refused
/// (`ENOSPC`, `EMFILE`, `EIO`, a lost reply). A conflict (another writer) or data of the
/// wrong shape will not go away by waiting.
fn is_transient(error: &CommitError) -> bool {
    let (CommitError::Stage(e)
    | CommitError::Tiles(e)
    | CommitError::Checkpoint(e)
    | CommitError::Index(e)) = error;
    matches!(e, StorageError::Io { .. } | StorageError::Database(_))
}

/// Commits `batch`, retrying with back-off while the storage fails transiently.
///
/// The retry commits the very same batch: the same tiles and the same signed
/// checkpoint, swapped from the same served head. The sequencer's in-memory state (tree
/// edge, catalog) was built on exactly this batch, so once it is durable memory and
/// storage agree again and writing resumes; nothing is re-derived and no other
/// checkpoint is ever signed for its size. At the first failure the batch's requests
/// are answered 503 (they may resubmit; a resubmission of an entry that did become
/// durable is a duplicate) and [`WriteState::Retrying`] refuses new submissions.
/// Returns an error when it gives up (not transient, or shutting down).
fn commit_retrying(
    shared: &Shared,
    batch: &mut PreparedBatch,
    batches: &Receiver<PreparedBatch>,
    backlog: &mut VecDeque<PreparedBatch>,
) -> Result<(), CommitError> {
    let mut delay = shared.retry.0;
    let mut durable = false;
    let mut failures = 0u32;
    loop {
        let error = match commit_batch(shared, batch, &mut durable) {
            Ok(()) => {
                if failures > 0 {
                    tracing::warn!(failures, "commit retried successfully; taking writes again");
                    shared.set_state(WriteState::Healthy);
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if !is_transient(&error) {
            return Err(error);
        }
        if durable {
            // Only the index failed: the batch is durable, so its answers are true.
            answer_committed(batch);
        }
        if failures == 0 {
            shared.set_state(WriteState::Retrying);
            answer_retrying(std::mem::take(&mut batch.replies));
        }
        failures += 1;
        tracing::error!(error = %error, failures, retry_in_ms = delay.as_millis() as u64,
            "commit failed; refusing writes until a retry succeeds");
        if shared.wait_unless_stopping(delay) {
            return Err(error);
        }
        delay = (delay * 2).min(shared.retry.1);
        // Whoever waits behind this batch gets the same answer, not an open-ended wait.
        while let Ok(mut next) = batches.try_recv() {
            answer_retrying(std::mem::take(&mut next.replies));
            backlog.push_back(next);
        }
        if !durable {
            durable = reconcile(shared, batch)?;
        }
    }
}

/// After a failed attempt, learns from the lock whether the batch's swap happened: an
/// interrupted swap of this batch is finished (its tiles were durable before the swap
/// began) and any other abandoned; then the lock must hold either this batch's
/// checkpoint (`true`: it is durable) or the served head (`false`: try again).
fn reconcile(shared: &Shared, batch: &PreparedBatch) -> Result<bool, CommitError> {
    let lock = shared.lock.as_ref();
    if let Some(pending) = lock.interrupted().map_err(CommitError::Checkpoint)? {
        lock.settle(pending == batch.signed)
            .map_err(CommitError::Checkpoint)?;
    }
    let current = lock.read().map_err(CommitError::Checkpoint)?;
    match current {
        Some(current) if current == batch.signed => Ok(true),
        Some(current) if current == *shared.head().signed => Ok(false),
        _ => Err(CommitError::Checkpoint(StorageError::Conflict(
            "the stored checkpoint is neither the served head nor the batch's; \
             another writer?"
                .into(),
        ))),
    }
}

/// Makes the batch durable (unless `durable` says an earlier attempt did) and visible,
/// then records it in the index.
fn commit_batch(
    shared: &Shared,
    batch: &PreparedBatch,
    durable: &mut bool,
) -> Result<(), CommitError> {
    if batch.indexed.is_empty() {
        // Only answers for duplicates of entries in earlier batches, which are durable
        // now: batches commit in order.
        return Ok(());
    }
    if !*durable {
        let write_started = Instant::now();
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
            &batch.indexed,
            Some(old),
            new,
        )?;
        crate::telemetry::log()
            .durable_write
            .record(write_started.elapsed().as_secs_f64());
        *durable = true;
    }
    if shared.head().checkpoint.size < batch.checkpoint.size {
        // Before the head moves, so the first receipts at the new head find their tiles.
        shared.cache.remember_committed(&batch.writes);
        shared.set_head(Head {
            checkpoint: batch.checkpoint.clone(),
            signed: Arc::new(batch.signed.clone()),
        });
        remove_partials(shared.tiles.as_ref(), &batch.writes);
        crate::telemetry::head_committed(batch.checkpoint.size);
    }
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

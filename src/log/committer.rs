//! The committer: the second stage of the write pipeline. It makes each prepared batch
//! durable (tiles, then the signed checkpoint: the commit point), publishes the new head,
//! updates the index, and only then answers the batch's requests.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Head, Shared, SubmitError, Submitted};
use crate::note::Checkpoint;
use crate::storage::index::IndexedLeaf;
use crate::storage::TileWrite;

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
        if let Err(reason) = commit(&shared, &batch) {
            // Later batches were built on this one: none of them may be committed.
            tracing::error!(reason, "log failed; refusing writes until restarted");
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
fn commit(shared: &Shared, batch: &PreparedBatch) -> Result<(), String> {
    if batch.indexed.is_empty() {
        // Only answers for duplicates of entries in earlier batches, which are durable
        // now: batches commit in order.
        return Ok(());
    }
    shared
        .store
        .commit(&batch.writes, &batch.signed)
        .map_err(|e| format!("committing batch: {e}"))?;
    shared.set_head(Head {
        checkpoint: batch.checkpoint.clone(),
        signed: Arc::new(batch.signed.clone()),
    });
    for write in batch.writes.iter().filter(|w| w.tile.is_full()) {
        if let Err(e) = shared.store.remove_partials(write.tile) {
            tracing::warn!(error = %e, tile = %write.tile, "removing partial tiles");
        }
    }
    shared
        .index
        .record(&batch.indexed, batch.checkpoint.size)
        .map_err(|e| format!("updating the index: {e}"))?;
    shared.remove_uncommitted(&batch.indexed);
    Ok(())
}

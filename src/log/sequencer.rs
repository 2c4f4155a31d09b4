//! The sequencer: one thread that admits submissions in log order and hands each batch
//! to the committer.
//!
//! Requests that arrive together become one batch (up to `batch_max` entries, waiting at
//! most `batch_delay` for more). Admission runs here, against the catalog state the
//! previous entries produced, and each admitted leaf is applied at once, so a grant and
//! a publication that relies on it may share a batch. Stateless work (parsing,
//! signature checks) was done before, in parallel, by the HTTP handlers.
//!
//! The sequencer does not wait for the disk: while the committer makes batch N durable,
//! the sequencer already admits batch N+1 (a two-stage pipeline; the channel between
//! them holds one batch, which is what bounds how far ahead admission may run). Nobody
//! gets an answer before their batch is durable; the committer answers.
//!
//! May import: the `catalog` root re-exports, `tiles`, the lookup index port's
//! `IndexedLeaf`, and the engine's integrator, committer and shared state.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::committer::{PreparedBatch, Reply};
use super::integrator::{BatchTiles, Integrator};
use super::{now_ms, Shared, SubmitError, Submitted, WriteState};
use crate::catalog::{Catalog, CatalogError, Effect, Refusal, Verified};
use crate::storage::IndexedLeaf;
use crate::tiles::MAX_ENTRY_BYTES;
use std::sync::RwLockWriteGuard;

/// How long the sequencer waits for a submission before it checks whether an idle state
/// commitment is owed.
const STATE_IDLE: Duration = Duration::from_millis(50);

/// One submission waiting for its place in the log.
pub(crate) struct Job {
    pub verified: Verified,
    pub dedup_key: [u8; 32],
    pub reply: oneshot::Sender<Result<Submitted, SubmitError>>,
}

/// Everything the sequencer thread owns.
pub(crate) struct Sequencer {
    pub shared: Arc<Shared>,
    pub integrator: Integrator,
    pub batch_max: usize,
    pub batch_delay: Duration,
}

impl Sequencer {
    /// Runs until every sender is dropped (shutdown), handing the last batch to the
    /// committer before returning (dropping `commits` then lets the committer finish).
    pub fn run(mut self, jobs: Receiver<Job>, commits: SyncSender<PreparedBatch>) {
        loop {
            // Idle: a state commitment may be owed for the last batches (`state_commit.rs`).
            let first = match jobs.recv_timeout(STATE_IDLE) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    let size = self.integrator.size();
                    if self.shared.state_commits.idle_commit_wanted(size) {
                        self.shared.state_commits.force_due();
                        if let Some(prepared) = self.prepare(Vec::new()) {
                            if commits.send(prepared).is_err() {
                                return;
                            }
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let batch = self.collect_batch(first, &jobs);
            crate::telemetry::log()
                .queue_depth
                .decrement(batch.len() as f64);
            if let Some(prepared) = self.prepare(batch) {
                if let Err(unsent) = commits.send(prepared) {
                    // The committer is gone (it only stops after a failure).
                    for reply in unsent.0.replies {
                        let _ = reply.sender.send(Err(SubmitError::failed()));
                    }
                }
            }
        }
    }

    fn collect_batch(&self, first: Job, jobs: &Receiver<Job>) -> Vec<Job> {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.batch_delay;
        while batch.len() < self.batch_max {
            match jobs.try_recv() {
                Ok(job) => {
                    batch.push(job);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match jobs.recv_timeout(deadline - now) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        batch
    }

    /// Admits, applies and integrates a batch; returns what the committer must make
    /// durable, or `None` if nothing was appended (every job already answered).
    fn prepare(&mut self, batch: Vec<Job>) -> Option<PreparedBatch> {
        if let Err(refused) = self.shared.writable() {
            let message = refused.to_string();
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(SubmitError::Unavailable(message.clone())));
            }
            return None;
        }
        let started = Instant::now();
        let accepted_at = now_ms();
        let mut tiles = BatchTiles::default();
        let mut in_batch: HashMap<[u8; 32], u64> = HashMap::new();
        let mut indexed = Vec::new();
        let mut replies = Vec::new();
        let mut keys_changed = false;
        let head_size = self.shared.head().checkpoint.size;
        let batch_was_empty = batch.is_empty();

        for job in batch {
            // An entry of this batch, or of a batch still being committed, is not in the
            // index yet; its duplicate is answered once this batch (committed after it) is
            // durable. Its leaf is already applied, so "still in force" is checked as for
            // an indexed one: a leaf later in the same batch may have superseded it.
            let unindexed = in_batch
                .get(&job.dedup_key)
                .copied()
                .or_else(|| self.shared.uncommitted_dedup(&job.dedup_key));
            if let Some(index) = unindexed {
                match self.catalog().duplicate_in_force(&job.verified, index) {
                    Ok(()) => replies.push(Reply::duplicate(job.reply, index)),
                    Err(refusal) => {
                        let _ = job.reply.send(Err(SubmitError::Refused(refusal)));
                    }
                }
                continue;
            }
            match self.shared.find_dedup(&job.dedup_key) {
                Ok(Some(index)) => {
                    // 200 "already logged" only while that leaf still has the same effect.
                    let in_force = self.catalog().duplicate_in_force(&job.verified, index);
                    if let Err(refusal) = in_force {
                        let _ = job.reply.send(Err(SubmitError::Refused(refusal)));
                        continue;
                    }
                    let _ = job.reply.send(Ok(Submitted {
                        index,
                        tree_size: head_size.max(index + 1),
                        duplicate: true,
                    }));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = job.reply.send(Err(SubmitError::Internal(e.to_string())));
                    continue;
                }
            }
            // One short write hold per submission (admit + apply; with the on-disk
            // projection, apply writes the records, never fsyncs), so queries interleave
            // with a long batch.
            let mut catalog = self.catalog();
            let index = self.integrator.size();
            let (leaf, prepared) = match catalog.admit_as(&job.verified, accepted_at, index) {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    let _ = job.reply.send(Err(SubmitError::Refused(refusal)));
                    continue;
                }
            };
            if leaf.len() > MAX_ENTRY_BYTES {
                let _ = job
                    .reply
                    .send(Err(SubmitError::Refused(Refusal::TooLarge(format!(
                        "the leaf would be {} bytes; entries are limited to {MAX_ENTRY_BYTES}",
                        leaf.len()
                    )))));
                continue;
            }
            let applied = catalog.apply_prepared(prepared);
            if let Ok(effect) = &applied {
                if let Err(e) = self.shared.state_commits.record(&catalog, index, effect) {
                    // The map cannot follow the catalog: committing to it would be wrong.
                    drop(catalog);
                    self.fail(&format!("state map at leaf {index}: {e}"));
                    let _ = job.reply.send(Err(SubmitError::failed()));
                    continue;
                }
            }
            drop(catalog);
            match applied {
                Ok(Effect::GrantAdded { .. }) | Ok(Effect::Genesis) => keys_changed = true,
                Ok(_) => {}
                Err(CatalogError::Records(e)) => {
                    // The record store failed; apply changed nothing, but the store is
                    // not to be trusted for the next leaf either: stop taking writes.
                    self.fail(&format!("recording leaf {index}: {e}"));
                    let _ = job.reply.send(Err(SubmitError::failed()));
                    continue;
                }
                Err(e) => {
                    // admit() produced a leaf apply() refuses: a bug, not bad input.
                    tracing::error!(error = %e, index, "admitted leaf failed to apply");
                    let _ = job.reply.send(Err(SubmitError::Internal(format!(
                        "admitted leaf failed to apply: {e}"
                    ))));
                    continue;
                }
            }
            let leaf_hash = match self.integrator.append(&leaf, &mut tiles) {
                Ok(hash) => hash,
                Err(e) => {
                    // Unreachable after the size check above; never leave a half state.
                    self.fail(&format!("integrating leaf {index}: {e}"));
                    let _ = job.reply.send(Err(SubmitError::failed()));
                    continue;
                }
            };
            in_batch.insert(job.dedup_key, index);
            indexed.push(IndexedLeaf {
                index,
                leaf_hash,
                dedup_key: Some(job.dedup_key),
            });
            replies.push(Reply::appended(job.reply, index));
        }

        let idle_commit = batch_was_empty
            && self
                .shared
                .state_commits
                .idle_commit_wanted(self.integrator.size());
        if indexed.is_empty() && !idle_commit {
            // Only duplicates of uncommitted entries can be waiting. They are answered
            // once the batch holding their original is durable: queue an empty batch
            // behind it (nothing to write or sign; the committer only answers it).
            if replies.is_empty() {
                return None;
            }
            return Some(PreparedBatch {
                writes: Vec::new(),
                checkpoint: self.integrator.checkpoint(&self.shared.origin),
                signed: Vec::new(),
                indexed,
                replies,
                prepared_in: started.elapsed(),
            });
        }
        let state_ok = (!self.shared.state_commits.due()
            || self.commit_state(accepted_at, &mut tiles, &mut indexed))
            && self.end_state_batch();
        if !state_ok {
            for reply in replies {
                let _ = reply.sender.send(Err(SubmitError::failed()));
            }
            return None;
        }
        if keys_changed {
            // Safe before the batch is durable: a publication verified with the new key
            // is admitted after the grant, in this batch or a later one, and batches
            // become durable in order.
            let keys = self.catalog().keys();
            self.shared.set_keys(keys);
        }
        let writes = self.integrator.finish(tiles);
        let checkpoint = self.integrator.checkpoint(&self.shared.origin);
        let signed = match checkpoint.sign(&self.shared.signer) {
            Ok(note) => note.to_bytes(),
            Err(e) => {
                self.fail(&format!("signing checkpoint: {e}"));
                for reply in replies {
                    let _ = reply.sender.send(Err(SubmitError::failed()));
                }
                return None;
            }
        };
        self.shared.add_uncommitted(&indexed);
        Some(PreparedBatch {
            writes,
            checkpoint,
            signed,
            indexed,
            replies,
            prepared_in: started.elapsed(),
        })
    }

    /// Hands the batch's map changes to the map thread; false (and the log failed) if
    /// it has stopped.
    fn end_state_batch(&self) -> bool {
        let size = self.integrator.size();
        match self.shared.state_commits.end_batch(size) {
            Ok(()) => true,
            Err(e) => {
                self.fail(&format!("state map at size {size}: {e}"));
                false
            }
        }
    }

    /// Ends the batch with a `StateCommitment` leaf for the newest size the map thread
    /// has finished (`state_commit.rs`), if there is one to commit; false (and the log
    /// failed) if it could not be appended.
    fn commit_state(
        &mut self,
        at_ms: u64,
        tiles: &mut BatchTiles,
        indexed: &mut Vec<IndexedLeaf>,
    ) -> bool {
        let index = self.integrator.size();
        // Without the catalog lock: the first commitment waits for the map thread.
        let chosen = match self.shared.state_commits.choose(index) {
            Ok(Some(chosen)) => chosen,
            Ok(None) => return true,
            Err(e) => {
                self.fail(&format!("state commitment at leaf {index}: {e}"));
                return false;
            }
        };
        let mut catalog = self.catalog();
        let leaf = match self
            .shared
            .state_commits
            .commit(&mut catalog, index, chosen, at_ms)
        {
            Ok(leaf) => leaf,
            Err(e) => {
                drop(catalog);
                self.fail(&format!("state commitment at leaf {index}: {e}"));
                return false;
            }
        };
        drop(catalog);
        match self.integrator.append(&leaf, tiles) {
            Ok(leaf_hash) => {
                indexed.push(IndexedLeaf {
                    index,
                    leaf_hash,
                    dedup_key: None,
                });
                true
            }
            Err(e) => {
                self.fail(&format!("integrating state commitment {index}: {e}"));
                false
            }
        }
    }

    fn catalog(&self) -> RwLockWriteGuard<'_, Catalog> {
        match self.shared.catalog.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Stops accepting writes after a failure. The in-memory state may now be ahead of
    /// the disk; only a restart (which recovers from the disk) is safe.
    fn fail(&self, reason: &str) {
        tracing::error!(reason, "log failed; refusing writes until restarted");
        self.shared.set_state(WriteState::Failed);
    }
}

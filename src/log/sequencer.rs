//! The sequencer: one thread that admits submissions in log order and commits them in
//! groups.
//!
//! Requests that arrive together become one batch (up to `batch_max` entries, waiting at
//! most `batch_delay` for more). Each batch ends in one durable commit — tiles first,
//! then the newly signed checkpoint — and only then does any request in it get its
//! answer. Admission runs here, against the catalog state the previous entries
//! produced, and each admitted leaf is applied at once, so a grant and a publication
//! that relies on it may share a batch. Stateless work (parsing, signature checks) was
//! done before, in parallel, by the HTTP handlers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::integrator::{BatchTiles, Integrator};
use super::{now_ms, Head, Shared, SubmitError, Submitted};
use crate::catalog::{Catalog, Effect, Verified};
use crate::note::Checkpoint;
use crate::storage::index::IndexedLeaf;
use crate::tiles::MAX_ENTRY_BYTES;
use std::sync::RwLockWriteGuard;

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
    /// Runs until every sender is dropped (shutdown), finishing the batch in flight.
    pub fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let batch = self.collect_batch(first, &jobs);
            self.process(batch);
        }
        if let Err(e) = self.shared.index.flush() {
            tracing::warn!(error = %e, "flushing the index on shutdown");
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

    fn process(&mut self, batch: Vec<Job>) {
        if self.shared.failed.load(Ordering::Acquire) {
            for job in batch {
                let _ = job.reply.send(Err(SubmitError::failed()));
            }
            return;
        }
        let accepted_at = now_ms();
        let mut tiles = BatchTiles::default();
        let mut in_batch: HashMap<[u8; 32], u64> = HashMap::new();
        let mut indexed = Vec::new();
        let mut waiting = Vec::new();
        let mut keys_changed = false;
        let head_size = self.shared.head().checkpoint.size;

        for job in batch {
            if let Some(&index) = in_batch.get(&job.dedup_key) {
                waiting.push((job.reply, index, true));
                continue;
            }
            match self.shared.index.find_dedup(&job.dedup_key) {
                Ok(Some(index)) => {
                    let _ = job.reply.send(Ok(Submitted {
                        index,
                        tree_size: head_size,
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
            // One short write hold per submission (admit + apply, no I/O), so queries
            // interleave with a long batch.
            let mut catalog = self.catalog();
            let leaf = match catalog.admit(&job.verified, accepted_at) {
                Ok(leaf) => leaf,
                Err(refusal) => {
                    let _ = job.reply.send(Err(SubmitError::Refused(refusal)));
                    continue;
                }
            };
            if leaf.len() > MAX_ENTRY_BYTES {
                let _ = job.reply.send(Err(SubmitError::Refused(
                    crate::catalog::Refusal::TooLarge(format!(
                        "the leaf would be {} bytes; entries are limited to {MAX_ENTRY_BYTES}",
                        leaf.len()
                    )),
                )));
                continue;
            }
            let index = self.integrator.size();
            let applied = catalog.apply(index, &leaf);
            drop(catalog);
            match applied {
                Ok(Effect::GrantAdded { .. }) | Ok(Effect::Genesis) => keys_changed = true,
                Ok(_) => {}
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
            waiting.push((job.reply, index, false));
        }

        if indexed.is_empty() {
            return;
        }
        let tree_size = match self.commit(tiles, &indexed) {
            Ok(size) => size,
            Err(reason) => {
                self.fail(&reason);
                for (reply, _, _) in waiting {
                    let _ = reply.send(Err(SubmitError::failed()));
                }
                return;
            }
        };
        if keys_changed {
            let keys = self.catalog().keys();
            self.shared.set_keys(keys);
        }
        for (reply, index, duplicate) in waiting {
            let _ = reply.send(Ok(Submitted {
                index,
                tree_size,
                duplicate,
            }));
        }
    }

    fn catalog(&self) -> RwLockWriteGuard<'_, Catalog> {
        match self.shared.catalog.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes the batch durable and visible. Returns the new tree size.
    fn commit(&mut self, tiles: BatchTiles, indexed: &[IndexedLeaf]) -> Result<u64, String> {
        let writes = self.integrator.finish(tiles);
        let checkpoint = Checkpoint {
            origin: self.shared.origin.clone(),
            size: self.integrator.size(),
            root: self.integrator.root(),
            extensions: Vec::new(),
        };
        let signed = checkpoint
            .sign(&self.shared.signer)
            .map_err(|e| format!("signing checkpoint: {e}"))?
            .to_bytes();
        self.shared
            .store
            .commit(&writes, &signed)
            .map_err(|e| format!("committing batch: {e}"))?;
        let size = checkpoint.size;
        self.shared.set_head(Head {
            checkpoint,
            signed: Arc::new(signed),
        });
        for write in writes.iter().filter(|w| w.tile.is_full()) {
            if let Err(e) = self.shared.store.remove_partials(write.tile) {
                tracing::warn!(error = %e, tile = %write.tile, "removing partial tiles");
            }
        }
        self.shared
            .index
            .record(indexed, size)
            .map_err(|e| format!("updating the index: {e}"))?;
        Ok(size)
    }

    /// Stops accepting writes after a storage failure. The in-memory state may now be
    /// ahead of the disk; only a restart (which recovers from the disk) is safe.
    fn fail(&self, reason: &str) {
        tracing::error!(reason, "log failed; refusing writes until restarted");
        self.shared.failed.store(true, Ordering::Release);
    }
}

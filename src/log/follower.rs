//! [`Follower`]: a read-only follower of a log that another process sequences (a
//! frontend's view of it, ADR 0004 "Frontends").
//!
//! Its one job is to know a verified head and read the log at it. The head comes from
//! the checkpoint lock's `read` (polled by the caller through [`Follower::refresh`]),
//! the tiles from the shared tile store through a bounded cache. A new head is taken
//! only if its signature verifies with the log key, it does not shrink or fork the one
//! held, and the stored tiles rebuild its root; otherwise the old head is kept and the
//! refresh fails. It also folds, leaf by leaf, the keys the log has made known (genesis
//! admins, granted publishers), so a frontend can verify submission signatures without
//! the catalog.
//!
//! It owns no signer and no writable port: it cannot sign a checkpoint, write a tile or
//! install anything. May import: `merkle`, `note`, `tiles`, `receipt`, the `catalog`
//! root re-exports, the storage ports and the log's read side.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::reader::{ReadError, TileCache, TreeView};
use super::Head;
use crate::catalog::{KeyDirectory, PreparedLeaf};
use crate::merkle::{self, Hash};
use crate::note::{open_checkpoint, Verifier};
use crate::receipt::Receipt;
use crate::storage::{CheckpointLock, StorageError, TileStore};
use crate::tiles::TileId;

/// A refresh found a head it must not take (the old one is kept).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Reading the lock or the tiles failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the tree failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The lock's checkpoint does not verify with the log key.
    #[error("the coordinator's checkpoint does not verify with the log key: {0}")]
    Signature(String),
    /// The lock's checkpoint is smaller than the head already followed.
    #[error("the coordinator's checkpoint went back from size {had} to {got}")]
    Rollback {
        /// The size followed.
        had: u64,
        /// The size found.
        got: u64,
    },
    /// Two different roots for one size, or tiles that do not rebuild the signed root.
    #[error("{0}")]
    Inconsistent(String),
}

/// What the follower folds as it goes: the keys, and how many leaves they cover.
struct Folded {
    keys: Vec<Verifier>,
    size: u64,
}

/// A read-only follower of one log (see the module documentation).
pub struct Follower {
    verifier: Verifier,
    tiles: Arc<dyn TileStore>,
    lock: Arc<dyn CheckpointLock>,
    cache: TileCache,
    head: watch::Sender<Option<Arc<Head>>>,
    /// Held for a whole refresh: refreshes are serialized, and the keys move with them.
    folded: Mutex<Folded>,
    keys: RwLock<KeyDirectory>,
}

impl Follower {
    /// A follower of the log signed by `verifier` whose tiles are in `tiles` and whose
    /// installed checkpoint `lock` reads. It holds no head until the first
    /// [`Follower::refresh`].
    pub fn new(
        verifier: Verifier,
        tiles: Arc<dyn TileStore>,
        lock: Arc<dyn CheckpointLock>,
    ) -> Follower {
        Follower {
            verifier,
            tiles,
            lock,
            cache: TileCache::default(),
            head: watch::channel(None).0,
            folded: Mutex::new(Folded {
                keys: Vec::new(),
                size: 0,
            }),
            keys: RwLock::new(KeyDirectory::default()),
        }
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The head followed, if any yet.
    pub fn head(&self) -> Option<Arc<Head>> {
        self.head.borrow().clone()
    }

    /// A receiver that sees every newer head.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Head>>> {
        self.head.subscribe()
    }

    /// The keys made known by the leaves of the head (a subset of the sequencer's
    /// newer directory).
    pub fn keys(&self) -> KeyDirectory {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the lock's checkpoint and takes it as the head if it is newer and checks
    /// out (see the module documentation); returns the head held afterwards. Blocking
    /// (one lock read, and tile reads for a new head): call it off the async workers.
    pub fn refresh(&self) -> Result<Option<Arc<Head>>, FollowError> {
        let mut folded = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        let Some(signed) = self.lock.read()? else {
            return Ok(self.head());
        };
        let current = self.head();
        if current
            .as_ref()
            .is_some_and(|h| h.signed.as_slice() == signed)
        {
            return Ok(current);
        }
        let (checkpoint, _) = open_checkpoint(&signed, &self.verifier)
            .map_err(|e| FollowError::Signature(e.to_string()))?;
        if let Some(current) = &current {
            let had = current.checkpoint.size;
            if checkpoint.size < had {
                return Err(FollowError::Rollback {
                    had,
                    got: checkpoint.size,
                });
            }
            if checkpoint.size == had {
                if checkpoint.root != current.checkpoint.root {
                    return Err(FollowError::Inconsistent(format!(
                        "two checkpoints of size {had} with different roots"
                    )));
                }
                // The same tree, signed again (or cosigned): keep the one held.
                return Ok(Some(current.clone()));
            }
        }
        let view = TreeView::new(self.tiles.as_ref(), &self.cache, checkpoint.size);
        let root: Hash = merkle::tree_root(checkpoint.size, &view).map_err(ReadError::from)?;
        if root != checkpoint.root {
            return Err(FollowError::Inconsistent(format!(
                "the stored tiles do not rebuild the root of the checkpoint of size {}",
                checkpoint.size
            )));
        }
        if let Some(current) = &current {
            // The new tree must extend the old one: prove it from the tiles.
            let old = current.checkpoint.size;
            if old > 0 {
                let proof = merkle::consistency_proof(old, checkpoint.size, &view)
                    .map_err(ReadError::from)?;
                merkle::verify_consistency(
                    old,
                    checkpoint.size,
                    &current.checkpoint.root,
                    &checkpoint.root,
                    &proof,
                )
                .map_err(|e| {
                    FollowError::Inconsistent(format!(
                        "the checkpoint of size {} is not consistent with size {old}: {e}",
                        checkpoint.size
                    ))
                })?;
            }
        }
        let known = folded.keys.len();
        for index in folded.size..checkpoint.size {
            let entry = view.entry(index)?;
            // A leaf that does not parse adds no key; the sequencer never logs one.
            if let Ok(leaf) = PreparedLeaf::parse(index, &entry) {
                folded.keys.extend(leaf.introduced_keys());
            }
        }
        folded.size = checkpoint.size;
        if folded.keys.len() != known {
            let keys = KeyDirectory::from_verifiers(folded.keys.iter().cloned());
            *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        }
        let head = Arc::new(Head {
            checkpoint,
            signed: Arc::new(signed),
        });
        self.head.send_replace(Some(head.clone()));
        Ok(Some(head))
    }

    fn view(&self, size: u64) -> Result<(TreeView<'_>, Arc<Head>), ReadError> {
        let head = self
            .head()
            .ok_or_else(|| ReadError::NotFound("no checkpoint is known yet".into()))?;
        let head_size = head.checkpoint.size;
        if size > head_size {
            return Err(ReadError::NotFound(format!(
                "tree size {size} is beyond the current size {head_size}"
            )));
        }
        let view = TreeView::within(self.tiles.as_ref(), &self.cache, size, head_size);
        Ok((view, head))
    }

    fn head_size(&self) -> u64 {
        self.head().map(|h| h.checkpoint.size).unwrap_or(0)
    }

    /// A tile of the followed tree.
    pub fn tile(&self, tile: TileId) -> Result<Arc<Vec<u8>>, ReadError> {
        self.view(self.head_size())?.0.tile(tile)
    }

    /// The exact bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, ReadError> {
        self.view(self.head_size())?.0.entry(index)
    }

    /// The inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        let (view, _) = self.view(size)?;
        merkle::inclusion_proof(index, size, &view).map_err(ReadError::from)
    }

    /// The consistency proof between two tree sizes (`0 < first <= second <= head`).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ReadError> {
        let (view, _) = self.view(second)?;
        merkle::consistency_proof(first, second, &view).map_err(ReadError::from)
    }

    /// A receipt for entry `index` against the head followed (the sequencer's own
    /// signed checkpoint: the follower signs nothing).
    pub fn receipt(&self, index: u64) -> Result<Receipt, ReadError> {
        let (view, head) = self.view(self.head_size())?;
        let size = head.checkpoint.size;
        if index >= size {
            return Err(ReadError::NotFound(format!(
                "entry {index} is not in the tree of size {size}"
            )));
        }
        let entry = view.entry(index)?;
        let proof = merkle::inclusion_proof(index, size, &view)?;
        Ok(Receipt::new(
            self.origin(),
            index,
            &entry,
            size,
            &proof,
            &head.signed,
        ))
    }
}

//! The log engine: opening and recovering the store, sequencing, integration, signing,
//! the commit protocol, and the read side (entries, tiles, proofs, receipts).
//!
//! The engine stores through the `storage` ports (tile store, checkpoint lock, lookup
//! index, record store), whose drivers the caller chooses and passes to
//! [`Log::open_with`] as [`Backends`](crate::storage::Backends). It writes the commit
//! protocol once ([`commit`]: every tile of a batch durable, then the checkpoint swap)
//! and recovery once (`open.rs`), for every driver. Beside the backends, the data
//! directory holds the keys: `log.key` / `log.vkey` (the log's signing key, 0600, and
//! verifier key) and, for a log created without `--admin-vkey`, `admin.key`.
//! [`Backends::posix`](crate::storage::Backends::posix) keeps the rest there too (`log/`,
//! `lookup/`, `projection/`).
//!
//! May import: `merkle`, `note`, `tiles`, `receipt`, `keyfile`, the `catalog` root
//! re-exports and the `storage` ports; a storage driver only in the shorthands for the
//! POSIX data directory ([`Log::open`], `fsck::fsck`, `replay::replay_dir`).

pub mod blob_expiry;
mod committer;
pub mod follower;
pub mod fsck;
pub mod intake;
pub mod integrator;
pub mod mirror;
mod open;
pub mod projection;
pub mod reader;
pub mod replay;
mod sequencer;
pub mod snapshot;
mod state_commit;
pub mod state_digest;
pub mod subject_sort;
pub mod witnessing;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::catalog::{self, Catalog, KeyDirectory, Refusal, Verified};
use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, Signer, Verifier};
use crate::receipt::Receipt;
use crate::storage::posix::DataDirLock;
use crate::storage::{CheckpointLock, IndexedLeaf, LookupIndex, StorageError, TileStore};
use crate::tiles::TileId;
use reader::{ReadError, TileCache, TreeView};
use sequencer::Job;

pub use committer::{commit, CommitError};
pub use open::OpenReport;

/// How to open a log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The data directory (created if missing): the keys live here, and with
    /// [`Log::open`] the storage too.
    pub data_dir: PathBuf,
    /// The origin for a new log; must match the existing key's name for an old one.
    pub origin: Option<String>,
    /// Admin verifier keys for a new log. If empty, an admin key is generated.
    pub admin_keys: Vec<Verifier>,
    /// Most entries in one batch.
    pub batch_max: usize,
    /// Longest wait for more entries before committing a batch.
    pub batch_delay: Duration,
    /// Most submissions waiting for the sequencer before new ones get 503.
    pub queue_capacity: usize,
    /// How long the committer waits before retrying a failed commit, and the longest
    /// wait the back-off doubles up to.
    pub commit_retry: (Duration, Duration),
    /// End every `n`-th batch with a `StateCommitment` leaf (`log-format/state.md`);
    /// 0: never (the default).
    pub state_commit_every: u64,
    /// Test hook: commit wrong state roots (one bit flipped), so that tests can prove
    /// replay and monitors catch them. Never set in production.
    #[doc(hidden)]
    pub state_commit_wrong_root: bool,
    /// Write a catalog snapshot (`DATA/snapshot/`, ADR 0008) every this many leaves and
    /// at a clean shutdown (a delta, or a whole one every quarter of the log or 32
    /// deltas, ADR 0019); `None`: never.
    pub snapshot_every: Option<u64>,
    /// How a snapshot is checked at open before the catalog is restored from it.
    pub snapshot_check: snapshot::SnapshotCheck,
}

impl LogOptions {
    /// Defaults for `data_dir`: batches of up to 1024 entries, 1 ms collection window.
    pub fn new(data_dir: impl Into<PathBuf>) -> LogOptions {
        LogOptions {
            data_dir: data_dir.into(),
            origin: None,
            admin_keys: Vec::new(),
            batch_max: 1024,
            batch_delay: Duration::from_millis(1),
            queue_capacity: 65_536,
            commit_retry: (Duration::from_secs(1), Duration::from_secs(30)),
            state_commit_every: 0,
            state_commit_wrong_root: false,
            snapshot_every: Some(DEFAULT_SNAPSHOT_EVERY),
            snapshot_check: snapshot::SnapshotCheck::Index,
        }
    }
}

/// Leaves between catalog snapshots, at least (see [`LogOptions::snapshot_every`]).
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 65_536;

/// The default origin of a new log.
pub const DEFAULT_ORIGIN: &str = "catalog.srcos.local/log";

/// Opening or recovering the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A read during recovery failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Committing genesis failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// An entry bundle met during recovery is malformed.
    #[error(transparent)]
    Bundle(#[from] replay::BundleError),
    /// A key file problem.
    #[error(transparent)]
    KeyFile(#[from] crate::keyfile::KeyFileError),
    /// The stored log is inconsistent with itself or with its key.
    #[error("{0}")]
    Inconsistent(String),
    /// The options conflict with the existing log.
    #[error("{0}")]
    Config(String),
}

/// The signed tree head currently served.
#[derive(Debug, Clone)]
pub struct Head {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The exact signed note bytes.
    pub signed: Arc<Vec<u8>>,
}

/// The outcome of an accepted or duplicate submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The entry's index.
    pub index: u64,
    /// A committed tree size that includes it.
    pub tree_size: u64,
    /// Whether the same request was already in the log (nothing was appended).
    pub duplicate: bool,
}

/// Why a submission got no receipt.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Admission refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// The log cannot take writes now (shutting down, queue full, or failed).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected storage problem.
    #[error("{0}")]
    Internal(String),
}

impl SubmitError {
    fn failed() -> SubmitError {
        SubmitError::Unavailable(
            "the log stopped taking writes after a storage error; restart it to recover".into(),
        )
    }

    fn retrying() -> SubmitError {
        SubmitError::Unavailable(
            "a commit failed on a storage error and is being retried; resubmit shortly \
             (a resubmission of an entry that did become durable is answered as a duplicate)"
                .into(),
        )
    }
}

/// Whether the log takes writes (see `committer.rs` for the state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WriteState {
    /// Batches are committed as they come.
    Healthy = 0,
    /// A commit failed on a storage error and is being retried with back-off; new
    /// submissions are refused (503) until it succeeds.
    Retrying = 1,
    /// The log gave up (a conflict with another writer, a fault that is not the
    /// storage's, or shutdown during a retry): only a restart recovers.
    Failed = 2,
}

/// State shared by the sequencer and the readers.
pub(crate) struct Shared {
    tiles: Arc<dyn TileStore>,
    lock: Arc<dyn CheckpointLock>,
    index: Box<dyn LookupIndex>,
    cache: TileCache,
    signer: Signer,
    verifier: Verifier,
    origin: String,
    /// The committed head; a watch so that background tasks (witnessing) learn of each
    /// new checkpoint without the sequencer ever waiting for them.
    head: watch::Sender<Arc<Head>>,
    keys: RwLock<KeyDirectory>,
    /// The catalog state, written only by the sequencer (one leaf at a time, so readers
    /// never wait long) and read by queries at the committed size.
    catalog: RwLock<Catalog>,
    /// A [`WriteState`].
    state: AtomicU8,
    /// Set by [`Log::shutdown`]; wakes a committer waiting to retry.
    stopping: (Mutex<bool>, Condvar),
    /// The committer's back-off: first wait, longest wait.
    retry: (Duration, Duration),
    /// The data directory's writer lock, released when the log is dropped.
    _dir_lock: Option<DataDirLock>,
    /// Dedup keys of entries admitted but not yet durable (and so not yet in the index).
    uncommitted: Mutex<HashMap<[u8; 32], u64>>,
    /// The state map and its commitments (`state_commit`).
    state_commits: state_commit::StateCommits,
    /// Where state digests sort the publications (the snapshot directory, ADR 0020).
    spill: PathBuf,
}

impl Shared {
    fn state(&self) -> WriteState {
        match self.state.load(Ordering::Acquire) {
            0 => WriteState::Healthy,
            1 => WriteState::Retrying,
            _ => WriteState::Failed,
        }
    }

    fn set_state(&self, state: WriteState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Whether new submissions may be admitted now; the error to answer them with if not.
    fn writable(&self) -> Result<(), SubmitError> {
        match self.state() {
            WriteState::Healthy => Ok(()),
            WriteState::Retrying => Err(SubmitError::retrying()),
            WriteState::Failed => Err(SubmitError::failed()),
        }
    }

    /// Waits `delay`, or less if the log is shutting down; returns whether it is.
    fn wait_unless_stopping(&self, delay: Duration) -> bool {
        let (flag, wake) = &self.stopping;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let guard = match wake.wait_timeout_while(guard, delay, |stopping| !*stopping) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
        *guard
    }

    fn head(&self) -> Arc<Head> {
        self.head.borrow().clone()
    }

    fn set_head(&self, head: Head) {
        self.head.send_replace(Arc::new(head));
    }

    fn uncommitted_dedup(&self, key: &[u8; 32]) -> Option<u64> {
        self.uncommitted.lock().ok()?.get(key).copied()
    }

    /// The committed entry submitted with dedup key `key`, if any: the index names
    /// candidates (8-byte prefixes), each confirmed against the entry's recorded digest.
    fn find_dedup(&self, key: &[u8; 32]) -> Result<Option<u64>, ReadError> {
        let size = self.head().checkpoint.size;
        let view = TreeView::new(self.tiles.as_ref(), &self.cache, size);
        for index in self.index.dedup_candidates(key)? {
            if index < size && catalog::leaf_dedup_key(&view.entry(index)?) == Some(*key) {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The committed entry whose leaf hash is `leaf_hash`, if any (candidates confirmed
    /// by hashing the entry).
    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, ReadError> {
        let size = self.head().checkpoint.size;
        let view = TreeView::new(self.tiles.as_ref(), &self.cache, size);
        for index in self.index.leaf_candidates(leaf_hash)? {
            if index < size && merkle::leaf_hash(&view.entry_once(index)?) == *leaf_hash {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    fn add_uncommitted(&self, leaves: &[IndexedLeaf]) {
        if let Ok(mut map) = self.uncommitted.lock() {
            for leaf in leaves {
                if let Some(key) = leaf.dedup_key {
                    map.insert(key, leaf.index);
                }
            }
        }
    }

    fn remove_uncommitted(&self, leaves: &[IndexedLeaf]) {
        if let Ok(mut map) = self.uncommitted.lock() {
            for leaf in leaves {
                if let Some(key) = leaf.dedup_key {
                    map.remove(&key);
                }
            }
        }
    }

    fn set_keys(&self, keys: KeyDirectory) {
        match self.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }
}

/// A running log: submit entries, read everything.
pub struct Log {
    shared: Arc<Shared>,
    jobs: Mutex<Option<SyncSender<Job>>>,
    /// The sequencer and committer threads (and the snapshot thread), joined in that
    /// order on shutdown.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Writes catalog snapshots; one more is written at shutdown.
    snapshots: Option<Arc<snapshot::Snapshotter>>,
}

/// Milliseconds since the Unix epoch (the clock the sequencer stamps leaves with).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Log {
    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    /// The current signed tree head.
    pub fn head(&self) -> Arc<Head> {
        self.shared.head()
    }

    /// A receiver that sees every newly committed head (the latest one when several
    /// commit before it looks).
    pub fn subscribe_heads(&self) -> watch::Receiver<Arc<Head>> {
        self.shared.head.subscribe()
    }

    /// The keys submissions are verified against (admins and granted publishers).
    pub fn keys(&self) -> KeyDirectory {
        match self.shared.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `read` on the catalog state with the committed tree size: leaves at or above
    /// it may be applied but not yet durable, so answers must be given as of that size
    /// (see [`Catalog::state_json_at`]).
    pub fn read_catalog<R>(&self, read: impl FnOnce(&Catalog, u64) -> R) -> R {
        // The head is read first: the catalog has always applied at least that much.
        let committed = self.head().checkpoint.size;
        match self.shared.catalog.read() {
            Ok(catalog) => read(&catalog, committed),
            Err(poisoned) => read(&poisoned.into_inner(), committed),
        }
    }

    /// SHA-256 of the canonical catalog state after the first `at` leaves (clamped to
    /// the committed size), read a chunk at a time so that the sequencer is held up for
    /// one chunk at most, the publications sorted by subject in the snapshot directory
    /// ([`state_digest`]). Blocking: call it off the async workers.
    pub fn state_digest_at(&self, at: u64) -> Result<[u8; 32], catalog::CatalogError> {
        let at = at.min(self.head().checkpoint.size);
        state_digest::state_digest_at(
            &self.shared.catalog,
            at,
            state_digest::CHUNK,
            Some(&self.shared.spill),
        )
    }

    /// The state commitment lookups are proved against: the one of exactly
    /// `tree_size` (a commitment leaf's index), or else the newest in the committed
    /// tree. `None` when the log does not commit to its state, or no longer holds that
    /// snapshot in memory.
    pub fn state_commitment(&self, tree_size: Option<u64>) -> Option<crate::state::Committed> {
        let head = self.shared.head().checkpoint.size;
        let commits = &self.shared.state_commits;
        match tree_size {
            Some(size) if size < head => commits.committed_at(size),
            Some(_) => None,
            None => commits.committed_below(head),
        }
    }

    /// The kept state commitments to sizes from `from` to `to`, in log order, at most
    /// `limit` of them, whose leaves are in the committed tree; and that tree's size.
    pub fn state_commitments_between(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> (Vec<crate::state::Committed>, u64) {
        let head = self.shared.head().checkpoint.size;
        let commits = &self.shared.state_commits;
        (commits.committed_between(from, to, head, limit), head)
    }

    /// The newest tree size whose state map the map thread has finished (`None` when
    /// the log does not commit to its state): a commitment can name no later size.
    pub fn state_map_size(&self) -> Option<u64> {
        self.shared.state_commits.map_size()
    }

    /// Whether the log is not taking writes now: a failed commit is being retried (it
    /// takes writes again once the retry succeeds), or it gave up until a restart.
    pub fn has_failed(&self) -> bool {
        self.shared.state() != WriteState::Healthy
    }

    /// Queues a verified submission and waits until its batch is durable.
    pub async fn submit(
        &self,
        verified: Verified,
        dedup_key: [u8; 32],
    ) -> Result<Submitted, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            verified,
            dedup_key,
            reply,
        };
        {
            let jobs = self
                .jobs
                .lock()
                .map_err(|_| SubmitError::Internal("sequencer channel poisoned".into()))?;
            let sender = jobs
                .as_ref()
                .ok_or_else(|| SubmitError::Unavailable("the log is shutting down".into()))?;
            match sender.try_send(job) {
                Ok(()) => crate::telemetry::log().queue_depth.increment(1.0),
                Err(TrySendError::Full(_)) => {
                    return Err(SubmitError::Unavailable(
                        "the sequencer queue is full; retry shortly".into(),
                    ))
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(SubmitError::Unavailable("the log is shutting down".into()))
                }
            }
        }
        answer
            .await
            .map_err(|_| SubmitError::Unavailable("the log stopped before answering".into()))?
    }

    /// Writes a catalog snapshot now (ADR 0008), at the size the catalog has applied,
    /// once that size is committed; `None` if snapshots are off or nothing is applied.
    pub fn write_snapshot(&self) -> Result<Option<u64>, snapshot::SnapshotError> {
        match &self.snapshots {
            Some(s) => s.write_now(self.shared.as_ref()),
            None => Ok(None),
        }
    }

    /// Writes a delta snapshot on the newest one now (ADR 0019; a whole one if there is
    /// none, or if the updates since it are no longer known) and returns its size; `None`
    /// if snapshots are off or nothing came since the newest.
    pub fn write_delta_snapshot(&self) -> Result<Option<u64>, snapshot::SnapshotError> {
        match &self.snapshots {
            Some(s) => s.write_delta_now(self.shared.as_ref()),
            None => Ok(None),
        }
    }

    /// Stops the sequencer after the batch in flight and waits for it.
    pub fn shutdown(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        {
            let (flag, wake) = &self.shared.stopping;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let stopped = !threads.is_empty();
        for thread in threads {
            let _ = thread.join();
        }
        self.shared.state_commits.stop();
        // A clean shutdown: the batches in flight are committed, so the next start
        // needs to replay nothing.
        if let Some(snapshots) = self.snapshots.as_ref().filter(|_| stopped) {
            if self.shared.state() != WriteState::Failed {
                snapshots.maybe_write(self.shared.as_ref(), true);
            }
        }
    }

    fn view(&self, size: u64) -> Result<TreeView<'_>, ReadError> {
        let head_size = self.head().checkpoint.size;
        if size > head_size {
            return Err(ReadError::NotFound(format!(
                "tree size {size} is beyond the current size {head_size}"
            )));
        }
        Ok(TreeView::within(
            self.shared.tiles.as_ref(),
            &self.shared.cache,
            size,
            head_size,
        ))
    }

    /// A tile (hash tile or entry bundle) of the current tree.
    pub fn tile(&self, tile: TileId) -> Result<Arc<Vec<u8>>, ReadError> {
        let head = self.head();
        self.view(head.checkpoint.size)?.tile(tile)
    }

    /// The exact bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, ReadError> {
        let head = self.head();
        self.view(head.checkpoint.size)?.entry(index)
    }

    /// The index of the entry with this leaf hash.
    pub fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, ReadError> {
        self.shared.find_leaf(leaf_hash)
    }

    /// The inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        let view = self.view(size)?;
        merkle::inclusion_proof(index, size, &view).map_err(ReadError::from)
    }

    /// The consistency proof between two tree sizes (`0 < first <= second <= current`).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ReadError> {
        let view = self.view(second)?;
        merkle::consistency_proof(first, second, &view).map_err(ReadError::from)
    }

    /// The signed checkpoint for `size`: the current one, or for an earlier size the
    /// same deterministic Ed25519 signature the log gives any prefix of its tree (every
    /// such checkpoint is consistent with every other by construction).
    pub fn checkpoint_at(&self, size: u64) -> Result<Arc<Vec<u8>>, ReadError> {
        let head = self.head();
        if size == head.checkpoint.size {
            return Ok(head.signed.clone());
        }
        let view = self.view(size)?;
        let root = merkle::tree_root(size, &view)?;
        let checkpoint = Checkpoint {
            origin: self.shared.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        };
        let note = checkpoint
            .sign(&self.shared.signer)
            .map_err(|e| ReadError::Internal(format!("signing checkpoint: {e}")))?;
        Ok(Arc::new(note.to_bytes()))
    }

    /// A receipt for entry `index` at `tree_size` (default: the current size).
    pub fn receipt(&self, index: u64, tree_size: Option<u64>) -> Result<Receipt, ReadError> {
        let head = self.head();
        let size = tree_size.unwrap_or(head.checkpoint.size);
        if index >= size {
            return Err(ReadError::NotFound(format!(
                "entry {index} is not in the tree of size {size}"
            )));
        }
        let checkpoint = self.checkpoint_at(size)?;
        self.receipt_against(index, size, &checkpoint)
    }

    /// A receipt for entry `index` proven against `checkpoint`, which must be a signed
    /// note (possibly cosigned) for tree size `size`.
    pub fn receipt_against(
        &self,
        index: u64,
        size: u64,
        checkpoint: &[u8],
    ) -> Result<Receipt, ReadError> {
        let view = self.view(size)?;
        let entry = view.entry_once(index)?;
        let proof = merkle::inclusion_proof(index, size, &view)?;
        Ok(Receipt::new(
            &self.shared.origin,
            index,
            &entry,
            size,
            &proof,
            checkpoint,
        ))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

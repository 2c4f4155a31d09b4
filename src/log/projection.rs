//! [`Projection`]: a frontend's own catalog, built from the log it follows (ADR 0004
//! "Frontends"), so that it answers catalog reads without the holder.
//!
//! The entries of the [`Follower`]'s verified head are applied in log order, as the
//! start-up replay applies them ([`steps_from`], [`apply_step`]: read a step of entry
//! bundles, hashed and parsed on the other cores while the step before is applied), on
//! a blocking thread each time the head grows. Never beyond the head: the entries come
//! from the follower's view of the tree at its head's size, and the leaves applied must
//! rebuild that head's root before the projection serves at its size.
//!
//! A leaf that does not apply (or a root the entries do not rebuild) is fatal: the
//! projection stops for good and serves nothing more, as the holder cannot have logged
//! such a leaf. A tile that cannot be read is not: the next round resumes where the
//! leaves applied end.
//!
//! With [`Snapshots`], the projection is also a [`Source`] of catalog snapshots, in the
//! data directory's `snapshot/` and in the log's own format (ADR 0008, 0019), so that:
//! - a frontend restarts from the newest snapshot chain there that checks out against
//!   the followed head (the log's own start-up checks, `open::restore`), and applies only
//!   the leaves after it, instead of rebuilding from entry 0;
//! - a frontend that takes the lease opens the log on those same snapshots: the new
//!   sequencer replays only the leaves since the newest, so a failover costs the tail,
//!   not the log. [`Projection::stop_snapshots`] gives up a snapshot being written
//!   first, so that the log never opens a directory the projection is writing into.
//!
//! May import: the follower, the replay's steps, the state digest, the snapshots and
//! the start-up restore, `catalog` root re-exports, `merkle` and `state`.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::follower::Follower;
use super::reader::ReadError;
use super::replay::{apply_step, steps_from, ReplayError, Step};
use super::snapshot::{self, Chain, Committed, SnapshotCheck, Snapshotter, Source};
use super::state_digest;
use super::OpenReport;
use crate::catalog::{Catalog, CatalogError};
use crate::merkle::{self, CompactRange, Hash};
use crate::note::Checkpoint;
use crate::state::{KeptCommitments, StateFollower, DEFAULT_KEPT_COMMITMENTS};
use crate::storage::TileStore;

/// Wait before a round that could not read a tile is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Where the projection stands, for readiness and reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The size of the newest head whose root the applied entries rebuilt (or of the
    /// snapshot restored, whose root the tiles gave): reads are answered as of this
    /// size (0: none yet).
    pub verified: u64,
    /// The tree root at `verified`.
    pub root: Hash,
    /// The snapshot the projection was restored from at start, if any.
    pub restored: Option<Restored>,
    /// Why the projection stopped for good, if it did.
    pub failed: Option<String>,
}

/// The snapshot chain a projection was restored from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Its tree size: the leaves before it were not applied here.
    pub size: u64,
    /// The deltas stacked on the whole snapshot.
    pub deltas: usize,
}

/// Where a projection's snapshots live, and how it uses them (see the module
/// documentation).
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// The data directory (snapshots in its `snapshot/`).
    pub data_dir: PathBuf,
    /// How a snapshot is checked before the projection restores from it
    /// ([`SnapshotCheck::Off`]: never restore).
    pub check: SnapshotCheck,
    /// Write a snapshot every this many leaves (`None`: write none).
    pub every: Option<u64>,
}

/// What only the applying thread touches: the tree of the leaves applied and the state
/// map once the log commits to one.
struct Progress {
    tree: CompactRange,
    state: Option<StateFollower>,
    /// The first leaf applied here (the size of the snapshot restored from, or 0).
    first: u64,
    /// Where to restore from before the first leaf is applied, until tried.
    restore: Option<Snapshots>,
}

/// A catalog projection of a followed log (see the module documentation).
pub struct Projection {
    follower: Arc<Follower>,
    catalog: RwLock<Catalog>,
    progress: Mutex<Progress>,
    status: RwLock<Status>,
    /// The state commitments kept, with their maps, and the verified size they are as
    /// of (set before [`Status::verified`] moves to it).
    commitments: RwLock<(u64, Arc<KeptCommitments>)>,
    /// Writes the snapshots, with [`Snapshots::every`].
    snapshotter: Option<Arc<Snapshotter>>,
    /// The snapshot thread, once started.
    snapshot_thread: Mutex<Option<JoinHandle<()>>>,
    /// Set (and notified) when snapshots are to stop.
    stopping: (Mutex<bool>, Condvar),
    /// Where state digests sort the publications (the snapshot directory, ADR 0020),
    /// if the projection has a data directory.
    spill: Option<PathBuf>,
}

impl Projection {
    /// An empty projection of `follower`'s log into `catalog` (which must be empty: its
    /// record store decides where the records live).
    pub fn new(follower: Arc<Follower>, catalog: Catalog) -> Projection {
        Projection {
            follower,
            catalog: RwLock::new(catalog),
            progress: Mutex::new(Progress {
                tree: CompactRange::new(),
                state: None,
                first: 0,
                restore: None,
            }),
            status: RwLock::new(Status::default()),
            commitments: RwLock::new((0, Arc::default())),
            snapshotter: None,
            snapshot_thread: Mutex::new(None),
            stopping: (Mutex::new(false), Condvar::new()),
            spill: None,
        }
    }

    /// This projection restoring from `snapshots` before it applies its first leaf,
    /// and writing them if [`Snapshots::every`] says so (once
    /// [`Projection::start_snapshots`] runs).
    pub fn with_snapshots(mut self, snapshots: Snapshots) -> Projection {
        self.snapshotter = snapshots.every.map(|every| {
            Arc::new(Snapshotter::new(
                snapshot::dir(&snapshots.data_dir),
                every,
                Chain::default(),
            ))
        });
        self.spill = Some(snapshot::dir(&snapshots.data_dir));
        let progress = self.progress.get_mut().unwrap_or_else(|p| p.into_inner());
        progress.restore = (snapshots.check != SnapshotCheck::Off).then_some(snapshots);
        self
    }

    /// Starts the thread that writes this projection's snapshots, if it writes any.
    pub fn start_snapshots(self: &Arc<Self>) -> std::io::Result<()> {
        let Some(snapshotter) = self.snapshotter.clone() else {
            return Ok(());
        };
        let source = self.clone();
        let thread = std::thread::Builder::new()
            .name("projection-snapshot".into())
            .spawn(move || snapshotter.run(source))?;
        *self
            .snapshot_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Stops writing snapshots: a snapshot being written is given up (at its next chunk,
    /// its temporary file removed), and this returns once the thread has ended, so that
    /// the snapshot directory is the log's to open. Blocking.
    pub fn stop_snapshots(&self) {
        let (stopping, changed) = &self.stopping;
        *stopping.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
        let thread = self
            .snapshot_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.follower.origin()
    }

    /// The log followed (a frontend signs nothing: its receipts are against its head).
    pub fn follower(&self) -> &Arc<Follower> {
        &self.follower
    }

    /// The state commitments kept (the newest [`DEFAULT_KEPT_COMMITMENTS`] whose maps
    /// the projection had, so that lookup proofs are served from them as the sequencer
    /// serves them), and the verified size they are as of: a reader takes them only when
    /// that is the size it answers as of.
    pub fn state_commitments(&self) -> (u64, Arc<KeptCommitments>) {
        let kept = self.commitments.read().unwrap_or_else(|p| p.into_inner());
        (kept.0, kept.1.clone())
    }

    /// Where the projection stands.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The size reads are answered as of, when it is exactly the followed head's (a
    /// frontend serves the catalog only then, so that its answers are as of the
    /// checkpoint it serves); `None` while behind, and for good after a failure.
    pub fn serving_size(&self) -> Option<u64> {
        let status = self.status();
        let head = self.follower.head()?.checkpoint.size;
        (status.failed.is_none() && status.verified == head && head > 0).then_some(head)
    }

    /// Runs `read` on the catalog as of the verified size.
    pub fn read_catalog<R>(&self, read: impl FnOnce(&Catalog, u64) -> R) -> R {
        // The size first: the catalog has always applied at least that much.
        let at = self.status().verified;
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        read(&catalog, at)
    }

    /// SHA-256 of the canonical state after `at` leaves (clamped to the verified size),
    /// the read lock held a chunk at a time, the publications sorted in the snapshot
    /// directory when there is one. Blocking.
    pub fn state_digest_at(&self, at: u64) -> Result<[u8; 32], CatalogError> {
        let at = at.min(self.status().verified);
        let spill = self.spill.as_deref();
        state_digest::state_digest_at(&self.catalog, at, state_digest::CHUNK, spill)
    }

    /// Applies the entries of the followed head not applied yet; returns the size
    /// verified afterwards. Blocking (tile reads, and the applying): call it off the
    /// async workers. An `Err` that [`is_fatal`] has stopped the projection for good.
    pub fn catch_up(&self) -> Result<u64, ReplayError> {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        // A projection that failed stays where it stopped.
        if self.status().failed.is_some() {
            return Ok(self.status().verified);
        }
        let Some(head) = self.follower.head() else {
            return Ok(0);
        };
        if let Some(from) = progress.restore.take() {
            self.restore(&mut progress, &head.checkpoint, &from);
            if self.status().failed.is_some() {
                return Ok(0);
            }
        }
        let result = self.apply_to(&mut progress, &head.checkpoint);
        match &result {
            Ok(()) => {
                let kept = progress
                    .state
                    .as_ref()
                    .map(|state| Arc::new(state.kept_commitments()))
                    .unwrap_or_default();
                *self.commitments.write().unwrap_or_else(|p| p.into_inner()) =
                    (head.checkpoint.size, kept);
                self.set_status(|s| {
                    s.verified = head.checkpoint.size;
                    s.root = head.checkpoint.root;
                })
            }
            Err(e) if is_fatal(e) => {
                tracing::error!(error = %e, "the frontend's catalog projection stopped: catalog reads are forwarded to the holder from now on");
                self.set_status(|s| s.failed = Some(e.to_string()));
            }
            Err(_) => {}
        }
        result.map(|()| self.status().verified)
    }

    /// Restores the catalog from the newest snapshot chain in `from` that checks out
    /// against `head` (the log's own start-up checks), before any leaf is applied here;
    /// without one, or if the tree at its size cannot be read, the projection starts
    /// from entry 0 as before. Errors are logged: a snapshot only saves time.
    fn restore(&self, progress: &mut Progress, head: &Checkpoint, from: &Snapshots) {
        let store = {
            let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *catalog, Catalog::new()).into_store()
        };
        let mut report = OpenReport::default();
        let restored = super::open::restore(
            &from.data_dir,
            from.check,
            self.follower.tiles(),
            self.follower.cache(),
            head,
            self.follower.origin(),
            store,
            &mut report,
        );
        let (catalog, chain) = match restored {
            Ok(restored) => restored,
            Err(e) => {
                // The store could not even be cleared after a refused snapshot.
                tracing::error!(error = %e, "the frontend's catalog projection could not restore");
                self.set_status(|s| s.failed = Some(e.to_string()));
                return;
            }
        };
        let size = chain.newest.map_or(0, |w| w.size);
        let edge = match size {
            0 => Ok(CompactRange::new()),
            _ => self.edge_at(size, head),
        };
        let catalog = match edge {
            Ok(tree) => {
                progress.tree = tree;
                progress.first = size;
                catalog
            }
            Err(e) => {
                tracing::warn!(error = %e, size, "the tree at the snapshot's size: replaying from entry 0");
                self.emptied(catalog)
            }
        };
        let size = progress.tree.size();
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = catalog;
        if size > 0 {
            tracing::info!(
                size,
                deltas = chain.deltas,
                "the frontend's catalog projection restored from a snapshot"
            );
            if let Some(snapshotter) = &self.snapshotter {
                snapshotter.restored(chain);
            }
            let root = progress.tree.root();
            self.set_status(|s| {
                s.verified = size;
                s.root = root;
                s.restored = Some(Restored {
                    size,
                    deltas: chain.deltas,
                });
            });
        }
    }

    /// `catalog`'s record store emptied, in an empty catalog (the projection fails if the
    /// store cannot be cleared).
    fn emptied(&self, catalog: Catalog) -> Catalog {
        let mut store = catalog.into_store();
        if let Err(e) = store.clear() {
            self.set_status(|s| s.failed = Some(e.to_string()));
        }
        Catalog::with_store(store)
    }

    /// The tree of the first `size` leaves of `head`'s tree, as a compact range.
    fn edge_at(&self, size: u64, head: &Checkpoint) -> Result<CompactRange, ReplayError> {
        let reading = |source| ReplayError::Tile {
            tile: format!("the tree edge at size {size}"),
            source,
        };
        let (view, _) = self.follower.view(head.size).map_err(reading)?;
        merkle::tree_edge(size, &view).map_err(|e| reading(ReadError::from(e)))
    }

    /// Applies the entries from the last one applied up to `head` (its size and root
    /// verified by the follower), then checks the root they rebuild.
    fn apply_to(&self, progress: &mut Progress, head: &Checkpoint) -> Result<(), ReplayError> {
        let start = progress.tree.size();
        if start >= head.size {
            return Ok(());
        }
        let (view, _) = self
            .follower
            .view(head.size)
            .map_err(|source| ReplayError::Tile {
                tile: format!("the tree of size {}", head.size),
                source,
            })?;
        let mut steps = steps_from(start, head.size, |tile| {
            view.tile(tile).map_err(|source| ReplayError::Tile {
                tile: tile.path(),
                source,
            })
        });
        // Step k is applied here while step k + 1 is read and prepared on the other
        // cores, as in the start-up replay.
        let mut current: Option<Step> = None;
        loop {
            let (next, applied) = steps.next_while(|| match current.take() {
                Some(step) => self.apply(progress, step),
                None => Ok(()),
            });
            applied?;
            match next {
                Some(step) => current = Some(step?),
                None => break,
            }
        }
        if progress.tree.root() != head.root {
            return Err(ReplayError::Root(head.size));
        }
        Ok(())
    }

    /// Applies the leaves of `step` not applied yet, under the catalog's write lock
    /// (readers read as of the verified size meanwhile, which the leaves do not change).
    fn apply(&self, progress: &mut Progress, step: Step) -> Result<(), ReplayError> {
        let skip = progress.tree.size().saturating_sub(step.first);
        let entries = step
            .entries
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .collect();
        let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        apply_step(
            &mut progress.tree,
            &mut catalog,
            &mut progress.state,
            entries,
            progress.first,
            DEFAULT_KEPT_COMMITMENTS,
        )
    }

    fn set_status(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// Catches up each time the followed head grows, until a fatal error (a tile that
    /// cannot be read is retried). Runs until dropped or failed.
    pub async fn follow(self: Arc<Self>) {
        let mut heads = self.follower.subscribe();
        loop {
            let projection = self.clone();
            match tokio::task::spawn_blocking(move || projection.catch_up()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_fatal(&e) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the frontend's catalog projection: retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the frontend's catalog projection stopped");
                    self.set_status(|s| s.failed = Some(e.to_string()));
                    return;
                }
            }
            if heads.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Committed for Projection {
    /// The verified size and root: a snapshot is installed only once the leaves it
    /// holds rebuilt a followed head's root.
    fn committed(&self) -> (u64, Hash) {
        let status = self.status();
        (status.verified, status.root)
    }

    fn wait(&self) -> bool {
        !self.stopped_after(Duration::from_millis(20)) && self.status().failed.is_none()
    }

    fn abandoned(&self) -> bool {
        self.is_stopping()
    }
}

impl Source for Projection {
    fn catalog(&self) -> &RwLock<Catalog> {
        &self.catalog
    }

    fn tiles(&self) -> &dyn TileStore {
        self.follower.tiles()
    }

    fn origin(&self) -> &str {
        self.follower.origin()
    }

    fn stopped_after(&self, timeout: Duration) -> bool {
        let (stopping, changed) = &self.stopping;
        let stopped = stopping.lock().unwrap_or_else(|p| p.into_inner());
        if *stopped {
            return true;
        }
        let (stopped, _) = changed
            .wait_timeout(stopped, timeout)
            .unwrap_or_else(|p| p.into_inner());
        *stopped
    }

    fn healthy(&self) -> bool {
        self.status().failed.is_none()
    }
}

/// Whether `error` means the log holds what the projection cannot apply (stop for good)
/// rather than a read that may work next time.
pub fn is_fatal(error: &ReplayError) -> bool {
    matches!(
        error,
        ReplayError::Apply { .. }
            | ReplayError::State { .. }
            | ReplayError::Root(_)
            | ReplayError::Bundle(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::integrator::Integrator;
    use crate::note::{KeyType, Signer};
    use crate::storage::memory::{Faults, MemoryTiles};
    use crate::storage::{CheckpointLock, LockedCheckpoint, StorageError, TileStore};

    /// A lock whose `read` answers what the test put in it (a follower only reads).
    #[derive(Default)]
    struct Fixed(Mutex<Option<Vec<u8>>>);

    impl CheckpointLock for Fixed {
        fn read(&self) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(self.0.lock().unwrap().clone())
        }

        fn swap(
            &self,
            _old: Option<LockedCheckpoint<'_>>,
            _new: LockedCheckpoint<'_>,
        ) -> Result<(), StorageError> {
            unreachable!("a follower never swaps")
        }
    }

    /// Stores the tiles of a log holding `leaves` and puts its checkpoint in `lock`.
    fn publish(leaves: &[Vec<u8>], key: &Signer, tiles: &MemoryTiles, lock: &Fixed) {
        let (integrator, writes) = Integrator::from_entries(leaves.iter().cloned()).unwrap();
        for write in writes {
            tiles.put(&write.tile.path(), &write.data).unwrap();
        }
        let signed = integrator.checkpoint(key.name()).sign(key).unwrap();
        *lock.0.lock().unwrap() = Some(signed.to_bytes());
    }

    /// An empty log in memory (its genesis leaf made, not published) and a follower of it.
    struct Followed {
        key: Signer,
        genesis: Vec<u8>,
        tiles: Arc<MemoryTiles>,
        lock: Arc<Fixed>,
        follower: Arc<Follower>,
    }

    impl Followed {
        fn new() -> Followed {
            let key = Signer::generate("projection.test/log", KeyType::Ed25519).unwrap();
            let admin = Signer::generate("admin", KeyType::Ed25519).unwrap();
            let genesis =
                Catalog::genesis_leaf(key.name(), &key.verifier(), &[admin.verifier()], 0).unwrap();
            let tiles = Arc::new(MemoryTiles::new(Arc::new(Faults::default())));
            let lock = Arc::new(Fixed::default());
            let follower = Arc::new(Follower::new(key.verifier(), tiles.clone(), lock.clone()));
            Followed {
                key,
                genesis,
                tiles,
                lock,
                follower,
            }
        }
    }

    /// The projection serves a head once it applied exactly it; a leaf that does not
    /// apply stops it for good, where the verified size was.
    #[test]
    fn a_projection_serves_the_head_it_applied_and_stops_at_a_bad_leaf() {
        let Followed {
            key,
            genesis,
            tiles,
            lock,
            follower,
        } = Followed::new();
        let projection = Projection::new(follower.clone(), Catalog::new());
        assert_eq!(projection.catch_up().unwrap(), 0, "no head yet");
        assert_eq!(projection.serving_size(), None);

        publish(std::slice::from_ref(&genesis), &key, &tiles, &lock);
        follower.refresh().unwrap();
        assert_eq!(
            projection.serving_size(),
            None,
            "the head is not applied yet"
        );
        assert_eq!(projection.catch_up().unwrap(), 1);
        assert_eq!(projection.serving_size(), Some(1));
        assert_eq!(
            projection.read_catalog(|c, at| (c.applied_size(), at)),
            (1, 1)
        );

        publish(&[genesis, b"{\"n\":1}".to_vec()], &key, &tiles, &lock);
        follower.refresh().unwrap();
        assert_eq!(projection.serving_size(), None, "behind the new head");
        let failed = projection.catch_up().unwrap_err();
        assert!(
            matches!(failed, ReplayError::Apply { index: 1, .. }),
            "{failed}"
        );
        assert!(is_fatal(&failed));
        let status = projection.status();
        assert_eq!(status.verified, 1);
        assert!(status.failed.is_some());
        assert_eq!(projection.serving_size(), None, "never again");
        assert_eq!(
            projection.catch_up().unwrap(),
            1,
            "a failed projection stays"
        );
    }

    /// A projection writes snapshots of what it verified, and once its snapshots are
    /// stopped (a takeover) a snapshot being written is given up and leaves nothing.
    #[test]
    fn a_stopped_projection_gives_up_its_snapshot_and_leaves_nothing() {
        let Followed {
            key,
            genesis,
            tiles,
            lock,
            follower,
        } = Followed::new();
        publish(&[genesis], &key, &tiles, &lock);
        follower.refresh().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let projection = Projection::new(follower, Catalog::new()).with_snapshots(Snapshots {
            data_dir: dir.path().to_path_buf(),
            check: SnapshotCheck::Index,
            every: Some(1),
        });
        let snapshotter = projection.snapshotter.clone().unwrap();
        assert_eq!(
            snapshotter.write_now(&projection).unwrap(),
            None,
            "nothing verified yet"
        );
        assert_eq!(projection.catch_up().unwrap(), 1);
        assert_eq!(snapshotter.write_now(&projection).unwrap(), Some(1));
        projection.stop_snapshots();
        let given_up = snapshotter.write_now(&projection).unwrap_err();
        assert!(given_up.to_string().contains("given up"), "{given_up}");
        let files: Vec<_> = std::fs::read_dir(snapshot::dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files.len(),
            1,
            "the first snapshot only, no temporary: {files:?}"
        );
    }

    #[test]
    fn only_what_the_log_holds_is_fatal_not_a_read_that_may_work_later() {
        let cases: Vec<(ReplayError, bool)> = vec![
            (ReplayError::Root(3), true),
            (
                ReplayError::Bundle(super::super::replay::BundleError::Undecodable("x".into())),
                true,
            ),
            (
                ReplayError::Tile {
                    tile: "tile/entries/000".into(),
                    source: crate::log::reader::ReadError::NotFound("gone".into()),
                },
                false,
            ),
            (ReplayError::Fetch("unreachable".into()), false),
        ];
        for (error, fatal) in cases {
            assert_eq!(is_fatal(&error), fatal, "{error}");
        }
    }
}

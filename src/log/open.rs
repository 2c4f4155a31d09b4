//! Opening a log on the backends the caller chose: keys, genesis for a new log, and
//! crash recovery for an old one. Recovery is written here once, for every driver.
//!
//! Recovery, in order:
//! 1. A swap the checkpoint lock reports as interrupted (the POSIX lock: a
//!    `checkpoint.pending` left by a crash between "pending written" and "rename") is
//!    finished if its checkpoint verifies with the log key, is larger than the current
//!    checkpoint, and the stored tiles rebuild its root; otherwise it is abandoned.
//!    Either way no checkpoint inconsistent with a served one is ever signed: the log's
//!    next checkpoint extends whatever tree the tiles under the surviving checkpoint hold.
//! 2. The right edge (compact range and partial tiles) is read back from the tiles and
//!    must reproduce the checkpoint's root.
//! 3. The catalog is rebuilt by applying every entry (its per-publication records into
//!    the chosen record store, fresh, so that on disk memory does not grow with the log),
//!    and the lookup index catches up with the checkpoint.
//!
//! May import: the `storage` ports (and, for [`Log::open`] only, the POSIX shorthand
//! [`Backends::posix`]), `keyfile`, `note`, `merkle`, `tiles`, the `catalog` root
//! re-exports, and the engine's other parts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU8;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::committer::{self, commit};
use super::integrator::{BatchTiles, Integrator};
use super::reader::{ReadError, TileCache, TreeView};
use super::replay::{steps_from, Step};
use super::sequencer::Sequencer;
use super::snapshot::{
    self, delta, Chain, SnapshotCheck, SnapshotError, SnapshotHeader, Snapshotter,
};
use super::state_digest::sorted_state_digest_at;
use super::{now_ms, Head, Log, LogError, LogOptions, Shared, WriteState, DEFAULT_ORIGIN};
use crate::catalog::{Catalog, CatalogError, RecordStore};
use crate::keyfile::{self, key_pair_paths};
use crate::merkle;
use crate::note::{self, Checkpoint, KeyType, Signer, Verifier};
use crate::storage::durable::create_dir_all_durable;
use crate::storage::records::filter::{self, Filtered};
use crate::storage::{
    Backends, CheckpointLock, IndexedLeaf, LockedCheckpoint, LogBackends, LookupIndex, RecordsIn,
    StorageError, TileStore,
};
use crate::tiles::{self, TileId, TileKind, TILE_WIDTH};

/// What opening the log did, for the operator.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// A new log was created (genesis written).
    pub created: bool,
    /// Where a generated admin key was written, if one was.
    pub generated_admin_key: Option<PathBuf>,
    /// A checkpoint swap a crash interrupted (the POSIX lock's `checkpoint.pending`) was
    /// finished (`Some(true)`) or abandoned (`Some(false)`).
    pub pending_checkpoint: Option<bool>,
    /// Entries the index had to catch up on.
    pub reindexed: u64,
    /// The tree size of the catalog snapshot start-up restored, if it used one (the
    /// newest delta's, when deltas were laid on the whole snapshot).
    pub snapshot: Option<u64>,
    /// Delta snapshots laid on the whole one start-up restored.
    pub deltas: usize,
    /// Snapshots refused, each with its path and the reason.
    pub snapshots_refused: Vec<String>,
    /// Leaves applied to the catalog at start-up: the whole log without a snapshot,
    /// only those after it with one.
    pub replayed: u64,
    /// Batches a journaling lock held staged (a sequencer died, or was fenced, between
    /// staging and installing them) that were finished.
    pub staged_batches: u64,
}

impl Log {
    /// Opens (or creates) the log in the POSIX data directory `options.data_dir`
    /// ([`Backends::posix`], records on disk): the shorthand for callers that do not
    /// choose backends. See [`Log::open_with`].
    pub fn open(options: LogOptions) -> Result<(Log, OpenReport), LogError> {
        let backends = Backends::posix(&options.data_dir, RecordsIn::Disk)?;
        Log::open_with(backends, options)
    }

    /// Opens (or creates) the log stored in `backends`, recovering from any crash, and
    /// starts its sequencer. The keys live in `options.data_dir`. The record store must
    /// be empty: the catalog is rebuilt into it from the log.
    pub fn open_with(
        backends: Backends,
        options: LogOptions,
    ) -> Result<(Log, OpenReport), LogError> {
        let dir = &options.data_dir;
        create_dir_all_durable(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let signer = load_or_create_log_key(dir, options.origin.as_deref())?;
        let verifier = signer.verifier();
        let origin = signer.name().to_string();
        let Backends {
            log: LogBackends { tiles, lock },
            index,
            records,
            dir_lock,
        } = backends;
        let cache = TileCache::default();
        let mut report = OpenReport {
            pending_checkpoint: settle_interrupted(tiles.as_ref(), lock.as_ref(), &verifier)?,
            ..OpenReport::default()
        };
        report.staged_batches = finish_staged(tiles.as_ref(), lock.as_ref(), &verifier)?;
        let committed = match lock.read()? {
            Some(bytes) => Some(open_committed(&bytes, &verifier)?),
            None => None,
        };

        let (head, integrator) = match committed {
            Some(head) => {
                let integrator = resume_edge(tiles.as_ref(), &cache, &head.checkpoint)?;
                (head, integrator)
            }
            None => {
                let admins = admin_keys(dir, &options.admin_keys, &mut report)?;
                report.created = true;
                write_genesis(tiles.as_ref(), lock.as_ref(), &signer, &admins)?
            }
        };

        let replay_started = std::time::Instant::now();
        let (mut catalog, chain) = restore(
            dir,
            options.snapshot_check,
            tiles.as_ref(),
            &cache,
            &head.checkpoint,
            &origin,
            records,
            &mut report,
        )?;
        let from = chain.newest.map_or(0, |w| w.size);
        report.replayed = head.checkpoint.size - from;
        report.reindexed = replay(
            tiles.as_ref(),
            &cache,
            index.as_ref(),
            &head.checkpoint,
            &mut catalog,
            from,
        )?;
        crate::telemetry::replayed(replay_started.elapsed(), report.replayed);
        let snapshots = options
            .snapshot_every
            .map(|every| Arc::new(Snapshotter::new(snapshot::dir(dir), every, chain)));

        let leaves = TreeView::new(tiles.as_ref(), &cache, head.checkpoint.size);
        let state_commits = super::state_commit::StateCommits::start(
            options.state_commit_every,
            options.state_commit_wrong_root,
            &catalog,
            &|index| leaves.entry(index).ok(),
        )
        .map_err(|e| LogError::Inconsistent(format!("building the state map: {e}")))?;
        let shared = Arc::new(Shared {
            tiles,
            lock,
            index,
            cache,
            signer,
            verifier,
            origin,
            head: tokio::sync::watch::Sender::new(Arc::new(head)),
            keys: RwLock::new(catalog.keys()),
            catalog: RwLock::new(catalog),
            state: AtomicU8::new(WriteState::Healthy as u8),
            stopping: (Mutex::new(false), Condvar::new()),
            retry: options.commit_retry,
            _dir_lock: dir_lock,
            uncommitted: Mutex::new(HashMap::new()),
            state_commits,
            spill: snapshot::dir(dir),
        });
        shared
            .state_commits
            .spawn(Arc::downgrade(&shared))
            .map_err(|e| StorageError::io("starting the state map thread", e))?;
        let (sender, receiver) = sync_channel(options.queue_capacity.max(1));
        let sequencer = Sequencer {
            shared: shared.clone(),
            integrator,
            batch_max: options.batch_max.max(1),
            batch_delay: options.batch_delay,
        };
        // One prepared batch may wait while another is being committed.
        let (commits, prepared) = sync_channel(1);
        let committer_shared = shared.clone();
        let committer = std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || committer::run(committer_shared, prepared))
            .map_err(|e| StorageError::io("starting the committer thread", e))?;
        let sequencer = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || sequencer.run(receiver, commits))
            .map_err(|e| StorageError::io("starting the sequencer thread", e))?;
        let mut threads = vec![sequencer, committer];
        if let Some(snapshots) = &snapshots {
            let (snapshots, shared) = (snapshots.clone(), shared.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("snapshot".into())
                    .spawn(move || snapshots.run(shared))
                    .map_err(|e| StorageError::io("starting the snapshot thread", e))?,
            );
        }
        Ok((
            Log {
                shared,
                jobs: Mutex::new(Some(sender)),
                threads: Mutex::new(threads),
                snapshots,
            },
            report,
        ))
    }
}

fn load_or_create_log_key(dir: &Path, origin: Option<&str>) -> Result<Signer, LogError> {
    let paths = key_pair_paths(&dir.join("log"));
    if paths.private.exists() {
        let signer = keyfile::read_signer(&paths.private)?;
        if let Some(origin) = origin {
            if origin != signer.name() {
                return Err(LogError::Config(format!(
                    "--origin {origin:?} does not match the existing log, whose origin is {:?}",
                    signer.name()
                )));
            }
        }
        return Ok(signer);
    }
    let origin = origin.unwrap_or(DEFAULT_ORIGIN);
    let (signer, _) = keyfile::generate_key_pair(&dir.join("log"), origin, KeyType::Ed25519)?;
    Ok(signer)
}

fn admin_keys(
    dir: &Path,
    given: &[Verifier],
    report: &mut OpenReport,
) -> Result<Vec<Verifier>, LogError> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let paths = key_pair_paths(&dir.join("admin"));
    // A crash after generating the admin key but before genesis leaves the key behind;
    // reuse it rather than minting a second one.
    let signer = if paths.private.exists() {
        keyfile::read_signer(&paths.private)?
    } else {
        keyfile::generate_key_pair(&dir.join("admin"), "admin", KeyType::Ed25519)?.0
    };
    report.generated_admin_key = Some(paths.private);
    Ok(vec![signer.verifier()])
}

fn open_committed(bytes: &[u8], verifier: &Verifier) -> Result<Head, LogError> {
    let (checkpoint, _) = note::open_checkpoint(bytes, verifier).map_err(|e| {
        LogError::Inconsistent(format!(
            "the stored checkpoint does not verify with the log key: {e}"
        ))
    })?;
    Ok(Head {
        checkpoint,
        signed: Arc::new(bytes.to_vec()),
    })
}

/// Finishes or abandons a checkpoint swap a crash interrupted (the POSIX lock's
/// `checkpoint.pending`). Returns whether it was finished, if there was one.
fn settle_interrupted(
    tiles: &dyn TileStore,
    lock: &dyn CheckpointLock,
    verifier: &Verifier,
) -> Result<Option<bool>, LogError> {
    let Some(pending) = lock.interrupted()? else {
        return Ok(None);
    };
    let current_size = match lock.read()? {
        Some(bytes) => open_committed(&bytes, verifier)?.checkpoint.size,
        None => 0,
    };
    let promote = match note::open_checkpoint(&pending, verifier) {
        Ok((checkpoint, _)) if checkpoint.size > current_size => {
            // A private cache: tiles read here may be leftovers that a discarded
            // checkpoint covered, and must not be served later under the same name.
            let cache = TileCache::default();
            let view = TreeView::new(tiles, &cache, checkpoint.size);
            matches!(merkle::tree_root(checkpoint.size, &view), Ok(root) if root == checkpoint.root)
        }
        _ => false,
    };
    lock.settle(promote)?;
    Ok(Some(promote))
}

/// Finishes every batch a journaling lock holds staged on top of the installed
/// checkpoint: writes its tiles (the same bytes its sequencer wrote or would have
/// written) and installs its checkpoint, which must verify with the log key. The tiles
/// are checked against the checkpoint root afterwards, as for any checkpoint
/// ([`resume_edge`]). Returns how many were finished.
fn finish_staged(
    tiles: &dyn TileStore,
    lock: &dyn CheckpointLock,
    verifier: &Verifier,
) -> Result<u64, LogError> {
    let mut finished = 0;
    while let Some(batch) = lock.staged()? {
        let checkpoint = match note::open_checkpoint(&batch.signed, verifier) {
            Ok((checkpoint, _)) if checkpoint.size == batch.new_size => checkpoint,
            _ => {
                return Err(LogError::Inconsistent(format!(
                    "a staged batch to size {} does not carry a checkpoint of that size                      signed by the log key",
                    batch.new_size
                )))
            }
        };
        let current = lock.read()?;
        let old = match (&current, batch.old_size) {
            (Some(signed), Some(size)) => Some(LockedCheckpoint { size, signed }),
            (None, None) => None,
            _ => {
                return Err(LogError::Inconsistent(
                    "a staged batch does not extend the installed checkpoint".into(),
                ))
            }
        };
        tiles.put_batch(&batch.writes)?;
        lock.swap(
            old,
            LockedCheckpoint {
                size: checkpoint.size,
                signed: &batch.signed,
            },
        )?;
        tracing::info!(size = checkpoint.size, "finished a staged batch");
        finished += 1;
    }
    Ok(finished)
}

/// Reads the right edge of the committed tree back from the tiles.
fn resume_edge(
    tiles: &dyn TileStore,
    cache: &TileCache,
    checkpoint: &Checkpoint,
) -> Result<Integrator, LogError> {
    let size = checkpoint.size;
    let view = TreeView::new(tiles, cache, size);
    let compact = merkle::tree_edge(size, &view).map_err(ReadError::from)?;
    if compact.root() != checkpoint.root {
        return Err(LogError::Inconsistent(format!(
            "the tiles do not rebuild the checkpoint root at size {size}; run fsck"
        )));
    }
    let mut partial_hashes = Vec::new();
    for level in 0..=tiles::MAX_TILE_LEVEL {
        let stored = tiles::stored_hashes_at_level(size, level);
        if stored == 0 {
            break;
        }
        let width = stored % TILE_WIDTH;
        let mut hashes = Vec::new();
        if width != 0 {
            let tile = TileId {
                kind: TileKind::Hash(level),
                index: stored / TILE_WIDTH,
                width: width as u16,
            };
            hashes = tiles::hashes_of(&view.tile(tile)?);
        }
        partial_hashes.push(hashes);
    }
    let width = size % TILE_WIDTH;
    let partial_bundle = if width == 0 {
        Vec::new()
    } else {
        let tile = TileId {
            kind: TileKind::Entries,
            index: size / TILE_WIDTH,
            width: width as u16,
        };
        view.tile(tile)?.as_ref().clone()
    };
    Ok(Integrator::resume(compact, partial_hashes, partial_bundle))
}

/// Writes leaf 0 of a new log and commits its first checkpoint.
fn write_genesis(
    tiles: &dyn TileStore,
    lock: &dyn CheckpointLock,
    signer: &Signer,
    admins: &[Verifier],
) -> Result<(Head, Integrator), LogError> {
    let leaf = Catalog::genesis_leaf(signer.name(), &signer.verifier(), admins, now_ms())
        .map_err(|e| LogError::Inconsistent(format!("building genesis: {e}")))?;
    let mut integrator = Integrator::new();
    let mut batch = BatchTiles::default();
    integrator
        .append(&leaf, &mut batch)
        .map_err(|e| LogError::Inconsistent(e.to_string()))?;
    let writes = integrator.finish(batch);
    let checkpoint = integrator.checkpoint(signer.name());
    let signed = checkpoint
        .sign(signer)
        .map_err(|e| LogError::Inconsistent(format!("signing genesis checkpoint: {e}")))?
        .to_bytes();
    let new = LockedCheckpoint {
        size: checkpoint.size,
        signed: &signed,
    };
    commit(tiles, lock, &writes, &[], None, new)?;
    Ok((
        Head {
            checkpoint,
            signed: Arc::new(signed),
        },
        integrator,
    ))
}

/// Restores the catalog from the newest whole snapshot that passes every check
/// (`check`), and the deltas on it that do, into `store`; returns it and the snapshots
/// it reflects. Without a usable snapshot, an empty catalog over `store` and no chain:
/// the whole log is replayed.
#[allow(clippy::too_many_arguments)]
pub(super) fn restore(
    data_dir: &Path,
    check: SnapshotCheck,
    tiles: &dyn TileStore,
    cache: &TileCache,
    checkpoint: &Checkpoint,
    origin: &str,
    mut store: Box<dyn RecordStore>,
    report: &mut OpenReport,
) -> Result<(Catalog, Chain), LogError> {
    if check == SnapshotCheck::Off {
        return Ok((Catalog::with_store(store), Chain::default()));
    }
    let dir = snapshot::dir(data_dir);
    snapshot::remove_temporaries(&dir);
    let at = Checked {
        check,
        tiles,
        cache,
        checkpoint,
        origin,
    };
    for (_, path) in snapshot::list(&dir) {
        match restore_from(&dir, &path, &at, store, &mut report.snapshots_refused) {
            Ok((catalog, chain)) => {
                report.snapshot = chain.newest.map(|w| w.size);
                report.deltas = chain.deltas;
                return Ok((catalog, chain));
            }
            Err((e, loaded, returned)) => {
                tracing::warn!(path = %path.display(), reason = %e, "refusing a catalog snapshot");
                report
                    .snapshots_refused
                    .push(format!("{}: {e}", path.display()));
                store = returned;
                if loaded {
                    store.clear().map_err(|e| {
                        LogError::Inconsistent(format!(
                            "clearing the record store after a refused snapshot: {e}"
                        ))
                    })?;
                }
            }
        }
    }
    Ok((Catalog::with_store(store), Chain::default()))
}

/// What start-up checks snapshots against.
struct Checked<'a> {
    check: SnapshotCheck,
    tiles: &'a dyn TileStore,
    cache: &'a TileCache,
    checkpoint: &'a Checkpoint,
    origin: &'a str,
}

/// What a refused snapshot leaves: why, whether records were loaded into the store, and
/// the store.
type Refusal = (SnapshotError, bool, Box<dyn RecordStore>);

/// The cheap checks of the snapshot at `path`: header, size, origin, the root at its
/// size from the tiles, and with [`SnapshotCheck::Hash`] (or a v1 file) the whole
/// file's hash. Returns its header and where its frames end.
fn check_header(path: &Path, at: &Checked<'_>) -> Result<(SnapshotHeader, u64), SnapshotError> {
    let refused = |reason: String| SnapshotError::Refused(reason);
    let (header, frames_end) = snapshot::read_header(path)?;
    let size = header.size;
    if size > at.checkpoint.size {
        return Err(refused(format!(
            "its size {size} is beyond the checkpoint's {}",
            at.checkpoint.size
        )));
    }
    if header.origin != at.origin {
        return Err(refused(format!(
            "it is of another log ({:?})",
            header.origin
        )));
    }
    let view = TreeView::new(at.tiles, at.cache, at.checkpoint.size);
    let root = merkle::tree_root(size, &view)
        .map_err(|e| refused(format!("the tree root at {size}: {e}")))?;
    if hex::encode(root) != header.root {
        return Err(refused(format!(
            "its root at size {size} is not the tree's"
        )));
    }
    if at.check >= SnapshotCheck::Hash || header.index.is_none() {
        snapshot::verify_hash(path)?;
    }
    Ok((header, frames_end))
}

/// A delta snapshot start-up accepted: its size and hash, table and admin state.
struct Accepted {
    written: snapshot::Written,
    /// Its table, with its key filters (`storage::records::filter`).
    table: Box<dyn RecordStore>,
    admin: crate::catalog::AdminState,
}

/// The deltas on the whole snapshot `whole` (whose file ends with `whole_hash`) that pass
/// every check, in order:
/// each must name the one before as its base. The first refused ends the chain (the
/// reason logged into `refusals`); with [`SnapshotCheck::Digest`] none is used (a delta
/// records no state digest).
fn deltas_on(
    dir: &Path,
    whole: &SnapshotHeader,
    whole_hash: [u8; 32],
    at: &Checked<'_>,
    refusals: &mut Vec<String>,
) -> Vec<Accepted> {
    let mut accepted = Vec::new();
    if at.check == SnapshotCheck::Digest || whole.index.is_none() {
        return accepted;
    }
    let mut base = (whole.size, hex::encode(whole_hash));
    for (size, path) in delta::list(dir) {
        if size <= base.0 || accepted.len() >= delta::MAX_DELTAS {
            continue;
        }
        let one = (|| {
            let (header, _) = check_header(&path, at)?;
            let named = header.base.as_ref().map(|b| (b.size, b.sha256.clone()));
            if named.as_ref() != Some(&base) {
                return Err(SnapshotError::Refused(format!(
                    "it does not lie on the snapshot at size {} restored below it",
                    base.0
                )));
            }
            let (table, admin) = snapshot::open_table(&path, &header)?;
            if at.check >= SnapshotCheck::Hash {
                table.verify_all()?;
            }
            if admin.applied_size() != size || admin.origin() != Some(at.origin) {
                return Err(SnapshotError::Refused(
                    "its admin state is of another size or log".into(),
                ));
            }
            let hash = delta::file_hash(&path)?;
            let table = Filtered::build(Box::new(table), filter::DELTA_BUDGETS)?;
            Ok((Box::new(table) as Box<dyn RecordStore>, admin, hash))
        })();
        match one {
            Ok((table, admin, hash)) => {
                base = (size, hex::encode(hash));
                accepted.push(Accepted {
                    written: snapshot::Written { size, hash },
                    table,
                    admin,
                });
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), reason = %e, "refusing a delta snapshot");
                refusals.push(format!("{}: {e}", path.display()));
                break;
            }
        }
    }
    accepted
}

/// Checks the whole snapshot at `path` and restores the catalog from it and the deltas
/// on it into `store`: the cheap checks first ([`check_header`]), then either the
/// index's hash and the records opened in place as the store's base, deltas stacked on
/// top (a v2 snapshot and a store that takes a base, ADR 0009: nothing is copied), or
/// the files' hashes and the records copied into the store; with
/// [`SnapshotCheck::Hash`] every file is hashed whole either way, and with
/// [`SnapshotCheck::Digest`] (no deltas) the state digest of what was restored is
/// compared with the recorded one.
fn restore_from(
    dir: &Path,
    path: &Path,
    at: &Checked<'_>,
    mut store: Box<dyn RecordStore>,
    refusals: &mut Vec<String>,
) -> Result<(Catalog, Chain), Refusal> {
    let refused = |reason: String| SnapshotError::Refused(reason);
    let checked = (|| {
        let (header, frames_end) = check_header(path, at)?;
        if header.base.is_some() || header.state_digest.is_none() {
            return Err(refused(
                "a whole snapshot must have a digest and no base".into(),
            ));
        }
        let table = match header.index {
            Some(_) => {
                let (table, admin) = snapshot::open_table(path, &header)?;
                if at.check >= SnapshotCheck::Hash {
                    table.verify_all()?;
                }
                Some((table, admin))
            }
            None => None,
        };
        let hash = delta::file_hash(path)?;
        Ok((header, frames_end, table, hash))
    })();
    let (header, frames_end, table, hash) = match checked {
        Ok(h) => h,
        Err(e) => return Err((e, false, store)),
    };
    let deltas = deltas_on(dir, &header, hash, at, refusals);
    let mut chain = Chain {
        newest: Some(snapshot::Written {
            size: header.size,
            hash,
        }),
        whole: header.size,
        deltas: 0,
    };
    let in_place = match table {
        Some((table, admin)) => {
            let mut stack: Box<dyn RecordStore> =
                match Filtered::build(Box::new(table), filter::WHOLE_BUDGETS) {
                    Ok(filtered) => Box::new(filtered),
                    Err(e) => return Err((e.into(), false, store)),
                };
            let mut admin = admin;
            let mut newest = chain.newest;
            let count = deltas.len();
            for d in deltas {
                newest = Some(d.written);
                admin = d.admin;
                stack = Box::new(crate::storage::records::Stacked::new(d.table, stack));
            }
            match store.layer_over(stack) {
                Ok(()) => {
                    chain.newest = newest;
                    chain.deltas = count;
                    Some(admin)
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    let loaded = match in_place {
        Some(admin) => Ok(admin),
        None => copy_chain(path, &header, frames_end, at.check, store.as_mut()),
    }
    .and_then(|admin| {
        let size = chain.newest.map_or(0, |w| w.size);
        if admin.applied_size() != size || admin.origin() != Some(at.origin) {
            return Err(refused(
                "its admin state is of another size or log".to_string(),
            ));
        }
        Ok(admin)
    });
    let admin = match loaded {
        Ok(admin) => admin,
        Err(e) => return Err((e, true, store)),
    };
    let catalog = match Catalog::restore(admin, store) {
        Ok(c) => c,
        Err((e, store)) => return Err((e.into(), true, store)),
    };
    if at.check == SnapshotCheck::Digest {
        // Sorted in the snapshot directory, not read by leaf index (ADR 0020).
        let digest = sorted_state_digest_at(&catalog, header.size, dir).map(hex::encode);
        match digest {
            Ok(d) if Some(&d) == header.state_digest.as_ref() => {}
            Ok(_) => {
                return Err((
                    refused("the state loaded from it does not have its digest".into()),
                    true,
                    catalog.into_store(),
                ))
            }
            Err(e) => return Err((e.into(), true, catalog.into_store())),
        }
    }
    Ok((catalog, chain))
}

/// Copies the records of the whole snapshot at `path` into `store` (one that cannot
/// take them in place, or a v1 file), its hash checked first: a block is never read
/// again from it. Deltas are not copied: the tail after the whole one is replayed.
fn copy_chain(
    path: &Path,
    header: &SnapshotHeader,
    frames_end: u64,
    check: SnapshotCheck,
    store: &mut dyn RecordStore,
) -> Result<crate::catalog::AdminState, SnapshotError> {
    if check < SnapshotCheck::Hash && header.index.is_some() {
        snapshot::verify_hash(path)?;
    }
    let (admin, records) = snapshot::load(path, frames_end, store)?;
    if records != header.records {
        return Err(SnapshotError::Refused(format!(
            "it holds {records} records, its header says {}",
            header.records
        )));
    }
    Ok(admin)
}

/// Applies the entries from `from` on to `catalog` (which reflects the first `from`) and
/// brings the index up to the checkpoint. Returns how many entries were indexed.
fn replay(
    tiles: &dyn TileStore,
    cache: &TileCache,
    index: &dyn LookupIndex,
    checkpoint: &Checkpoint,
    catalog: &mut Catalog,
    from: u64,
) -> Result<u64, LogError> {
    let size = checkpoint.size;
    let indexed = index.indexed_size()?;
    if indexed > size {
        return Err(LogError::Inconsistent(format!(
            "the index covers {indexed} entries but the checkpoint only {size}; \
             move the index directory aside to rebuild it"
        )));
    }
    let view = TreeView::new(tiles, cache, size);
    let mut pending = Vec::new();
    let start = from.min(indexed);
    let mut steps = steps_from(start, size, |tile| view.tile(tile).map_err(LogError::from));
    let at = TailReplay {
        start,
        from,
        indexed,
        size,
        index,
    };
    // Step k is applied on this thread while step k + 1 is read, hashed and parsed on
    // the others, as in a full replay (`replay::replay`).
    let mut current: Option<Step> = None;
    loop {
        let (next, applied) = steps.next_while(|| match current.take() {
            Some(step) => at.apply(step, catalog, &mut pending),
            None => Ok(()),
        });
        applied?;
        match next {
            Some(step) => current = Some(step?),
            None => break,
        }
    }
    let reindexed = size - indexed;
    if reindexed > 0 {
        index.record(&pending, size)?;
    }
    Ok(reindexed)
}

/// Where the start-up replay begins and what it brings up to date.
struct TailReplay<'a> {
    /// The first leaf looked at: `from.min(indexed)`.
    start: u64,
    /// The first leaf the catalog does not reflect.
    from: u64,
    /// The first leaf the lookup index does not hold.
    indexed: u64,
    /// The checkpoint's size.
    size: u64,
    index: &'a dyn LookupIndex,
}

impl TailReplay<'_> {
    /// Applies one step: its leaves from `from` on to `catalog`, and those from `indexed`
    /// on to the lookup index (recorded 4,096 or more at a time).
    fn apply(
        &self,
        step: Step,
        catalog: &mut Catalog,
        pending: &mut Vec<IndexedLeaf>,
    ) -> Result<(), LogError> {
        let (start, from, indexed, index) = (self.start, self.from, self.indexed, self.index);
        let end = step.first + step.entries.len() as u64;
        crate::progress::report("start-up replay", end, self.size);
        for (offset, prepared) in step.entries.into_iter().enumerate() {
            let leaf_index = step.first + offset as u64;
            if leaf_index < start {
                continue;
            }
            let replaying = |e: CatalogError| {
                LogError::Inconsistent(format!("replaying entry {leaf_index}: {e}"))
            };
            let leaf = prepared.leaf.map_err(replaying)?;
            let dedup_key = leaf.dedup_key();
            if leaf_index >= from {
                catalog.apply_prepared(leaf).map_err(replaying)?;
            }
            if leaf_index >= indexed {
                pending.push(IndexedLeaf {
                    index: leaf_index,
                    leaf_hash: prepared.leaf_hash,
                    dedup_key,
                });
            }
        }
        if pending.len() >= 4096 {
            index.record(pending, end)?;
            index.persist_if_full()?;
            pending.clear();
        }
        Ok(())
    }
}

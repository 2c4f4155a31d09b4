//! Opening a log: keys, genesis for a new log, and crash recovery for an old one.
//!
//! Recovery, in order:
//! 1. A `checkpoint.pending` left by a crash between "pending written" and "rename" is
//!    promoted if it verifies with the log key, is larger than the current checkpoint,
//!    and the tiles on disk rebuild its root; otherwise it is discarded. Either way no
//!    checkpoint inconsistent with a served one is ever signed: the log's next
//!    checkpoint extends whatever tree the tiles under the surviving checkpoint hold.
//! 2. The right edge (compact range and partial tiles) is read back from the tiles and
//!    must reproduce the checkpoint's root.
//! 3. The catalog is rebuilt by applying every entry (its per-publication records into
//!    a fresh on-disk store, `projection/`, so memory does not grow with the log), and
//!    the lookup index catches up with the checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, RwLock};

use super::committer;
use super::integrator::{BatchTiles, Integrator};
use super::reader::{TileCache, TreeView};
use super::replay::{prepare_in_parallel, step_entries, BUNDLES_PER_STEP};
use super::sequencer::Sequencer;
use super::{now_ms, Head, Log, LogError, LogOptions, ProjectionMode, Shared, DEFAULT_ORIGIN};
use crate::catalog::{Catalog, CatalogError};
use crate::keyfile::{self, key_pair_paths};
use crate::merkle::{self, CompactRange, HashSource};
use crate::note::{self, Checkpoint, KeyType, Signer, Verifier};
use crate::storage::durable::create_dir_all_durable;
use crate::storage::index::{Index, IndexedLeaf};
use crate::storage::posix::PosixStore;
use crate::storage::projection::ProjectionStore;
use crate::storage::{LogStore, StorageError};
use crate::tiles::{self, TileId, TileKind, TILE_WIDTH};

/// What opening the log did, for the operator.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// A new log was created (genesis written).
    pub created: bool,
    /// Where a generated admin key was written, if one was.
    pub generated_admin_key: Option<PathBuf>,
    /// A pending checkpoint was promoted (`Some(true)`) or discarded (`Some(false)`).
    pub pending_checkpoint: Option<bool>,
    /// Entries the index had to catch up on.
    pub reindexed: u64,
}

impl Log {
    /// Opens (or creates) the log in `options.data_dir`, recovering from any crash, and
    /// starts its sequencer.
    pub fn open(options: LogOptions) -> Result<(Log, OpenReport), LogError> {
        let dir = &options.data_dir;
        create_dir_all_durable(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let signer = load_or_create_log_key(dir, options.origin.as_deref())?;
        let verifier = signer.verifier();
        let origin = signer.name().to_string();
        let store = PosixStore::open(&dir.join("log"))?;
        let index = Index::open(&dir.join("lookup"))?;
        let cache = TileCache::default();
        let mut report = OpenReport {
            pending_checkpoint: settle_pending(&store, &verifier)?,
            ..OpenReport::default()
        };
        let committed = match store.read_checkpoint()? {
            Some(bytes) => Some(open_committed(&bytes, &verifier)?),
            None => None,
        };

        let (head, integrator) = match committed {
            Some(head) => {
                let integrator = resume_edge(&store, &cache, &head.checkpoint)?;
                (head, integrator)
            }
            None => {
                let admins = admin_keys(dir, &options.admin_keys, &mut report)?;
                report.created = true;
                write_genesis(&store, &signer, &admins)?
            }
        };

        // Wiped and rebuilt from the log: the log is the truth, so a crash can leave
        // nothing in the projection to recover.
        let mut catalog = match options.projection {
            ProjectionMode::Disk => Catalog::with_store(Box::new(ProjectionStore::open_fresh(
                &dir.join("projection"),
            )?)),
            ProjectionMode::Memory => Catalog::new(),
        };
        report.reindexed = replay(&store, &cache, &index, &head.checkpoint, &mut catalog)?;

        let shared = Arc::new(Shared {
            store: Box::new(store),
            index,
            cache,
            signer,
            verifier,
            origin,
            head: tokio::sync::watch::Sender::new(Arc::new(head)),
            keys: RwLock::new(catalog.keys()),
            catalog: RwLock::new(catalog),
            failed: AtomicBool::new(false),
            uncommitted: Mutex::new(HashMap::new()),
        });
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
        Ok((
            Log {
                shared,
                jobs: Mutex::new(Some(sender)),
                threads: Mutex::new(vec![sequencer, committer]),
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

/// Promotes or discards a `checkpoint.pending` left by a crash.
fn settle_pending(store: &PosixStore, verifier: &Verifier) -> Result<Option<bool>, LogError> {
    let Some(pending) = store.read_pending_checkpoint()? else {
        return Ok(None);
    };
    let current_size = match store.read_checkpoint()? {
        Some(bytes) => open_committed(&bytes, verifier)?.checkpoint.size,
        None => 0,
    };
    let promote = match note::open_checkpoint(&pending, verifier) {
        Ok((checkpoint, _)) if checkpoint.size > current_size => {
            // A private cache: tiles read here may be leftovers that a discarded
            // checkpoint covered, and must not be served later under the same name.
            let cache = TileCache::default();
            let view = TreeView::new(store, &cache, checkpoint.size);
            matches!(merkle::tree_root(checkpoint.size, &view), Ok(root) if root == checkpoint.root)
        }
        _ => false,
    };
    if promote {
        store.promote_pending_checkpoint()?;
    } else {
        store.discard_pending_checkpoint()?;
    }
    Ok(Some(promote))
}

/// Reads the right edge of the committed tree back from the tiles.
fn resume_edge(
    store: &PosixStore,
    cache: &TileCache,
    checkpoint: &Checkpoint,
) -> Result<Integrator, LogError> {
    let size = checkpoint.size;
    let view = TreeView::new(store, cache, size);
    let nodes = merkle::range_nodes(0, size);
    let hashes = view.hashes(&nodes)?;
    let compact = CompactRange::from_hashes(size, hashes)
        .map_err(|e| LogError::Inconsistent(format!("rebuilding the tree edge: {e}")))?;
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
    store: &PosixStore,
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
    store.commit(&writes, &signed)?;
    Ok((
        Head {
            checkpoint,
            signed: Arc::new(signed),
        },
        integrator,
    ))
}

/// Applies every entry to `catalog` and brings the index up to the checkpoint.
/// Returns how many entries were indexed.
fn replay(
    store: &PosixStore,
    cache: &TileCache,
    index: &Index,
    checkpoint: &Checkpoint,
    catalog: &mut Catalog,
) -> Result<u64, LogError> {
    let size = checkpoint.size;
    let indexed = index.indexed_size()?;
    if indexed > size {
        return Err(LogError::Inconsistent(format!(
            "the index covers {indexed} entries but the checkpoint only {size}; \
             move the index directory aside to rebuild it"
        )));
    }
    let view = TreeView::new(store, cache, size);
    let mut pending = Vec::new();
    let bundles: Vec<TileId> = tiles::entry_bundles(size).collect();
    for step in bundles.chunks(BUNDLES_PER_STEP) {
        let mut data = Vec::with_capacity(step.len());
        for tile in step {
            data.push(view.tile(*tile)?);
        }
        let entries = step_entries(step, data.iter().map(|d| d.as_slice()))
            .map_err(LogError::Inconsistent)?;
        let first = step[0].index * TILE_WIDTH;
        for (offset, prepared) in prepare_in_parallel(first, &entries).into_iter().enumerate() {
            let leaf_index = first + offset as u64;
            let replaying = |e: CatalogError| {
                LogError::Inconsistent(format!("replaying entry {leaf_index}: {e}"))
            };
            let leaf = prepared.leaf.map_err(replaying)?;
            let dedup_key = leaf.dedup_key();
            catalog.apply_prepared(leaf).map_err(replaying)?;
            if leaf_index >= indexed {
                pending.push(IndexedLeaf {
                    index: leaf_index,
                    leaf_hash: prepared.leaf_hash,
                    dedup_key,
                });
            }
        }
        if pending.len() >= 4096 {
            index.record(&pending, first + entries.len() as u64)?;
            index.persist_if_full()?;
            pending.clear();
        }
    }
    let reindexed = size - indexed;
    if reindexed > 0 {
        index.record(&pending, size)?;
    }
    Ok(reindexed)
}

//! `fsck`: recompute every tile and the root from the entries alone, and compare them
//! with what is stored and with the signed checkpoint.
//!
//! May import: the `storage` ports (and, for [`fsck`] only, the POSIX shorthand
//! [`LogBackends::posix`]), `keyfile`, `note`, `tiles`, and the engine's integrator and
//! reader.

use std::path::{Path, PathBuf};

use super::integrator::{BatchTiles, Integrator};
use super::reader::{TileCache, TreeView};
use crate::keyfile::{self, KeyFileError};
use crate::note::{self, NoteError, Verifier};
use crate::storage::{LogBackends, StorageError};
use crate::tiles;

/// Why fsck could not check the log at all (what it finds wrong is in the report).
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// The log's verifier key could not be read.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// There is no log to check.
    #[error("{} holds no checkpoint", .0.display())]
    NoCheckpoint(PathBuf),
    /// The checkpoint is not signed by the log key.
    #[error("the checkpoint does not verify with log.vkey: {0}")]
    Checkpoint(#[source] NoteError),
}

/// What fsck found.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Entries read and re-hashed.
    pub entries: u64,
    /// Tiles (hash tiles and bundles) recomputed and compared.
    pub tiles_checked: u64,
    /// Every mismatch found; empty means the log is sound.
    pub problems: Vec<String>,
}

/// Checks the log in the POSIX data directory `data_dir` against its own checkpoint and
/// its `log.vkey`.
pub fn fsck(data_dir: &Path) -> Result<FsckReport, FsckError> {
    let verifier = keyfile::read_verifier(&data_dir.join("log.vkey"))?;
    let log = LogBackends::posix(data_dir)?;
    check(&log, &verifier)?.ok_or_else(|| FsckError::NoCheckpoint(data_dir.to_path_buf()))
}

/// Checks the log in `log` against its own checkpoint, verified with `verifier`; `None`
/// if it holds no checkpoint.
pub fn check(log: &LogBackends, verifier: &Verifier) -> Result<Option<FsckReport>, FsckError> {
    let Some(signed) = log.lock.read()? else {
        return Ok(None);
    };
    let (checkpoint, _) =
        note::open_checkpoint(&signed, verifier).map_err(FsckError::Checkpoint)?;
    let cache = TileCache::default();
    let view = TreeView::new(log.tiles.as_ref(), &cache, checkpoint.size);
    let mut report = FsckReport {
        tree_size: checkpoint.size,
        ..FsckReport::default()
    };
    let mut integrator = Integrator::new();
    for tile in tiles::entry_bundles(checkpoint.size) {
        let data = match view.tile(tile) {
            Ok(data) => data,
            Err(e) => {
                report.problems.push(format!("{}: {e}", tile.path()));
                return Ok(Some(report));
            }
        };
        let Some(entries) = tiles::decode_bundle(&data) else {
            report
                .problems
                .push(format!("{} is not a valid entry bundle", tile.path()));
            return Ok(Some(report));
        };
        let mut batch = BatchTiles::default();
        for entry in entries {
            if let Err(e) = integrator.append(entry, &mut batch) {
                report.problems.push(format!("{}: {e}", tile.path()));
            }
            report.entries += 1;
        }
        crate::progress::report("fsck", report.entries, checkpoint.size);
        for write in integrator.finish(batch) {
            report.tiles_checked += 1;
            match view.tile(write.tile) {
                Ok(stored) if stored.as_slice() == write.data.as_slice() => {}
                Ok(_) => report.problems.push(format!(
                    "{} differs from the tile recomputed from the entries",
                    write.tile.path()
                )),
                Err(e) => report.problems.push(format!("{}: {e}", write.tile.path())),
            }
        }
    }
    if integrator.size() != checkpoint.size {
        report.problems.push(format!(
            "the entry bundles hold {} entries, the checkpoint says {}",
            integrator.size(),
            checkpoint.size
        ));
    } else if integrator.root() != checkpoint.root {
        report
            .problems
            .push("the root recomputed from the entries differs from the checkpoint's".into());
    }
    Ok(Some(report))
}

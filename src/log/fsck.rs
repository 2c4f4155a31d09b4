//! `fsck`: recompute every tile and the root from the entries alone, and compare them
//! with what is stored and with the signed checkpoint.

use std::path::Path;

use super::integrator::{BatchTiles, Integrator};
use super::reader::{TileCache, TreeView};
use crate::keyfile;
use crate::note;
use crate::storage::posix::PosixStore;
use crate::storage::LogStore;
use crate::tiles;

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

/// Checks the log in `data_dir` against its own checkpoint and key.
pub fn fsck(data_dir: &Path) -> Result<FsckReport, String> {
    let verifier = keyfile::read_verifier(&data_dir.join("log.vkey")).map_err(|e| e.to_string())?;
    let store = PosixStore::open(&data_dir.join("log")).map_err(|e| e.to_string())?;
    let signed = store
        .read_checkpoint()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} holds no checkpoint", data_dir.display()))?;
    let (checkpoint, _) = note::open_checkpoint(&signed, &verifier)
        .map_err(|e| format!("the checkpoint does not verify with log.vkey: {e}"))?;
    let cache = TileCache::default();
    let view = TreeView::new(&store, &cache, checkpoint.size);
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
                return Ok(report);
            }
        };
        let Some(entries) = tiles::decode_bundle(&data) else {
            report
                .problems
                .push(format!("{} is not a valid entry bundle", tile.path()));
            return Ok(report);
        };
        let mut batch = BatchTiles::default();
        for entry in entries {
            if let Err(e) = integrator.append(entry, &mut batch) {
                report.problems.push(format!("{}: {e}", tile.path()));
            }
            report.entries += 1;
        }
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
    Ok(report)
}

//! The embedded default backend: a C2SP tlog-tiles directory on a POSIX filesystem.
//!
//! Layout under the log directory, identical to the URL space so the directory can be
//! served as static files:
//! - `checkpoint` — the current signed checkpoint (replaced by rename: the commit point);
//! - `checkpoint.pending` — written durably just before the rename; if it survives a
//!   crash, recovery decides whether to promote it;
//! - `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::durable::{create_dir_all_durable, replace_atomically, sync_dir, write_and_sync};
use super::{LogStore, StorageError, TileWrite};
use crate::tiles::TileId;

const CHECKPOINT: &str = "checkpoint";
const PENDING: &str = "checkpoint.pending";

/// A tlog-tiles directory.
#[derive(Debug)]
pub struct PosixStore {
    root: PathBuf,
}

impl PosixStore {
    /// Opens (creating if needed) the tiles directory at `root`.
    pub fn open(root: &Path) -> Result<PosixStore, StorageError> {
        create_dir_all_durable(root)
            .map_err(|e| StorageError::io(format!("creating {}", root.display()), e))?;
        // A temporary file is only ever a half-finished rename; it holds nothing that
        // was acknowledged.
        let tmp = root.join("checkpoint.tmp");
        if tmp.exists() {
            fs::remove_file(&tmp)
                .map_err(|e| StorageError::io(format!("removing {}", tmp.display()), e))?;
        }
        Ok(PosixStore {
            root: root.to_path_buf(),
        })
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tile_path(&self, tile: TileId) -> PathBuf {
        self.root.join(tile.path())
    }

    fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
        match fs::read(path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(format!("reading {}", path.display()), e)),
        }
    }
}

impl LogStore for PosixStore {
    fn commit(&self, tiles: &[TileWrite], checkpoint: &[u8]) -> Result<(), StorageError> {
        let mut dirs = BTreeSet::new();
        for write in tiles {
            let path = self.tile_path(write.tile);
            let dir = path
                .parent()
                .ok_or_else(|| StorageError::Corrupt(format!("tile path {}", path.display())))?
                .to_path_buf();
            if dirs.insert(dir.clone()) {
                create_dir_all_durable(&dir)
                    .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
            }
            write_and_sync(&path, &write.data)
                .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))?;
        }
        for dir in &dirs {
            sync_dir(dir).map_err(|e| StorageError::io(format!("syncing {}", dir.display()), e))?;
        }
        // The pending copy is durable before the rename, so a crash in between leaves
        // a signed checkpoint whose tiles are all on disk: recovery can finish the job.
        let pending = self.root.join(PENDING);
        write_and_sync(&pending, checkpoint)
            .map_err(|e| StorageError::io(format!("writing {}", pending.display()), e))?;
        let current = self.root.join(CHECKPOINT);
        fs::rename(&pending, &current)
            .map_err(|e| StorageError::io(format!("installing {}", current.display()), e))?;
        sync_dir(&self.root)
            .map_err(|e| StorageError::io(format!("syncing {}", self.root.display()), e))
    }

    fn read_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Self::read_optional(&self.root.join(CHECKPOINT))
    }

    fn read_pending_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Self::read_optional(&self.root.join(PENDING))
    }

    fn promote_pending_checkpoint(&self) -> Result<(), StorageError> {
        let pending = self.root.join(PENDING);
        let data = fs::read(&pending)
            .map_err(|e| StorageError::io(format!("reading {}", pending.display()), e))?;
        replace_atomically(&self.root.join(CHECKPOINT), &data)
            .map_err(|e| StorageError::io("installing the pending checkpoint", e))?;
        self.discard_pending_checkpoint()
    }

    fn discard_pending_checkpoint(&self) -> Result<(), StorageError> {
        let pending = self.root.join(PENDING);
        match fs::remove_file(&pending) {
            Ok(()) => sync_dir(&self.root)
                .map_err(|e| StorageError::io(format!("syncing {}", self.root.display()), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(
                format!("removing {}", pending.display()),
                e,
            )),
        }
    }

    fn read_tile(&self, tile: TileId) -> Result<Option<Vec<u8>>, StorageError> {
        Self::read_optional(&self.tile_path(tile))
    }

    fn remove_partials(&self, full: TileId) -> Result<(), StorageError> {
        let partial_dir = PathBuf::from(format!("{}.p", self.tile_path(full).display()));
        match fs::remove_dir_all(&partial_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(
                format!("removing {}", partial_dir.display()),
                e,
            )),
        }
    }
}

//! The tile store on a POSIX filesystem: each tile a file at its tlog-tiles path under
//! the log directory, written and fsynced, with every directory that gained an entry
//! fsynced before the batch counts as durable.
//!
//! May import: `storage::durable` and the tile store port.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::storage::durable::{create_dir_all_durable, sync_dir, write_and_sync};
use crate::storage::tile_store::bundle_entry;
use crate::storage::{StorageError, TileStore, TileWrite};

/// The read buffer of one entry read from a bundle.
const BUNDLE_READ_BUFFER: usize = 16 << 10;

/// A tlog-tiles directory (the tiles; the checkpoint beside them is [`super::PosixLock`]'s).
#[derive(Debug)]
pub struct PosixTiles {
    root: PathBuf,
}

impl PosixTiles {
    /// Opens (creating if needed) the tiles directory at `root`.
    pub fn open(root: &Path) -> Result<PosixTiles, StorageError> {
        create_dir_all_durable(root)
            .map_err(|e| StorageError::io(format!("creating {}", root.display()), e))?;
        Ok(PosixTiles {
            root: root.to_path_buf(),
        })
    }

    /// The tiles directory at `root` for reading only (nothing is created).
    pub fn open_read_only(root: &Path) -> PosixTiles {
        PosixTiles {
            root: root.to_path_buf(),
        }
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for object `path`; refuses anything but a plain relative path.
    fn file(&self, path: &str) -> Result<PathBuf, StorageError> {
        let plain = !path.is_empty()
            && path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !plain {
            return Err(StorageError::Corrupt(format!(
                "{path:?} is not a relative object path"
            )));
        }
        Ok(self.root.join(path))
    }

    /// Writes and fsyncs every object, creating directories durably, then fsyncs each
    /// directory once.
    fn write_all<'a, P: AsRef<str>>(
        &self,
        objects: impl Iterator<Item = (P, &'a [u8])>,
    ) -> Result<(), StorageError> {
        let mut dirs = BTreeSet::new();
        for (path, data) in objects {
            let path = self.file(path.as_ref())?;
            let dir = path
                .parent()
                .ok_or_else(|| StorageError::Corrupt(format!("tile path {}", path.display())))?
                .to_path_buf();
            if !dirs.contains(&dir) {
                create_dir_all_durable(&dir)
                    .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
                dirs.insert(dir);
            }
            write_and_sync(&path, data)
                .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))?;
        }
        for dir in &dirs {
            sync_dir(dir).map_err(|e| StorageError::io(format!("syncing {}", dir.display()), e))?;
        }
        Ok(())
    }
}

impl TileStore for PosixTiles {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
        self.write_all(std::iter::once((path, data)))
    }

    fn put_batch(&self, writes: &[TileWrite]) -> Result<(), StorageError> {
        self.write_all(writes.iter().map(|w| (w.tile.path(), w.data.as_slice())))
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let file = self.file(path)?;
        match fs::read(&file) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(format!("reading {}", file.display()), e)),
        }
    }

    fn get_bundle_entry(
        &self,
        path: &str,
        position: usize,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let file = self.file(path)?;
        let opened = match fs::File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(format!("reading {}", file.display()), e)),
        };
        // A small buffer: the entries before `position` stream through it.
        let mut reader = io::BufReader::with_capacity(BUNDLE_READ_BUFFER, opened);
        bundle_entry(path, &mut reader, position).map(Some)
    }

    fn delete(&self, path: &str) -> Result<(), StorageError> {
        let file = self.file(path)?;
        let removed = match fs::symlink_metadata(&file) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&file),
            Ok(_) => fs::remove_file(&file),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(format!("removing {}", file.display()), e)),
        }
    }
}

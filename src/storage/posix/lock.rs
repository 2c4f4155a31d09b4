//! The checkpoint lock on a POSIX filesystem: `checkpoint` in the log directory,
//! replaced by writing `checkpoint.pending` (fsynced) and renaming it onto `checkpoint`,
//! then fsyncing the directory. The rename is the commit point.
//!
//! A crash between the pending write and the rename leaves a signed checkpoint whose
//! tiles are all durable, or a torn one: the lock cannot tell which, so it reports it as
//! [`CheckpointLock::interrupted`] and the engine decides. One process owns the
//! directory (as the data directory always has); the compare of a swap is against the
//! checkpoint this lock last read or installed, so it costs no I/O.
//!
//! May import: `storage::durable` and the checkpoint lock port.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::storage::durable::{
    create_dir_all_durable, replace_atomically, sync_dir, write_and_sync,
};
use crate::storage::{CheckpointLock, LockedCheckpoint, StorageError};

const CHECKPOINT: &str = "checkpoint";
const PENDING: &str = "checkpoint.pending";
const TEMPORARY: &str = "checkpoint.tmp";

/// The `checkpoint` file of a tlog-tiles directory (see the module documentation).
#[derive(Debug)]
pub struct PosixLock {
    root: PathBuf,
    /// The checkpoint this lock last read or installed: what a swap compares with.
    current: Mutex<Option<Vec<u8>>>,
}

impl PosixLock {
    /// Opens (creating if needed) the log directory at `root` and reads its checkpoint.
    pub fn open(root: &Path) -> Result<PosixLock, StorageError> {
        create_dir_all_durable(root)
            .map_err(|e| StorageError::io(format!("creating {}", root.display()), e))?;
        // A temporary file is only ever a half-finished rename; it holds nothing that
        // was acknowledged.
        let tmp = root.join(TEMPORARY);
        if tmp.exists() {
            fs::remove_file(&tmp)
                .map_err(|e| StorageError::io(format!("removing {}", tmp.display()), e))?;
        }
        let current = read_optional(&root.join(CHECKPOINT))?;
        Ok(PosixLock {
            root: root.to_path_buf(),
            current: Mutex::new(current),
        })
    }

    /// The checkpoint of the log directory at `root`, for reading only: nothing is
    /// created or removed (a writer may be running).
    pub fn open_read_only(root: &Path) -> Result<PosixLock, StorageError> {
        let current = read_optional(&root.join(CHECKPOINT))?;
        Ok(PosixLock {
            root: root.to_path_buf(),
            current: Mutex::new(current),
        })
    }

    fn current(&self) -> MutexGuard<'_, Option<Vec<u8>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sync_root(&self) -> Result<(), StorageError> {
        sync_dir(&self.root)
            .map_err(|e| StorageError::io(format!("syncing {}", self.root.display()), e))
    }

    fn remove_pending(&self) -> Result<(), StorageError> {
        let pending = self.root.join(PENDING);
        match fs::remove_file(&pending) {
            Ok(()) => self.sync_root(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(
                format!("removing {}", pending.display()),
                e,
            )),
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(format!("reading {}", path.display()), e)),
    }
}

/// Sets `slot` to `bytes`, reusing its buffer.
fn remember(slot: &mut Option<Vec<u8>>, bytes: &[u8]) {
    match slot {
        Some(buffer) => {
            buffer.clear();
            buffer.extend_from_slice(bytes);
        }
        None => *slot = Some(bytes.to_vec()),
    }
}

impl CheckpointLock for PosixLock {
    fn read(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let stored = read_optional(&self.root.join(CHECKPOINT))?;
        *self.current() = stored.clone();
        Ok(stored)
    }

    fn swap(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
    ) -> Result<(), StorageError> {
        let mut current = self.current();
        if current.as_deref() != old.map(|o| o.signed) {
            return Err(StorageError::Conflict(format!(
                "{} is not the checkpoint this swap replaces",
                self.root.join(CHECKPOINT).display()
            )));
        }
        // The pending copy is durable before the rename, so a crash in between leaves
        // a signed checkpoint whose tiles are all on disk: recovery can finish the job.
        let pending = self.root.join(PENDING);
        write_and_sync(&pending, new.signed)
            .map_err(|e| StorageError::io(format!("writing {}", pending.display()), e))?;
        let installed = self.root.join(CHECKPOINT);
        fs::rename(&pending, &installed)
            .map_err(|e| StorageError::io(format!("installing {}", installed.display()), e))?;
        remember(&mut current, new.signed);
        self.sync_root()
    }

    fn interrupted(&self) -> Result<Option<Vec<u8>>, StorageError> {
        read_optional(&self.root.join(PENDING))
    }

    fn settle(&self, finish: bool) -> Result<(), StorageError> {
        if finish {
            let pending = self.root.join(PENDING);
            let data = fs::read(&pending)
                .map_err(|e| StorageError::io(format!("reading {}", pending.display()), e))?;
            replace_atomically(&self.root.join(CHECKPOINT), &data)
                .map_err(|e| StorageError::io("installing the pending checkpoint", e))?;
            *self.current() = Some(data);
        }
        self.remove_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(size: u64, signed: &[u8]) -> LockedCheckpoint<'_> {
        LockedCheckpoint { size, signed }
    }

    #[test]
    fn a_pending_checkpoint_left_by_a_crash_is_reported_and_settled() {
        let dir = tempfile::tempdir().unwrap();
        let lock = PosixLock::open(dir.path()).unwrap();
        lock.swap(None, at(1, b"one")).unwrap();
        // A crash after the pending write, before the rename.
        fs::write(dir.path().join(PENDING), b"two").unwrap();
        fs::write(dir.path().join(TEMPORARY), b"half a promotion").unwrap();
        let lock = PosixLock::open(dir.path()).unwrap();
        assert!(!dir.path().join(TEMPORARY).exists());
        assert_eq!(lock.interrupted().unwrap().as_deref(), Some(&b"two"[..]));
        lock.settle(true).unwrap();
        assert_eq!(lock.interrupted().unwrap(), None);
        assert_eq!(lock.read().unwrap().as_deref(), Some(&b"two"[..]));
        // The compare now expects the promoted checkpoint.
        assert!(lock.swap(Some(at(1, b"one")), at(3, b"three")).is_err());
        lock.swap(Some(at(2, b"two")), at(3, b"three")).unwrap();

        fs::write(dir.path().join(PENDING), b"torn").unwrap();
        let lock = PosixLock::open(dir.path()).unwrap();
        lock.settle(false).unwrap();
        assert_eq!(lock.interrupted().unwrap(), None);
        assert_eq!(lock.read().unwrap().as_deref(), Some(&b"three"[..]));
    }
}

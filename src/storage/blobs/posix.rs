//! [`PosixBlobs`]: the blobs in the local data directory (the embedded default):
//! `DATA/blobs/sha256/<hex>`, and who uploaded each in `DATA/blobs/owner/<hex>` (the
//! uploader's key id, one line).
//!
//! An upload's verified temporary file is renamed to its digest's name and the directory
//! fsynced; the owner file is written first, so a blob is attributed unless a crash hits
//! between the two. A blob's modification time is its expiry clock.
//!
//! Also the read cache of [`super::object::ObjectBlobs`], which installs verified copies
//! of bucket objects here.
//!
//! May import: `storage::durable` and the storage error.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use super::{io_error, list, BlobBackend, HeldBlob, UNKNOWN_UPLOADER};
use crate::catalog::check_sha256;
use crate::storage::durable::{create_dir_all_durable, sync_dir};
use crate::storage::StorageError;

/// The blobs in a local directory (see the module documentation).
#[derive(Debug)]
pub struct PosixBlobs {
    root: PathBuf,
    /// Written while installing or expiring a blob, read while touching one: expiry never
    /// races an install or a touch, and the touches of concurrent submissions (four per
    /// publication) do not wait for each other.
    install: RwLock<()>,
}

impl PosixBlobs {
    /// Opens (creating) the blob directories under `root`.
    pub fn open(root: &Path) -> Result<PosixBlobs, StorageError> {
        let blobs = PosixBlobs {
            root: root.to_path_buf(),
            install: RwLock::new(()),
        };
        for dir in [blobs.blob_dir(), blobs.owner_dir()] {
            create_dir_all_durable(&dir)
                .map_err(io_error(format!("creating {}", dir.display())))?;
        }
        Ok(blobs)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("sha256")
    }

    fn owner_dir(&self) -> PathBuf {
        self.root.join("owner")
    }

    /// Where blob `hex` is kept.
    pub fn path(&self, hex: &str) -> PathBuf {
        self.blob_dir().join(hex)
    }

    fn read_owner(&self, hex: &str) -> Option<String> {
        fs::read_to_string(self.owner_dir().join(hex))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.install
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shared_lock(&self) -> RwLockReadGuard<'_, ()> {
        self.install
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl BlobBackend for PosixBlobs {
    fn held(&self) -> Result<Vec<HeldBlob>, StorageError> {
        let mut out = Vec::new();
        for path in list(&self.blob_dir())? {
            let Some(hex) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if check_sha256(hex).is_err() {
                continue;
            }
            let meta =
                fs::metadata(&path).map_err(io_error(format!("reading {}", path.display())))?;
            out.push(HeldBlob {
                hex: hex.to_string(),
                size: meta.len(),
                owner: self
                    .read_owner(hex)
                    .unwrap_or_else(|| UNKNOWN_UPLOADER.to_string()),
            });
        }
        Ok(out)
    }

    fn contains(&self, hex: &str) -> Result<bool, StorageError> {
        Ok(self.path(hex).is_file())
    }

    fn owner(&self, hex: &str) -> Result<Option<String>, StorageError> {
        Ok(self.read_owner(hex))
    }

    fn open(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError> {
        let path = self.path(hex);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(format!("opening {}", path.display()), e)),
        };
        let len = file
            .metadata()
            .map_err(io_error(format!("reading {}", path.display())))?
            .len();
        Ok(Some((file, len)))
    }

    fn install(
        &self,
        hex: &str,
        tmp: &Path,
        _size: u64,
        uploader: &str,
    ) -> Result<bool, StorageError> {
        let target = self.path(hex);
        let dir = self.blob_dir();
        let _guard = self.lock();
        if target.is_file() {
            // A concurrent upload of the same blob may have renamed it in but not yet
            // synced the directory: sync it before acknowledging, so "already stored"
            // is as durable as "stored". (The file holds the same bytes: it was
            // verified against the same digest before it was renamed in.)
            sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
            return Ok(false);
        }
        let owner = self.owner_dir().join(hex);
        fs::write(&owner, format!("{uploader}\n"))
            .map_err(io_error(format!("writing {}", owner.display())))?;
        fs::rename(tmp, &target).map_err(io_error(format!("installing {}", target.display())))?;
        sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
        Ok(true)
    }

    /// One `open` per named blob: a missing file is the answer "not held", so analysis
    /// does not open it a second time.
    fn touch(&self, hex: &str) -> bool {
        let _guard = self.shared_lock();
        match File::options().append(true).open(self.path(hex)) {
            Ok(file) => {
                let _ = file.set_modified(SystemTime::now());
                true
            }
            Err(e) => e.kind() != io::ErrorKind::NotFound,
        }
    }

    fn expires(&self) -> bool {
        true
    }

    fn expire(
        &self,
        hex: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Option<u64>, StorageError> {
        // Checked and removed under the lock, so a concurrent touch (a submission naming
        // the blob) or re-upload either lands first and keeps it, or finds it gone.
        let _guard = self.lock();
        let path = self.path(hex);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
        };
        let modified = meta
            .modified()
            .map_err(io_error(format!("reading {}", path.display())))?;
        if now.duration_since(modified).unwrap_or_default() < ttl {
            return Ok(None);
        }
        fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
        let _ = fs::remove_file(self.owner_dir().join(hex));
        Ok(Some(meta.len()))
    }
}

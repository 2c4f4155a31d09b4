//! Expiry of unreferenced blobs: a blob that no logged publication names and that was
//! neither stored nor named by a submission for the time to live is removed, and its
//! bytes returned to its uploader's quota. Referenced blobs never expire; which blobs are
//! referenced is the caller's answer (the log's publications), passed in.
//!
//! May import: the store (`super`) and the storage error.

use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use super::{io_error, BlobStore};
use crate::storage::StorageError;

/// The default time to live of an unreferenced blob: 7 days.
pub const DEFAULT_BLOB_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Blobs removed.
    pub blobs: u64,
    /// Bytes removed.
    pub bytes: u64,
}

impl BlobStore {
    /// Removes every blob that `referenced` does not claim and whose modification time is
    /// `ttl` or more before `now`.
    pub fn sweep(
        &self,
        referenced: &dyn Fn(&str) -> bool,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Swept, StorageError> {
        let mut swept = Swept::default();
        for (hex, _) in self.held()? {
            if referenced(&hex) {
                continue;
            }
            // Checked and removed under the install lock, so a concurrent touch (a
            // submission naming the blob) or re-upload either lands first and keeps it,
            // or finds it gone.
            let _guard = self.lock_install();
            let path = self.path(&hex);
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
            };
            let modified = meta
                .modified()
                .map_err(io_error(format!("reading {}", path.display())))?;
            let age = now.duration_since(modified).unwrap_or_default();
            if age < ttl {
                continue;
            }
            let owner = self.owner(&hex);
            fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
            let _ = fs::remove_file(self.owner_dir().join(&hex));
            self.usage.release(&owner, meta.len());
            swept.blobs += 1;
            swept.bytes += meta.len();
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn unreferenced_blobs_expire_referenced_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), 64).unwrap();
        let kept = hex::encode(Sha256::digest(b"kept"));
        let gone = hex::encode(Sha256::digest(b"gone"));
        store.put(&kept, b"kept", "k").unwrap();
        store.put(&gone, b"gone", "k").unwrap();
        let referenced = |h: &str| h == kept;
        let now = SystemTime::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store.sweep(&referenced, ttl, now).unwrap(),
            Swept::default()
        );
        let later = now + Duration::from_secs(61);
        let swept = store.sweep(&referenced, ttl, later).unwrap();
        assert_eq!(swept, Swept { blobs: 1, bytes: 4 });
        assert!(store.contains(&kept) && !store.contains(&gone));
        assert_eq!(store.usage().held_by("k"), 4);
    }
}

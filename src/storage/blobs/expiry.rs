//! Expiry of unreferenced blobs: a blob that no logged publication names and that was
//! neither stored nor named by a submission for the time to live is removed, and its
//! bytes returned to its uploader's quota. Referenced blobs never expire; which blobs are
//! referenced is the caller's answer (the log's publications), passed in.
//!
//! Only where the backend allows it ([`super::BlobBackend::expires`]): on the POSIX
//! store, not on a bucket (ADR 0012).
//!
//! May import: the store (`super`) and the storage error.

use std::time::{Duration, SystemTime};

use super::BlobStore;
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
    /// Removes every blob that `referenced` does not claim and whose clock is `ttl` or
    /// more before `now`. Nothing on a backend that does not expire blobs (a bucket:
    /// ADR 0012 says why and what the operator uses instead).
    pub fn sweep(
        &self,
        referenced: &dyn Fn(&str) -> bool,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Swept, StorageError> {
        let mut swept = Swept::default();
        if !self.backend.expires() {
            return Ok(swept);
        }
        for held in self.backend.held()? {
            if referenced(&held.hex) {
                continue;
            }
            if let Some(bytes) = self.backend.expire(&held.hex, ttl, now)? {
                self.usage.release(&held.owner, bytes);
                swept.blobs += 1;
                swept.bytes += bytes;
            }
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

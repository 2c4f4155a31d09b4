//! What the blob store may still take: the bytes held per uploader and in total against
//! their quotas, and the free space of the volume against the reserve a commit needs.
//! An upload reserves its declared size before a byte is written ([`Usage::reserve`]);
//! the reservation is kept when the blob is installed and released otherwise.
//!
//! May import: nothing of the crate (the store charges and releases; `rustix` for statvfs).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The default quota per uploading key: 1 GiB.
pub const DEFAULT_KEY_QUOTA_BYTES: u64 = 1 << 30;
/// The default quota of the whole store: 16 GiB.
pub const DEFAULT_TOTAL_QUOTA_BYTES: u64 = 16 << 30;
/// The default free space kept for the log: 256 MiB.
pub const DEFAULT_RESERVE_BYTES: u64 = 256 << 20;
/// The default number of blob downloads served at once.
pub const DEFAULT_MAX_DOWNLOADS: usize = 32;

/// The limits an upload is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest single blob.
    pub max_blob_bytes: u64,
    /// Most bytes held for one uploading key.
    pub key_quota_bytes: u64,
    /// Most bytes held in total.
    pub total_quota_bytes: u64,
    /// Free bytes the volume must keep after the upload.
    pub reserve_bytes: u64,
    /// Most blob downloads served at once.
    pub max_downloads: usize,
}

impl Limits {
    /// The defaults, with this largest blob.
    pub fn with_max_blob(max_blob_bytes: u64) -> Limits {
        Limits {
            max_blob_bytes,
            key_quota_bytes: DEFAULT_KEY_QUOTA_BYTES,
            total_quota_bytes: DEFAULT_TOTAL_QUOTA_BYTES,
            reserve_bytes: DEFAULT_RESERVE_BYTES,
            max_downloads: DEFAULT_MAX_DOWNLOADS,
        }
    }
}

/// Why an upload cannot be taken now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The uploader's quota would be exceeded (429).
    #[error("key {key} holds {held} bytes of blobs; {size} more would pass its quota of {quota}")]
    Key {
        /// The uploader.
        key: String,
        /// Bytes held for it.
        held: u64,
        /// The upload's size.
        size: u64,
        /// Its quota.
        quota: u64,
    },
    /// The store's total quota would be exceeded (507).
    #[error("the store holds {held} bytes of blobs; {size} more would pass its quota of {quota}")]
    Total {
        /// Bytes held.
        held: u64,
        /// The upload's size.
        size: u64,
        /// The quota.
        quota: u64,
    },
    /// The volume would keep less free space than the reserve (507).
    #[error("the volume has {free} bytes free; storing {size} would leave less than the {reserve}-byte reserve the log keeps")]
    Reserve {
        /// Free bytes (available to this user).
        free: u64,
        /// The upload's size.
        size: u64,
        /// The reserve.
        reserve: u64,
    },
}

#[derive(Debug, Default)]
struct Held {
    per_key: HashMap<String, u64>,
    total: u64,
}

/// Bytes held (and reserved by uploads in flight), per uploader and in total.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    held: Arc<Mutex<Held>>,
}

impl Usage {
    /// Counts a blob already held (at open).
    pub fn charge(&self, key: &str, size: u64) {
        let mut held = self.lock();
        *held.per_key.entry(key.to_string()).or_default() += size;
        held.total += size;
    }

    /// Returns a blob's bytes (removed, or an upload that did not install).
    pub fn release(&self, key: &str, size: u64) {
        let mut held = self.lock();
        if let Some(n) = held.per_key.get_mut(key) {
            *n = n.saturating_sub(size);
            if *n == 0 {
                held.per_key.remove(key);
            }
        }
        held.total = held.total.saturating_sub(size);
    }

    /// Bytes held for `key`.
    pub fn held_by(&self, key: &str) -> u64 {
        self.lock().per_key.get(key).copied().unwrap_or(0)
    }

    /// Bytes held in total.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// Reserves `size` bytes for `key` if the quotas allow; the caller releases them if the
    /// blob is not installed.
    pub fn reserve(&self, key: &str, size: u64, limits: &Limits) -> Result<(), QuotaError> {
        let mut held = self.lock();
        let mine = held.per_key.get(key).copied().unwrap_or(0);
        if mine.saturating_add(size) > limits.key_quota_bytes {
            return Err(QuotaError::Key {
                key: key.to_string(),
                held: mine,
                size,
                quota: limits.key_quota_bytes,
            });
        }
        if held.total.saturating_add(size) > limits.total_quota_bytes {
            return Err(QuotaError::Total {
                held: held.total,
                size,
                quota: limits.total_quota_bytes,
            });
        }
        *held.per_key.entry(key.to_string()).or_default() += size;
        held.total += size;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        match self.held.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Refuses `size` more bytes if the volume holding `dir` would keep less than `reserve`
/// bytes free. A volume whose free space cannot be read is treated as full.
pub fn check_reserve(dir: &Path, size: u64, reserve: u64) -> Result<(), QuotaError> {
    let free = free_bytes(dir).unwrap_or(0);
    if free < size.saturating_add(reserve) {
        return Err(QuotaError::Reserve {
            free,
            size,
            reserve,
        });
    }
    Ok(())
}

/// Bytes available to unprivileged users on the volume holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_per_key_and_in_total() {
        let limits = Limits {
            max_blob_bytes: 100,
            key_quota_bytes: 10,
            total_quota_bytes: 15,
            reserve_bytes: 0,
            max_downloads: 1,
        };
        let usage = Usage::default();
        let cases: &[(&str, u64, bool)] = &[
            ("a", 6, true),
            ("a", 5, false), // 11 > 10 for a
            ("a", 4, true),  // a = 10
            ("b", 6, false), // total 16 > 15
            ("b", 5, true),  // total 15
        ];
        for (key, size, ok) in cases {
            assert_eq!(
                usage.reserve(key, *size, &limits).is_ok(),
                *ok,
                "{key} {size}"
            );
        }
        usage.release("a", 10);
        assert_eq!((usage.held_by("a"), usage.total()), (0, 5));
    }

    #[test]
    fn reserve_against_statvfs() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(check_reserve(dir.path(), 1, 0).is_ok());
        assert!(matches!(
            check_reserve(dir.path(), 1, free.saturating_add(1 << 30)),
            Err(QuotaError::Reserve { .. })
        ));
    }
}

//! The content-addressed evidence store: `DATA/blobs/sha256/<hex>`.
//!
//! A blob is written to `DATA/blobs/tmp/` while its SHA-256 is computed, then fsynced and
//! renamed to its digest's name, and the directory fsynced: a blob file either is complete
//! and has the digest it is named after, or does not exist. Writing the same blob twice
//! is harmless (the second write finds the first and discards itself). Temporary files
//! left by a crash are removed on open.
//!
//! May import: `storage::durable`, the storage error, and the catalog's blob source
//! and digest check.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::durable::{create_dir_all_durable, sync_dir};
use super::StorageError;
use crate::catalog::{check_sha256, BlobSource};

/// The default largest blob: 64 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 << 20;

/// A blob could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob exceeds the store's limit.
    #[error("blobs are limited to {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The bytes do not hash to the digest they were sent under.
    #[error("the body's SHA-256 is {actual}, not {expected}")]
    DigestMismatch {
        /// The digest named by the client.
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// The digest is not 64 lowercase hex characters.
    #[error("bad digest: {0}")]
    BadDigest(String),
    /// The file system failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The store.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    max_bytes: u64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(what: String) -> impl FnOnce(io::Error) -> StorageError {
    move |e| StorageError::io(what, e)
}

impl BlobStore {
    /// Opens (creating) the store at `root`, removing temporaries a crash left behind.
    pub fn open(root: &Path, max_bytes: u64) -> Result<BlobStore, StorageError> {
        let store = BlobStore {
            root: root.to_path_buf(),
            max_bytes,
        };
        for dir in [store.root.join("sha256"), store.tmp_dir()] {
            create_dir_all_durable(&dir)
                .map_err(io_error(format!("creating {}", dir.display())))?;
        }
        let tmp = store.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(io_error(format!("listing {}", tmp.display())))? {
            let path = entry
                .map_err(io_error(format!("listing {}", tmp.display())))?
                .path();
            fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
        }
        Ok(store)
    }

    /// The largest blob accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn path(&self, hex: &str) -> PathBuf {
        self.root.join("sha256").join(hex)
    }

    /// Whether the blob is held. `hex` must be 64 lowercase hex characters.
    pub fn contains(&self, hex: &str) -> bool {
        check_sha256(hex).is_ok() && self.path(hex).is_file()
    }

    /// The blob's bytes, if held.
    pub fn get(&self, hex: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if check_sha256(hex).is_err() {
            return Ok(None);
        }
        let path = self.path(hex);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Starts writing a blob expected to hash to `expected` (64 hex).
    pub fn writer(&self, expected: &str) -> Result<BlobWriter<'_>, BlobError> {
        check_sha256(expected).map_err(|e| BlobError::BadDigest(e.to_string()))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp_dir()
            .join(format!("{}-{n}-{}", std::process::id(), &expected[..16]));
        let file = File::create(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
        Ok(BlobWriter {
            store: self,
            expected: expected.to_string(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    /// Stores `bytes` under `expected`; returns whether the blob is new.
    pub fn put(&self, expected: &str, bytes: &[u8]) -> Result<bool, BlobError> {
        let mut w = self.writer(expected)?;
        w.write(bytes)?;
        w.finish()
    }
}

impl BlobSource for BlobStore {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        self.get(sha256_hex).ok().flatten()
    }
}

/// A blob being written; dropped unfinished, its temporary file is removed.
pub struct BlobWriter<'a> {
    store: &'a BlobStore,
    expected: String,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    len: u64,
}

impl BlobWriter<'_> {
    /// Appends a chunk; refuses to grow past the store's limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.len += chunk.len() as u64;
        if self.len > self.store.max_bytes {
            return Err(BlobError::TooLarge {
                max: self.store.max_bytes,
            });
        }
        self.hasher.update(chunk);
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| StorageError::Corrupt("blob writer already finished".into()))?;
        file.write_all(chunk)
            .map_err(io_error(format!("writing {}", self.tmp.display())))?;
        Ok(())
    }

    /// Checks the digest, makes the blob durable under its name, and returns whether it
    /// is new (false: an identical blob was already held).
    pub fn finish(mut self) -> Result<bool, BlobError> {
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual != self.expected {
            return Err(BlobError::DigestMismatch {
                expected: format!("sha256:{}", self.expected),
                actual: format!("sha256:{actual}"),
            });
        }
        let target = self.store.path(&self.expected);
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        if target.is_file() {
            // A concurrent upload of the same blob may have renamed it in but not yet
            // synced the directory: sync it before acknowledging, so "already stored"
            // is as durable as "stored".
            sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
            return Ok(false);
        }
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(io_error(format!("syncing {}", self.tmp.display())))?;
        }
        fs::rename(&self.tmp, &target)
            .map_err(io_error(format!("installing {}", target.display())))?;
        sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
        Ok(true)
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // After a successful rename the temporary name no longer exists; otherwise it is
        // an abandoned or refused upload.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), 16).unwrap();
        let hex = hex::encode(Sha256::digest(b"hello"));
        assert!(store.put(&hex, b"hello").unwrap());
        assert!(!store.put(&hex, b"hello").unwrap());
        assert_eq!(store.get(&hex).unwrap().as_deref(), Some(&b"hello"[..]));
        assert!(matches!(
            store.put(&hex, b"other"),
            Err(BlobError::DigestMismatch { .. })
        ));
        let big = vec![0u8; 17];
        let big_hex = hex::encode(Sha256::digest(&big));
        assert!(matches!(
            store.put(&big_hex, &big),
            Err(BlobError::TooLarge { .. })
        ));
        assert!(matches!(
            store.put("ABC", b""),
            Err(BlobError::BadDigest(_))
        ));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}

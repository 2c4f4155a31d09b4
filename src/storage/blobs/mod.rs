//! The content-addressed evidence store: `DATA/blobs/sha256/<hex>`, and who uploaded
//! each blob in `DATA/blobs/owner/<hex>` (the uploader's key id, one line).
//!
//! A blob is written to `DATA/blobs/tmp/` while its SHA-256 is computed, then fsynced and
//! renamed to its digest's name, and the directory fsynced: a blob file either is complete
//! and has the digest it is named after, or does not exist. Writing the same blob twice
//! is harmless (the second write finds the first and discards itself). Temporary files
//! left by a crash are removed on open.
//!
//! Every upload is attributed to a key and charged against that key's quota and the
//! store's ([`quota`]) before a byte is written, and refused while the volume would keep
//! less than the reserve. A blob's modification time is when it was stored or last named
//! by a submission ([`BlobStore::touch`]); [`expiry`] removes unreferenced blobs by it.
//!
//! May import: `storage::durable`, the storage error, and the catalog's blob source
//! and digest check.

pub mod expiry;
pub mod quota;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::durable::{create_dir_all_durable, sync_dir};
use super::StorageError;
use crate::catalog::{check_sha256, BlobSource};
use quota::{check_reserve, Limits, QuotaError, Usage};

/// The default largest blob: 64 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 << 20;

/// The uploader recorded for a blob whose owner file is missing (a crash between the
/// rename and the owner write, or a store from before uploads were attributed).
pub const UNKNOWN_UPLOADER: &str = "-";

/// A blob could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob exceeds the store's limit.
    #[error("blobs are limited to {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The body's length differs from the size the upload declared.
    #[error("the upload declared {declared} bytes but the body has {actual}")]
    SizeMismatch {
        /// The declared size.
        declared: u64,
        /// Bytes received (so far).
        actual: u64,
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
    /// A quota or the disk reserve refuses the upload.
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// The file system failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One upload: who sends it and how many bytes it declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The uploader (a key id).
    pub uploader: String,
    /// The exact size of the blob.
    pub size: u64,
}

/// The store.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    limits: Limits,
    usage: Usage,
    /// Held while installing or removing a blob, so expiry never races an install.
    install: Mutex<()>,
    /// One permit per download being served.
    downloads: Arc<tokio::sync::Semaphore>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(what: String) -> impl FnOnce(io::Error) -> StorageError {
    move |e| StorageError::io(what, e)
}

impl BlobStore {
    /// Opens (creating) the store at `root` with the default quotas and reserve.
    pub fn open(root: &Path, max_bytes: u64) -> Result<BlobStore, StorageError> {
        BlobStore::open_with(root, Limits::with_max_blob(max_bytes))
    }

    /// Opens (creating) the store at `root`, removing temporaries a crash left behind and
    /// counting what each uploader holds.
    pub fn open_with(root: &Path, limits: Limits) -> Result<BlobStore, StorageError> {
        let store = BlobStore {
            root: root.to_path_buf(),
            limits,
            usage: Usage::default(),
            install: Mutex::new(()),
            downloads: Arc::new(tokio::sync::Semaphore::new(limits.max_downloads.max(1))),
        };
        for dir in [store.blob_dir(), store.tmp_dir(), store.owner_dir()] {
            create_dir_all_durable(&dir)
                .map_err(io_error(format!("creating {}", dir.display())))?;
        }
        let tmp = store.tmp_dir();
        for path in list(&tmp)? {
            fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
        }
        for (hex, size) in store.held()? {
            store.usage.charge(&store.owner(&hex), size);
        }
        Ok(store)
    }

    /// The largest blob accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.limits.max_blob_bytes
    }

    /// The limits uploads are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The download slots: a download holds one permit until its body is dropped.
    pub fn download_slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.downloads
    }

    /// Bytes held per uploader and in total.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("sha256")
    }

    fn owner_dir(&self) -> PathBuf {
        self.root.join("owner")
    }

    fn path(&self, hex: &str) -> PathBuf {
        self.blob_dir().join(hex)
    }

    /// Whether the blob is held. `hex` must be 64 lowercase hex characters.
    pub fn contains(&self, hex: &str) -> bool {
        check_sha256(hex).is_ok() && self.path(hex).is_file()
    }

    /// The key id that uploaded blob `hex` ([`UNKNOWN_UPLOADER`] if not recorded).
    pub fn owner(&self, hex: &str) -> String {
        fs::read_to_string(self.owner_dir().join(hex))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN_UPLOADER.to_string())
    }

    /// Every blob held: (digest hex, size).
    pub fn held(&self) -> Result<Vec<(String, u64)>, StorageError> {
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
            out.push((hex.to_string(), meta.len()));
        }
        Ok(out)
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

    /// The blob's file opened for reading, and its length, if held (for streaming).
    pub fn open_blob(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError> {
        if check_sha256(hex).is_err() {
            return Ok(None);
        }
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

    /// Restarts blob `hex`'s expiry clock (a submission names it). Missing blobs are
    /// ignored.
    pub fn touch(&self, hex: &str) {
        if check_sha256(hex).is_err() {
            return;
        }
        let _guard = self.lock_install();
        if let Ok(file) = File::options().append(true).open(self.path(hex)) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
    }

    /// Starts writing a blob expected to hash to `expected` (64 hex): checks the size
    /// limit, the disk reserve and the quotas, and reserves the declared size.
    pub fn writer(&self, expected: &str, upload: Upload) -> Result<BlobWriter<'_>, BlobError> {
        check_sha256(expected).map_err(|e| BlobError::BadDigest(e.to_string()))?;
        if upload.size > self.limits.max_blob_bytes {
            return Err(BlobError::TooLarge {
                max: self.limits.max_blob_bytes,
            });
        }
        check_reserve(&self.root, upload.size, self.limits.reserve_bytes)?;
        // A blob already held costs nothing more (its bytes are still checked).
        let charged = !self.path(expected).is_file();
        if charged {
            self.usage
                .reserve(&upload.uploader, upload.size, &self.limits)?;
        }
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp_dir()
            .join(format!("{}-{n}-{}", std::process::id(), &expected[..16]));
        let file = match File::create(&tmp) {
            Ok(file) => file,
            Err(e) => {
                if charged {
                    self.usage.release(&upload.uploader, upload.size);
                }
                return Err(StorageError::io(format!("creating {}", tmp.display()), e).into());
            }
        };
        Ok(BlobWriter {
            store: self,
            expected: expected.to_string(),
            upload,
            charged,
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    /// Stores `bytes` under `expected` for `uploader`; returns whether the blob is new.
    pub fn put(&self, expected: &str, bytes: &[u8], uploader: &str) -> Result<bool, BlobError> {
        let upload = Upload {
            uploader: uploader.to_string(),
            size: bytes.len() as u64,
        };
        let mut w = self.writer(expected, upload)?;
        w.write(bytes)?;
        w.finish()
    }

    fn lock_install(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.install.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The paths in `dir`.
fn list(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let what = || format!("listing {}", dir.display());
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(what()))? {
        out.push(entry.map_err(io_error(what()))?.path());
    }
    Ok(out)
}

impl BlobSource for BlobStore {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        self.get(sha256_hex).ok().flatten()
    }

    fn touch(&self, sha256_hex: &str) {
        BlobStore::touch(self, sha256_hex)
    }
}

/// A blob being written; dropped unfinished, its temporary file is removed and its
/// reservation released.
pub struct BlobWriter<'a> {
    store: &'a BlobStore,
    expected: String,
    upload: Upload,
    charged: bool,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    len: u64,
}

impl BlobWriter<'_> {
    /// Appends a chunk; refuses to grow past the declared size.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.len += chunk.len() as u64;
        if self.len > self.upload.size {
            return Err(BlobError::SizeMismatch {
                declared: self.upload.size,
                actual: self.len,
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

    /// Checks the size and digest, makes the blob durable under its name, and returns
    /// whether it is new (false: an identical blob was already held).
    pub fn finish(mut self) -> Result<bool, BlobError> {
        if self.len != self.upload.size {
            return Err(BlobError::SizeMismatch {
                declared: self.upload.size,
                actual: self.len,
            });
        }
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual != self.expected {
            return Err(BlobError::DigestMismatch {
                expected: format!("sha256:{}", self.expected),
                actual: format!("sha256:{actual}"),
            });
        }
        let target = self.store.path(&self.expected);
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(io_error(format!("syncing {}", self.tmp.display())))?;
        }
        let _guard = self.store.lock_install();
        if target.is_file() {
            // A concurrent upload of the same blob may have renamed it in but not yet
            // synced the directory: sync it before acknowledging, so "already stored"
            // is as durable as "stored".
            sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
            return Ok(false);
        }
        let owner = self.store.owner_dir().join(&self.expected);
        fs::write(&owner, format!("{}\n", self.upload.uploader))
            .map_err(io_error(format!("writing {}", owner.display())))?;
        fs::rename(&self.tmp, &target)
            .map_err(io_error(format!("installing {}", target.display())))?;
        sync_dir(&dir).map_err(io_error(format!("syncing {}", dir.display())))?;
        self.charged = false;
        Ok(true)
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // After a successful rename the temporary name no longer exists; otherwise it is
        // an abandoned or refused upload, whose reservation is returned.
        let _ = fs::remove_file(&self.tmp);
        if self.charged {
            self.store
                .usage
                .release(&self.upload.uploader, self.upload.size);
        }
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
        assert!(store.put(&hex, b"hello", "k").unwrap());
        assert!(!store.put(&hex, b"hello", "k").unwrap());
        assert_eq!(
            (store.usage().held_by("k"), store.owner(&hex)),
            (5, "k".into())
        );
        assert_eq!(store.get(&hex).unwrap().as_deref(), Some(&b"hello"[..]));
        assert!(matches!(
            store.put(&hex, b"other", "k"),
            Err(BlobError::DigestMismatch { .. })
        ));
        let big = vec![0u8; 17];
        let big_hex = hex::encode(Sha256::digest(&big));
        assert!(matches!(
            store.put(&big_hex, &big, "k"),
            Err(BlobError::TooLarge { .. })
        ));
        assert!(matches!(
            store.put("ABC", b"", "k"),
            Err(BlobError::BadDigest(_))
        ));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            store.usage().total(),
            5,
            "refused uploads release what they reserved"
        );
        let reopened = BlobStore::open(dir.path(), 16).unwrap();
        assert_eq!(reopened.usage().held_by("k"), 5);
    }
}

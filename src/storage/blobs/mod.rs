//! The content-addressed evidence store: [`BlobStore`], what every backend shares (the
//! size limit, the quotas and the reserve, the download slots, and the upload that hashes
//! while it streams), over the [`BlobBackend`] port, one file per backend:
//! - [`posix::PosixBlobs`] (the embedded default): `DATA/blobs/sha256/<hex>`, and who
//!   uploaded each blob in `DATA/blobs/owner/<hex>`;
//! - [`object::ObjectBlobs`] (`serve --store s3://…`): the blobs in the bucket, beside
//!   the log, with `DATA/blobs/` as a verified read cache (ADR 0012).
//!
//! An upload is written to `DATA/blobs/tmp/` while its SHA-256 is computed, then fsynced
//! and its size and digest checked; only then does the backend make it visible under its
//! digest, and the upload is acknowledged only once the backend holds it durably. A blob
//! either is complete and has the digest it is named after, or does not exist. Writing
//! the same blob twice is harmless. Temporary files left by a crash are removed on open.
//!
//! Every upload is attributed to a key and charged against that key's quota and the
//! store's ([`quota`]) before a byte is written, and refused while the local volume
//! would keep less than the reserve. A blob's expiry clock starts when it was stored or
//! last named by a submission ([`BlobStore::touch`]); [`expiry`] removes unreferenced
//! blobs by it where the backend allows ([`BlobBackend::expires`]).
//!
//! May import: `storage::durable`, the object store drivers' connection and bridge, the
//! storage error, and the catalog's blob source and digest check.

pub mod expiry;
mod lru;
pub mod object;
pub mod posix;
pub mod quota;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::durable::create_dir_all_durable;
use super::StorageError;
use crate::catalog::{check_sha256, BlobSource};
use quota::{check_reserve, Limits, QuotaError, Usage};

/// The default largest blob: 64 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 << 20;

/// The uploader recorded for a blob whose owner record is missing (a crash between
/// storing the blob and recording its owner, or a store from before uploads were
/// attributed).
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
    /// The file system or the object store failed (or holds other bytes under the name:
    /// [`StorageError::Conflict`]).
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

/// One blob a backend holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBlob {
    /// Its SHA-256, 64 lowercase hex.
    pub hex: String,
    /// Its size in bytes.
    pub size: u64,
    /// Who uploaded it ([`UNKNOWN_UPLOADER`] if not recorded).
    pub owner: String,
}

/// The blob storage port: where verified, content-addressed blobs are kept. Every
/// `hex` a caller passes has been checked to be 64 lowercase hex.
///
/// A backend MUST only ever make visible under `hex` bytes whose SHA-256 is `hex` (it
/// is handed verified files), MUST NOT report a blob installed before it is durable
/// there, and MUST NOT replace a blob once stored: a second install of the same digest
/// succeeds only if the stored bytes are identical (they hash to the name), and fails
/// with [`StorageError::Conflict`] otherwise. Bytes it serves from anywhere it does not
/// control alone (a bucket) MUST be re-hashed before they are served.
pub trait BlobBackend: Send + Sync + std::fmt::Debug {
    /// Every blob held, with its size and owner.
    fn held(&self) -> Result<Vec<HeldBlob>, StorageError>;

    /// Whether blob `hex` is held.
    fn contains(&self, hex: &str) -> Result<bool, StorageError>;

    /// Who uploaded blob `hex`, if recorded.
    fn owner(&self, hex: &str) -> Result<Option<String>, StorageError>;

    /// A local file holding blob `hex`'s verified bytes, and its length; `None` if the
    /// blob is not held.
    fn open(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError>;

    /// Makes `tmp` (complete, fsynced, `size` bytes hashing to `hex`, in the store's
    /// `tmp/` directory) the blob `hex`, attributed to `uploader`. Returns whether it is
    /// new (false: identical bytes were already held). Consumes or leaves `tmp`; the
    /// caller removes what is left.
    fn install(
        &self,
        hex: &str,
        tmp: &Path,
        size: u64,
        uploader: &str,
    ) -> Result<bool, StorageError>;

    /// Restarts blob `hex`'s expiry clock (a submission names it); best effort.
    /// MUST return `false` only if the blob is certainly not held (analysis then skips
    /// it); when unsure (an error, a remote store not asked), `true`.
    fn touch(&self, hex: &str) -> bool;

    /// Whether [`BlobBackend::expire`] may remove anything here.
    fn expires(&self) -> bool;

    /// Removes blob `hex` if its clock is `ttl` or more before `now`, checked and
    /// removed atomically with respect to [`BlobBackend::touch`] and
    /// [`BlobBackend::install`]; returns the bytes removed, `None` if kept.
    fn expire(
        &self,
        hex: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Option<u64>, StorageError>;
}

/// The store (see the module documentation).
#[derive(Debug)]
pub struct BlobStore {
    /// The local directory: `tmp/` for uploads in flight, and the backend's files.
    root: PathBuf,
    backend: Box<dyn BlobBackend>,
    limits: Limits,
    usage: Usage,
    /// One permit per download being served.
    downloads: Arc<tokio::sync::Semaphore>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(what: String) -> impl FnOnce(io::Error) -> StorageError {
    move |e| StorageError::io(what, e)
}

impl BlobStore {
    /// Opens (creating) the POSIX store at `root` with the default quotas and reserve.
    pub fn open(root: &Path, max_bytes: u64) -> Result<BlobStore, StorageError> {
        BlobStore::open_with(root, Limits::with_max_blob(max_bytes))
    }

    /// Opens (creating) the POSIX store at `root` (see [`BlobStore::with_backend`]).
    pub fn open_with(root: &Path, limits: Limits) -> Result<BlobStore, StorageError> {
        let backend = posix::PosixBlobs::open(root)?;
        BlobStore::with_backend(root, Box::new(backend), limits)
    }

    /// The store on `backend`, its uploads staged in `root/tmp/`: removes temporaries a
    /// crash left behind and counts what each uploader holds.
    pub fn with_backend(
        root: &Path,
        backend: Box<dyn BlobBackend>,
        limits: Limits,
    ) -> Result<BlobStore, StorageError> {
        let store = BlobStore {
            root: root.to_path_buf(),
            backend,
            limits,
            usage: Usage::default(),
            downloads: Arc::new(tokio::sync::Semaphore::new(limits.max_downloads.max(1))),
        };
        let tmp = store.tmp_dir();
        create_dir_all_durable(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
        for path in list(&tmp)? {
            fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
        }
        for held in store.backend.held()? {
            store.usage.charge(&held.owner, held.size);
        }
        Ok(store)
    }

    /// The backend the blobs are kept in.
    pub fn backend(&self) -> &dyn BlobBackend {
        self.backend.as_ref()
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

    /// Whether the blob is held (false for a malformed digest, or when the backend
    /// cannot be asked).
    pub fn contains(&self, hex: &str) -> bool {
        check_sha256(hex).is_ok() && self.backend.contains(hex).unwrap_or(false)
    }

    /// The key id that uploaded blob `hex` ([`UNKNOWN_UPLOADER`] if not recorded).
    pub fn owner(&self, hex: &str) -> String {
        check_sha256(hex)
            .ok()
            .and_then(|_| self.backend.owner(hex).ok().flatten())
            .unwrap_or_else(|| UNKNOWN_UPLOADER.to_string())
    }

    /// Every blob held: (digest hex, size).
    pub fn held(&self) -> Result<Vec<(String, u64)>, StorageError> {
        Ok(self
            .backend
            .held()?
            .into_iter()
            .map(|h| (h.hex, h.size))
            .collect())
    }

    /// The blob's bytes, if held.
    pub fn get(&self, hex: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let Some((mut file, len)) = self.open_blob(hex)? else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(io_error(format!("reading blob {hex}")))?;
        Ok(Some(bytes))
    }

    /// The blob's verified bytes in a local file opened for reading, and its length, if
    /// held (for streaming).
    pub fn open_blob(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError> {
        if check_sha256(hex).is_err() {
            return Ok(None);
        }
        self.backend.open(hex)
    }

    /// Restarts blob `hex`'s expiry clock (a submission names it). Returns `false` if the
    /// blob is certainly not held (a malformed digest never is).
    pub fn touch(&self, hex: &str) -> bool {
        check_sha256(hex).is_ok() && self.backend.touch(hex)
    }

    /// Starts writing a blob expected to hash to `expected` (64 hex): checks the size
    /// limit, the disk reserve and the quotas, and reserves the declared size. May ask
    /// the backend whether the blob is held (a network round trip on a bucket).
    pub fn writer(&self, expected: &str, upload: Upload) -> Result<BlobWriter<'_>, BlobError> {
        check_sha256(expected).map_err(|e| BlobError::BadDigest(e.to_string()))?;
        if upload.size > self.limits.max_blob_bytes {
            return Err(BlobError::TooLarge {
                max: self.limits.max_blob_bytes,
            });
        }
        check_reserve(&self.root, upload.size, self.limits.reserve_bytes)?;
        // A blob already held costs nothing more (its bytes are still checked).
        let charged = !self.backend.contains(expected)?;
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
        match self.get(sha256_hex) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Analysis then records the evidence as not held; the reason is the
                // operator's to see.
                tracing::warn!(blob = sha256_hex, error = %e, "reading an evidence blob");
                None
            }
        }
    }

    fn touch(&self, sha256_hex: &str) -> bool {
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

    /// Checks the size and digest, has the backend store the blob durably under its
    /// name, and returns whether it is new (false: an identical blob was already held).
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
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(io_error(format!("syncing {}", self.tmp.display())))?;
        }
        let created = self.store.backend.install(
            &self.expected,
            &self.tmp,
            self.upload.size,
            &self.upload.uploader,
        )?;
        if created {
            self.charged = false;
        }
        Ok(created)
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // After an install the temporary name usually no longer exists; otherwise it is
        // an abandoned or refused upload (or one already held), whose reservation is
        // returned.
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

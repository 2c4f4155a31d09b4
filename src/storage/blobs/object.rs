//! [`ObjectBlobs`]: the blobs in the log's bucket (`serve --store s3://BUCKET/PREFIX`),
//! so that every `serve` on the bucket, and the standby that takes over after the
//! sequencer dies, has the evidence the others received (ADR 0012):
//! - `PREFIX/blobs/sha256/<hex>`: the blob, written create-only (`PutMode::Create`, S3's
//!   `If-None-Match: *`). When it already exists the upload still succeeds if the stored
//!   bytes hash to the name (they are then the same bytes), and fails with
//!   [`StorageError::Conflict`] otherwise: an object is never replaced, as with tiles.
//! - `PREFIX/blobs/owner/<hex>/<owner as hex>`: an empty marker whose name records the
//!   uploader, written after the blob by whoever created it. In the name rather than in
//!   object metadata because the quota count at start (a takeover) then costs one
//!   listing, not one HEAD per blob; a crash between the two writes leaves the blob
//!   unattributed, as on POSIX.
//!
//! An upload is verified (size and SHA-256, while it streams to `DATA/blobs/tmp/`) before
//! anything is written to the bucket, and acknowledged only once the bucket holds it.
//! Its one create-only PUT sends the verified temporary file mapped read-only
//! ([`mapped_body`]), not a copy of it on the heap: a multipart upload, which would
//! stream it, cannot be made create-only.
//! `DATA/blobs/` ([`PosixBlobs`]) is a read cache: a blob fetched from the bucket is
//! streamed to a temporary file while hashed, and served or cached only if it hashes to
//! its name and is no larger than the blob limit, so a tampered object is never served.
//! A one-off copy (`mirror`) uses the store [`ObjectBlobs::uncached`]: every blob then
//! passes through the local directory one at a time, and nothing stays there.
//!
//! The cache is bounded ([`ObjectBlobs::with_cache_limit`], `serve --blob-cache-bytes`,
//! [`DEFAULT_CACHE_BYTES`] by default): when a blob cached by a fetch or an upload takes
//! it past its size, the least recently served blobs are removed ([`super::lru`]), the
//! one just cached last of all. The cache's order at start is its files' modification
//! times (a read restarts a cached blob's clock). A removed blob is fetched again, and
//! re-hashed, when next asked for; a reader that has it open keeps its bytes.
//!
//! Nothing here deletes a blob from the bucket ([`BlobBackend::expires`] is false): a
//! delete cannot be fenced like a checkpoint, so a sequencer paused past its lease could
//! remove a blob its successor has just seen named. Bucket lifecycle rules are the
//! operator's tool (ADR 0012, docs/deployment.md).
//!
//! The engine's analysis is synchronous (`catalog::BlobSource`, run off the async
//! workers by `log::intake`), so this backend reaches the async `object_store` client the
//! way [`crate::storage::object::ObjectTiles`] does: through a runtime of its own
//! ([`Remote`]), waiting on a channel. That blocks only the calling thread, as a file
//! read would, works from inside the HTTP server's runtime (where `block_on` would
//! panic), and needs no change to the sync analysis or its callers.
//!
//! May import: the blob port (`super`), the POSIX backend (the cache), the object store
//! connection and bridge, `storage::durable`, and the storage error.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

use super::lru::Lru;
use super::posix::PosixBlobs;
use super::quota::check_reserve;
use super::{io_error, BlobBackend, HeldBlob, TEMP_COUNTER, UNKNOWN_UPLOADER};
use crate::catalog::check_sha256;
use crate::storage::object::{connect, ObjectStoreConfig, StoreUrl};
use crate::storage::remote::{remote_error, Remote};
use crate::storage::StorageError;

/// The default size of the local read cache: 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// Blobs written to the bucket at once (connections to the bucket and mapped temporary
/// files; the bodies are not on the heap, see [`mapped_body`]).
const MAX_PUTS: usize = 4;

/// The blobs in a bucket, with a local verified read cache (see the module
/// documentation).
#[derive(Debug)]
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    remote: Remote,
    cache: PosixBlobs,
    /// Where fetches are staged (`DATA/blobs/tmp/`, emptied by the store at open).
    tmp: PathBuf,
    max_blob_bytes: u64,
    reserve_bytes: u64,
    puts: Arc<tokio::sync::Semaphore>,
    /// Whether fetched and uploaded blobs are kept in `cache`.
    caching: bool,
    /// What `cache` holds, by last use, against its limit.
    cached: std::sync::Mutex<Lru>,
}

impl ObjectBlobs {
    /// The blobs in the bucket of `url` (under its prefix), reached as `config` says,
    /// cached in `root`. No probe: an overwriting store cannot change what is served
    /// here, since every read is re-hashed (ADR 0012).
    pub fn open(
        url: &StoreUrl,
        config: &ObjectStoreConfig,
        root: &Path,
        max_blob_bytes: u64,
        reserve_bytes: u64,
    ) -> Result<ObjectBlobs, StorageError> {
        ObjectBlobs::with_store(
            connect(url, config)?,
            &url.prefix,
            root,
            max_blob_bytes,
            reserve_bytes,
        )
    }

    /// The blobs in `store` under `prefix`, cached in `root` (tests give
    /// object_store's in-memory store).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        root: &Path,
        max_blob_bytes: u64,
        reserve_bytes: u64,
    ) -> Result<ObjectBlobs, StorageError> {
        let prefix = prefix.trim_matches('/');
        let base = if prefix.is_empty() {
            "blobs".to_string()
        } else {
            format!("{prefix}/blobs")
        };
        let cache = PosixBlobs::open(root)?;
        let cached = std::sync::Mutex::new(cache_order(&cache, DEFAULT_CACHE_BYTES)?);
        Ok(ObjectBlobs {
            store,
            prefix: base,
            remote: Remote::new("blob-store", 2, Duration::from_secs(120))?,
            cache,
            cached,
            tmp: root.join("tmp"),
            max_blob_bytes,
            reserve_bytes,
            puts: Arc::new(tokio::sync::Semaphore::new(MAX_PUTS)),
            caching: true,
        })
    }

    /// This store keeping nothing locally, for a one-off copy of every blob (`mirror`):
    /// a blob read is fetched and verified into a temporary file that is unlinked once
    /// opened, and an installed blob's temporary file is left to the caller.
    pub fn uncached(mut self) -> ObjectBlobs {
        self.caching = false;
        self
    }

    /// This store with its read cache bounded to `bytes` (see the module documentation);
    /// what is cached already beyond it is removed now.
    pub fn with_cache_limit(self, bytes: u64) -> ObjectBlobs {
        let evicted = {
            let mut lru = self.lru();
            lru.set_limit(bytes);
            lru.trim()
        };
        self.evict(&evicted);
        self
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records blob `hex` (`size` bytes) as cached now, and removes what no longer fits.
    fn cached_now(&self, hex: &str, size: u64) {
        let evicted = self.lru().insert(hex, size);
        self.evict(&evicted);
    }

    /// Removes cached copies (the bucket keeps the blobs).
    fn evict(&self, hexes: &[String]) {
        for hex in hexes {
            // Unconditionally: a zero TTL has always passed.
            if let Err(e) = self.cache.expire(hex, Duration::ZERO, SystemTime::now()) {
                tracing::warn!(blob = %hex, error = %e, "removing a cached blob");
            }
        }
    }

    fn blob_location(&self, hex: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/sha256/{hex}", self.prefix))
    }

    fn owners_of(&self, hex: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/owner/{hex}", self.prefix))
    }

    fn owner_marker(&self, hex: &str, owner: &str) -> ObjectPath {
        ObjectPath::from(format!(
            "{}/owner/{hex}/{}",
            self.prefix,
            hex::encode(owner)
        ))
    }

    fn temporary(&self, hex: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{}-{n}-fetch-{}", std::process::id(), &hex[..16]))
    }

    /// Fetches blob `hex` from the bucket into the cache, verified; `false` if the bucket
    /// has no such object.
    fn fetch(&self, hex: &str) -> Result<bool, StorageError> {
        let tmp = self.temporary(hex);
        let fetched = self.fetch_to(hex, &tmp);
        let installed = match fetched {
            Ok(Some(size)) => self
                .cache
                .install(hex, &tmp, size, UNKNOWN_UPLOADER)
                .map(|_| {
                    self.cached_now(hex, size);
                    true
                }),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        let _ = fs::remove_file(&tmp);
        installed
    }

    /// Fetches blob `hex` from the bucket into a temporary file, verified, and opens it;
    /// the name is removed at once, so the bytes live as long as the handle.
    fn fetch_uncached(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError> {
        let tmp = self.temporary(hex);
        let opened = match self.fetch_to(hex, &tmp) {
            Ok(Some(size)) => File::open(&tmp)
                .map(|file| Some((file, size)))
                .map_err(io_error(format!("opening {}", tmp.display()))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let _ = fs::remove_file(&tmp);
        opened
    }

    /// Streams the object to `tmp` while hashing it; its size if it hashes to `hex`.
    fn fetch_to(&self, hex: &str, tmp: &Path) -> Result<Option<u64>, StorageError> {
        let (store, location) = (self.store.clone(), self.blob_location(hex));
        let (max, reserve, root) = (
            self.max_blob_bytes,
            self.reserve_bytes,
            self.tmp.parent().map(Path::to_path_buf).unwrap_or_default(),
        );
        let (expected, tmp_path) = (hex.to_string(), tmp.to_path_buf());
        self.remote.run("fetching a blob", async move {
            let result = match store.get(&location).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(remote_error(format!("reading {location}"), e)),
            };
            let declared = result.meta.size;
            if declared > max {
                return Err(tampered(
                    &location,
                    format!("{declared} bytes, over the limit"),
                ));
            }
            check_reserve(&root, declared, reserve)
                .map_err(|e| StorageError::io("caching a blob", std::io::Error::other(e)))?;
            let mut file = File::create(&tmp_path)
                .map_err(io_error(format!("creating {}", tmp_path.display())))?;
            let (actual, size) = hash_stream(result, &location, max, |chunk| {
                file.write_all(chunk)
                    .map_err(io_error(format!("writing {}", tmp_path.display())))
            })
            .await?;
            if actual != expected {
                return Err(tampered(&location, format!("its SHA-256 is {actual}")));
            }
            file.sync_all()
                .map_err(io_error(format!("syncing {}", tmp_path.display())))?;
            Ok(Some(size))
        })
    }
}

/// What `cache` holds, by modification time, against `limit` bytes (applied at the
/// next insert).
fn cache_order(cache: &PosixBlobs, limit: u64) -> Result<Lru, StorageError> {
    let mut held: Vec<(SystemTime, HeldBlob)> = cache
        .held()?
        .into_iter()
        .map(|blob| {
            let modified = fs::metadata(cache.path(&blob.hex))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (modified, blob)
        })
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.hex.cmp(&b.1.hex)));
    let mut lru = Lru::new(u64::MAX);
    for (_, blob) in &held {
        lru.insert(&blob.hex, blob.size);
    }
    lru.set_limit(limit);
    Ok(lru)
}

/// The verified temporary file `path` (`size` bytes) as the body of the blob's one
/// create-only PUT, mapped read-only rather than read into memory.
///
/// A PUT's body must be whole in memory (object_store signs it, and resends it on a
/// retry), and a multipart upload cannot be made create-only (ADR 0012). Mapped, the
/// body is the file's clean page cache, which the kernel can drop and read again under
/// pressure, so an upload costs no heap in proportion to the blob's size, however many
/// run at once.
#[allow(unsafe_code)] // The crate's one exception (see `lib.rs` and the SAFETY below).
fn mapped_body(path: &Path, size: u64) -> Result<PutPayload, StorageError> {
    let file = File::open(path).map_err(io_error(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io_error(format!("reading {}", path.display())))?
        .len();
    if len != size {
        return Err(StorageError::Corrupt(format!(
            "{} changed size before it was stored",
            path.display()
        )));
    }
    // SAFETY: a mapped file that shrinks or changes under the mapping makes reading it
    // fault (SIGBUS) or see other bytes. This file cannot: it is a temporary file in
    // `DATA/blobs/tmp/` (or in a `mirror`'s own scratch directory) that this process
    // created (`BlobWriter`, under a name of its PID and a counter), wrote, hashed
    // against its name and synced, and has closed for writing. Nothing writes or
    // truncates it afterwards (`touch` opens a cached blob to append, but only sets its
    // modification time): the data directory has one writer (`DataDirLock`), what
    // empties `tmp/` at open, the writer's drop and the cache's eviction only unlink
    // (the mapping keeps the inode's bytes), and installing it in the cache is a rename.
    // The mapping is read-only, and unmapped when the PUT's payload is dropped. (A disk
    // that fails to read the pages back faults too, where `fs::read` returned an error:
    // docs/deployment.md.)
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(io_error(format!("mapping {}", path.display())))?;
    // Read front to back, once (twice with a retry): let the kernel read ahead.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(PutPayload::from(bytes::Bytes::from_owner(map)))
}

/// The bucket holds other bytes under a blob's name than the name says.
fn tampered(location: &ObjectPath, why: String) -> StorageError {
    tracing::error!(object = %location, why = %why, "a blob in the bucket does not match its name; not served");
    StorageError::Corrupt(format!(
        "{location} in the bucket does not match its name ({why}); not served"
    ))
}

/// The SHA-256 of the object at `location`, or `None` if there is none.
async fn stored_digest(
    store: &Arc<dyn ObjectStore>,
    location: &ObjectPath,
) -> Result<Option<String>, StorageError> {
    let result = match store.get(location).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(remote_error(format!("reading {location}"), e)),
    };
    let (digest, _) = hash_stream(result, location, u64::MAX, |_| Ok(())).await?;
    Ok(Some(digest))
}

/// Streams the body of `result` (the object at `location`) through `sink` while hashing
/// it, stopping with [`tampered`] past `max` bytes: its SHA-256 as hex, and its size.
async fn hash_stream(
    result: object_store::GetResult,
    location: &ObjectPath,
    max: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<(String, u64), StorageError> {
    let (mut hasher, mut size) = (Sha256::new(), 0u64);
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| remote_error(format!("reading {location}"), e))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(tampered(location, format!("more than {max} bytes")));
        }
        hasher.update(&chunk);
        sink(&chunk)?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Lists every object under `prefix` (all pages).
async fn list_all(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Result<Vec<object_store::ObjectMeta>, StorageError> {
    let mut out = Vec::new();
    let mut stream = store.list(Some(prefix));
    while let Some(meta) = stream.next().await {
        out.push(meta.map_err(|e| remote_error(format!("listing {prefix}"), e))?);
    }
    Ok(out)
}

/// The last segment of an object's path after `prefix/`, split on `/`.
fn segments<'a>(meta: &'a object_store::ObjectMeta, prefix: &str) -> Vec<&'a str> {
    meta.location
        .as_ref()
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.split('/').collect())
        .unwrap_or_default()
}

/// The uploader a marker's last segment names, if it is hex of UTF-8.
fn decode_owner(segment: &str) -> Option<String> {
    String::from_utf8(hex::decode(segment).ok()?).ok()
}

impl BlobBackend for ObjectBlobs {
    fn held(&self) -> Result<Vec<HeldBlob>, StorageError> {
        let store = self.store.clone();
        let (blobs, owners) = (
            ObjectPath::from(format!("{}/sha256", self.prefix)),
            ObjectPath::from(format!("{}/owner", self.prefix)),
        );
        let (blob_metas, owner_metas) = self.remote.run("listing blobs", async move {
            Ok((
                list_all(&store, &blobs).await?,
                list_all(&store, &owners).await?,
            ))
        })?;
        let owner_prefix = format!("{}/owner", self.prefix);
        let mut owner_of = std::collections::HashMap::new();
        for meta in &owner_metas {
            if let [hex, owner] = segments(meta, &owner_prefix)[..] {
                if let Some(owner) = decode_owner(owner) {
                    // The first marker in listing order, so every server counts alike.
                    owner_of.entry(hex.to_string()).or_insert(owner);
                }
            }
        }
        let blob_prefix = format!("{}/sha256", self.prefix);
        Ok(blob_metas
            .iter()
            .filter_map(|meta| match segments(meta, &blob_prefix)[..] {
                [hex] if check_sha256(hex).is_ok() => Some(HeldBlob {
                    hex: hex.to_string(),
                    size: meta.size,
                    owner: owner_of
                        .get(hex)
                        .cloned()
                        .unwrap_or_else(|| UNKNOWN_UPLOADER.to_string()),
                }),
                _ => None,
            })
            .collect())
    }

    fn contains(&self, hex: &str) -> Result<bool, StorageError> {
        if self.cache.contains(hex)? {
            return Ok(true);
        }
        let (store, location) = (self.store.clone(), self.blob_location(hex));
        self.remote.run("looking for a blob", async move {
            match store.head(&location).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(remote_error(format!("reading {location}"), e)),
            }
        })
    }

    fn owner(&self, hex: &str) -> Result<Option<String>, StorageError> {
        let (store, prefix) = (self.store.clone(), self.owners_of(hex));
        let markers = self.remote.run("reading a blob's owner", async move {
            list_all(&store, &prefix).await
        })?;
        let prefix = self.owners_of(hex).to_string();
        Ok(markers
            .iter()
            .find_map(|meta| match segments(meta, &prefix)[..] {
                [owner] => decode_owner(owner),
                _ => None,
            }))
    }

    fn open(&self, hex: &str) -> Result<Option<(File, u64)>, StorageError> {
        if !self.caching {
            return self.fetch_uncached(hex);
        }
        if let Some(cached) = self.cache.open(hex)? {
            self.lru().touch(hex);
            return Ok(Some(cached));
        }
        if !self.fetch(hex)? {
            return Ok(None);
        }
        self.cache.open(hex)
    }

    fn install(
        &self,
        hex: &str,
        tmp: &Path,
        size: u64,
        uploader: &str,
    ) -> Result<bool, StorageError> {
        let (store, location) = (self.store.clone(), self.blob_location(hex));
        let (marker, puts) = (self.owner_marker(hex, uploader), self.puts.clone());
        let (expected, tmp_path) = (hex.to_string(), tmp.to_path_buf());
        let created = self.remote.run("storing a blob", async move {
            let _permit = puts
                .acquire_owned()
                .await
                .map_err(|e| remote_error("storing a blob", e))?;
            let body = mapped_body(&tmp_path, size)?;
            let create = || PutOptions::from(PutMode::Create);
            match store.put_opts(&location, body, create()).await {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Content-addressed: the stored object is the same bytes exactly
                    // when it hashes to the name.
                    return match stored_digest(&store, &location).await? {
                        Some(stored) if stored == expected => Ok(false),
                        _ => Err(StorageError::Conflict(format!(
                            "{location} already exists with other bytes; blobs are never \
                             replaced (remove the damaged object to store it again)"
                        ))),
                    };
                }
                Err(e) => return Err(remote_error(format!("writing {location}"), e)),
            }
            match store.put_opts(&marker, PutPayload::new(), create()).await {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                // The blob is stored; only its attribution is lost (as after a crash).
                Err(e) => tracing::warn!(object = %marker, error = %e, "recording a blob's owner"),
            }
            Ok(true)
        })?;
        // The local copy is only a cache: failing to keep it loses nothing.
        if !self.caching {
            return Ok(created);
        }
        match self.cache.install(hex, tmp, size, uploader) {
            Ok(_) => self.cached_now(hex, size),
            Err(e) => tracing::warn!(blob = hex, error = %e, "caching an uploaded blob"),
        }
        Ok(created)
    }

    /// Restarts the cached copy's clock only (and counts as a use of it): nothing
    /// expires from the bucket. A blob not cached may still be in the bucket, so the
    /// answer is always "may be held".
    fn touch(&self, hex: &str) -> bool {
        self.cache.touch(hex);
        self.lru().touch(hex);
        true
    }

    fn expires(&self) -> bool {
        false
    }

    fn expire(
        &self,
        _hex: &str,
        _ttl: Duration,
        _now: SystemTime,
    ) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}

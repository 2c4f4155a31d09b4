//! [`ObjectTiles`]: the tile store on an object store bucket (S3 or S3-compatible, or
//! object_store's in-memory store in tests).
//!
//! Every tile is written create-only (`PutMode::Create`, S3's `If-None-Match: *`). When
//! the object already exists, the write still succeeds if the stored bytes are exactly
//! the bytes being written (a retry after a lost reply, or a batch redone from the
//! coordinator's journal), and fails with [`StorageError::Conflict`] otherwise, as in
//! Tessera: an object once written is never replaced. This needs a coordinator that
//! journals each batch before its tiles are written (see [`crate::storage::TileStore`]),
//! so that whoever redoes a batch writes the same bytes.
//!
//! At open a probe writes one object twice, create-only, and insists the second write is
//! refused: a store that silently overwrites (some S3-compatible servers do) is refused
//! unless the operator accepts the weaker guarantee explicitly.
//!
//! The bucket also holds the served copy of the checkpoint (`checkpoint`, the one object
//! that is overwritten), written after each swap ([`TileStore::publish_checkpoint`]), so
//! that the bucket alone is a complete tlog-tiles log for static readers (`monitor`,
//! `verify`, a CDN). The checkpoint in the lock stays the commit point.
//!
//! `delete` does nothing: partial tiles stay (tlog-tiles allows it), so a deleted path can
//! never be recreated by a late writer.
//!
//! The tiles written last are kept in memory ([`Recent`], bounded by bytes) and `get`
//! answers from there: each batch writes new partial tiles, which the receipts of that
//! very batch read at once, and an object never changes once written, so the copy is
//! exactly what the bucket holds. Without it every receipt paid for a GET round trip.
//!
//! May import: the storage ports, `tiles`, [`crate::storage::remote`] and the config.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use rand_core::{OsRng, RngCore};

use super::config::{ObjectStoreConfig, StoreUrl};
use crate::storage::remote::{remote_error, Remote};
use crate::storage::{StorageError, TileStore, TileWrite};

/// What the start-up probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverwriteProbe {
    /// The second create-only write was refused and the first bytes kept: the store
    /// honours `If-None-Match: *`.
    Refused,
    /// The second create-only write succeeded: the store silently overwrites.
    Overwrote,
}

/// The tile store on a bucket (see the module documentation).
#[derive(Debug)]
pub struct ObjectTiles {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    remote: Remote,
    probe: OverwriteProbe,
    recent: Mutex<Recent>,
}

/// The most recently written objects, oldest first out, at most [`Recent::MAX_BYTES`].
#[derive(Debug, Default)]
struct Recent {
    objects: HashMap<String, Arc<Vec<u8>>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Recent {
    const MAX_BYTES: usize = 32 << 20;

    fn insert(&mut self, path: String, data: Arc<Vec<u8>>) {
        if data.len() > Self::MAX_BYTES || self.objects.contains_key(&path) {
            return;
        }
        self.bytes += data.len();
        self.objects.insert(path.clone(), data);
        self.order.push_back(path);
        while self.bytes > Self::MAX_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.objects.remove(&old) {
                self.bytes -= gone.len();
            }
        }
    }
}

impl ObjectTiles {
    /// Connects to the bucket of `url` with `config` and runs the probe.
    pub fn open(url: &StoreUrl, config: &ObjectStoreConfig) -> Result<ObjectTiles, StorageError> {
        ObjectTiles::with_store(
            connect(url, config)?,
            &url.prefix,
            config.accept_overwriting_store,
        )
    }

    /// Connects to the bucket of `url` to read it (a mirror's source): no probe, so
    /// nothing is written and read-only credentials suffice. Its `put` still writes
    /// create-only, but nothing vouches that the store honours it.
    pub fn open_read_only(
        url: &StoreUrl,
        config: &ObjectStoreConfig,
    ) -> Result<ObjectTiles, StorageError> {
        ObjectTiles::unprobed(connect(url, config)?, &url.prefix)
    }

    fn unprobed(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<ObjectTiles, StorageError> {
        Ok(ObjectTiles {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            remote: Remote::new("object-store", 2, Duration::from_secs(60))?,
            probe: OverwriteProbe::Refused,
            recent: Mutex::new(Recent::default()),
        })
    }

    /// The tile store on `store` under `prefix`, after the probe: fails with
    /// [`StorageError::Refused`] if the store overwrites create-only writes and
    /// `accept_overwriting` is false.
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        accept_overwriting: bool,
    ) -> Result<ObjectTiles, StorageError> {
        let mut tiles = ObjectTiles::unprobed(store, prefix)?;
        tiles.probe = tiles.run_probe()?;
        if tiles.probe == OverwriteProbe::Overwrote {
            if !accept_overwriting {
                return Err(StorageError::Refused(format!(
                    "the object store ({}) silently replaced an object on a create-only write \
                     (If-None-Match: *); a committed tile could then be overwritten. Use a store \
                     that honours conditional writes, or accept the weaker guarantee explicitly \
                     (--accept-overwriting-store)",
                    tiles.store
                )));
            }
            tracing::warn!(
                "the object store overwrites create-only writes; accepted by configuration"
            );
        }
        Ok(tiles)
    }

    /// What the start-up probe found.
    pub fn probe(&self) -> OverwriteProbe {
        self.probe
    }

    fn remember(&self, path: String, data: Arc<Vec<u8>>) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.insert(path, data);
        }
    }

    fn location(&self, path: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(path)
        } else {
            ObjectPath::from(format!("{}/{path}", self.prefix))
        }
    }

    /// Writes one object twice, create-only, with different bytes; reads it back.
    fn run_probe(&self) -> Result<OverwriteProbe, StorageError> {
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let location = self.location(&format!(".srcos-probe/{}", hex::encode(nonce)));
        let store = self.store.clone();
        self.remote.run("probing the object store", async move {
            let create = || PutOptions::from(PutMode::Create);
            store
                .put_opts(&location, PutPayload::from_static(b"first"), create())
                .await
                .map_err(|e| remote_error("first create-only write", e))?;
            let second = store
                .put_opts(&location, PutPayload::from_static(b"second"), create())
                .await;
            let stored = store
                .get(&location)
                .await
                .map_err(|e| remote_error("reading back", e))?
                .bytes()
                .await
                .map_err(|e| remote_error("reading back", e))?;
            let _ = store.delete(&location).await;
            match second {
                Err(object_store::Error::AlreadyExists { .. }) if stored.as_ref() == b"first" => {
                    Ok(OverwriteProbe::Refused)
                }
                Err(object_store::Error::AlreadyExists { .. }) | Ok(_) => {
                    Ok(OverwriteProbe::Overwrote)
                }
                Err(e) => Err(remote_error("second create-only write", e)),
            }
        })
    }
}

/// The bucket of `url`, reached as `config` says (no I/O yet).
pub(crate) fn connect(
    url: &StoreUrl,
    config: &ObjectStoreConfig,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&url.bucket)
        .with_virtual_hosted_style_request(!config.path_style)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    builder = builder.with_region(config.region.as_deref().unwrap_or("us-east-1"));
    if let Some(id) = &config.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &config.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let store = builder
        .build()
        .map_err(|e| StorageError::Refused(format!("configuring {url}: {e}")))?;
    Ok(Arc::new(store))
}

/// The tree size of a signed checkpoint (its second line), unverified: only to keep a
/// late writer from putting an older served copy back. `None` if it has no such line.
fn checkpoint_size(signed: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(signed).ok()?;
    crate::tiles::parse_canonical_decimal(text.split('\n').nth(1)?)
}

/// Reads the object at `location`, `None` if there is none.
async fn get_optional(
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
) -> Result<Option<Vec<u8>>, StorageError> {
    match store.get(&location).await {
        Ok(result) => result
            .bytes()
            .await
            .map(|b| Some(b.to_vec()))
            .map_err(|e| remote_error(format!("reading {location}"), e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote_error(format!("reading {location}"), e)),
    }
}

/// Writes `data` create-only; an existing object is fine only with the same bytes.
async fn put_create_only(
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    data: PutPayload,
) -> Result<(), StorageError> {
    let expected = data.clone();
    match store
        .put_opts(&location, data, PutOptions::from(PutMode::Create))
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let stored = store
                .get(&location)
                .await
                .map_err(|e| remote_error(format!("reading existing {location}"), e))?
                .bytes()
                .await
                .map_err(|e| remote_error(format!("reading existing {location}"), e))?;
            let same = stored.len() == expected.content_length()
                && expected
                    .iter()
                    .scan(0usize, |at, chunk| {
                        let start = *at;
                        *at += chunk.len();
                        Some(stored.get(start..*at) == Some(chunk.as_ref()))
                    })
                    .all(|same| same);
            if same {
                Ok(())
            } else {
                Err(StorageError::Conflict(format!(
                    "{location} already exists with other bytes; objects are never replaced"
                )))
            }
        }
        Err(e) => Err(remote_error(format!("writing {location}"), e)),
    }
}

impl TileStore for ObjectTiles {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
        let location = self.location(path);
        let payload = PutPayload::from(data.to_vec());
        self.remote.run(
            "object store",
            put_create_only(self.store.clone(), location, payload),
        )?;
        self.remember(path.to_string(), Arc::new(data.to_vec()));
        Ok(())
    }

    /// Uploads every tile of the batch in parallel.
    fn put_batch(&self, writes: &[TileWrite]) -> Result<(), StorageError> {
        let jobs: Vec<(ObjectPath, PutPayload)> = writes
            .iter()
            .map(|w| {
                (
                    self.location(&w.tile.path()),
                    PutPayload::from(w.data.clone()),
                )
            })
            .collect();
        let store = self.store.clone();
        self.remote.run("object store", async move {
            let mut set = tokio::task::JoinSet::new();
            for (location, payload) in jobs {
                set.spawn(put_create_only(store.clone(), location, payload));
            }
            let mut first_error = None;
            while let Some(joined) = set.join_next().await {
                let result = joined.map_err(|e| remote_error("uploading a tile", e))?;
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })?;
        for write in writes {
            self.remember(write.tile.path(), Arc::new(write.data.clone()));
        }
        Ok(())
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(data) = self
            .recent
            .lock()
            .ok()
            .and_then(|r| r.objects.get(path).cloned())
        {
            return Ok(Some(data.as_ref().clone()));
        }
        self.remote.run(
            "object store",
            get_optional(self.store.clone(), self.location(path)),
        )
    }

    /// Keeps the object (see the module documentation).
    fn delete(&self, _path: &str) -> Result<(), StorageError> {
        Ok(())
    }

    fn create_only(&self) -> bool {
        true
    }

    /// Overwrites `checkpoint` (the one object that changes), unless the bucket already
    /// serves a larger one: a sequencer paused between its swap and this write must not
    /// put an older copy back over its successor's. (A read, then a write: a window
    /// remains, closed by the next batch's write; the lock, not this copy, is the truth.)
    fn publish_checkpoint(&self, signed: &[u8], size: u64) -> Result<(), StorageError> {
        let store = self.store.clone();
        let location = self.location(CHECKPOINT_OBJECT);
        let payload = PutPayload::from(signed.to_vec());
        self.remote.run("object store", async move {
            let served = get_optional(store.clone(), location.clone()).await?;
            if served
                .as_deref()
                .and_then(checkpoint_size)
                .is_some_and(|served| served > size)
            {
                return Ok(());
            }
            store
                .put_opts(&location, payload, PutOptions::from(PutMode::Overwrite))
                .await
                .map(|_| ())
                .map_err(|e| remote_error(format!("writing {location}"), e))
        })
    }

    fn published_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.remote.run(
            "object store",
            get_optional(self.store.clone(), self.location(CHECKPOINT_OBJECT)),
        )
    }
}

/// The served copy of the checkpoint, at the tlog-tiles path `<prefix>/checkpoint`.
const CHECKPOINT_OBJECT: &str = "checkpoint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_of_a_served_checkpoint_is_its_second_line() {
        for (signed, size) in [
            (&b"example.com/log\n42\nROOT=\n\n- sig\n"[..], Some(42)),
            (b"origin\n0\nroot\n", Some(0)),
            (b"origin\n042\nroot\n", None),
            (b"origin\n", None),
            (b"origin\n-1\n", None),
            (b"\xff\n1\n", None),
        ] {
            assert_eq!(checkpoint_size(signed), size, "{signed:?}");
        }
    }

    #[test]
    fn recent_objects_stay_within_their_byte_bound_oldest_out_first() {
        let mut recent = Recent::default();
        let chunk = Recent::MAX_BYTES / 4;
        for i in 0..6 {
            recent.insert(format!("t/{i}"), Arc::new(vec![i as u8; chunk]));
        }
        assert!(recent.bytes <= Recent::MAX_BYTES);
        assert_eq!(recent.objects.len(), 4);
        assert!(!recent.objects.contains_key("t/0") && !recent.objects.contains_key("t/1"));
        assert_eq!(recent.objects["t/5"][0], 5);
        // The first copy of a path stays (objects never change); an oversized one is
        // not kept at all.
        recent.insert("t/5".into(), Arc::new(vec![9; 1]));
        assert_eq!(recent.objects["t/5"][0], 5);
        recent.insert("big".into(), Arc::new(vec![0; Recent::MAX_BYTES + 1]));
        assert!(!recent.objects.contains_key("big"));
        assert_eq!(recent.bytes, 4 * chunk);
    }
}

//! Lookup indexes in sled: leaf hash → index and dedup key → index.
//!
//! The index is a projection of the tiles, never the source of truth: it records the
//! tree size it covers, and on start the log re-indexes whatever the checkpoint has and
//! the index lacks. So sled's weaker durability (its flush uses `sync_file_range`) and
//! its reported corruption after kills cannot lose an entry; a broken index is moved
//! aside and rebuilt.
//!
//! One sled tree with prefixed keys, so a batch's updates and the covered size change
//! in one atomic `apply_batch`.

use std::path::{Path, PathBuf};

use super::StorageError;

const LEAF_PREFIX: u8 = b'L';
const DEDUP_PREFIX: u8 = b'D';
const SIZE_KEY: &[u8] = b"Msize";
/// sled's cache for the index. sled counts pages at their serialized size, and this
/// index's items are tiny (33-byte keys, 8-byte values), so a cached page takes several
/// times its count in memory: a 32 MiB cache grew the server by ~280 MB under load on a
/// 396k-entry log (ADR 0002). Lookups are random, so a larger cache buys little anyway.
const INDEX_CACHE_BYTES: u64 = 4 << 20;

/// The sled-backed lookup index.
pub struct Index {
    db: sled::Db,
    tree: sled::Tree,
}

/// One indexed leaf.
#[derive(Debug, Clone, Copy)]
pub struct IndexedLeaf {
    /// Its position in the log.
    pub index: u64,
    /// RFC 6962 leaf hash.
    pub leaf_hash: [u8; 32],
    /// The submission's dedup key, if it has one (genesis has none).
    pub dedup_key: Option<[u8; 32]>,
}

fn index_error(e: sled::Error) -> StorageError {
    StorageError::Index(e.to_string())
}

fn prefixed(prefix: u8, key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = prefix;
    out[1..].copy_from_slice(key);
    out
}

fn decode_u64(value: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| StorageError::Corrupt("index value is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

impl Index {
    /// Opens the index at `dir`. If sled cannot open it, the directory is moved aside
    /// (kept for inspection) and a fresh, empty index is created; the caller re-indexes.
    pub fn open(dir: &Path) -> Result<Index, StorageError> {
        match Self::open_exact(dir) {
            Ok(index) => Ok(index),
            Err(first) => {
                let aside = aside_path(dir);
                tracing::warn!(error = %first, moved_to = %aside.display(), "index unreadable; rebuilding it from the tiles");
                std::fs::rename(dir, &aside)
                    .map_err(|e| StorageError::io(format!("moving {} aside", dir.display()), e))?;
                Self::open_exact(dir)
            }
        }
    }

    fn open_exact(dir: &Path) -> Result<Index, StorageError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(INDEX_CACHE_BYTES)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(index_error)?;
        let tree = db.open_tree("log").map_err(index_error)?;
        Ok(Index { db, tree })
    }

    /// The tree size the index covers.
    pub fn indexed_size(&self) -> Result<u64, StorageError> {
        match self.tree.get(SIZE_KEY).map_err(index_error)? {
            Some(v) => decode_u64(&v),
            None => Ok(0),
        }
    }

    /// The index of the leaf submitted with this dedup key, if any.
    pub fn find_dedup(&self, key: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        self.lookup(DEDUP_PREFIX, key)
    }

    /// The index of the leaf with this RFC 6962 leaf hash, if any.
    pub fn find_leaf(&self, leaf_hash: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        self.lookup(LEAF_PREFIX, leaf_hash)
    }

    fn lookup(&self, prefix: u8, key: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        match self.tree.get(prefixed(prefix, key)).map_err(index_error)? {
            Some(v) => decode_u64(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Records `leaves` and the new covered size in one atomic batch. Not fsynced:
    /// the tiles are the durable copy, and a lost suffix is re-indexed on start.
    pub fn record(&self, leaves: &[IndexedLeaf], new_size: u64) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for leaf in leaves {
            let value = leaf.index.to_be_bytes();
            // The first occurrence wins: a later identical leaf (impossible while the
            // sequencer dedups, but cheap to guard) must not move the lookup.
            if self
                .tree
                .get(prefixed(LEAF_PREFIX, &leaf.leaf_hash))
                .map_err(index_error)?
                .is_none()
            {
                batch.insert(&prefixed(LEAF_PREFIX, &leaf.leaf_hash)[..], &value[..]);
            }
            if let Some(key) = leaf.dedup_key {
                batch.insert(&prefixed(DEDUP_PREFIX, &key)[..], &value[..]);
            }
        }
        batch.insert(SIZE_KEY, &new_size.to_be_bytes()[..]);
        self.tree.apply_batch(batch).map_err(index_error)
    }

    /// Flushes sled's buffers (best effort; used on shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(index_error)
    }
}

fn aside_path(dir: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("{}.broken-{stamp}", dir.display()))
}

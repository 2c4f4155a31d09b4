//! The server's catalog record store: the catalog's per-publication records
//! ([`crate::catalog::RecordStore`]) on disk instead of in memory. Publication records (the
//! bulk: written once, keyed by leaf index) go to a [`SlotFile`]; entries and lookups,
//! which are updated and range-scanned, to an LSM tree (fjall) with a bounded memtable and
//! cache (ADR 0014).
//!
//! The store is a cache of the log, not a copy to trust: [`DiskRecordStore::open_fresh`]
//! wipes it and the log replays every entry into it at start, on top of the newest
//! catalog snapshot's records read in place ([`blocks::BlockTable`], ADR 0009: the
//! snapshot is the base, the LSM tree and the slot file hold only what was written
//! since). So there is nothing to recover after a crash and nothing needs to be durable,
//! and records of a batch that was admitted but never committed vanish with the next
//! start: the tree's journal is never synced. While running, reads filter records by the committed size, as they did in
//! memory.
//!
//! One keyspace, each key prefixed with its space's tag, so one write batch writes a
//! publication and all its lookups atomically. It lives in `DATA/projection/` (the
//! directory name is part of the on-disk layout).
//!
//! May import: [`slots`], `storage::durable`, the storage error and the `catalog` root
//! re-exports.

pub mod blocks;
pub mod filter;
pub mod slots;

use std::path::Path;

use crate::catalog::{KeyValue, Put, RecordError, RecordStore, Scan, Space};
use crate::storage::durable::create_private_dir_all;
use crate::storage::StorageError;
use slots::SlotFile;

/// The LSM tree's block cache. Reads are mostly recent entries (the gates, in the
/// memtable) and one page of queries; a larger cache only buys memory.
pub const CACHE_BYTES: u64 = 8 << 20;

/// The most journal the LSM tree keeps on disk before it flushes memtables (fjall's
/// smallest setting): bounds the store's disk beyond the records themselves.
pub const JOURNAL_BYTES: u64 = 64 << 20;

/// fjall's background threads: one rotates and flushes memtables, the other compacts
/// (see [`DiskRecordStore::open_fresh`]).
pub const WORKER_THREADS: usize = 2;

/// Sealed memtables fjall lets wait for a flush before it stalls writers (its own
/// constant, `Keyspace::local_backpressure`; recorded here for the memory bound).
pub const SEALED_MEMTABLES: u64 = 4;

/// The LSM tree's memtable: the newest writes, in memory until they are flushed as a
/// sorted table. With the cache, this bounds the store's memory whatever the log's size.
pub const MEMTABLE_BYTES: u64 = 8 << 20;

/// Makes an empty record store each time it is called: where a one-off check puts the
/// records it rebuilds (in memory, or [`DiskRecordStore::scratch`] on disk).
pub type FreshRecords = dyn Fn() -> Result<Box<dyn RecordStore>, StorageError> + Send + Sync;

/// Empty stores in scratch directories under `parent` ([`DiskRecordStore::scratch`]).
pub fn scratch_records(parent: std::path::PathBuf) -> std::sync::Arc<FreshRecords> {
    std::sync::Arc::new(move || {
        Ok(Box::new(DiskRecordStore::scratch(&parent)?) as Box<dyn RecordStore>)
    })
}

/// The on-disk record store: publication records (the bulk, written once, keyed by
/// leaf index) in a [`SlotFile`], everything else in an LSM tree.
pub struct DiskRecordStore {
    db: fjall::Database,
    tree: fjall::Keyspace,
    publications: SlotFile,
    /// The records below every write (a snapshot's, read in place), if any.
    base: Option<Box<dyn RecordStore>>,
    /// The directory of a [`DiskRecordStore::scratch`] store, removed when the store is
    /// dropped. Last, so that it goes after the tree and the slot file are closed.
    scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for DiskRecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskRecordStore")
            .field("len", &self.tree.approximate_len())
            .finish()
    }
}

fn backend(e: fjall::Error) -> RecordError {
    RecordError::Backend(e.to_string())
}

fn tagged(space: Space, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(space.tag());
    out.extend_from_slice(key);
    out
}

/// The first key after every key of `space`.
fn space_end(space: Space) -> Vec<u8> {
    vec![space.tag() + 1]
}

impl DiskRecordStore {
    /// Deletes whatever is at `dir` and opens an empty store there.
    pub fn open_fresh(dir: &Path) -> Result<DiskRecordStore, StorageError> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(format!("removing {}", dir.display()), e)),
        }
        // The tree's own directory too: fjall creates what is inside with the umask's modes,
        // out of reach of anyone else behind this 0700 directory.
        let records = dir.join("records");
        create_private_dir_all(&records)
            .map_err(|e| StorageError::io(format!("creating {}", records.display()), e))?;
        let publications = SlotFile::create(dir, "publications")?;
        // Nothing here needs to survive a crash (the store is rebuilt at start), so the
        // journal is never synced. Two worker threads, not one: fjall's first worker only
        // rotates and flushes memtables when there are two, and holds writers back once
        // [`SEALED_MEMTABLES`] are sealed. With one worker, a compaction of tens of
        // seconds left the active memtable growing at the writer's pace (fjall's
        // backpressure counts sealed memtables, not the active one): `fsck --full`
        // loading a 1 M-entry snapshot peaked at 716 MB.
        let db = fjall::Database::builder(&records)
            .cache_size(CACHE_BYTES)
            .manual_journal_persist(true)
            .worker_threads(WORKER_THREADS)
            .max_journaling_size(JOURNAL_BYTES)
            .open()
            .map_err(|e| StorageError::Database(format!("opening {}: {e}", dir.display())))?;
        let tree = db
            .keyspace("projection", || {
                fjall::KeyspaceCreateOptions::default()
                    .manual_journal_persist(true)
                    .max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(|e| StorageError::Database(e.to_string()))?;
        Ok(DiskRecordStore {
            db,
            tree,
            publications,
            base: None,
            scratch: None,
        })
    }

    /// An empty store in a new private directory under `parent` (created if missing),
    /// removed when the store is dropped. For the one-off replays (`fsck --full`,
    /// `replay`, `monitor --audit`) whose records would not fit in memory at tens of
    /// millions of entries: their memory stays that of the memtable and cache. A process
    /// killed before the drop leaves its directory (named `replay-*`) behind.
    pub fn scratch(parent: &Path) -> Result<DiskRecordStore, StorageError> {
        create_private_dir_all(parent)
            .map_err(|e| StorageError::io(format!("creating {}", parent.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix("replay-")
            .tempdir_in(parent)
            .map_err(|e| {
                StorageError::io(format!("creating a directory in {}", parent.display()), e)
            })?;
        let mut store = DiskRecordStore::open_fresh(&dir.path().join("projection"))?;
        store.scratch = Some(dir);
        Ok(store)
    }
}

/// The leaf index a `Publications` key encodes (8 bytes, big-endian).
fn slot_index(key: &[u8]) -> Result<u64, RecordError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| RecordError::Corrupt("a publication key is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

fn slot_error(e: StorageError) -> RecordError {
    RecordError::Backend(e.to_string())
}

impl DiskRecordStore {
    /// `Publications` in key order from `start` (inclusive) to `end` (exclusive).
    fn scan_publications(&self, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        let first = match start.len() {
            0 => Ok(0),
            _ => slot_index(start),
        };
        let last = match (end, self.publications.end().map_err(slot_error)) {
            (_, Err(e)) => Err(e),
            (None, Ok(n)) => Ok(n),
            (Some(e), Ok(n)) => slot_index(e).map(|e| e.min(n)),
        };
        let (first, last) = match (first, last) {
            (Ok(f), Ok(l)) => (f, l),
            (Err(e), _) | (_, Err(e)) => return Box::new(std::iter::once(Err(e))),
        };
        Box::new((first..last).filter_map(move |i| {
            match self.publications.get(i).map_err(slot_error) {
                Ok(Some(v)) => Some(Ok((i.to_be_bytes().to_vec(), v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }
}

impl DiskRecordStore {
    /// The value written to this store since it was opened (not the base's).
    fn get_written(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        if space == Space::Publications {
            return self.publications.get(slot_index(key)?).map_err(slot_error);
        }
        Ok(self
            .tree
            .get(tagged(space, key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    /// The records written to this store since it was opened (not the base's).
    fn scan_written(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        if space == Space::Publications {
            return self.scan_publications(start, end);
        }
        let start = tagged(space, start);
        let end = end.map_or_else(|| space_end(space), |e| tagged(space, e));
        if end <= start {
            return Box::new(std::iter::empty());
        }
        Box::new(self.tree.range(start..end).map(|kv| {
            let (k, v) = kv.into_inner().map_err(backend)?;
            Ok((k[1..].to_vec(), v.to_vec()))
        }))
    }
}

/// Two ordered scans as one: every key once, `over`'s value where both hold it.
struct Merged<'a> {
    over: std::iter::Peekable<Scan<'a>>,
    under: std::iter::Peekable<Scan<'a>>,
}

impl Iterator for Merged<'_> {
    type Item = Result<KeyValue, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.over.peek(), self.under.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(_), None) => std::cmp::Ordering::Less,
            (_, Some(Err(_))) | (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(Ok((a, _))), Some(Ok((b, _)))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => self.over.next(),
            std::cmp::Ordering::Greater => self.under.next(),
            std::cmp::Ordering::Equal => {
                self.under.next();
                self.over.next()
            }
        }
    }
}

/// Read-only records in layers: a delta snapshot's table (`over`) on top of the
/// snapshots below it (`under`). A key `over` holds is answered from it (an entry a
/// decision updated after `under` was written), any other from `under`: the records as
/// they were at `over`'s size.
pub struct Stacked {
    over: Box<dyn RecordStore>,
    under: Box<dyn RecordStore>,
}

impl Stacked {
    /// `over` laid on top of `under`.
    pub fn new(over: Box<dyn RecordStore>, under: Box<dyn RecordStore>) -> Stacked {
        Stacked { over, under }
    }
}

impl std::fmt::Debug for Stacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stacked").finish_non_exhaustive()
    }
}

impl RecordStore for Stacked {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        match self.over.get(space, key)? {
            Some(v) => Ok(Some(v)),
            None => self.under.get(space, key),
        }
    }

    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        Box::new(Merged {
            over: self.over.scan(space, start, end).peekable(),
            under: self.under.scan(space, start, end).peekable(),
        })
    }

    fn write(&mut self, _batch: Vec<Put>) -> Result<(), RecordError> {
        Err(RecordError::Backend(
            "a snapshot's records are read-only".into(),
        ))
    }
}

impl RecordStore for DiskRecordStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        let written = self.get_written(space, key)?;
        match (&written, &self.base) {
            (None, Some(base)) => base.get(space, key),
            _ => Ok(written),
        }
    }

    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        let written = self.scan_written(space, start, end);
        match &self.base {
            Some(base) => Box::new(Merged {
                over: written.peekable(),
                under: base.scan(space, start, end).peekable(),
            }),
            None => written,
        }
    }
    fn write(&mut self, batch: Vec<Put>) -> Result<(), RecordError> {
        // Not atomic across the two files, and need not be: a failed write fails the
        // log, and the store is rebuilt from the log at the next start.
        let mut b = self.db.batch();
        for put in batch {
            if put.space == Space::Publications {
                let index = slot_index(&put.key)?;
                self.publications
                    .put(index, &put.value)
                    .map_err(slot_error)?;
            } else {
                b.insert(&self.tree, tagged(put.space, &put.key), put.value);
            }
        }
        b.commit().map_err(backend)
    }

    fn clear(&mut self) -> Result<(), RecordError> {
        self.base = None;
        self.tree.clear().map_err(backend)?;
        self.publications.clear().map_err(slot_error)
    }

    fn layer_over(&mut self, base: Box<dyn RecordStore>) -> Result<(), Box<dyn RecordStore>> {
        let empty = self.base.is_none()
            && self.tree.is_empty().unwrap_or(false)
            && self.publications.end().is_ok_and(|n| n == 0);
        if !empty {
            return Err(base);
        }
        self.base = Some(base);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_starts_empty_and_spaces_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projection");
        let mut s = DiskRecordStore::open_fresh(&path).unwrap();
        let put = |space, key: &[u8]| Put {
            space,
            key: key.to_vec(),
            value: vec![1],
        };
        s.write(vec![put(Space::Entries, b"a"), put(Space::EntryIds, b"b")])
            .unwrap();
        assert_eq!(s.get(Space::Entries, b"a").unwrap(), Some(vec![1]));
        assert_eq!(s.get(Space::EntryIds, b"a").unwrap(), None);
        let all: Vec<_> = s.scan(Space::Entries, b"", None).collect();
        assert_eq!(all, vec![Ok((b"a".to_vec(), vec![1]))]);
        assert_eq!(s.scan(Space::Entries, b"b", Some(b"a")).count(), 0);
        drop(s);
        let s = DiskRecordStore::open_fresh(&path).unwrap();
        assert_eq!(s.get(Space::Entries, b"a").unwrap(), None);
    }

    /// A delta stacked on its base answers every get and scan as one store written
    /// with the base's records and then the delta's.
    #[test]
    fn stacked_tables_answer_as_if_the_lower_was_written_first() {
        use crate::catalog::MemoryStore;
        let put = |space: Space, i: u64, v: &str| Put {
            space,
            key: i.to_be_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        };
        let (mut under, mut over, mut both) = (
            MemoryStore::default(),
            MemoryStore::default(),
            MemoryStore::default(),
        );
        let lower: Vec<Put> = [Space::Publications, Space::Entries]
            .into_iter()
            .flat_map(|s| (0..10).map(move |i| put(s, i, "base")))
            .collect();
        let upper: Vec<Put> = [Space::Entries, Space::Names]
            .into_iter()
            .flat_map(|s| [2, 7, 10, 11].map(|i| put(s, i, "delta")))
            .collect();
        under.write(lower.clone()).unwrap();
        over.write(upper.clone()).unwrap();
        both.write(lower).unwrap();
        both.write(upper).unwrap();
        let stacked = Stacked::new(Box::new(over), Box::new(under));
        let k = |i: u64| i.to_be_bytes().to_vec();
        for space in Space::ALL {
            for i in 0..13 {
                assert_eq!(stacked.get(space, &k(i)), both.get(space, &k(i)));
            }
            for (start, end) in [(vec![], None), (k(2), Some(k(8))), (k(9), None)] {
                let got: Vec<_> = stacked.scan(space, &start, end.as_deref()).collect();
                let want: Vec<_> = both.scan(space, &start, end.as_deref()).collect();
                assert_eq!(got, want, "{space:?}");
            }
        }
        let mut stacked = stacked;
        assert!(stacked.write(vec![put(Space::Entries, 1, "x")]).is_err());
    }

    #[test]
    fn a_store_layered_over_a_base_answers_as_if_the_base_was_written_first() {
        use crate::catalog::MemoryStore;
        let dir = tempfile::tempdir().unwrap();
        let mut disk = DiskRecordStore::open_fresh(&dir.path().join("projection")).unwrap();
        let mut both = MemoryStore::default();
        let mut base = MemoryStore::default();
        let put = |space: Space, i: u64, v: &str| Put {
            space,
            key: i.to_be_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        };
        let under: Vec<Put> = [Space::Publications, Space::Entries, Space::Names]
            .into_iter()
            .flat_map(|s| (0..20).step_by(2).map(move |i| put(s, i, "base")))
            .collect();
        base.write(under.clone()).unwrap();
        both.write(under).unwrap();
        assert!(disk.layer_over(Box::new(base)).is_ok());
        // Later writes: new keys between and after the base's, and overwrites of base keys.
        let over: Vec<Put> = [Space::Publications, Space::Entries, Space::Subjects]
            .into_iter()
            .flat_map(|s| [3, 4, 25].map(|i| put(s, i, "over")))
            .collect();
        disk.write(over.clone()).unwrap();
        both.write(over).unwrap();
        let k = |i: u64| i.to_be_bytes().to_vec();
        for space in Space::ALL {
            for (start, end) in [
                (vec![], None),
                (k(3), Some(k(11))),
                (k(4), Some(k(5))),
                (k(30), None),
            ] {
                let a: Vec<_> = disk.scan(space, &start, end.as_deref()).collect();
                let b: Vec<_> = both.scan(space, &start, end.as_deref()).collect();
                assert_eq!(a, b, "{space:?} {start:?}..{end:?}");
            }
            for i in [0, 3, 4, 5, 18, 25, 40] {
                assert_eq!(
                    disk.get(space, &k(i)).unwrap(),
                    both.get(space, &k(i)).unwrap()
                );
            }
        }
        // Only an empty store takes a base; clearing drops it.
        assert!(disk.layer_over(Box::new(MemoryStore::default())).is_err());
        disk.clear().unwrap();
        assert_eq!(disk.get(Space::Names, &k(0)).unwrap(), None);
    }

    #[test]
    fn publications_scan_in_key_order_like_the_memory_store() {
        use crate::catalog::MemoryStore;
        let dir = tempfile::tempdir().unwrap();
        let mut disk = DiskRecordStore::open_fresh(&dir.path().join("projection")).unwrap();
        let mut memory = MemoryStore::default();
        let puts = |indices: &[u64]| -> Vec<Put> {
            indices
                .iter()
                .map(|i| Put {
                    space: Space::Publications,
                    key: i.to_be_bytes().to_vec(),
                    value: format!("record {i}").into_bytes(),
                })
                .collect()
        };
        for batch in [puts(&[2, 5]), puts(&[9, 300])] {
            disk.write(batch.clone()).unwrap();
            memory.write(batch).unwrap();
        }
        let k = |i: u64| i.to_be_bytes().to_vec();
        for (start, end) in [
            (vec![], None),
            (k(3), Some(k(9))),
            (k(5), Some(k(6))),
            (k(9), Some(k(2))),
            (k(301), None),
        ] {
            let a: Vec<_> = disk
                .scan(Space::Publications, &start, end.as_deref())
                .collect();
            let b: Vec<_> = memory
                .scan(Space::Publications, &start, end.as_deref())
                .collect();
            assert_eq!(a, b, "{start:?}..{end:?}");
        }
        assert_eq!(
            disk.get(Space::Publications, &k(300)).unwrap(),
            Some(b"record 300".to_vec())
        );
        assert_eq!(disk.get(Space::Publications, &k(4)).unwrap(), None);
        assert!(disk.get(Space::Publications, b"short").is_err());
    }
}

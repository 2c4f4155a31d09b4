//! Where the catalog state keeps its per-publication records: publications, entries and
//! the lookups derived from them. They grow with the log, so they sit behind
//! [`RecordStore`], a small ordered key-value trait: [`MemoryStore`] (the default: tests,
//! replay, the monitor) keeps them in BTreeMaps, and the server passes an on-disk store
//! with a bounded cache (in `storage`), so its memory does not grow with the log.
//! The admin-side state (authority, grants, policies, revocations, keys) grows only with
//! admin operations and stays in `Catalog` itself.
//!
//! The catalog stays pure: it only sees this trait, never a file or a database.
//!
//! Layout (every key in its [`Space`]; integers big-endian, so byte order is index order):
//! - `Publications`: leaf index → [`PublicationRecord`]
//! - `Entries`: publication leaf index → [`EntryRecord`]
//! - `EntryIds`: entry local id → publication leaf index
//! - `Subjects`: subject digest, 0, leaf index → (empty)
//! - `Names`: subject name, 0, leaf index → (empty)
//!
//! Values are serde_json: the records already serialize to JSON for the canonical state,
//! the encoding is deterministic for them (no maps with unordered keys, no floats), and a
//! value read back is the record written, which the cross-backend test checks.
//!
//! May import `catalog::error` and, in `model`, `records` and `entry`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entry::EntryRecord;
use super::records::PublicationRecord;
use crate::catalog::error::RecordError;

/// A key space of the record store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Leaf index → publication record.
    Publications,
    /// Publication leaf index → entry record.
    Entries,
    /// Entry local id → publication leaf index.
    EntryIds,
    /// Subject digest, 0, leaf index → nothing.
    Subjects,
    /// Subject name, 0, leaf index → nothing.
    Names,
}

impl Space {
    /// Every space, in tag order.
    pub const ALL: [Space; 5] = [
        Space::Publications,
        Space::Entries,
        Space::EntryIds,
        Space::Subjects,
        Space::Names,
    ];

    /// A one-byte tag, for stores that keep every space in one keyspace.
    pub fn tag(self) -> u8 {
        match self {
            Space::Publications => b'P',
            Space::Entries => b'E',
            Space::EntryIds => b'I',
            Space::Subjects => b'S',
            Space::Names => b'N',
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An ordered scan of one space.
pub type Scan<'a> = Box<dyn Iterator<Item = Result<KeyValue, RecordError>> + 'a>;

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The space.
    pub space: Space,
    /// The key within it.
    pub key: Vec<u8>,
    /// The new value.
    pub value: Vec<u8>,
}

/// A minimal ordered key-value store, one keyspace per [`Space`].
pub trait RecordStore: Send + Sync + std::fmt::Debug {
    /// The value under `key`, if any.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError>;
    /// The keys in `[start, end)` (`end` `None`: to the end of the space), in byte order.
    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_>;
    /// Writes every put, all or none.
    fn write(&mut self, batch: Vec<Put>) -> Result<(), RecordError>;
    /// Removes every record of every space. Used when a snapshot loaded into the store
    /// is refused after all, before the catalog is rebuilt from leaf 0. A store that
    /// cannot MUST return an error (the default), never leave records behind.
    fn clear(&mut self) -> Result<(), RecordError> {
        Err(RecordError::Backend(
            "this record store cannot be cleared".into(),
        ))
    }
    /// Takes `base` (a read-only store: a snapshot's records where they lie on disk) as
    /// the records below every later write, instead of having them copied in; gives it
    /// back when this store cannot (the default), and the caller copies them.
    ///
    /// A store that accepts MUST be empty when called, and MUST from then on answer every
    /// `get` and `scan` as if each record of `base` had been written to it first and every
    /// later write after (a later write of a key wins over `base`'s); `clear` MUST drop
    /// `base` too. It MUST NOT write to `base`.
    fn layer_over(&mut self, base: Box<dyn RecordStore>) -> Result<(), Box<dyn RecordStore>> {
        Err(base)
    }
}

/// The in-memory store: one BTreeMap per space.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    spaces: [BTreeMap<Vec<u8>, Vec<u8>>; 5],
}

impl RecordStore for MemoryStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        Ok(self.spaces[space.slot()].get(key).cloned())
    }

    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        // An empty or reversed range would make BTreeMap::range panic.
        if end.is_some_and(|e| e <= start) {
            return Box::new(std::iter::empty());
        }
        Box::new(
            self.spaces[space.slot()]
                .range::<[u8], _>((Bound::Included(start), upper))
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        )
    }

    fn write(&mut self, batch: Vec<Put>) -> Result<(), RecordError> {
        for put in batch {
            self.spaces[put.space.slot()].insert(put.key, put.value);
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), RecordError> {
        *self = MemoryStore::default();
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|e| RecordError::Corrupt(format!("encoding a record: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RecordError::Corrupt(format!("decoding a record: {e}")))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode_index(bytes: &[u8]) -> Result<u64, RecordError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| RecordError::Corrupt("a leaf index is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// `text`, 0, then `index` (if any): subjects and names are never empty and hold no NUL
/// (they are validated tokens), and the scans below also check the key's length, so one
/// text's keys never run into another's.
fn text_key(text: &str, index: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(text.len() + 9);
    key.extend_from_slice(text.as_bytes());
    key.push(0);
    if let Some(i) = index {
        key.extend_from_slice(&index_key(i));
    }
    key
}

/// A chunk of one space's records as of a tree size (see [`Records::snapshot_chunk`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The records kept, in key order, values as stored (an entry's decisions at or
    /// after the size removed).
    pub records: Vec<KeyValue>,
    /// The last key scanned, to continue from; `None` once the space is exhausted.
    pub next: Option<Vec<u8>>,
}

/// The leaf index a record of `space` belongs to: the key's for publications and
/// entries, the value's for entry ids, the key's last 8 bytes for subjects and names.
fn record_index(space: Space, key: &[u8], value: &[u8]) -> Result<u64, RecordError> {
    match space {
        Space::Publications | Space::Entries => decode_index(key),
        Space::EntryIds => decode_index(value),
        Space::Subjects | Space::Names => {
            let split = key.len().checked_sub(9).filter(|&n| key[n] == 0);
            let n = split.ok_or_else(|| RecordError::Corrupt("a text key is malformed".into()))?;
            decode_index(&key[n + 1..])
        }
    }
}

/// An entry record as stored, with its decisions at or after `at` removed.
fn entry_as_of(value: Vec<u8>, at: u64) -> Result<Vec<u8>, RecordError> {
    let mut entry: EntryRecord = decode(&value)?;
    let before = entry.decisions.len();
    entry.decisions.retain(|d| d.leaf_index < at);
    if entry.decisions.len() == before {
        Ok(value)
    } else {
        encode(&entry)
    }
}

/// The records, typed, over a [`RecordStore`].
#[derive(Debug)]
pub struct Records {
    store: Box<dyn RecordStore>,
    /// The entry read last, decoded: applying a decision reads its entry three or four
    /// times (the gate, the freshness and identity rules, then the write), and a clone
    /// costs less than decoding the stored JSON again. Only `Records` writes the store
    /// (it owns it), and both its writes clear this, so it never holds a stale entry.
    last_entry: Mutex<Option<(u64, EntryRecord)>>,
    /// The entries updated since a size, for snapshots of the leaves after an older
    /// snapshot (deltas). Behind a lock because the snapshot thread, which reads the
    /// catalog under its read lock, forgets what a delta it wrote covers.
    updates: Mutex<EntryUpdates>,
}

/// The most entry updates [`Records`] remembers (16 bytes each). Past it they are
/// forgotten, and the next snapshot is a whole one: memory stays bounded whatever the
/// log and however long no snapshot is written.
pub const MAX_ENTRY_UPDATES: usize = 1 << 20;

/// Which entries decisions updated since a size, so that a delta snapshot finds them
/// without reading every entry: a decision is the only thing that rewrites a record
/// (`Records::put_entry`); every other record is written once, by the publication leaf
/// whose index it carries.
#[derive(Clone, Debug, Default)]
struct EntryUpdates {
    /// Every update by a leaf at or after this is in `list`.
    since: u64,
    /// (the decision's leaf index, the updated entry's publication index), in leaf order.
    list: Vec<(u64, u64)>,
}

impl EntryUpdates {
    fn note(&mut self, leaf: u64, index: u64) {
        if self.list.len() >= MAX_ENTRY_UPDATES {
            self.list.clear();
            self.since = leaf.saturating_add(1);
            return;
        }
        self.list.push((leaf, index));
    }

    fn forget_below(&mut self, size: u64) {
        self.list.retain(|(leaf, _)| *leaf >= size);
        self.since = self.since.max(size);
    }

    /// The publication indices below `from` of the entries leaves in `[from, below)`
    /// updated, sorted, once each; `None` if updates from `from` on were forgotten.
    fn below_from(&self, from: u64, below: u64) -> Option<Vec<u64>> {
        if self.since > from {
            return None;
        }
        let mut found: Vec<u64> = self
            .list
            .iter()
            .filter(|(leaf, index)| (from..below).contains(leaf) && *index < from)
            .map(|(_, index)| *index)
            .collect();
        found.sort_unstable();
        found.dedup();
        Some(found)
    }
}

/// What a clone holds when copying the records failed: every access reports the failure,
/// so a clone never silently misses records (and `Clone` needs no panic).
#[derive(Debug)]
struct FailedCopy(RecordError);

impl RecordStore for FailedCopy {
    fn get(&self, _: Space, _: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        Err(self.0.clone())
    }

    fn scan(&self, _: Space, _: &[u8], _: Option<&[u8]>) -> Scan<'_> {
        Box::new(std::iter::once(Err(self.0.clone())))
    }

    fn write(&mut self, _: Vec<Put>) -> Result<(), RecordError> {
        Err(self.0.clone())
    }
}

/// A clone is a copy in a [`MemoryStore`], whatever the original's store: two catalogs
/// must never write to one store.
impl Clone for Records {
    fn clone(&self) -> Records {
        let copy = self
            .to_memory()
            .unwrap_or_else(|e| Records::new(Box::new(FailedCopy(e))));
        *copy.updates() = self.updates().clone();
        copy
    }
}

impl Default for Records {
    fn default() -> Records {
        Records::new(Box::new(MemoryStore::default()))
    }
}

impl Records {
    /// Records kept in `store`, which must be empty (the catalog applies from leaf 0).
    pub fn new(store: Box<dyn RecordStore>) -> Records {
        Records {
            store,
            last_entry: Mutex::new(None),
            updates: Mutex::new(EntryUpdates::default()),
        }
    }

    /// Records over `store`, which holds the records of the first `size` leaves (a
    /// restored snapshot): updates are remembered from `size` on.
    pub fn restored(store: Box<dyn RecordStore>, size: u64) -> Records {
        Records {
            updates: Mutex::new(EntryUpdates {
                since: size,
                list: Vec::new(),
            }),
            ..Records::new(store)
        }
    }

    fn updates(&self) -> std::sync::MutexGuard<'_, EntryUpdates> {
        self.updates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the entry updates of leaves below `size` (a snapshot at `size` holds
    /// them).
    pub fn forget_updates_below(&self, size: u64) {
        self.updates().forget_below(size);
    }

    /// The publication indices below `from` of the entries that leaves in
    /// `[from, below)` updated, sorted; `None` if they are no longer known (a whole
    /// snapshot is then needed).
    pub fn updated_entries(&self, from: u64, below: u64) -> Option<Vec<u64>> {
        self.updates().below_from(from, below)
    }

    /// The store the records are kept in.
    pub fn into_store(self) -> Box<dyn RecordStore> {
        self.store
    }

    /// A copy of every record in a fresh [`MemoryStore`].
    pub fn to_memory(&self) -> Result<Records, RecordError> {
        let mut copy = MemoryStore::default();
        for space in Space::ALL {
            let batch = self
                .store
                .scan(space, &[], None)
                .map(|kv| kv.map(|(key, value)| Put { space, key, value }))
                .collect::<Result<Vec<_>, _>>()?;
            copy.write(batch)?;
        }
        Ok(Records::new(Box::new(copy)))
    }

    /// The publication of leaf `index`.
    pub fn publication(&self, index: u64) -> Result<Option<PublicationRecord>, RecordError> {
        self.store
            .get(Space::Publications, &index_key(index))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The entry created by publication leaf `index`.
    pub fn entry(&self, index: u64) -> Result<Option<EntryRecord>, RecordError> {
        // `try_lock`: a reader never waits for another one; it decodes instead.
        if let Ok(last) = self.last_entry.try_lock() {
            if let Some((i, entry)) = last.as_ref() {
                if *i == index {
                    return Ok(Some(entry.clone()));
                }
            }
        }
        let entry: Option<EntryRecord> = self
            .store
            .get(Space::Entries, &index_key(index))?
            .map(|v| decode(&v))
            .transpose()?;
        if let (Some(e), Ok(mut last)) = (&entry, self.last_entry.try_lock()) {
            *last = Some((index, e.clone()));
        }
        Ok(entry)
    }

    /// Forgets the entry read last; every write calls it first.
    fn forget_last_entry(&mut self) {
        // A poisoned lock still gives its value to the one `&mut` owner.
        match self.last_entry.get_mut() {
            Ok(last) => *last = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// The publication index of the entry with local id `id`.
    pub fn entry_index(&self, id: &str) -> Result<Option<u64>, RecordError> {
        self.store
            .get(Space::EntryIds, id.as_bytes())?
            .map(|v| decode_index(&v))
            .transpose()
    }

    /// Scans the `(text, index)` keys of `space` for `text`, from index `from` on.
    fn text_indices(
        &self,
        space: Space,
        text: &str,
        from: u64,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        let start = text_key(text, Some(from));
        let mut end = text_key(text, None);
        // The key right after every `text, 0, ...`: the separator byte bumped to 1.
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let len = end.len() + 8;
        let prefix = end.len();
        self.store
            .scan(space, &start, Some(&end))
            .filter_map(move |kv| match kv {
                Ok((key, _)) if key.len() == len => Some(decode_index(&key[prefix..])),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
    }

    /// Publication indices of subject `digest`, in leaf order, from `from` on.
    pub fn subject_indices(
        &self,
        digest: &str,
        from: u64,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        self.text_indices(Space::Subjects, digest, from)
    }

    /// Publication indices of subjects named `name`, in leaf order, from `from` on.
    pub fn name_indices(
        &self,
        name: &str,
        from: u64,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        self.text_indices(Space::Names, name, from)
    }

    fn range<T: DeserializeOwned>(
        &self,
        space: Space,
        from: u64,
        below: u64,
    ) -> impl Iterator<Item = Result<(u64, T), RecordError>> + '_ {
        self.store
            .scan(space, &index_key(from), Some(&index_key(below)))
            .map(|kv| {
                let (key, value) = kv?;
                Ok((decode_index(&key)?, decode(&value)?))
            })
    }

    /// Entries with publication index in `[from, below)`, in order.
    pub fn entries(
        &self,
        from: u64,
        below: u64,
    ) -> impl Iterator<Item = Result<(u64, EntryRecord), RecordError>> + '_ {
        self.range(Space::Entries, from, below)
    }

    /// The publication indices of entries in `[from, below)`, in order.
    pub fn entry_indices(
        &self,
        from: u64,
        below: u64,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        self.store
            .scan(Space::Entries, &index_key(from), Some(&index_key(below)))
            .map(|kv| decode_index(&kv?.0))
    }

    /// Every (subject digest, publication index), by digest in byte order, then in leaf
    /// order.
    pub fn subject_keys(&self) -> impl Iterator<Item = Result<(String, u64), RecordError>> + '_ {
        self.store.scan(Space::Subjects, &[], None).map(|kv| {
            let (key, _) = kv?;
            let split = key.len().checked_sub(9).filter(|&n| key[n] == 0);
            let n =
                split.ok_or_else(|| RecordError::Corrupt("a subject key is malformed".into()))?;
            let digest = String::from_utf8(key[..n].to_vec())
                .map_err(|_| RecordError::Corrupt("a subject key is not UTF-8".into()))?;
            Ok((digest, decode_index(&key[n + 1..])?))
        })
    }

    /// Records a publication and the entry it creates (local id `id`), all or nothing.
    pub fn add_publication(
        &mut self,
        record: &PublicationRecord,
        id: &str,
    ) -> Result<(), RecordError> {
        self.forget_last_entry();
        let index = record.leaf_index;
        let entry = EntryRecord {
            id: id.to_string(),
            publication_index: index,
            subject_digest: record.subject_digest.clone(),
            decisions: Vec::new(),
        };
        let key = index_key(index).to_vec();
        let put = |space, key, value| Put { space, key, value };
        self.store.write(vec![
            put(Space::Publications, key.clone(), encode(record)?),
            put(Space::Entries, key.clone(), encode(&entry)?),
            put(Space::EntryIds, id.as_bytes().to_vec(), key),
            put(
                Space::Subjects,
                text_key(&record.subject_digest, Some(index)),
                Vec::new(),
            ),
            put(
                Space::Names,
                text_key(&record.subject_name, Some(index)),
                Vec::new(),
            ),
        ])
    }

    /// Up to `limit` records of `space` scanned after the key `after` (from the first
    /// if `None`), keeping those the first `at` leaves wrote, with an entry's decisions
    /// at or after `at` removed. Every record is tagged by its leaf index and only ever
    /// appended to, so chunks read at different times (more leaves applied in between)
    /// still give exactly the records as of `at`.
    pub fn snapshot_chunk(
        &self,
        space: Space,
        after: Option<&[u8]>,
        at: u64,
        limit: usize,
    ) -> Result<SnapshotChunk, RecordError> {
        // The first key after `after`: the next index for the spaces keyed by an 8-byte
        // index (a store may require such keys to be 8 bytes), else `after` followed by
        // a zero byte.
        let start = match after {
            None => Vec::new(),
            Some(a) if matches!(space, Space::Publications | Space::Entries) => {
                match decode_index(a)?.checked_add(1) {
                    Some(next) => index_key(next).to_vec(),
                    None => return Ok(SnapshotChunk::default()),
                }
            }
            Some(a) => {
                let mut s = a.to_vec();
                s.push(0);
                s
            }
        };
        let mut chunk = SnapshotChunk::default();
        let mut scanned = 0;
        for kv in self.store.scan(space, &start, None) {
            let (key, value) = kv?;
            scanned += 1;
            if record_index(space, &key, &value)? < at {
                let value = match space {
                    Space::Entries => entry_as_of(value, at)?,
                    _ => value,
                };
                chunk.records.push((key.clone(), value));
            }
            if scanned >= limit.max(1) {
                chunk.next = Some(key);
                return Ok(chunk);
            }
        }
        Ok(chunk)
    }

    /// Up to `limit` records of `space` (publications or entries) that the leaves in
    /// `[from, at)` wrote or updated, as of `at`, after the key `after`, in key order:
    /// the body of a delta snapshot on top of one at `from`. `updated` is
    /// [`Records::updated_entries`] for the same range: the older entries decisions in
    /// it updated, which come first in key order. The lookups are
    /// [`Records::delta_lookups`].
    pub fn delta_chunk(
        &self,
        space: Space,
        range: (u64, u64),
        updated: &[u64],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SnapshotChunk, RecordError> {
        let (from, at) = range;
        if !matches!(space, Space::Publications | Space::Entries) {
            return Err(RecordError::Corrupt(format!(
                "{space:?} records are not read by index"
            )));
        }
        let next = after
            .map(decode_index)
            .transpose()?
            .map(|a| a.saturating_add(1));
        let limit = limit.max(1);
        let mut chunk = SnapshotChunk::default();
        let older = match space {
            Space::Entries => updated,
            _ => &[],
        };
        let first_older = older.partition_point(|i| next.is_some_and(|n| *i < n));
        for &index in &older[first_older..] {
            if chunk.records.len() >= limit {
                chunk.next = chunk.records.last().map(|(k, _)| k.clone());
                return Ok(chunk);
            }
            let key = index_key(index).to_vec();
            let value = self.store.get(space, &key)?.ok_or_else(|| {
                RecordError::Corrupt(format!("the updated entry {index} is missing"))
            })?;
            chunk.records.push((key, entry_as_of(value, at)?));
        }
        let start = next.unwrap_or(from).max(from);
        if start >= at {
            return Ok(chunk);
        }
        for kv in self
            .store
            .scan(space, &index_key(start), Some(&index_key(at)))
        {
            if chunk.records.len() >= limit {
                chunk.next = chunk.records.last().map(|(k, _)| k.clone());
                return Ok(chunk);
            }
            let (key, value) = kv?;
            let value = match space {
                Space::Entries => entry_as_of(value, at)?,
                _ => value,
            };
            chunk.records.push((key, value));
        }
        Ok(chunk)
    }

    /// Appends to `out`, unsorted, the lookup records of `space` (entry ids, subjects or
    /// names) that the publication leaves in `[from, below)` wrote: each is derived from
    /// its publication or entry, which is how `add_publication` wrote it.
    pub fn delta_lookups(
        &self,
        space: Space,
        from: u64,
        below: u64,
        out: &mut Vec<KeyValue>,
    ) -> Result<(), RecordError> {
        match space {
            Space::EntryIds | Space::Subjects => {
                for e in self.entries(from, below) {
                    let (index, entry) = e?;
                    out.push(match space {
                        Space::EntryIds => (entry.id.into_bytes(), index_key(index).to_vec()),
                        _ => (text_key(&entry.subject_digest, Some(index)), Vec::new()),
                    });
                }
            }
            Space::Names => {
                for p in self.range::<PublicationRecord>(Space::Publications, from, below) {
                    let (index, publication) = p?;
                    out.push((text_key(&publication.subject_name, Some(index)), Vec::new()));
                }
            }
            Space::Publications | Space::Entries => {
                return Err(RecordError::Corrupt(format!(
                    "{space:?} records are not lookups"
                )))
            }
        }
        Ok(())
    }

    /// Replaces an entry (a decision was appended to it).
    pub fn put_entry(&mut self, entry: &EntryRecord) -> Result<(), RecordError> {
        self.forget_last_entry();
        if let Some(decision) = entry.decisions.last() {
            let updates = match self.updates.get_mut() {
                Ok(u) => u,
                Err(poisoned) => poisoned.into_inner(),
            };
            updates.note(decision.leaf_index, entry.publication_index);
        }
        self.store.write(vec![Put {
            space: Space::Entries,
            key: index_key(entry.publication_index).to_vec(),
            value: encode(entry)?,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry read last is kept decoded, and every write forgets it: a read after a
    /// write sees the write.
    #[test]
    fn the_last_entry_read_is_never_stale() {
        let mut r = Records::default();
        let mut e = EntryRecord {
            decisions: Vec::new(),
            id: "0123".into(),
            publication_index: 7,
            subject_digest: format!("sha256:{}", "ab".repeat(32)),
        };
        assert_eq!(r.entry(7).unwrap(), None);
        r.put_entry(&e).unwrap();
        assert_eq!(r.entry(7).unwrap().as_ref(), Some(&e));
        assert_eq!(r.entry(7).unwrap().as_ref(), Some(&e));
        e.id = "4567".into();
        r.put_entry(&e).unwrap();
        assert_eq!(r.entry(7).unwrap().as_ref(), Some(&e));
        assert_eq!(r.entry(8).unwrap(), None);
        assert_eq!(r.clone().entry(7).unwrap().as_ref(), Some(&e));
    }

    /// Which entries a delta must carry: only updates by leaves in its range, of
    /// entries older than its base, once each; none known once they were forgotten.
    #[test]
    fn entry_updates_answer_for_a_range_or_not_at_all() {
        let mut u = EntryUpdates::default();
        for (leaf, index) in [(10, 3), (11, 9), (12, 3), (15, 14), (20, 1), (21, 16)] {
            u.note(leaf, index);
        }
        // (from, below) -> the entries below `from` that leaves in [from, below) updated.
        type Row<'a> = ((u64, u64), Option<&'a [u64]>);
        let table: [Row<'_>; 6] = [
            ((0, 100), Some(&[])),
            ((10, 13), Some(&[3, 9])),
            ((12, 21), Some(&[1, 3])),
            ((15, 22), Some(&[1, 14])),
            ((16, 22), Some(&[1])),
            ((22, 30), Some(&[])),
        ];
        for ((from, below), want) in table {
            assert_eq!(
                u.below_from(from, below).as_deref(),
                want,
                "{from}..{below}"
            );
        }
        u.forget_below(15);
        assert_eq!(u.below_from(12, 30), None, "forgotten below 15");
        assert_eq!(u.below_from(15, 30).as_deref(), Some(&[1, 14][..]));
        // Past the bound the list is dropped and answers only from after the leaf.
        let mut full = EntryUpdates {
            since: 0,
            list: vec![(1, 0); MAX_ENTRY_UPDATES],
        };
        full.note(50, 7);
        assert!(full.list.is_empty());
        assert_eq!(full.below_from(50, 60), None);
        assert_eq!(full.below_from(51, 60).as_deref(), Some(&[][..]));
    }

    /// A restored catalog knows no update before its size (the snapshot holds them);
    /// `put_entry` notes those after it (tested with decisions in `tests/snapshot.rs`).
    #[test]
    fn a_restore_knows_updates_from_its_size_on() {
        let r = Records::restored(Box::new(MemoryStore::default()), 40);
        assert_eq!(r.updated_entries(39, 50), None);
        assert_eq!(r.updated_entries(40, 50).as_deref(), Some(&[][..]));
        r.forget_updates_below(45);
        assert_eq!(r.updated_entries(40, 50), None);
    }

    #[test]
    fn text_scans_stay_within_their_text() {
        let mut s = MemoryStore::default();
        let keys = [("a", 1), ("a", 7), ("ab", 2), ("a\u{1}", 3), ("b", 4)];
        s.write(
            keys.iter()
                .map(|(t, i)| Put {
                    space: Space::Names,
                    key: text_key(t, Some(*i)),
                    value: Vec::new(),
                })
                .collect(),
        )
        .unwrap();
        let r = Records::new(Box::new(s));
        let got: Vec<u64> = r.name_indices("a", 0).map(Result::unwrap).collect();
        assert_eq!(got, [1, 7]);
        let got: Vec<u64> = r.name_indices("a", 2).map(Result::unwrap).collect();
        assert_eq!(got, [7]);
        assert_eq!(r.name_indices("c", 0).count(), 0);
    }

    #[test]
    fn empty_and_reversed_ranges_are_empty() {
        let r = Records::default();
        assert_eq!(r.entry_indices(5, 5).count(), 0);
        assert_eq!(r.entry_indices(9, 5).count(), 0);
    }
}

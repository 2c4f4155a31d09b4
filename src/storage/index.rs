//! The lookup index: leaf hash → leaf index and dedup key → leaf index, in 14 bytes per
//! key, rebuildable from the tiles.
//!
//! Why not sled: the two lookups took 422 bytes per leaf on disk in sled (1M leaves,
//! measured; sled's log-structured pages amplify small keys), thirteen hashes' worth,
//! where the engine's budget is two hashes per leaf beyond the entry. Here a record is
//! `[kind][first 8 bytes of the key][leaf index, 5 bytes big-endian]`, so both lookups
//! together cost 28 bytes per leaf (see docs/adr/0003-lookup-index.md).
//!
//! A record names a *candidate*: 8-byte prefixes can collide, so callers confirm each
//! candidate against the entry itself (`Log::find_leaf`, the sequencer's duplicate
//! check). The index can make a lookup miss only if it lost records, never answer wrong.
//!
//! Layout: sorted, immutable run files plus the newest records in memory. A run is
//! written and fsynced before the `MANIFEST` naming it is atomically replaced; the
//! manifest's `size` is the tree size its runs cover. Records still in memory are lost
//! by a crash and re-indexed from the tiles at open. Runs merge size-tiered (the newest
//! two merge while the older is at most twice the newer), so there are O(log n) runs;
//! each keeps every 128th key in memory, so a lookup reads one 1.8 KB block per run.
//! Merges run outside the lock; lookups meanwhile read the previous runs.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use super::durable::{create_dir_all_durable, replace_atomically, sync_dir};
use super::StorageError;

const LEAF_KIND: u8 = b'L';
const DEDUP_KIND: u8 = b'D';
/// Bytes per record: kind, 8-byte key prefix, 5-byte leaf index.
const RECORD: usize = 14;
/// Bytes of a record that are its lookup key (kind and prefix).
const PROBE: usize = 9;
/// Records per block; the first key of every block is kept in memory.
const FENCE_EVERY: usize = 128;
/// Records held in memory before they are written as a run (about 65,000 leaves).
const MEMORY_RECORDS: usize = 1 << 17;
/// Leaf indices fit in 5 bytes.
const MAX_INDEX: u64 = (1 << 40) - 1;
const MANIFEST: &str = "MANIFEST";
const MAGIC: &str = "srcos-catalog lookup index v1";

type Record = [u8; RECORD];
type Probe = [u8; PROBE];

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

fn probe(kind: u8, key: &[u8; 32]) -> Probe {
    let mut p = [0u8; PROBE];
    p[0] = kind;
    p[1..].copy_from_slice(&key[..PROBE - 1]);
    p
}

fn record(kind: u8, key: &[u8; 32], index: u64) -> Record {
    let mut r = [0u8; RECORD];
    r[..PROBE].copy_from_slice(&probe(kind, key));
    r[PROBE..].copy_from_slice(&index.to_be_bytes()[8 - (RECORD - PROBE)..]);
    r
}

fn record_index(r: &[u8]) -> u64 {
    r[PROBE..RECORD]
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::io(context, e)
}

/// An immutable sorted run file and its fence keys.
#[derive(Debug)]
struct Run {
    name: String,
    file: File,
    records: u64,
    fences: Vec<Probe>,
}

impl Run {
    /// Opens run `name` holding `records` records and reads its fence keys.
    fn open(dir: &Path, name: &str, records: u64) -> Result<Run, StorageError> {
        let path = dir.join(name);
        let file = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
        let len = file
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        if records.checked_mul(RECORD as u64) != Some(len) {
            return Err(StorageError::Corrupt(format!(
                "{} is {len} bytes, the manifest says {records} records",
                path.display()
            )));
        }
        let mut fences = Vec::with_capacity((records as usize).div_ceil(FENCE_EVERY));
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut r = [0u8; RECORD];
        for i in 0..records {
            reader
                .read_exact(&mut r)
                .map_err(io(format!("reading {}", path.display())))?;
            if i as usize % FENCE_EVERY == 0 {
                fences.push(key_of(&r));
            }
        }
        Ok(Run {
            name: name.to_string(),
            file,
            records,
            fences,
        })
    }

    /// Appends the indices of every record whose key is `p`.
    fn candidates(&self, p: &Probe, out: &mut Vec<u64>) -> Result<(), StorageError> {
        // Records equal to `p` lie in the last block starting below it and in the blocks
        // starting at it.
        let first = self.fences.partition_point(|f| f < p).saturating_sub(1);
        let end = self.fences.partition_point(|f| f <= p);
        let mut block = vec![0u8; FENCE_EVERY * RECORD];
        for b in first..end {
            let start = (b * FENCE_EVERY) as u64;
            let count = (self.records - start).min(FENCE_EVERY as u64) as usize;
            let bytes = &mut block[..count * RECORD];
            self.file
                .read_exact_at(bytes, start * RECORD as u64)
                .map_err(io(format!("reading index run {}", self.name)))?;
            out.extend(
                bytes
                    .chunks_exact(RECORD)
                    .filter(|r| r[..PROBE] == p[..])
                    .map(record_index),
            );
        }
        Ok(())
    }
}

/// Every record whose key is `p`, as a range of the sorted record sets.
fn records_with(p: &Probe) -> std::ops::RangeInclusive<Record> {
    let mut low = [0u8; RECORD];
    low[..PROBE].copy_from_slice(p);
    let mut high = [0xffu8; RECORD];
    high[..PROBE].copy_from_slice(p);
    low..=high
}

fn key_of(r: &Record) -> Probe {
    let mut p = [0u8; PROBE];
    p.copy_from_slice(&r[..PROBE]);
    p
}

#[derive(Debug, Default)]
struct State {
    /// Records not yet in a run.
    memory: BTreeSet<Record>,
    /// Records being written as a run (still looked up until the run is installed).
    freezing: Arc<BTreeSet<Record>>,
    /// Oldest first.
    runs: Vec<Arc<Run>>,
    /// The tree size every record so far covers.
    covered: u64,
    /// The tree size the runs in the manifest cover.
    persisted: u64,
    next_run: u64,
}

/// What the committer and the merge thread share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: RwLock<State>,
    /// Held while a manifest is computed and written, so the committer's new runs and
    /// the merge thread's merged runs are never written out of order.
    manifest: Mutex<()>,
}

/// The lookup index (see the module documentation).
#[derive(Debug)]
pub struct Index {
    shared: Arc<Shared>,
    /// The thread merging runs, if one was started.
    merger: Mutex<Option<JoinHandle<()>>>,
}

impl Index {
    /// Opens the index at `dir`. An unreadable index is moved aside (kept for
    /// inspection) and a fresh, empty one created; the caller re-indexes from the tiles.
    pub fn open(dir: &Path) -> Result<Index, StorageError> {
        match Self::open_exact(dir) {
            Ok(index) => Ok(index),
            Err(first) => {
                let aside = aside_path(dir);
                tracing::warn!(error = %first, moved_to = %aside.display(), "index unreadable; rebuilding it from the tiles");
                fs::rename(dir, &aside).map_err(io(format!("moving {} aside", dir.display())))?;
                Self::open_exact(dir)
            }
        }
    }

    fn open_exact(dir: &Path) -> Result<Index, StorageError> {
        create_dir_all_durable(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut state = State::default();
        let manifest = dir.join(MANIFEST);
        match fs::read_to_string(&manifest) {
            Ok(text) => {
                let (size, runs) = parse_manifest(&text)?;
                for (name, records) in runs {
                    state.next_run = state.next_run.max(run_number(&name)? + 1);
                    state.runs.push(Arc::new(Run::open(dir, &name, records)?));
                }
                state.covered = size;
                state.persisted = size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StorageError::io(
                    format!("reading {}", manifest.display()),
                    e,
                ))
            }
        }
        // Files a crash left behind: runs never named by the manifest, temporaries.
        let listing = fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
        for entry in listing {
            let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("run-") || name.ends_with(".tmp");
            if ours && !state.runs.iter().any(|r| r.name == name) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            }
        }
        Ok(Index {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                state: RwLock::new(state),
                manifest: Mutex::new(()),
            }),
            merger: Mutex::new(None),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared.write()
    }

    /// The tree size the durable part of the index covers.
    pub fn indexed_size(&self) -> Result<u64, StorageError> {
        Ok(self.read().persisted)
    }

    /// Indices of leaves whose dedup key may be `key` (to be confirmed against the entry).
    pub fn dedup_candidates(&self, key: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        self.candidates(probe(DEDUP_KIND, key))
    }

    /// Indices of leaves whose leaf hash may be `leaf_hash` (to be confirmed).
    pub fn leaf_candidates(&self, leaf_hash: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        self.candidates(probe(LEAF_KIND, leaf_hash))
    }

    fn candidates(&self, p: Probe) -> Result<Vec<u64>, StorageError> {
        let in_memory = |set: &BTreeSet<Record>| -> Vec<u64> {
            set.range(records_with(&p))
                .map(|r| record_index(r))
                .collect()
        };
        let (runs, freezing, mut out) = {
            let state = self.read();
            let out = in_memory(&state.memory);
            (state.runs.clone(), state.freezing.clone(), out)
        };
        out.extend(in_memory(&freezing));
        for run in &runs {
            run.candidates(&p, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Records `leaves` and the new covered size, in memory only (cheap: no I/O). They
    /// become durable when written as a run by [`Index::persist_if_full`] or
    /// [`Index::flush`]; until then a crash loses them, and the tiles (the durable copy)
    /// re-index them on start.
    pub fn record(&self, leaves: &[IndexedLeaf], new_size: u64) -> Result<(), StorageError> {
        let mut state = self.write();
        if let Some(leaf) = leaves.iter().find(|l| l.index > MAX_INDEX) {
            return Err(StorageError::Corrupt(format!(
                "leaf index {} exceeds the index's limit of {MAX_INDEX}",
                leaf.index
            )));
        }
        for leaf in leaves {
            state
                .memory
                .insert(record(LEAF_KIND, &leaf.leaf_hash, leaf.index));
            if let Some(key) = &leaf.dedup_key {
                state.memory.insert(record(DEDUP_KIND, key, leaf.index));
            }
        }
        state.covered = state.covered.max(new_size);
        Ok(())
    }

    /// Writes the in-memory records as a run (and merges runs) once there are enough of
    /// them. The committer calls it after answering a batch, so the I/O never delays
    /// an answer.
    pub fn persist_if_full(&self) -> Result<(), StorageError> {
        if self.read().memory.len() >= MEMORY_RECORDS {
            self.persist()?;
        }
        Ok(())
    }

    /// Writes the records held in memory as a run and waits for merging to finish (used
    /// on shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.persist()?;
        let handle = lock(&self.merger).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        Ok(())
    }

    /// Moves the in-memory records to a new run, merges runs, and installs the result
    /// with a new manifest. Only the committer (or open) calls this, one at a time.
    fn persist(&self) -> Result<(), StorageError> {
        let result = self.persist_frozen();
        if result.is_err() {
            // Keep the records findable (and retried by the next persist).
            let mut state = self.write();
            let frozen = std::mem::take(&mut state.freezing);
            state.memory.extend(frozen.iter().copied());
        }
        result
    }

    fn persist_frozen(&self) -> Result<(), StorageError> {
        let (frozen, size, number) = {
            let mut state = self.write();
            if state.memory.is_empty() && state.covered == state.persisted {
                return Ok(());
            }
            let memory = std::mem::take(&mut state.memory);
            state.freezing = Arc::new(memory);
            let number = state.next_run;
            state.next_run += 1;
            (state.freezing.clone(), state.covered, number)
        };
        let run = if frozen.is_empty() {
            None
        } else {
            let name = run_name(number);
            let records = write_run(&self.shared.dir, &name, frozen.iter().copied())?;
            Some(Arc::new(Run::open(&self.shared.dir, &name, records)?))
        };
        self.shared.install(|state| {
            state.runs.extend(run);
            state.freezing = Arc::default();
            state.persisted = size;
        })?;
        self.start_merging();
        Ok(())
    }

    /// Starts the merge thread unless it is running. Merges are sequential rewrites of
    /// whole runs (hundreds of MB at 10 M leaves), so they run beside the committer
    /// rather than in its way; lookups read the old runs until a merge is installed.
    fn start_merging(&self) {
        let mut merger = lock(&self.merger);
        if merger.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("index-merge".into())
            .spawn(move || {
                if let Err(e) = shared.merge_while_needed() {
                    tracing::warn!(error = %e, "merging lookup index runs; will retry");
                }
            });
        match spawned {
            Ok(handle) => *merger = Some(handle),
            Err(e) => tracing::warn!(error = %e, "starting the index merge thread"),
        }
    }
}

impl Drop for Index {
    /// Waits for a merge in progress, so no thread writes the directory once the index
    /// is gone (a reopen in the same process would otherwise race it).
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.merger).take() {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to the state and writes the manifest that describes the result.
    /// Run files must already be durable; the files `change` drops are deleted after.
    fn install(&self, change: impl FnOnce(&mut State)) -> Result<(), StorageError> {
        let _manifest = lock(&self.manifest);
        let text = {
            let mut state = self.write();
            change(&mut state);
            manifest(state.persisted, &state.runs)
        };
        sync_dir(&self.dir).map_err(io(format!("syncing {}", self.dir.display())))?;
        replace_atomically(&self.dir.join(MANIFEST), text.as_bytes())
            .map_err(io(format!("writing {}/{MANIFEST}", self.dir.display())))
    }

    /// Merges the newest two runs while the older is at most twice the newer.
    fn merge_while_needed(&self) -> Result<(), StorageError> {
        loop {
            let (older, newer, number) = {
                let mut state = self.write();
                let [.., older, newer] = state.runs.as_slice() else {
                    return Ok(());
                };
                if older.records > 2 * newer.records {
                    return Ok(());
                }
                let pair = (older.clone(), newer.clone());
                let number = state.next_run;
                state.next_run += 1;
                (pair.0, pair.1, number)
            };
            let name = run_name(number);
            let records = merge(&self.dir, &older, &newer, &name)?;
            let merged = Arc::new(Run::open(&self.dir, &name, records)?);
            // The committer may have appended runs meanwhile; the pair is still adjacent
            // (only this thread removes runs).
            self.install(|state| {
                if let Some(at) = state.runs.iter().position(|r| r.name == older.name) {
                    if state.runs.get(at + 1).is_some_and(|r| r.name == newer.name) {
                        state.runs.splice(at..at + 2, [merged]);
                    }
                }
            })?;
            for name in [&older.name, &newer.name] {
                let path = self.dir.join(name);
                fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes sorted `records` to run `name` in `dir`, fsynced; returns how many.
fn write_run(
    dir: &Path,
    name: &str,
    records: impl Iterator<Item = Record>,
) -> Result<u64, StorageError> {
    let path = dir.join(name);
    let context = || format!("writing {}", path.display());
    let file = File::create(&path).map_err(io(context()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut count = 0u64;
    for r in records {
        out.write_all(&r).map_err(io(context()))?;
        count += 1;
    }
    let file = out
        .into_inner()
        .map_err(|e| io(context())(e.into_error()))?;
    file.sync_all().map_err(io(context()))?;
    Ok(count)
}

/// Merges two sorted runs into run `name`; returns its record count.
fn merge(dir: &Path, a: &Run, b: &Run, name: &str) -> Result<u64, StorageError> {
    let mut left = RunReader::new(a);
    let mut right = RunReader::new(b);
    let mut failure = None;
    let merged = std::iter::from_fn(|| {
        let next = match (left.peek(), right.peek()) {
            (Ok(Some(l)), Ok(Some(r))) => {
                if l <= r {
                    left.take()
                } else {
                    right.take()
                }
            }
            (Ok(Some(_)), Ok(None)) => left.take(),
            (Ok(None), Ok(Some(_))) => right.take(),
            (Ok(None), Ok(None)) => return None,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match next {
            Ok(r) => Some(r),
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    });
    let count = write_run(dir, name, merged)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// Streams a run's records in order.
struct RunReader<'a> {
    run: &'a Run,
    reader: BufReader<&'a File>,
    position: u64,
    head: Option<Record>,
}

impl<'a> RunReader<'a> {
    fn new(run: &'a Run) -> RunReader<'a> {
        RunReader {
            run,
            reader: BufReader::with_capacity(1 << 20, &run.file),
            position: 0,
            head: None,
        }
    }

    fn peek(&mut self) -> Result<Option<Record>, StorageError> {
        if self.head.is_none() && self.position < self.run.records {
            if self.position == 0 {
                // The file may have been read through this handle before (fences).
                std::io::Seek::seek(&mut self.reader, std::io::SeekFrom::Start(0))
                    .map_err(io(format!("reading index run {}", self.run.name)))?;
            }
            let mut r = [0u8; RECORD];
            self.reader
                .read_exact(&mut r)
                .map_err(io(format!("reading index run {}", self.run.name)))?;
            self.position += 1;
            self.head = Some(r);
        }
        Ok(self.head)
    }

    fn take(&mut self) -> Result<Record, StorageError> {
        self.peek()?;
        self.head
            .take()
            .ok_or_else(|| StorageError::Corrupt(format!("index run {} ended", self.run.name)))
    }
}

fn run_name(n: u64) -> String {
    format!("run-{n:016x}.idx")
}

fn run_number(name: &str) -> Result<u64, StorageError> {
    name.strip_prefix("run-")
        .and_then(|s| s.strip_suffix(".idx"))
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| StorageError::Corrupt(format!("bad run name {name:?} in the manifest")))
}

fn manifest(size: u64, runs: &[Arc<Run>]) -> String {
    let mut text = format!("{MAGIC}\nsize {size}\n");
    for run in runs {
        text.push_str(&format!("run {} {}\n", run.name, run.records));
    }
    text
}

fn parse_manifest(text: &str) -> Result<(u64, Vec<(String, u64)>), StorageError> {
    let bad = |why: &str| StorageError::Corrupt(format!("index manifest: {why}"));
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad("unknown format"));
    }
    let size = lines
        .next()
        .and_then(|l| l.strip_prefix("size "))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("no size line"))?;
    let mut runs = Vec::new();
    for line in lines {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("run"), Some(name), Some(n), None) => {
                let records = n.parse::<u64>().map_err(|_| bad("bad record count"))?;
                runs.push((name.to_string(), records));
            }
            _ => return Err(bad("bad run line")),
        }
    }
    Ok((size, runs))
}

fn aside_path(dir: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("{}.broken-{stamp}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    fn key(n: u64, salt: u8) -> [u8; 32] {
        Sha256::digest([&[salt][..], &n.to_be_bytes()].concat()).into()
    }

    fn leaf(n: u64) -> IndexedLeaf {
        IndexedLeaf {
            index: n,
            leaf_hash: key(n, 1),
            dedup_key: (n % 5 != 0).then(|| key(n, 2)),
        }
    }

    fn check_all(index: &Index, upto: u64) {
        for n in 0..upto {
            let l = leaf(n);
            assert!(index.leaf_candidates(&l.leaf_hash).unwrap().contains(&n));
            if let Some(d) = l.dedup_key {
                assert!(index.dedup_candidates(&d).unwrap().contains(&n));
            }
        }
        assert!(index.leaf_candidates(&key(upto + 7, 1)).unwrap().is_empty());
    }

    #[test]
    fn survives_runs_merges_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookup");
        let total = (MEMORY_RECORDS as u64) * 3 + 1234;
        {
            let index = Index::open(&path).unwrap();
            let mut n = 0;
            while n < total {
                let end = (n + 1000).min(total);
                let batch: Vec<_> = (n..end).map(leaf).collect();
                index.record(&batch, end).unwrap();
                index.persist_if_full().unwrap();
                n = end;
            }
            check_all(&index, total);
            // Some runs were written on the way; the tail is only in memory.
            let persisted = index.indexed_size().unwrap();
            assert!(persisted > 0 && persisted < total);
        }
        {
            // Reopened without a flush (a crash): the durable prefix is intact.
            let index = Index::open(&path).unwrap();
            let persisted = index.indexed_size().unwrap();
            check_all(&index, persisted);
            let batch: Vec<_> = (persisted..total).map(leaf).collect();
            index.record(&batch, total).unwrap();
            index.flush().unwrap();
            assert!(index.read().runs.len() <= 4, "runs merge");
        }
        let index = Index::open(&path).unwrap();
        assert_eq!(index.indexed_size().unwrap(), total);
        check_all(&index, total);
        // Only the manifest and the runs it names remain.
        let files = fs::read_dir(&path).unwrap().count();
        assert_eq!(files, index.read().runs.len() + 1);
    }

    /// Lookups running while runs are written and merged on the merge thread always
    /// find every leaf recorded before they started: no window where a record is in
    /// neither memory, the freezing set, nor an installed run.
    #[test]
    fn lookups_never_miss_during_runs_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("lookup")).unwrap();
        let recorded = std::sync::atomic::AtomicU64::new(0);
        let total = (MEMORY_RECORDS as u64) * 3;
        std::thread::scope(|scope| {
            for reader in 0..2u64 {
                let (index, recorded) = (&index, &recorded);
                scope.spawn(move || {
                    let mut probe = reader;
                    loop {
                        let upto = recorded.load(std::sync::atomic::Ordering::Acquire);
                        if upto > 0 {
                            probe = (probe * 7919 + 1) % upto;
                            let l = leaf(probe);
                            let found = index.leaf_candidates(&l.leaf_hash).unwrap();
                            assert!(found.contains(&probe), "leaf {probe} missing");
                        }
                        if upto >= total {
                            break;
                        }
                    }
                });
            }
            let mut n = 0;
            while n < total {
                let end = (n + 2000).min(total);
                let batch: Vec<_> = (n..end).map(leaf).collect();
                index.record(&batch, end).unwrap();
                recorded.store(end, std::sync::atomic::Ordering::Release);
                index.persist_if_full().unwrap();
                n = end;
            }
        });
        index.flush().unwrap();
        check_all(&index, total);
    }

    #[test]
    fn a_garbled_manifest_moves_the_index_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookup");
        {
            let index = Index::open(&path).unwrap();
            index.record(&[leaf(0), leaf(1)], 2).unwrap();
            index.flush().unwrap();
        }
        fs::write(path.join(MANIFEST), "something else\n").unwrap();
        let index = Index::open(&path).unwrap();
        assert_eq!(index.indexed_size().unwrap(), 0);
        assert!(fs::read_dir(dir.path()).unwrap().count() == 2, "aside kept");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Against a map of every key to its indices: colliding prefixes (keys forced to
        /// share their first 8 bytes) return every candidate, in any run layout.
        #[test]
        fn candidates_are_a_superset_of_the_truth(
            keys in prop::collection::vec((0u8..4, any::<u8>()), 1..400),
            flush_every in 1usize..50,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let index = Index::open(&dir.path().join("lookup")).unwrap();
            let mut truth: HashMap<[u8; 32], Vec<u64>> = HashMap::new();
            for (i, (prefix, tail)) in keys.iter().enumerate() {
                let mut k = [0u8; 32];
                k[0] = *prefix;
                k[31] = *tail;
                let l = IndexedLeaf { index: i as u64, leaf_hash: k, dedup_key: Some(k) };
                index.record(&[l], i as u64 + 1).unwrap();
                truth.entry(k).or_default().push(i as u64);
                if i % flush_every == 0 {
                    index.flush().unwrap();
                }
            }
            for (k, want) in &truth {
                let got = index.leaf_candidates(k).unwrap();
                for w in want {
                    prop_assert!(got.contains(w));
                }
                let same_prefix: Vec<u64> = truth
                    .iter()
                    .filter(|(o, _)| o[..8] == k[..8])
                    .flat_map(|(_, v)| v.iter().copied())
                    .collect();
                prop_assert_eq!(got.len(), same_prefix.len());
                prop_assert_eq!(index.dedup_candidates(k).unwrap(), got);
            }
        }
    }
}

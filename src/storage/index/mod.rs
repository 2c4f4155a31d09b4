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
//!
//! This file holds the memory tier (the newest records, the set being frozen into a
//! run), the manifest, and the merge policy; `run.rs` holds the record and run-file
//! format and the merge of two runs. [`Index`] implements the [`LookupIndex`] port.
//!
//! May import: `storage::durable`, the storage error and the lookup index port.

mod run;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use crate::storage::durable::{create_dir_all_durable, replace_atomically, sync_dir};
use crate::storage::{IndexedLeaf, LookupIndex, StorageError};
use run::{
    io, merge, probe, record, record_index, records_with, run_name, run_number, write_run, Probe,
    Record, Run, DEDUP_KIND, LEAF_KIND, MAX_INDEX,
};

/// Records held in memory before they are written as a run (about 65,000 leaves).
const MEMORY_RECORDS: usize = 1 << 17;
const MANIFEST: &str = "MANIFEST";
const MAGIC: &str = "srcos-catalog lookup index v1";

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

impl LookupIndex for Index {
    /// The tree size the durable part of the index covers.
    fn indexed_size(&self) -> Result<u64, StorageError> {
        Ok(self.read().persisted)
    }

    /// Indices of leaves whose dedup key may be `key` (to be confirmed against the entry).
    fn dedup_candidates(&self, key: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        self.candidates(probe(DEDUP_KIND, key))
    }

    /// Indices of leaves whose leaf hash may be `leaf_hash` (to be confirmed).
    fn leaf_candidates(&self, leaf_hash: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        self.candidates(probe(LEAF_KIND, leaf_hash))
    }

    /// Records `leaves` and the new covered size, in memory only (cheap: no I/O). They
    /// become durable when written as a run by [`LookupIndex::persist_if_full`] or
    /// [`LookupIndex::flush`]; until then a crash loses them, and the tiles (the durable copy)
    /// re-index them on start.
    fn record(&self, leaves: &[IndexedLeaf], new_size: u64) -> Result<(), StorageError> {
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
    fn persist_if_full(&self) -> Result<(), StorageError> {
        if self.read().memory.len() >= MEMORY_RECORDS {
            self.persist()?;
        }
        Ok(())
    }

    /// Writes the records held in memory as a run and waits for merging to finish (used
    /// on shutdown).
    fn flush(&self) -> Result<(), StorageError> {
        self.persist()?;
        let handle = lock(&self.merger).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        Ok(())
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

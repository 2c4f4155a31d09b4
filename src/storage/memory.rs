//! In-memory drivers for the tile store, the checkpoint lock and the lookup index, with
//! fault injection, so that the engine's crash paths run in-process (as Sunlight's tests
//! do with its memory backends) as well as under `kill -9`.
//!
//! A [`MemoryLog`] is a tile store and a lock sharing one [`Faults`] plan; clone it to
//! reopen the same log after a fault. Faults model what a real backend can do:
//! - a swap that fails and installs nothing ([`SwapFault::Refuse`]);
//! - a swap that installs and then reports failure, a lost reply ([`SwapFault::InstallThenFail`]);
//! - a swap cut off between writing the new checkpoint and installing it, as a crash
//!   between the POSIX lock's pending write and its rename leaves it
//!   ([`SwapFault::Interrupt`]), or cut off while writing it ([`SwapFault::Tear`]);
//! - tile writes that fail from the `n`-th on ([`Faults::fail_tile_writes_after`]), which
//!   leaves a batch half-written.
//!
//! Nothing here is durable across processes; `serve` never uses it.
//!
//! May import: the storage ports only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    CheckpointLock, IndexedLeaf, LockedCheckpoint, LogBackends, LookupIndex, StorageError,
    TileStore,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn injected(what: &str) -> StorageError {
    StorageError::io(
        format!("injected fault: {what}"),
        std::io::Error::other("injected"),
    )
}

/// How the next checkpoint swap fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapFault {
    /// It fails and installs nothing.
    Refuse,
    /// It installs the new checkpoint, then reports failure.
    InstallThenFail,
    /// It stops after writing the new checkpoint aside, before installing it: the
    /// checkpoint is left for [`CheckpointLock::interrupted`].
    Interrupt,
    /// It stops while writing the new checkpoint aside: half of it is left for
    /// [`CheckpointLock::interrupted`].
    Tear,
}

/// The faults to inject into one [`MemoryLog`] (see the module documentation).
#[derive(Debug, Default)]
pub struct Faults {
    plan: Mutex<Plan>,
}

#[derive(Debug, Default)]
struct Plan {
    swap: Option<SwapFault>,
    /// Tile writes that may still succeed; `None`: no limit.
    tile_writes_left: Option<u64>,
}

impl Faults {
    /// Makes the next swap fail as `fault` says (once).
    pub fn fail_next_swap(&self, fault: SwapFault) {
        lock(&self.plan).swap = Some(fault);
    }

    /// Lets `n` more tile writes succeed, then fails every one until [`Faults::clear`].
    pub fn fail_tile_writes_after(&self, n: u64) {
        lock(&self.plan).tile_writes_left = Some(n);
    }

    /// Injects nothing more.
    pub fn clear(&self) {
        *lock(&self.plan) = Plan::default();
    }

    fn take_swap(&self) -> Option<SwapFault> {
        lock(&self.plan).swap.take()
    }

    fn tile_write(&self) -> Result<(), StorageError> {
        let mut plan = lock(&self.plan);
        match &mut plan.tile_writes_left {
            None => Ok(()),
            Some(0) => Err(injected("tile write")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
        }
    }
}

/// Tiles in a map (see the module documentation).
#[derive(Debug, Default)]
pub struct MemoryTiles {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    faults: Arc<Faults>,
}

impl MemoryTiles {
    /// An empty store failing as `faults` says.
    pub fn new(faults: Arc<Faults>) -> MemoryTiles {
        MemoryTiles {
            objects: Mutex::default(),
            faults,
        }
    }

    /// Every stored path, in order (for tests).
    pub fn paths(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }
}

impl TileStore for MemoryTiles {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
        self.faults.tile_write()?;
        lock(&self.objects).insert(path.to_string(), data.to_vec());
        Ok(())
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(lock(&self.objects).get(path).cloned())
    }

    fn delete(&self, path: &str) -> Result<(), StorageError> {
        let under = format!("{path}/");
        lock(&self.objects).retain(|k, _| k != path && !k.starts_with(&under));
        Ok(())
    }
}

#[derive(Debug, Default)]
struct LockState {
    current: Option<Vec<u8>>,
    interrupted: Option<Vec<u8>>,
    installed: Vec<Vec<u8>>,
}

/// A checkpoint in a mutex (see the module documentation). It keeps every checkpoint
/// it ever installed, so a test can check them all against each other.
#[derive(Debug, Default)]
pub struct MemoryLock {
    state: Mutex<LockState>,
    faults: Arc<Faults>,
}

impl MemoryLock {
    /// An empty lock failing as `faults` says.
    pub fn new(faults: Arc<Faults>) -> MemoryLock {
        MemoryLock {
            state: Mutex::default(),
            faults,
        }
    }

    /// Every checkpoint installed so far, oldest first.
    pub fn installed(&self) -> Vec<Vec<u8>> {
        lock(&self.state).installed.clone()
    }
}

fn install(state: &mut LockState, checkpoint: Vec<u8>) {
    state.installed.push(checkpoint.clone());
    state.current = Some(checkpoint);
}

impl CheckpointLock for MemoryLock {
    fn read(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(lock(&self.state).current.clone())
    }

    fn swap(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
    ) -> Result<(), StorageError> {
        let mut state = lock(&self.state);
        if state.current.as_deref() != old.map(|o| o.signed) {
            return Err(StorageError::Conflict(
                "the stored checkpoint is not the one this swap replaces".into(),
            ));
        }
        match self.faults.take_swap() {
            None => {
                install(&mut state, new.signed.to_vec());
                Ok(())
            }
            Some(SwapFault::Refuse) => Err(injected("checkpoint swap refused")),
            Some(SwapFault::InstallThenFail) => {
                install(&mut state, new.signed.to_vec());
                Err(injected("checkpoint swap reply lost"))
            }
            Some(SwapFault::Interrupt) => {
                state.interrupted = Some(new.signed.to_vec());
                Err(injected("checkpoint swap interrupted"))
            }
            Some(SwapFault::Tear) => {
                state.interrupted = Some(new.signed[..new.signed.len() / 2].to_vec());
                Err(injected("checkpoint swap torn"))
            }
        }
    }

    fn interrupted(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(lock(&self.state).interrupted.clone())
    }

    fn settle(&self, finish: bool) -> Result<(), StorageError> {
        let mut state = lock(&self.state);
        if let Some(checkpoint) = state.interrupted.take() {
            if finish {
                install(&mut state, checkpoint);
            }
        }
        Ok(())
    }
}

/// A memory tile store and lock sharing one fault plan. Clones share everything, so a
/// test reopens the same log with a clone.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    /// The tiles.
    pub tiles: Arc<MemoryTiles>,
    /// The checkpoint.
    pub lock: Arc<MemoryLock>,
    /// What to inject into both.
    pub faults: Arc<Faults>,
}

impl MemoryLog {
    /// An empty log with no faults planned.
    pub fn new() -> MemoryLog {
        let faults = Arc::new(Faults::default());
        MemoryLog {
            tiles: Arc::new(MemoryTiles::new(faults.clone())),
            lock: Arc::new(MemoryLock::new(faults.clone())),
            faults,
        }
    }

    /// The tile store and the lock, for the engine.
    pub fn backends(&self) -> LogBackends {
        LogBackends {
            tiles: self.tiles.clone(),
            lock: self.lock.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct IndexState {
    leaves: HashMap<[u8; 32], Vec<u64>>,
    dedup: HashMap<[u8; 32], Vec<u64>>,
    covered: u64,
}

/// The lookup index in two hash maps (exact keys, so no false candidates). Memory grows
/// with the log; for tests and short-lived logs.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    state: Mutex<IndexState>,
}

impl LookupIndex for MemoryIndex {
    fn indexed_size(&self) -> Result<u64, StorageError> {
        Ok(lock(&self.state).covered)
    }

    fn leaf_candidates(&self, leaf_hash: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        Ok(lock(&self.state)
            .leaves
            .get(leaf_hash)
            .cloned()
            .unwrap_or_default())
    }

    fn dedup_candidates(&self, key: &[u8; 32]) -> Result<Vec<u64>, StorageError> {
        Ok(lock(&self.state)
            .dedup
            .get(key)
            .cloned()
            .unwrap_or_default())
    }

    fn record(&self, leaves: &[IndexedLeaf], new_size: u64) -> Result<(), StorageError> {
        let mut state = lock(&self.state);
        for leaf in leaves {
            state
                .leaves
                .entry(leaf.leaf_hash)
                .or_default()
                .push(leaf.index);
            if let Some(key) = leaf.dedup_key {
                state.dedup.entry(key).or_default().push(leaf.index);
            }
        }
        state.covered = state.covered.max(new_size);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_writes_fail_from_the_planned_one_on() {
        let log = MemoryLog::new();
        log.faults.fail_tile_writes_after(2);
        assert!(log.tiles.put("a", b"1").is_ok());
        assert!(log.tiles.put("b", b"2").is_ok());
        assert!(log.tiles.put("c", b"3").is_err());
        assert!(log.tiles.put("d", b"4").is_err());
        log.faults.clear();
        assert!(log.tiles.put("c", b"3").is_ok());
        assert_eq!(log.tiles.paths(), ["a", "b", "c"]);
    }

    #[test]
    fn each_swap_fault_leaves_its_own_state() {
        let at = |size, signed| LockedCheckpoint { size, signed };
        let log = MemoryLog::new();
        log.lock.swap(None, at(1, b"one")).unwrap();
        let one = Some(at(1, b"one"));

        log.faults.fail_next_swap(SwapFault::Refuse);
        assert!(log.lock.swap(one, at(2, b"two")).is_err());
        assert_eq!(log.lock.read().unwrap().as_deref(), Some(&b"one"[..]));

        log.faults.fail_next_swap(SwapFault::Tear);
        assert!(log.lock.swap(one, at(2, b"twotwo")).is_err());
        assert_eq!(
            log.lock.interrupted().unwrap().as_deref(),
            Some(&b"two"[..])
        );
        log.lock.settle(false).unwrap();
        assert_eq!(log.lock.read().unwrap().as_deref(), Some(&b"one"[..]));

        log.faults.fail_next_swap(SwapFault::Interrupt);
        assert!(log.lock.swap(one, at(2, b"two")).is_err());
        log.lock.settle(true).unwrap();
        assert_eq!(log.lock.read().unwrap().as_deref(), Some(&b"two"[..]));

        log.faults.fail_next_swap(SwapFault::InstallThenFail);
        assert!(log.lock.swap(Some(at(2, b"two")), at(3, b"three")).is_err());
        assert_eq!(log.lock.read().unwrap().as_deref(), Some(&b"three"[..]));
        assert_eq!(log.lock.installed(), [&b"one"[..], b"two", b"three"]);
    }
}

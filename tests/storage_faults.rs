//! Storage faults, in-process: a real log (sequencer, committer, recovery) on the memory
//! tile store and checkpoint lock, with a fault injected into one commit. After each one,
//! the log either acknowledged the batch durably or not at all, stops taking writes,
//! reopens on the same storage at a consistent head, and never installs two checkpoints
//! inconsistent with each other. The crash paths `tests/crash.rs` reaches with `kill -9`,
//! here one at a time and deterministically.
//!
//! Then a log opened, written and reopened on each driver (the drivers' contracts
//! themselves are in `storage_conformance.rs`).

mod common;

use common::faults::Harness;
use srcos_catalog::log::{Log, OpenReport, SubmitError, Submitted};
use srcos_catalog::note;
use srcos_catalog::storage::memory::{MemoryLog, SwapFault};
use srcos_catalog::storage::{Backends, LogBackends, RecordsIn, TileStore};
use srcos_catalog::tiles::{TileId, TileKind};

/// A memory log with a few entries acknowledged.
fn started() -> (Harness, MemoryLog, Log) {
    let mut h = Harness::new("faults");
    let memory = MemoryLog::new();
    let (log, report) = h.open(Backends::memory(&memory));
    assert!(report.created);
    for n in 0..3 {
        h.publish(&log, n).unwrap();
    }
    (h, memory, log)
}

/// Injects nothing more, stops `log` (as a crash would, nothing more is written) and
/// opens the same storage again with fresh index and records (both lost in a crash).
fn reopen(h: &mut Harness, memory: &MemoryLog, log: Log) -> (Log, OpenReport) {
    memory.faults.clear();
    drop(log);
    h.open(Backends::memory(memory))
}

/// The fault stopped the log: the submission got no receipt and later ones neither.
fn assert_refused(h: &mut Harness, log: &Log, result: Result<Submitted, SubmitError>) {
    assert!(
        matches!(result, Err(SubmitError::Unavailable(_))),
        "{result:?}"
    );
    assert!(log.has_failed());
    assert!(matches!(
        h.publish(log, 999),
        Err(SubmitError::Unavailable(_))
    ));
}

/// Publishes one entry with `fault` injected into its checkpoint swap, checks the log
/// stopped, optionally damages the batch's hash tile, and reopens. Then: the reopen
/// finished or abandoned an interrupted swap as `finished` says; the entry is in the
/// log iff `durable` (a retry is then a duplicate), else the retry is appended at the
/// same index; and everything [`Harness::check`] checks holds.
fn swap_fault(fault: SwapFault, damage: bool, finished: Option<bool>, durable: bool) {
    let (mut h, memory, log) = started();
    let before = log.head();
    let size = before.checkpoint.size;
    memory.faults.fail_next_swap(fault);
    let result = h.publish(&log, 10);
    assert_refused(&mut h, &log, result);
    if damage {
        // The pending checkpoint still verifies, but its tree is not what the tiles hold.
        let tile = TileId {
            kind: TileKind::Hash(0),
            index: 0,
            width: size as u16 + 1,
        };
        let zeros = vec![0u8; 32 * (size as usize + 1)];
        memory.tiles.put(&tile.path(), &zeros).unwrap();
    }

    let (log, report) = reopen(&mut h, &memory, log);
    assert_eq!(report.pending_checkpoint, finished);
    if durable {
        assert_eq!(log.head().checkpoint.size, size + 1);
    } else {
        assert_eq!(log.head().signed, before.signed);
    }
    let again = h.publish(&log, 10).unwrap();
    assert_eq!(again.duplicate, durable);
    assert_eq!(again.index, size);
    h.check(&log, &memory.backends(), &memory.lock.installed());
}

#[test]
fn a_refused_swap_acknowledges_nothing_and_the_log_reopens_at_the_old_head() {
    swap_fault(SwapFault::Refuse, false, None, false);
}

#[test]
fn a_swap_that_installs_but_reports_failure_keeps_the_batch_durable() {
    swap_fault(SwapFault::InstallThenFail, false, None, true);
}

#[test]
fn an_interrupted_swap_is_finished_at_reopen() {
    swap_fault(SwapFault::Interrupt, false, Some(true), true);
}

#[test]
fn a_torn_swap_is_abandoned_at_reopen() {
    swap_fault(SwapFault::Tear, false, Some(false), false);
}

#[test]
fn an_interrupted_swap_is_finished_only_if_the_tiles_rebuild_its_root() {
    swap_fault(SwapFault::Interrupt, true, Some(false), false);
}

#[test]
fn a_batch_cut_off_after_any_number_of_tile_writes_is_never_acknowledged() {
    let (mut h, memory, mut log) = started();
    // A one-entry batch below 256 entries writes two tiles: the entry bundle and the
    // level-0 hash tile. Fail before the first, and between the two.
    for written in 0..2u64 {
        let before = log.head();
        memory.faults.fail_tile_writes_after(written);
        let result = h.publish(&log, 20 + written);
        assert_refused(&mut h, &log, result);
        // The cut-off batch left as many tiles as it wrote, which no checkpoint covers.
        let width = format!(".p/{}", before.checkpoint.size + 1);
        let leftovers = memory.tiles.paths();
        let leftovers = leftovers.iter().filter(|p| p.ends_with(&width)).count();
        assert_eq!(leftovers as u64, written);

        let (reopened, report) = reopen(&mut h, &memory, log);
        log = reopened;
        assert_eq!(report.pending_checkpoint, None);
        assert_eq!(log.head().signed, before.signed);
        // The next batch overwrites the leftovers with its own tiles.
        let again = h.publish(&log, 30 + written).unwrap();
        assert_eq!(again.index, before.checkpoint.size);
        h.check(&log, &memory.backends(), &memory.lock.installed());
    }
}

#[test]
fn recovery_from_every_fault_in_a_row_keeps_one_consistent_history() {
    let (mut h, memory, mut log) = started();
    let faults = [
        SwapFault::Refuse,
        SwapFault::InstallThenFail,
        SwapFault::Interrupt,
        SwapFault::Tear,
    ];
    for (round, fault) in faults.into_iter().enumerate() {
        let n = 100 * (round as u64 + 1);
        for k in 0..5 {
            h.publish(&log, n + k).unwrap();
        }
        memory.faults.fail_next_swap(fault);
        let result = h.publish(&log, n + 50);
        assert_refused(&mut h, &log, result);
        log = reopen(&mut h, &memory, log).0;
    }
    let installed = memory.lock.installed();
    // Sizes only grow, and one size never has two checkpoints.
    let size = |signed: &[u8]| {
        note::open_checkpoint(signed, log.verifier())
            .unwrap()
            .0
            .size
    };
    assert!(installed.windows(2).all(|w| size(&w[0]) < size(&w[1])));
    h.check(&log, &memory.backends(), &installed);
}

/// The same log, written and reopened on each driver, recovers every entry.
#[test]
fn a_log_is_written_and_reopened_on_every_driver() {
    let memory = MemoryLog::new();
    let posix = common::tempdir();
    type Open<'a> = Box<dyn Fn() -> Backends + 'a>;
    type Read<'a> = Box<dyn Fn() -> LogBackends + 'a>;
    let drivers: [(&str, Open, Read); 2] = [
        (
            "memory",
            Box::new(|| Backends::memory(&memory)),
            Box::new(|| memory.backends()),
        ),
        (
            "posix",
            Box::new(|| Backends::posix(posix.path(), RecordsIn::Disk).unwrap()),
            Box::new(|| LogBackends::posix(posix.path()).unwrap()),
        ),
    ];
    for (name, backends, storage) in &drivers {
        let mut h = Harness::new("faults");
        let (log, report) = h.open(backends());
        assert!(report.created, "{name}");
        for n in 0..20 {
            h.publish(&log, n).unwrap();
        }
        drop(log);
        let (log, report) = h.open(backends());
        assert!(!report.created, "{name}");
        assert_eq!(log.head().checkpoint.size, 22, "{name}");
        assert!(h.publish(&log, 5).unwrap().duplicate, "{name}");
        h.check(&log, &storage(), &[]);
    }
}

/// A tile store that counts its reads.
struct CountingReads {
    inner: std::sync::Arc<dyn TileStore>,
    gets: std::sync::atomic::AtomicU64,
}

impl TileStore for CountingReads {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), srcos_catalog::storage::StorageError> {
        self.inner.put(path, data)
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, srcos_catalog::storage::StorageError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(path)
    }
    fn delete(&self, path: &str) -> Result<(), srcos_catalog::storage::StorageError> {
        self.inner.delete(path)
    }
}

/// The receipt a submitter waits for is assembled from the tiles its batch just
/// committed, kept in memory, not by reading back what the committer wrote a moment
/// before (issue 12: receipts without re-reading tiles). Below 256 entries every tile a
/// proof needs is a partial that each batch rewrites, so no read is expected at all.
#[test]
fn a_fresh_receipt_reads_no_tile_back() {
    let memory = MemoryLog::new();
    let counting = std::sync::Arc::new(CountingReads {
        inner: memory.tiles.clone(),
        gets: 0.into(),
    });
    let log_backends = LogBackends {
        tiles: counting.clone(),
        lock: memory.lock.clone(),
    };
    let mut h = Harness::new("fresh-receipt");
    let backends = Backends::with_log(log_backends, h.keys(), RecordsIn::Memory).unwrap();
    let (log, _) = h.open(backends);
    for n in 0..40 {
        // Counted: the commit, the harness reading the entry back, and the receipt.
        counting.gets.store(0, std::sync::atomic::Ordering::SeqCst);
        let submitted = h.publish(&log, n).unwrap();
        let receipt = log.receipt(submitted.index, None).unwrap();
        assert_eq!(receipt.log_index, submitted.index);
        assert_eq!(
            counting.gets.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "entry {}: its entry or receipt was read back from the store",
            submitted.index
        );
    }
}

//! The log recovers by itself (issue 10 §1): a commit that fails on a storage error is
//! retried with back-off, and once the fault clears the same running log takes writes
//! again, with no restart. Nothing is acknowledged before it is durable, every
//! acknowledged entry stays, and no two checkpoints it installs or serves disagree.
//!
//! In-process on the memory drivers (each fault the memory lock and tile store can
//! inject), and on the POSIX drivers with a real `EISDIR` in the way of a tile write.

mod common;

use std::time::{Duration, Instant};

use common::faults::Harness;
use srcos_catalog::log::{Log, SubmitError, Submitted};
use srcos_catalog::note;
use srcos_catalog::storage::memory::{MemoryLog, SwapFault};
use srcos_catalog::storage::{Backends, LogBackends, RecordsIn};

/// Opens the log with a short commit back-off.
fn open(h: &mut Harness, backends: Backends) -> Log {
    let (log, _) = h.open_with(backends, |options| {
        options.commit_retry = (Duration::from_millis(20), Duration::from_millis(100));
    });
    log
}

/// [`Harness::check`], and no size was installed twice.
fn check(h: &Harness, log: &Log, storage: &LogBackends, installed: &[Vec<u8>]) {
    h.check(log, storage, installed);
    let size = |signed: &[u8]| {
        note::open_checkpoint(signed, log.verifier())
            .unwrap()
            .0
            .size
    };
    assert!(
        installed.windows(2).all(|w| size(&w[0]) < size(&w[1])),
        "one size installed twice"
    );
}

/// Publishes `n` until the log takes it (the retry in the background succeeded).
fn publish_once_recovered(h: &mut Harness, log: &Log, n: u64) -> Submitted {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match h.publish(log, n) {
            Ok(submitted) => return submitted,
            Err(SubmitError::Unavailable(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("the log did not recover: {e}"),
        }
    }
}

fn assert_unavailable(result: Result<Submitted, SubmitError>) {
    assert!(
        matches!(result, Err(SubmitError::Unavailable(_))),
        "{result:?}"
    );
}

/// A fault hits one batch; the log refuses writes while it retries, then takes them
/// again by itself. `clear_after` is how long the fault lasts (a persistent tile-write
/// fault) or `None` (a one-shot swap fault).
fn recovers(inject: impl Fn(&MemoryLog), clear_after: Option<Duration>) {
    let mut h = Harness::new("recovery");
    let memory = MemoryLog::new();
    let log = open(&mut h, Backends::memory(&memory));
    for n in 0..3 {
        h.publish(&log, n).unwrap();
    }
    let before = log.head().checkpoint.size;
    inject(&memory);
    assert_unavailable(h.publish(&log, 10));
    if let Some(lasting) = clear_after {
        // Still failing: writes are refused, nothing new is installed.
        assert!(log.has_failed());
        assert_unavailable(h.publish(&log, 11));
        std::thread::sleep(lasting);
        assert_eq!(log.head().checkpoint.size, before);
        memory.faults.clear();
    }
    // No restart: the same log takes writes again.
    publish_once_recovered(&mut h, &log, 12);
    assert!(!log.has_failed());
    // The batch that failed was retried unchanged and became durable: its client, who
    // got 503, resubmits and is told it is already there, at the index it was given.
    let again = h.publish(&log, 10).unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.index, before);
    for n in 20..30 {
        h.publish(&log, n).unwrap();
    }
    check(&h, &log, &memory.backends(), &memory.lock.installed());
    // And a restart finds the same log.
    drop(log);
    let log = open(&mut h, Backends::memory(&memory));
    check(&h, &log, &memory.backends(), &memory.lock.installed());
}

#[test]
fn a_log_whose_tile_writes_fail_for_a_while_takes_writes_again_without_a_restart() {
    recovers(
        |m| m.faults.fail_tile_writes_after(0),
        Some(Duration::from_millis(300)),
    );
}

#[test]
fn a_log_cut_off_between_its_tile_writes_recovers_without_a_restart() {
    recovers(
        |m| m.faults.fail_tile_writes_after(1),
        Some(Duration::from_millis(300)),
    );
}

#[test]
fn a_refused_swap_is_retried() {
    recovers(|m| m.faults.fail_next_swap(SwapFault::Refuse), None);
}

#[test]
fn a_swap_whose_reply_was_lost_is_found_installed() {
    recovers(
        |m| m.faults.fail_next_swap(SwapFault::InstallThenFail),
        None,
    );
}

#[test]
fn an_interrupted_swap_is_finished_by_the_retry() {
    recovers(|m| m.faults.fail_next_swap(SwapFault::Interrupt), None);
}

#[test]
fn a_torn_swap_is_abandoned_and_retried() {
    recovers(|m| m.faults.fail_next_swap(SwapFault::Tear), None);
}

#[test]
fn shutting_down_while_a_commit_is_retried_does_not_hang() {
    let mut h = Harness::new("recovery");
    let memory = MemoryLog::new();
    let log = open(&mut h, Backends::memory(&memory));
    memory.faults.fail_tile_writes_after(0);
    assert_unavailable(h.publish(&log, 1));
    let started = Instant::now();
    drop(log);
    assert!(started.elapsed() < Duration::from_secs(5));
    memory.faults.clear();
    let log = open(&mut h, Backends::memory(&memory));
    h.publish(&log, 2).unwrap();
    check(&h, &log, &memory.backends(), &memory.lock.installed());
}

/// On the POSIX drivers: a directory where the next level-0 tile must be written makes
/// the write fail (`EISDIR`, as `ENOSPC` would); once it is removed, the log resumes.
#[test]
fn a_posix_log_resumes_once_a_tile_write_succeeds_again() {
    let mut h = Harness::new("recovery");
    let data = common::tempdir();
    let log = open(
        &mut h,
        Backends::posix(data.path(), RecordsIn::Disk).unwrap(),
    );
    h.publish(&log, 0).unwrap();
    let size = log.head().checkpoint.size;
    let blocker = data.path().join(format!("log/tile/0/000.p/{}", size + 1));
    std::fs::create_dir_all(&blocker).unwrap();
    assert_unavailable(h.publish(&log, 1));
    assert!(log.has_failed());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(log.head().checkpoint.size, size);
    std::fs::remove_dir(&blocker).unwrap();
    publish_once_recovered(&mut h, &log, 2);
    assert!(h.publish(&log, 1).unwrap().duplicate);
    check(&h, &log, &LogBackends::posix(data.path()).unwrap(), &[]);
}

//! Catalog snapshots (ADR 0008): start-up restores the newest snapshot that passes its
//! checks and replays only the entries after it; a damaged or tampered snapshot is
//! refused and start-up replays the whole log; a block found corrupt after start-up
//! (snapshots are opened in place, ADR 0009) is never served and sets the file aside;
//! `kill -9` while a snapshot is written leaves the old snapshot or the new one, never a
//! broken one.
//!
//! Every test ends on the same check: the state digest of the catalog the log opened
//! with equals that of a fresh full replay of its entries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use srcos_catalog::catalog::{sign_envelope, Catalog, Submission};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::snapshot::{self, SnapshotCheck};
use srcos_catalog::log::{replay, Log, LogOptions, OpenReport};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::{Backends, RecordsIn};

/// Opens the POSIX log in `data` with the records on disk, after `tweak`.
fn open(data: &Path, tweak: impl FnOnce(&mut LogOptions)) -> (Log, OpenReport) {
    let mut options = LogOptions::new(data);
    options.batch_max = 64;
    tweak(&mut options);
    let backends = Backends::posix(data, RecordsIn::Disk).unwrap();
    Log::open_with(backends, options).unwrap()
}

/// Grants a new publisher (signed by the log's generated admin key) and publishes
/// `count` requests from `first` on, concurrently, so batches fill.
fn publish(log: &Arc<Log>, data: &Path, first: u64, count: u64) {
    let rt = common::multi_thread_runtime();
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let publisher = Signer::generate("snapshot.example/publisher", KeyType::Ed25519).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["dev"],
    });
    let submit = |payload: &[u8], signer: &Signer| {
        let envelope = sign_envelope(payload, signer).to_json();
        let submission = Submission::parse(envelope.as_bytes()).unwrap();
        let key = submission.dedup_key();
        let verified = submission.verify(&log.keys()).unwrap();
        let log = log.clone();
        async move { log.submit(verified, key).await.unwrap() }
    };
    rt.block_on(submit(&serde_jcs::to_vec(&grant).unwrap(), &admin));
    let tasks: Vec<_> = (first..first + count)
        .map(|n| {
            let request =
                common::request_json("quay.io/snapshot/s", n, "sourceos://catalog/snap", "dev");
            let value: serde_json::Value = serde_json::from_str(&request).unwrap();
            rt.spawn(submit(&serde_jcs::to_vec(&value).unwrap(), &publisher))
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// The state digest the log serves equals a fresh full replay's at the replay's size
/// (an idle log may append a state commitment of its own meanwhile, ADR 0005).
fn assert_same_as_full_replay(log: &Log, data: &Path) {
    let replayed = replay::replay_dir(data, None, Catalog::new(), data).unwrap();
    let at = replayed.checkpoint.size;
    assert!(log.head().checkpoint.size >= at);
    let live = log.read_catalog(|catalog, _| catalog.try_state_digest_at(at).unwrap());
    assert_eq!(
        live, replayed.state_digest,
        "the restored catalog differs from a replay"
    );
}

fn snapshots(data: &Path) -> Vec<(u64, PathBuf)> {
    snapshot::list(&snapshot::dir(data))
}

/// Opens a log in `data`, publishes `count` requests, closes it (which writes a
/// snapshot) and returns its final size.
fn published(data: &Path, count: u64) -> u64 {
    let (log, _) = open(data, |_| {});
    let log = Arc::new(log);
    publish(&log, data, 0, count);
    drop(Arc::into_inner(log).unwrap());
    // The shutdown's snapshot is of the final size.
    snapshots(data)[0].0
}

/// Rewrites the SHA-256 at the end of a snapshot after its bytes were changed: a
/// tampering that knows only the file hash.
fn rehash(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let body = bytes.len() - 32;
    let hash = Sha256::digest(&bytes[..body]);
    bytes[body..].copy_from_slice(&hash);
    std::fs::write(path, bytes).unwrap();
}

/// Rewrites every hash of a snapshot after its frames were changed (each block's in the
/// index, the index's in the header, the file's): a tampering that knows the format
/// (`src/log/snapshot.rs`, `src/storage/records/blocks.rs`).
fn reseal(path: &Path) {
    let (header, _) = snapshot::read_header(path).unwrap();
    let index = header.index.expect("a v2 snapshot");
    let mut bytes = std::fs::read(path).unwrap();
    let (start, end) = (
        index.offset as usize,
        (index.offset + index.length) as usize,
    );
    let mut at = start;
    while at < end {
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let key_len = u32_at(at + 1);
        let offset = u64::from_be_bytes(bytes[at + 9..at + 17].try_into().unwrap()) as usize;
        let len = u32_at(at + 17);
        let hash = Sha256::digest(&bytes[offset..offset + len]);
        bytes[at + 21..at + 53].copy_from_slice(&hash);
        at += 53 + key_len;
    }
    let sealed = hex::encode(Sha256::digest(&bytes[start..end]));
    let old = index.sha256.as_bytes();
    let found = bytes[end..]
        .windows(old.len())
        .position(|w| w == old)
        .unwrap();
    bytes[end + found..end + found + old.len()].copy_from_slice(sealed.as_bytes());
    std::fs::write(path, bytes).unwrap();
    rehash(path);
}

/// Replaces the first occurrence of `from` in `path` by `to` (same length).
fn replace_bytes(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the bytes to replace are in the snapshot");
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn start_up_after_a_snapshot_replays_only_the_tail() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (log, report) = open(&data, |_| {});
    assert!(report.created);
    let log = Arc::new(log);
    // More records than the writer reads in one chunk, on the on-disk store.
    publish(&log, &data, 0, 2_200);
    let size = log.head().checkpoint.size;
    drop(Arc::into_inner(log).unwrap()); // a clean shutdown writes a snapshot

    assert_eq!(snapshots(&data)[0].0, size);
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!(report.snapshot, Some(size));
    assert_eq!(report.replayed, 0, "{report:?}");
    assert!(report.snapshots_refused.is_empty());
    assert_same_as_full_replay(&log, &data);

    // More entries, and no snapshot at shutdown: the next start replays exactly them.
    let log = Arc::new(log);
    publish(&log, &data, 2_200, 150);
    let bigger = log.head().checkpoint.size;
    drop(Arc::into_inner(log).unwrap());
    let (log, report) = open(&data, |o| o.snapshot_check = SnapshotCheck::Digest);
    assert_eq!(report.snapshot, Some(size));
    assert_eq!(report.replayed, bigger - size);
    assert_same_as_full_replay(&log, &data);

    // Snapshots off at open: the whole log is replayed.
    drop(log);
    let (log, report) = open(&data, |o| o.snapshot_check = SnapshotCheck::Off);
    assert_eq!(report.snapshot, None);
    assert_eq!(report.replayed, log.head().checkpoint.size);
    assert_same_as_full_replay(&log, &data);
}

#[test]
fn a_damaged_or_tampered_snapshot_is_refused_and_the_log_replayed() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let size = published(&data, 300);
    let (_, path) = snapshots(&data)[0].clone();
    let pristine = std::fs::read(&path).unwrap();

    let refused = |check: SnapshotCheck, why: &str| {
        let (log, report) = open(&data, |o| {
            o.snapshot_check = check;
            o.snapshot_every = None;
        });
        assert_eq!(report.snapshot, None, "{why}: the snapshot was trusted");
        assert_eq!(report.replayed, size, "{why}");
        assert_eq!(report.snapshots_refused.len(), 1, "{why}");
        assert_same_as_full_replay(&log, &data);
        report.snapshots_refused[0].clone()
    };

    // One byte of a record changed: the hash no longer matches.
    replace_bytes(&path, b"\"channel\":\"dev\"", b"\"channel\":\"dew\"");
    let reason = refused(SnapshotCheck::Hash, "a changed record");
    assert!(reason.contains("SHA-256"), "{reason}");

    // The same change with the file's hash recomputed: its block's hash does not match.
    rehash(&path);
    let reason = refused(SnapshotCheck::Hash, "a changed record, file rehashed");
    assert!(reason.contains("block"), "{reason}");

    // Every hash recomputed: it passes the hashes, but not the digest check.
    reseal(&path);
    let reason = refused(SnapshotCheck::Digest, "a changed record, resealed");
    assert!(reason.contains("digest"), "{reason}");

    // The index changed (a block's offset): refused by the default check at open,
    // which reads the index but no record.
    std::fs::write(&path, &pristine).unwrap();
    let (header, _) = snapshot::read_header(&path).unwrap();
    let mut bytes = pristine.clone();
    bytes[header.index.unwrap().offset as usize + 16] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let reason = refused(SnapshotCheck::Index, "a changed index");
    assert!(reason.contains("index"), "{reason}");

    // A header that claims another root (rehashed): refused by the tiles.
    std::fs::write(&path, &pristine).unwrap();
    let (header, _) = snapshot::read_header(&path).unwrap();
    let other = if header.root.starts_with('0') {
        "1"
    } else {
        "0"
    };
    let forged = format!("{other}{}", &header.root[1..]);
    replace_bytes(&path, header.root.as_bytes(), forged.as_bytes());
    reseal(&path);
    let reason = refused(SnapshotCheck::Hash, "a forged root");
    assert!(reason.contains("root"), "{reason}");

    // Cut short: refused.
    std::fs::write(&path, &pristine[..pristine.len() / 2]).unwrap();
    refused(SnapshotCheck::Hash, "a truncated file");

    // The pristine file is trusted again.
    std::fs::write(&path, &pristine).unwrap();
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!(report.snapshot, Some(size));
    assert_same_as_full_replay(&log, &data);
}

#[test]
fn a_refused_newest_snapshot_falls_back_to_the_one_before() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (log, _) = open(&data, |_| {});
    let log = Arc::new(log);
    publish(&log, &data, 0, 100);
    let first = log.write_snapshot().unwrap().unwrap();
    publish(&log, &data, 100, 100);
    let second = log.write_snapshot().unwrap().unwrap();
    assert!(second > first);
    let size = log.head().checkpoint.size;
    drop(Arc::into_inner(log).unwrap());
    assert_eq!(
        snapshots(&data).iter().map(|s| s.0).collect::<Vec<_>>(),
        [second, first],
        "the newest two are kept"
    );
    let newest = snapshots(&data)[0].1.clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&newest, bytes).unwrap();
    let (log, report) = open(&data, |o| {
        o.snapshot_every = None;
        o.snapshot_check = SnapshotCheck::Hash;
    });
    assert_eq!(report.snapshot, Some(first));
    assert_eq!(report.replayed, size - first);
    assert_eq!(report.snapshots_refused.len(), 1);
    assert_same_as_full_replay(&log, &data);
}

/// The default check reads no record at open (ADR 0009): a record block damaged on disk
/// is found when it is first read, never served (the read fails), and the file is set
/// aside, so the next start replays the log instead.
#[test]
fn a_block_damaged_after_open_is_never_served_and_the_snapshot_set_aside() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let size = published(&data, 300);
    let (_, path) = snapshots(&data)[0].clone();
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!(report.snapshot, Some(size));
    // Damaged after the open: a byte of a record in the middle of the publications.
    replace_bytes(&path, b"\"channel\":\"dev\"", b"\"channel\":\"dew\"");
    let read = log.read_catalog(|catalog, size| catalog.try_state_digest_at(size));
    let error = read.expect_err("a damaged block was served").to_string();
    assert!(error.contains("hash"), "{error}");
    assert!(snapshots(&data).is_empty(), "the snapshot was set aside");
    drop(log);
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!(report.snapshot, None);
    assert_eq!(report.replayed, size);
    assert_same_as_full_replay(&log, &data);
}

/// The child of [`kill_9_while_writing_snapshots_leaves_a_valid_one`]: publishes a few
/// entries and writes a snapshot, again and again, until it is killed.
#[test]
#[ignore = "run as a child process by kill_9_while_writing_snapshots_leaves_a_valid_one"]
fn snapshot_writer_child() {
    let Some(data) = std::env::var_os("SNAPSHOT_CHILD_DATA") else {
        return;
    };
    let data = PathBuf::from(data);
    let first: u64 = std::env::var("SNAPSHOT_CHILD_FIRST")
        .unwrap()
        .parse()
        .unwrap();
    // Snapshots only when asked, so that the loop below decides when they are written.
    let (log, _) = open(&data, |o| o.snapshot_every = Some(u64::MAX));
    let log = Arc::new(log);
    if first == 0 {
        publish(&log, &data, 0, 1500);
    }
    println!("ready");
    for round in 0.. {
        publish(&log, &data, first + 1500 + round * 8, 8);
        // Deltas (ADR 0019) mostly, and a whole snapshot every third round.
        match round % 3 {
            0 => log.write_snapshot().unwrap(),
            _ => log.write_delta_snapshot().unwrap(),
        };
    }
}

#[test]
fn kill_9_while_writing_snapshots_leaves_a_valid_one() {
    use std::io::BufRead;
    let mut rng = common::Rng::from_clock("snapshot kill test");
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let mut torn = 0;
    let mut with_deltas = 0;
    let sdir = snapshot::dir(&data);
    for round in 0..6u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "snapshot_writer_child",
                "--ignored",
                "--nocapture",
            ])
            .env("SNAPSHOT_CHILD_DATA", &data)
            .env("SNAPSHOT_CHILD_FIRST", (round * 100_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("ready") => break,
                Some(Ok(_)) => {}
                other => panic!("the child ended before it was ready: {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        if std::fs::read_dir(&sdir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        {
            torn += 1;
        }
        // Every installed snapshot, whole or delta, is intact, whatever the moment of
        // the kill.
        let installed = snapshots(&data);
        assert!(
            !installed.is_empty() || round == 0,
            "round {round}: no snapshot left"
        );
        let deltas = snapshot::delta::list(&sdir);
        for (size, path) in installed.iter().chain(&deltas) {
            let (header, _) = snapshot::read_header(path).unwrap();
            assert_eq!(header.size, *size);
            snapshot::verify_hash(path).unwrap();
        }
        // The restarted log restores the newest whole one and the deltas on it, and
        // reaches a full replay's state.
        let newest = installed.first().map(|s| s.0);
        let on_it = deltas.iter().filter(|d| Some(d.0) > newest);
        let expected = on_it.map(|d| d.0).max().or(newest);
        let (log, report) = open(&data, |o| o.snapshot_every = None);
        assert!(report.snapshots_refused.is_empty(), "{report:?}");
        assert_eq!(report.snapshot, expected, "{report:?}");
        with_deltas += usize::from(report.deltas > 0);
        assert_eq!(
            report.replayed,
            log.head().checkpoint.size - report.snapshot.unwrap_or(0)
        );
        assert_same_as_full_replay(&log, &data);
        // A temporary file left by the kill is removed at open.
        assert!(!std::fs::read_dir(&sdir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp")));
    }
    // The kills did land inside snapshot writes (the child spends most of its time there).
    assert!(torn > 0, "no kill landed during a snapshot write");
    assert!(
        with_deltas > 0,
        "no restart laid a delta on its whole snapshot"
    );
    println!("{torn} of 6 kills landed during a snapshot write");
}

/// State commitments (ADR 0005) survive a restart from a snapshot: the map rebuilt from
/// the restored catalog commits the same roots a full replay recomputes (replay refuses
/// a log with a wrong one), and the first commitment after the restart is served.
#[test]
fn state_commitments_after_a_restart_from_a_snapshot_match_a_full_replay() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (log, _) = open(&data, |o| o.state_commit_every = 1);
    let log = Arc::new(log);
    publish(&log, &data, 0, 300);
    let published = log.head().checkpoint.size;
    drop(Arc::into_inner(log).unwrap());
    // An idle log commits to its state on its own (ADR 0005), so the shutdown snapshot
    // may hold one more leaf than was published.
    let size = snapshots(&data)[0].0;
    assert!(size >= published, "{size} < {published}");

    let (log, report) = open(&data, |o| o.state_commit_every = 1);
    assert_eq!(report.snapshot, Some(size));
    let log = Arc::new(log);
    publish(&log, &data, 300, 100);
    assert!(log.head().checkpoint.size > size);
    let committed = log
        .state_commitment(None)
        .expect("a commitment after the restart");
    assert!(committed.tree_size > size, "{committed:?}");
    assert_same_as_full_replay(&log, &data);
}

#[test]
fn fsck_full_compares_every_snapshot_with_a_full_replay() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let size = published(&data, 300);
    let data_arg = data.to_str().unwrap();
    let out = common::cli(&["fsck", "--data", data_arg, "--full"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("snapshot at size {size}: state digest equal")),
        "{stdout}"
    );
    // A record changed and the hash recomputed: only the replay can tell.
    let (_, path) = snapshots(&data)[0].clone();
    replace_bytes(&path, b"\"channel\":\"dev\"", b"\"channel\":\"dew\"");
    reseal(&path);
    let plain = common::cli(&["fsck", "--data", data_arg]);
    assert!(
        plain.status.success(),
        "fsck without --full reads no snapshot"
    );
    let out = common::cli(&["fsck", "--data", data_arg, "--full"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("PROBLEM: snapshot"), "{stdout}");
    assert!(stdout.contains("state digest"), "{stdout}");
    // The records it rebuilt went to scratch stores on disk, removed when done.
    let scratch = std::fs::read_dir(data.join("scratch")).unwrap().count();
    assert_eq!(scratch, 0, "fsck --full left scratch stores behind");
}

/// Submits, signed by the log's admin key, a grant of the reviewer role to `reviewer`.
fn grant_reviewer(log: &Arc<Log>, data: &Path, reviewer: &Signer) {
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": reviewer.verifier().to_vkey(), "role": "reviewer",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["*"],
    });
    submit_signed(log, &serde_jcs::to_vec(&grant).unwrap(), &admin);
}

fn submit_signed(log: &Arc<Log>, payload: &[u8], signer: &Signer) {
    let rt = common::multi_thread_runtime();
    let envelope = sign_envelope(payload, signer).to_json();
    let submission = Submission::parse(envelope.as_bytes()).unwrap();
    let key = submission.dedup_key();
    let verified = submission.verify(&log.keys()).unwrap();
    rt.block_on(log.submit(verified, key)).unwrap();
}

/// Reviews (approves, in `dev`) the entries `publish` made for the request numbers `ns`:
/// decisions that rewrite entries older than the snapshot the next delta lies on.
fn review(log: &Arc<Log>, reviewer: &Signer, ns: impl Iterator<Item = u64>, round: u64) {
    for n in ns {
        let hex = hex::encode(Sha256::digest(format!("quay.io/snapshot/s:{n}")));
        let review = serde_json::json!({
            "apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
            "entry": {"targetCatalogRef": "sourceos://catalog/snap", "subjectDigest": {"sha256": hex}},
            "reviewer": reviewer.verifier().short_id(), "channel": "dev",
            "verdict": if (n + round) % 3 == 0 { "deny" } else { "approve" },
        });
        let review = common::authority::fresh(&review);
        submit_signed(log, &serde_jcs::to_vec(&review).unwrap(), reviewer);
    }
}

/// Delta snapshots (ADR 0019): each holds what the leaves since the one below wrote,
/// and older entries decisions rewrote; start-up lays the chain on the whole snapshot
/// and replays only what came after the newest delta, reaching a full replay's state;
/// a delta whose base is missing ends the chain; `--snapshot-check digest` uses whole
/// snapshots only; `fsck --full` finds every delta sound.
#[test]
fn deltas_carry_rewritten_older_entries_and_restore_like_a_full_replay() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (log, _) = open(&data, |o| o.snapshot_every = Some(u64::MAX));
    let log = Arc::new(log);
    publish(&log, &data, 0, 300);
    let whole = log.write_snapshot().unwrap().unwrap();
    let reviewer = Signer::generate("snapshot.example/reviewer", KeyType::Ed25519).unwrap();
    grant_reviewer(&log, &data, &reviewer);
    review(&log, &reviewer, (0..40).step_by(3), 0);
    publish(&log, &data, 300, 100);
    let first = log.write_delta_snapshot().unwrap().unwrap();
    // Decisions on entries below the whole snapshot and on entries of the first delta.
    review(&log, &reviewer, (0..20).step_by(2).chain(310..320), 1);
    publish(&log, &data, 400, 60);
    let second = log.write_delta_snapshot().unwrap().unwrap();
    assert!(whole < first && first < second);
    let sdir = snapshot::dir(&data);
    let deltas: Vec<u64> = snapshot::delta::list(&sdir).iter().map(|d| d.0).collect();
    assert_eq!(deltas, [first, second]);
    // A tail shorter than the shutdown's threshold: no snapshot at shutdown.
    review(&log, &reviewer, 5..15, 2);
    let size = log.head().checkpoint.size;
    drop(Arc::into_inner(log).unwrap());

    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert!(report.snapshots_refused.is_empty(), "{report:?}");
    assert_eq!((report.snapshot, report.deltas), (Some(second), 2));
    assert_eq!(report.replayed, size - second);
    assert_same_as_full_replay(&log, &data);
    drop(log);
    let (log, report) = open(&data, |o| {
        o.snapshot_every = None;
        o.snapshot_check = SnapshotCheck::Hash;
    });
    assert_eq!((report.snapshot, report.deltas), (Some(second), 2));
    assert_same_as_full_replay(&log, &data);
    drop(log);
    let (log, report) = open(&data, |o| {
        o.snapshot_every = None;
        o.snapshot_check = SnapshotCheck::Digest;
    });
    assert_eq!((report.snapshot, report.deltas), (Some(whole), 0));
    assert_same_as_full_replay(&log, &data);
    drop(log);

    let fsck = common::cli_ok(&["fsck", "--full", "--data", data.to_str().unwrap()]);
    for size in [whole, first, second] {
        let line = format!("snapshot at size {size}: state digest equal to the replay's");
        assert!(fsck.contains(&line), "{fsck}");
    }

    // The first delta gone: the second does not lie on anything restored.
    std::fs::remove_file(sdir.join(snapshot::delta::file_name(first))).unwrap();
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!((report.snapshot, report.deltas), (Some(whole), 0));
    assert_eq!(report.snapshots_refused.len(), 1, "{report:?}");
    assert_same_as_full_replay(&log, &data);
}

/// Polls `dir` until a file named by `name` holds a size at least `size`; returns it.
fn until_written(dir: &Path, list: fn(&Path) -> Vec<(u64, PathBuf)>, size: u64) -> u64 {
    for _ in 0..600 {
        if let Some((n, _)) = list(dir).into_iter().find(|(n, _)| *n >= size) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no snapshot of size {size} or more in {}", dir.display());
}

/// A frontend's projection (`log::projection`) writes snapshots in the log's own format
/// into its data directory: a projection started later restores from them and applies
/// only the leaves after, with the log's state; and the log opens on them, as it does
/// when that frontend takes the lease, with the state of a full replay.
#[test]
fn a_frontends_projection_writes_snapshots_it_restarts_and_takes_over_from() {
    use srcos_catalog::log::follower::Follower;
    use srcos_catalog::log::projection::{Projection, Restored, Snapshots};
    use srcos_catalog::storage::records::DiskRecordStore;
    use srcos_catalog::storage::LogBackends;

    let dir = tempfile::tempdir().unwrap();
    let (data, frontend) = (dir.path().join("log"), dir.path().join("frontend"));
    let (log, _) = open(&data, |o| o.snapshot_every = None);
    let log = Arc::new(log);
    publish(&log, &data, 0, 300);
    let backends = LogBackends::posix(&data).unwrap();
    let follower = Arc::new(Follower::new(
        log.verifier().clone(),
        backends.tiles,
        backends.lock,
    ));
    let refresh = || follower.refresh().unwrap().unwrap().checkpoint.size;
    let on_disk = |name: &str| {
        let store = DiskRecordStore::open_fresh(&dir.path().join(name)).unwrap();
        Catalog::with_store(Box::new(store))
    };
    let writing = Snapshots {
        data_dir: frontend.clone(),
        check: SnapshotCheck::Index,
        every: Some(32),
    };
    let sdir = snapshot::dir(&frontend);

    // A whole snapshot once the head is applied, then a delta on it.
    let first = Arc::new(
        Projection::new(follower.clone(), on_disk("first")).with_snapshots(writing.clone()),
    );
    first.start_snapshots().unwrap();
    let size = refresh();
    assert_eq!(first.catch_up().unwrap(), size);
    let whole = until_written(&sdir, snapshot::list, size);
    publish(&log, &data, 300, 40);
    let size = refresh();
    assert_eq!(first.catch_up().unwrap(), size);
    let delta = until_written(&sdir, snapshot::delta::list, size);
    first.stop_snapshots();
    assert_eq!(
        snapshot::list(&sdir)[0].0,
        whole,
        "one whole snapshot, then deltas"
    );
    let digest = |at| log.read_catalog(|c, _| c.try_state_digest_at(at).unwrap());
    assert_eq!(first.state_digest_at(size).unwrap(), digest(size));

    // A restart: restored from the whole snapshot and its delta, the rest applied.
    publish(&log, &data, 340, 20);
    let size = refresh();
    let restarted =
        Projection::new(follower.clone(), on_disk("second")).with_snapshots(Snapshots {
            every: None,
            ..writing.clone()
        });
    assert_eq!(restarted.catch_up().unwrap(), size);
    let status = restarted.status();
    assert_eq!(
        status.restored,
        Some(Restored {
            size: delta,
            deltas: 1
        }),
        "{status:?}"
    );
    assert_eq!(restarted.serving_size(), Some(size));
    assert_eq!(restarted.state_digest_at(size).unwrap(), digest(size));
    // With snapshots off, the same start applies every leaf.
    let off = Projection::new(follower.clone(), on_disk("third")).with_snapshots(Snapshots {
        check: SnapshotCheck::Off,
        ..writing.clone()
    });
    assert_eq!(off.catch_up().unwrap(), size);
    assert_eq!(off.status().restored, None);

    // A takeover: the log opens in a directory holding only the frontend's snapshots.
    drop(Arc::into_inner(log).unwrap());
    std::fs::rename(&sdir, snapshot::dir(&data)).unwrap();
    let (log, report) = open(&data, |o| o.snapshot_every = None);
    assert_eq!(
        (report.snapshot, report.deltas),
        (Some(delta), 1),
        "{report:?}"
    );
    assert_eq!(report.replayed, size - delta);
    assert_same_as_full_replay(&log, &data);
}
